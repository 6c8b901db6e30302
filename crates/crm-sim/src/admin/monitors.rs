//! Host-side channel monitors (current profile), read from the newer sub2api
//! source: `server/routes/admin.go` @d35ae4e `registerChannelMonitorRoutes`
//! and `handler/admin/channel_monitor_handler.go` @07b9133 (request bindings,
//! `channelMonitorResponse`, `Run` → `{results}`, `History` → `{items}`),
//! statuses from `service/channel_monitor*.go` (`operational`, `degraded`,
//! `failed`, `error`). The simulator runs a check only on `POST …/run`; it has
//! no scheduler.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Monitor, MonitorCheck, State, now, ts};
use crate::providers;
use crate::reply::{HResult, Page, app_err, created, json_response, ok, parse};
use crate::shared::Shared;

type App = AxState<Arc<Shared>>;
type Q = Query<HashMap<String, String>>;

/// `binding:"oneof=…"` of `provider` in the create/update requests.
const PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "gemini",
    "grok",
    "antigravity",
    "kiro",
    "kimi",
    "zhipu",
    "deepseek",
];

fn validation(message: &str) -> Response {
    app_err(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn not_found() -> Response {
    app_err(
        StatusCode::NOT_FOUND,
        "CHANNEL_MONITOR_NOT_FOUND",
        "channel monitor not found",
    )
}

/// `ParseChannelMonitorID`: a non-numeric or non-positive id is a 400.
fn monitor_id(raw: &str) -> Result<i64, Response> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        app_err(
            StatusCode::BAD_REQUEST,
            "INVALID_MONITOR_ID",
            "invalid monitor id",
        )
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct MonitorBody {
    name: Option<String>,
    provider: Option<String>,
    api_mode: Option<String>,
    endpoint: Option<String>,
    api_key: Option<String>,
    primary_model: Option<String>,
    extra_models: Option<Vec<String>>,
    group_name: Option<String>,
    enabled: Option<bool>,
    interval_seconds: Option<i64>,
    jitter_seconds: Option<i64>,
    check_mode: Option<String>,
    account_id: Option<i64>,
    group_id: Option<i64>,
}

/// The bindings of `channelMonitorCreateRequest` / `channelMonitorUpdateRequest`.
fn validate(b: &MonitorBody, create: bool) -> Result<(), Response> {
    let field = |f: &str, tag: &str| {
        validation(&format!(
            "Key: 'channelMonitorRequest.{f}' Error:Field validation for '{f}' failed on the '{tag}' tag"
        ))
    };
    match b.name.as_deref() {
        None | Some("") if create => return Err(field("Name", "required")),
        Some(n) if n.chars().count() > 100 => return Err(field("Name", "max")),
        _ => {}
    }
    match b.provider.as_deref() {
        None if create => return Err(field("Provider", "required")),
        Some(p) if !PROVIDERS.contains(&p) => return Err(field("Provider", "oneof")),
        _ => {}
    }
    if let Some(m) = b.api_mode.as_deref().filter(|m| !m.is_empty())
        && m != "chat_completions"
        && m != "responses"
    {
        return Err(field("APIMode", "oneof"));
    }
    match b.interval_seconds {
        None if create => return Err(field("IntervalSeconds", "required")),
        Some(i) if !(15..=3600).contains(&i) => return Err(field("IntervalSeconds", "min")),
        _ => {}
    }
    if b.jitter_seconds.is_some_and(|j| !(0..=3585).contains(&j)) {
        return Err(field("JitterSeconds", "max"));
    }
    if let Some(m) = b.check_mode.as_deref().filter(|m| !m.is_empty())
        && !["probe", "quota", "quota_probe"].contains(&m)
    {
        return Err(field("CheckMode", "oneof"));
    }
    Ok(())
}

/// `maskAPIKey`: the first four characters and `***`.
fn mask(key: &str) -> String {
    match key.get(..4) {
        _ if key.is_empty() => String::new(),
        Some(head) if key.len() > 4 => format!("{head}***"),
        _ => "***".into(),
    }
}

fn check_json(c: &MonitorCheck) -> Value {
    json!({
        "id": c.id, "model": c.model, "status": c.status, "latency_ms": c.latency_ms,
        "ping_latency_ms": null, "message": c.message, "checked_at": ts(&c.checked_at),
    })
}

/// `channelMonitorResponse` with the list summary (latest primary status and
/// the share of checks that were operational or degraded, in percent).
pub(crate) fn monitor_json(m: &Monitor) -> Value {
    let primary: Vec<&MonitorCheck> = m
        .history
        .iter()
        .filter(|c| c.model == m.primary_model)
        .collect();
    let latest = primary.last();
    let availability = if primary.is_empty() {
        0.0
    } else {
        let up = primary
            .iter()
            .filter(|c| c.status == "operational" || c.status == "degraded")
            .count();
        up as f64 * 100.0 / primary.len() as f64
    };
    let extras: Vec<Value> = m
        .extra_models
        .iter()
        .map(|model| {
            let last = m.history.iter().rev().find(|c| c.model == *model);
            json!({"model": model, "status": last.map_or("", |c| c.status.as_str()),
                   "latency_ms": last.and_then(|c| c.latency_ms)})
        })
        .collect();
    json!({
        "id": m.id, "name": m.name, "provider": m.provider, "api_mode": m.api_mode,
        "endpoint": m.endpoint, "api_key_masked": mask(&m.api_key), "api_key_decrypt_failed": false,
        "primary_model": m.primary_model, "extra_models": m.extra_models, "group_name": m.group_name,
        "enabled": m.enabled, "interval_seconds": m.interval_seconds, "jitter_seconds": m.jitter_seconds,
        "last_checked_at": m.history.last().map(|c| ts(&c.checked_at)),
        "created_by": 1, "created_at": ts(&m.created_at), "updated_at": ts(&m.updated_at),
        "primary_status": latest.map_or("", |c| c.status.as_str()),
        "primary_latency_ms": latest.and_then(|c| c.latency_ms),
        "availability_7d": availability, "extra_models_status": extras,
        "template_id": null, "extra_headers": {}, "body_override_mode": "off", "body_override": null,
        "check_mode": m.check_mode, "account_id": m.account_id, "group_id": m.group_id,
    })
}

pub(crate) async fn list(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let enabled = q
        .get("enabled")
        .and_then(|v| match v.trim().to_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        });
    let items: Vec<&Monitor> = st
        .monitors
        .values()
        .filter(|m| {
            q.get("provider")
                .is_none_or(|p| p.trim().is_empty() || m.provider == p.trim())
        })
        .filter(|m| enabled.is_none_or(|e| m.enabled == e))
        .filter(|m| {
            q.get("search")
                .is_none_or(|s| m.name.to_lowercase().contains(&s.trim().to_lowercase()))
        })
        .collect();
    // `ParsePagination` at the host's maximum, then `monitorMaxPageSize = 100`
    // (channel_monitor_handler.go @57a1b04 `List`).
    ok(Page::from_query(&q, st.profile.max_page_size)
        .capped(100)
        .render_with(items, monitor_json))
}

pub(crate) async fn get(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = monitor_id(&id)?;
    let st = app.lock();
    let m = st.monitors.get(&id).ok_or_else(not_found)?;
    Ok(ok(monitor_json(m)))
}

pub(crate) async fn create(AxState(app): App, body: axum::body::Bytes) -> HResult {
    let b: MonitorBody = parse(&body).map_err(|_| validation("invalid JSON body"))?;
    validate(&b, true)?;
    let mut st = app.lock();
    let t = now();
    let id = st.id();
    let m = Monitor {
        id,
        name: b.name.unwrap_or_default(),
        provider: b.provider.unwrap_or_default(),
        api_mode: b
            .api_mode
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "chat_completions".into()),
        endpoint: b.endpoint.unwrap_or_default(),
        api_key: b.api_key.unwrap_or_default(),
        primary_model: b.primary_model.unwrap_or_default(),
        extra_models: b.extra_models.unwrap_or_default(),
        group_name: b.group_name.unwrap_or_default(),
        enabled: b.enabled.unwrap_or(true),
        interval_seconds: b.interval_seconds.unwrap_or(60),
        jitter_seconds: b.jitter_seconds.unwrap_or(0),
        check_mode: b
            .check_mode
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "probe".into()),
        account_id: b.account_id,
        group_id: b.group_id,
        history: Vec::new(),
        created_at: t,
        updated_at: t,
    };
    let v = monitor_json(&m);
    st.monitors.insert(id, m);
    Ok(created(v))
}

