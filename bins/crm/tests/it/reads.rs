//! Every read command's `--output json`, snapshotted with ids, times,
//! fingerprints and ports redacted, after a real import through the binary.

use crate::support::*;
use std::time::Duration;

/// Imports deepseek (subscription) and kimi (self_service) onto a fresh
/// simulated host through the binary, at `-vvv`.
pub async fn imported() -> HostEnv {
    let env = HostEnv::start(Duration::ZERO).await;
    let ds = env.keys_file("deepseek.keys", &["sim-ok-deepseek-canary-7f3a91"]);
    let kimi = env.keys_file("kimi.keys", &["sim-ok-kimi-canary-2c8d44"]);
    env.run(&[
        "-vvv",
        "provider",
        "import",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--mode",
        "subscription",
        "--upstream-keys-file",
        &ds,
    ])
    .expect(2);
    env.run(&[
        "-vvv",
        "provider",
        "import",
        "cn-official/kimi",
        "--host",
        "sim",
        "--mode",
        "self_service",
        "--upstream-keys-file",
        &kimi,
    ])
    .expect(2);
    env
}

pub const CANARY_UPSTREAM: [&str; 2] =
    ["sim-ok-deepseek-canary-7f3a91", "sim-ok-kimi-canary-2c8d44"];

/// `(snapshot name, arguments)` of every read command.
pub fn read_commands(batch: &str, run: &str) -> Vec<(String, Vec<String>)> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        ("pack_list".into(), v(&["pack", "list"])),
        ("pack_show".into(), v(&["pack", "show", "cn-official"])),
        ("host_list".into(), v(&["host", "list"])),
        ("host_show".into(), v(&["host", "show", "sim"])),
        ("provider_list".into(), v(&["provider", "list"])),
        (
            "provider_list_host".into(),
            v(&["provider", "list", "--host", "sim"]),
        ),
        ("provider_status".into(), v(&["provider", "status"])),
        (
            "provider_show".into(),
            v(&["provider", "show", "cn-official/kimi"]),
        ),
        ("batch_list".into(), v(&["batch", "list"])),
        ("batch_show".into(), v(&["batch", "show", batch])),
        ("audit".into(), v(&["audit"])),
        (
            "reconcile_history".into(),
            v(&["reconcile", "--host", "sim", "--history"]),
        ),
        (
            "reconcile_run".into(),
            v(&["reconcile", "--host", "sim", "--run", run]),
        ),
        ("lease_list".into(), v(&["lease", "list"])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_print_stable_json() {
    let env = imported().await;
    // A read-only reconcile gives the run commands something to show.
    let rec = env
        .run(&["reconcile", "--host", "sim", "--output", "json"])
        .expect(0);
    let run_id = rec.json()["run"]["id"].as_str().unwrap().to_owned();
    let batches = env
        .run(&[
            "batch",
            "list",
            "--provider",
            "cn-official/kimi",
            "--output",
            "json",
        ])
        .expect(0);
    let batch = batches.json()[0]["id"].as_str().unwrap().to_owned();

    for (name, args) in read_commands(&batch, &run_id) {
        let mut argv: Vec<&str> = vec!["--output", "json"];
        argv.extend(args.iter().map(String::as_str));
        let run = env.run(&argv).expect(0);
        let _ = run.json();
        insta::with_settings!({ filters => redactions(), snapshot_suffix => name.clone() }, {
            insta::assert_snapshot!("read", renumber_host_ids(&run.stdout));
        });
        // The table form of the same command works too.
        env.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .expect(0);
    }
}
