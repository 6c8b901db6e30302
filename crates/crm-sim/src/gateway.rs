//! The gateway (`/v1/models`, `/v1/messages`, `/v1/chat/completions`,
//! `/v1/responses`) and the simulated upstream endpoints under
//! `/__upstream/{authority}/...`.
//!
//! Forwarding is in-process: the host picks an account, builds the URL it would
//! call from the account's `base_url`, and asks `providers::call` what the
//! provider there answers for the account's key; failures are mapped like
//! sub2api's `handleErrorResponse` / `mapUpstreamError`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use crate::model::{Account, Group, State, claude_item, now};
use crate::profile::Profile;
use crate::providers;
use crate::reply::{bearer, json_response, mw_err, oai_err};
use crate::shared::Shared;
use crate::upstream::{Behaviour, Reply};

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
    if p.responses_route {
        // d3e73f1 routes/gateway.go: `/v1/responses` and the bare `/responses` alias.
        r = r
            .route("/v1/responses", post(responses))
            .route("/responses", post(responses));
    }
    r
}

/// d3e73f1 `backend/internal/pkg/openai/constants.go` `DefaultModels`.
const OPENAI_DEFAULT_MODELS: &[(&str, i64, &str)] = &[
    ("gpt-5.2", 1_733_875_200, "GPT-5.2"),
    ("gpt-5.2-codex", 1_733_011_200, "GPT-5.2 Codex"),
    ("gpt-5.1-codex-max", 1_730_419_200, "GPT-5.1 Codex Max"),
    ("gpt-5.1-codex", 1_730_419_200, "GPT-5.1 Codex"),
    ("gpt-5.1", 1_731_456_000, "GPT-5.1"),
    ("gpt-5.1-codex-mini", 1_730_419_200, "GPT-5.1 Codex Mini"),
    ("gpt-5", 1_722_988_800, "GPT-5"),
];

/// d3e73f1 `backend/internal/pkg/claude/constants.go` `DefaultModels`.
const CLAUDE_DEFAULT_MODELS: &[(&str, &str, &str)] = &[
    (
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "2025-11-01T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-01T00:00:00Z",
    ),
];

/// The static `/v1/models` list of a d3e73f1 host: OpenAI defaults for
/// `openai` groups, Claude defaults for every other group and for keys
/// without one (`gateway_handler.go` `Models`).
pub(crate) fn static_models(platform: Option<&str>) -> Vec<Value> {
    if platform == Some("openai") {
        OPENAI_DEFAULT_MODELS
            .iter()
            .map(|(id, created, name)| json!({"id": id, "object": "model", "created": created, "owned_by": "openai", "type": "model", "display_name": name}))
            .collect()
    } else {
        CLAUDE_DEFAULT_MODELS
            .iter()
            .map(|(id, name, at)| json!({"id": id, "type": "model", "display_name": name, "created_at": at}))
            .collect()
    }
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
    if st.profile.static_models {
        let data = static_models(caller.group.as_ref().map(|g| g.platform.as_str()));
        return Ok(axum::Json(json!({"object": "list", "data": data})).into_response());
    }
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

/// Which route family answers: OpenAI routes and Anthropic routes shape
/// handler errors differently (docs/sub2api-contract.md §4.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    OpenAi,
    Anthropic,
}

/// The gateway route a request came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Chat,
    Messages,
    Responses,
}

impl Family {
    fn shape(self) -> Shape {
        match self {
            Family::Messages => Shape::Anthropic,
            Family::Chat | Family::Responses => Shape::OpenAi,
        }
    }
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

/// sub2api's `mapUpstreamError` after failover is exhausted (d3e73f1
/// `gateway_handler.go` for the Claude route, `openai_gateway_handler.go` for
/// the OpenAI ones: they differ only in the type of a 529).
fn map_upstream_error(shape: Shape, status: u16) -> Response {
    let (code, kind, message) = match status {
        401 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream authentication failed, please contact administrator",
        ),
        403 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream access forbidden, please contact administrator",
        ),
        429 => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Upstream rate limit exceeded, please retry later",
        ),
        529 => (
            StatusCode::SERVICE_UNAVAILABLE,
            if shape == Shape::Anthropic {
                "overloaded_error"
            } else {
                "upstream_error"
            },
            "Upstream service overloaded, please retry later",
        ),
        500 | 502 | 503 | 504 => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream service temporarily unavailable",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "Upstream request failed",
        ),
    };
    herr(shape, code, kind, message)
}

/// d3e73f1 `gateway_service.go` `shouldFailoverUpstreamError`: these switch to
/// the next account; any other upstream error is answered at once.
fn fails_over(status: u16) -> bool {
    matches!(status, 401 | 403 | 429 | 529) || status >= 500
}