pub(crate) async fn update(
    AxState(app): App,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> HResult {
    let id = monitor_id(&id)?;
    let b: MonitorBody = parse(&body).map_err(|_| validation("invalid JSON body"))?;
    validate(&b, false)?;
    let mut st = app.lock();
    let m = st.monitors.get_mut(&id).ok_or_else(not_found)?;
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = b.$f { m.$f = v; } )* };
    }
    set!(
        name,
        provider,
        api_mode,
        endpoint,
        api_key,
        primary_model,
        extra_models,
        group_name,
        enabled,
        interval_seconds,
        jitter_seconds,
        check_mode
    );
    // nil = keep; 0 = clear; setting one source clears the other.
    if let Some(a) = b.account_id {
        m.account_id = (a != 0).then_some(a);
        if a != 0 {
            m.group_id = None;
        }
    }
    if let Some(g) = b.group_id {
        m.group_id = (g != 0).then_some(g);
        if g != 0 {
            m.account_id = None;
        }
    }
    m.updated_at = now();
    Ok(ok(monitor_json(m)))
}

pub(crate) async fn delete(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = monitor_id(&id)?;
    let mut st = app.lock();
    st.monitors.remove(&id).ok_or_else(not_found)?;
    // `response.Success(c, nil)`: `data` is omitted.
    Ok(json_response(
        StatusCode::OK,
        json!({"code": 0, "message": "success"}),
    ))
}

