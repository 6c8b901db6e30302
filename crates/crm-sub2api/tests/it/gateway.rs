//! Gateway and upstream calls return outcomes, errors included.

use crate::support::*;
use crm_sub2api::gateway::smoke_chat_body;
use crm_sub2api::{SecretString, UpstreamClient, UpstreamRouting};
use wiremock::matchers::{body_json, body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER_KEY: &str = "sk-aaaabbbbccccddddeeeeffff00001234";

async fn gateway(m: &str, p: &str, resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(m))
        .and(path(p))
        .and(header(
            "authorization",
            format!("Bearer {USER_KEY}").as_str(),
        ))
        .respond_with(resp)
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn models_in_openai_and_claude_shapes() {
    for (rel, first) in [
        ("legacy-2025-12/gateway-models-openai.json", "gpt-5"),
        ("current/gateway-models-claude.json", "deepseek-chat"),
    ] {
        let server = gateway("GET", "/v1/models", json(200, rel)).await;
        let l = client(&server)
            .gateway_models(&SecretString::from(USER_KEY))
            .await
            .unwrap();
        assert!(l.outcome.ok, "{rel}");
        assert_eq!(l.model_ids.len(), 2);
        assert_eq!(l.model_ids[0], first);
        let r = &server.received_requests().await.unwrap()[0];
        assert!(
            r.headers.get("x-api-key").is_none(),
            "the admin key never goes to the gateway"
        );
    }
}

#[tokio::test]
async fn chat_smoke_sends_a_minimal_completion_and_reads_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header(
            "authorization",
            format!("Bearer {USER_KEY}").as_str(),
        ))
        // The prompt varies per call (see every_gateway_smoke_call_sends_a_prompt_of_its_own).
        .and(body_partial_json(serde_json::json!({
            "model": "deepseek-chat",
            "max_tokens": 16,
            "stream": false,
        })))
        .respond_with(json(200, "current/chat-ok.json"))
        .expect(1)
        .mount(&server)
        .await;
    let o = client(&server)
        .gateway_chat(&SecretString::from(USER_KEY), "deepseek-chat")
        .await
        .unwrap();
    assert!(o.ok);
    assert_eq!(o.status, Some(200));
    assert_eq!(o.error_type, None);
    assert_eq!(smoke_chat_body("x")["max_tokens"], 16);
}

#[tokio::test]
async fn an_error_object_inside_a_200_is_a_failure() {
    let server = gateway(
        "POST",
        "/v1/chat/completions",
        json(200, "current/chat-error-in-200.json"),
    )
    .await;
    let o = client(&server)
        .gateway_chat(&SecretString::from(USER_KEY), "deepseek-chat")
        .await
        .unwrap();
    assert!(!o.ok);
    assert_eq!(o.status, Some(200));
    assert_eq!(o.error_type.as_deref(), Some("upstream_error"));
    assert_eq!(o.error_code.as_deref(), Some("empty_response"));
}

