//! The writing commands beyond import: key rotation, subscriptions, a
//! provider-scoped reconcile and rollback, pack lint, and lease release.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_assign_reconcile_and_roll_back_through_the_binary() {
    let env = HostEnv::start(Duration::ZERO).await;
    let kimi = env.keys_file("kimi", &["sim-ok-kimi-rotate-1111"]);
    let ds = env.keys_file("ds", &["sim-ok-deepseek-assign-1"]);
    let import = |p: &str, mode: &str, keys: &str| {
        env.run(&[
            "provider",
            "import",
            p,
            "--host",
            "sim",
            "--mode",
            mode,
            "--upstream-keys-file",
            keys,
        ])
        .expect(2)
    };
    import("cn-official/kimi", "self_service", &kimi);
    import("cn-official/deepseek", "subscription", &ds);

    // Rotate kimi's upstream key in place: the batch now names the new key.
    let kimi_batch = env
        .run(&[
            "--output",
            "json",
            "batch",
            "list",
            "--provider",
            "cn-official/kimi",
        ])
        .expect(0)
        .json()[0]
        .clone();
    let old = kimi_batch["upstream_keys"][0]["hmac"].as_str().unwrap()[..8].to_owned();
    let rotated = env
        .command(&[
            "--output",
            "json",
            "provider",
            "rotate-key",
            "cn-official/kimi",
            "--host",
            "sim",
            "--mode",
            "self_service",
            "--old",
            &old,
            "--new-key-env",
            "NEW_KIMI_KEY",
        ])
        .env("NEW_KIMI_KEY", "sim-ok-kimi-rotate-2222")
        .output()
        .unwrap();
    let rotated = finish(&["provider", "rotate-key"], rotated).expect(2);
    assert_eq!(
        rotated.json()["upstream_keys"][0]["last4"],
        "2222",
        "{}",
        rotated.stdout
    );
    assert!(!rotated.stdout.contains("sim-ok-kimi-rotate-2222"));
    env.run(&["provider", "access", "cn-official/kimi", "--host", "sim"])
        .expect(0);

    // Give kimi's probe user a deepseek subscription: created once, then reused.
    let dump = env.sim.state_dump();
    let email = dump["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .find(|e| e.starts_with("crm-probe-cn-official.kimi-"))
        .unwrap();
    let assign = [
        "provider",
        "assign-subscriptions",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--user",
        &email,
    ];
    env.run(&assign).expect(2);
    env.run(&assign).expect(0);

    // Provider-scoped reconcile, then roll deepseek back: kimi stays intact.
    env.run(&[
        "provider",
        "reconcile",
        "cn-official/deepseek",
        "--host",
        "sim",
    ])
    .expect(0);
    let rb = env
        .run(&[
            "--output",
            "json",
            "provider",
            "rollback",
            "cn-official/deepseek",
            "--host",
            "sim",
        ])
        .expect(2);
    assert_eq!(
        rb.json()[0]["report"]["status"],
        "rolled_back",
        "{}",
        rb.stdout
    );
    env.run(&[
        "provider",
        "rollback",
        "cn-official/deepseek",
        "--host",
        "sim",
    ])
    .expect(0);
    env.run(&["provider", "access", "cn-official/kimi", "--host", "sim"])
        .expect(0);
    env.run(&["reconcile", "--host", "sim"]).expect(0);
    let statuses: Vec<String> = env
        .run(&["--output", "json", "batch", "list"])
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{} {}",
                b["provider"].as_str().unwrap(),
                b["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses.contains(&"cn-official/deepseek rolled_back".to_owned()),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&"cn-official/kimi applied".to_owned()),
        "{statuses:?}"
    );
}

#[test]
fn pack_lint_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "schema_version = 1\npack_id = \"x\"\n").unwrap();
    let run = crm(dir.path(), &["pack", "lint", bad.to_str().unwrap()], &[]).expect(1);
    assert!(run.stdout.contains("bad.toml:"), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 1 pack files are invalid"),
        "{}",
        run.stderr
    );
    let schema = crm(dir.path(), &["pack", "schema"], &[]).expect(0).json();
    assert!(schema.is_object());
    for shell in ["bash", "zsh", "fish"] {
        let run = crm(dir.path(), &["completions", shell], &[]).expect(0);
        assert!(run.stdout.contains("crm"), "{shell}");
    }
    let run = crm(dir.path(), &["lease", "release", "l-none"], &[]).expect(1);
    assert!(run.stderr.contains("crm lease list"), "{}", run.stderr);
}

