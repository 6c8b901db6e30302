//! The admin API under `/api/v1/admin`: accounts (with the SSE test), groups,
//! channels, users, admin key rebind, subscriptions, payment plans, CN-provider
//! probes and the version endpoints, behind `x-api-key` / admin-JWT auth.

mod cn_providers;
mod monitors;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::model::{Account, Channel, Group, IdemRecord, State, Subscription, User, now, ts};
use crate::profile::Profile;
use crate::providers;
use crate::reply::{
    HResult, Page, app_err, bad_request, created, json_response, mw_err, not_found, ok, parse,
    parse_or_default, path_id, required,
};
use crate::server::Shared;
use crate::upstream::Behaviour;

type App = AxState<Arc<Shared>>;
type Q = Query<HashMap<String, String>>;

pub(crate) fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let p = shared.profile.clone();
    let mut admin = Router::new()
        .route("/accounts", get(list_accounts).post(create_account))
        .route(
            "/accounts/{id}",
            get(get_account).put(update_account).delete(delete_account),
        )
        .route("/accounts/{id}/schedulable", post(set_schedulable))
        .route("/accounts/{id}/clear-error", post(clear_error))
        .route("/accounts/{id}/test", post(test_account))
        .route("/accounts/{id}/models", get(account_models))
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/all", get(all_groups))
        .route(
            "/groups/{id}",
            get(get_group).put(update_group).delete(delete_group),
        )
        .route("/groups/{id}/api-keys", get(group_keys))
        .route("/groups/{id}/subscriptions", get(group_subscriptions))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/users/{id}/balance", post(user_balance))
        .route("/users/{id}/api-keys", get(user_keys))
        .route("/users/{id}/subscriptions", get(user_subscriptions))
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/assign", post(assign_subscription))
        .route(
            "/subscriptions/{id}",
            get(get_subscription).delete(revoke_subscription),
        )
        .route("/system/version", get(version))
        .route(
            "/settings/admin-api-key",
            get(admin_key_status).delete(delete_admin_key),
        )
        .route(
            "/settings/admin-api-key/regenerate",
            post(regenerate_admin_key),
        );
    if p.account_extended_fields {
        admin = admin.route(
            "/accounts/{id}/temp-unschedulable",
            get(get_temp_unschedulable).delete(clear_temp_unschedulable),
        );
    }
    if p.channels {
        admin = admin
            .route("/channels", get(list_channels).post(create_channel))
            .route(
                "/channels/{id}",
                get(get_channel).put(update_channel).delete(delete_channel),
            );
    }
    if p.admin_key_rebind {
        admin = admin.route("/api-keys/{id}", put(rebind_key));
    }
    if p.cn_providers {
        admin = admin
            .route(
                "/cn-providers/accounts/{id}/quota",
                get(cn_providers::quota),
            )
            .route(
                "/cn-providers/accounts/{id}/balance",
                get(cn_providers::balance),
            );
    }
    if p.channel_monitors {
        admin = admin
            .route(
                "/channel-monitors",
                get(monitors::list).post(monitors::create),
            )
            .route(
                "/channel-monitors/{id}",
                get(monitors::get)
                    .put(monitors::update)
                    .delete(monitors::delete),
            )
            .route("/channel-monitors/{id}/run", post(monitors::run))
            .route("/channel-monitors/{id}/history", get(monitors::history));
    }
    if p.payment_plans {
        admin = admin
            .route("/payment/plans", get(list_plans).post(create_plan))
            .route("/payment/plans/{id}", put(update_plan).delete(delete_plan));
    }
    if p.compliance_gate {
        admin = admin
            .route("/compliance", get(compliance_status))
            .route("/compliance/accept", post(accept_compliance));
    }
    let admin = admin.route_layer(from_fn_with_state(shared, admin_auth));
    Router::new()
        .nest("/api/v1/admin", admin)
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(
            "/setup/status",
            get(|| async {
                axum::Json(json!({"code": 0, "data": {"needs_setup": false, "step": "completed"}}))
            }),
        )
        .route("/api/v1/settings/public", get(public_settings))
}

/// `x-api-key` is always taken as the admin key; otherwise an admin user's JWT.
async fn admin_auth(AxState(app): App, req: Request, next: Next) -> Response {
    let verdict = {
        let st = app.lock();
        if let Some(k) = req.headers().get("x-api-key") {
            if st
                .admin_key
                .as_ref()
                .is_some_and(|a| a.as_bytes() == k.as_bytes())
            {
                Ok(())
            } else {
                Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_ADMIN_KEY",
                    "Invalid admin API key",
                ))
            }
        } else if let Some(token) = bearer(req.headers()) {
            match st.sessions.get(token).and_then(|u| st.users.get(u)) {
                None => Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "INVALID_TOKEN",
                    "Invalid token",
                )),
                Some(u) if u.status != "active" => Err(mw_err(
                    StatusCode::UNAUTHORIZED,
                    "USER_INACTIVE",
                    "User is not active",
                )),
                Some(u) if u.role != "admin" => Err(mw_err(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    "Admin access required",
                )),
                Some(_) => Ok(()),
            }
        } else {
            Err(mw_err(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Authorization required",
            ))
        }
    };
    if let Err(r) = verdict {
        return r;
    }
    let path = req.uri().path();
    let compliance_route =
        path.starts_with("/compliance") || path.starts_with("/api/v1/admin/compliance");
    let gated = {
        let st = app.lock();
        st.profile.compliance_gate && !st.compliance_accepted && !compliance_route
    };
    if gated {
        return json_response(
            StatusCode::LOCKED,
            json!({
                "code": "ADMIN_COMPLIANCE_ACK_REQUIRED",
                "message": "An administrator must read and accept the compliance notice before using the admin API",
                "metadata": {
                    "version": COMPLIANCE_VERSION,
                    "document_path_zh": "/compliance/zh", "document_path_en": "/compliance/en",
                    "document_url_zh": "https://example.invalid/compliance/zh",
                    "document_url_en": "https://example.invalid/compliance/en",
                },
            }),
        );
    }
    next.run(req).await
}

const COMPLIANCE_VERSION: &str = "2026-09";
/// The phrase a human types to accept the notice.
pub(crate) const COMPLIANCE_PHRASE: &str = "I have read and accept the compliance notice";

