//! The gateway's auth and billing middleware (`apiKeyAuthWithSubscription`).

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::model::{Group, State};
use crate::reply::{bearer, json_response, mw_err};
use crate::shared::Shared;

/// The state extractor of every gateway handler.
pub(super) type App = AxState<Arc<Shared>>;

/// The caller of a gateway route after the auth and billing middleware.
pub(super) struct Caller {
    pub(super) group: Option<Group>,
}

pub(super) fn gateway_key(headers: &HeaderMap) -> Option<&str> {
    bearer(headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()))
        .filter(|k| !k.is_empty())
}

/// `apiKeyAuthWithSubscription`: key, user, group and billing gates, string codes.
pub(super) fn authenticate(st: &State, headers: &HeaderMap) -> Result<Caller, Response> {
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
