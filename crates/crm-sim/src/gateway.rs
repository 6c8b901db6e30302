//! The gateway (`/v1/models`, `/v1/chat/completions`) and the simulated upstream
//! endpoints under `/__upstream/{authority}/...`.
//!
//! Forwarding is in-process: the host picks an account, resolves its provider
//! from `base_url` and asks `upstream::simulate` what that provider would answer
//! for the account's key, then maps failures like sub2api's `mapUpstreamError`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use crate::admin::{bearer, behaviour_for};
use crate::model::{Account, Group, State, now};
use crate::profile::Profile;
use crate::reply::{json_response, mw_err, oai_err};
use crate::server::Shared;
use crate::upstream::{self, Behaviour, Op};

type App = AxState<Arc<Shared>>;

pub(crate) fn routes(p: &Profile) -> Router<Arc<Shared>> {
    let mut r = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/messages", post(messages))
        .route("/__upstream/{authority}/{*path}", any(upstream_endpoint));
    if p.chat_completions {
        r = r
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions));
    }
    r
}

pub(crate) fn claude_item(id: &str) -> Value {
    json!({"id": id, "type": "model", "display_name": id, "created_at": "2024-01-01T00:00:00Z"})
}

fn openai_item(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_704_067_200, "owned_by": "openai", "type": "model", "display_name": id})
}

fn platform_defaults(platform: &str) -> &'static [&'static str] {
    match platform {
        "anthropic" => &["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"],
        "openai" => &["gpt-5.1", "gpt-5.1-codex"],
        "gemini" => &["gemini-2.5-pro", "gemini-2.5-flash"],
        // CN platforms have no built-in fallback list.
        _ => &[],
    }
}

/// The caller of a gateway route after the auth and billing middleware.
struct Caller {
    group: Option<Group>,
}

fn gateway_key(headers: &HeaderMap) -> Option<&str> {
    bearer(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()))
        .filter(|k| !k.is_empty())
}

/// `apiKeyAuthWithSubscription`: key, user, group and billing gates, string codes.
fn authenticate(st: &State, headers: &HeaderMap) -> Result<Caller, Response> {
    let raw = gateway_key(headers).ok_or_else(|| {
        mw_err(
            StatusCode::UNAUTHORIZED,
            "API_KEY_REQUIRED",
            "API key is required in Authorization header (Bearer scheme), x-api-key header, or x-goog-api-key header",
        )
    })?;
    let key = st
        .keys
        .values()
        .find(|k| k.key == raw)
        .cloned()
        .ok_or_else(|| {
            mw_err(
                StatusCode::UNAUTHORIZED,
                "INVALID_API_KEY",
                "Invalid API key",
            )
        })?;
    if key.status != "active" {
        return Err(mw_err(
            StatusCode::UNAUTHORIZED,
            "API_KEY_DISABLED",
            "API key is disabled",
        ));
    }
    let user = st
        .users
        .get(&key.user_id)
        .ok_or_else(|| mw_err(StatusCode::UNAUTHORIZED, "USER_NOT_FOUND", "User not found"))?;
    if user.status != "active" {
        return Err(mw_err(
            StatusCode::UNAUTHORIZED,
            "USER_INACTIVE",
            "User account is not active",
        ));
    }
    let group = match key.group_id {
        Some(gid) => match st.groups.get(&gid) {
            Some(g) if g.status != "active" && st.profile.group_deleted_code => {
                return Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "GROUP_DISABLED",
                    "Group is disabled",
                ));
            }
            Some(g) => Some(g.clone()),
            None if st.profile.group_deleted_code => {
                return Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "GROUP_DELETED",
                    "Group has been deleted",
                ));
            }
            None => None,
        },
        None if st.profile.group_deleted_code => {
            return Err(json_response(
                StatusCode::FORBIDDEN,
                json!({"type": "error", "error": {"type": "permission_error", "message": "API key is not assigned to any group"}}),
            ));
        }
        None => None,
    };
    match &group {
        Some(g) if g.subscription_type == "subscription" => {
            let Some(sub) = st.active_subscription(user.id, g.id) else {
                return Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "SUBSCRIPTION_NOT_FOUND",
                    "No active subscription found for this group",
                ));
            };
            // The simulator keeps one usage figure and checks it against the smallest limit.
            let limit = [g.daily_limit_usd, g.weekly_limit_usd, g.monthly_limit_usd]
                .into_iter()
                .flatten()
                .filter(|l| *l > 0.0)
                .reduce(f64::min);
            if limit.is_some_and(|l| sub.usage_usd >= l) {
                return Err(mw_err(
                    StatusCode::TOO_MANY_REQUESTS,
                    "USAGE_LIMIT_EXCEEDED",
                    "Subscription usage limit exceeded",
                ));
            }
        }
        _ => {
            if user.balance <= 0.0 {
                return Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "INSUFFICIENT_BALANCE",
                    "Insufficient account balance",
                ));
            }
        }
    }
    Ok(Caller { group })
}

