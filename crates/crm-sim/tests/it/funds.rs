//! Funds, quota and host-side monitors: the cn-providers routes and channel
//! monitors of the `current` profile (newer sub2api source, cited in the crate
//! README), the providers' balance APIs (cn-providers.md) and the
//! `/__sim/upstream-balances` control route.

use crm_sim::Profile;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Http, start};

async fn account(
    http: &Http,
    sim: &crm_sim::SimHandle,
    platform: &str,
    base: &str,
    key: &str,
    mode: &str,
) -> i64 {
    let a = http
        .admin(
            Method::POST,
            "/accounts",
            Some(json!({"name": format!("{platform}-{mode}"), "platform": platform, "type": "apikey",
                        "credentials": {"api_key": key, "base_url": sim.upstream_url(base), "account_mode": mode}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.data()["id"].as_i64().unwrap_or_default()
}

async fn upstream(http: &Http, url: &str, key: &str) -> (StatusCode, Value) {
    let r = http
        .send(reqwest::Client::new().get(url).bearer_auth(key))
        .await;
    (r.status, r.json())
}

/// cn-providers.md "Balance": DeepSeek `GET /user/balance` (string amounts),
/// Moonshot `GET /v1/users/me/balance` (numbers); a completion costs 0.01.
#[tokio::test]
async fn provider_balances_fall_with_completions_and_follow_the_control_route() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let ds = format!(
        "{}/user/balance",
        sim.upstream_url("https://api.deepseek.com")
    );
    let (status, body) = upstream(&http, &ds, "sk-ds-funds").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"is_available": true, "balance_infos": [{"currency": "CNY", "total_balance": "100.00", "granted_balance": "0.00", "topped_up_balance": "100.00"}]})
    );
    let chat = format!(
        "{}/chat/completions",
        sim.upstream_url("https://api.deepseek.com")
    );
    let r = http
        .send(
            reqwest::Client::new()
                .post(&chat)
                .bearer_auth("sk-ds-funds")
                .json(&json!({"model": "deepseek-v4-flash", "messages": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        upstream(&http, &ds, "sk-ds-funds").await.1["balance_infos"][0]["total_balance"],
        json!("99.99")
    );
    assert!((sim.upstream_balance("sk-ds-funds") - 99.99).abs() < 1e-9);

    // The control route sets it; at zero the key answers 402 Insufficient Balance.
    let set = http
        .send(
            http.req(Method::PUT, "/__sim/upstream-balances")
                .json(&json!({"key": "sk-ds-funds", "balance": 0.0})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let (_, body) = upstream(&http, &ds, "sk-ds-funds").await;
    assert_eq!(
        (
            body["is_available"].clone(),
            body["balance_infos"][0]["total_balance"].clone()
        ),
        (json!(false), json!("0.00"))
    );
    let r = http
        .send(
            reqwest::Client::new()
                .post(&chat)
                .bearer_auth("sk-ds-funds")
                .json(&json!({"model": "deepseek-v4-flash", "messages": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    let listed = http
        .send(http.req(Method::GET, "/__sim/upstream-balances"))
        .await
        .json();
    assert_eq!(
        listed,
        json!([{"key": "****unds", "balance": 0.0, "currency": "CNY"}])
    );

    let kimi = format!(
        "{}/v1/users/me/balance",
        sim.upstream_url("https://api.moonshot.cn")
    );
    sim.set_upstream_balance("sk-kimi-funds", 12.5, None);
    let (status, body) = upstream(&http, &kimi, "sk-kimi-funds").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["available_balance"], json!(12.5));
    assert_eq!(body["code"], json!(0));
    assert_eq!(
        upstream(&http, &kimi, "sim-invalid_key-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Providers without a balance API answer 404 there.
    let glm = format!(
        "{}/user/balance",
        sim.upstream_url("https://open.bigmodel.cn/api/paas/v4")
    );
    assert_eq!(upstream(&http, &glm, "sk-g").await.0, StatusCode::NOT_FOUND);
}

/// `handler/admin/cn_provider_handler.go` + `service/cn_provider_balance_service.go`
/// / `cn_provider_quota_service.go`: results, and application errors for the
/// wrong platform or mode.
#[tokio::test]
async fn host_balance_and_quota_routes_answer_like_the_newer_source() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let ds = account(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sk-ds-host",
        "payg",
    )
    .await;
    sim.set_upstream_balance("sk-ds-host", 42.0, None);
    let b = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{ds}/balance"),
            None,
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    let d = b.data();
    assert_eq!(
        (
            d["provider"].clone(),
            d["success"].clone(),
            d["balance"].clone(),
            d["currency"].clone(),
            d["available"].clone()
        ),
        (
            json!("deepseek"),
            json!(true),
            json!(42.0),
            json!("CNY"),
            json!(true)
        )
    );
    assert_eq!(d["balances"], json!([{"currency": "CNY", "balance": 42.0}]));
    assert!(d["fetched_at"].is_i64());

    let bad = account(
        &http,
        &sim,
        "kimi",
        "https://api.moonshot.cn/v1",
        "sim-invalid_key-2",
        "payg",
    )
    .await;
    let d = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{bad}/balance"),
            None,
        )
        .await
        .data();
    assert_eq!(
        (d["success"].clone(), d["status_code"].clone()),
        (json!(false), json!(401))
    );
    assert_eq!(d["error"], json!("Authentication failed (HTTP 401)"));

    let openai = account(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        "sk-o",
        "payg",
    )
    .await;
    let r = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{openai}/balance"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!("CN_BALANCE_INVALID_PLATFORM")
        )
    );
    let glm = account(
        &http,
        &sim,
        "zhipu",
        "https://open.bigmodel.cn/api/paas/v4",
        "sk-z",
        "payg",
    )
    .await;
    let r = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{glm}/balance"),
            None,
        )
        .await;
    assert_eq!(r.json()["reason"], json!("CN_BALANCE_NO_ENDPOINT"));
    let r = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{glm}/quota"),
            None,
        )
        .await;
    assert_eq!(r.json()["reason"], json!("CN_QUOTA_NOT_CODING_PLAN"));

    let coding = account(
        &http,
        &sim,
        "kimi",
        "https://api.kimi.com/coding/v1",
        "sk-kimi-code",
        "coding",
    )
    .await;
    let r = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{coding}/balance"),
            None,
        )
        .await;
    assert_eq!(r.json()["reason"], json!("CN_BALANCE_CODING_PLAN"));
    sim.set_upstream_balance("sk-kimi-code", 25.0, None);
    let q = http
        .admin(
            Method::GET,
            &format!("/cn-providers/accounts/{coding}/quota"),
            None,
        )
        .await
        .data();
    assert_eq!(
        (
            q["success"].clone(),
            q["source"].clone(),
            q["credential_valid"].clone()
        ),
        (json!(true), json!("coding_plan"), json!(true))
    );
    assert_eq!(q["tiers"][0]["window"], json!("5h"));
    assert_eq!(q["tiers"][0]["used_percent"], json!(75.0));
    assert_eq!(q["tiers"][1]["window"], json!("weekly"));

    let r = http
        .admin(Method::GET, "/cn-providers/accounts/999999/balance", None)
        .await;
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (StatusCode::NOT_FOUND, json!("CN_BALANCE_ACCOUNT_NOT_FOUND"))
    );
}

/// `server/routes/admin.go` `registerChannelMonitorRoutes` and
/// `handler/admin/channel_monitor_handler.go`.
#[tokio::test]
async fn channel_monitors_are_created_run_read_and_deleted() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let body = json!({"name": "crm-deepseek", "provider": "deepseek", "endpoint": sim.upstream_url("https://api.deepseek.com"),
                      "api_key": "sk-monitor-1", "primary_model": "deepseek-v4-flash", "interval_seconds": 300});
    let c = http
        .admin(Method::POST, "/channel-monitors", Some(body.clone()))
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let m = c.data();
    let id = m["id"].as_i64().unwrap_or_default();
    assert_eq!(
        (
            m["api_key_masked"].clone(),
            m["api_mode"].clone(),
            m["enabled"].clone(),
            m["check_mode"].clone()
        ),
        (
            json!("sk-m***"),
            json!("chat_completions"),
            json!(true),
            json!("probe")
        )
    );
    assert!(!c.text.contains("sk-monitor-1"));
    let run = http
        .admin(Method::POST, &format!("/channel-monitors/{id}/run"), None)
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.data()["results"][0]["status"], json!("operational"));
    let listed = http
        .admin(Method::GET, "/channel-monitors?provider=deepseek", None)
        .await
        .data();
    assert_eq!(listed["total"], json!(1));
    assert_eq!(
        (
            listed["items"][0]["primary_status"].clone(),
            listed["items"][0]["availability_7d"].clone()
        ),
        (json!("operational"), json!(100.0))
    );
    // A key the provider refuses makes the next check `failed`.
    let upd = http
        .admin(
            Method::PUT,
            &format!("/channel-monitors/{id}"),
            Some(json!({"api_key": "sim-invalid_key-m", "interval_seconds": 600})),
        )
        .await;
    assert_eq!(upd.data()["interval_seconds"], json!(600));
    let run = http
        .admin(Method::POST, &format!("/channel-monitors/{id}/run"), None)
        .await
        .data();
    assert_eq!(run["results"][0]["status"], json!("failed"));
    let hist = http
        .admin(
            Method::GET,
            &format!("/channel-monitors/{id}/history?limit=1"),
            None,
        )
        .await
        .data();
    assert_eq!(hist["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(hist["items"][0]["status"], json!("failed"));
    let got = http
        .admin(Method::GET, &format!("/channel-monitors/{id}"), None)
        .await
        .data();
    assert_eq!(got["availability_7d"], json!(50.0));

    let invalid = http
        .admin(
            Method::POST,
            "/channel-monitors",
            Some(json!({"name": "x", "provider": "moonshot", "interval_seconds": 300})),
        )
        .await;
    assert_eq!(
        (invalid.status, invalid.json()["reason"].clone()),
        (StatusCode::BAD_REQUEST, json!("VALIDATION_ERROR"))
    );
    let del = http
        .admin(Method::DELETE, &format!("/channel-monitors/{id}"), None)
        .await;
    assert_eq!(del.json(), json!({"code": 0, "message": "success"}));
    assert_eq!(
        http.admin(Method::GET, &format!("/channel-monitors/{id}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// d3e73f1 has neither route family: gin's plain-text 404.
#[tokio::test]
async fn legacy_has_no_funds_or_monitor_routes() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    for path in [
        "/cn-providers/accounts/1/balance",
        "/cn-providers/accounts/1/quota",
        "/channel-monitors",
    ] {
        let r = http.admin(Method::GET, path, None).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (StatusCode::NOT_FOUND, "404 page not found"),
            "{path}"
        );
    }
}

/// `response.ParsePagination` (newer `backend/internal/pkg/response/response.go`)
/// accepts `page_size` up to 1000, and the monitor handler's `List` then caps
/// it at `monitorMaxPageSize = 100` (`channel_monitor_handler.go` @57a1b04):
/// 101..=1000 is answered 100 a page, not the default 20; above 1000 the
/// default applies before the cap.
#[tokio::test]
async fn monitor_listing_caps_the_page_size_at_100() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    for i in 0..101 {
        let body = json!({"name": format!("m-{i}"), "provider": "openai", "endpoint": sim.upstream_url("https://api.deepseek.com"),
                          "api_key": "sk-monitor-1", "primary_model": "deepseek-v4-flash", "interval_seconds": 300});
        let c = http
            .admin(Method::POST, "/channel-monitors", Some(body))
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    }
    for (asked, size, pages) in [
        ("1000", 100, 2),
        ("101", 100, 2),
        ("100", 100, 2),
        ("1001", 20, 6),
    ] {
        let page = http
            .admin(
                Method::GET,
                &format!("/channel-monitors?page_size={asked}"),
                None,
            )
            .await
            .data();
        assert_eq!(
            (
                page["page_size"].clone(),
                page["items"].as_array().map(Vec::len),
                page["pages"].clone(),
                page["total"].clone()
            ),
            (json!(size), Some(size), json!(pages), json!(101)),
            "page_size={asked}"
        );
    }
}
