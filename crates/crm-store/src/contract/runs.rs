//! Access checks and reconcile runs.

use super::fixtures::*;
use crm_domain::access::{AccessCheck, CheckStep};
use crm_domain::plan::FieldChange;
use crm_domain::ports::{Storage, StoreError};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::*;
use serde_json::json;

pub(super) async fn access_checks<S: Storage + ?Sized>(s: &S) {
    let check = |id: &str, secs: i64, verdict: Verdict| AccessCheck {
        id: AccessCheckId::new(id),
        batch_id: BatchId::new("b-2"),
        mode: AccessMode::SelfService,
        checked_at: at(secs),
        verdict,
        failure_class: (verdict == Verdict::Fail).then_some(FailureClass::BillingGate),
        summary: "checked".into(),
        steps: vec![CheckStep {
            name: "models".into(),
            verdict,
            status: Some(200),
            latency_ms: 12,
            detail: json!({"models": ["deepseek-chat"]}),
        }],
    };
    s.record_access_check(check("c-2", 600, Verdict::Pass))
        .await
        .unwrap();
    s.record_access_check(check("c-1", 500, Verdict::Fail))
        .await
        .unwrap();
    assert!(matches!(
        s.record_access_check(check("c-1", 500, Verdict::Fail))
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let got = s.access_checks(&BatchId::new("b-2")).await.unwrap();
    assert_eq!(
        got,
        [
            check("c-1", 500, Verdict::Fail),
            check("c-2", 600, Verdict::Pass)
        ]
    );
    assert!(
        s.access_checks(&BatchId::new("b-3"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn reconcile_runs<S: Storage + ?Sized>(s: &S) {
    let run = |id: &str, batch: Option<&str>, secs: i64, items: usize| ReconcileRun {
        id: ReconcileRunId::new(id),
        scope: ReconcileScope {
            host_id: HostId::new("h2"),
            batch_id: batch.map(BatchId::new),
            provider: batch.map(|_| ProviderRef::new("cn-official", "deepseek")),
        },
        status: if items == 0 {
            ReconcileStatus::InSync
        } else {
            ReconcileStatus::Drifted
        },
        started_at: at(secs),
        finished_at: at(secs + 3),
        host_requests: 6,
        items: (0..items)
            .map(|i| DriftItem {
                category: DriftCategory::Changed,
                reason: None,
                kind: ResourceKind::Channel,
                name: format!("crm-chan-{i}"),
                host_object_id: Some(HostObjectId(i as i64)),
                batch_id: batch.map(BatchId::new),
                fields: vec![FieldChange {
                    field: "model_pricing".into(),
                    from: json!(1),
                    to: json!(2),
                }],
                detail: "price changed".into(),
            })
            .collect(),
        repaired: false,
        error: None,
    };
    assert_eq!(s.latest_for_host(&HostId::new("h2")).await.unwrap(), None);
    s.save_run(run("r-1", Some("b-3"), 1000, 2)).await.unwrap();
    s.save_run(run("r-2", None, 2000, 0)).await.unwrap();
    s.save_run(run("r-3", Some("b-3"), 1500, 0)).await.unwrap();
    assert_eq!(
        s.get_run(&ReconcileRunId::new("r-1")).await.unwrap(),
        run("r-1", Some("b-3"), 1000, 2),
        "a run reads back with its drift items in order"
    );
    let mut repaired = run("r-1", Some("b-3"), 1000, 1);
    repaired.repaired = true;
    s.save_run(repaired.clone()).await.unwrap();
    assert_eq!(
        s.get_run(&ReconcileRunId::new("r-1")).await.unwrap(),
        repaired
    );
    let host_runs = s.runs_for_host(&HostId::new("h2"), 10).await.unwrap();
    assert_eq!(
        host_runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r-2", "r-3", "r-1"],
        "newest first"
    );
    assert_eq!(
        s.runs_for_host(&HostId::new("h2"), 1).await.unwrap().len(),
        1
    );
    let latest = s
        .latest_for_host(&HostId::new("h2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id.as_str(), "r-2");
    let latest_b = s
        .latest_for_batch(&BatchId::new("b-3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest_b.id.as_str(), "r-3");
    assert_eq!(
        s.runs_for_batch(&BatchId::new("b-3"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.latest_for_batch(&BatchId::new("b-2")).await.unwrap(),
        None
    );
    assert!(matches!(
        s.get_run(&ReconcileRunId::new("r-404")).await,
        Err(StoreError::NotFound { .. })
    ));
}