async fn models(AxState(app): App, headers: HeaderMap) -> Result<Response, Response> {
    let st = app.lock();
    let caller = authenticate(&st, &headers)?;
    let Some(group) = caller.group else {
        return Ok(axum::Json(json!({"object": "list", "data": []})).into_response());
    };
    let mut ids: Vec<String> = Vec::new();
    for a in st.accounts_in_group(group.id) {
        for k in a.model_mapping().into_iter().flat_map(|m| m.keys()) {
            if !ids.contains(k) {
                ids.push(k.clone());
            }
        }
    }
    if ids.is_empty() {
        ids = platform_defaults(&group.platform)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    let openai = st.profile.openai_shaped_models && group.platform == "openai";
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            if openai {
                openai_item(id)
            } else {
                claude_item(id)
            }
        })
        .collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}

/// The provider authority of a base URL; a base URL pointing at a simulator's own
/// `/__upstream/{authority}` names that authority.
fn provider_authority(base_url: &str) -> Option<String> {
    let (authority, path) = upstream::split_base_url(base_url)?;
    match path.strip_prefix("/__upstream/") {
        Some(rest) => rest
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        None => Some(authority),
    }
}

/// Which route family answers: OpenAI routes and Anthropic routes shape
/// handler errors differently (docs/sub2api-contract.md §4.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    OpenAi,
    Anthropic,
}

fn herr(shape: Shape, status: StatusCode, kind: &str, message: &str) -> Response {
    match shape {
        Shape::OpenAi => oai_err(status, kind, message),
        Shape::Anthropic => json_response(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ),
    }
}

/// sub2api's `mapUpstreamError`.
fn map_upstream_error(shape: Shape, status: u16) -> Response {
    match status {
        401 => herr(
            shape,
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream authentication failed, please contact administrator",
        ),
        403 => herr(
            shape,
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream access forbidden, please contact administrator",
        ),
        429 => herr(
            shape,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Upstream rate limit exceeded, please retry later",
        ),
        529 => herr(
            shape,
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_error",
            "Upstream service overloaded, please retry later",
        ),
        500 | 502 | 503 | 504 => herr(
            shape,
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream service temporarily unavailable",
        ),
        _ => herr(
            shape,
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream request failed",
        ),
    }
}

struct Attempt {
    reply: Option<upstream::Reply>,
    failure: Option<Response>,
}

fn price(row: Option<&Value>, field: &str) -> f64 {
    row.and_then(|r| r.get(field))
        .and_then(Value::as_f64)
        .unwrap_or(0.000_001)
}

