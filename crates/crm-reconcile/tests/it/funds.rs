//! Funds readings in a reconcile run against the simulator: readings are
//! taken in the same run, bounded by one request per account with a route,
//! a failing host route is an `unknown` reading that never holds up the
//! diff, and a key below its threshold is `unhealthy` with `low_funds`.

use crate::env::World;
use async_trait::async_trait;
use crm_domain::funds::{FundsThreshold, FundsValue, Money, Threshold, host_route};
use crm_domain::ports::{FundsRepo, UpstreamFunds};
use crm_domain::secret::ExposeSecret;
use crm_domain::{
    Currency, DriftCategory, DriftReason, ReadingSource, ReadingState, ReconcileStatus,
    SecretString,
};
use crm_reconcile::funds::{FundsOptions, FundsWatch};
use crm_reconcile::{RunOptions, reconcile};
use crm_testkit::sim_key;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A provider balance API that reports 3 CNY for every key, counting calls.
struct LowUpstream {
    keys: Vec<String>,
    calls: AtomicU32,
}

#[async_trait]
impl UpstreamFunds for LowUpstream {
    async fn upstream_balance(&self, _base_url: String, key: &SecretString) -> FundsValue {
        assert!(
            self.keys.iter().any(|k| k == key.expose_secret()),
            "the supplied key is passed"
        );
        self.calls.fetch_add(1, Ordering::Relaxed);
        FundsValue::balance(
            vec![Money {
                amount: 3.0,
                currency: "CNY".into(),
            }],
            Some(true),
        )
    }
}

#[tokio::test]
async fn readings_are_taken_in_the_run_and_low_funds_is_unhealthy() {
    let mut w = World::current().await;
    let keys = [sim_key("ok", "fd1"), sim_key("ok", "fd2")];
    w.import("deepseek", &keys).await;

    let baseline = reconcile(
        &w.ports,
        &w.env.host_record,
        w.api(),
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        baseline.status,
        ReconcileStatus::InSync,
        "{:?}",
        baseline.items
    );

    let upstream = Arc::new(LowUpstream {
        keys: keys.iter().map(|k| k.expose_secret().to_owned()).collect(),
        calls: AtomicU32::new(0),
    });
    let store = Arc::new(w.env.store.clone());
    w.ports = w.ports.clone().with_funds(FundsWatch {
        repo: store.clone(),
        batches: store.clone(),
        checks: store.clone(),
        packs: store.clone(),
        upstream: Some(upstream.clone()),
    });
    // The host is taken to have the cn-providers routes; where the
    // simulator has none, each route answers a plain 404.
    let mut host = w.env.host_record.clone();
    let mut caps = w.env.caps.clone();
    caps.cn_funds = true;
    host.capabilities = Some(caps);
    let accounts = w.api().list_accounts().await.unwrap();
    let with_route = accounts
        .iter()
        .filter(|a| {
            let mode = a
                .credential_fields
                .get("account_mode")
                .and_then(|v| v.as_str());
            host_route(a.platform.as_str(), mode).is_some()
        })
        .count() as u32;

    w.clock.advance(std::time::Duration::from_secs(5));
    let before = w.api().request_count();
    let run = reconcile(
        &w.ports,
        &host,
        w.api(),
        w.host_scope(),
        RunOptions {
            funds: FundsOptions {
                overrides: FundsThreshold {
                    low_balance: Some(Threshold {
                        amount: 10.0,
                        currency: Currency::Cny,
                    }),
                    low_quota_percent: None,
                },
                upstream_keys: keys.to_vec(),
                fingerprinter: Some(Arc::new(w.env.fingerprinter())),
            },
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    let after = w.api().request_count();

    assert_eq!(run.status, ReconcileStatus::Drifted, "{:#?}", run.items);
    assert_eq!(run.items.len(), 2, "{:#?}", run.items);
    for i in &run.items {
        assert_eq!(i.category, DriftCategory::Unhealthy);
        assert_eq!(i.reason, Some(DriftReason::LowFunds));
        assert!(
            i.detail.contains("below the threshold 10 CNY"),
            "{}",
            i.detail
        );
    }
    // Page bound of the observation plus one request per account that has
    // a host route; the upstream reads go to the provider, not the host.
    assert_eq!(
        after - before,
        baseline.host_requests + with_route,
        "host requests with readings"
    );
    assert_eq!(upstream.calls.load(Ordering::Relaxed), 2);

    let stored = store.latest_readings(&host.id).await.unwrap();
    let host_side: Vec<_> = stored
        .iter()
        .filter(|r| r.source == ReadingSource::Host)
        .collect();
    assert_eq!(host_side.len(), 2);
    for r in &host_side {
        // The simulator's balance route answers, or (older simulators) a
        // plain 404 reads unknown; an ok reading always carries a balance.
        assert!(
            r.value.state != ReadingState::Ok || !r.value.balances.is_empty(),
            "{r:?}"
        );
    }
    let text = serde_json::to_string(&stored).unwrap();
    for k in &keys {
        assert!(
            !text.contains(k.expose_secret()),
            "a stored reading holds a key"
        );
    }
    // The saved run keeps the reasons.
    let saved = crm_domain::ports::ReconcileRepo::get_run(&w.env.store, &run.id)
        .await
        .unwrap();
    assert_eq!(saved.items, run.items);
}
