//! From a request to the accounts to try: auth, the billing gate, model and
//! channel checks, account selection and what the host would send each.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::authenticate;
use super::errors::{Shape, herr};
use crate::model::{Account, Group, State};
use crate::providers;

/// The gateway route a request came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Chat,
    Messages,
    Responses,
}

impl Family {
    pub(super) fn shape(self) -> Shape {
        match self {
            Family::Messages => Shape::Anthropic,
            Family::Chat | Family::Responses => Shape::OpenAi,
        }
    }
}

/// One account the host would try, and what it would send there.
pub(super) struct Candidate {
    pub(super) account_id: i64,
    /// Authority and path of the URL the host calls.
    pub(super) target: Option<(String, String)>,
    pub(super) key: Option<String>,
    upstream_model: String,
}

/// A request that passed auth, billing and model checks.
pub(super) struct Plan {
    pub(super) model: String,
    pub(super) stream: bool,
    pub(super) group: Group,
    pub(super) candidates: Vec<Candidate>,
    /// The upstream answers in the route's own family (Anthropic for
    /// `/v1/messages` on a d3e73f1 host), not OpenAI chat.
    pub(super) native: bool,
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
pub(super) fn plan(
    st: &State,
    headers: &HeaderMap,
    body: &[u8],
    family: Family,
) -> Result<Plan, Response> {
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
pub(super) fn upstream_body(body: &[u8], c: &Candidate) -> Vec<u8> {
    let mut req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(o) = req.as_object_mut() {
        o.insert("model".into(), json!(c.upstream_model));
    }
    req.to_string().into_bytes()
}