/// One check of one model: a minimal request at the monitor's endpoint
/// (`/v1/messages` for `anthropic`, else chat completions or Responses per
/// `api_mode`), answered by the simulated provider; a slow answer is `degraded`.
fn check(st: &mut State, m: &Monitor, model: &str) -> MonitorCheck {
    let base = m.endpoint.trim_end_matches('/');
    let (suffix, body) = if m.provider == "anthropic" {
        (
            "/v1/messages",
            json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
    } else if m.api_mode == "responses" {
        ("/v1/responses", json!({"model": model, "input": "hi"}))
    } else {
        (
            "/v1/chat/completions",
            json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
    };
    let id = st.id();
    let checked_at = now();
    let Some((authority, path)) = providers::target(&format!("{base}{suffix}")) else {
        return MonitorCheck {
            id,
            model: model.to_owned(),
            status: "error".into(),
            latency_ms: None,
            message: format!("invalid endpoint {base}"),
            checked_at,
        };
    };
    let reply = providers::call(
        st,
        &authority,
        &path,
        "POST",
        Some(&m.api_key),
        body.to_string().as_bytes(),
    );
    let latency = i64::try_from(reply.delay.as_millis()).unwrap_or(i64::MAX);
    let (status, message) = if reply.status != 200 {
        (
            "failed",
            format!("upstream HTTP {}: {}", reply.status, reply.body),
        )
    } else if !reply.delay.is_zero() {
        ("degraded", format!("slow response: {latency}ms"))
    } else {
        ("operational", String::new())
    };
    MonitorCheck {
        id,
        model: model.to_owned(),
        status: status.into(),
        latency_ms: Some(latency.max(1)),
        message,
        checked_at,
    }
}

pub(crate) async fn run(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = monitor_id(&id)?;
    let mut st = app.lock();
    let m = st.monitors.get(&id).cloned().ok_or_else(not_found)?;
    let models: Vec<String> = std::iter::once(m.primary_model.clone())
        .chain(m.extra_models.iter().cloned())
        .filter(|s| !s.is_empty())
        .collect();
    let results: Vec<MonitorCheck> = models
        .iter()
        .map(|model| check(&mut st, &m, model))
        .collect();
    let out: Vec<Value> = results
        .iter()
        .map(|c| {
            let mut v = check_json(c);
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            v
        })
        .collect();
    if let Some(stored) = st.monitors.get_mut(&id) {
        stored.history.extend(results);
        // Keep the newest `MonitorHistoryMaxLimit` checks.
        let excess = stored.history.len().saturating_sub(1000);
        stored.history.drain(..excess);
    }
    Ok(ok(json!({"results": out})))
}

pub(crate) async fn history(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = monitor_id(&id)?;
    let st = app.lock();
    let m = st.monitors.get(&id).ok_or_else(not_found)?;
    // `parseHistoryLimit`: default 100, at most 1000.
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .map_or(100, |l| l.min(1000));
    let model = q.get("model").map(|s| s.trim()).filter(|s| !s.is_empty());
    let items: Vec<Value> = m
        .history
        .iter()
        .rev()
        .filter(|c| model.is_none_or(|want| c.model == want))
        .take(limit)
        .map(check_json)
        .collect();
    Ok(ok(json!({"items": items})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_masked_like_mask_api_key() {
        assert_eq!(mask(""), "");
        assert_eq!(mask("abcd"), "***");
        assert_eq!(mask("sk-secret"), "sk-s***");
    }

    #[test]
    fn bindings_refuse_what_the_handler_refuses() {
        let body = |v: Value| serde_json::from_value::<MonitorBody>(v).unwrap_or_default();
        assert!(
            validate(
                &body(json!({"name": "m", "provider": "deepseek", "interval_seconds": 60})),
                true
            )
            .is_ok()
        );
        assert!(
            validate(
                &body(json!({"name": "m", "provider": "moonshot", "interval_seconds": 60})),
                true
            )
            .is_err()
        );
        assert!(
            validate(
                &body(json!({"name": "m", "provider": "kimi", "interval_seconds": 5})),
                true
            )
            .is_err()
        );
        assert!(
            validate(
                &body(json!({"provider": "kimi", "interval_seconds": 60})),
                true
            )
            .is_err()
        );
        assert!(validate(&body(json!({"interval_seconds": 30})), false).is_ok());
    }
}
