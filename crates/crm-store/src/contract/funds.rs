//! The funds-readings part of the storage story ([`FundsRepo`]), kept apart
//! from [`super::run_story`] so an adapter runs it once it implements the
//! port. Panics on the first broken promise.

use super::fixtures::{at, host};
use crm_domain::funds::{FundsReading, FundsValue, Money, QuotaWindow};
use crm_domain::ports::{FundsRepo, HostRepo, ReconcileRepo, StoreError};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{
    DriftCategory, DriftReason, HostId, HostObjectId, ProviderRef, ReadingKind, ReadingSource,
    ReadingState, ReconcileRunId, ReconcileStatus, ResourceKind,
};

fn reading(
    host: &str,
    account: i64,
    source: ReadingSource,
    secs: i64,
    value: FundsValue,
) -> FundsReading {
    FundsReading {
        host_id: HostId(host.into()),
        batch_id: None,
        provider: ProviderRef::parse("cn-official/deepseek").unwrap(),
        account_id: HostObjectId(account),
        account_name: format!("crm-deepseek-{account}"),
        source,
        taken_at: at(secs),
        value,
    }
}

fn cny(amount: f64) -> Vec<Money> {
    vec![Money {
        amount,
        currency: "CNY".into(),
    }]
}

/// Readings keep their value, source and time; the latest per account,
/// kind and source wins; an unknown host is `NotFound`; a drift item's
/// reason survives a run's round trip.
pub async fn run_funds_story<S: FundsRepo + HostRepo + ReconcileRepo + ?Sized>(s: &S) {
    s.add_host(host("h-funds", "funds-host")).await.unwrap();
    let h = HostId("h-funds".into());
    assert!(s.latest_readings(&h).await.unwrap().is_empty());
    s.save_readings(vec![
        reading(
            "h-funds",
            1,
            ReadingSource::Host,
            10,
            FundsValue::balance(cny(50.0), Some(true)),
        ),
        reading(
            "h-funds",
            2,
            ReadingSource::Host,
            10,
            FundsValue::unknown(ReadingKind::Balance, "host answered 502"),
        ),
        reading(
            "h-funds",
            3,
            ReadingSource::Host,
            10,
            FundsValue::quota(vec![QuotaWindow {
                window: "5h".into(),
                used_percent: 40.0,
                reset_at: Some("2026-12-06T20:00:00Z".into()),
            }]),
        ),
    ])
    .await
    .unwrap();
    s.save_readings(vec![
        reading(
            "h-funds",
            1,
            ReadingSource::Host,
            20,
            FundsValue::balance(cny(7.5), Some(true)),
        ),
        reading(
            "h-funds",
            1,
            ReadingSource::Upstream,
            15,
            FundsValue::balance(cny(7.0), None),
        ),
    ])
    .await
    .unwrap();
    let latest = s.latest_readings(&h).await.unwrap();
    assert_eq!(latest.len(), 4, "{latest:#?}");
    let a1: Vec<_> = latest
        .iter()
        .filter(|r| r.account_id == HostObjectId(1))
        .collect();
    assert_eq!(a1.len(), 2, "one per source");
    let host_side = a1.iter().find(|r| r.source == ReadingSource::Host).unwrap();
    assert_eq!(host_side.taken_at, at(20));
    assert_eq!(host_side.value.balances, cny(7.5));
    assert_eq!(host_side.value.available, Some(true));
    let failed = latest
        .iter()
        .find(|r| r.account_id == HostObjectId(2))
        .unwrap();
    assert_eq!(failed.value.state, ReadingState::Unknown);
    assert_eq!(failed.value.detail.as_deref(), Some("host answered 502"));
    let quota = latest
        .iter()
        .find(|r| r.account_id == HostObjectId(3))
        .unwrap();
    assert_eq!(quota.value.kind, ReadingKind::Quota);
    assert_eq!(quota.value.quota_remaining_ratio(), Some(0.6));

    let err = s
        .save_readings(vec![reading(
            "h-nowhere",
            1,
            ReadingSource::Host,
            1,
            FundsValue::balance(cny(1.0), None),
        )])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    let run = ReconcileRun {
        id: ReconcileRunId::new("rr-funds"),
        scope: ReconcileScope {
            host_id: h.clone(),
            batch_id: None,
            provider: None,
        },
        status: ReconcileStatus::Drifted,
        started_at: at(30),
        finished_at: at(31),
        host_requests: 3,
        items: vec![DriftItem {
            category: DriftCategory::Unhealthy,
            reason: Some(DriftReason::LowFunds),
            kind: ResourceKind::Account,
            name: "crm-deepseek-1".into(),
            host_object_id: Some(HostObjectId(1)),
            batch_id: None,
            fields: vec![],
            detail: "balance 7.5 CNY is below the threshold 10 CNY".into(),
        }],
        repaired: false,
        error: None,
    };
    s.save_run(run.clone()).await.unwrap();
    assert_eq!(s.get_run(&run.id).await.unwrap(), run);
}
