//! A batch's host-side channel monitor against the simulator: deleted or
//! changed behind crm's back, reconcile reports it (`missing`, `changed`
//! on interval and model), repair recreates it with the supplied key or
//! writes its fields back, and the next run is in sync.

use crate::env::{World, brief};
use crm_domain::observed::MonitorPatch;
use crm_domain::{AccessMode, ReconcileStatus};
use crm_provision::ImportRequest;
use crm_reconcile::{RepairOptions, RunOptions, reconcile, repair};
use crm_testkit::sim_key;

/// Imports `deepseek` self-service with one working key (tagged `tag`)
/// and a monitor; returns the key.
async fn import_with_monitor(w: &World, tag: &str) -> crm_domain::SecretString {
    let key = sim_key("ok", tag);
    let report = w
        .provisioner()
        .import(ImportRequest {
            provider: w.env.provider_ref("deepseek"),
            pack_version: None,
            mode: AccessMode::SelfService,
            upstream_keys: vec![key.clone()],
            accept_url_change: false,
            monitor: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(report.error, None);
    key
}

#[tokio::test]
async fn a_deleted_or_changed_monitor_is_reported_and_repaired() {
    let w = World::current().await;
    let key = import_with_monitor(&w, "m1").await;
    let api = w.api();
    let host = &w.env.host_record;
    let run = || reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default());
    let first = run().await.unwrap();
    assert_eq!(
        first.status,
        ReconcileStatus::InSync,
        "{:?}",
        brief(&first.items)
    );

    // Changed by hand: a slower interval, another model.
    let m = api.list_monitors().await.unwrap().remove(0);
    let model = m.primary_model.clone();
    api.update_monitor(
        m.id,
        &MonitorPatch {
            interval_seconds: Some(1800),
            primary_model: Some("another-model".into()),
            ..MonitorPatch::default()
        },
    )
    .await
    .unwrap();
    let changed = run().await.unwrap();
    assert_eq!(
        brief(&changed.items),
        [format!(
            "changed monitor {} [primary_model,interval_seconds]",
            m.name
        )]
    );
    let fixed = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(fixed.run.error, None, "{fixed:?}");
    let m = api.list_monitors().await.unwrap().remove(0);
    assert_eq!((m.interval_seconds, &m.primary_model), (300, &model));
    assert_eq!(run().await.unwrap().status, ReconcileStatus::InSync);

    // Deleted by hand: missing; repair needs the key, then makes it again.
    api.delete_monitor(m.id).await.unwrap();
    let missing = run().await.unwrap();
    assert_eq!(
        brief(&missing.items),
        [format!("missing monitor {} []", m.name)]
    );
    let without_key = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions {
            apply: true,
            ..RepairOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(
        api.list_monitors().await.unwrap().is_empty(),
        "{without_key:?}"
    );
    let with_key = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        w.with_keys(
            RepairOptions {
                apply: true,
                ..RepairOptions::default()
            },
            std::slice::from_ref(&key),
        ),
    )
    .await
    .unwrap();
    assert_eq!(with_key.run.error, None, "{with_key:?}");
    let again = api.list_monitors().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, m.id);
    let last = run().await.unwrap();
    assert_eq!(
        last.status,
        ReconcileStatus::InSync,
        "{:?}",
        brief(&last.items)
    );
}

/// The host's monitor is the host's own view of the upstream: when its
/// latest check of the primary model fails, the run says so as an
/// `unhealthy` item (`monitor_failing`) that repair leaves alone, and it
/// clears once the monitor sees the upstream answer again.
#[tokio::test]
async fn a_failing_monitor_check_is_unhealthy_until_the_upstream_answers_again() {
    use crm_domain::{DriftCategory, DriftReason, PlanAction};
    let w = World::current().await;
    let key = import_with_monitor(&w, "m2").await;
    let api = w.api();
    let host = &w.env.host_record;
    let run = || reconcile(&w.ports, host, api, w.host_scope(), RunOptions::default());
    let client = w.env.host.client();
    let m = api.list_monitors().await.unwrap().remove(0);

    // A check that passes: in sync.
    client.run_monitor(m.id.0).await.unwrap();
    let ok = run().await.unwrap();
    assert_eq!(ok.status, ReconcileStatus::InSync, "{:?}", brief(&ok.items));

    // The key stops working upstream; the host's next check fails.
    w.env.sim.set_upstream_behaviour(
        crm_domain::secret::ExposeSecret::expose_secret(&key),
        crm_sim::Behaviour::InvalidKey,
    );
    client.run_monitor(m.id.0).await.unwrap();
    let failing = run().await.unwrap();
    assert_eq!(
        brief(&failing.items),
        [format!("unhealthy monitor {} []", m.name)]
    );
    let item = &failing.items[0];
    assert_eq!(item.category, DriftCategory::Unhealthy);
    assert_eq!(item.reason, Some(DriftReason::MonitorFailing));
    assert!(
        item.detail.contains("reports failed for"),
        "{}",
        item.detail
    );
    let plan = repair(
        &w.ports,
        host,
        api,
        w.host_scope(),
        RepairOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        plan.plan.items.iter().all(|i| i.action == PlanAction::NoOp),
        "repair cannot fix an upstream: {:?}",
        plan.plan.items
    );

    // The upstream answers again: the next check passes, the item clears.
    w.env.sim.set_upstream_behaviour(
        crm_domain::secret::ExposeSecret::expose_secret(&key),
        crm_sim::Behaviour::Ok,
    );
    client.run_monitor(m.id.0).await.unwrap();
    let back = run().await.unwrap();
    assert_eq!(
        back.status,
        ReconcileStatus::InSync,
        "{:?}",
        brief(&back.items)
    );
}
