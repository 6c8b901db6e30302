//! A hostile or broken host: redirects are never followed (they would carry
//! the admin key or an upstream key elsewhere) and no body is read without
//! a bound (issue 19, items 2 and 4).

use crate::support::*;
use crm_sub2api::{AccountFilter, Error, SecretString, UpstreamClient, UpstreamRouting};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A second listener that must never be reached.
async fn elsewhere() -> MockServer {
    let other = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ok_envelope(serde_json::json!({"items": [], "total": 0})))
        .mount(&other)
        .await;
    other
}

fn redirect_to(status: u16, target: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("location", target)
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_admin_key_goes_nowhere_else() {
    let other = elsewhere().await;
    for status in [301u16, 302, 307, 308] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(redirect_to(
                status,
                &format!("{}/steal?token=SECRETQUERY", other.uri()),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(redirect_to(status, &format!("{}/steal", other.uri())))
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap_err();
        match &e {
            Error::Redirected {
                status: s,
                location_host,
            } => {
                assert_eq!(*s, status);
                assert_eq!(location_host.as_deref(), Some("127.0.0.1"));
            }
            other => panic!("{status}: expected Redirected, got {other:?}"),
        }
        let text = e.to_string();
        assert!(text.contains(&status.to_string()), "{text}");
        assert!(!text.contains("SECRETQUERY"), "never the query: {text}");
        let e = c
            .create_group(&crm_sub2api::GroupInput {
                name: "g".into(),
                platform: "openai".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Redirected { .. }), "{e:?}");
    }
    assert_eq!(
        other.received_requests().await.unwrap().len(),
        0,
        "no request followed a redirect"
    );
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed() {
    let other = elsewhere().await;
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(redirect_to(307, &format!("{}/v1/models", other.uri())))
        .mount(&upstream)
        .await;
    let up = UpstreamClient::new(UpstreamRouting::Direct).unwrap();
    let l = up
        .models(
            &format!("{}/v1", upstream.uri()),
            &SecretString::from("sk-CANARYUPSTREAM0123456789"),
        )
        .await
        .unwrap();
    assert!(!l.outcome.ok);
    assert_eq!(l.outcome.status, Some(307));
    assert_eq!(other.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn an_oversized_body_ends_in_an_error_naming_the_host_and_the_limit() {
    let server = MockServer::start().await;
    // A valid envelope whose data is one huge string: read whole, it would
    // be held in memory before any check.
    let huge = "x".repeat(5 * 1024 * 1024);
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/groups/7"))
        .respond_with(ok_envelope(serde_json::json!({"id": 7, "name": huge})))
        .mount(&server)
        .await;
    let e = client(&server).get_group(7).await.unwrap_err();
    match &e {
        Error::TooLarge { host, limit, .. } => {
            assert_eq!(host, "127.0.0.1");
            assert_eq!(*limit, crm_sub2api::DEFAULT_MAX_BODY_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(e.to_string().contains("127.0.0.1"), "{e}");

    // The limit is configurable.
    let small = crm_sub2api::Sub2apiClient::builder(
        server.uri(),
        crm_sub2api::AdminKey::new(SecretString::from(ADMIN_KEY)),
    )
    .max_body_bytes(1024)
    .build()
    .unwrap();
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/groups/8"))
        .respond_with(ok_envelope(
            serde_json::json!({"id": 8, "name": "y".repeat(4096)}),
        ))
        .mount(&server)
        .await;
    let e = small.get_group(8).await.unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 1024, .. }), "{e:?}");
    assert!(e.to_string().contains("1024"), "{e}");
}

#[tokio::test]
async fn a_list_page_may_be_larger_than_a_single_answer() {
    let server = MockServer::start().await;
    let items: Vec<_> = (1..=100)
        .map(|i| serde_json::json!({"id": i, "name": format!("g{i}"), "description": "d".repeat(2048)}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/groups"))
        .respond_with(ok_envelope(serde_json::json!({
            "items": items, "total": 100, "page": 1, "page_size": 100, "pages": 1
        })))
        .mount(&server)
        .await;
    let c = crm_sub2api::Sub2apiClient::builder(
        server.uri(),
        crm_sub2api::AdminKey::new(SecretString::from(ADMIN_KEY)),
    )
    .max_body_bytes(64 * 1024)
    .build()
    .unwrap();
    // ~210 KiB, over the single-answer limit but within the page allowance.
    assert_eq!(c.list_groups().await.unwrap().len(), 100);
}

#[tokio::test]
async fn an_endless_sse_line_ends_in_an_error_naming_the_limit() {
    let server = MockServer::start().await;
    let mut body = String::from("data: {\"type\":\"test_start\",\"model\":\"m\"}\n\n");
    body.push_str("data: ");
    body.push_str(&"z".repeat(2 * 1024 * 1024));
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts/5/test"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let e = client(&server).test_account(5, None).await.unwrap_err();
    match &e {
        Error::TooLarge { host, what, limit } => {
            assert_eq!(host, "127.0.0.1");
            assert!(what.contains("line"), "{what}");
            assert_eq!(*limit, crm_sub2api::sse::MAX_LINE);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn sse_notes_are_bounded() {
    let server = MockServer::start().await;
    let mut body = String::new();
    for i in 0..5000 {
        body.push_str(&format!(
            "data: {{\"type\":\"status\",\"text\":\"note {i}\"}}\n\n"
        ));
    }
    body.push_str("data: {\"type\":\"test_complete\",\"success\":true}\n\n");
    Mock::given(method("POST"))
        .and(path("/api/v1/admin/accounts/6/test"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&server)
        .await;
    let r = client(&server).test_account(6, None).await.unwrap();
    assert!(r.success);
    assert_eq!(r.notes.len(), crm_sub2api::sse::MAX_NOTES);
}