async fn compliance_status(AxState(app): App) -> Response {
    let st = app.lock();
    ok(
        json!({"accepted": st.compliance_accepted, "version": COMPLIANCE_VERSION, "phrase": COMPLIANCE_PHRASE}),
    )
}

#[derive(Deserialize)]
struct AcceptBody {
    phrase: Option<String>,
}

async fn accept_compliance(AxState(app): App, body: Bytes) -> HResult {
    let req: AcceptBody = parse(&body)?;
    let phrase = required(&req.phrase, "AcceptComplianceRequest", "Phrase")?;
    if phrase.trim() != COMPLIANCE_PHRASE {
        return Err(app_err(
            StatusCode::BAD_REQUEST,
            "COMPLIANCE_PHRASE_MISMATCH",
            "the confirmation phrase does not match",
        ));
    }
    app.lock().compliance_accepted = true;
    Ok(ok(json!({"accepted": true, "version": COMPLIANCE_VERSION})))
}

pub(crate) fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn version(AxState(app): App) -> Response {
    ok(json!({"version": app.profile.version}))
}

async fn public_settings(AxState(app): App) -> Response {
    ok(json!({
        "site_name": "Sub2API", "site_subtitle": "", "registration_enabled": false,
        "email_verify_enabled": false, "version": app.profile.version,
    }))
}

// ---------- admin API key ----------

async fn admin_key_status(AxState(app): App) -> Response {
    let st = app.lock();
    let masked = st.admin_key.as_deref().map(|k| {
        let head: String = k.chars().take(10).collect();
        let tail: String = k
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}...{tail}")
    });
    ok(json!({"exists": masked.is_some(), "masked_key": masked.unwrap_or_default()}))
}

async fn regenerate_admin_key(AxState(app): App) -> Response {
    let key = format!("admin-{}", crate::model::random_hex(32));
    app.lock().admin_key = Some(key.clone());
    ok(json!({"key": key}))
}

async fn delete_admin_key(AxState(app): App) -> Response {
    app.lock().admin_key = None;
    ok(json!({"message": "Admin API key deleted"}))
}

// ---------- accounts ----------

fn account_not_found() -> Response {
    not_found("ACCOUNT_NOT_FOUND", "account not found")
}

fn group_not_found() -> Response {
    not_found("GROUP_NOT_FOUND", "group not found")
}

fn check_groups_exist(st: &State, ids: &[i64]) -> Result<(), Response> {
    if ids.iter().all(|g| st.groups.contains_key(g)) {
        Ok(())
    } else {
        Err(group_not_found())
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

async fn list_accounts(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let p = &st.profile;
    let group_filter = if p.account_group_filter {
        q.get("group").cloned()
    } else {
        None
    };
    let mut items: Vec<&Account> = st
        .accounts
        .values()
        .filter(|a| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || a.platform == *v)
        })
        .filter(|a| q.get("type").is_none_or(|v| v.is_empty() || a.kind == *v))
        .filter(|a| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || a.status == *v)
        })
        .filter(|a| q.get("search").is_none_or(|v| contains_ci(&a.name, v)))
        .filter(|a| match group_filter.as_deref() {
            None | Some("") => true,
            Some("ungrouped") => a.group_ids.is_empty(),
            Some(g) => g.parse::<i64>().is_ok_and(|g| a.group_ids.contains(&g)),
        })
        .collect();
    if p.account_extended_fields {
        // Newer hosts sort by name by default.
        items.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if q.get("sort_order").is_some_and(|o| o == "desc") {
            items.reverse();
        }
    }
    let page = Page::from_query(&q, p.max_page_size);
    let counts = st.group_account_counts();
    ok(page.render_with(items, |a| st.account_json_counted(a, Some(&counts))))
}

async fn get_account(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    Ok(ok(st.account_json(a)))
}

#[derive(Deserialize, Default)]
struct AccountBody {
    name: Option<String>,
    notes: Option<String>,
    platform: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials: Option<Map<String, Value>>,
    extra: Option<Map<String, Value>>,
    proxy_id: Option<i64>,
    concurrency: Option<i64>,
    priority: Option<i64>,
    rate_multiplier: Option<f64>,
    status: Option<String>,
    group_ids: Option<Vec<i64>>,
}

/// Runs `f` under the profile's `Idempotency-Key` rules: a replay answers the
/// stored response with `X-Idempotency-Replayed: true`, a reused key with another
/// body is a 409.
fn idempotent(
    st: &mut State,
    headers: &HeaderMap,
    scope: &str,
    body: &[u8],
    f: impl FnOnce(&mut State) -> Result<Value, Response>,
) -> HResult {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|_| st.profile.idempotency);
    let Some(key) = key else {
        return f(st).map(ok);
    };
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(app_err(
            StatusCode::BAD_REQUEST,
            "IDEMPOTENCY_KEY_INVALID",
            "invalid Idempotency-Key",
        ));
    }
    let canonical = serde_json::from_slice::<Value>(body)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    let fingerprint = format!("{scope}\n{canonical}");
    let slot = format!("{scope}:{key}");
    if let Some(rec) = st.idempotency.get(&slot) {
        if rec.fingerprint != fingerprint {
            return Err(app_err(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_CONFLICT",
                "idempotency key was already used with a different request payload",
            ));
        }
        let mut r = json_response(
            StatusCode::from_u16(rec.status).unwrap_or(StatusCode::OK),
            rec.body.clone(),
        );
        r.headers_mut()
            .insert("x-idempotency-replayed", HeaderValue::from_static("true"));
        return Ok(r);
    }
    let data = f(st)?;
    let body = json!({"code": 0, "message": "success", "data": data});
    st.idempotency.insert(
        slot,
        IdemRecord {
            fingerprint,
            status: 200,
            body: body.clone(),
        },
    );
    Ok(json_response(StatusCode::OK, body))
}