/// Auth, billing gate, model checks, account choice, forwarding with failover
/// and charging; answers the upstream's `chat.completion` and whether the
/// client asked for a stream.
async fn forward(
    app: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    shape: Shape,
) -> Result<(Value, bool), Response> {
    let (attempts, model, stream, group) = {
        let st = app.lock();
        let caller = authenticate(&st, headers)?;
        let req: Value = serde_json::from_slice(body).map_err(|_| {
            herr(
                shape,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Failed to parse request body",
            )
        })?;
        let model = req
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                herr(
                    shape,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "model is required",
                )
            })?
            .to_owned();
        let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let max_tokens = req
            .get("max_tokens")
            .or_else(|| req.get("max_completion_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(16);
        let prompt_tokens = (req
            .get("messages")
            .map(|m| m.to_string().len())
            .unwrap_or(0)
            / 4)
        .max(1) as u64;
        let Some(group) = caller.group.clone() else {
            return Err(herr(
                shape,
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "No available accounts: no group",
            ));
        };
        let mut routed = model.clone();
        if let Some(ch) = st
            .channel_of_group(group.id)
            .filter(|c| c.status == "active")
        {
            if ch.restrict_models && ch.prices_model(&model).is_none() {
                return Err(herr(
                    shape,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("Model {model} is not allowed in this channel"),
                ));
            }
            if let Some(m) = ch
                .model_mapping
                .get(&group.platform)
                .and_then(|m| m.get(&model))
                .and_then(Value::as_str)
            {
                routed = m.to_owned();
            }
        }
        let in_group: Vec<&Account> = st.accounts_in_group(group.id).collect();
        if !in_group.iter().any(|a| a.supports(&routed)) {
            return Err(herr(
                shape,
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                &format!("The model `{model}` is not available in this group"),
            ));
        }
        let mut candidates: Vec<&Account> = in_group
            .into_iter()
            .filter(|a| a.is_available() && a.supports(&routed))
            .collect();
        candidates.sort_by_key(|a| (a.priority, a.id));
        if candidates.is_empty() {
            return Err(herr(
                shape,
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                &format!("No available accounts: no available accounts supporting model {model}"),
            ));
        }
        let attempts: Vec<Attempt> = candidates
            .iter()
            .map(|a| {
                let key = a.api_key().unwrap_or("");
                let behaviour = if key.is_empty() { Behaviour::InvalidKey } else { behaviour_for(&st, key) };
                match a.base_url().and_then(provider_authority) {
                    _ if behaviour == Behaviour::HostIncompatible => Attempt {
                        reply: None,
                        failure: Some(herr(shape,
                            StatusCode::BAD_GATEWAY,
                            "upstream_error",
                            "Upstream request failed: the host could not handle this upstream's response",
                        )),
                    },
                    None => Attempt { reply: None, failure: Some(map_upstream_error(shape, 502)) },
                    Some(authority) => {
                        let op = Op::Chat { model: a.map_model(&routed), prompt_tokens, max_tokens };
                        let reply = upstream::simulate(&authority, behaviour, &op, st.slow_delay);
                        Attempt { reply: Some(reply), failure: None }
                    }
                }
            })
            .collect();
        (attempts, model, stream, group)
    };
    // Failover: the first account that answers wins; otherwise the last failure is mapped.
    let mut last = None;
    for attempt in attempts {
        if let Some(f) = attempt.failure {
            last = Some(f);
            continue;
        }
        let Some(reply) = attempt.reply else { continue };
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if reply.status != 200 {
            last = Some(map_upstream_error(shape, reply.status));
            continue;
        }
        let mut out = reply.body;
        if let Some(o) = out.as_object_mut() {
            o.insert("model".into(), json!(model));
        }
        charge(app, headers, &group, &model, &out);
        return Ok((out, stream));
    }
    Err(last.unwrap_or_else(|| map_upstream_error(shape, 502)))
}

async fn chat_completions(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, stream) = forward(&app, &headers, &body, Shape::OpenAi).await?;
    Ok(if stream {
        stream_response(&out)
    } else {
        axum::Json(out).into_response()
    })
}

/// `POST /v1/messages`: the same routing, answered as an Anthropic message
/// (the only completion route a legacy host has).
async fn messages(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, _) = forward(&app, &headers, &body, Shape::Anthropic).await?;
    let text = out["choices"][0]["message"]["content"].clone();
    Ok(axum::Json(json!({
        "id": format!("msg_sim_{}", crate::model::random_hex(8)),
        "type": "message",
        "role": "assistant",
        "model": out["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": out["usage"]["prompt_tokens"], "output_tokens": out["usage"]["completion_tokens"]},
    }))
    .into_response())
}

