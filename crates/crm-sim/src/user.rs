//! The user side: `POST /api/v1/auth/login` and the JWT-only `/api/v1/keys` routes
//! where gateway keys are minted and bound to groups.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::model::{ApiKey, State, now, random_hex};
use crate::reply::{
    HResult, Page, app_err, bad_request, bearer, mw_err, not_found, ok, parse, path_id, required,
};
use crate::shared::Shared;

type App = AxState<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/keys", get(list_keys).post(create_key))
        .route(
            "/api/v1/keys/{id}",
            get(get_key).put(update_key).delete(delete_key),
        )
}

#[derive(Deserialize)]
struct LoginBody {
    email: Option<String>,
    password: Option<String>,
}

async fn login(AxState(app): App, body: Bytes) -> HResult {
    let req: LoginBody = parse(&body)?;
    let email = required(&req.email, "LoginRequest", "Email")?.to_owned();
    let password = required(&req.password, "LoginRequest", "Password")?.to_owned();
    let mut st = app.lock();
    let user = st
        .users
        .values()
        .find(|u| u.email.eq_ignore_ascii_case(&email) && u.password == password)
        .cloned()
        .ok_or_else(|| {
            app_err(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "invalid email or password",
            )
        })?;
    if user.status != "active" {
        return Err(app_err(
            StatusCode::FORBIDDEN,
            "USER_NOT_ACTIVE",
            "user is not active",
        ));
    }
    // An opaque token: clients must treat the JWT as opaque anyway.
    let token = format!("simjwt.{}", random_hex(24));
    st.sessions.insert(token.clone(), user.id);
    Ok(ok(
        json!({"access_token": token, "token_type": "Bearer", "user": st.user_json(&user)}),
    ))
}

fn session_user(st: &State, headers: &HeaderMap) -> Result<i64, Response> {
    let Some(token) = bearer(headers) else {
        return Err(mw_err(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authorization header is required",
        ));
    };
    let uid = st
        .sessions
        .get(token)
        .copied()
        .ok_or_else(|| mw_err(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "Invalid token"))?;
    match st.users.get(&uid) {
        Some(u) if u.status == "active" => Ok(uid),
        Some(_) => Err(mw_err(
            StatusCode::UNAUTHORIZED,
            "USER_INACTIVE",
            "User is not active",
        )),
        None => Err(mw_err(
            StatusCode::UNAUTHORIZED,
            "USER_NOT_FOUND",
            "User not found",
        )),
    }
}

fn key_not_found() -> Response {
    not_found("API_KEY_NOT_FOUND", "api key not found")
}

/// A subscription group needs an active subscription; an exclusive standard group
/// needs the group in the user's `allowed_groups`.
fn check_binding(st: &State, user_id: i64, group_id: i64) -> Result<(), Response> {
    let g = st
        .groups
        .get(&group_id)
        .ok_or_else(|| not_found("GROUP_NOT_FOUND", "group not found"))?;
    if g.subscription_type == "subscription" {
        if st.active_subscription(user_id, group_id).is_none() {
            return Err(app_err(
                StatusCode::FORBIDDEN,
                "GROUP_NOT_ALLOWED",
                "user has no active subscription for this group",
            ));
        }
    } else if g.is_exclusive
        && !st
            .users
            .get(&user_id)
            .is_some_and(|u| u.allowed_groups.contains(&group_id))
    {
        return Err(app_err(
            StatusCode::FORBIDDEN,
            "GROUP_NOT_ALLOWED",
            "user is not allowed to bind this group",
        ));
    }
    Ok(())
}

