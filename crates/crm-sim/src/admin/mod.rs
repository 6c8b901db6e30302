//! The admin API under `/api/v1/admin`: accounts (with the SSE test), groups,
//! channels, users, admin key rebind, subscriptions, payment plans, CN-provider
//! probes and the version endpoints, behind `x-api-key` / admin-JWT auth.

mod account_test;
mod accounts;
mod auth;
mod channels;
mod cn_providers;
mod groups;
mod keys;
mod monitors;
mod plans;
mod subscriptions;
mod users;

use self::{
    account_test::*, accounts::*, auth::*, channels::*, groups::*, keys::*, plans::*,
    subscriptions::*, users::*,
};

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
    HResult, Page, app_err, bad_request, bearer, created, json_response, mw_err, not_found, ok,
    parse, parse_or_default, path_id, required,
};
use crate::shared::Shared;
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

// ---------- helpers shared by the resources ----------

pub(super) fn account_not_found() -> Response {
    not_found("ACCOUNT_NOT_FOUND", "account not found")
}

pub(super) fn group_not_found() -> Response {
    not_found("GROUP_NOT_FOUND", "group not found")
}

pub(super) fn check_groups_exist(st: &State, ids: &[i64]) -> Result<(), Response> {
    if ids.iter().all(|g| st.groups.contains_key(g)) {
        Ok(())
    } else {
        Err(group_not_found())
    }
}

pub(super) fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// Runs `f` under the profile's `Idempotency-Key` rules: a replay answers the
/// stored response with `X-Idempotency-Replayed: true`, a reused key with another
/// body is a 409.
pub(super) fn idempotent(
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
