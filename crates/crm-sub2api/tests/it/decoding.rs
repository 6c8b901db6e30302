//! Realistic bodies of both host generations decode, and every error shape
//! of the contract becomes the right error.

use crate::support::*;
use crm_sub2api::port::account_from_wire;
use crm_sub2api::*;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serve(server: &MockServer, p: &str, resp: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(resp)
        .mount(server)
        .await;
}

#[tokio::test]
async fn legacy_accounts_decode_and_raw_keys_become_has_api_key() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/api/v1/admin/accounts",
        json(200, "legacy-2025-12/accounts-page.json"),
    )
    .await;
    let accounts = client(&server)
        .list_accounts(&AccountFilter::default())
        .await
        .unwrap();
    assert_eq!(accounts.len(), 2);
    let a = &accounts[0];
    assert_eq!(a.notes, None);
    assert!(a.credentials_status.is_none());
    assert!(a.has_api_key());
    assert_eq!(a.credentials.base_url(), Some("https://api.deepseek.com"));
    assert_eq!(a.group_ids, vec![3]);
    assert_eq!(accounts[1].group_ids, Vec::<i64>::new(), "null group_ids");
    assert_eq!(accounts[1].error_message.as_deref(), Some("token expired"));

    let observed = account_from_wire(accounts[0].clone());
    assert!(observed.has_api_key);
    assert_eq!(
        observed.base_url.as_deref(),
        Some("https://api.deepseek.com")
    );
    assert!(!observed.credential_fields.contains_key("api_key"));
    let shown = serde_json::to_string(&observed).unwrap();
    assert!(!shown.contains("LEGACY-RAW"), "{shown}");
}

#[tokio::test]
async fn current_accounts_decode_with_redaction_notes_and_temp_unschedulable() {
    let server = MockServer::start().await;
    serve(
        &server,
        "/api/v1/admin/accounts",
        json(200, "current/accounts-page.json"),
    )
    .await;
    let accounts = client(&server)
        .list_accounts(&AccountFilter::default())
        .await
        .unwrap();
    let a = account_from_wire(accounts[0].clone());
    assert_eq!(a.notes.as_deref(), Some("crm:batch=b-0001"));
    assert_eq!(a.platform.as_str(), "deepseek");
    assert!(a.has_api_key);
    assert_eq!(a.credential_fields["account_mode"], "payg");
    assert_eq!(a.model_mapping.len(), 2);
    assert!(a.is_healthy());
    let b = account_from_wire(accounts[1].clone());
    assert!(!b.has_api_key);
    assert_eq!(b.notes, None);
    assert_eq!(
        b.temp_unschedulable_reason.as_deref(),
        Some("429 rate limited (rule 0)")
    );
    assert!(!b.is_healthy());
}

#[tokio::test]
async fn groups_users_and_subscriptions_of_both_shapes_decode() {
    for generation in ["legacy-2025-12", "current"] {
        let server = MockServer::start().await;
        serve(
            &server,
            "/api/v1/admin/groups",
            json(200, &format!("{generation}/groups-page.json")),
        )
        .await;
        serve(
            &server,
            "/api/v1/admin/users",
            json(200, &format!("{generation}/users-page.json")),
        )
        .await;
        let c = client(&server);
        let groups: Vec<_> = c
            .list_groups()
            .await
            .unwrap()
            .into_iter()
            .map(crm_sub2api::port::group_from_wire)
            .collect();
        assert_eq!(groups.len(), 2, "{generation}");
        assert_eq!(groups[0].billing, crm_domain::GroupBilling::Standard);
        assert_eq!(groups[1].billing, crm_domain::GroupBilling::Subscription);
        // -1 (newer "unlimited") and null (legacy) both read as no limit.
        assert_eq!(groups[0].daily_limit_usd, None, "{generation}");
        assert!(groups[1].monthly_limit_usd.is_some());
        let users = c.list_users(None).await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, "user");
    }
}

async fn error_for(resp: ResponseTemplate) -> Error {
    let server = MockServer::start().await;
    serve(&server, "/api/v1/admin/accounts/9", resp).await;
    client(&server).get_account(9).await.unwrap_err()
}

