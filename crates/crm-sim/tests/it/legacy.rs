//! The `legacy-2025-12` profile against sub2api's own code at d3e73f1 (and
//! what a real d3e73f1 host answered, /work/notes/real-sub2api.md).

use crm_sim::Profile;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Http, chain, start};

fn ask(model: &str) -> serde_json::Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]})
}

/// d3e73f1 `handler/gateway_handler.go` `Models`: `openai` groups get
/// `pkg/openai/constants.go` `DefaultModels` (7, OpenAI-shaped), every other
/// group `pkg/claude/constants.go` `DefaultModels` (3); the accounts' mapped
/// models never appear.
#[tokio::test]
async fn models_are_the_static_defaults_of_the_group_platform() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let openai = chain(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        "sk-o",
        false,
        1.0,
    )
    .await;
    let data = http
        .gateway(Method::GET, "/v1/models", &openai.key, None)
        .await
        .json()["data"]
        .clone();
    let ids: Vec<&str> = data
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        [
            "gpt-5.2",
            "gpt-5.2-codex",
            "gpt-5.1-codex-max",
            "gpt-5.1-codex",
            "gpt-5.1",
            "gpt-5.1-codex-mini",
            "gpt-5"
        ]
    );
    assert_eq!(
        data[0],
        json!({"id": "gpt-5.2", "object": "model", "created": 1_733_875_200, "owned_by": "openai", "type": "model", "display_name": "GPT-5.2"})
    );
    let anthropic = chain(
        &http,
        &sim,
        "anthropic",
        "https://api.deepseek.com/anthropic",
        "sk-a",
        false,
        1.0,
    )
    .await;
    let data = http
        .gateway(Method::GET, "/v1/models", &anthropic.key, None)
        .await
        .json()["data"]
        .clone();
    assert_eq!(data.as_array().map(Vec::len), Some(3));
    assert_eq!(
        data[1],
        json!({"id": "claude-sonnet-4-5-20250929", "type": "model", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"})
    );
    assert!(!data.to_string().contains("chat-model"));
}

/// d3e73f1 `server/routes/gateway.go` registers no chat completions route:
/// gin's plain-text 404, before any key check.
#[tokio::test]
async fn chat_completions_is_a_plain_text_404() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let r = http
        .send(
            http.req(Method::POST, "/v1/chat/completions")
                .bearer_auth("sk-x")
                .json(&ask("m")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (r.content_type.as_str(), r.text.as_str()),
        ("text/plain", "404 page not found")
    );
}

/// d3e73f1 `service/gateway_service.go` `Forward` / `buildUpstreamRequest`: an
/// `anthropic` apikey account is sent `base_url + "/v1/messages"` with its
/// model mapping applied; the provider answers only under its Anthropic base.
#[tokio::test]
async fn messages_go_to_base_url_v1_messages_with_the_mapping() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let good = chain(
        &http,
        &sim,
        "anthropic",
        "https://api.deepseek.com/anthropic",
        "sk-ds-anthropic",
        false,
        1.0,
    )
    .await;
    let r = http
        .gateway(
            Method::POST,
            "/v1/messages",
            &good.key,
            Some(ask("chat-model")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let m = r.json();
    assert_eq!(
        (m["type"].clone(), m["model"].clone()),
        (json!("message"), json!("chat-model"))
    );
    assert_eq!(m["content"][0]["type"], json!("text"));
    // The provider was reached and charged the key (100 - 0.01).
    let funds = sim.state_dump()["upstream_funds"].clone();
    assert_eq!(funds[0]["balance"], json!(99.99), "{funds}");
    // The account test sends the mapped model to the same endpoint (account_test_service.go).
    let t = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/test", good.account_id),
            Some(json!({"model_id": "chat-model"})),
        )
        .await;
    assert!(t.text.contains(r#""model":"upstream-model""#), "{}", t.text);
    assert!(t.text.contains("test_complete"), "{}", t.text);

    // The provider's OpenAI base has no /v1/messages: 404, not a failover code → 502.
    let wrong = chain(
        &http,
        &sim,
        "anthropic",
        "https://api.deepseek.com",
        "sk-ds-root",
        false,
        1.0,
    )
    .await;
    let r = http
        .gateway(
            Method::POST,
            "/v1/messages",
            &wrong.key,
            Some(ask("chat-model")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "upstream_error", "message": "Upstream request failed"}})
    );
    // A model outside the mapping finds no account: 503, no 404.
    let r = http
        .gateway(Method::POST, "/v1/messages", &good.key, Some(ask("other")))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["error"]["message"],
        json!("No available accounts: no available accounts supporting model: other")
    );
}

