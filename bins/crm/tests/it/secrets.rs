//! Secrets never as argument values, and never in any output.

use crate::reads::{CANARY_UPSTREAM, imported, read_commands};
use crate::support::*;

#[test]
fn a_literal_secret_flag_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let canary = "sk-literal-canary-5b2e";
    for (args, alternative) in [
        (
            vec![
                "host",
                "add",
                "h",
                "--url",
                "http://127.0.0.1:9",
                "--admin-key",
                canary,
            ],
            "--admin-key-env VAR",
        ),
        (
            vec![
                "provider",
                "import",
                "cn-official/kimi",
                "--host",
                "h",
                "--mode",
                "self_service",
                "--upstream-key",
                canary,
            ],
            "--upstream-keys-file PATH",
        ),
        (
            vec![
                "provider",
                "preview",
                "cn-official/kimi",
                "--host",
                "h",
                "--mode",
                "self_service",
                "--upstream-key",
                canary,
            ],
            "--upstream-key-env VAR",
        ),
        (
            vec!["batch", "resume", "b-1", "--upstream-key", canary],
            "--upstream-keys-file PATH",
        ),
        (
            vec![
                "provider",
                "rotate-key",
                "cn-official/kimi",
                "--host",
                "h",
                "--mode",
                "subscription",
                "--old",
                "abcd",
                "--new-key",
                canary,
            ],
            "--new-key-file PATH",
        ),
        (
            vec![
                "provider",
                "import",
                "cn-official/kimi",
                "--host",
                "h",
                "--mode",
                "self_service",
                "--upstream-keys-file",
                "k",
                "--user-email",
                "u@example.com",
                "--user-password",
                canary,
            ],
            "--user-password-env VAR",
        ),
    ] {
        let run = crm(dir.path(), &args, &[]).expect(1);
        assert!(
            run.stderr.starts_with("error: refusing --"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(alternative), "{}", run.stderr);
        assert!(
            !run.stderr.contains(canary) && !run.stdout.contains(canary),
            "{}",
            run.stderr
        );
    }
    // Nothing ran: no database was created.
    assert!(!dir.path().join("crm.db").exists());
}

#[test]
fn stdin_and_files_are_the_ways_in() {
    let dir = tempfile::tempdir().unwrap();
    // An admin key from stdin is sealed; the value never shows.
    let mut cmd = command(
        dir.path(),
        &[
            "--output",
            "json",
            "host",
            "add",
            "h",
            "--url",
            "http://127.0.0.1:9",
            "--admin-key-file",
            "-",
        ],
        &[],
    );
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"admin-from-stdin-canary\n")
        .unwrap();
    let run = finish(&["host", "add"], child.wait_with_output().unwrap()).expect(0);
    assert_eq!(run.json()["admin_credential"], "sealed");
    assert!(!run.stdout.contains("canary") && !run.stderr.contains("canary"));

    // An unset variable is named, no value involved.
    let run = crm(
        dir.path(),
        &[
            "host",
            "add",
            "h2",
            "--url",
            "http://127.0.0.1:9",
            "--admin-key-env",
            "CRM_TEST_UNSET_VAR_X",
        ],
        &[],
    )
    .expect(1);
    assert!(
        run.stderr
            .contains("environment variable CRM_TEST_UNSET_VAR_X is not set"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output_of_the_quickstart_or_the_read_commands_at_trace() {
    // The quickstart, at -vvv, then every read command against its database.
    let dir = tempfile::tempdir().unwrap();
    let qs = dir.path().join("qs");
    let db = qs.join("crm.db").display().to_string();
    let mut runs = vec![
        crm(
            dir.path(),
            &["-vvv", "quickstart", "--dir", &qs.display().to_string()],
            &[],
        )
        .expect(0),
    ];
    let batch = crm(
        dir.path(),
        &["--db", &db, "--output", "json", "batch", "list"],
        &[],
    )
    .expect(0)
    .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run_id = crm(
        dir.path(),
        &[
            "--db",
            &db,
            "--output",
            "json",
            "reconcile",
            "--host",
            "quickstart",
            "--history",
        ],
        &[],
    )
    .expect(0)
    .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (_, args) in read_commands(&batch, &run_id) {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| if a == "sim" { "quickstart".into() } else { a })
            .collect();
        for output in ["table", "json"] {
            let mut argv = vec!["-vvv", "--db", &db, "--output", output];
            argv.extend(args.iter().map(String::as_str));
            runs.push(crm(dir.path(), &argv, &[]).expect(0));
        }
    }
    let mut canaries: Vec<String> = vec![
        "sim-ok-deepseek-quickstart-0001".into(),
        "sim-ok-kimi-quickstart-0001".into(),
    ];
    let passwords = probe_passwords(&qs.join("crm.db")).await;
    assert_eq!(passwords.len(), 2, "one probe user per batch");
    canaries.extend(passwords);
    assert_no_secrets(&runs, &canaries);

    // The same against a host crm reaches with an admin key from the environment.
    let env = imported().await;
    let batch = env
        .run(&["--output", "json", "batch", "list"])
        .expect(0)
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.run(&["-vvv", "reconcile", "--host", "sim"]).expect(0);
    env.run(&[
        "-vvv",
        "provider",
        "access",
        "cn-official/kimi",
        "--host",
        "sim",
    ])
    .expect(0);
    let run_id = env
        .run(&[
            "--output",
            "json",
            "reconcile",
            "--host",
            "sim",
            "--history",
        ])
        .expect(0)
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (_, args) in read_commands(&batch, &run_id) {
        let mut argv = vec!["-vvv"];
        argv.extend(args.iter().map(String::as_str));
        env.run(&argv).expect(0);
    }
    let mut canaries: Vec<String> = CANARY_UPSTREAM.iter().map(|s| s.to_string()).collect();
    canaries.push(env.admin_key.clone());
    canaries.extend(probe_passwords(&env.db()).await);
    let runs = env.log.lock().unwrap().clone();
    assert!(runs.len() > 20);
    assert_no_secrets(&runs, &canaries);
}
