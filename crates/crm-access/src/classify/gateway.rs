//! Phase 1: one gateway step read into a final verdict or a request to
//! probe the upstream.

use super::outcome::{mentions_model, said};
use super::reading::*;
use crm_domain::FailureClass;
use crm_domain::observed::CallOutcome;

const AUTH_CODES: &[&str] = &[
    "api_key_required",
    "invalid_api_key",
    "api_key_disabled",
    "api_key_expired",
    "user_not_found",
    "user_inactive",
    "access_denied",
    "group_deleted",
    "group_disabled",
    "permission_error",
    "authentication_error",
    "api_key_in_query_deprecated",
];

const BILLING_CODES: &[&str] = &[
    "insufficient_balance",
    "subscription_not_found",
    "subscription_invalid",
    "billing_error",
    "insufficient_user_quota",
];

/// Host-side limits reported as 429 by the auth middleware: advisories.
const LIMIT_CODES: &[&str] = &["usage_limit_exceeded", "api_key_quota_exhausted"];

fn auth_hint(code: &str) -> &'static str {
    match code {
        "group_deleted" | "group_disabled" => {
            "the key's group is gone or disabled; re-run `crm provider import <provider> --host <host> --mode MODE` to close access again"
        }
        "permission_error" => {
            "the key is not bound to a group; re-run `crm provider import <provider> --host <host> --mode MODE` to close access again"
        }
        "access_denied" => {
            "the key's IP rules refuse crm's address; see the key with `crm batch show BATCH`"
        }
        "user_inactive" | "user_not_found" => {
            "the key's user is disabled or deleted; see `crm batch show BATCH`"
        }
        _ => {
            "the user key is unknown, disabled or expired; re-run `crm provider import <provider> --host <host> --mode MODE` to mint a new one"
        }
    }
}

/// Reads one gateway step. `smoke_model` is checked against the listing of
/// the models step (`model_ids` is ignored for the chat step).
pub fn read_gateway(
    step: GatewayStep,
    outcome: &CallOutcome,
    model_ids: &[String],
    smoke_model: &str,
) -> GatewayReading {
    let route = step.route();
    if outcome.transport_error.is_some() || outcome.status.is_none() {
        return GatewayReading::Final(Diagnosis::fail(
            FailureClass::HostUnreachable,
            format!(
                "{route}: no answer from the host ({}); check the host URL and that it is up (`crm host probe <host>`)",
                outcome.transport_error.as_deref().unwrap_or("no response")
            ),
        ));
    }
    if outcome.ok {
        if step == GatewayStep::Models && !model_ids.iter().any(|m| m == smoke_model) {
            return GatewayReading::Final(Diagnosis::fail(
                FailureClass::ModelNotExposed,
                format!(
                    "{route} does not list the smoke-test model {smoke_model} (listed: {}); check the accounts' model mapping with `crm provider reconcile <provider> --host <host>`",
                    listed(model_ids)
                ),
            ));
        }
        return GatewayReading::Ok;
    }
    let status = outcome.status.unwrap_or_default();
    let code = outcome
        .error_type
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let message = outcome.message.as_deref().unwrap_or_default();
    let lower_message = message.to_ascii_lowercase();
    let host_said = said(outcome);

    if AUTH_CODES.contains(&code.as_str()) {
        return GatewayReading::Final(Diagnosis::fail(
            FailureClass::AuthIssue,
            format!(
                "{route}: host refused the user key ({host_said}); {}",
                auth_hint(&code)
            ),
        ));
    }
    if BILLING_CODES.contains(&code.as_str()) {
        let hint = if code.starts_with("subscription") {
            "assign an active subscription with `crm provider assign-subscriptions <provider> --host <host> --user USER`"
        } else {
            "give the user a balance (or re-import with `crm provider import ... --balance AMOUNT`)"
        };
        return GatewayReading::Final(Diagnosis::fail(
            FailureClass::BillingGate,
            format!("{route}: host's billing gate refused the call ({host_said}); {hint}"),
        ));
    }
    if LIMIT_CODES.contains(&code.as_str()) {
        return GatewayReading::Final(Diagnosis::advisory(
            FailureClass::TransientRateLimited,
            format!(
                "{route}: a host-side usage limit was hit ({host_said}); access works once the window resets; then {RECHECK}"
            ),
        ));
    }
    match code.as_str() {
        // The host client's names for a gin plain-text 404 and for an HTML
        // page served where the API should be: either way, no such route.
        "route_missing" | "unexpected_html" => {
            return GatewayReading::Final(Diagnosis::fail(
                FailureClass::RouteMissing,
                format!(
                    "{route}: the host has no such route ({host_said}); upgrade sub2api or use a route it serves; `crm host probe <host>` records what it serves"
                ),
            ));
        }
        // `overloaded_error` is the Claude-style handler's answer to an
        // upstream 529 (handler/gateway_handler.go mapUpstreamError, d3e73f1).
        "upstream_error" | "overloaded_error" => {
            return GatewayReading::AskUpstream {
                suspicion: UpstreamSuspicion::UpstreamError,
                host_said,
            };
        }
        "rate_limit_error" => {
            return GatewayReading::AskUpstream {
                suspicion: UpstreamSuspicion::RateLimit,
                host_said,
            };
        }
        "api_error" if lower_message.contains("no available accounts") => {
            return GatewayReading::AskUpstream {
                suspicion: UpstreamSuspicion::NoAvailableAccounts,
                host_said,
            };
        }
        _ => {}
    }
    if mentions_model(&lower_message) && matches!(status, 400 | 403 | 404) {
        return GatewayReading::Final(Diagnosis::fail(
            FailureClass::ModelNotExposed,
            format!(
                "{route}: host does not serve {smoke_model} through this key's group ({host_said}); check the channel's model list and the accounts' model mapping with `crm provider reconcile <provider> --host <host>`"
            ),
        ));
    }
    match status {
        401 => GatewayReading::Final(Diagnosis::fail(
            FailureClass::AuthIssue,
            format!(
                "{route}: host refused the user key ({host_said}); re-run `crm provider import <provider> --host <host> --mode MODE` to mint a new one"
            ),
        )),
        402 => GatewayReading::Final(Diagnosis::fail(
            FailureClass::BillingGate,
            format!(
                "{route}: host asks for payment ({host_said}); give the user a balance or a subscription (`crm provider assign-subscriptions <provider> --host <host> --user USER`)"
            ),
        )),
        403 => GatewayReading::Final(Diagnosis::fail(
            FailureClass::AuthIssue,
            format!(
                "{route}: host forbids this key ({host_said}); see the key with `crm batch show BATCH`"
            ),
        )),
        404 | 405 => GatewayReading::Final(Diagnosis::fail(
            FailureClass::RouteMissing,
            format!(
                "{route}: the host has no such route ({host_said}); upgrade sub2api or use a route it serves; `crm host probe <host>` records what it serves"
            ),
        )),
        429 => GatewayReading::AskUpstream {
            suspicion: UpstreamSuspicion::RateLimit,
            host_said,
        },
        _ => GatewayReading::AskUpstream {
            suspicion: UpstreamSuspicion::Unexplained,
            host_said,
        },
    }
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        return "nothing".to_owned();
    }
    let mut shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
    if ids.len() > 10 {
        shown.push("…");
    }
    shown.join(", ")
}
