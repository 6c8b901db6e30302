//! Server crash test: the real `crm-server` binary is SIGKILLed while
//! imports run, at a random host write (seeded). After a restart on the same
//! database, every operation is finished or marked `interrupted` (never left
//! `running`), the batches resume clean through the API, and the simulator
//! holds no orphan and no duplicate; the database passes SQLite's integrity
//! and foreign-key checks.

use crate::served::Served;
use crm_domain::{BatchStatus, JournalState};
use crm_reliability::{Budget, Tally, db, invariants};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::Duration;

const PROVIDERS: [&str; 2] = ["deepseek", "kimi"];

fn keys(p: &str, trial: u32) -> Vec<String> {
    (1..=2)
        .map(|i| format!("sim-ok-{p}{trial}-{i}{:03}", trial % 1000))
        .collect()
}

/// Host writes the simulator has seen.
fn writes(s: &Served) -> usize {
    s.sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .count()
}

async fn start_imports(s: &Served, trial: u32, rng: &mut StdRng) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for p in PROVIDERS {
        let mode = if rng.random_bool(0.5) {
            "subscription"
        } else {
            "self_service"
        };
        let (st, op) = s
            .call_with(
                "POST",
                &format!("/api/providers/cn-official/{p}/import"),
                Some(
                    json!({"host": "sim", "mode": mode, "upstream_keys": keys(p, trial),
                    "verify": rng.random_bool(0.5)}),
                ),
                crate::served::TOKEN,
                Some(&format!("crash-{trial}-{p}")),
            )
            .await;
        assert_eq!(st, 202, "{op}");
        ops.push((
            p.to_owned(),
            format!("/api/operations/{}", op["id"].as_str().expect("op id")),
        ));
    }
    ops
}

/// Recoveries the API could not do alone (see `docs/RELIABILITY.md`).
#[derive(Debug, Default)]
pub struct Findings {
    /// Leases the killed server still held after the restart.
    pub dead_server_lease: u32,
    /// Applied batches with pending access-closure intents (the API's resume finishes them).
    pub applied_with_pending_closure: u32,
}

