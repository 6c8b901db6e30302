//! A host that cannot be observed gives an `unreachable` run with nothing
//! but `unknown` items; once it answers again the real status comes back.

use crate::env::{World, brief};
use crm_domain::{DriftCategory, ReconcileStatus};
use crm_reconcile::{RunOptions, reconcile};
use crm_sim::{FaultAction, FaultSpec};
use crm_testkit::sim_key;

#[tokio::test]
async fn unreachable_invents_nothing_and_recovery_shows_the_real_status() {
    let w = World::current().await;
    let ds = w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    // Real drift the host will show once it answers again.
    w.env
        .sim
        .delete_object("accounts", ds.accounts[0].0)
        .unwrap();
    w.env.sim.inject_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/admin/accounts".into(),
        nth: 1,
        times: 1000,
        action: FaultAction::Drop,
    });
    let host = &w.env.host_record;
    let down = reconcile(
        &w.ports,
        host,
        w.api(),
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(down.status, ReconcileStatus::Unreachable);
    assert_eq!(down.items.len(), 3, "{:?}", brief(&down.items));
    assert!(
        down.items
            .iter()
            .all(|i| i.category == DriftCategory::Unknown)
    );
    assert!(
        down.error.as_deref().unwrap().contains("unreachable"),
        "{:?}",
        down.error
    );

    w.env.sim.clear_faults();
    w.clock.advance(std::time::Duration::from_secs(1));
    let up = reconcile(
        &w.ports,
        host,
        w.api(),
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(up.status, ReconcileStatus::Drifted);
    assert_eq!(
        brief(&up.items),
        [format!(
            "missing account {} []",
            down.items
                .iter()
                .find(|i| i.kind == crm_domain::ResourceKind::Account)
                .unwrap()
                .name
        )]
    );
}

#[tokio::test]
async fn a_host_nobody_listens_on_is_unreachable() {
    let w = World::current().await;
    w.import("kimi", &[sim_key("ok", "k1")]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut record = w.env.host_record.clone();
    record.base_url = format!("http://{addr}");
    let api = crm_sub2api::Sub2apiConnector::default()
        .open(&record, crm_testkit::admin_key(&w.env.sim))
        .unwrap();
    let run = reconcile(
        &w.ports,
        &record,
        &api,
        w.host_scope(),
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(run.status, ReconcileStatus::Unreachable);
    assert!(
        run.items
            .iter()
            .all(|i| i.category == DriftCategory::Unknown)
    );
    assert_eq!(run.items.len(), 3);
}
