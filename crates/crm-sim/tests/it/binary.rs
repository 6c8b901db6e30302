//! The `crm-sim` binary prints its address and admin key and serves until stopped.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;

#[tokio::test]
async fn binary_prints_address_and_admin_key_then_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crm-sim"))
        .args(["--profile", "legacy-2025-12", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines.next().expect("a line").expect("utf-8");
    let admin = lines.next().expect("a line").expect("utf-8");
    let base = listening
        .strip_prefix("listening ")
        .expect("listening line")
        .to_owned();
    let key = admin
        .strip_prefix("admin-key ")
        .expect("admin-key line")
        .to_owned();
    assert!(
        key.starts_with("admin-") && key.len() == 70,
        "admin key format"
    );
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/admin/system/version"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("answer");
    let status = r.status();
    let body: serde_json::Value = r.json().await.expect("json");
    child.kill().expect("stop the child we started");
    let _ = child.wait();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["version"], "0.1.1");
}

#[tokio::test]
async fn shutdown_stops_serving_even_with_a_held_request() {
    let sim = crate::support::start(crm_sim::Profile::current()).await;
    let base = sim.base_url();
    sim.inject_fault(crm_sim::FaultSpec {
        method: None,
        path: "/health".into(),
        nth: 1,
        times: 1,
        action: crm_sim::FaultAction::CommitThenDelay { ms: 60_000 },
    });
    let client = reqwest::Client::new();
    let held = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/health");
        async move { client.get(url).send().await }
    });
    // Wait until the held request reached the simulator.
    while sim.requests().is_empty() {
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown does not wait for held requests forever");
    assert!(
        held.await.expect("task").is_err(),
        "the held request is cut off"
    );
    let after = client.get(format!("{base}/health")).send().await;
    assert!(
        after.is_err_and(|e| e.is_connect()),
        "nothing listens any more"
    );
}
