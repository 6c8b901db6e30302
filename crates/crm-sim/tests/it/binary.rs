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
    assert_eq!(body["data"]["version"], "0.1.40");
}
