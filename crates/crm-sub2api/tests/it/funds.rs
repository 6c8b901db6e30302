//! Funds and quota readings through the host's cn-providers routes and the
//! providers' own balance APIs: exact requests, a failing route, an
//! unexpected shape, and no key in any reading.

use crate::support::*;
use crm_domain::ports::{HostApi, HostError, UpstreamFunds};
use crm_domain::{HostObjectId, ReadingKind, ReadingState, SecretString};
use crm_sub2api::{Sub2apiHost, UpstreamFundsClient, UpstreamRouting};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const UPSTREAM_KEY: &str = "sk-CANARYUPSTREAMFUNDS0123456789";

fn host(server: &MockServer) -> Sub2apiHost {
    Sub2apiHost::new(client(server))
}

#[tokio::test]
async fn balance_reads_every_currency_with_the_admin_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/7/balance"))
        .and(header("x-api-key", ADMIN_KEY))
        .respond_with(ok_envelope(json!({
            "provider": "deepseek", "success": true, "balance": 110.0, "currency": "CNY",
            "balances": [{"currency": "CNY", "balance": 110.0}, {"currency": "usd", "balance": 2.5}],
            "available": true, "status_code": 200, "fetched_at": 1765000000, "persisted": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    let v = host(&server)
        .account_balance(HostObjectId(7))
        .await
        .unwrap();
    assert_eq!(v.kind, ReadingKind::Balance);
    assert_eq!(v.state, ReadingState::Ok);
    assert_eq!(v.balances.len(), 2);
    assert_eq!(v.balances[1].currency, "USD");
    assert_eq!(v.available, Some(true));
}

#[tokio::test]
async fn quota_reads_the_windows() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/9/quota"))
        .respond_with(ok_envelope(json!({
            "provider": "kimi", "source": "coding_plan", "success": true, "credential_valid": true,
            "tiers": [{"window": "5h", "used_percent": 35.0, "reset_at": "2026-12-06T23:00:00Z"},
                      {"window": "weekly", "used_percent": 80.0}],
            "fetched_at": 1765000000, "persisted": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    let v = host(&server).account_quota(HostObjectId(9)).await.unwrap();
    assert_eq!(v.kind, ReadingKind::Quota);
    assert_eq!(v.quota.len(), 2);
    assert!((v.quota_remaining_ratio().unwrap() - 0.2).abs() < 1e-9);
}

#[tokio::test]
async fn a_provider_failure_is_an_unknown_reading_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/7/balance"))
        .respond_with(ok_envelope(json!({
            "provider": "deepseek", "success": false, "status_code": 401,
            "error": format!("Authentication failed (HTTP 401) for {UPSTREAM_KEY}"),
            "fetched_at": 1765000000, "persisted": false, "available": true, "balance": 0
        })))
        .mount(&server)
        .await;
    let v = host(&server)
        .account_balance(HostObjectId(7))
        .await
        .unwrap();
    assert_eq!(v.state, ReadingState::Unknown);
    let detail = v.detail.unwrap();
    assert!(detail.contains("HTTP 401"), "{detail}");
    assert!(!detail.contains(UPSTREAM_KEY), "{detail}");
}

#[tokio::test]
async fn failing_and_missing_routes_are_errors_the_caller_records_as_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/7/balance"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/8/quota"))
        .respond_with(plain_404())
        .mount(&server)
        .await;
    let h = host(&server);
    let e = h.account_balance(HostObjectId(7)).await.unwrap_err();
    assert!(
        matches!(e, HostError::Unavailable { status: 502, .. }),
        "{e:?}"
    );
    let e = h.account_quota(HostObjectId(8)).await.unwrap_err();
    assert!(matches!(e, HostError::RouteMissing { .. }), "{e:?}");
}

#[tokio::test]
async fn an_unexpected_shape_is_a_decode_error_or_an_unknown_reading() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/7/balance"))
        .respond_with(ok_envelope(json!({"credits": "lots"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/cn-providers/accounts/8/balance"))
        .respond_with(ok_envelope(json!({"success": true, "balances": []})))
        .mount(&server)
        .await;
    let h = host(&server);
    let e = h.account_balance(HostObjectId(7)).await.unwrap_err();
    assert!(matches!(e, HostError::Decode { .. }), "{e:?}");
    let v = h.account_balance(HostObjectId(8)).await.unwrap();
    assert_eq!(v.state, ReadingState::Unknown);
}

fn upstream(server: &MockServer) -> UpstreamFundsClient {
    UpstreamFundsClient::new(
        UpstreamRouting::ViaPrefix(server.uri()),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn upstream_balances_of_deepseek_and_moonshot() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api.deepseek.com/user/balance"))
        .and(header("authorization", format!("Bearer {UPSTREAM_KEY}").as_str()))
        .respond_with(json_value(200, json!({"is_available": false, "balance_infos": [
            {"currency": "CNY", "total_balance": "0.00", "granted_balance": "0.00", "topped_up_balance": "0.00"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api.moonshot.cn/v1/users/me/balance"))
        .respond_with(json_value(
            200,
            json!({"code": 0, "data": {"available_balance": 12.5}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let u = upstream(&server);
    let key = SecretString::from(UPSTREAM_KEY);
    let v = u
        .upstream_balance("https://api.deepseek.com".into(), &key)
        .await;
    assert_eq!(v.available, Some(false));
    assert_eq!(v.balances[0].amount, 0.0);
    let v = u
        .upstream_balance("https://api.moonshot.cn/v1".into(), &key)
        .await;
    assert_eq!(v.balances[0].currency, "CNY");
    assert_eq!(v.balances[0].amount, 12.5);
    let v = u
        .upstream_balance("https://open.bigmodel.cn/api/paas/v4".into(), &key)
        .await;
    assert_eq!(v.state, ReadingState::Unsupported);
    assert_eq!(
        u.request_count(),
        2,
        "no request for a provider without a balance API"
    );
}

#[tokio::test]
async fn upstream_failures_never_quote_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api.deepseek.com/user/balance"))
        .respond_with(json_value(
            401,
            json!({"error": {"message": format!("Authentication Fails, your api key: {UPSTREAM_KEY} is invalid")}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api.moonshot.cn/v1/users/me/balance"))
        .respond_with(json_value(200, json!({"code": 0, "data": {}})))
        .mount(&server)
        .await;
    let u = upstream(&server);
    let key = SecretString::from(UPSTREAM_KEY);
    let v = u
        .upstream_balance("https://api.deepseek.com".into(), &key)
        .await;
    assert_eq!(v.state, ReadingState::Unknown);
    let text = serde_json::to_string(&v).unwrap();
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    let v = u
        .upstream_balance("https://api.moonshot.cn/v1".into(), &key)
        .await;
    assert_eq!(v.state, ReadingState::Unknown, "unexpected shape");
}
