//! State-machine property test: random sequences of operator operations,
//! injected host faults, in-flight crashes and process restarts, run through
//! `crm-app` against `crm-sim`. After every step the invariants of
//! `crm_reliability::invariants` hold on the host and the database is
//! consistent; after a repair that saw no fault, a read-only reconcile of a
//! host whose batches are all applied is `in_sync`.
//!
//! proptest generates the sequences from a fixed seed (reproducible) and
//! shrinks a failing one to a minimal sequence, which the failure prints.

use crate::world::{HOST_TIMEOUT, World};
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_app::recovery::FinishInput;
use crm_domain::{AccessMode, BatchStatus, ProviderRef, ReconcileStatus, SecretString};
use crm_reliability::{Budget, Tally};
use crm_sim::{FaultAction, FaultSpec};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PROVIDERS: [&str; 2] = ["deepseek", "kimi"];

/// Mutating host routes a fault can hit (method, path with `*` segments).
const FAULT_ROUTES: [(&str, &str); 11] = [
    ("POST", "/api/v1/admin/accounts"),
    ("POST", "/api/v1/admin/groups"),
    ("POST", "/api/v1/admin/channels"),
    ("POST", "/api/v1/admin/users"),
    ("POST", "/api/v1/keys"),
    ("POST", "/api/v1/admin/subscriptions/assign"),
    ("PUT", "/api/v1/admin/accounts/*"),
    ("DELETE", "/api/v1/admin/accounts/*"),
    ("DELETE", "/api/v1/admin/groups/*"),
    ("DELETE", "/api/v1/admin/channels/*"),
    ("DELETE", "/api/v1/admin/users/*"),
];