/// Bills a successful call: standard groups pay from the user's balance,
/// subscription groups add to the subscription's usage.
fn charge(app: &Shared, headers: &HeaderMap, group: &Group, model: &str, out: &Value) {
    let mut st = app.lock();
    let usage = &out["usage"];
    let input = usage["prompt_tokens"].as_f64().unwrap_or(0.0);
    let output = usage["completion_tokens"].as_f64().unwrap_or(0.0);
    let row = st
        .channel_of_group(group.id)
        .and_then(|c| c.prices_model(model))
        .cloned();
    let cost = (input * price(row.as_ref(), "input_price")
        + output * price(row.as_ref(), "output_price"))
        * group.rate_multiplier;
    let Some(raw) = gateway_key(headers).map(str::to_owned) else {
        return;
    };
    let Some(key) = st.keys.values_mut().find(|k| k.key == raw) else {
        return;
    };
    key.last_used_at = Some(now());
    key.quota_used += cost;
    let uid = key.user_id;
    if group.subscription_type == "subscription" {
        if let Some(s) = st.subscriptions.values_mut().find(|s| {
            s.user_id == uid && s.group_id == group.id && s.effective_status() == "active"
        }) {
            s.usage_usd += cost;
        }
    } else if let Some(u) = st.users.get_mut(&uid) {
        u.balance -= cost;
    }
}

fn stream_response(out: &Value) -> Response {
    let id = out["id"].clone();
    let model = out["model"].clone();
    let content = out["choices"][0]["message"]["content"].clone();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let events = [
        chunk(
            json!({"role": "assistant", "content": content}),
            Value::Null,
        ),
        {
            let mut last = chunk(json!({}), json!("stop"));
            if let Some(o) = last.as_object_mut() {
                o.insert("usage".into(), out["usage"].clone());
            }
            last
        },
    ];
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from(body),
    )
        .into_response()
}

/// A simulated provider endpoint: OpenAI-compatible `…/models` and `…/chat/completions`.
async fn upstream_endpoint(
    AxState(app): App,
    Path((authority, path)): Path<(String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = path.trim_end_matches('/');
    let (behaviour, slow) = {
        let st = app.lock();
        let key =
            bearer(&headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        match key {
            Some(k) => (behaviour_for(&st, k), st.slow_delay),
            None => (Behaviour::InvalidKey, st.slow_delay),
        }
    };
    let op = if path.ends_with("chat/completions") && method == axum::http::Method::POST {
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(model) = req.get("model").and_then(Value::as_str) else {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "model is required", "type": "invalid_request_error", "param": "model", "code": null}}),
            );
        };
        let max_tokens = req.get("max_tokens").and_then(Value::as_u64).unwrap_or(16);
        Op::Chat {
            model: model.to_owned(),
            prompt_tokens: 8,
            max_tokens,
        }
    } else if path.ends_with("models") && method == axum::http::Method::GET {
        Op::Models
    } else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("Unknown path /{path}"), "type": "invalid_request_error", "param": null, "code": "not_found"}}),
        );
    };
    let reply = upstream::simulate(&authority, behaviour, &op, slow);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_errors_map_like_the_host() {
        let map = |s| map_upstream_error(Shape::OpenAi, s).status();
        assert_eq!(map(401), StatusCode::BAD_GATEWAY);
        assert_eq!(map(402), StatusCode::BAD_GATEWAY);
        assert_eq!(map(429), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(map(503), StatusCode::BAD_GATEWAY);
        assert_eq!(map(529), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn simulator_upstream_urls_name_their_provider() {
        assert_eq!(
            provider_authority("https://api.deepseek.com").as_deref(),
            Some("api.deepseek.com")
        );
        assert_eq!(
            provider_authority("http://127.0.0.1:9/__upstream/api.moonshot.cn/v1").as_deref(),
            Some("api.moonshot.cn")
        );
    }
}
