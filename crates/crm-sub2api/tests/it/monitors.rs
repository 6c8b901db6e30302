//! Channel monitors (newer hosts) against wiremock: the exact requests of
//! list, create, update, delete and history, the legacy host's missing
//! routes, the host's refusals, an unexpected shape, and no upstream key in
//! anything crm keeps. Shapes from `channel_monitor_handler.go` @07b9133.

use crate::support::*;
use crm_domain::HostObjectId;
use crm_domain::observed::{MonitorDraft, MonitorPatch};
use crm_domain::ports::{HostApi, HostError};
use crm_sub2api::{SecretString, Sub2apiHost};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer};

const UPSTREAM_KEY: &str = "sk-CANARYMONITOR0123456789abcdef";

fn host(server: &MockServer) -> Sub2apiHost {
    Sub2apiHost::new(client(server))
}

/// A `channelMonitorResponse` as a listing renders it.
fn monitor(id: i64, name: &str) -> Value {
    json!({
        "id": id, "name": name, "provider": "openai", "api_mode": "chat_completions",
        "endpoint": "https://api.deepseek.com", "api_key_masked": "sk-C***",
        "api_key_decrypt_failed": false, "primary_model": "deepseek-chat", "extra_models": [],
        "group_name": "DeepSeek — managed by crm [crm:batch=b-1]", "enabled": true,
        "interval_seconds": 300, "jitter_seconds": 0, "last_checked_at": "2026-12-07T05:00:00Z",
        "created_by": 1, "created_at": "2026-12-07T04:00:00Z", "updated_at": "2026-12-07T04:00:00Z",
        "primary_status": "operational", "primary_latency_ms": 120, "availability_7d": 99.5,
        "extra_models_status": [], "template_id": null, "extra_headers": {},
        "body_override_mode": "off", "body_override": null, "check_mode": "probe",
        "account_id": null, "group_id": null
    })
}

fn draft() -> MonitorDraft {
    MonitorDraft {
        name: "crm-cn-official.deepseek-self_service".into(),
        provider: "openai".into(),
        api_mode: "chat_completions".into(),
        endpoint: "https://api.deepseek.com".into(),
        api_key: SecretString::from(UPSTREAM_KEY),
        primary_model: "deepseek-chat".into(),
        extra_models: vec![],
        group_name: "DeepSeek — managed by crm [crm:batch=b-1]".into(),
        enabled: true,
        interval_seconds: 300,
    }
}