async fn list_keys(
    AxState(app): App,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> HResult {
    let st = app.lock();
    let uid = session_user(&st, &headers)?;
    let items = st
        .keys
        .values()
        .filter(|k| k.user_id == uid)
        .map(|k| st.key_json(k))
        .collect();
    Ok(ok(
        Page::from_query(&q, st.profile.max_page_size).render(items)
    ))
}

async fn get_key(AxState(app): App, headers: HeaderMap, Path(id): Path<String>) -> HResult {
    let st = app.lock();
    let uid = session_user(&st, &headers)?;
    let id = path_id(&id, "API key")?;
    let k = st
        .keys
        .get(&id)
        .filter(|k| k.user_id == uid)
        .ok_or_else(key_not_found)?;
    Ok(ok(st.key_json(k)))
}

#[derive(Deserialize)]
struct CreateKeyBody {
    name: Option<String>,
    group_id: Option<i64>,
    custom_key: Option<String>,
}

async fn create_key(AxState(app): App, headers: HeaderMap, body: Bytes) -> HResult {
    let mut st = app.lock();
    let uid = session_user(&st, &headers)?;
    let req: CreateKeyBody = parse(&body)?;
    let name = required(&req.name, "CreateAPIKeyRequest", "Name")?.to_owned();
    if let Some(g) = req.group_id {
        check_binding(&st, uid, g)?;
    }
    let key = match req.custom_key.filter(|k| !k.is_empty()) {
        Some(k) => {
            if k.len() < 16 {
                return Err(app_err(
                    StatusCode::BAD_REQUEST,
                    "API_KEY_TOO_SHORT",
                    "api key must be at least 16 characters",
                ));
            }
            if !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(app_err(
                    StatusCode::BAD_REQUEST,
                    "API_KEY_INVALID_CHARS",
                    "api key can only contain letters, numbers, underscores, and hyphens",
                ));
            }
            if st.keys.values().any(|x| x.key == k) {
                return Err(app_err(
                    StatusCode::CONFLICT,
                    "API_KEY_EXISTS",
                    "api key already exists",
                ));
            }
            k
        }
        None => format!("sk-{}", random_hex(16)),
    };
    let t = now();
    let id = st.id();
    let k = ApiKey {
        id,
        user_id: uid,
        key,
        name,
        group_id: req.group_id,
        status: "active".into(),
        quota_used: 0.0,
        last_used_at: None,
        created_at: t,
        updated_at: t,
    };
    let v = st.key_json(&k);
    st.keys.insert(id, k);
    Ok(ok(v))
}

#[derive(Deserialize)]
struct UpdateKeyBody {
    name: Option<String>,
    group_id: Option<i64>,
    status: Option<String>,
}

async fn update_key(
    AxState(app): App,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let mut st = app.lock();
    let uid = session_user(&st, &headers)?;
    let id = path_id(&id, "API key")?;
    let req: UpdateKeyBody = parse(&body)?;
    st.keys
        .get(&id)
        .filter(|k| k.user_id == uid)
        .ok_or_else(key_not_found)?;
    if let Some(s) = req.status.as_deref()
        && s != "active"
        && s != "inactive"
    {
        return Err(bad_request(&format!(
            "Invalid request: Key: 'UpdateAPIKeyRequest.Status' Error:Field validation for 'Status' failed on the 'oneof' tag (got '{s}')"
        )));
    }
    if let Some(g) = req.group_id.filter(|g| *g > 0) {
        check_binding(&st, uid, g)?;
    }
    let k = st.keys.get_mut(&id).ok_or_else(key_not_found)?;
    if let Some(v) = req.name.filter(|n| !n.is_empty()) {
        k.name = v;
    }
    if let Some(g) = req.group_id {
        k.group_id = (g > 0).then_some(g);
    }
    if let Some(s) = req.status {
        k.status = s;
    }
    k.updated_at = now();
    let k = k.clone();
    Ok(ok(st.key_json(&k)))
}

async fn delete_key(AxState(app): App, headers: HeaderMap, Path(id): Path<String>) -> HResult {
    let mut st = app.lock();
    let uid = session_user(&st, &headers)?;
    let id = path_id(&id, "API key")?;
    st.keys
        .get(&id)
        .filter(|k| k.user_id == uid)
        .ok_or_else(key_not_found)?;
    st.keys.remove(&id);
    Ok(ok(json!({"message": "API key deleted successfully"})))
}
