//! Every upstream behaviour, answered directly by the simulated provider and
//! through the host's forwarding, with the contract's statuses and bodies.

use std::time::{Duration, Instant};

use crm_sim::{Behaviour, Profile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Http, chain, start};

async fn direct(http: &Http, url: &str, key: &str) -> (StatusCode, Value) {
    let r = http
        .send(
            http.client
                .post(format!("{url}/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "m", "messages": []})),
        )
        .await;
    (r.status, r.json())
}

#[tokio::test]
async fn providers_answer_with_their_own_error_shapes() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let cases: Vec<(&str, &str, u16, Value)> = vec![
        (
            "https://api.deepseek.com",
            "sim-insufficient_balance-1",
            402,
            json!({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}),
        ),
        (
            "https://api.moonshot.cn/v1",
            "sim-quota_exhausted-1",
            429,
            json!({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"exceeded_current_quota_error"}}),
        ),
        (
            "https://open.bigmodel.cn/api/paas/v4",
            "sim-quota_exhausted-1",
            429,
            json!({"error":{"code":"1113","message":"您的账户已欠费，请充值后重试。"}}),
        ),
        (
            "https://api.minimaxi.com/v1",
            "sim-quota_exhausted-1",
            429,
            json!({"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}),
        ),
        (
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "sim-quota_exhausted-1",
            429,
            json!({"error":{"message":"Access denied, please make sure your account is in good standing.","type":"insufficient_quota","param":null,"code":"Arrearage"}}),
        ),
        (
            "https://api.example.com/v1",
            "sim-quota_exhausted-1",
            429,
            json!({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}),
        ),
        (
            "https://api.moonshot.cn/v1",
            "sim-invalid_key-1",
            401,
            json!({"error":{"message":"Invalid Authentication","type":"invalid_authentication_error"}}),
        ),
    ];
    for (base, key, status, body) in cases {
        let (s, b) = direct(&http, &sim.upstream_url(base), key).await;
        assert_eq!((s.as_u16(), &b), (status, &body), "{base} {key}");
    }
    for (key, status) in [
        ("sim-rate_limited-1", 429),
        ("sim-server_error-1", 500),
        ("sim-overloaded-1", 503),
        ("sim-ok-1", 200),
        ("sim-host_incompatible-1", 200),
    ] {
        let (s, _) = direct(&http, &sim.upstream_url("https://api.deepseek.com"), key).await;
        assert_eq!(s.as_u16(), status, "{key}");
    }
    let models = http
        .send(
            http.client
                .get(format!(
                    "{}/models",
                    sim.upstream_url("https://api.deepseek.com")
                ))
                .bearer_auth("sk-x"),
        )
        .await;
    assert_eq!(models.json()["data"][0]["id"], json!("deepseek-v4-flash"));
    let no_key = http
        .send(http.client.get(format!(
            "{}/models",
            sim.upstream_url("https://api.deepseek.com")
        )))
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn host_forwarding_maps_upstream_failures_like_sub2api() {
    let sim = start(Profile::current()).await;
    sim.set_slow_delay(Duration::from_millis(300));
    let http = Http::new(&sim);
    let cases: Vec<(&str, u16, Value)> = vec![
        ("sim-ok-1", 200, Value::Null),
        (
            "sim-invalid_key-1",
            502,
            json!({"error":{"type":"upstream_error","message":"Upstream authentication failed, please contact administrator"}}),
        ),
        (
            "sim-insufficient_balance-1",
            502,
            json!({"error":{"type":"upstream_error","message":"Upstream request failed"}}),
        ),
        (
            "sim-quota_exhausted-1",
            429,
            json!({"error":{"type":"rate_limit_error","message":"Upstream rate limit exceeded, please retry later"}}),
        ),
        (
            "sim-rate_limited-1",
            429,
            json!({"error":{"type":"rate_limit_error","message":"Upstream rate limit exceeded, please retry later"}}),
        ),
        (
            "sim-server_error-1",
            502,
            json!({"error":{"type":"upstream_error","message":"Upstream service temporarily unavailable"}}),
        ),
        (
            "sim-overloaded-1",
            502,
            json!({"error":{"type":"upstream_error","message":"Upstream service temporarily unavailable"}}),
        ),
        (
            "sim-host_incompatible-1",
            502,
            json!({"error":{"type":"upstream_error","message":"Upstream request failed: the host could not handle this upstream's response"}}),
        ),
    ];
    for (key, status, body) in cases {
        let c = chain(
            &http,
            &sim,
            "deepseek",
            "https://api.deepseek.com",
            key,
            false,
            1.0,
        )
        .await;
        let r = http.chat(&c.key, "chat-model").await;
        assert_eq!(r.status.as_u16(), status, "{key}: {}", r.text);
        if status != 200 {
            assert_eq!(r.json(), body, "{key}");
        }
    }
    let slow = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sim-slow-1",
        false,
        1.0,
    )
    .await;
    let t = Instant::now();
    let r = http.chat(&slow.key, "chat-model").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn behaviour_set_by_control_api_overrides_the_key_convention() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "kimi",
        "https://api.moonshot.cn/v1",
        "sk-kimi-real-looking",
        false,
        1.0,
    )
    .await;
    assert_eq!(http.chat(&c.key, "chat-model").await.status, StatusCode::OK);
    sim.set_upstream_behaviour("sk-kimi-real-looking", Behaviour::QuotaExhausted);
    assert_eq!(
        http.chat(&c.key, "chat-model").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The same through the HTTP control API.
    let r = http
        .send(
            http.req(Method::PUT, "/__sim/upstream-keys")
                .json(&json!({"key": "sk-kimi-real-looking", "behaviour": "invalid_key"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        http.chat(&c.key, "chat-model").await.status,
        StatusCode::BAD_GATEWAY
    );
    // The dump never shows the key in clear.
    let dump = http.send(http.req(Method::GET, "/__sim/state")).await.text;
    assert!(!dump.contains("sk-kimi-real-looking"));
    assert!(dump.contains("****king"));
}

#[tokio::test]
async fn failover_skips_a_failing_account() {
    let sim = start(Profile::current()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "deepseek",
        "https://api.deepseek.com",
        "sim-server_error-1",
        false,
        1.0,
    )
    .await;
    let second = http
        .admin(
            Method::POST,
            "/accounts",
            Some(json!({"name": "backup", "platform": "deepseek", "type": "apikey", "priority": 99, "group_ids": [c.group_id],
                        "credentials": {"api_key": "sk-fine", "base_url": "https://api.deepseek.com", "model_mapping": {"chat-model": "x"}}})),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(http.chat(&c.key, "chat-model").await.status, StatusCode::OK);
}
