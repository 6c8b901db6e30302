//! A canary upstream key sent through an import appears nowhere: not in the
//! logs at trace level, not in any response, not in `/metrics`, not in the
//! OpenAPI document.
//!
//! Its own test binary (its own process): the trace subscriber is installed
//! process-wide, so every thread's events are captured, and no other test's
//! subscriber state can interfere.

#[path = "it/support.rs"]
#[allow(dead_code)]
mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::{ADMIN, spawn_server};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn canary_key_leaks_nowhere() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(logs.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let canary = format!("sk-CANARY-{}", uuid::Uuid::new_v4().simple());
    let srv = spawn_server().await;
    srv.sim
        .set_upstream_behaviour(&canary, crm_sim::Behaviour::Ok);
    srv.setup_host_and_pack().await;
    let mut seen = String::new();

    let body = json!({"host": "sim", "mode": "subscription", "upstream_keys": [canary]});
    let (s, preview) = srv
        .post("/api/providers/cn-official/deepseek/preview", body.clone())
        .await;
    assert_eq!(s, 200, "{preview}");
    seen.push_str(&preview.to_string());
    let r = srv
        .http
        .post(srv.url("/api/providers/cn-official/deepseek/import?wait=true"))
        .bearer_auth(ADMIN)
        .header("idempotency-key", "canary-import")
        .json(&body)
        .send()
        .await
        .unwrap();
    seen.push_str(&format!("{:?}", r.headers()));
    let op: serde_json::Value = r.json().await.unwrap();
    assert_eq!(op["status"], "succeeded", "{op}");
    seen.push_str(&op.to_string());
    let batch = op["result"]["batch"]["id"].as_str().unwrap().to_owned();
    // A wrongly typed body must not echo the key in its error either.
    let (s, bad) = srv
        .post(
            "/api/providers/cn-official/deepseek/preview",
            json!({"host": "sim", "mode": "subscription", "upstream_keys": canary}),
        )
        .await;
    assert_eq!(s, 400, "{bad}");
    seen.push_str(&bad.to_string());
    for path in [
        format!("/api/import-batches/{batch}"),
        format!("/api/operations/{}", op["id"].as_str().unwrap()),
        "/api/audit".into(),
        "/api/hosts".into(),
        "/api/providers/cn-official/deepseek/import-batches".into(),
    ] {
        let (s, v) = srv.get(&path).await;
        assert_eq!(s, 200, "{path}: {v}");
        seen.push_str(&v.to_string());
    }
    for open in ["/metrics", "/api/openapi.json"] {
        seen.push_str(
            &srv.http
                .get(srv.url(open))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 10_000,
        "trace logs were not captured ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("\"route\""), "access log lines are missing");
    assert_eq!(
        logs.matches(&canary).count(),
        0,
        "the canary key is in the logs"
    );
    assert_eq!(
        seen.matches(&canary).count(),
        0,
        "the canary key is in a response"
    );
    assert!(!logs.contains(ADMIN), "the admin token is in the logs");
    // The fingerprint's last four characters are what may show.
    assert!(seen.contains(&canary[canary.len() - 4..]));
}
