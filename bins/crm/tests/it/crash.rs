//! Crash test (issue 6): the real binary is killed with SIGKILL at several
//! points of an import; after it, `crm batch resume` and, separately,
//! `crm batch rollback` must end clean: no orphans, no duplicates, and after
//! a rollback nothing of crm's left on the host.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

const KEYS: [&str; 2] = ["sim-ok-deepseek-crash-a1", "sim-ok-deepseek-crash-b2"];

fn import_args(keys: &str) -> Vec<&str> {
    vec![
        "provider",
        "import",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--mode",
        "subscription",
        "--upstream-keys-file",
        keys,
    ]
}

/// Admin mutations the simulator has seen (the import's host writes).
fn mutations(env: &HostEnv) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.path.starts_with("/api/v1/admin"))
        .count()
}

/// `(dump kind, host id, label)` of every object carrying crm's marker or name.
fn crm_objects(env: &HostEnv) -> Vec<(String, i64, String)> {
    let d = env.sim.state_dump();
    let mut out = Vec::new();
    for (kind, name_field, text_field) in [
        ("accounts", "name", "notes"),
        ("groups", "name", "description"),
        ("channels", "name", "description"),
        ("users", "email", "notes"),
        ("api_keys", "name", ""),
        ("subscriptions", "", "notes"),
    ] {
        for o in d[kind].as_array().into_iter().flatten() {
            let name = o[name_field].as_str().unwrap_or_default();
            let marked = o[text_field]
                .as_str()
                .is_some_and(|t| t.contains("[crm:batch="));
            if marked || name.starts_with("crm-") {
                let label = if name.is_empty() {
                    format!("{kind} of user {}", o["user_id"])
                } else {
                    format!("{kind} {name}")
                };
                out.push((kind.to_owned(), o["id"].as_i64().unwrap_or(-1), label));
            }
        }
    }
    out.sort();
    out
}

fn labels(objects: &[(String, i64, String)]) -> Vec<String> {
    let mut v: Vec<String> = objects.iter().map(|o| o.2.clone()).collect();
    v.sort();
    v
}

/// How many crm objects of each kind.
fn kinds(objects: &[(String, i64, String)]) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for (k, _, _) in objects {
        *m.entry(k.clone()).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

fn dump_kind(resource_kind: &str) -> &'static str {
    match resource_kind {
        "account" => "accounts",
        "group" => "groups",
        "channel" => "channels",
        "user" => "users",
        "user_api_key" => "api_keys",
        "subscription" => "subscriptions",
        _ => "other",
    }
}

