//! Host-side channel monitors (issue 20 item 4) against crm-sim through the
//! real client: an import with `monitor` creates one, marked, checking the
//! upstream with the batch's key; a crash after the host made it is
//! adopted by name on resume; rollback deletes it; a host without monitors
//! gets a plan note and no monitor request at all.

use crate::support::*;
use crm_domain::ports::{BatchRepo, LeaseRepo};
use crm_domain::{BatchStatus, ResourceKind};
use crm_provision::ImportRequest;
use crm_testkit::TestEnv;
use std::sync::Arc;

fn with_monitor(provider: crm_domain::ProviderRef, tags: &[&str]) -> ImportRequest {
    ImportRequest {
        monitor: Some(true),
        ..request(provider, tags)
    }
}

fn sim_monitors(env: &TestEnv) -> Vec<serde_json::Value> {
    env.dump()["channel_monitors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_import_with_monitor_creates_it_marked_and_rollback_removes_it() {
    let env = TestEnv::current().await;
    let provider = env.provider_ref("deepseek");
    let prov = provisioner(&env, env.host_api(), "t");
    let r = prov
        .import(with_monitor(provider.clone(), &["a"]))
        .await
        .unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied, "{:?}", r.error);
    let m = sim_monitors(&env);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["endpoint"], "https://api.deepseek.com");
    assert_eq!(m[0]["interval_seconds"], 300);
    // The host holds the batch's upstream key (the dump shows its last 4).
    let key = keys(&["a"]).remove(0);
    let raw = crm_domain::secret::ExposeSecret::expose_secret(&key);
    let shown = m[0]["api_key"].as_str().unwrap();
    assert!(raw.ends_with(shown.trim_start_matches('*')), "{shown}");
    let listed = env.host_api().list_monitors().await.unwrap();
    assert_eq!(
        crm_domain::ownership::parse_marker(&listed[0].group_name),
        Some(r.batch.id.clone())
    );
    let recorded = env.store.resources(&r.batch.id).await.unwrap();
    let rec = recorded
        .iter()
        .find(|x| x.kind == ResourceKind::Monitor)
        .expect("the monitor is a managed resource");
    assert_eq!(rec.host_object_id, listed[0].id);
    assert!(
        !rec.desired.to_string().contains(raw),
        "the desired spec records a fingerprint, never the key"
    );
    // The host's check reaches the simulated provider with that key.
    let checks = env
        .new_host_handle()
        .client()
        .run_monitor(listed[0].id.0)
        .await;
    assert_eq!(checks.unwrap()[0].status, "operational");

    // Re-import without the flag: nothing to do, the monitor stays.
    let again = prov
        .import(request(provider.clone(), &["a"]))
        .await
        .unwrap();
    assert!(again.noop, "{:?}", again.plan);
    assert_eq!(sim_monitors(&env).len(), 1);

    let rb = prov.rollback(&r.batch.id).await.unwrap();
    assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
    assert!(sim_monitors(&env).is_empty());
    assert!(crm_marked(&env).is_empty(), "{:?}", crm_marked(&env));
}

#[tokio::test]
async fn a_crash_after_the_host_made_the_monitor_is_adopted_on_resume_or_deleted_by_rollback() {
    for then_rollback in [false, true] {
        let env = TestEnv::current().await;
        let provider = env.provider_ref("deepseek");
        // Group, then the channel and the account at once, then the
        // monitor: the fourth mutating call.
        let gated = Arc::new(GatedHost::new(env.host_api(), 4, CrashPoint::AfterCall));
        let reached = gated.reached.clone();
        let crashing = provisioner(&env, gated, "crashing-process");
        let req = with_monitor(provider.clone(), &["a"]);
        let task = tokio::spawn(async move { crashing.import(req).await });
        reached.notified().await;
        task.abort();
        let _ = task.await;
        assert_eq!(sim_monitors(&env).len(), 1, "the host made it");
        let b = env.store.list_batches(Default::default()).await.unwrap()[0].clone();
        let pending = env.store.pending_intents(Some(b.id.clone())).await.unwrap();
        assert_eq!(
            pending.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![ResourceKind::Monitor]
        );
        for l in env.store.active_leases("host:").await.unwrap() {
            env.store.release_lease(&l.id).await.unwrap();
        }
        let prov = provisioner(&env, env.host_api(), "restarted");
        if then_rollback {
            let rb = prov.rollback(&b.id).await.unwrap();
            assert_eq!(rb.status, BatchStatus::RolledBack, "{rb:?}");
            assert!(sim_monitors(&env).is_empty());
        } else {
            // No key given: the monitor is found by name, not made again.
            let rs = prov.resume(&b.id, vec![]).await.unwrap();
            assert_eq!(rs.batch.status, BatchStatus::Applied, "{:?}", rs.error);
            assert_eq!(sim_monitors(&env).len(), 1);
            let recorded = env.store.resources(&b.id).await.unwrap();
            assert_eq!(
                recorded
                    .iter()
                    .filter(|r| r.kind == ResourceKind::Monitor)
                    .count(),
                1
            );
        }
    }
}

#[tokio::test]
async fn a_host_without_monitors_gets_a_note_and_no_monitor_request() {
    let env = TestEnv::legacy().await;
    let provider = env.provider_ref("deepseek");
    env.sim.clear_requests();
    let r = provisioner(&env, env.host_api(), "t")
        .import(with_monitor(provider, &["a"]))
        .await
        .unwrap();
    assert_eq!(r.batch.status, BatchStatus::Applied, "{:?}", r.error);
    assert!(
        r.plan
            .notes
            .iter()
            .any(|n| n.contains("no channel monitors")),
        "{:?}",
        r.plan.notes
    );
    assert!(
        !env.sim
            .requests()
            .iter()
            .any(|q| q.path.contains("channel-monitors")),
        "a host without the capability is not asked"
    );
}