/// `POST /api/import-batches/{id}/resume`, waited for: (batch status, error).
pub async fn resume(s: &Served, p: &str, id: &str, trial: u32) -> (Option<String>, Option<String>) {
    let (st, op) = s
        .call(
            "POST",
            &format!("/api/import-batches/{id}/resume?wait=true"),
            Some(json!({"upstream_keys": keys(p, trial)})),
        )
        .await;
    let op = if st == 202 {
        s.finish(&format!(
            "/api/operations/{}",
            op["id"].as_str().unwrap_or("")
        ))
        .await
    } else {
        op
    };
    (
        op.pointer("/result/batch/status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        op["error"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| (!matches!(st, 200 | 202)).then(|| format!("{st} {op}"))),
    )
}

async fn all_finished(s: &Served, ops: &[(String, String)]) -> bool {
    for (_, loc) in ops {
        let (_, op) = s.call("GET", loc, None).await;
        if op["status"] == "running" || op["status"] == "queued" {
            return false;
        }
    }
    true
}

async fn one_trial(
    trial: u32,
    rng: &mut StdRng,
    tally: &Tally,
    table: &mut Vec<String>,
    findings: &mut Findings,
) {
    let started = std::time::Instant::now();
    let mut s = Served::start(|_, _| {}).await;
    s.setup().await;
    // Host latency stretches the imports so the kill lands inside them.
    s.sim.set_latency(Duration::from_millis(15));
    let before = writes(&s);
    let kill_at = before + rng.random_range(1..=24);
    let ops = start_imports(&s, trial, rng).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Polling the simulator: the point is to stop the server at a chosen
    // host write, not to wait for it.
    let mut polls = 0u32;
    while writes(&s) < kill_at && std::time::Instant::now() < deadline {
        polls += 1;
        if polls.is_multiple_of(20) && all_finished(&s, &ops).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed_after = writes(&s) - before;
    s.crash_and_restart();
    s.sim.set_latency(Duration::ZERO);
    tally.trial();

    // Every operation is finished or marked interrupted: never `running`.
    let mut states = Vec::new();
    for (p, loc) in &ops {
        let (st, op) = s.call("GET", loc, None).await;
        let status = op["status"].as_str().unwrap_or("?").to_owned();
        if st != 200 || !matches!(status.as_str(), "succeeded" | "failed" | "interrupted") {
            tally.violation(format!(
                "trial {trial}: operation {loc} ({p}) after restart: {st} {op}"
            ));
        }
        states.push(format!("{p}:{status}"));
    }

    // crm reaps the leases of a dead holder process when it opens the
    // database, so the restarted server should have left none; any left is
    // a finding, released the documented way (`crm lease release <id>`).
    let leases = crate::served::cli(&s.db(), &["--output", "json", "lease", "list"]);
    let leases: Value = serde_json::from_slice(&leases.stdout).unwrap_or(Value::Null);
    for l in leases.as_array().cloned().unwrap_or_default() {
        let id = l["id"].as_str().unwrap_or_default();
        findings.dead_server_lease += 1;
        let out = crate::served::cli(&s.db(), &["lease", "release", id]);
        if !out.status.success() {
            tally.violation(format!("trial {trial}: crm lease release {id}: {out:?}"));
        }
    }

    // Resume every batch the crash left unfinished, through the API.
    let mut resumed = Vec::new();
    for r in s.recorded().await {
        let p = r.batch.provider.provider.as_str().to_owned();
        let id = r.batch.id.to_string();
        let pending = r.journal.iter().any(|e| e.state == JournalState::Pending);
        if r.batch.status == BatchStatus::Applied {
            if pending {
                // Killed while closing access: the API's resume finishes the
                // closure and verifies it.
                findings.applied_with_pending_closure += 1;
                match resume(&s, &p, &id, trial).await {
                    (Some(status), _) if status == "applied" => {
                        resumed.push(format!("{p}:closure-finished"))
                    }
                    (status, err) => tally.violation(format!(
                        "trial {trial}: finishing the closure of {p} batch {id} ended {status:?}: {err:?}"
                    )),
                }
            }
            continue;
        }
        match resume(&s, &p, &id, trial).await {
            (Some(status), _) if status == "applied" => resumed.push(format!("{p}:applied")),
            (status, err) => tally.violation(format!(
                "trial {trial}: resume of {p} batch {id} after the crash ended {status:?}: {err:?}"
            )),
        }
    }

    // No orphan, no duplicate, a consistent database.
    let recorded = s.recorded().await;
    let mut v = invariants::check(&s.sim.state_dump(), &recorded);
    v.extend(db::consistency(&s.db()));
    for x in v {
        tally.violation(format!(
            "trial {trial} (killed after {killed_after} writes): {x}"
        ));
    }
    table.push(format!(
        "trial {trial:>2}: killed after {killed_after:>2} host writes; ops {}; resumed {} ({} ms)",
        states.join(","),
        resumed.join(","),
        started.elapsed().as_millis()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_real_server_mid_import_then_restart_resumes_clean() {
    let budget = Budget::from_env();
    let tally = Tally::new("server_crash");
    let mut rng = StdRng::seed_from_u64(budget.seed ^ 0xC4A5);
    let mut table = Vec::new();
    let mut findings = Findings::default();
    for trial in 0..budget.crash_trials {
        one_trial(trial, &mut rng, &tally, &mut table, &mut findings).await;
    }
    eprintln!("{}", table.join("\n"));
    tally.finish(&format!(
        "seed={} findings: dead_server_lease={} applied_with_pending_closure={}",
        budget.seed, findings.dead_server_lease, findings.applied_with_pending_closure
    ));
}

/// Known gap (reported): a server restarted after a SIGKILL cannot resume
/// the batch its predecessor was importing until the dead process's lease
/// expires (10 minutes): `POST /api/import-batches/{id}/resume` fails with
/// "held by token:admin (pid <dead pid>)" and the API has no route to release
/// a lease. This test stays red until the restarted server can resume at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_without_waiting_for_its_dead_predecessors_lease() {
    let mut s = Served::start(|_, _| {}).await;
    s.setup().await;
    s.sim.set_latency(Duration::from_millis(15));
    let before = writes(&s);
    let (st, op) = s
        .call(
            "POST",
            "/api/providers/cn-official/deepseek/import",
            Some(json!({"host": "sim", "mode": "subscription", "upstream_keys": keys("deepseek", 99)})),
        )
        .await;
    assert_eq!(st, 202, "{op}");
    while writes(&s) < before + 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    s.crash_and_restart();
    s.sim.set_latency(Duration::ZERO);
    let batch = s
        .recorded()
        .await
        .into_iter()
        .next()
        .expect("the killed import left its batch");
    let (status, error) = resume(&s, "deepseek", batch.batch.id.as_str(), 99).await;
    assert_eq!(
        status.as_deref(),
        Some("applied"),
        "resume through the API right after the restart: {error:?}"
    );
}
