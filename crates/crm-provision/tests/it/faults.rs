//! The fault matrix: every mutating host call k of an import, each fault kind
//! the simulator injects. The batch must stop as partially_applied / failed /
//! needs_operator with an exact journal; then resume must leave exactly the
//! planned objects (no duplicates), and, separately, rollback must leave no
//! crm-marked object.

use crate::support::*;
use crm_domain::ports::BatchRepo;
use crm_domain::{BatchStatus, JournalState};
use crm_sim::{FaultAction, FaultSpec};
use crm_testkit::TestEnv;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Status5xx,
    Timeout,
    Dropped,
    CommitThenLost,
    CommitThenTimeout,
}

const KINDS: [Kind; 5] = [
    Kind::Status5xx,
    Kind::Timeout,
    Kind::Dropped,
    Kind::CommitThenLost,
    Kind::CommitThenTimeout,
];

fn action(kind: Kind) -> FaultAction {
    match kind {
        Kind::Status5xx => FaultAction::Status {
            status: 502,
            body: serde_json::Value::Null,
        },
        // Longer than the short-timeout handle's 600 ms: the client gives up
        // first, and the simulator processes the request late anyway.
        Kind::Timeout => FaultAction::Delay { ms: 1_000 },
        Kind::Dropped => FaultAction::Drop,
        Kind::CommitThenLost => FaultAction::CommitThenDrop,
        Kind::CommitThenTimeout => FaultAction::CommitThenDelay { ms: 1_000 },
    }
}

#[tokio::test]
async fn every_mutation_and_fault_ends_clean_after_resume_or_rollback() {
    let (mut cases, mut violations) = (0u32, Vec::<String>::new());
    for profile in PROFILES {
        // The clean run: which mutating calls an import makes, what it leaves.
        let clean = TestEnv::named(profile).await;
        let provider = clean.provider_ref("deepseek");
        clean.sim.clear_requests();
        provisioner(&clean, clean.host_api(), "t")
            .import(request(provider.clone(), &["a", "b"]))
            .await
            .unwrap();
        let calls = mutations(&clean);
        for k in 1..=calls.len() {
            let (method, route) = calls[k - 1].clone();
            // nth matching request of that method+route at call k.
            let nth = calls[..k]
                .iter()
                .filter(|c| **c == (method.clone(), route.clone()))
                .count();
            for kind in KINDS {
                for then_rollback in [false, true] {
                    cases += 1;
                    let case = format!(
                        "{profile} k={k} ({method} {route}) {kind:?} {}",
                        if then_rollback { "rollback" } else { "resume" }
                    );
                    let env = TestEnv::named(profile).await;
                    let prov = provisioner(&env, short_timeout_host(&env), "t");
                    let expected = planned_names(
                        &prov
                            .preview(&request(provider.clone(), &["a", "b"]))
                            .await
                            .unwrap()
                            .plan,
                    );
                    env.sim.inject_fault(FaultSpec {
                        method: Some(method.clone()),
                        path: route.clone(),
                        nth: nth as u32,
                        times: 1,
                        action: action(kind),
                    });
                    let r = prov
                        .import(request(provider.clone(), &["a", "b"]))
                        .await
                        .unwrap();
                    if kind == Kind::Timeout {
                        // Time passes before the operator resumes: the late
                        // request lands (poll the simulator's own log, bounded).
                        wait_for_late_request(&env).await;
                    }
                    env.sim.clear_faults();
                    let j = env.store.journal(&r.batch.id).await.unwrap();
                    let states: Vec<JournalState> = j.iter().map(|e| e.state).collect();
                    // Exact journal. The group is created alone; then the
                    // channel and the accounts, which only need its id, run
                    // concurrently (in any order on the wire), so the calls
                    // of call k's wave that were in flight settle too: the
                    // entries of the earlier waves and of this one are
                    // there, nothing after the wave is started, and exactly
                    // the faulted entry is not applied (a create that
                    // happened is found by natural key and adopted; an
                    // update's unknown outcome is "failed, re-issue").
                    let wave = |n: usize| u8::from(!calls[n - 1].1.ends_with("/groups"));
                    let wave_start = (1..=k)
                        .rev()
                        .take_while(|n| wave(*n) == wave(k))
                        .last()
                        .unwrap_or(k);
                    let wave_end = (k..=calls.len())
                        .take_while(|n| wave(*n) == wave(k))
                        .last()
                        .unwrap_or(k);
                    let want_faulted = match kind {
                        Kind::CommitThenLost | Kind::CommitThenTimeout if method == "POST" => {
                            JournalState::Applied
                        }
                        _ => JournalState::Failed,
                    };
                    let not_applied: Vec<JournalState> = states
                        .iter()
                        .copied()
                        .filter(|s| *s != JournalState::Applied)
                        .collect();
                    let want_not_applied = match want_faulted {
                        JournalState::Applied => vec![],
                        other => vec![other],
                    };
                    if !(wave_start..=wave_end).contains(&states.len())
                        || not_applied != want_not_applied
                    {
                        violations.push(format!(
                            "{case}: journal {:?}",
                            j.iter()
                                .map(|e| (e.op, e.kind, e.state, e.detail.clone()))
                                .collect::<Vec<_>>()
                        ));
                        continue;
                    }
                    let want_status = if states.contains(&JournalState::Applied) {
                        BatchStatus::PartiallyApplied
                    } else {
                        BatchStatus::Failed
                    };
                    if r.batch.status != want_status || r.error.is_none() {
                        violations.push(format!(
                            "{case}: status {} ({:?}), want {want_status}",
                            r.batch.status, r.error
                        ));
                        continue;
                    }
                    if then_rollback {
                        let rb = prov.rollback(&r.batch.id).await.unwrap();
                        let left = crm_marked(&env);
                        if rb.status != BatchStatus::RolledBack || !left.is_empty() {
                            violations.push(format!(
                                "{case}: rollback {} left {left:?} ({:?})",
                                rb.status, rb.left
                            ));
                        }
                    } else {
                        let rs = prov.resume(&r.batch.id, keys(&["a", "b"])).await.unwrap();
                        let got = crm_names(&env);
                        if rs.batch.status != BatchStatus::Applied || got != expected {
                            violations.push(format!(
                                "{case}: resume {} ({:?}) left {got:?}, want {expected:?}",
                                rs.batch.status, rs.error
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "fault matrix (crm-sim, both profiles): {cases} cases run, {} violations",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    // Group, channel and two accounts on `current`; no channel on legacy.
    assert_eq!(cases, (4 + 3) * 5 * 2, "{cases}");
}

/// Waits (at most 10 s) until the simulator has processed the delayed request.
async fn wait_for_late_request(env: &TestEnv) {
    let landed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !env.sim.requests().iter().any(|r| r.outcome == "delayed") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(landed.is_ok(), "the delayed request never landed");
}
