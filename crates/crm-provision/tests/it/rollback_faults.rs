//! Faults and crashes during rollback: at every mutating call k of a
//! rollback, each fault kind (and a dropped future as a crash), the rollback
//! ends `rolled_back` or `rollback_incomplete`, and a second rollback always
//! ends `rolled_back` with no crm-marked object left.

use crate::support::*;
use crm_domain::BatchStatus;
use crm_domain::ports::{BatchRepo, LeaseRepo};
use crm_sim::{FaultAction, FaultSpec};
use crm_testkit::TestEnv;
use std::sync::Arc;

fn actions() -> Vec<(&'static str, FaultAction)> {
    vec![
        (
            "5xx",
            FaultAction::Status {
                status: 502,
                body: serde_json::Value::Null,
            },
        ),
        ("timeout", FaultAction::Delay { ms: 1_000 }),
        ("dropped", FaultAction::Drop),
        ("commit_then_lost", FaultAction::CommitThenDrop),
    ]
}

#[tokio::test]
async fn rollback_survives_faults_and_crashes_at_every_call() {
    let (mut cases, mut violations) = (0u32, Vec::<String>::new());
    for profile in PROFILES {
        // A clean rollback: which mutating calls it makes.
        let clean = TestEnv::named(profile).await;
        let provider = clean.provider_ref("deepseek");
        let p = provisioner(&clean, clean.host_api(), "t");
        let r = p
            .import(request(provider.clone(), &["a", "b"]))
            .await
            .unwrap();
        clean.sim.clear_requests();
        p.rollback(&r.batch.id).await.unwrap();
        let calls = mutations(&clean);
        for k in 1..=calls.len() {
            let (method, route) = calls[k - 1].clone();
            let nth = calls[..k]
                .iter()
                .filter(|c| **c == (method.clone(), route.clone()))
                .count() as u32;
            for (name, action) in actions() {
                cases += 1;
                let case = format!("{profile} k={k} ({method} {route}) {name}");
                let env = TestEnv::named(profile).await;
                let prov = provisioner(&env, short_timeout_host(&env), "t");
                let r = prov
                    .import(request(provider.clone(), &["a", "b"]))
                    .await
                    .unwrap();
                env.sim.inject_fault(FaultSpec {
                    method: Some(method.clone()),
                    path: route.clone(),
                    nth,
                    // Deletes are retried by the client: fault every attempt.
                    times: 10,
                    action,
                });
                let first = prov.rollback(&r.batch.id).await.unwrap();
                env.sim.clear_faults();
                if !matches!(
                    first.status,
                    BatchStatus::RolledBack | BatchStatus::RollbackIncomplete
                ) {
                    violations.push(format!("{case}: first rollback {}", first.status));
                }
                if first.status == BatchStatus::RollbackIncomplete && first.left.is_empty() {
                    violations.push(format!("{case}: incomplete without saying what is left"));
                }
                // A delayed delete may still land during the second rollback:
                // deletes are idempotent (404 counts as done), so order does not matter.
                let second = prov.rollback(&r.batch.id).await.unwrap();
                let left = crm_marked(&env);
                if second.status != BatchStatus::RolledBack || !left.is_empty() {
                    violations.push(format!(
                        "{case}: second rollback {} left {left:?} ({:?})",
                        second.status, second.left
                    ));
                }
            }
            // A crash at call k: the rollback future is dropped there.
            cases += 1;
            let env = TestEnv::named(profile).await;
            let r = provisioner(&env, env.host_api(), "t")
                .import(request(provider.clone(), &["a", "b"]))
                .await
                .unwrap();
            let gated = Arc::new(GatedHost::new(
                env.host_api(),
                k as u32,
                CrashPoint::AfterCall,
            ));
            let reached = gated.reached.clone();
            let crashing = provisioner(&env, gated, "crashing-process");
            let id = r.batch.id.clone();
            let task = tokio::spawn(async move { crashing.rollback(&id).await });
            reached.notified().await;
            task.abort();
            let _ = task.await;
            assert_eq!(
                env.store.get_batch(&r.batch.id).await.unwrap().status,
                BatchStatus::RollingBack
            );
            for l in env.store.active_leases("host:").await.unwrap() {
                env.store.release_lease(&l.id).await.unwrap();
            }
            let again = provisioner(&env, env.host_api(), "restarted")
                .rollback(&r.batch.id)
                .await
                .unwrap();
            let left = crm_marked(&env);
            if again.status != BatchStatus::RolledBack || !left.is_empty() {
                violations.push(format!(
                    "{profile} k={k} crash: {} left {left:?}",
                    again.status
                ));
            }
        }
    }
    println!(
        "rollback faults and crashes: {cases} cases run, {} violations",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
}
