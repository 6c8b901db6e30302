//! The forwarding routes: plan, try the accounts in order with failover,
//! bill a successful call, answer (streamed, or as an Anthropic message).

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{App, gateway_key};
use super::errors::{answer_upstream_error, fails_over, herr, map_upstream_error};
use super::plan::{Family, plan, upstream_body};
use crate::model::{Group, now};
use crate::providers;
use crate::shared::Shared;
use crate::upstream::Behaviour;

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

pub(super) async fn chat_completions(
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
pub(super) async fn responses(
    AxState(app): App,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (out, _, _) = forward(&app, &headers, &body, Family::Responses).await?;
    Ok(axum::Json(out).into_response())
}

/// `POST /v1/messages`: on a d3e73f1 host the upstream's Anthropic message is
/// passed through; on a current host the OpenAI answer is turned into one.
pub(super) async fn messages(
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

fn price(row: Option<&Value>, field: &str) -> f64 {
    row.and_then(|r| r.get(field))
        .and_then(Value::as_f64)
        .unwrap_or(0.000_001)
}
