//! What happens around requests: operations a crash left running, the
//! scheduler, metrics, and the packs directory guard.

use super::{ADMIN, open_app, spawn_server_with, start};
use crm_domain::OperationKind;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn operations_left_running_by_a_crash_are_interrupted_with_a_way_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    // What a process killed mid-resume leaves behind.
    let op = app
        .begin_operation(
            OperationKind::Resume,
            "batch:b-123",
            json!({"batch": "b-123", "upstream_keys": 1}),
            None,
        )
        .await
        .unwrap();
    let srv = start(dir, sim, app, |_| {}, None).await;
    let (s, got) = srv.get(&format!("/api/operations/{}", op.id)).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["status"], "interrupted");
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("POST /api/import-batches/b-123/resume"),
        "{got}"
    );
}

#[tokio::test]
async fn the_scheduler_reconciles_hosts_with_an_interval_and_exports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let cfg = crm_api::scheduler::SchedulerConfig {
        tick: Duration::from_millis(100),
        ..Default::default()
    };
    let srv = start(dir, sim, app, |_| {}, Some(cfg)).await;
    let (s, body) = srv
        .post(
            "/api/hosts",
            json!({"name": "sched", "base_url": srv.sim.base_url(),
                "admin_key": srv.sim.admin_key(), "reconcile_every_secs": 1}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let mut runs = json!([]);
    for _ in 0..200 {
        let (_, r) = srv.get("/api/hosts/sched/reconcile-runs").await;
        if r.as_array().is_some_and(|a| !a.is_empty()) {
            runs = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runs[0]["status"], "in_sync", "{runs}");
    // The scheduler sets its gauges after it records the run, so the run
    // may be visible a moment before them.
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = srv
            .http
            .get(srv.url("/metrics"))
            .bearer_auth(super::READ_ONLY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("crm_scheduler_last_run_timestamp_seconds{host=\"sched\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        metrics.contains("crm_scheduler_last_run_timestamp_seconds{host=\"sched\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("crm_reconcile_drift_items{host=\"sched\"} 0"));
    // Histograms, not summaries: they have buckets.
    assert!(metrics.contains("crm_http_request_duration_seconds_bucket{"));
    assert!(!metrics.contains(ADMIN));
}

#[tokio::test]
async fn packs_install_from_the_packs_directory_only() {
    let root = tempfile::tempdir().unwrap();
    let packs = root.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let (_, text) = crm_pack::bundled::all()[0];
    std::fs::write(packs.join("cn.toml"), text).unwrap();
    std::fs::write(root.path().join("outside.toml"), text).unwrap();
    let srv = spawn_server_with(|c| c.packs_dir = Some(packs.clone())).await;

    let (s, p) = srv
        .post("/api/packs/from-path", json!({"path": "../outside.toml"}))
        .await;
    assert_eq!(s, 403, "{p}");
    assert_eq!(p["type"], "/problems/outside-packs-dir");
    let outside = root.path().join("outside.toml");
    let (s, _) = srv
        .post(
            "/api/packs/from-path",
            json!({"path": outside.to_str().unwrap()}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, p) = srv
        .post("/api/packs/from-path", json!({"path": "cn.toml"}))
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, providers) = srv.get("/api/providers?pack=cn-official").await;
    assert_eq!(s, 200);
    assert!(providers.as_array().unwrap().len() >= 2, "{providers}");

    let r = srv
        .http
        .post(srv.url("/api/packs/lint"))
        .bearer_auth(ADMIN)
        .body("pack_id = 3\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lint: serde_json::Value = r.json().await.unwrap();
    assert_eq!(lint["valid"], false);
    assert!(
        lint["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("upload.toml:")
    );
}

#[tokio::test]
async fn a_pack_takes_a_bundled_id_only_with_replace_bundled() {
    let root = tempfile::tempdir().unwrap();
    let packs = root.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let (_, text) = crm_pack::bundled::all()[0];
    let steered = text
        .replacen("version = \"2026.11.1\"", "version = \"2026.11.9\"", 1)
        .replacen(
            "openai_base_url = \"https://api.deepseek.com\"",
            "openai_base_url = \"https://api.deepseek.example\"",
            1,
        );
    std::fs::write(packs.join("steered.toml"), &steered).unwrap();
    let srv = spawn_server_with(|c| c.packs_dir = Some(packs.clone())).await;
    let upload = |query: &'static str| {
        srv.http
            .post(srv.url(&format!("/api/packs?file_name=steered.toml{query}")))
            .bearer_auth(ADMIN)
            .header("content-type", "text/plain")
            .body(steered.clone())
            .send()
    };
    let r = upload("").await.unwrap();
    assert_eq!(r.status(), 409);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["type"], "/problems/pack-reserved", "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("replace_bundled"),
        "{p}"
    );
    let (s, p) = srv
        .post("/api/packs/from-path", json!({"path": "steered.toml"}))
        .await;
    assert_eq!(s, 409, "{p}");
    let (s, list) = srv.get("/api/packs").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    let r = upload("&replace_bundled=true").await.unwrap();
    assert_eq!(r.status(), 201);
    let (s, p) = srv.get("/api/packs/cn-official").await;
    assert_eq!(s, 200);
    assert_eq!(p["manifest"]["version"], "2026.11.9", "{p}");
    let (s, audit) = srv.get("/api/audit?limit=10").await;
    assert_eq!(s, 200, "{audit}");
    assert!(
        audit.to_string().contains("replace_bundled"),
        "the replacement is audited: {audit}"
    );
}

#[tokio::test]
async fn an_import_survives_the_client_leaving_and_its_key_then_replays_the_outcome() {
    let srv = super::spawn_server().await;
    srv.setup_host_and_pack().await;
    srv.sim.set_latency(Duration::from_millis(40));
    let body = json!({"host": "sim", "mode": "self_service",
        "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]});
    let send = |timeout: Option<Duration>| {
        let mut req = srv
            .http
            .post(srv.url("/api/providers/cn-official/kimi/import?wait=true"))
            .bearer_auth(ADMIN)
            .header("idempotency-key", "leaving-client")
            .json(&body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req.send()
    };
    // The client gives up long before the import can finish.
    let gone = send(Some(Duration::from_millis(200))).await;
    assert!(gone.is_err_and(|e| e.is_timeout()));
    // Retrying with the same key: 409 while it runs, then the recorded outcome.
    let mut finished = None;
    for _ in 0..600 {
        let r = send(None).await.unwrap();
        match r.status().as_u16() {
            409 => tokio::time::sleep(Duration::from_millis(50)).await,
            200 => {
                assert_eq!(r.headers()["idempotent-replayed"], "true");
                finished = Some(r.json::<serde_json::Value>().await.unwrap());
                break;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    let op = finished.expect("the import never finished");
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["result"]["batch"]["status"], "applied");
    let (_, batches) = srv
        .get("/api/providers/cn-official/kimi/import-batches?host=sim")
        .await;
    assert_eq!(batches.as_array().unwrap().len(), 1, "one import, not two");
}

#[tokio::test]
async fn graceful_shutdown_answers_waiting_clients_and_lets_running_operations_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let mut srv = start(dir, sim, app.clone(), |_| {}, None).await;
    srv.setup_host_and_pack().await;
    srv.sim.set_latency(Duration::from_millis(20));
    srv.sim.clear_requests();
    let waiting = srv
        .http
        .post(srv.url("/api/providers/cn-official/kimi/import?wait=true"))
        .bearer_auth(ADMIN)
        .json(&json!({"host": "sim", "mode": "self_service",
            "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]}))
        .send();
    let waiting = tokio::spawn(waiting);
    for _ in 0..500 {
        if !srv.sim.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.shutdown.cancel();
    // The waiting client is not held until the import ends: it gets the 202.
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r.status(), 202);
    let op: serde_json::Value = r.json().await.unwrap();
    assert_eq!(op["status"], "running");
    srv.served.take().unwrap().await.unwrap().unwrap();
    // The server is gone; the record says the import finished before it left.
    let done = app.operation(op["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        done.status,
        crm_domain::OperationStatus::Succeeded,
        "{done:?}"
    );
    assert!(srv.http.get(srv.url("/healthz")).send().await.is_err());
}

/// Collects what the webhook receives.
async fn webhook_receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use axum::routing::post;
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn drift_found_by_the_scheduler_reaches_the_webhook() {
    let (hook, received) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let cfg = crm_api::scheduler::SchedulerConfig {
        tick: Duration::from_millis(100),
        webhook: Some(hook.parse().unwrap()),
        ..Default::default()
    };
    let srv = start(dir, sim, app, |_| {}, Some(cfg)).await;
    srv.setup_host_and_pack_every(Some(1)).await;
    let (s, op) = srv
        .post(
            "/api/providers/cn-official/kimi/import?wait=true",
            json!({"host": "sim", "mode": "self_service",
                "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]}),
        )
        .await;
    assert_eq!(s, 200, "{op}");
    let batch = op["result"]["batch"]["id"].as_str().unwrap().to_owned();
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    let account = detail["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "account")
        .expect("the batch has an account")["host_object_id"]
        .as_i64()
        .unwrap();
    // Behind crm's back.
    srv.sim.delete_object("accounts", account).unwrap();
    let mut event = None;
    for _ in 0..200 {
        if let Some(e) = received
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["to"] == "drifted")
        {
            event = Some(e.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let event = event.expect("no drift event reached the webhook in 10 s");
    assert!(event["items"].as_u64().unwrap() >= 1, "{event}");
    assert!(event["run_id"].as_str().is_some(), "{event}");
}

#[tokio::test]
async fn an_import_while_the_provider_is_leased_is_refused_at_once_naming_the_holder() {
    use crm_domain::ports::LeaseRepo;
    let dir = tempfile::tempdir().unwrap();
    let (sim, app) = open_app(&dir).await;
    let other = app.clone();
    let srv = start(dir, sim, app, |_| {}, None).await;
    srv.setup_host_and_pack().await;
    let (_, host) = srv.get("/api/hosts/sim").await;
    let host_id = crm_domain::HostId::new(host["id"].as_str().unwrap());
    let provider = crm_domain::ProviderRef::new("cn-official", "kimi");
    // Another process is importing the same provider onto the same host.
    other
        .store()
        .acquire_lease(
            &crm_domain::ops::Lease::provider_scope(&host_id, &provider),
            "cli:alice (pid 4242)",
            "import",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let (s, problem) = srv
        .post(
            "/api/providers/cn-official/kimi/import",
            json!({"host": "sim", "mode": "self_service",
                "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]}),
        )
        .await;
    assert_eq!(s, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("cli:alice (pid 4242)"),
        "{problem}"
    );
    let (_, batches) = srv
        .get("/api/providers/cn-official/kimi/import-batches?host=sim")
        .await;
    assert_eq!(batches, json!([]), "nothing was started");
}

#[tokio::test]
async fn an_import_moves_accounts_to_a_new_base_url_only_with_accept_url_change() {
    let srv = super::spawn_server().await;
    srv.setup_host_and_pack().await;
    let body = json!({"host": "sim", "mode": "self_service", "verify": false,
        "upstream_keys": ["sim-ok-deepseek-1-abcdef0123"]});
    let import = |body: serde_json::Value| {
        let srv = &srv;
        async move {
            let (s, op) = srv
                .post("/api/providers/cn-official/deepseek/import?wait=true", body)
                .await;
            assert!(s == 200 || s == 202, "{op}");
            srv.finish(&format!("/api/operations/{}", op["id"].as_str().unwrap()))
                .await
        }
    };
    let op = import(body.clone()).await;
    assert_eq!(op["status"], "succeeded", "{op}");

    // A newer cn-official that moves deepseek (taken on purpose).
    let (_, text) = crm_pack::bundled::all()[0];
    let moved = text
        .replacen("version = \"2026.11.1\"", "version = \"2026.11.9\"", 1)
        .replace("https://api.deepseek.com", "https://api.deepseek.example");
    let r = srv
        .http
        .post(srv.url("/api/packs?file_name=moved.toml&replace_bundled=true"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/plain")
        .body(moved)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let (s, preview) = srv
        .post("/api/providers/cn-official/deepseek/preview", body.clone())
        .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(
        preview["base_urls"]["openai"],
        "https://api.deepseek.example"
    );
    let changes = preview["url_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{preview}");
    assert_eq!(changes[0]["kind"], "base_url_change");
    assert_eq!(changes[0]["from"], "https://api.deepseek.com");
    assert_eq!(changes[0]["to"], "https://api.deepseek.example");

    let op = import(body.clone()).await;
    assert_eq!(op["status"], "failed", "{op}");
    let error = op["error"].as_str().unwrap_or_default();
    assert!(error.contains("accept_url_change"), "{op}");
    let (s, preview) = srv
        .post("/api/providers/cn-official/deepseek/preview", body.clone())
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        preview["url_changes"].as_array().unwrap().len(),
        1,
        "unchanged"
    );

    let mut accepted = body.clone();
    accepted["accept_url_change"] = json!(true);
    let op = import(accepted).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["request"]["accept_url_change"], true, "{op}");
    let (_, preview) = srv
        .post("/api/providers/cn-official/deepseek/preview", body)
        .await;
    assert_eq!(preview["url_changes"], json!([]), "{preview}");
    let (s, audit) = srv.get("/api/audit?limit=10").await;
    assert_eq!(s, 200, "{audit}");
    assert!(
        audit
            .to_string()
            .contains("accept_url_change: account crm-"),
        "the confirmation is audited: {audit}"
    );
}