#[derive(Debug, Clone)]
enum Op {
    Import {
        p: usize,
        sub: bool,
        keys: usize,
        verify: bool,
    },
    AddKey {
        p: usize,
        sub: bool,
    },
    RotateKey {
        p: usize,
        sub: bool,
    },
    AccessCheck {
        p: usize,
    },
    Reconcile,
    Repair,
    Rollback {
        p: usize,
    },
    Resume,
    /// Arms a fault for the next operation's host writes.
    Fault {
        route: usize,
        action: usize,
        nth: u32,
    },
    /// Drops the application core and reopens the database.
    Restart,
    /// Starts an import and kills it (drops its task) once the host has
    /// seen `after` more writes, then restarts and releases its lease.
    Crash {
        p: usize,
        sub: bool,
        after: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PROVIDERS.len();
    prop_oneof![
        4 => (p.clone(), any::<bool>(), 1..=2usize, prop::bool::weighted(0.3))
            .prop_map(|(p, sub, keys, verify)| Op::Import { p, sub, keys, verify }),
        2 => (p.clone(), any::<bool>()).prop_map(|(p, sub)| Op::AddKey { p, sub }),
        2 => (p.clone(), any::<bool>()).prop_map(|(p, sub)| Op::RotateKey { p, sub }),
        1 => p.clone().prop_map(|p| Op::AccessCheck { p }),
        1 => Just(Op::Reconcile),
        2 => Just(Op::Repair),
        2 => p.clone().prop_map(|p| Op::Rollback { p }),
        2 => Just(Op::Resume),
        3 => (0..FAULT_ROUTES.len(), 0..5usize, 1..=2u32)
            .prop_map(|(route, action, nth)| Op::Fault { route, action, nth }),
        1 => Just(Op::Restart),
        2 => (p, any::<bool>(), 1..=8usize).prop_map(|(p, sub, after)| Op::Crash { p, sub, after }),
    ]
}

fn fault_action(i: usize) -> FaultAction {
    let held = u64::try_from(HOST_TIMEOUT.as_millis()).unwrap_or(1500) + 500;
    match i {
        0 => FaultAction::Status {
            status: 500,
            body: serde_json::Value::Null,
        },
        1 => FaultAction::Status {
            status: 503,
            body: serde_json::Value::Null,
        },
        2 => FaultAction::Drop,
        3 => FaultAction::CommitThenDrop,
        _ => FaultAction::CommitThenDelay { ms: held },
    }
}

fn mode(sub: bool) -> AccessMode {
    if sub {
        AccessMode::Subscription
    } else {
        AccessMode::SelfService
    }
}

fn provider(p: usize) -> ProviderRef {
    ProviderRef::new("cn-official", PROVIDERS[p])
}

/// What the operator knows: the upstream keys given per (provider, mode),
/// needed again to resume (keys are never stored).
#[derive(Debug, Default)]
struct Operator {
    keys: BTreeMap<(usize, bool), Vec<String>>,
    next: u32,
    fault_armed: bool,
}

impl Operator {
    fn new_key(&mut self) -> String {
        self.next += 1;
        // The simulator shows the last four characters: keep them unique so
        // duplicates by natural key are visible in its dump.
        format!("sim-ok-rel{}-{:04}", self.next, self.next)
    }
    /// The keys the operator gave for one (provider, mode).
    fn secrets(&self, p: usize, sub: bool) -> Vec<SecretString> {
        self.keys
            .get(&(p, sub))
            .into_iter()
            .flatten()
            .map(|k| SecretString::from(k.clone()))
            .collect()
    }
}

/// Host writes seen by the simulator so far.
fn writes(w: &World) -> usize {
    w.sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

async fn release_stale_leases(w: &World) {
    for l in w.app.list_leases(None).await.unwrap_or_default() {
        let _ = w.app.release_lease(l.id.as_str()).await;
    }
}

/// Runs one operation; returns a short outcome for the trace.
async fn step(w: &mut World, o: &mut Operator, op: &Op) -> Result<String, String> {
    let app = w.app.clone();
    let out = match op {
        Op::Import {
            p,
            sub,
            keys,
            verify,
        } => {
            let list = o.keys.entry((*p, *sub)).or_default();
            if list.is_empty() {
                for _ in 0..*keys {
                    o.next += 1;
                    list.push(format!("sim-ok-rel{}-{:04}", o.next, o.next));
                }
            }
            let keys = list.iter().map(|k| SecretString::from(k.clone())).collect();
            app.import(ImportInput {
                host: "sim".into(),
                provider: provider(*p),
                mode: mode(*sub),
                upstream_keys: keys,
                user: None,
                starting_balance: None,
                verify: *verify,
                accept_url_change: false,
                monitor: None,
            })
            .await
            .map(|r| format!("{} {}", r.batch.id, r.batch.status))
            .map_err(|e| e.to_string())
        }
        Op::AddKey { p, sub } => {
            let k = o.new_key();
            let list = o.keys.entry((*p, *sub)).or_default();
            list.push(k);
            let keys = list.iter().map(|k| SecretString::from(k.clone())).collect();
            app.import(ImportInput {
                host: "sim".into(),
                provider: provider(*p),
                mode: mode(*sub),
                upstream_keys: keys,
                user: None,
                starting_balance: None,
                verify: false,
                accept_url_change: false,
                monitor: None,
            })
            .await
            .map(|r| format!("{} {}", r.batch.id, r.batch.status))
            .map_err(|e| e.to_string())
        }
        Op::RotateKey { p, sub } => {
            let batches = app
                .provider_batches("sim", &provider(*p))
                .await
                .map_err(|e| e.to_string())?;
            // The mode asked for, else whichever batch the provider has.
            let Some(b) = batches
                .iter()
                .find(|b| b.mode == mode(*sub))
                .or_else(|| batches.first())
            else {
                return Ok("no batch to rotate".into());
            };
            let sub = &(b.mode == AccessMode::Subscription);
            let Some(old) = b.upstream_keys.first() else {
                return Ok("batch has no key".into());
            };
            let new = o.new_key();
            let r = app
                .rotate_key(
                    "sim",
                    &provider(*p),
                    mode(*sub),
                    &old.hmac[..12.min(old.hmac.len())],
                    SecretString::from(new.clone()),
                )
                .await;
            if r.is_ok() {
                // The operator's key list follows: the last-4 of the old key
                // is unknown here, so replace the oldest one.
                let list = o.keys.entry((*p, *sub)).or_default();
                if !list.is_empty() {
                    list.remove(0);
                }
                list.push(new);
            }
            r.map(|b| format!("{} {}", b.id, b.status))
                .map_err(|e| e.to_string())
        }
        Op::AccessCheck { p } => app
            .verify_provider_access("sim", &provider(*p), false)
            .await
            .map(|c| {
                c.iter()
                    .map(|c| c.verdict.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map_err(|e| e.to_string()),
        Op::Reconcile => app
            .reconcile(ReconcileRequest {
                host: "sim".into(),
                ..Default::default()
            })
            .await
            .map(|r| format!("{} ({} items)", r.run.status, r.run.items.len()))
            .map_err(|e| e.to_string()),
        Op::Repair => app
            .reconcile(ReconcileRequest {
                host: "sim".into(),
                apply: true,
                prune: true,
                clear_unhealthy: true,
                ..Default::default()
            })
            .await
            .map(|r| format!("{} repaired {}", r.run.status, r.repaired.len()))
            .map_err(|e| e.to_string()),
        Op::Rollback { p } => {
            let r = app.rollback_provider("sim", &provider(*p)).await;
            if let Ok(views) = &r
                && views
                    .iter()
                    .all(|v| v.report.status == BatchStatus::RolledBack)
            {
                o.keys.retain(|(q, _), _| q != p);
            }
            r.map(|v| {
                v.iter()
                    .map(|v| v.report.status.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .map_err(|e| e.to_string())
        }
        Op::Resume => {
            let mut outcomes = Vec::new();
            let batches = app
                .list_batches(Default::default())
                .await
                .map_err(|e| e.to_string())?;
            for b in batches.iter().filter(|b| b.status.is_live()) {
                let p = PROVIDERS
                    .iter()
                    .position(|q| *q == b.provider.provider.as_str())
                    .unwrap_or(0);
                let r = app
                    .finish_batch(
                        b.id.as_str(),
                        FinishInput {
                            upstream_keys: o.secrets(p, b.mode == AccessMode::Subscription),
                            user: None,
                            verify: false,
                        },
                    )
                    .await;
                outcomes.push(match r {
                    Ok(r) => format!("{} {}", r.batch.id, r.batch.status),
                    Err(e) => format!("{} error: {e}", b.id),
                });
            }
            Ok(outcomes.join("; "))
        }
        Op::Fault { route, action, nth } => {
            let (method, path) = FAULT_ROUTES[*route];
            w.sim.inject_fault(FaultSpec {
                method: Some(method.into()),
                path: path.into(),
                nth: *nth,
                times: 1,
                action: fault_action(*action),
            });
            o.fault_armed = true;
            return Ok(format!(
                "armed {method} {path} #{nth} {:?}",
                fault_action(*action)
            ));
        }
        Op::Restart => {
            w.restart().await;
            return Ok("restarted".into());
        }
        Op::Crash { p, sub, after } => {
            let list = o.keys.entry((*p, *sub)).or_default();
            if list.is_empty() {
                o.next += 1;
                list.push(format!("sim-ok-rel{}-{:04}", o.next, o.next));
            }
            let keys: Vec<SecretString> =
                list.iter().map(|k| SecretString::from(k.clone())).collect();
            let start = writes(w);
            let (p, sub) = (*p, *sub);
            let task = tokio::spawn(async move {
                app.import(ImportInput {
                    host: "sim".into(),
                    provider: provider(p),
                    mode: mode(sub),
                    upstream_keys: keys,
                    user: None,
                    starting_balance: None,
                    verify: false,
                    accept_url_change: false,
                    monitor: None,
                })
                .await
            });
            let mut finished = false;
            while writes(w) < start + after {
                if task.is_finished() {
                    finished = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            task.abort();
            let _ = task.await;
            w.restart().await;
            release_stale_leases(w).await;
            return Ok(format!(
                "killed after {} writes{}",
                writes(w) - start,
                if finished { " (import had ended)" } else { "" }
            ));
        }
    };
    out.map_err(|e| e.to_string())
}

/// A no-fault reconcile right after a successful no-fault repair is
/// `in_sync` when every batch is applied or rolled back and no journal
/// intent is still pending (a crash mid-import leaves intents that only
/// resume or rollback may resolve: repair rightly leaves their objects alone).
async fn check_repair_converged(w: &World) -> Option<String> {
    let recorded = w.recorded().await;
    let settled = recorded.iter().all(|r| {
        matches!(
            r.batch.status,
            BatchStatus::Applied | BatchStatus::RolledBack
        ) && r
            .journal
            .iter()
            .all(|e| e.state != crm_domain::JournalState::Pending)
    });
    if !settled {
        return None;
    }
    match w
        .app
        .reconcile(ReconcileRequest {
            host: "sim".into(),
            ..Default::default()
        })
        .await
    {
        Ok(r) if r.run.status == ReconcileStatus::InSync => None,
        Ok(r) => Some(format!(
            "reconcile after repair is {}: {:?}",
            r.run.status,
            r.run
                .items
                .iter()
                .map(|i| format!("{} {} {}", i.category, i.kind, i.name))
                .collect::<Vec<_>>()
        )),
        Err(e) => Some(format!("reconcile after repair failed: {e}")),
    }
}

async fn run_case(ops: Vec<Op>, steps: &AtomicU64) -> Result<(), String> {
    let mut w = World::start().await;
    let mut o = Operator::default();
    let mut trace = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let armed_before = o.fault_armed;
        let outcome = step(&mut w, &mut o, op).await;
        let is_fault_op = matches!(op, Op::Fault { .. });
        trace.push(format!("{i:>2}. {op:?} -> {outcome:?}"));
        if !is_fault_op && armed_before {
            // A fault is for the next operation only.
            w.sim.clear_faults();
            o.fault_armed = false;
        }
        steps.fetch_add(1, Ordering::Relaxed);
        let mut v = w.violations().await;
        if matches!(op, Op::Repair) && outcome.is_ok() && !armed_before {
            v.extend(check_repair_converged(&w).await);
        }
        if !v.is_empty() {
            return Err(format!(
                "after step {i}:\n  {}\ntrace:\n{}",
                v.join("\n  "),
                trace.join("\n")
            ));
        }
    }
    if std::env::var_os("CRM_RELIABILITY_TRACE").is_some() {
        eprintln!("case ok:\n{}", trace.join("\n"));
    }
    Ok(())
}

#[test]
fn random_operation_sequences_keep_every_invariant() {
    let budget = Budget::from_env();
    let tally = Tally::new("state_machine");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&budget.seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: budget.cases,
            max_shrink_iters: if budget.long { 256 } else { 64 },
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let steps = AtomicU64::new(0);
    let cases = AtomicU64::new(0);
    let strategy = prop::collection::vec(op(), 1..=budget.max_steps);
    let result = runner.run(&strategy, |ops| {
        cases.fetch_add(1, Ordering::Relaxed);
        rt.block_on(run_case(ops, &steps))
            .map_err(TestCaseError::fail)
    });
    let steps = steps.load(Ordering::Relaxed);
    for _ in 0..steps {
        tally.trial();
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => {
            tally.violation(format!("{reason}\nminimal sequence: {minimal:#?}"))
        }
        Err(TestError::Abort(reason)) => tally.violation(format!("aborted: {reason}")),
    }
    tally.finish(&format!(
        "cases={} steps={steps} seed={}",
        cases.load(Ordering::Relaxed),
        budget.seed
    ));
}