#[tokio::test]
async fn listing_walks_every_page_at_the_handlers_cap_of_100() {
    let server = MockServer::start().await;
    for page in [1, 2] {
        let items: Vec<Value> = (0..if page == 1 { 100 } else { 1 })
            .map(|n| monitor(page * 1000 + n, &format!("m-{page}-{n}")))
            .collect();
        Mock::given(method("GET"))
            .and(path("/api/v1/admin/channel-monitors"))
            .and(query_param("page", page.to_string()))
            .and(query_param("page_size", "100"))
            .and(header("x-api-key", ADMIN_KEY))
            .respond_with(ok_envelope(json!({
                "items": items, "total": 101, "page": page, "page_size": 100, "pages": 2
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let list = host(&server).list_monitors().await.unwrap();
    assert_eq!(list.len(), 101);
    let m = &list[0];
    assert_eq!(m.id, HostObjectId(1000));
    assert_eq!(m.interval_seconds, 300);
    assert_eq!(m.primary_model, "deepseek-chat");
    assert!(m.has_api_key);
    assert_eq!(m.primary_status.as_deref(), Some("operational"));
    assert_eq!(m.availability_7d, Some(99.5));
    assert_eq!(m.last_checked_at.as_deref(), Some("2026-12-07T05:00:00Z"));
    // Not even the masked form (the key's first four characters) is kept.
    assert!(!serde_json::to_string(&list).unwrap().contains("sk-C"));
}

#[tokio::test]
async fn create_sends_exactly_the_bound_fields_and_reads_the_201() {
    let server = MockServer::start().await;
    let mut created = monitor(7, "crm-cn-official.deepseek-self_service");
    // `channelMonitorToResponse` on create: no status summary.
    created["primary_status"] = json!("");
    created["availability_7d"] = json!(0);
    created["last_checked_at"] = Value::Null;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/channel-monitors"))
        .and(header("x-api-key", ADMIN_KEY))
        .and(body_json(json!({
            "name": "crm-cn-official.deepseek-self_service",
            "provider": "openai",
            "api_mode": "chat_completions",
            "endpoint": "https://api.deepseek.com",
            "api_key": UPSTREAM_KEY,
            "primary_model": "deepseek-chat",
            "extra_models": [],
            "group_name": "DeepSeek — managed by crm [crm:batch=b-1]",
            "enabled": true,
            "interval_seconds": 300
        })))
        .respond_with(json_value(
            201,
            json!({"code": 0, "message": "success", "data": created}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let h = host(&server);
    let m = h.create_monitor(&draft()).await.unwrap();
    assert_eq!(m.id, HostObjectId(7));
    assert_eq!(m.primary_status, None);
    assert_eq!(m.last_checked_at, None);
    let shown = format!("{m:?} {:?}", draft());
    assert!(!shown.contains("CANARY"), "{shown}");
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs[0].headers.get("idempotency-key").is_none(),
        "the monitor create honours no Idempotency-Key"
    );
}

#[tokio::test]
async fn update_sends_only_the_fields_it_changes() {
    let server = MockServer::start().await;
    let mut updated = monitor(7, "crm-x");
    updated["interval_seconds"] = json!(600);
    Mock::given(method("PUT"))
        .and(path("/api/v1/admin/channel-monitors/7"))
        .and(body_json(
            json!({"interval_seconds": 600, "primary_model": "deepseek-chat"}),
        ))
        .respond_with(ok_envelope(updated))
        .expect(1)
        .mount(&server)
        .await;
    let m = host(&server)
        .update_monitor(
            HostObjectId(7),
            &MonitorPatch {
                interval_seconds: Some(600),
                primary_model: Some("deepseek-chat".into()),
                ..MonitorPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.interval_seconds, 600);
}

#[tokio::test]
async fn delete_reads_an_answer_without_data_and_a_404_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/admin/channel-monitors/7"))
        .respond_with(json_value(200, json!({"code": 0, "message": "success"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/admin/channel-monitors/8"))
        .respond_with(json_value(
            404,
            json!({"code": 404, "message": "channel monitor not found", "reason": "CHANNEL_MONITOR_NOT_FOUND"}),
        ))
        .mount(&server)
        .await;
    let h = host(&server);
    h.delete_monitor(HostObjectId(7)).await.unwrap();
    let e = h.delete_monitor(HostObjectId(8)).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

#[tokio::test]
async fn history_asks_for_a_bounded_limit_and_scrubs_messages() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/channel-monitors/7/history"))
        .and(query_param("limit", "20"))
        .respond_with(ok_envelope(json!({"items": [
            {"id": 3, "model": "deepseek-chat", "status": "failed", "latency_ms": 80,
             "ping_latency_ms": null,
             "message": format!("upstream HTTP 401: invalid key {UPSTREAM_KEY}"),
             "checked_at": "2026-12-07T05:01:00Z"},
            {"id": 2, "model": "deepseek-chat", "status": "operational", "latency_ms": 120,
             "ping_latency_ms": 10, "message": "", "checked_at": "2026-12-07T05:00:00Z"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let checks = host(&server)
        .monitor_history(HostObjectId(7), 20)
        .await
        .unwrap();
    assert_eq!(checks.len(), 2);
    assert!(!checks[0].is_available());
    assert!(checks[1].is_available());
    assert_eq!(checks[0].latency_ms, Some(80));
    assert!(
        !checks[0].message.contains("CANARY"),
        "{}",
        checks[0].message
    );
    assert!(checks[0].message.starts_with("upstream HTTP 401"));
}

#[tokio::test]
async fn a_legacy_host_has_no_monitor_routes() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex(
        "^/api/v1/admin/channel-monitors",
    ))
    .respond_with(plain_404())
    .mount(&server)
    .await;
    let h = host(&server);
    assert!(matches!(
        h.list_monitors().await,
        Err(HostError::RouteMissing { .. })
    ));
    assert!(matches!(
        h.create_monitor(&draft()).await,
        Err(HostError::RouteMissing { .. })
    ));
}

#[tokio::test]
async fn a_refused_create_is_a_validation_error_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/channel-monitors"))
        .respond_with(json_value(
            400,
            json!({"code": 400, "reason": "CHANNEL_MONITOR_ENDPOINT_PATH",
                   "message": format!("endpoint must be base origin only ({UPSTREAM_KEY})")}),
        ))
        .mount(&server)
        .await;
    let e = host(&server).create_monitor(&draft()).await.unwrap_err();
    assert!(matches!(e, HostError::Validation { .. }), "{e:?}");
    assert!(e.is_refusal());
    let text = format!("{e} {e:?}");
    assert!(text.contains("CHANNEL_MONITOR_ENDPOINT_PATH"), "{text}");
    assert!(!text.contains("CANARY"), "{text}");
}

#[tokio::test]
async fn an_unexpected_shape_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/channel-monitors"))
        .respond_with(ok_envelope(json!({"items": [{"id": "seven"}], "total": 1})))
        .mount(&server)
        .await;
    let e = host(&server).list_monitors().await.unwrap_err();
    assert!(matches!(e, HostError::Decode { .. }), "{e:?}");
    assert!(e.outcome_unknown());
}