#[test]
fn a_config_file_sets_the_database_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("crm.toml");
    std::fs::write(&cfg, "db = \"from-config.db\"\nhost_timeout_secs = 5\n").unwrap();
    let mut cmd = command(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "pack",
            "install",
            "--bundled",
            "cn-official",
        ],
        &[],
    );
    cmd.env_remove("CRM_DB");
    finish(&["pack", "install"], cmd.output().unwrap()).expect(0);
    assert!(dir.path().join("from-config.db").exists());
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "colour = \"blue\"\n").unwrap();
    let run = crm(
        dir.path(),
        &["--config", bad.to_str().unwrap(), "audit"],
        &[],
    )
    .expect(1);
    assert!(run.stderr.contains("is not valid"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_importing_the_same_provider_share_one_database_safely() {
    let env = HostEnv::start(Duration::from_millis(10)).await;
    let keys = env.keys_file("k", &["sim-ok-kimi-twice-1"]);
    let args = [
        "provider",
        "import",
        "cn-official/kimi",
        "--host",
        "sim",
        "--mode",
        "self_service",
        "--upstream-keys-file",
        &keys,
    ];
    let children: Vec<_> = (0..2)
        .map(|_| {
            env.command(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| finish(&args, c.wait_with_output().unwrap()))
        .collect();
    let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    codes.sort();
    eprintln!("exit codes {codes:?}");
    // One applies; the other is refused with the holder named, or (if it
    // started after the first finished) finds nothing to do.
    assert!(codes == [1, 2] || codes == [0, 2], "{runs:#?}");
    if codes == [1, 2] {
        let refused = runs.iter().find(|r| r.code == 1).unwrap();
        assert!(refused.stderr.contains("is held by"), "{}", refused.stderr);
    }
    let accounts = env.sim.state_dump()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"].as_str().unwrap_or_default().starts_with("crm-"))
        .count();
    assert_eq!(accounts, 1, "one set of objects on the host");
    let batches = env
        .run(&["--output", "json", "batch", "list"])
        .expect(0)
        .json();
    assert_eq!(batches.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_set_stores_the_hosts_own_funds_thresholds_and_refuses_bad_values() {
    let env = HostEnv::start(Duration::ZERO).await;
    let shown = env
        .run(&["host", "set", "sim", "--low-balance", "50cny"])
        .expect(0);
    assert!(
        shown.stdout.contains("every provider: low balance 50 CNY"),
        "{}",
        shown.stdout
    );
    let json = env
        .run(&[
            "--output",
            "json",
            "host",
            "set",
            "sim",
            "--provider",
            "cn-official/kimi",
            "--low-quota-percent",
            "15",
        ])
        .expect(0)
        .json();
    assert_eq!(
        json["funds_thresholds"],
        serde_json::json!({
            "all": {"low_balance": {"amount": 50.0, "currency": "CNY"}},
            "providers": {"cn-official/kimi": {"low_quota_percent": 15.0}}
        })
    );
    let show = env.run(&["host", "show", "sim"]).expect(0);
    assert!(
        show.stdout.contains("cn-official/kimi: low quota 15%"),
        "{}",
        show.stdout
    );

    // Bad values and typos exit 1 with the fix, and change nothing.
    for (args, says) in [
        (
            vec!["host", "set", "sim", "--low-balance", "lots"],
            "e.g. 20CNY",
        ),
        (
            vec!["host", "set", "sim", "--low-quota-percent", "150"],
            "0 to 100",
        ),
        (vec!["host", "set", "sim"], "nothing to set"),
        (
            vec![
                "host",
                "set",
                "sim",
                "--provider",
                "cn-official/kimmi",
                "--clear",
            ],
            "kimmi",
        ),
        (vec!["host", "set", "nowhere", "--clear"], "nowhere"),
    ] {
        let run = env.run(&args).expect(1);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let after = env
        .run(&["--output", "json", "host", "show", "sim"])
        .expect(0)
        .json();
    assert_eq!(after["funds_thresholds"], json["funds_thresholds"]);

    // Clearing both scopes goes back to the packs'.
    env.run(&[
        "host",
        "set",
        "sim",
        "--provider",
        "cn-official/kimi",
        "--clear",
    ])
    .expect(0);
    let cleared = env.run(&["host", "set", "sim", "--clear"]).expect(0);
    assert!(cleared.stdout.contains("the packs'"), "{}", cleared.stdout);
}

/// A plain-http host outside loopback is registered with a warning: on
/// stderr from `host add`, as a line of `host show`, and in the JSON view;
/// an https host gets none.
#[test]
fn a_plain_http_host_is_added_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("RELAY_ADMIN_KEY", "admin-0123456789abcdef")];
    let add = crm(
        dir.path(),
        &[
            "host",
            "add",
            "relay",
            "--url",
            "http://relay.example.com:8080",
            "--admin-key-env",
            "RELAY_ADMIN_KEY",
        ],
        &envs,
    )
    .expect(0);
    let show = crm(dir.path(), &["host", "show", "relay"], &envs).expect(0);
    insta::with_settings!({ filters => redactions() }, {
        insta::assert_snapshot!("plain_http_host_add_stderr", add.stderr);
        insta::assert_snapshot!("plain_http_host_show", show.stdout);
    });
    let json = crm(
        dir.path(),
        &["--output", "json", "host", "show", "relay"],
        &envs,
    )
    .expect(0)
    .json();
    assert!(
        json["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("plain http")),
        "{json:#}"
    );
    let tls = crm(
        dir.path(),
        &[
            "host",
            "add",
            "tls",
            "--url",
            "https://relay.example.com",
            "--admin-key-env",
            "RELAY_ADMIN_KEY",
        ],
        &envs,
    )
    .expect(0);
    assert!(!tls.stderr.contains("warning"), "{}", tls.stderr);
    assert!(!tls.stdout.contains("plain http"), "{}", tls.stdout);
}
