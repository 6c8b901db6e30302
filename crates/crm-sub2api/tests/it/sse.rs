//! The account test stream: success, upstream failure, failure before headers.

use crate::support::*;
use crm_sub2api::Error;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn run(
    resp: ResponseTemplate,
    model: Option<&str>,
) -> Result<crm_sub2api::AccountTestResult, Error> {
    let server = MockServer::start().await;
    let body = match model {
        Some(m) => json!({"model_id": m}),
        None => json!({}),
    };
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts/101/test"))
        .and(header("x-api-key", ADMIN_KEY))
        .and(body_json(body))
        .respond_with(resp)
        .expect(1)
        .mount(&server)
        .await;
    client(&server).test_account(101, model).await
}

fn sse(rel: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_raw(fixture(rel), "text/event-stream")
        .insert_header("Cache-Control", "no-cache")
        .insert_header("X-Accel-Buffering", "no")
}

#[tokio::test]
async fn successful_tests_of_both_generations() {
    let r = run(sse("legacy-2025-12/account-test-success.sse"), None)
        .await
        .unwrap();
    assert!(r.success);
    assert!(r.sse_content_type);
    assert_eq!(r.model.as_deref(), Some("gpt-5"));
    assert_eq!(r.text, "Hello! How can I help?");
    assert_eq!(r.error, None);

    let r = run(
        sse("current/account-test-success.sse"),
        Some("deepseek-chat"),
    )
    .await
    .unwrap();
    assert!(r.success);
    assert_eq!(
        r.notes,
        vec!["checking chat_completions endpoint".to_owned()]
    );
    assert_eq!(r.text, "pong");
}

#[tokio::test]
async fn upstream_401_keeps_the_host_error_text_and_code() {
    let r = run(
        sse("current/account-test-upstream-401.sse"),
        Some("deepseek-chat"),
    )
    .await
    .unwrap();
    assert!(!r.success);
    assert_eq!(r.http_status, 200);
    assert_eq!(r.error_code.as_deref(), Some("401"));
    let err = r.error.unwrap();
    assert!(err.starts_with("API returned 401: "), "{err}");
    assert!(err.contains("Authentication Fails"), "{err}");
    // The upstream echoed a key-shaped token: scrubbed.
    assert!(!err.contains("sk-ab12cd34ef56ab78"), "{err}");

    // Legacy hosts send no code.
    let r = run(sse("legacy-2025-12/account-test-upstream-401.sse"), None)
        .await
        .unwrap();
    assert!(!r.success);
    assert_eq!(r.error_code, None);
    assert!(r.error.unwrap().contains("API returned 401"));
}

#[tokio::test]
async fn failure_before_headers_is_parsed_without_the_sse_content_type() {
    let resp = ResponseTemplate::new(200).set_body_raw(
        fixture("current/account-test-before-headers.txt"),
        "text/plain; charset=utf-8",
    );
    let r = run(resp, None).await.unwrap();
    assert!(!r.sse_content_type);
    assert!(!r.success);
    assert_eq!(r.error.as_deref(), Some("Account not found"));
}

#[tokio::test]
async fn a_stream_cut_short_is_a_failure() {
    let resp = ResponseTemplate::new(200).set_body_raw(
        "data: {\"type\":\"test_start\",\"model\":\"m\"}\n\ndata: {\"type\":\"content\",\"text\":\"po\"}\n\n",
        "text/event-stream",
    );
    let r = run(resp, None).await.unwrap();
    assert!(!r.success);
    assert!(r.error.unwrap().contains("ended without"));
}

#[tokio::test]
async fn errors_without_events_are_errors() {
    let e = run(
        json(401, "legacy-2025-12/error-invalid-admin-key.json"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    let e = run(plain_404(), None).await.unwrap_err();
    assert!(matches!(e, Error::RouteMissing { .. }), "{e:?}");
    let e = run(
        ResponseTemplate::new(200)
            .set_body_raw(fixture("legacy-2025-12/frontend.html"), "text/html"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::UnexpectedHtml { .. }), "{e:?}");
}

#[tokio::test]
async fn the_account_test_gets_its_own_longer_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts/101/test"))
        .respond_with(
            sse("current/account-test-success.sse")
                .set_delay(std::time::Duration::from_millis(400)),
        )
        .mount(&server)
        .await;
    let c = crm_sub2api::Sub2apiClient::builder(
        server.uri(),
        crm_sub2api::AdminKey::new(crm_sub2api::SecretString::from(ADMIN_KEY)),
    )
    .timeout(std::time::Duration::from_millis(100))
    .sse_timeout(std::time::Duration::from_secs(5))
    .build()
    .unwrap();
    let r = c.test_account(101, None).await.unwrap();
    assert!(r.success);
    assert_eq!(c.request_count(), 1);

    let short = crm_sub2api::Sub2apiClient::builder(
        server.uri(),
        crm_sub2api::AdminKey::new(crm_sub2api::SecretString::from(ADMIN_KEY)),
    )
    .sse_timeout(std::time::Duration::from_millis(100))
    .build()
    .unwrap();
    let e = short.test_account(101, None).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "a test is never retried"
    );
}

#[tokio::test]
async fn test_complete_without_success_is_a_failure() {
    let resp = ResponseTemplate::new(200).set_body_raw(
        "data: {\"type\":\"test_complete\",\"success\":false}\n\n",
        "text/event-stream",
    );
    let r = run(resp, None).await.unwrap();
    assert!(!r.success);
    assert!(r.error.is_some());
}