#[tokio::test]
async fn string_code_error_is_unauthorized_with_the_code() {
    let e = error_for(json(401, "legacy-2025-12/error-invalid-admin-key.json")).await;
    assert_eq!(
        e,
        Error::Unauthorized {
            code: "INVALID_ADMIN_KEY".into(),
            message: "Invalid admin API key".into()
        }
    );
}

#[tokio::test]
async fn plain_text_404_is_route_missing() {
    let e = error_for(plain_404()).await;
    assert_eq!(
        e,
        Error::RouteMissing {
            method: "GET".into(),
            path: "/api/v1/admin/accounts/9".into()
        }
    );
}

#[tokio::test]
async fn enveloped_404_is_not_found() {
    let e = error_for(json(404, "current/error-not-found-404.json")).await;
    assert_eq!(
        e,
        Error::NotFound {
            reason: Some("ACCOUNT_NOT_FOUND".into()),
            message: "account not found".into()
        }
    );
}

#[tokio::test]
async fn html_200_from_the_frontend_is_an_error_never_data() {
    let e = error_for(ResponseTemplate::new(200).set_body_raw(
        fixture("legacy-2025-12/frontend.html"),
        "text/html; charset=utf-8",
    ))
    .await;
    assert!(
        matches!(e, Error::UnexpectedHtml { status: 200, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn compliance_423_carries_the_document_url() {
    let e = error_for(json(423, "current/error-compliance-423.json")).await;
    match e {
        Error::ComplianceGate { document_url, .. } => assert_eq!(
            document_url.as_deref(),
            Some("https://relay.example.com/legal/compliance.en.md")
        ),
        other => panic!("expected ComplianceGate, got {other:?}"),
    }
}

#[tokio::test]
async fn conflicts_keep_the_reason() {
    let e = error_for(json(409, "current/error-conflict-409.json")).await;
    assert_eq!(e.reason(), Some("SUBSCRIPTION_ALREADY_EXISTS"));
    assert!(matches!(e, Error::Conflict { .. }));
    let e = error_for(json(409, "current/error-mixed-channel-409.json")).await;
    match e {
        Error::Conflict { reason, message } => {
            assert_eq!(reason, "mixed_channel_warning");
            assert!(message.contains("mixing platforms"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn validation_rate_limit_and_server_errors() {
    let e = error_for(json(400, "current/error-validation-400.json")).await;
    assert_eq!(
        e,
        Error::Validation {
            reason: Some("GROUP_NOT_SUBSCRIPTION_TYPE".into()),
            message: "group is not a subscription group".into()
        }
    );
    let e = error_for(
        json_value(
            429,
            serde_json::json!({"code": 429, "message": "too many requests"}),
        )
        .insert_header("Retry-After", "7"),
    )
    .await;
    assert_eq!(
        e,
        Error::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: "too many requests".into()
        }
    );
    let e = error_for(json(500, "current/error-internal-500.json")).await;
    assert_eq!(
        e,
        Error::HostUnavailable {
            status: 500,
            message: "internal error".into()
        }
    );
}

#[tokio::test]
async fn success_without_json_content_type_or_with_bad_json_is_decode() {
    let e = error_for(ResponseTemplate::new(200).set_body_raw("ok", "text/plain")).await;
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e:?}");
    let e = error_for(ResponseTemplate::new(200).set_body_raw("{\"code\":0,", JSON)).await;
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    let e = error_for(ok_envelope(serde_json::json!({"id": "not-a-number"}))).await;
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
}

#[tokio::test]
async fn group_account_listing_filters_client_side_on_legacy_hosts() {
    let server = MockServer::start().await;
    // The legacy fixture ignores `group=` and returns every account.
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(wiremock::matchers::query_param("group", "3"))
        .respond_with(json(200, "legacy-2025-12/accounts-page.json"))
        .expect(1)
        .mount(&server)
        .await;
    let accounts = client(&server).list_group_accounts(3).await.unwrap();
    assert_eq!(accounts.iter().map(|a| a.id).collect::<Vec<_>>(), vec![11]);
}