/// d3e73f1 `openai_gateway_service.go` `buildUpstreamRequest` and
/// `account_test_service.go` `testOpenAIAccountConnection`: an `openai` apikey
/// account speaks the Responses API (`base_url + "/v1/responses"`), which the
/// simulated CN providers do not serve; `/v1/messages` never selects it.
#[tokio::test]
async fn openai_accounts_speak_only_the_responses_api() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "openai",
        "https://api.deepseek.com",
        "sk-o",
        false,
        1.0,
    )
    .await;
    let r = http
        .gateway(
            Method::POST,
            "/v1/responses",
            &c.key,
            Some(json!({"model": "chat-model", "input": "ping"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.json(),
        json!({"error": {"type": "upstream_error", "message": "Upstream request failed"}})
    );
    let r = http
        .gateway(
            Method::POST,
            "/v1/messages",
            &c.key,
            Some(ask("chat-model")),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let t = http
        .admin(
            Method::POST,
            &format!("/accounts/{}/test", c.account_id),
            None,
        )
        .await;
    assert!(t.text.contains(r#""model":"gpt-5.1-codex""#), "{}", t.text);
    assert!(t.text.contains("API returned 404"), "{}", t.text);
}

/// d3e73f1 `ratelimit_service.go` `HandleUpstreamError`: a gateway request
/// hitting an upstream 401 stops the account with a fixed message; the
/// account test (`account_test_service.go`) never changes the account.
#[tokio::test]
async fn only_the_gateway_marks_an_account_error_on_401() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let c = chain(
        &http,
        &sim,
        "anthropic",
        "https://api.moonshot.cn/anthropic",
        "sim-invalid_key-1",
        false,
        1.0,
    )
    .await;
    let account = format!("/accounts/{}", c.account_id);
    let t = http
        .admin(
            Method::POST,
            &format!("{account}/test"),
            Some(json!({"model_id": "chat-model"})),
        )
        .await;
    assert!(t.text.contains("API returned 401"), "{}", t.text);
    assert!(!t.text.contains(r#""code""#), "{}", t.text);
    assert_eq!(
        http.admin(Method::GET, &account, None).await.data()["status"],
        json!("active")
    );
    let r = http
        .gateway(
            Method::POST,
            "/v1/messages",
            &c.key,
            Some(ask("chat-model")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.json()["error"]["message"],
        json!("Upstream authentication failed, please contact administrator")
    );
    let a = http.admin(Method::GET, &account, None).await.data();
    assert_eq!(
        (a["status"].clone(), a["error_message"].clone()),
        (
            json!("error"),
            json!("Authentication failed (401): invalid or expired credentials")
        )
    );
}

/// The provider's Anthropic endpoint (`<anthropic_base_url>/v1/messages`,
/// cn-providers.md) answers Anthropic-shaped replies and errors for every key
/// behaviour; sub2api sends apikey accounts' keys as `x-api-key`
/// (gateway_service.go `buildUpstreamRequest`), Claude Code sends Bearer.
#[tokio::test]
async fn anthropic_upstream_endpoints_answer_anthropic_shapes() {
    let sim = start(Profile::legacy_2025_12()).await;
    let http = Http::new(&sim);
    let url = format!(
        "{}/v1/messages",
        sim.upstream_url("https://api.deepseek.com/anthropic")
    );
    let send = |key: &'static str, bearer: bool| {
        let rb = reqwest::Client::new()
            .post(&url)
            .json(&ask("deepseek-v4-flash"));
        if bearer {
            rb.bearer_auth(key)
        } else {
            rb.header("x-api-key", key)
        }
    };
    let ok = http.send(send("sk-ok", false)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let m = ok.json();
    assert_eq!(
        (
            m["type"].clone(),
            m["role"].clone(),
            m["model"].clone(),
            m["stop_reason"].clone()
        ),
        (
            json!("message"),
            json!("assistant"),
            json!("deepseek-v4-flash"),
            json!("end_turn")
        )
    );
    assert!(m["usage"]["input_tokens"].is_u64() && m["content"][0]["text"].is_string());
    assert_eq!(http.send(send("sk-ok", true)).await.status, StatusCode::OK);
    for (key, status, kind) in [
        ("sim-invalid_key-1", 401, "authentication_error"),
        ("sim-insufficient_balance-1", 402, "billing_error"),
        ("sim-quota_exhausted-1", 429, "rate_limit_error"),
        ("sim-rate_limited-1", 429, "rate_limit_error"),
        ("sim-server_error-1", 500, "api_error"),
        ("sim-overloaded-1", 529, "overloaded_error"),
    ] {
        let r = http.send(send(key, false)).await;
        assert_eq!(r.status.as_u16(), status, "{key}: {}", r.text);
        assert_eq!(r.json()["type"], json!("error"), "{key}");
        assert_eq!(r.json()["error"]["type"], json!(kind), "{key}");
        assert!(r.json()["error"]["message"].is_string(), "{key}");
    }
    // Kimi's Anthropic base too; the OpenAI base has no /v1/messages.
    let kimi = format!(
        "{}/v1/messages",
        sim.upstream_url("https://api.moonshot.cn/anthropic")
    );
    let r = http
        .send(
            reqwest::Client::new()
                .post(&kimi)
                .header("x-api-key", "sk-k")
                .json(&ask("kimi-k3")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let root = format!(
        "{}/v1/messages",
        sim.upstream_url("https://api.deepseek.com")
    );
    let r = http
        .send(
            reqwest::Client::new()
                .post(&root)
                .header("x-api-key", "sk-k")
                .json(&ask("m")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