async fn create_account(AxState(app): App, headers: HeaderMap, body: Bytes) -> HResult {
    let req: AccountBody = parse(&body)?;
    let mut st = app.lock();
    idempotent(&mut st, &headers, "admin.accounts.create", &body, |st| {
        let name = required(&req.name, "CreateAccountRequest", "Name")?.to_owned();
        let platform = required(&req.platform, "CreateAccountRequest", "Platform")?.to_owned();
        let kind = required(&req.kind, "CreateAccountRequest", "Type")?.to_owned();
        if !st.profile.account_types.contains(&kind.as_str()) {
            return Err(bad_request(&format!(
                "Invalid request: Key: 'CreateAccountRequest.Type' Error:Field validation for 'Type' failed on the 'oneof' tag (got '{kind}')"
            )));
        }
        let Some(credentials) = req.credentials.clone() else {
            return Err(bad_request(
                "Invalid request: Key: 'CreateAccountRequest.Credentials' Error:Field validation for 'Credentials' failed on the 'required' tag",
            ));
        };
        let group_ids = req.group_ids.clone().unwrap_or_default();
        check_groups_exist(st, &group_ids)?;
        let t = now();
        let id = st.id();
        let a = Account {
            id,
            name,
            notes: req
                .notes
                .clone()
                .filter(|_| st.profile.account_extended_fields),
            platform,
            kind,
            credentials,
            extra: req.extra.clone().unwrap_or_default(),
            proxy_id: req.proxy_id,
            concurrency: req.concurrency.unwrap_or(3),
            priority: req.priority.unwrap_or(50),
            rate_multiplier: req.rate_multiplier.unwrap_or(1.0),
            status: "active".into(),
            error_message: String::new(),
            schedulable: true,
            temp_unschedulable_until: None,
            temp_unschedulable_reason: String::new(),
            group_ids,
            created_at: t,
            updated_at: t,
        };
        let v = st.account_json(&a);
        st.accounts.insert(id, a);
        Ok(v)
    })
}

async fn update_account(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "account")?;
    let req: AccountBody = parse(&body)?;
    let mut st = app.lock();
    let profile = st.profile.clone();
    if let Some(s) = &req.status
        && !profile.account_statuses.contains(&s.as_str())
    {
        return Err(bad_request(&format!(
            "Invalid request: Key: 'UpdateAccountRequest.Status' Error:Field validation for 'Status' failed on the 'oneof' tag (got '{s}')"
        )));
    }
    if let Some(g) = &req.group_ids {
        check_groups_exist(&st, g)?;
    }
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    if let Some(v) = &req.name {
        a.name.clone_from(v);
    }
    if profile.account_extended_fields {
        if let Some(v) = &req.notes {
            a.notes = Some(v.clone());
        }
        if let Some(v) = req.rate_multiplier {
            a.rate_multiplier = v;
        }
    }
    if let Some(v) = &req.kind {
        a.kind.clone_from(v);
    }
    if let Some(new) = &req.credentials {
        let mut merged = new.clone();
        if profile.credential_redaction {
            // Newer hosts keep secrets the client could not have seen.
            for k in crate::model::SENSITIVE_CREDENTIALS {
                if !merged.contains_key(*k)
                    && let Some(old) = a.credentials.get(*k)
                {
                    merged.insert((*k).into(), old.clone());
                }
            }
        }
        a.credentials = merged;
    }
    if let Some(v) = &req.extra {
        a.extra = v.clone();
    }
    if req.proxy_id.is_some() {
        a.proxy_id = req.proxy_id;
    }
    if let Some(v) = req.concurrency {
        a.concurrency = v;
    }
    if let Some(v) = req.priority {
        a.priority = v;
    }
    if let Some(v) = &req.status {
        a.status.clone_from(v);
        if v == "active" {
            a.error_message.clear();
        }
    }
    if let Some(v) = &req.group_ids {
        a.group_ids.clone_from(v);
    }
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

async fn delete_account(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    st.accounts.remove(&id).ok_or_else(account_not_found)?;
    Ok(ok(json!({"message": "Account deleted successfully"})))
}

async fn get_temp_unschedulable(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    Ok(ok(
        match a.temp_unschedulable_until.filter(|t| *t > now()) {
            None => json!({"active": false}),
            Some(until) => json!({"active": true, "state": {
                "until_unix": until.timestamp(), "triggered_at_unix": a.updated_at.timestamp(),
                "status_code": 429, "matched_keyword": "", "rule_index": 0,
                "error_message": a.temp_unschedulable_reason,
            }}),
        },
    ))
}

async fn clear_temp_unschedulable(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.temp_unschedulable_until = None;
    a.temp_unschedulable_reason.clear();
    a.updated_at = now();
    Ok(ok(
        json!({"message": "Temporary unschedulable state cleared"}),
    ))
}

#[derive(Deserialize)]
struct SchedulableBody {
    schedulable: bool,
}

async fn set_schedulable(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "account")?;
    let req: SchedulableBody = parse(&body)?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.schedulable = req.schedulable;
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

async fn clear_error(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let mut st = app.lock();
    let a = st.accounts.get_mut(&id).ok_or_else(account_not_found)?;
    a.status = "active".into();
    a.error_message.clear();
    a.updated_at = now();
    let a = a.clone();
    Ok(ok(st.account_json(&a)))
}

async fn account_models(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "account")?;
    let st = app.lock();
    let a = st.accounts.get(&id).ok_or_else(account_not_found)?;
    let models: Vec<Value> = a
        .model_mapping()
        .map(|m| m.keys().map(|k| crate::gateway::claude_item(k)).collect())
        .unwrap_or_default();
    Ok(ok(Value::Array(models)))
}

#[derive(Deserialize, Default)]
struct TestBody {
    model_id: Option<String>,
}

fn default_test_model(platform: &str) -> Option<&'static str> {
    match platform {
        "anthropic" => Some("claude-sonnet-4-5"),
        "openai" => Some("gpt-5.1-codex"),
        "gemini" => Some("gemini-2.5-flash"),
        _ => None,
    }
}

fn sse_line(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// An error written before the SSE headers: a plain body, no event-stream
/// content type (`sendErrorAndEnd` before `c.Writer.Header().Set`).
fn early_test_error(message: &str) -> Response {
    let line = sse_line(&json!({"type": "error", "error": message}));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        line,
    )
        .into_response()
}