#[tokio::test]
async fn middleware_string_codes_are_recognised() {
    for (status, rel, code) in [
        (
            403,
            "current/gateway-insufficient-balance.json",
            "INSUFFICIENT_BALANCE",
        ),
        (
            403,
            "current/gateway-subscription-not-found.json",
            "SUBSCRIPTION_NOT_FOUND",
        ),
        (
            401,
            "legacy-2025-12/error-invalid-api-key.json",
            "INVALID_API_KEY",
        ),
    ] {
        let server = gateway("POST", "/v1/chat/completions", json(status, rel)).await;
        let o = client(&server)
            .gateway_chat(&SecretString::from(USER_KEY), "deepseek-chat")
            .await
            .unwrap();
        assert!(!o.ok);
        assert_eq!(o.status, Some(status));
        assert_eq!(o.error_type.as_deref(), Some(code));
        assert!(crm_sub2api::gateway::is_middleware_code(code));
    }
    let server = gateway(
        "POST",
        "/v1/chat/completions",
        json(502, "current/gateway-upstream-auth-502.json"),
    )
    .await;
    let o = client(&server)
        .gateway_chat(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert_eq!(o.error_type.as_deref(), Some("upstream_error"));
    assert!(
        o.message
            .unwrap()
            .contains("Upstream authentication failed")
    );
}

#[tokio::test]
async fn legacy_hosts_answer_chat_completions_with_a_plain_404() {
    let server = gateway("POST", "/v1/chat/completions", plain_404()).await;
    let o = client(&server)
        .gateway_chat(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert!(!o.ok);
    assert_eq!(o.status, Some(404));
    assert_eq!(o.error_type.as_deref(), Some("route_missing"));
}

#[tokio::test]
async fn transport_failures_are_outcomes_too() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = crm_sub2api::Sub2apiClient::new(
        format!("http://{addr}"),
        crm_sub2api::AdminKey::new(SecretString::from(ADMIN_KEY)),
    )
    .unwrap();
    let o = c
        .gateway_chat(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert_eq!(o.status, None);
    assert!(!o.ok);
    assert_eq!(o.error_type.as_deref(), Some("connect"));
    assert!(o.transport_error.is_some());
}

#[tokio::test]
async fn upstream_probe_through_a_prefix_captures_provider_errors() {
    let sim = MockServer::start().await;
    let key = "sk-upstreamkeyabcd";
    Mock::given(method("GET"))
        .and(path("/__upstream/api.deepseek.com/models"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .respond_with(json(200, "current/upstream-models.json"))
        .expect(1)
        .mount(&sim)
        .await;
    Mock::given(method("POST"))
        .and(path("/__upstream/api.deepseek.com/chat/completions"))
        .and(body_json(smoke_chat_body("deepseek-chat")))
        .respond_with(json(401, "current/upstream-error-openai.json"))
        .expect(1)
        .mount(&sim)
        .await;
    Mock::given(method("POST"))
        .and(path("/__upstream/api.minimaxi.com/v1/chat/completions"))
        .respond_with(json(200, "current/upstream-error-minimax.json"))
        .expect(1)
        .mount(&sim)
        .await;
    let up = UpstreamClient::new(UpstreamRouting::ViaPrefix(format!(
        "{}/__upstream",
        sim.uri()
    )))
    .unwrap();
    let secret = SecretString::from(key);
    let l = up
        .models("https://api.deepseek.com/", &secret)
        .await
        .unwrap();
    assert!(l.outcome.ok);
    assert_eq!(l.model_ids, vec!["deepseek-chat", "deepseek-reasoner"]);
    let o = up
        .chat("https://api.deepseek.com", &secret, "deepseek-chat")
        .await
        .unwrap();
    assert!(!o.ok);
    assert_eq!(o.status, Some(401));
    assert_eq!(o.error_type.as_deref(), Some("authentication_error"));
    assert_eq!(o.error_code.as_deref(), Some("invalid_request_error"));
    assert!(o.message.unwrap().contains("Authentication Fails"));
    let o = up
        .chat("https://api.minimaxi.com/v1", &secret, "MiniMax-M2")
        .await
        .unwrap();
    assert!(!o.ok, "MiniMax base_resp error inside a 200");
    assert_eq!(o.error_code.as_deref(), Some("1004"));
    assert_eq!(up.request_count(), 3);
    assert!(up.models("not a url", &secret).await.is_err());
}

#[tokio::test]
async fn messages_smoke_sends_a_minimal_anthropic_message_and_reads_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header(
            "authorization",
            format!("Bearer {USER_KEY}").as_str(),
        ))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(serde_json::json!({
            "model": "deepseek-chat",
            "max_tokens": 16,
            "stream": false,
        })))
        .respond_with(json_value(
            200,
            serde_json::json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "deepseek-chat",
                "content": [{"type": "text", "text": "pong"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 1}
            }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let o = client(&server)
        .gateway_messages(&SecretString::from(USER_KEY), "deepseek-chat")
        .await
        .unwrap();
    assert!(o.ok, "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.error_type, None);
    let r = &server.received_requests().await.unwrap()[0];
    assert!(
        r.headers.get("x-api-key").is_none(),
        "the admin key never goes to the gateway"
    );
}

#[tokio::test]
async fn messages_errors_in_the_anthropic_shape_are_failures_also_inside_a_200() {
    // sub2api's Claude-style handler answers errors as
    // {"type":"error","error":{"type","message"}} (handler/gateway_handler.go
    // errorResponse at d3e73f1); after a stream started the same object
    // can arrive with a 200.
    let anthropic_error = |ty: &str, msg: &str| serde_json::json!({"type": "error", "error": {"type": ty, "message": msg}});
    for (status, body, ty) in [
        (
            502,
            anthropic_error(
                "upstream_error",
                "Upstream authentication failed, please contact administrator",
            ),
            "upstream_error",
        ),
        (
            503,
            anthropic_error(
                "overloaded_error",
                "Upstream service overloaded, please retry later",
            ),
            "overloaded_error",
        ),
        (
            200,
            anthropic_error("api_error", "No available accounts: no available accounts"),
            "api_error",
        ),
        (
            401,
            serde_json::json!({"code": "INVALID_API_KEY", "message": "Invalid API key"}),
            "INVALID_API_KEY",
        ),
    ] {
        let server = gateway("POST", "/v1/messages", json_value(status, body)).await;
        let o = client(&server)
            .gateway_messages(&SecretString::from(USER_KEY), "m")
            .await
            .unwrap();
        assert!(!o.ok, "{status} {ty}");
        assert_eq!(o.status, Some(status));
        assert_eq!(o.error_type.as_deref(), Some(ty));
    }
    // A 2xx that is not an Anthropic message did not answer the call.
    let server = gateway("POST", "/v1/messages", json(200, "current/chat-ok.json")).await;
    let o = client(&server)
        .gateway_messages(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert!(!o.ok);
    assert_eq!(o.error_type.as_deref(), Some("decode"));
    // A host without the route answers gin's plain 404.
    let server = gateway("POST", "/v1/messages", plain_404()).await;
    let o = client(&server)
        .gateway_messages(&SecretString::from(USER_KEY), "m")
        .await
        .unwrap();
    assert_eq!(o.error_type.as_deref(), Some("route_missing"));
}

#[tokio::test]
async fn upstream_messages_go_to_the_anthropic_endpoint_with_anthropic_headers() {
    let sim = MockServer::start().await;
    let key = "sk-upstreamkeyabcd";
    Mock::given(method("POST"))
        .and(path("/__upstream/api.deepseek.com/anthropic/v1/messages"))
        .and(header("x-api-key", key))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_json(serde_json::json!({
            "model": "deepseek-chat",
            "max_tokens": 16,
            "stream": false,
            "messages": [{"role": "user", "content": "Reply with the single word: pong"}]
        })))
        .respond_with(json_value(
            200,
            serde_json::json!({"type": "message", "content": [{"type": "text", "text": "pong"}]}),
        ))
        .expect(1)
        .mount(&sim)
        .await;
    Mock::given(method("POST"))
        .and(path("/__upstream/api.moonshot.cn/anthropic/v1/messages"))
        .respond_with(json_value(
            401,
            serde_json::json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        ))
        .expect(1)
        .mount(&sim)
        .await;
    let up = UpstreamClient::new(UpstreamRouting::ViaPrefix(format!(
        "{}/__upstream",
        sim.uri()
    )))
    .unwrap();
    let secret = SecretString::from(key);
    let o = up
        .messages(
            "https://api.deepseek.com/anthropic/",
            &secret,
            "deepseek-chat",
        )
        .await
        .unwrap();
    assert!(o.ok, "{o:?}");
    let r = &sim.received_requests().await.unwrap()[0];
    assert!(
        r.headers.get("authorization").is_none(),
        "Anthropic endpoints take the key as x-api-key only"
    );
    let o = up
        .messages("https://api.moonshot.cn/anthropic", &secret, "kimi-k2")
        .await
        .unwrap();
    assert!(!o.ok);
    assert_eq!(o.status, Some(401));
    assert_eq!(o.error_type.as_deref(), Some("authentication_error"));
    assert!(!o.body_excerpt.contains(key));
}

/// sub2api d3e73f1 keeps a sticky session per prompt hash (first message
/// text, `GenerateSessionHash`) for every key on the host, whatever its
/// group: a smoke prompt repeated from another batch's key was answered by
/// the first batch's account on a real host. Each gateway smoke call must
/// therefore send a prompt of its own.
#[tokio::test]
async fn every_gateway_smoke_call_sends_a_prompt_of_its_own() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(json_value(
            200,
            serde_json::json!({"type": "message", "content": [{"type": "text", "text": "pong"}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(json(200, "current/chat-ok.json"))
        .mount(&server)
        .await;
    let c = client(&server);
    let key = SecretString::from(USER_KEY);
    for _ in 0..2 {
        assert!(c.gateway_messages(&key, "m").await.unwrap().ok);
        assert!(c.gateway_chat(&key, "m").await.unwrap().ok);
    }
    let prompts: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            b["messages"][0]["content"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(prompts.len(), 4);
    for p in &prompts {
        assert!(p.starts_with("Reply with the single word: pong"), "{p}");
    }
    let distinct: std::collections::BTreeSet<&String> = prompts.iter().collect();
    assert_eq!(distinct.len(), 4, "{prompts:?}");
}
