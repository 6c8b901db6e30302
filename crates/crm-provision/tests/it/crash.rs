//! Cancellation as a crash: the import future is dropped at the k-th mutating
//! call (before the call leaves, or after the host applied it but before the
//! result is recorded). Resume, or separately rollback, must end clean.
//! (Killing the real CLI binary with SIGKILL is tested with the CLI.)

use crate::support::*;
use crm_domain::ports::{BatchRepo, LeaseRepo};
use crm_domain::{BatchStatus, JournalState};
use crm_testkit::TestEnv;
use std::sync::Arc;

#[tokio::test]
async fn a_dropped_import_is_finished_by_resume_or_removed_by_rollback() {
    let mut cases = 0;
    for profile in PROFILES {
        let clean = TestEnv::named(profile).await;
        let provider = clean.provider_ref("deepseek");
        clean.sim.clear_requests();
        provisioner(&clean, clean.host_api(), "t")
            .import(request(provider.clone(), &["a", "b"]))
            .await
            .unwrap();
        let n = mutations(&clean).len() as u32;
        for k in 1..=n {
            for point in [CrashPoint::BeforeCall, CrashPoint::AfterCall] {
                for then_rollback in [false, true] {
                    cases += 1;
                    let case = format!("{profile} k={k} {point:?} rollback={then_rollback}");
                    let env = TestEnv::named(profile).await;
                    let expected = planned_names(
                        &provisioner(&env, env.host_api(), "t")
                            .preview(&request(provider.clone(), &["a", "b"]))
                            .await
                            .unwrap()
                            .plan,
                    );
                    let gated = Arc::new(GatedHost::new(env.host_api(), k, point));
                    let reached = gated.reached.clone();
                    let crashing = provisioner(&env, gated, "crashing-process");
                    let req = request(provider.clone(), &["a", "b"]);
                    let task = tokio::spawn(async move { crashing.import(req).await });
                    reached.notified().await;
                    task.abort();
                    assert!(task.await.unwrap_err().is_cancelled());

                    // The process is gone: its batch says applying, its intent is pending.
                    let batches = env.store.list_batches(Default::default()).await.unwrap();
                    assert_eq!(batches.len(), 1, "{case}");
                    let b = &batches[0];
                    assert_eq!(b.status, BatchStatus::Applying, "{case}");
                    // One pending intent per call in flight: the gated one,
                    // and its concurrent siblings (the channel and the two
                    // upstream keys' accounts run at once after the group).
                    let pending = env.store.pending_intents(Some(b.id.clone())).await.unwrap();
                    assert!((1..=3).contains(&pending.len()), "{case}: {pending:?}");
                    // Its lease outlives it until the TTL; expire it as the
                    // store would (release by its exact id).
                    for l in env.store.active_leases("host:").await.unwrap() {
                        assert_eq!(l.holder, "crashing-process");
                        env.store.release_lease(&l.id).await.unwrap();
                    }

                    let prov = provisioner(&env, env.host_api(), "restarted");
                    if then_rollback {
                        let rb = prov.rollback(&b.id).await.unwrap();
                        assert_eq!(rb.status, BatchStatus::RolledBack, "{case}: {rb:?}");
                        assert!(
                            crm_marked(&env).is_empty(),
                            "{case}: {:?}",
                            crm_marked(&env)
                        );
                    } else {
                        let rs = prov.resume(&b.id, keys(&["a", "b"])).await.unwrap();
                        assert_eq!(
                            rs.batch.status,
                            BatchStatus::Applied,
                            "{case}: {:?}",
                            rs.error
                        );
                        assert_eq!(crm_names(&env), expected, "{case}");
                    }
                    assert!(
                        env.store
                            .journal(&b.id)
                            .await
                            .unwrap()
                            .iter()
                            .all(|e| e.state != JournalState::Pending),
                        "{case}: a pending intent survived recovery"
                    );
                }
            }
        }
    }
    println!("crash (dropped future) cases: {cases}");
}
