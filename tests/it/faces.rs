//! Three faces over one core: what the CLI writes, the server reads back
//! and the harness reproduces, and no face ever shows an upstream key.

use crm_reliability::bins::{Server, ServerOpts, acceptance_bin, cli_bin};
use crm_sim::{SimConfig, SimServer};
use std::process::{Command, Output};

/// 64 hex characters: a token the server accepts as strong.
const ADMIN: &str = "9f3c1a7be2d54806a1f7c3e9b5d20486fe1c7a3b9d5e2f4068a1c3e5b7d9f201";
const KEY: &str = "sim-ok-deepseek-CANARY-faces-7d1e93ab";

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_made_by_the_cli_is_the_batch_the_server_serves_and_no_face_shows_the_key() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, format!("{KEY}\n")).unwrap();
    let crm = |args: &[&str]| {
        let mut c = Command::new(cli_bin());
        c.arg("--db")
            .arg(&db)
            .arg("--upstream-via")
            .arg(sim.upstream_prefix())
            .args(["--output", "json"])
            .args(args)
            .env("RUST_LOG", "trace")
            .env_remove("CRM_CONFIG")
            .env_remove("CRM_DB");
        c
    };
    let mut seen = String::new();

    // The CLI registers the host (the admin key read once from stdin and
    // stored sealed, so the server can use it too) and imports: exit 2.
    let mut add = crm(&[
        "host",
        "add",
        "sim",
        "--url",
        &sim.base_url(),
        "--admin-key-file",
        "-",
    ]);
    add.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = add.spawn().expect("crm runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin piped");
        writeln!(stdin, "{}", sim.admin_key()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    seen.push_str(&text(&out));
    assert!(out.status.success(), "crm host add: {}", text(&out));
    for args in [
        vec!["host", "probe", "sim"],
        vec!["pack", "install", "--bundled", "cn-official"],
    ] {
        let out = run(&mut crm(&args));
        seen.push_str(&text(&out));
        assert!(out.status.success(), "crm {args:?}: {}", text(&out));
    }
    let out = run(&mut crm(&[
        "-vvv",
        "provider",
        "import",
        "cn-official/deepseek",
        "--host",
        "sim",
        "--mode",
        "self_service",
        "--upstream-keys-file",
        keys.to_str().unwrap(),
    ]));
    seen.push_str(&text(&out));
    assert_eq!(
        out.status.code(),
        Some(2),
        "import changes the host: {}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let batch_id = report["batch"]["id"]
        .as_str()
        .or_else(|| report["batch_id"].as_str())
        .unwrap_or_else(|| panic!("the report names its batch: {report}"))
        .to_owned();

    // The server on the same database serves that very batch as applied.
    let mut opts = ServerOpts::new(&db, ADMIN);
    opts.upstream_via = Some(sim.upstream_prefix());
    opts.rust_log = "trace".into();
    let server = Server::start(&opts);
    let http = reqwest::Client::new();
    let body: serde_json::Value = http
        .get(server.url(&format!("/api/import-batches/{batch_id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    seen.push_str(&body.to_string());
    let served = body.get("batch").unwrap_or(&body);
    assert_eq!(served["id"], batch_id.as_str(), "{body}");
    assert_eq!(served["status"], "applied", "{body}");

    // A second import through the server is a no-op: the CLI's batch
    // already covers it (one core, one journal).
    let again: serde_json::Value = http
        .post(server.url("/api/providers/cn-official/deepseek/import?wait=true"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({
            "host": "sim", "mode": "self_service", "upstream_keys": [KEY]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    seen.push_str(&again.to_string());
    assert_eq!(again["status"], "succeeded", "{again}");
    let dump = sim.state_dump();
    let accounts = dump["accounts"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or_else(|| panic!("the dump lists accounts: {dump}"));
    assert_eq!(
        accounts, 1,
        "one upstream key, one account, whichever face imported"
    );
    drop(server);

    // The harness runs the same chain on its own simulated host and passes.
    let evidence = dir.path().join("evidence");
    let out = run(Command::new(acceptance_bin())
        .args([
            "run",
            "--sim",
            "--profile",
            "current",
            "--provider",
            "deepseek",
        ])
        .args(["--mode", "self_service", "--out"])
        .arg(&evidence)
        .env("RUST_LOG", "trace"));
    seen.push_str(&text(&out));
    assert_eq!(out.status.code(), Some(0), "harness: {}", text(&out));
    for entry in std::fs::read_dir(&evidence).unwrap() {
        seen.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }

    // Everything the faces printed, served, logged and wrote: no key.
    let log = {
        let s = Server::start(&opts);
        s.log()
    };
    seen.push_str(&log);
    for needle in [KEY, "CANARY-faces"] {
        if let Some(at) = seen.find(needle) {
            let from = seen[..at]
                .char_indices()
                .rev()
                .nth(300)
                .map_or(0, |(i, _)| i);
            let to = (at + 300).min(seen.len());
            panic!(
                "a secret (or part of one) leaked through a face: ...{}...",
                seen.get(from..to).unwrap_or_default()
            );
        }
    }
}