/// What the account test sends upstream on a d3e73f1 host
/// (`account_test_service.go`): `openai` accounts the Responses API at
/// `base_url + "/v1/responses"` (default model `gpt-5.1-codex`), every other
/// apikey account an Anthropic message at `base_url + "/v1/messages"` (default
/// model `claude-sonnet-4-5-20250929`), the model looked up in the mapping.
fn legacy_test_target(
    a: &Account,
    requested: Option<String>,
) -> Result<(String, String, String, Vec<u8>), String> {
    if a.kind != "apikey" {
        // OAuth and setup-token accounts call the vendors' own APIs, which the
        // simulator does not play.
        return Err(format!("Unsupported account type: {}", a.kind));
    }
    if a.platform == "gemini" {
        return Err("Request failed: gemini accounts are not simulated".into());
    }
    let openai = a.platform == "openai";
    let default = if openai {
        "gpt-5.1-codex"
    } else {
        "claude-sonnet-4-5-20250929"
    };
    let asked = requested.unwrap_or_else(|| default.to_owned());
    let model = a
        .model_mapping()
        .and_then(|m| m.get(&asked))
        .and_then(Value::as_str)
        .map_or(asked.clone(), str::to_owned);
    let key = a
        .api_key()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "No API key available".to_owned())?
        .to_owned();
    let base = a
        .base_url()
        .filter(|b| !b.is_empty())
        .unwrap_or(if openai {
            "https://api.openai.com"
        } else {
            "https://api.anthropic.com"
        })
        .trim_end_matches('/')
        .to_owned();
    let (url, body) = if openai {
        (
            format!("{base}/v1/responses"),
            json!({"model": model, "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "stream": true}),
        )
    } else {
        (
            format!("{base}/v1/messages"),
            json!({"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "stream": true}),
        )
    };
    Ok((model, key, url, body.to_string().into_bytes()))
}

/// `POST /accounts/:id/test`: SSE `data:` lines, HTTP 200 even on failure (§3.1.1).
async fn test_account(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "account")?;
    let req: TestBody = parse_or_default(&body).unwrap_or_default();
    let mut st = app.lock();
    let Some(a) = st.accounts.get(&id).cloned() else {
        return Ok(early_test_error("Account not found"));
    };
    let requested = req.model_id.clone().filter(|m| !m.is_empty());
    let with_code = st.profile.test_error_code;
    let error = |msg: String, code: Option<u16>| {
        let mut e = json!({"type": "error", "error": msg});
        if let (true, Some(c), Some(o)) = (with_code, code, e.as_object_mut()) {
            o.insert("code".into(), json!(c.to_string()));
        }
        e
    };
    // (model sent upstream, key, URL, body)
    let target = if st.profile.platform_upstreams {
        match legacy_test_target(&a, requested) {
            Ok(t) => t,
            Err(message) => return Ok(early_test_error(&message)),
        }
    } else {
        let requested = requested
            .or_else(|| a.model_mapping().and_then(|m| m.keys().next().cloned()))
            .or_else(|| default_test_model(&a.platform).map(str::to_owned));
        let Some(model) = requested else {
            return Ok(early_test_error(
                "No test model configured for this account",
            ));
        };
        let Some(key) = a.api_key().map(str::to_owned) else {
            return Ok(early_test_error("No API key available"));
        };
        let Some(base) = a.base_url().filter(|b| !b.is_empty()) else {
            return Ok(early_test_error(
                "Request failed: account has no usable base_url",
            ));
        };
        let model = a.map_model(&model);
        let body = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
        (
            model,
            key,
            format!("{}/chat/completions", base.trim_end_matches('/')),
            body.to_string().into_bytes(),
        )
    };
    let (model, key, url, upstream_body) = target;
    let mut events: Vec<(Duration, Value)> = vec![(
        Duration::ZERO,
        json!({"type": "test_start", "model": model}),
    )];
    let behaviour = behaviour_for(&st, &key);
    if behaviour == Behaviour::HostIncompatible {
        events.push((
            Duration::ZERO,
            error(
                "Request failed: upstream response could not be handled by this host".into(),
                None,
            ),
        ));
    } else if let Some((authority, path)) = providers::target(&url) {
        let reply = providers::call(
            &mut st,
            &authority,
            &path,
            "POST",
            Some(&key),
            &upstream_body,
        );
        if reply.status == 200 {
            events.push((
                reply.delay,
                json!({"type": "content", "text": "pong (simulated)"}),
            ));
            events.push((
                Duration::ZERO,
                json!({"type": "test_complete", "success": true}),
            ));
            if st.profile.account_extended_fields
                && let Some(acc) = st.accounts.get_mut(&id)
                && acc.status == "error"
            {
                acc.status = "active".into();
                acc.error_message.clear();
            }
        } else {
            let text = format!("API returned {}: {}", reply.status, reply.body);
            if reply.status == 401
                && st.profile.test_marks_auth_error
                && let Some(acc) = st.accounts.get_mut(&id)
            {
                acc.status = "error".into();
                acc.error_message = format!("Authentication failed (401): {}", reply.body);
                acc.updated_at = now();
            }
            events.push((reply.delay, error(text, Some(reply.status))));
        }
    } else {
        events.push((
            Duration::ZERO,
            error(format!("Request failed: invalid URL {url}"), None),
        ));
    }
    drop(st);
    let stream = futures::stream::iter(events).then(|(delay, ev)| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(sse_line(&ev)))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub(crate) use crate::providers::behaviour_for;

// ---------- groups ----------

#[derive(Deserialize, Default)]
struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    platform: Option<String>,
    rate_multiplier: Option<f64>,
    is_exclusive: Option<bool>,
    status: Option<String>,
    subscription_type: Option<String>,
    daily_limit_usd: Option<f64>,
    weekly_limit_usd: Option<f64>,
    monthly_limit_usd: Option<f64>,
}

fn check_group_enums(p: &Profile, req: &GroupBody, strukt: &str) -> Result<(), Response> {
    let oneof = |field: &str, got: &str| {
        bad_request(&format!(
            "Invalid request: Key: '{strukt}.{field}' Error:Field validation for '{field}' failed on the 'oneof' tag (got '{got}')"
        ))
    };
    if let Some(pl) = req.platform.as_deref().filter(|s| !s.is_empty())
        && !p.group_platforms.contains(&pl)
    {
        return Err(oneof("Platform", pl));
    }
    if let Some(s) = req.subscription_type.as_deref().filter(|s| !s.is_empty())
        && s != "standard"
        && s != "subscription"
    {
        return Err(oneof("SubscriptionType", s));
    }
    if let Some(s) = req.status.as_deref().filter(|s| !s.is_empty())
        && s != "active"
        && s != "inactive"
    {
        return Err(oneof("Status", s));
    }
    Ok(())
}

async fn list_groups(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let counts = st.group_account_counts();
    let items: Vec<&crate::model::Group> = st
        .groups
        .values()
        .filter(|g| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || g.platform == *v)
        })
        .filter(|g| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || g.status == *v)
        })
        .filter(|g| {
            q.get("is_exclusive")
                .is_none_or(|v| v.is_empty() || g.is_exclusive.to_string() == *v)
        })
        .filter(|g| q.get("search").is_none_or(|v| contains_ci(&g.name, v)))
        .collect();
    ok(
        Page::from_query(&q, st.profile.max_page_size).render_with(items, |g| {
            st.group_json_counted(g, counts.get(&g.id).copied().unwrap_or_default())
        }),
    )
}