/// An upstream error that does not fail over (`handleErrorResponse`): a 400 is
/// passed through, the rest mapped without the upstream's details.
fn answer_upstream_error(shape: Shape, reply: &Reply) -> Response {
    if reply.status == 400 {
        return json_response(StatusCode::BAD_REQUEST, reply.body.clone());
    }
    map_upstream_error(shape, reply.status)
}

fn price(row: Option<&Value>, field: &str) -> f64 {
    row.and_then(|r| r.get(field))
        .and_then(Value::as_f64)
        .unwrap_or(0.000_001)
}

/// One account the host would try, and what it would send there.
struct Candidate {
    account_id: i64,
    /// Authority and path of the URL the host calls.
    target: Option<(String, String)>,
    key: Option<String>,
    upstream_model: String,
}

/// A request that passed auth, billing and model checks.
struct Plan {
    model: String,
    stream: bool,
    group: Group,
    candidates: Vec<Candidate>,
    /// The upstream answers in the route's own family (Anthropic for
    /// `/v1/messages` on a d3e73f1 host), not OpenAI chat.
    native: bool,
}

/// `base_url` of an apikey account as the host reads it; d3e73f1
/// `account.go` `GetBaseURL` / `GetOpenAIBaseURL` default to the vendor's API.
fn base_url_of(a: &Account, family: Family) -> String {
    match a.base_url().filter(|b| !b.is_empty()) {
        Some(b) => b.trim_end_matches('/').to_owned(),
        None if family == Family::Responses => "https://api.openai.com".into(),
        None => "https://api.anthropic.com".into(),
    }
}

fn candidate(a: &Account, family: Family, routed: &str, platform_upstreams: bool) -> Candidate {
    let suffix = match (platform_upstreams, family) {
        // d3e73f1 gateway_service.go buildUpstreamRequest / openai_gateway_service.go.
        (true, Family::Messages) => "/v1/messages",
        (true, Family::Responses) => "/v1/responses",
        _ => "/chat/completions",
    };
    let key = if a.kind == "apikey" {
        a.api_key().map(str::to_owned)
    } else {
        a.credentials
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    // Model mapping applies to apikey accounts only (gateway_service.go Forward).
    let upstream_model = if a.kind == "apikey" || !platform_upstreams {
        a.map_model(routed)
    } else {
        routed.to_owned()
    };
    Candidate {
        account_id: a.id,
        target: providers::target(&format!("{}{suffix}", base_url_of(a, family))),
        key,
        upstream_model,
    }
}

/// Auth, billing gate, model checks and the accounts to try, in order.
fn plan(st: &State, headers: &HeaderMap, body: &[u8], family: Family) -> Result<Plan, Response> {
    let shape = family.shape();
    let caller = authenticate(st, headers)?;
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
    let Some(group) = caller.group.clone() else {
        return Err(herr(
            shape,
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "No available accounts: no group",
        ));
    };
    let platform_upstreams = st.profile.platform_upstreams;
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
    let in_group: Vec<&Account> = st
        .accounts_in_group(group.id)
        .filter(|a| {
            // d3e73f1: the Claude route lists only `anthropic` accounts
            // (`ListSchedulableByGroupIDAndPlatform(…, PlatformAnthropic)`), the
            // Responses route only `openai` ones.
            !platform_upstreams
                || match family {
                    Family::Messages => a.platform == "anthropic" && group.platform != "gemini",
                    Family::Responses => a.platform == "openai",
                    Family::Chat => true,
                }
        })
        .collect();
    // A d3e73f1 host has no "model not in this group" answer: selection simply
    // finds no account (503 below).
    if !platform_upstreams && !in_group.iter().any(|a| a.supports(&routed)) {
        return Err(herr(
            shape,
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("The model `{model}` is not available in this group"),
        ));
    }
    let mut accounts: Vec<&Account> = in_group
        .into_iter()
        .filter(|a| a.is_available() && a.supports(&routed))
        .collect();
    accounts.sort_by_key(|a| (a.priority, a.id));
    if accounts.is_empty() {
        return Err(herr(
            shape,
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            // d3e73f1 gateway_service.go has the colon; the current profile keeps
            // the wording it was written with.
            &if platform_upstreams {
                format!("No available accounts: no available accounts supporting model: {model}")
            } else {
                format!("No available accounts: no available accounts supporting model {model}")
            },
        ));
    }
    if platform_upstreams {
        // `maxAccountSwitches = 3`: the first account and three more.
        accounts.truncate(4);
    }
    let candidates = accounts
        .iter()
        .map(|a| candidate(a, family, &routed, platform_upstreams))
        .collect();
    Ok(Plan {
        model,
        stream,
        group,
        candidates,
        native: platform_upstreams,
    })
}

/// The upstream request body the host sends for `c`: the client's body with
/// the model replaced (gateway_service.go `replaceModelInBody`).
fn upstream_body(body: &[u8], c: &Candidate) -> Vec<u8> {
    let mut req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(o) = req.as_object_mut() {
        o.insert("model".into(), json!(c.upstream_model));
    }
    req.to_string().into_bytes()
}

/// d3e73f1 `ratelimit_service.go` `HandleUpstreamError`: 401/403 stop the
/// account (`SetError`) with these messages.
fn mark_auth_error(app: &Shared, account_id: i64, status: u16) {
    let message = match status {
        401 => "Authentication failed (401): invalid or expired credentials",
        403 => "Access forbidden (403): account may be suspended or lack permissions",
        _ => return,
    };
    let mut st = app.lock();
    if st.profile.gateway_marks_auth_error
        && let Some(a) = st.accounts.get_mut(&account_id)
    {
        a.status = "error".into();
        a.error_message = message.into();
        a.updated_at = now();
    }
}

/// Plans, then tries the accounts in order with failover; answers the upstream's
/// reply body (model names as the client asked) and whether to stream.
async fn forward(
    app: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    family: Family,
) -> Result<(Value, bool, bool), Response> {
    let shape = family.shape();
    let plan = {
        let st = app.lock();
        plan(&st, headers, body, family)?
    };
    let mut last: Option<Response> = None;
    for c in &plan.candidates {
        let behaviour = c
            .key
            .as_deref()
            .map(|k| providers::behaviour_for(&app.lock(), k));
        if behaviour == Some(Behaviour::HostIncompatible) {
            last = Some(herr(
                shape,
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "Upstream request failed: the host could not handle this upstream's response",
            ));
            continue;
        }
        let Some((authority, path)) = &c.target else {
            last = Some(map_upstream_error(shape, 502));
            continue;
        };
        let reply = {
            let mut st = app.lock();
            providers::call(
                &mut st,
                authority,
                path,
                "POST",
                c.key.as_deref(),
                &upstream_body(body, c),
            )
        };
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if reply.status != 200 {
            mark_auth_error(app, c.account_id, reply.status);
            if !fails_over(reply.status) {
                return Err(answer_upstream_error(shape, &reply));
            }
            last = Some(map_upstream_error(shape, reply.status));
            continue;
        }
        let mut out = reply.body;
        // replaceModelInResponseBody: the client sees the model it asked for.
        if let Some(o) = out.as_object_mut() {
            o.insert("model".into(), json!(plan.model));
        }
        let usage = &out["usage"];
        let tokens = (
            usage["prompt_tokens"]
                .as_f64()
                .or_else(|| usage["input_tokens"].as_f64())
                .unwrap_or(0.0),
            usage["completion_tokens"]
                .as_f64()
                .or_else(|| usage["output_tokens"].as_f64())
                .unwrap_or(0.0),
        );
        charge(app, headers, &plan.group, &plan.model, tokens);
        return Ok((out, plan.stream, plan.native));
    }
    Err(last.unwrap_or_else(|| map_upstream_error(shape, 502)))
}

async fn chat_completions(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, stream, _) = forward(&app, &headers, &body, Family::Chat).await?;
    Ok(if stream {
        stream_response(&out)
    } else {
        axum::Json(out).into_response()
    })
}

