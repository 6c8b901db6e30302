//! The operator's chain over HTTP: probe, preview, import (202 + poll),
//! batch detail, reconcile, rollback, with docs/design.md's status words.

use super::spawn_server;
use crm_api::schemas;
use serde_json::{Value, json};

/// Parses a response into its documented schema type: a record that
/// changed shape fails here, not silently in the OpenAPI document.
fn documented<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        panic!(
            "response does not match {}: {e}\n{v:#}",
            std::any::type_name::<T>()
        )
    })
}

#[tokio::test]
async fn probe_preview_import_detail_reconcile_rollback() {
    let srv = spawn_server().await;
    srv.setup_host_and_pack().await;

    let (s, host) = srv.post("/api/hosts/sim/probe", json!({})).await;
    assert_eq!(s, 200, "{host}");
    assert!(host["version"].is_string(), "{host}");
    documented::<schemas::Host>(&host);
    documented::<Vec<schemas::Host>>(&srv.get("/api/hosts").await.1);
    documented::<Vec<schemas::ProviderSummary>>(&srv.get("/api/providers").await.1);

    let body = json!({"host": "sim", "mode": "self_service",
        "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]});
    let (s, preview) = srv
        .post("/api/providers/cn-official/kimi/preview", body.clone())
        .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["changes"], true);
    let p = documented::<schemas::Preview>(&preview);
    assert!(p.base_urls.openai.starts_with("https://"), "{preview}");
    assert_eq!(
        p.base_urls.accounts.as_deref(),
        Some(p.base_urls.openai.as_str())
    );
    assert!(p.url_changes.is_empty());

    let r = srv
        .http
        .post(srv.url("/api/providers/cn-official/kimi/import"))
        .bearer_auth(super::ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/api/operations/op-"), "{location}");
    let op = srv.finish(&location).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["kind"], "import");
    assert_eq!(op["request"]["upstream_keys"], 1);
    let batch = op["result"]["batch"]["id"].as_str().unwrap().to_owned();
    assert_eq!(op["result"]["batch"]["status"], "applied");
    assert_eq!(op["result"]["access_status"], "self_service_ready");

    let (s, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(detail["batch"]["status"], "applied");
    assert!(!detail["resources"].as_array().unwrap().is_empty());
    assert!(!detail["journal"].as_array().unwrap().is_empty());
    assert!(!detail["access_checks"].as_array().unwrap().is_empty());
    documented::<schemas::BatchDetail>(&detail);
    documented::<crm_api::ops::OperationView>(&op);

    let (s, listed) = srv
        .get("/api/providers/cn-official/kimi/import-batches?host=sim")
        .await;
    assert_eq!(s, 200);
    assert_eq!(listed[0]["id"], batch.as_str());
    documented::<Vec<schemas::ImportBatch>>(&listed);
    let (s, one) = srv
        .get("/api/providers/cn-official/kimi/import-batches?host=sim&limit=1")
        .await;
    assert_eq!((s, one.as_array().map(Vec::len)), (200, Some(1)));
    for bad in ["0", "1001"] {
        let (s, problem) = srv
            .get(&format!(
                "/api/providers/cn-official/kimi/import-batches?host=sim&limit={bad}"
            ))
            .await;
        assert_eq!(s, 400, "limit={bad}: {problem}");
    }

    let (s, rec) = srv
        .post(&format!("/api/import-batches/{batch}/reconcile"), json!({}))
        .await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["run"]["status"], "in_sync", "{rec}");
    documented::<schemas::ReconcileReport>(&rec);
    let run = rec["run"]["id"].as_str().unwrap();
    let (s, got) = srv.get(&format!("/api/reconcile-runs/{run}")).await;
    assert_eq!(s, 200);
    assert_eq!(got["status"], "in_sync");
    let (s, runs) = srv.get("/api/hosts/sim/reconcile-runs").await;
    assert_eq!(s, 200);
    assert_eq!(runs[0]["id"], run);
    documented::<Vec<schemas::ReconcileRun>>(&runs);

    // Waiting for the result instead of polling.
    let r = srv
        .http
        .post(srv.url(&format!("/api/import-batches/{batch}/rollback")))
        .bearer_auth(super::ADMIN)
        .header("prefer", "wait=60")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let op: serde_json::Value = r.json().await.unwrap();
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["result"]["report"]["status"], "rolled_back", "{op}");

    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    assert_eq!(detail["batch"]["status"], "rolled_back");

    let metrics = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(super::READ_ONLY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "crm_operations_total{kind=\"import\",outcome=\"succeeded\"}",
        "crm_operations_total{kind=\"rollback\",outcome=\"succeeded\"}",
        "crm_host_requests_total{host=\"sim\"}",
        "crm_operation_duration_seconds_bucket{kind=\"import\",le=",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    let (s, audit) = srv.get("/api/audit?limit=100").await;
    assert_eq!(s, 200);
    documented::<Vec<schemas::AuditEvent>>(&audit);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "host.add",
        "pack.install",
        "host.probe",
        "provider.import",
        "batch.rollback",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    for e in audit.as_array().unwrap() {
        assert_eq!(e["actor"], "token:admin", "{e}");
        assert!(
            e["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{e}"
        );
    }
}

#[tokio::test]
async fn errors_are_problem_json_with_the_request_id() {
    let srv = spawn_server().await;
    let r = srv
        .http
        .get(srv.url("/api/hosts/nope"))
        .bearer_auth(super::ADMIN)
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "req-123");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["type"], "/problems/not-found");
    assert_eq!(p["status"], 404);
    assert_eq!(p["request_id"], "req-123");
    assert!(p["detail"].as_str().unwrap().contains("nope"));

    let r = srv
        .http
        .post(srv.url("/api/hosts"))
        .bearer_auth(super::ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}