async fn all_groups(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let counts = st.group_account_counts();
    let items: Vec<Value> = st
        .groups
        .values()
        .filter(|g| g.status == "active")
        .filter(|g| {
            q.get("platform")
                .is_none_or(|v| v.is_empty() || g.platform == *v)
        })
        .map(|g| st.group_json_counted(g, counts.get(&g.id).copied().unwrap_or_default()))
        .collect();
    ok(Value::Array(items))
}

async fn get_group(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    let g = st.groups.get(&id).ok_or_else(group_not_found)?;
    Ok(ok(st.group_json(g)))
}

async fn create_group(AxState(app): App, body: Bytes) -> HResult {
    let req: GroupBody = parse(&body)?;
    let mut st = app.lock();
    let name = required(&req.name, "CreateGroupRequest", "Name")?.to_owned();
    check_group_enums(&st.profile, &req, "CreateGroupRequest")?;
    if st.groups.values().any(|g| g.name == name) {
        return Err(app_err(
            StatusCode::CONFLICT,
            "GROUP_EXISTS",
            "group name already exists",
        ));
    }
    let t = now();
    let id = st.id();
    let g = Group {
        id,
        name,
        description: req.description.unwrap_or_default(),
        platform: req
            .platform
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "anthropic".into()),
        rate_multiplier: req.rate_multiplier.unwrap_or(1.0),
        is_exclusive: req.is_exclusive.unwrap_or(false),
        status: "active".into(),
        subscription_type: req
            .subscription_type
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "standard".into()),
        daily_limit_usd: req.daily_limit_usd,
        weekly_limit_usd: req.weekly_limit_usd,
        monthly_limit_usd: req.monthly_limit_usd,
        created_at: t,
        updated_at: t,
    };
    let v = st.group_json(&g);
    st.groups.insert(id, g);
    Ok(ok(v))
}

async fn update_group(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "group")?;
    let req: GroupBody = parse(&body)?;
    let mut st = app.lock();
    check_group_enums(&st.profile, &req, "UpdateGroupRequest")?;
    if let Some(n) = &req.name
        && st.groups.values().any(|g| g.name == *n && g.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "GROUP_EXISTS",
            "group name already exists",
        ));
    }
    let g = st.groups.get_mut(&id).ok_or_else(group_not_found)?;
    if let Some(v) = req.name {
        g.name = v;
    }
    if let Some(v) = req.description {
        g.description = v;
    }
    if let Some(v) = req.platform.filter(|s| !s.is_empty()) {
        g.platform = v;
    }
    if let Some(v) = req.rate_multiplier {
        g.rate_multiplier = v;
    }
    if let Some(v) = req.is_exclusive {
        g.is_exclusive = v;
    }
    if let Some(v) = req.status.filter(|s| !s.is_empty()) {
        g.status = v;
    }
    if let Some(v) = req.subscription_type.filter(|s| !s.is_empty()) {
        g.subscription_type = v;
    }
    if req.daily_limit_usd.is_some() {
        g.daily_limit_usd = req.daily_limit_usd;
    }
    if req.weekly_limit_usd.is_some() {
        g.weekly_limit_usd = req.weekly_limit_usd;
    }
    if req.monthly_limit_usd.is_some() {
        g.monthly_limit_usd = req.monthly_limit_usd;
    }
    g.updated_at = now();
    let g = g.clone();
    Ok(ok(st.group_json(&g)))
}

async fn delete_group(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "group")?;
    let mut st = app.lock();
    if !st.delete_group(id) {
        return Err(group_not_found());
    }
    Ok(ok(json!({"message": "Group deleted successfully"})))
}

