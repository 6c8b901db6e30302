//! Exit codes (docs/design.md §3): 0 nothing to change, 2 changes or drift, 1 error.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_says_2_before_an_import_and_0_after_it() {
    let env = HostEnv::start(Duration::ZERO).await;
    let keys = env.keys_file("k", &["sim-ok-deepseek-exit-1"]);
    let preview = [
        "provider",
        "preview",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--mode",
        "self_service",
        "--upstream-keys-file",
        &keys,
    ];
    let before = env.sim.state_dump();
    env.run(&preview).expect(2);
    assert_eq!(
        env.sim.state_dump(),
        before,
        "preview writes nothing to the host"
    );

    let mut import = preview.to_vec();
    import[1] = "import";
    env.run(&import).expect(2);
    env.run(&preview).expect(0);
    // Importing again changes nothing.
    env.run(&import).expect(0);

    // Drift: an account deleted behind crm's back.
    let dump = env.sim.state_dump();
    let id = dump["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap_or_default().starts_with("crm-"))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    env.run(&["reconcile", "--host", "sim"]).expect(0);
    env.sim.delete_object("accounts", id).unwrap();
    env.run(&["reconcile", "--host", "sim"]).expect(2);
    env.run(&preview).expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_refusing_host_is_exit_1_with_an_actionable_message() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let envs = [("DEAD_KEY", "admin-0000")];
    crm(
        dir.path(),
        &[
            "host",
            "add",
            "dead",
            "--url",
            &url,
            "--admin-key-env",
            "DEAD_KEY",
        ],
        &envs,
    )
    .expect(0);
    let run = crm(dir.path(), &["host", "probe", "dead"], &envs).expect(1);
    assert!(
        run.stderr.starts_with("error: host unreachable"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    crm(
        dir.path(),
        &["pack", "install", "--bundled", "cn-official"],
        &envs,
    )
    .expect(0);
    let run = crm(
        dir.path(),
        &[
            "--host-timeout",
            "2",
            "provider",
            "preview",
            "cn-official/kimi",
            "--host",
            "dead",
            "--mode",
            "self_service",
        ],
        &envs,
    )
    .expect(1);
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);

    // A live host that refuses the admin key.
    let env = HostEnv::start(Duration::ZERO).await;
    let wrong = [(
        "WRONG_KEY",
        "admin-1111111111111111111111111111111111111111111111111111111111111111",
    )];
    crm(
        env.path(),
        &[
            "host",
            "add",
            "wrong",
            "--url",
            &env.sim.base_url(),
            "--admin-key-env",
            "WRONG_KEY",
        ],
        &wrong,
    )
    .expect(0);
    let run = crm(env.path(), &["host", "probe", "wrong"], &wrong).expect(1);
    assert!(run.stderr.contains("error: "), "{}", run.stderr);

    // Unknown names are errors that say what to do.
    let run = env.run(&["batch", "show", "b-nope"]).expect(1);
    assert!(run.stderr.contains("crm batch list"), "{}", run.stderr);
    let run = env.run(&["host", "show", "nope"]).expect(1);
    assert!(run.stderr.contains("crm host list"), "{}", run.stderr);
}

/// Repair recreates an account deleted behind crm's back only with its key:
/// crm keeps upstream keys as fingerprints, so without the key the step is
/// blocked and names the key; with `--upstream-keys-file` it is recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_of_a_missing_account_needs_and_takes_its_upstream_key() {
    let env = HostEnv::start(Duration::ZERO).await;
    let keys = env.keys_file("k", &["sim-ok-deepseek-repair-1"]);
    env.run(&[
        "provider",
        "import",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--mode",
        "self_service",
        "--upstream-keys-file",
        &keys,
    ])
    .expect(2);
    let crm_accounts = |env: &HostEnv| -> Vec<i64> {
        env.sim.state_dump()["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["name"].as_str().unwrap_or_default().starts_with("crm-"))
            .map(|a| a["id"].as_i64().unwrap())
            .collect()
    };
    let gone = crm_accounts(&env)[0];
    env.sim.delete_object("accounts", gone).unwrap();

    let without = env
        .run(&["--output", "json", "reconcile", "--host", "sim", "--apply"])
        .expect(2);
    assert!(
        crm_accounts(&env).is_empty(),
        "nothing recreated without the key"
    );
    let plan = without.json()["repair_plan"].to_string();
    assert!(plan.contains("blocked"), "{plan}");
    assert!(plan.contains("--upstream-keys-file"), "{plan}");

    env.run(&[
        "reconcile",
        "--host",
        "sim",
        "--apply",
        "--upstream-keys-file",
        &keys,
    ])
    .expect(2);
    assert_eq!(crm_accounts(&env).len(), 1, "recreated exactly once");
    env.run(&["reconcile", "--host", "sim"]).expect(0);
}

/// clap's default for a usage error is 2, crm's "changes present": a CI step
/// that applies on 2 would apply after a typo (issue 19, item 5).
#[test]
fn a_typo_is_exit_1_and_help_and_version_are_0() {
    let dir = tempfile::tempdir().unwrap();
    let typo = crm(
        dir.path(),
        &["provider", "previw", "cn-official/deepseek"],
        &[],
    )
    .expect(1);
    assert!(typo.stderr.contains("previw"), "{}", typo.stderr);
    crm(dir.path(), &["provider", "preview", "--no-such-flag"], &[]).expect(1);
    crm(dir.path(), &["--help"], &[]).expect(0);
    crm(dir.path(), &["provider", "--help"], &[]).expect(0);
    crm(dir.path(), &["--version"], &[]).expect(0);
}