/// `(dump kind, host id)` of every object the batch's journal knows.
fn journaled(detail: &Value) -> BTreeSet<(String, i64)> {
    let mut out = BTreeSet::new();
    for e in detail["journal"].as_array().into_iter().flatten() {
        if let Some(id) = e["host_object_id"].as_i64() {
            out.insert((dump_kind(e["kind"].as_str().unwrap_or("")).to_owned(), id));
        }
    }
    for r in detail["resources"].as_array().into_iter().flatten() {
        if let Some(id) = r["host_object_id"].as_i64() {
            out.insert((dump_kind(r["kind"].as_str().unwrap_or("")).to_owned(), id));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Resume,
    Rollback,
}

/// Starts the import as a child process and SIGKILLs it once the host has
/// seen `k` mutations; returns the batch id it left behind.
fn kill_import_after(env: &HostEnv, keys: &str, k: usize) -> String {
    env.sim.clear_requests();
    let mut child = env
        .command(&import_args(keys))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("crm starts");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Polling the simulator's request log: the point of the test is to stop
    // the process at a given host write, not to wait for a server.
    while mutations(env) < k {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before {k} host writes");
        }
        assert!(Instant::now() < deadline, "no {k}th host write within 60s");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let batches = env
        .run(&["--output", "json", "batch", "list"])
        .expect(0)
        .json();
    let batches = batches.as_array().unwrap();
    assert_eq!(batches.len(), 1, "k={k}: one batch after the kill");
    // The dead process still holds its lease: an operator sees it, and
    // releases exactly that one.
    let leases = env
        .run(&["--output", "json", "lease", "list"])
        .expect(0)
        .json();
    for l in leases.as_array().unwrap() {
        let holder = l["holder"].as_str().unwrap();
        assert!(holder.contains(&format!("pid {pid}")), "k={k}: {holder}");
        env.run(&["lease", "release", l["id"].as_str().unwrap()])
            .expect(0);
    }
    batches[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_import_then_resume_or_rollback_ends_clean() {
    // A clean import first: how many host writes it makes and what it leaves.
    let reference = HostEnv::start(Duration::ZERO).await;
    let keys = reference.keys_file("keys", &KEYS);
    reference.sim.clear_requests();
    reference.run(&import_args(&keys)).expect(2);
    let writes = mutations(&reference);
    let expected = labels(&crm_objects(&reference));
    let expected_kinds = kinds(&crm_objects(&reference));
    eprintln!("a clean import makes {writes} host writes and leaves {expected:#?}");
    assert!(writes >= 6, "{writes}");

    let mut table = Vec::new();
    for k in 1..=writes {
        for then in [Then::Resume, Then::Rollback] {
            let env = HostEnv::start(Duration::from_millis(10)).await;
            let keys = env.keys_file("keys", &KEYS);
            let batch = kill_import_after(&env, &keys, k);
            let status_after_kill = env
                .run(&["--output", "json", "batch", "show", &batch])
                .expect(0)
                .json()["batch"]["status"]
                .as_str()
                .unwrap()
                .to_owned();
            let left_by_kill = crm_objects(&env).len();
            let case = format!("k={k} {then:?}");

            let run = match then {
                Then::Resume => {
                    env.run(&["batch", "resume", &batch, "--upstream-keys-file", &keys])
                }
                Then::Rollback => env.run(&["batch", "rollback", &batch]),
            };
            assert!(
                run.code == 0 || run.code == 2,
                "{case}: exit {}\n{}\n{}",
                run.code,
                run.stdout,
                run.stderr
            );
            let detail = env
                .run(&["--output", "json", "batch", "show", &batch])
                .expect(0)
                .json();
            let status = detail["batch"]["status"].as_str().unwrap().to_owned();
            let objects = crm_objects(&env);
            match then {
                Then::Resume => {
                    assert_eq!(status, "applied", "{case}: {detail:#}");
                    assert_eq!(
                        detail["batch"]["access_status"], "subscription_ready",
                        "{case}: resume closes and verifies access too"
                    );
                    // No orphans: everything of crm's on the host is in the journal.
                    let known = journaled(&detail);
                    for (kind, id, label) in &objects {
                        assert!(
                            known.contains(&(kind.clone(), *id)),
                            "{case}: orphan {label}"
                        );
                    }
                    // No duplicates: exactly what a clean import leaves
                    // (names carry installation-specific fingerprints, so
                    // compare objects per kind).
                    assert_eq!(kinds(&objects), expected_kinds, "{case}: {objects:#?}");
                    let names = labels(&objects);
                    let unique: BTreeSet<&String> = names.iter().collect();
                    assert_eq!(unique.len(), names.len(), "{case}: duplicates {names:#?}");
                }
                Then::Rollback => {
                    assert_eq!(status, "rolled_back", "{case}: {detail:#}");
                    assert!(objects.is_empty(), "{case}: left {objects:#?}");
                }
            }
            table.push(format!(
                "{case:<14} after kill: {status_after_kill:<10} {left_by_kill:>2} crm objects; \
                 then {status:<12} {:>2} crm objects",
                objects.len()
            ));
        }
    }
    eprintln!(
        "crash points ({} cases):\n{}",
        table.len(),
        table.join("\n")
    );
    assert_eq!(table.len(), 2 * writes);
}