async fn group_keys(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    st.groups.get(&id).ok_or_else(group_not_found)?;
    let items = st
        .keys
        .values()
        .filter(|k| k.group_id == Some(id))
        .map(|k| st.key_json(k))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

async fn group_subscriptions(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = path_id(&id, "group")?;
    let st = app.lock();
    st.groups.get(&id).ok_or_else(group_not_found)?;
    let items = st
        .subscriptions
        .values()
        .filter(|s| s.group_id == id)
        .map(|s| st.subscription_json(s))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

// ---------- channels ----------

#[derive(Deserialize, Default)]
struct ChannelBody {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    group_ids: Option<Vec<i64>>,
    model_pricing: Option<Vec<Value>>,
    model_mapping: Option<Map<String, Value>>,
    billing_model_source: Option<String>,
    restrict_models: Option<bool>,
}

fn channel_not_found() -> Response {
    not_found("CHANNEL_NOT_FOUND", "channel not found")
}

fn validation(msg: &str) -> Response {
    app_err(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", msg)
}

/// Normalises pricing rows (defaults, ids) and rejects what the host rejects.
fn normalise_pricing(st: &mut State, rows: &[Value]) -> Result<Vec<Value>, Response> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(obj) = row.as_object() else {
            return Err(validation("model_pricing rows must be objects"));
        };
        let mut obj = obj.clone();
        let models = obj
            .get("models")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if models.is_empty()
            || models.len() > 100
            || !models
                .iter()
                .all(|m| m.as_str().is_some_and(|s| !s.is_empty()))
        {
            return Err(validation(
                "each model_pricing row needs 1 to 100 model names",
            ));
        }
        let mode = obj
            .get("billing_mode")
            .and_then(Value::as_str)
            .unwrap_or("token")
            .to_owned();
        if !["token", "per_request", "image"].contains(&mode.as_str()) {
            return Err(validation(&format!("invalid billing_mode '{mode}'")));
        }
        obj.entry("platform").or_insert(json!("anthropic"));
        obj.insert("billing_mode".into(), json!(mode));
        obj.entry("intervals").or_insert(json!([]));
        let id = st.id();
        obj.insert("id".into(), json!(id));
        out.push(Value::Object(obj));
    }
    Ok(out)
}

fn check_channel_groups(st: &State, ids: &[i64], this: Option<i64>) -> Result<(), Response> {
    check_groups_exist(st, ids)?;
    for gid in ids {
        if let Some(other) = st
            .channels
            .values()
            .find(|c| Some(c.id) != this && c.group_ids.contains(gid))
        {
            return Err(app_err(
                StatusCode::CONFLICT,
                "GROUP_ALREADY_IN_CHANNEL",
                &format!("group {gid} already belongs to channel '{}'", other.name),
            ));
        }
    }
    Ok(())
}

fn check_billing_source(s: Option<&str>) -> Result<(), Response> {
    match s {
        None | Some("requested" | "upstream" | "channel_mapped") => Ok(()),
        Some(other) => Err(validation(&format!(
            "billing_model_source must be one of requested, upstream, channel_mapped (got '{other}')"
        ))),
    }
}

async fn list_channels(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let mut items: Vec<&Channel> = st
        .channels
        .values()
        .filter(|c| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || c.status == *v)
        })
        .filter(|c| q.get("search").is_none_or(|v| contains_ci(&c.name, v)))
        .collect();
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = items.into_iter().map(|c| st.channel_json(c)).collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

async fn get_channel(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "channel")?;
    let st = app.lock();
    let c = st.channels.get(&id).ok_or_else(channel_not_found)?;
    Ok(ok(st.channel_json(c)))
}

async fn create_channel(AxState(app): App, body: Bytes) -> HResult {
    let req: ChannelBody = parse(&body)?;
    let mut st = app.lock();
    let name = required(&req.name, "CreateChannelRequest", "Name")?.to_owned();
    if name.chars().count() > 100 {
        return Err(validation("name must be at most 100 characters"));
    }
    if st.channels.values().any(|c| c.name == name) {
        return Err(app_err(
            StatusCode::CONFLICT,
            "CHANNEL_EXISTS",
            "channel name already exists",
        ));
    }
    check_billing_source(req.billing_model_source.as_deref())?;
    let group_ids = req.group_ids.unwrap_or_default();
    check_channel_groups(&st, &group_ids, None)?;
    let pricing = normalise_pricing(&mut st, &req.model_pricing.unwrap_or_default())?;
    let t = now();
    let id = st.id();
    let c = Channel {
        id,
        name,
        description: req.description.unwrap_or_default(),
        status: "active".into(),
        group_ids,
        model_pricing: pricing,
        model_mapping: req.model_mapping.unwrap_or_default(),
        billing_model_source: req
            .billing_model_source
            .unwrap_or_else(|| "requested".into()),
        restrict_models: req.restrict_models.unwrap_or(false),
        created_at: t,
        updated_at: t,
    };
    let v = st.channel_json(&c);
    st.channels.insert(id, c);
    Ok(ok(v))
}

async fn update_channel(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "channel")?;
    let req: ChannelBody = parse(&body)?;
    let mut st = app.lock();
    st.channels.get(&id).ok_or_else(channel_not_found)?;
    check_billing_source(req.billing_model_source.as_deref())?;
    if let Some(s) = req.status.as_deref()
        && s != "active"
        && s != "disabled"
    {
        return Err(validation(&format!(
            "status must be active or disabled (got '{s}')"
        )));
    }
    if let Some(n) = &req.name
        && st.channels.values().any(|c| c.name == *n && c.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "CHANNEL_EXISTS",
            "channel name already exists",
        ));
    }
    if let Some(g) = &req.group_ids {
        check_channel_groups(&st, g, Some(id))?;
    }
    let pricing = match &req.model_pricing {
        Some(rows) => Some(normalise_pricing(&mut st, rows)?),
        None => None,
    };
    let c = st.channels.get_mut(&id).ok_or_else(channel_not_found)?;
    if let Some(v) = req.name {
        c.name = v;
    }
    if let Some(v) = req.description {
        c.description = v;
    }
    if let Some(v) = req.status {
        c.status = v;
    }
    if let Some(v) = req.group_ids {
        c.group_ids = v;
    }
    if let Some(v) = pricing {
        c.model_pricing = v;
    }
    if let Some(v) = req.model_mapping {
        c.model_mapping = v;
    }
    if let Some(v) = req.billing_model_source {
        c.billing_model_source = v;
    }
    if let Some(v) = req.restrict_models {
        c.restrict_models = v;
    }
    c.updated_at = now();
    let c = c.clone();
    Ok(ok(st.channel_json(&c)))
}

async fn delete_channel(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "channel")?;
    let mut st = app.lock();
    st.channels.remove(&id).ok_or_else(channel_not_found)?;
    Ok(ok(json!({"message": "Channel deleted successfully"})))
}

// ---------- users ----------

#[derive(Deserialize, Default)]
struct UserBody {
    email: Option<String>,
    password: Option<String>,
    username: Option<String>,
    notes: Option<String>,
    balance: Option<f64>,
    concurrency: Option<i64>,
    status: Option<String>,
    allowed_groups: Option<Vec<i64>>,
}

pub(crate) fn user_not_found() -> Response {
    not_found("USER_NOT_FOUND", "user not found")
}

async fn list_users(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let items = st
        .users
        .values()
        .filter(|u| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || u.status == *v)
        })
        .filter(|u| q.get("role").is_none_or(|v| v.is_empty() || u.role == *v))
        .filter(|u| {
            q.get("search")
                .is_none_or(|v| contains_ci(&u.email, v) || contains_ci(&u.username, v))
        })
        .map(|u| st.user_json(u))
        .collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

