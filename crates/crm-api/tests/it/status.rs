//! Provider status over HTTP: the provider and host resources, and the
//! `crm_provider_status` gauge, through active, drifted and unknown.

use super::{ADMIN, spawn_server};
use crm_api::schemas;
use crm_sim::{FaultAction, FaultSpec};
use serde_json::{Value, json};

/// The metrics recorder is global to the test process: this test's host has
/// a name no other test uses, so its gauges are its own.
const HOST: &str = "status-api";

fn status_of<'a>(list: &'a Value, provider: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == provider)
        .unwrap_or_else(|| panic!("{provider} missing from {list:#}"))
}

async fn gauge(srv: &super::TestServer, provider: &str, status: &str) -> String {
    let text = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(super::READ_ONLY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let head = format!(
        "crm_provider_status{{host=\"{HOST}\",provider=\"{provider}\",status=\"{status}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .unwrap_or_else(|| panic!("{head} missing from\n{text}"))
        .to_owned()
}

#[tokio::test]
async fn status_follows_import_reconcile_drift_and_an_unreachable_host() {
    let srv = spawn_server().await;
    let (s, body) = srv
        .post(
            "/api/hosts",
            json!({"name": HOST, "base_url": srv.sim.base_url(), "admin_key": srv.sim.admin_key()}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (_, text) = crm_pack::bundled::all()[0];
    let r = srv
        .http
        .post(srv.url("/api/packs?file_name=cn-official.toml"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/plain")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Nothing imported: every provider is inactive, with the reason.
    let (s, all) = srv.get(&format!("/api/hosts/{HOST}/provider-status")).await;
    assert_eq!(s, 200, "{all}");
    schemas_parse(&all);
    assert_eq!(status_of(&all, "cn-official/kimi")["status"], "inactive");
    assert_eq!(
        status_of(&all, "cn-official/kimi")["reason"],
        "no_live_batch"
    );

    let r = srv
        .http
        .post(srv.url("/api/providers/cn-official/kimi/import?wait=true"))
        .bearer_auth(ADMIN)
        .json(&json!({"host": HOST, "mode": "self_service",
            "upstream_keys": ["sim-ok-kimi-1-abcdef0123"]}))
        .send()
        .await
        .unwrap();
    let op: Value = r.json().await.unwrap();
    assert_eq!(op["status"], "succeeded", "{op}");

    // Checked by the import, not reconciled yet.
    let path = format!("/api/providers/cn-official/kimi/status?host={HOST}");
    let (s, one) = srv.get(&path).await;
    assert_eq!(s, 200, "{one}");
    schemas_parse(&one);
    assert_eq!(one[0]["status"], "unknown", "{one}");
    assert_eq!(one[0]["reason"], "not_reconciled", "{one}");
    assert!(
        one[0]["detail"]
            .as_str()
            .unwrap()
            .contains("crm provider reconcile cn-official/kimi --host status-api"),
        "{one}"
    );

    let reconcile = |srv: &super::TestServer| {
        let srv_url = srv.url("/api/providers/cn-official/kimi/reconcile");
        let http = srv.http.clone();
        async move {
            http.post(srv_url)
                .bearer_auth(ADMIN)
                .json(&json!({"host": HOST}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let rec = reconcile(&srv).await;
    assert_eq!(rec["run"]["status"], "in_sync", "{rec}");
    let (_, one) = srv.get(&path).await;
    assert_eq!(one[0]["status"], "active", "{one}");
    assert_eq!(one[0]["reason"], "ready_in_sync");
    assert_eq!(one[0]["reconcile_run"], rec["run"]["id"]);
    assert_eq!(gauge(&srv, "cn-official/kimi", "active").await, "1");
    assert_eq!(gauge(&srv, "cn-official/kimi", "drifted").await, "0");
    assert_eq!(gauge(&srv, "cn-official/deepseek", "inactive").await, "1");

    // Someone deletes the account on the host.
    let batch = one[0]["batch_id"].as_str().unwrap();
    let (_, detail) = srv.get(&format!("/api/import-batches/{batch}")).await;
    let account = detail["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "account")
        .unwrap()["host_object_id"]
        .as_i64()
        .unwrap();
    srv.sim.delete_object("accounts", account).unwrap();
    let rec = reconcile(&srv).await;
    assert_eq!(rec["run"]["status"], "drifted", "{rec}");
    let (_, one) = srv.get(&path).await;
    assert_eq!(one[0]["status"], "drifted", "{one}");
    assert_eq!(gauge(&srv, "cn-official/kimi", "drifted").await, "1");
    assert_eq!(gauge(&srv, "cn-official/kimi", "active").await, "0");

    // The host stops answering: the status says it does not know.
    srv.sim.inject_fault(FaultSpec {
        method: None,
        path: "/api/v1/admin/accounts".into(),
        nth: 1,
        times: 1000,
        action: FaultAction::Drop,
    });
    let rec = reconcile(&srv).await;
    assert_eq!(rec["run"]["status"], "unreachable", "{rec}");
    let (_, one) = srv.get(&path).await;
    assert_eq!(one[0]["status"], "unknown", "{one}");
    assert_eq!(one[0]["reason"], "host_unreachable", "{one}");
    assert_eq!(gauge(&srv, "cn-official/kimi", "unknown").await, "1");

    let (s, problem) = srv
        .get("/api/providers/cn-official/no-such-provider/status")
        .await;
    assert_eq!(s, 404, "{problem}");
}

fn schemas_parse(v: &Value) {
    serde_json::from_value::<Vec<schemas::ProviderStatus>>(v.clone())
        .unwrap_or_else(|e| panic!("response does not match the documented schema: {e}\n{v:#}"));
}
