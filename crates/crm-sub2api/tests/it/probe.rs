//! The capability probe against an old and a new host profile, plus the
//! compliance-gated and rejected-key cases.

use crate::support::*;
use crm_domain::host::AdminAuth;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn route(server: &MockServer, m: &str, p: &str, resp: ResponseTemplate) {
    Mock::given(method(m))
        .and(path(p))
        .respond_with(resp)
        .mount(server)
        .await;
}

/// Everything the frontend would answer outside the API prefixes.
async fn frontend_fallback(server: &MockServer) {
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("legacy-2025-12/frontend.html"),
            "text/html; charset=utf-8",
        ))
        .with_priority(10)
        .mount(server)
        .await;
}

async fn common(server: &MockServer, generation: &str) {
    route(
        server,
        "GET",
        "/health",
        json(200, "legacy-2025-12/health.json"),
    )
    .await;
    route(
        server,
        "GET",
        "/api/v1/settings/public",
        json(200, &format!("{generation}/settings-public.json")),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/system/version"))
        .and(header("x-api-key", ADMIN_KEY))
        .respond_with(json(200, &format!("{generation}/system-version.json")))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/subscriptions"))
        .and(query_param("page_size", "1"))
        .respond_with(ok_envelope(
            json!({"items": [], "total": 0, "page": 1, "page_size": 1, "pages": 0}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(query_param("page_size", "1000"))
        .respond_with(json(200, &format!("{generation}/accounts-page.json")))
        .mount(server)
        .await;
    frontend_fallback(server).await;
}

async fn old_host() -> MockServer {
    let server = MockServer::start().await;
    common(&server, "legacy-2025-12").await;
    for (m, p) in [
        ("GET", "/api/v1/admin/channels"),
        ("GET", "/api/v1/admin/payment/plans"),
        ("PUT", "/api/v1/admin/api-keys/0"),
        ("GET", "/api/v1/admin/cn-providers/accounts/0/quota"),
        ("GET", "/api/v1/admin/channel-monitors/0"),
        ("POST", "/v1/chat/completions"),
    ] {
        route(&server, m, p, plain_404()).await;
    }
    server
}

async fn new_host() -> MockServer {
    let server = MockServer::start().await;
    common(&server, "current").await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/channels"))
        .and(query_param("page", "1"))
        .and(query_param("page_size", "1"))
        .respond_with(json(200, "current/channels-page.json"))
        .mount(&server)
        .await;
    route(
        &server,
        "GET",
        "/api/v1/admin/payment/plans",
        ok_envelope(json!([])),
    )
    .await;
    route(
        &server,
        "PUT",
        "/api/v1/admin/api-keys/0",
        json_value(
            404,
            json!({"code": 404, "message": "api key not found", "reason": "API_KEY_NOT_FOUND"}),
        ),
    )
    .await;
    route(
        &server,
        "GET",
        "/api/v1/admin/cn-providers/accounts/0/quota",
        json(404, "current/cn-quota-account-0.json"),
    )
    .await;
    // `ParseChannelMonitorID` (channel_monitor_handler.go @07b9133).
    route(
        &server,
        "GET",
        "/api/v1/admin/channel-monitors/0",
        json_value(
            400,
            json!({"code": 400, "message": "invalid monitor id", "reason": "INVALID_MONITOR_ID"}),
        ),
    )
    .await;
    route(
        &server,
        "POST",
        "/v1/chat/completions",
        json_value(
            401,
            json!({"code": "API_KEY_REQUIRED", "message": "API key is required"}),
        ),
    )
    .await;
    server
}

async fn assert_only_api_prefixes(server: &MockServer) {
    for (m, p) in requests(server).await {
        assert!(
            p.starts_with("/api/") || p.starts_with("/v1/") || p == "/health",
            "probed outside the API prefixes: {m} {p}"
        );
        if m == "PUT" {
            assert_eq!(
                p, "/api/v1/admin/api-keys/0",
                "the only write-method probe targets id 0"
            );
        }
        assert!(m != "DELETE", "the probe never deletes");
    }
}

#[tokio::test]
async fn old_host_profile() {
    let server = old_host().await;
    let caps = client(&server).probe_capabilities().await.unwrap();
    assert_eq!(caps.version.as_deref(), Some("0.1.52"));
    assert_eq!(caps.admin_auth, AdminAuth::Ok);
    assert!(!caps.channels);
    assert!(!caps.chat_completions);
    assert!(caps.native_platforms.is_empty());
    assert!(!caps.payment_plans);
    assert!(!caps.admin_key_rebind);
    assert!(caps.subscriptions);
    assert_eq!(caps.max_page_size, 100);
    assert!(!caps.credential_redaction);
    assert!(!caps.idempotency_key);
    assert!(!caps.channel_monitors);
    assert_only_api_prefixes(&server).await;
    insta::assert_yaml_snapshot!("old_host_capabilities", caps, {".probed_at" => "[time]"});
}

#[tokio::test]
async fn new_host_profile() {
    let server = new_host().await;
    let caps = client(&server).probe_capabilities().await.unwrap();
    assert_eq!(caps.version.as_deref(), Some("0.2.7"));
    assert_eq!(caps.admin_auth, AdminAuth::Ok);
    assert!(caps.channels);
    assert!(caps.chat_completions);
    let platforms: Vec<&str> = caps.native_platforms.iter().map(|p| p.as_str()).collect();
    assert_eq!(platforms, vec!["kimi", "zhipu", "deepseek", "minimax"]);
    assert!(caps.payment_plans);
    assert!(caps.admin_key_rebind);
    assert!(caps.subscriptions);
    assert_eq!(caps.max_page_size, 1000);
    assert!(caps.credential_redaction);
    assert!(caps.idempotency_key);
    assert!(caps.channel_monitors);
    assert!(
        caps.evidence
            .iter()
            .any(|e| e.capability == "idempotency_key" && e.detail.starts_with("inferred"))
    );
    assert!(
        caps.evidence
            .iter()
            .any(|e| e.capability == "platform_minimax" && e.detail.starts_with("inferred"))
    );
    assert_only_api_prefixes(&server).await;
    insta::assert_yaml_snapshot!("new_host_capabilities", caps, {".probed_at" => "[time]"});
}

#[tokio::test]
async fn compliance_gate_is_reported_and_admin_routes_are_not_probed() {
    let server = MockServer::start().await;
    route(
        &server,
        "GET",
        "/health",
        json(200, "legacy-2025-12/health.json"),
    )
    .await;
    route(
        &server,
        "GET",
        "/api/v1/settings/public",
        json(200, "current/settings-public.json"),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/system/version"))
        .respond_with(json(423, "current/error-compliance-423.json"))
        .mount(&server)
        .await;
    route(
        &server,
        "POST",
        "/v1/chat/completions",
        json_value(
            401,
            json!({"code": "API_KEY_REQUIRED", "message": "API key is required"}),
        ),
    )
    .await;
    let caps = client(&server).probe_capabilities().await.unwrap();
    assert_eq!(
        caps.admin_auth,
        AdminAuth::ComplianceGate {
            document_url: Some("https://relay.example.com/legal/compliance.en.md".into())
        }
    );
    assert!(caps.chat_completions, "the gateway probe needs no admin");
    assert!(!caps.channels);
    assert_eq!(
        requests(&server).await.len(),
        4,
        "health, settings, version, chat only"
    );
}

#[tokio::test]
async fn a_rejected_admin_key_is_a_verdict_not_an_error() {
    let server = MockServer::start().await;
    route(
        &server,
        "GET",
        "/health",
        json(200, "legacy-2025-12/health.json"),
    )
    .await;
    route(
        &server,
        "GET",
        "/api/v1/settings/public",
        json(200, "legacy-2025-12/settings-public.json"),
    )
    .await;
    route(
        &server,
        "GET",
        "/api/v1/admin/system/version",
        json(401, "legacy-2025-12/error-invalid-admin-key.json"),
    )
    .await;
    route(&server, "POST", "/v1/chat/completions", plain_404()).await;
    let caps = client(&server).probe_capabilities().await.unwrap();
    assert_eq!(
        caps.admin_auth,
        AdminAuth::Rejected {
            reason: "INVALID_ADMIN_KEY".into()
        }
    );
    assert_eq!(caps.version.as_deref(), Some("0.1.52"));
}

#[tokio::test]
async fn an_unreachable_host_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = crm_sub2api::Sub2apiClient::builder(
        format!("http://{addr}"),
        crm_sub2api::AdminKey::new(crm_sub2api::SecretString::from(ADMIN_KEY)),
    )
    .retry(retry_fast())
    .build()
    .unwrap();
    assert!(matches!(
        c.probe_capabilities().await,
        Err(crm_sub2api::Error::Connect { .. })
    ));
}

#[tokio::test]
async fn probing_through_the_port_adopts_the_page_size() {
    use crm_domain::ports::HostApi;
    let server = new_host().await;
    let host = crm_sub2api::Sub2apiHost::new(client(&server));
    assert_eq!(host.client().page_size(), 100);
    let caps = host.probe().await.unwrap();
    assert_eq!(caps.max_page_size, 1000);
    assert_eq!(host.client().page_size(), 1000);
    assert!(host.profile().idempotency_key && host.profile().send_notes);
    assert_eq!(host.request_count() as usize, requests(&server).await.len());
}