async fn get_user(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    let u = st.users.get(&id).ok_or_else(user_not_found)?;
    Ok(ok(st.user_json(u)))
}

async fn create_user(AxState(app): App, body: Bytes) -> HResult {
    let req: UserBody = parse(&body)?;
    let mut st = app.lock();
    let email = required(&req.email, "CreateUserRequest", "Email")?.to_owned();
    if !email.contains('@') {
        return Err(bad_request(
            "Invalid request: Key: 'CreateUserRequest.Email' Error:Field validation for 'Email' failed on the 'email' tag",
        ));
    }
    let password = required(&req.password, "CreateUserRequest", "Password")?.to_owned();
    if password.chars().count() < 6 {
        return Err(bad_request(
            "Invalid request: Key: 'CreateUserRequest.Password' Error:Field validation for 'Password' failed on the 'min' tag",
        ));
    }
    if st
        .users
        .values()
        .any(|u| u.email.eq_ignore_ascii_case(&email))
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "EMAIL_EXISTS",
            "email already exists",
        ));
    }
    let t = now();
    let id = st.id();
    let u = User {
        id,
        email,
        username: req.username.unwrap_or_default(),
        password,
        role: "user".into(),
        balance: req.balance.unwrap_or(0.0),
        concurrency: req.concurrency.unwrap_or(5),
        status: "active".into(),
        allowed_groups: req.allowed_groups.unwrap_or_default(),
        notes: req.notes.unwrap_or_default(),
        created_at: t,
        updated_at: t,
    };
    let v = st.user_json(&u);
    st.users.insert(id, u);
    Ok(ok(v))
}

async fn update_user(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "user")?;
    let req: UserBody = parse(&body)?;
    let mut st = app.lock();
    if let Some(s) = req.status.as_deref()
        && s != "active"
        && s != "disabled"
    {
        return Err(bad_request(&format!(
            "Invalid request: Key: 'UpdateUserRequest.Status' Error:Field validation for 'Status' failed on the 'oneof' tag (got '{s}')"
        )));
    }
    if let Some(e) = &req.email
        && st
            .users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(e) && u.id != id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "EMAIL_EXISTS",
            "email already exists",
        ));
    }
    let u = st.users.get_mut(&id).ok_or_else(user_not_found)?;
    if let Some(v) = req.email {
        u.email = v;
    }
    if let Some(v) = req.password.filter(|p| !p.is_empty()) {
        u.password = v;
    }
    if let Some(v) = req.username {
        u.username = v;
    }
    if let Some(v) = req.notes {
        u.notes = v;
    }
    if let Some(v) = req.balance {
        u.balance = v;
    }
    if let Some(v) = req.concurrency {
        u.concurrency = v;
    }
    if let Some(v) = req.status {
        u.status = v;
    }
    if let Some(v) = req.allowed_groups {
        u.allowed_groups = v;
    }
    u.updated_at = now();
    let u = u.clone();
    Ok(ok(st.user_json(&u)))
}

async fn delete_user(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let mut st = app.lock();
    let u = st.users.get(&id).ok_or_else(user_not_found)?;
    if u.role == "admin" {
        return Err(bad_request("cannot delete admin user"));
    }
    st.delete_user(id);
    Ok(ok(json!({"message": "User deleted successfully"})))
}

#[derive(Deserialize)]
struct BalanceBody {
    balance: f64,
    operation: String,
}

async fn user_balance(
    AxState(app): App,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "user")?;
    let req: BalanceBody = parse(&body)?;
    if req.balance <= 0.0 || !req.balance.is_finite() {
        return Err(bad_request(
            "Invalid request: Key: 'UpdateBalanceRequest.Balance' Error:Field validation for 'Balance' failed on the 'gt' tag",
        ));
    }
    if !["set", "add", "subtract"].contains(&req.operation.as_str()) {
        return Err(bad_request(
            "Invalid request: Key: 'UpdateBalanceRequest.Operation' Error:Field validation for 'Operation' failed on the 'oneof' tag",
        ));
    }
    let mut st = app.lock();
    idempotent(
        &mut st,
        &headers,
        "admin.users.balance.update",
        &body,
        |st| {
            let u = st.users.get_mut(&id).ok_or_else(user_not_found)?;
            let new = match req.operation.as_str() {
                "set" => req.balance,
                "add" => u.balance + req.balance,
                _ => u.balance - req.balance,
            };
            if new < 0.0 {
                return Err(app_err(
                    StatusCode::BAD_REQUEST,
                    "INSUFFICIENT_BALANCE",
                    "balance cannot go below zero",
                ));
            }
            u.balance = new;
            u.updated_at = now();
            let u = u.clone();
            Ok(st.user_json(&u))
        },
    )
}

async fn user_keys(AxState(app): App, Path(id): Path<String>, Query(q): Q) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    st.users.get(&id).ok_or_else(user_not_found)?;
    let items = st
        .keys
        .values()
        .filter(|k| k.user_id == id)
        .map(|k| st.key_json(k))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

async fn user_subscriptions(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "user")?;
    let st = app.lock();
    st.users.get(&id).ok_or_else(user_not_found)?;
    let items: Vec<Value> = st
        .subscriptions
        .values()
        .filter(|s| s.user_id == id)
        .map(|s| st.subscription_json(s))
        .collect();
    Ok(ok(Value::Array(items)))
}

// ---------- admin key rebind ----------

#[derive(Deserialize, Default)]
struct RebindBody {
    group_id: Option<i64>,
}