/// `POST /v1/responses` (d3e73f1): forwarded to `base_url + "/v1/responses"`
/// of an `openai` account, which none of the simulated providers serve.
async fn responses(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, _, _) = forward(&app, &headers, &body, Family::Responses).await?;
    Ok(axum::Json(out).into_response())
}

/// `POST /v1/messages`: on a d3e73f1 host the upstream's Anthropic message is
/// passed through; on a current host the OpenAI answer is turned into one.
async fn messages(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, _, native) = forward(&app, &headers, &body, Family::Messages).await?;
    if native {
        return Ok(axum::Json(out).into_response());
    }
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
fn charge(
    app: &Shared,
    headers: &HeaderMap,
    group: &Group,
    model: &str,
    (input, output): (f64, f64),
) {
    let mut st = app.lock();
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

/// A simulated provider endpoint: OpenAI-compatible `…/models` and
/// `…/chat/completions`, the Anthropic `<anthropic base>/v1/messages`, and the
/// DeepSeek / Moonshot balance APIs. The key is read from `Authorization:
/// Bearer` or `x-api-key` (sub2api sends `x-api-key` to Anthropic bases of
/// apikey accounts: d3e73f1 `gateway_service.go` `buildUpstreamRequest`).
async fn upstream_endpoint(
    AxState(app): App,
    Path((authority, path)): Path<(String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut st = app.lock();
        let key =
            bearer(&headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        providers::call(
            &mut st,
            &authority,
            &format!("/{path}"),
            method.as_str(),
            key,
            &body,
        )
    };
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
    fn only_auth_rate_limit_overload_and_server_errors_fail_over() {
        assert!(fails_over(401) && fails_over(429) && fails_over(529) && fails_over(500));
        assert!(!fails_over(400) && !fails_over(402) && !fails_over(404));
        let r = map_upstream_error(Shape::Anthropic, 529);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