async fn rebind_key(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "API key")?;
    let req: RebindBody = parse_or_default(&body)?;
    let mut st = app.lock();
    let key = st
        .keys
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("API_KEY_NOT_FOUND", "api key not found"))?;
    let mut granted: Option<(i64, String)> = None;
    match req.group_id {
        None => {}
        Some(0) => {
            if let Some(k) = st.keys.get_mut(&id) {
                k.group_id = None;
            }
        }
        Some(gid) => {
            let g = st.groups.get(&gid).cloned().ok_or_else(group_not_found)?;
            if g.is_exclusive
                && g.subscription_type == "standard"
                && let Some(u) = st.users.get_mut(&key.user_id)
                && !u.allowed_groups.contains(&gid)
            {
                u.allowed_groups.push(gid);
                granted = Some((gid, g.name.clone()));
            }
            if let Some(k) = st.keys.get_mut(&id) {
                k.group_id = Some(gid);
                k.updated_at = now();
            }
        }
    }
    let k = st
        .keys
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("API_KEY_NOT_FOUND", "api key not found"))?;
    let mut data =
        json!({"api_key": st.key_json(&k), "auto_granted_group_access": granted.is_some()});
    if let (Some((gid, name)), Some(o)) = (granted, data.as_object_mut()) {
        o.insert("granted_group_id".into(), json!(gid));
        o.insert("granted_group_name".into(), json!(name));
    }
    Ok(ok(data))
}

// ---------- subscriptions ----------

fn subscription_not_found() -> Response {
    not_found("SUBSCRIPTION_NOT_FOUND", "subscription not found")
}

async fn list_subscriptions(AxState(app): App, Query(q): Q) -> Response {
    let st = app.lock();
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let items = st
        .subscriptions
        .values()
        .filter(|s| num("user_id").is_none_or(|u| s.user_id == u))
        .filter(|s| num("group_id").is_none_or(|g| s.group_id == g))
        .filter(|s| {
            q.get("status")
                .is_none_or(|v| v.is_empty() || s.effective_status() == v)
        })
        .map(|s| st.subscription_json(s))
        .collect();
    ok(Page::from_query(&q, st.profile.max_page_size).render(items))
}

async fn get_subscription(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "subscription")?;
    let st = app.lock();
    let s = st
        .subscriptions
        .get(&id)
        .ok_or_else(subscription_not_found)?;
    Ok(ok(st.subscription_json(s)))
}

#[derive(Deserialize)]
struct AssignBody {
    user_id: i64,
    group_id: i64,
    #[serde(default)]
    validity_days: i64,
    #[serde(default)]
    notes: String,
}

async fn assign_subscription(AxState(app): App, body: Bytes) -> HResult {
    let req: AssignBody = parse(&body)?;
    let mut st = app.lock();
    st.users.get(&req.user_id).ok_or_else(user_not_found)?;
    let g = st.groups.get(&req.group_id).ok_or_else(group_not_found)?;
    if g.subscription_type != "subscription" {
        return Err(app_err(
            StatusCode::BAD_REQUEST,
            "GROUP_NOT_SUBSCRIPTION_TYPE",
            "group is not a subscription type group",
        ));
    }
    if st
        .subscriptions
        .values()
        .any(|s| s.user_id == req.user_id && s.group_id == req.group_id)
    {
        return Err(app_err(
            StatusCode::CONFLICT,
            "SUBSCRIPTION_ALREADY_EXISTS",
            "user already has a subscription for this group",
        ));
    }
    let days = if req.validity_days <= 0 {
        30
    } else {
        req.validity_days.min(36_500)
    };
    let t = now();
    let id = st.id();
    let s = Subscription {
        id,
        user_id: req.user_id,
        group_id: req.group_id,
        starts_at: t,
        expires_at: t + chrono::Duration::days(days),
        status: "active".into(),
        notes: req.notes,
        assigned_by: 1,
        usage_usd: 0.0,
        created_at: t,
        updated_at: t,
    };
    let v = st.subscription_json(&s);
    st.subscriptions.insert(id, s);
    Ok(ok(v))
}

async fn revoke_subscription(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "subscription")?;
    let mut st = app.lock();
    st.subscriptions
        .remove(&id)
        .ok_or_else(subscription_not_found)?;
    Ok(ok(json!({"message": "Subscription revoked successfully"})))
}

// ---------- payment plans (current) ----------

async fn list_plans(AxState(app): App) -> Response {
    let st = app.lock();
    ok(Value::Array(st.plans.values().cloned().collect()))
}

fn plan_from(id: i64, req: &Map<String, Value>, base: Option<&Value>) -> Value {
    let mut v = base.cloned().unwrap_or_else(|| {
        json!({"description": "", "price": 0.0, "original_price": null, "validity_days": 30,
               "validity_unit": "day", "features": "", "product_name": "", "for_sale": true, "sort_order": 0})
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in req {
            o.insert(k.clone(), val.clone());
        }
        o.insert("id".into(), json!(id));
        o.insert("updated_at".into(), json!(ts(&now())));
        o.entry("created_at").or_insert(json!(ts(&now())));
    }
    v
}

async fn create_plan(AxState(app): App, body: Bytes) -> HResult {
    let req: Map<String, Value> = parse(&body)?;
    let mut st = app.lock();
    let gid = req.get("group_id").and_then(Value::as_i64).ok_or_else(|| {
        bad_request("Invalid request: Key: 'CreatePlanRequest.GroupID' Error:Field validation for 'GroupID' failed on the 'required' tag")
    })?;
    if req
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad_request(
            "Invalid request: Key: 'CreatePlanRequest.Name' Error:Field validation for 'Name' failed on the 'required' tag",
        ));
    }
    st.groups.get(&gid).ok_or_else(group_not_found)?;
    let id = st.id();
    let v = plan_from(id, &req, None);
    st.plans.insert(id, v.clone());
    Ok(created(v))
}

async fn update_plan(AxState(app): App, Path(id): Path<String>, body: Bytes) -> HResult {
    let id = path_id(&id, "plan")?;
    let req: Map<String, Value> = parse(&body)?;
    let mut st = app.lock();
    let old = st
        .plans
        .get(&id)
        .cloned()
        .ok_or_else(|| not_found("PLAN_NOT_FOUND", "plan not found"))?;
    let v = plan_from(id, &req, Some(&old));
    st.plans.insert(id, v.clone());
    Ok(ok(v))
}

async fn delete_plan(AxState(app): App, Path(id): Path<String>) -> HResult {
    let id = path_id(&id, "plan")?;
    let mut st = app.lock();
    st.plans
        .remove(&id)
        .ok_or_else(|| not_found("PLAN_NOT_FOUND", "plan not found"))?;
    Ok(ok(json!({"message": "Plan deleted successfully"})))
}
