//! Failure classification: from what the gateway, the upstream and the
//! account probe answered to one of docs/design.md's failure classes (§3) and a
//! sentence an operator can act on.
//!
//! Pure: the verification routine gathers [`CallOutcome`]s and calls these
//! functions. Classification runs in two phases because the second one costs
//! upstream calls (and, for quota-limited providers, upstream quota):
//!
//! 1. [`read_gateway`] reads one gateway step. Host-side verdicts (bad key,
//!    no balance, missing route, model not listed) are final. When the host
//!    blames the upstream (`upstream_error`, a handler `rate_limit_error`,
//!    "No available accounts", an unreadable error) the reading asks for an
//!    upstream probe.
//! 2. [`diagnose`] combines the gateway reading with the direct upstream
//!    probes (read with the provider's [`ErrorSignals`]) and the account probes.
//!
//! A 429 anywhere is an advisory (`pass_with_advisories`, access status
//! `degraded`), except when the upstream itself, probed directly, says the
//! key is out of quota: a Kimi `exceeded_current_quota_error` or a Zhipu 1113
//! arrives as a 429 but will not go away by waiting.

use crm_domain::observed::{AccountProbe, CallOutcome};
use crm_domain::ports::HostError;
use crm_domain::spec::ErrorSignals;
use crm_domain::{FailureClass, Verdict};

/// What a check concluded: the verdict, the class of the failure (or of the
/// advisory) and an operator-facing sentence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub failure_class: Option<FailureClass>,
    pub summary: String,
}

impl Diagnosis {
    pub fn pass(summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::Pass,
            failure_class: None,
            summary: summary.into(),
        }
    }
    pub fn advisory(class: FailureClass, summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::PassWithAdvisories,
            failure_class: Some(class),
            summary: summary.into(),
        }
    }
    pub fn fail(class: FailureClass, summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::Fail,
            failure_class: Some(class),
            summary: summary.into(),
        }
    }
}

/// Which gateway call an outcome belongs to (for the wording of summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayStep {
    Models,
    Chat,
    /// `POST /v1/messages`, the completion route of hosts without chat completions.
    Messages,
}

impl GatewayStep {
    fn route(self) -> &'static str {
        match self {
            GatewayStep::Models => "GET /v1/models",
            GatewayStep::Chat => "POST /v1/chat/completions",
            GatewayStep::Messages => "POST /v1/messages",
        }
    }
}

/// Why the host's answer sends us to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamSuspicion {
    /// `upstream_error` (502/503): the host's failover ran out of accounts.
    UpstreamError,
    /// A handler `rate_limit_error` 429: a rate limit, or a quota that an
    /// upstream reports as a 429.
    RateLimit,
    /// `api_error` "No available accounts": every account of the group is
    /// unschedulable (errored, cooling down or missing).
    NoAvailableAccounts,
    /// An error the host produced for our minimal request (a 400, an error
    /// object inside a 200, an unknown 5xx).
    Unexplained,
}

/// The reading of one gateway step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "reading", rename_all = "snake_case")]
pub enum GatewayReading {
    Ok,
    /// Final, no upstream probe needed.
    Final(Diagnosis),
    /// Probe the upstream directly before deciding.
    AskUpstream {
        suspicion: UpstreamSuspicion,
        /// What the host said, for the summary.
        host_said: String,
    },
}

/// What a direct upstream call (or an account probe) says about the upstream key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "reading", rename_all = "snake_case")]
pub enum UpstreamReading {
    // Declared from least to most telling: `worst` keeps the later one.
    /// No answer at all (crm may not reach the provider even if the host can).
    Unreachable {
        detail: String,
    },
    /// The provider answered and the call worked.
    Answers,
    /// An error that says nothing about the key.
    Other {
        status: u16,
        said: String,
    },
    RateLimited {
        said: String,
    },
    ServerError {
        status: u16,
        said: String,
    },
    ModelUnknown {
        said: String,
    },
    Quota {
        said: String,
    },
    KeyInvalid {
        said: String,
    },
}

impl UpstreamReading {
    /// The more telling of two readings of the same key.
    pub fn worst(self, other: UpstreamReading) -> UpstreamReading {
        self.max(other)
    }

    fn is_conclusive(&self) -> bool {
        !matches!(
            self,
            UpstreamReading::Unreachable { .. } | UpstreamReading::Other { .. }
        )
    }
}

/// Reads a gateway answer that arrived as a host error (the client reports
/// some statuses as errors) as if it were an outcome.
pub fn outcome_from_host_error(err: &HostError) -> CallOutcome {
    let (status, error_type, transport) = match err {
        HostError::Unauthorized { reason } => (Some(401), Some(reason.clone()), None),
        HostError::Forbidden { reason } => (Some(403), Some(reason.clone()), None),
        HostError::ComplianceGate { .. } => (Some(423), None, None),
        HostError::NotFound { .. } => (Some(404), Some("not_found_error".to_owned()), None),
        HostError::RouteMissing { .. } => (Some(404), None, None),
        HostError::Conflict { reason, .. } => (Some(409), Some(reason.clone()), None),
        HostError::Validation { .. } => (Some(400), Some("invalid_request_error".to_owned()), None),
        HostError::RateLimited { .. } => (Some(429), Some("rate_limit_error".to_owned()), None),
        HostError::Unavailable { status, .. } => (Some(*status), None, None),
        HostError::Timeout { .. } | HostError::Unreachable { .. } => {
            (None, None, Some(err.to_string()))
        }
        HostError::Decode { .. } => (Some(200), None, None),
    };
    CallOutcome {
        status,
        ok: false,
        error_type,
        error_code: None,
        message: Some(err.to_string()),
        body_excerpt: String::new(),
        latency_ms: 0,
        transport_error: transport,
    }
}

fn said(o: &CallOutcome) -> String {
    let mut parts = Vec::new();
    if let Some(s) = o.status {
        parts.push(format!("HTTP {s}"));
    }
    if let Some(t) = &o.error_type {
        parts.push(t.clone());
    }
    if let Some(c) = &o.error_code {
        parts.push(format!("code {c}"));
    }
    let mut text = parts.join(" ");
    if let Some(m) = o.message.as_deref().filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {m}"));
    } else if !o.body_excerpt.is_empty() {
        text.push_str(&format!(": {}", o.body_excerpt));
    }
    text
}

/// Everything an error body says, for signal and keyword matching.
fn text_of(o: &CallOutcome) -> String {
    [
        o.error_type.as_deref(),
        o.error_code.as_deref(),
        o.message.as_deref(),
        Some(o.body_excerpt.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

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

fn mentions_model(lower: &str) -> bool {
    lower.contains("model")
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

/// Words a generic upstream uses for "out of money" (provider-specific codes
/// come from the pack's [`ErrorSignals`] and are checked first).
const QUOTA_WORDS: &[&str] = &[
    "insufficient balance",
    "insufficient_balance",
    "insufficient_quota",
    "exceeded_current_quota",
    "quota exhausted",
    "quota_exhausted",
    "arrear",
    "overdue",
    "欠费",
    "余额不足",
];

fn has_quota_words(text: &str) -> bool {
    let lower = text.to_lowercase();
    QUOTA_WORDS.iter().any(|w| lower.contains(w))
}

/// Reads one direct upstream call with the provider's signals.
pub fn read_upstream(outcome: &CallOutcome, signals: &ErrorSignals) -> UpstreamReading {
    let Some(status) = outcome.status.filter(|_| outcome.transport_error.is_none()) else {
        return UpstreamReading::Unreachable {
            detail: outcome
                .transport_error
                .clone()
                .unwrap_or_else(|| "no response".to_owned()),
        };
    };
    if outcome.ok {
        return UpstreamReading::Answers;
    }
    let text = text_of(outcome);
    let said = said(outcome);
    if signals.invalid_key.iter().any(|s| s.matches(status, &text)) {
        return UpstreamReading::KeyInvalid { said };
    }
    if signals.quota.iter().any(|s| s.matches(status, &text)) {
        return UpstreamReading::Quota { said };
    }
    match status {
        401 => UpstreamReading::KeyInvalid { said },
        402 => UpstreamReading::Quota { said },
        403 if has_quota_words(&text) => UpstreamReading::Quota { said },
        403 => UpstreamReading::KeyInvalid { said },
        404 if mentions_model(&text.to_lowercase()) => UpstreamReading::ModelUnknown { said },
        429 if has_quota_words(&text) => UpstreamReading::Quota { said },
        429 => UpstreamReading::RateLimited { said },
        s if s >= 500 && has_quota_words(&text) => UpstreamReading::Quota { said },
        s if s >= 500 => UpstreamReading::ServerError { status: s, said },
        s => UpstreamReading::Other { status: s, said },
    }
}

/// Reads an account probe (`POST /admin/accounts/:id/test`) like an upstream
/// call: the host reports the upstream status as `error_code` and the
/// upstream body inside its error text.
pub fn read_account_probe(probe: &AccountProbe, signals: &ErrorSignals) -> UpstreamReading {
    if probe.success {
        return UpstreamReading::Answers;
    }
    let text = probe.error.clone().unwrap_or_default();
    let status = probe
        .error_code
        .as_deref()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .or_else(|| status_in_text(&text));
    match status {
        Some(status) => read_upstream(
            &CallOutcome {
                status: Some(status),
                ok: false,
                error_type: None,
                error_code: None,
                message: Some(text),
                body_excerpt: String::new(),
                latency_ms: 0,
                transport_error: None,
            },
            signals,
        ),
        // The host failed without an upstream status ("No API key
        // available", "Request failed: ..."): only body-only signals apply.
        None if signals.invalid_key.iter().any(|s| s.matches(0, &text)) => {
            UpstreamReading::KeyInvalid { said: text }
        }
        None if signals.quota.iter().any(|s| s.matches(0, &text)) || has_quota_words(&text) => {
            UpstreamReading::Quota { said: text }
        }
        None => UpstreamReading::Other {
            status: 0,
            said: text,
        },
    }
}

/// `"API returned 401: ..."` -> 401 (older hosts put the status only in the text).
fn status_in_text(text: &str) -> Option<u16> {
    let rest = text.split("returned ").nth(1)?;
    rest.get(..3)?.parse().ok()
}

/// One upstream key's direct probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpstreamEvidence {
    /// `/models`; `None` when not called.
    pub models: Option<CallOutcome>,
    /// `/chat/completions`; `None` when not called.
    pub chat: Option<CallOutcome>,
}

/// What one key's direct probe says: a working chat call wins, otherwise
/// the more telling of the two readings.
pub fn read_upstream_key(e: &UpstreamEvidence, signals: &ErrorSignals) -> UpstreamReading {
    let chat = e.chat.as_ref().map(|o| read_upstream(o, signals));
    let models = e.models.as_ref().map(|o| read_upstream(o, signals));
    match (chat, models) {
        (Some(UpstreamReading::Answers), _) => UpstreamReading::Answers,
        (Some(c), Some(m)) => c.worst(m),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => UpstreamReading::Unreachable {
            detail: "not probed".to_owned(),
        },
    }
}

/// Combines the gateway reading that asked for the upstream with what the
/// upstream keys and the account probes said.
///
/// `upstream` holds one reading per upstream key probed directly (empty when
/// crm holds no upstream key, e.g. a scheduled re-check); `accounts` holds
/// the account probes' readings, used when the direct probes say nothing.
pub fn diagnose(
    suspicion: UpstreamSuspicion,
    host_said: &str,
    upstream: &[UpstreamReading],
    accounts: &[UpstreamReading],
) -> Diagnosis {
    let host = format!("the host said {host_said}");
    if upstream.contains(&UpstreamReading::Answers) {
        return match suspicion {
            UpstreamSuspicion::RateLimit => Diagnosis::advisory(
                FailureClass::TransientRateLimited,
                format!(
                    "{host}, while the upstream answers directly: a host-side concurrency or rate limit; {RECHECK} later"
                ),
            ),
            UpstreamSuspicion::NoAvailableAccounts => Diagnosis::fail(
                FailureClass::HostCompatibilityGap,
                format!(
                    "{host}, but the upstream answers directly with the same key: the host does not schedule the account (error status, cooling down, or not in the group); check the account with `crm provider reconcile <provider> --host <host>` and clear its error"
                ),
            ),
            _ => Diagnosis::fail(
                FailureClass::HostCompatibilityGap,
                format!(
                    "{host}, but the upstream answers directly with the same key: the host fails to relay this provider (platform, base URL or protocol mode); see `crm provider reconcile <provider> --host <host>`"
                ),
            ),
        };
    }
    let conclusive = upstream
        .iter()
        .filter(|r| r.is_conclusive())
        .cloned()
        .max()
        .or_else(|| accounts.iter().filter(|r| r.is_conclusive()).cloned().max());
    let source = if upstream.iter().any(UpstreamReading::is_conclusive) {
        "probed directly"
    } else {
        "through the host's account test"
    };
    match conclusive.and_then(|r| from_upstream(&r, source, &host)) {
        Some(d) => d,
        // Only inconclusive readings: fall back to what the host said.
        None => fallback(suspicion, &host),
    }
}

/// The hint every "look again later" ends with.
const RECHECK: &str = "re-check with `crm provider access <provider> --host <host>`";

/// What a conclusive upstream reading says, after `prefix` (what the host
/// showed). `None` for readings that say nothing (answers, unreachable, other).
fn from_upstream(r: &UpstreamReading, source: &str, prefix: &str) -> Option<Diagnosis> {
    Some(match r {
        UpstreamReading::KeyInvalid { said } => Diagnosis::fail(
            FailureClass::UpstreamKeyInvalid,
            format!(
                "{prefix}; the upstream, {source}, rejects the key ({said}): replace it with `crm provider rotate-key <provider> --host <host> --mode MODE --old FINGERPRINT --new-key-env VAR`"
            ),
        ),
        UpstreamReading::Quota { said } => Diagnosis::fail(
            FailureClass::UpstreamKeyQuotaIssue,
            format!(
                "{prefix}; the upstream, {source}, says the key is out of balance or quota ({said}): top up the provider account, then {RECHECK}"
            ),
        ),
        UpstreamReading::ModelUnknown { said } => Diagnosis::fail(
            FailureClass::ModelNotExposed,
            format!(
                "{prefix}; the upstream, {source}, does not know the model ({said}): fix the upstream model name in the pack and install it with `crm pack install`"
            ),
        ),
        UpstreamReading::ServerError { said, .. } => Diagnosis::fail(
            FailureClass::UpstreamUnavailable,
            format!(
                "{prefix}; the upstream, {source}, fails on its side ({said}): a provider outage; {RECHECK} later"
            ),
        ),
        UpstreamReading::RateLimited { said } => Diagnosis::advisory(
            FailureClass::TransientRateLimited,
            format!("{prefix}; the upstream, {source}, is rate limiting ({said}); {RECHECK} later"),
        ),
        UpstreamReading::Answers
        | UpstreamReading::Unreachable { .. }
        | UpstreamReading::Other { .. } => return None,
    })
}

fn fallback(suspicion: UpstreamSuspicion, host: &str) -> Diagnosis {
    let lower = host.to_ascii_lowercase();
    match suspicion {
        UpstreamSuspicion::RateLimit => Diagnosis::advisory(
            FailureClass::TransientRateLimited,
            format!("{host} (upstream not probed): rate limited; {RECHECK} later"),
        ),
        _ if lower.contains("authentication failed") || lower.contains("access forbidden") => {
            Diagnosis::fail(
                FailureClass::UpstreamKeyInvalid,
                format!(
                    "{host} (the upstream could not be probed directly): the upstream rejects the key; replace it with `crm provider rotate-key <provider> --host <host> --mode MODE --old FINGERPRINT --new-key-env VAR`"
                ),
            )
        }
        UpstreamSuspicion::UpstreamError
            if lower.contains("temporarily unavailable")
                || lower.contains("overloaded")
                || lower.contains("http 503") =>
        {
            Diagnosis::fail(
                FailureClass::UpstreamUnavailable,
                format!(
                    "{host} (the upstream could not be probed directly): the provider is failing on its side; {RECHECK} later"
                ),
            )
        }
        _ => Diagnosis::fail(
            FailureClass::HostCompatibilityGap,
            format!(
                "{host}, and the upstream could not be probed directly to tell a key problem from a host problem; re-run the check with the upstream key: `crm provider access <provider> --host <host> --upstream-keys-file FILE`"
            ),
        ),
    }
}

// ------------------------------------------------------------ static listings

/// sub2api's built-in `/v1/models` lists (d3e73f1): the gateway's `Models`
/// handler answers these and nothing else, by the key's group platform
/// (`handler/gateway_handler.go` `Models`; the lists are
/// `pkg/openai/constants.go` and `pkg/claude/constants.go`).
pub const STATIC_OPENAI_MODELS: &[&str] = &[
    "gpt-5.2",
    "gpt-5.2-codex",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex",
    "gpt-5.1",
    "gpt-5.1-codex-mini",
    "gpt-5",
];
/// See [`STATIC_OPENAI_MODELS`].
pub const STATIC_CLAUDE_MODELS: &[&str] = &[
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
];

/// What the probe found about the host, as far as the models listing goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingFacts {
    pub version: Option<String>,
    pub channels: bool,
    pub chat_completions: bool,
}

/// Whether the host's `/v1/models` is a static list (so not listing the
/// smoke model says nothing), and the evidence for it. Two kinds of
/// evidence count: the listing holds only one of sub2api's built-in lists,
/// or the probe found the older era (no channels and no chat completions),
/// whose `Models` handler never lists an account's models.
pub fn static_listing(facts: &ListingFacts, model_ids: &[String]) -> Option<String> {
    let only = |defaults: &[&str]| {
        !model_ids.is_empty() && model_ids.iter().all(|m| defaults.contains(&m.as_str()))
    };
    if only(STATIC_OPENAI_MODELS) {
        return Some("the listing holds only sub2api's built-in OpenAI models".into());
    }
    if only(STATIC_CLAUDE_MODELS) {
        return Some("the listing holds only sub2api's built-in Claude models".into());
    }
    if !facts.channels && !facts.chat_completions {
        return Some(format!(
            "the probe found an older-era host (version {}, no channels, no /v1/chat/completions), whose /v1/models is a fixed list per group platform",
            facts.version.as_deref().unwrap_or("unknown")
        ));
    }
    None
}

// ------------------------------------------------------------ the decision

/// Everything one access check gathered, for [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckEvidence {
    pub smoke_model: String,
    /// The `/v1/models` step's reading.
    pub models: GatewayReading,
    /// Why the listing is taken as static, when it is ([`static_listing`]).
    pub static_listing: Option<String>,
    /// The completion step, when it ran.
    pub completion: Option<(GatewayStep, GatewayReading)>,
    /// The upstream probed directly, one reading per upstream key.
    pub upstream: Vec<UpstreamReading>,
    /// The host's account test, one reading per account (with its id).
    pub accounts: Vec<(String, UpstreamReading)>,
}

impl CheckEvidence {
    /// Whether the models step lets the check go on to the completion: the
    /// smoke model is listed, or the listing is static (informational).
    pub fn listing_passes(&self) -> bool {
        match &self.models {
            GatewayReading::Ok => true,
            GatewayReading::Final(d) => self.listing_is_informational(d),
            GatewayReading::AskUpstream { .. } => false,
        }
    }

    fn listing_is_informational(&self, d: &Diagnosis) -> bool {
        d.failure_class == Some(FailureClass::ModelNotExposed) && self.static_listing.is_some()
    }
}

/// Whether a gateway reading could be a consequence of the upstream's state
/// (so probing the upstream directly can settle it): the host blames the
/// upstream, or hides the model (a host hides the models of an account it
/// marked as error).
pub fn upstream_may_explain(r: &GatewayReading) -> bool {
    match r {
        GatewayReading::Ok => false,
        GatewayReading::AskUpstream { .. } => true,
        GatewayReading::Final(d) => d.failure_class == Some(FailureClass::ModelNotExposed),
    }
}

/// The check's verdict from all its evidence; the strongest evidence wins.
///
/// 1. The host's own refusals (unreachable, no route, user key refused,
///    billing gate, host-side limits) are final: no upstream state causes them.
/// 2. A working completion (after a listing that lists the smoke model or
///    is static) passes; a failing account test makes it an advisory.
/// 3. Otherwise what the upstream says outranks what the gateway shows: a
///    direct probe first, then the host's account test. Only when neither
///    says anything conclusive does the gateway's reading stand.
pub fn decide(e: &CheckEvidence) -> Diagnosis {
    let accounts: Vec<UpstreamReading> = e.accounts.iter().map(|(_, r)| r.clone()).collect();
    let informational =
        matches!(&e.models, GatewayReading::Final(d) if e.listing_is_informational(d));
    let listing = if informational {
        format!(
            "{} is not in /v1/models, which is informational here: {}",
            e.smoke_model,
            e.static_listing.as_deref().unwrap_or_default()
        )
    } else {
        format!("/v1/models lists {}", e.smoke_model)
    };
    let gateway = if e.listing_passes() {
        match &e.completion {
            Some((_, r)) => r.clone(),
            None => GatewayReading::Ok,
        }
    } else {
        e.models.clone()
    };
    let diagnosis = match gateway {
        GatewayReading::Ok => match &e.completion {
            Some((step, _)) => Diagnosis::pass(format!(
                "{listing}; a minimal completion through {} succeeded",
                step.route()
            )),
            None if !informational => Diagnosis::pass(format!(
                "{listing}; completion smoke skipped (quota-limited provider)"
            )),
            // A static listing and no completion: only the account test is left.
            None => {
                let prefix =
                    format!("{listing}; completion smoke skipped (quota-limited provider)");
                match upstream_over(&prefix, &[], &accounts) {
                    Some(d) => d,
                    None if !accounts.is_empty()
                        && accounts.iter().all(|r| *r == UpstreamReading::Answers) =>
                    {
                        Diagnosis::pass(format!(
                            "{prefix}; the host's account test answered with {}",
                            e.smoke_model
                        ))
                    }
                    None => Diagnosis::advisory(
                        FailureClass::HostCompatibilityGap,
                        format!(
                            "{prefix}; nothing shows the provider answers: run `crm provider access <provider> --host <host>` without --skip-completion"
                        ),
                    ),
                }
            }
        },
        GatewayReading::Final(d) if upstream_may_explain(&GatewayReading::Final(d.clone())) => {
            upstream_over(&d.summary, &e.upstream, &accounts).unwrap_or(d)
        }
        GatewayReading::Final(d) => d,
        GatewayReading::AskUpstream {
            suspicion,
            host_said,
        } => diagnose(suspicion, &host_said, &e.upstream, &accounts),
    };
    if diagnosis.verdict == Verdict::Pass
        && let Some((id, reading)) = e
            .accounts
            .iter()
            .find(|(_, r)| *r != UpstreamReading::Answers)
    {
        return Diagnosis::advisory(
            advisory_class(reading),
            format!(
                "{}; but account {id} failed the host's account test ({}): the host may stop scheduling it; see it with `crm provider reconcile <provider> --host <host>`",
                diagnosis.summary,
                reading_text(reading)
            ),
        );
    }
    diagnosis
}

/// The upstream's verdict over a gateway symptom, when the upstream said
/// something conclusive (direct probes first, then the account test) and
/// did not answer directly.
fn upstream_over(
    prefix: &str,
    upstream: &[UpstreamReading],
    accounts: &[UpstreamReading],
) -> Option<Diagnosis> {
    if upstream.contains(&UpstreamReading::Answers) {
        return None;
    }
    let direct = upstream.iter().filter(|r| r.is_conclusive()).cloned().max();
    let (reading, source) = match direct {
        Some(r) => (r, "probed directly"),
        None => (
            accounts
                .iter()
                .filter(|r| r.is_conclusive())
                .cloned()
                .max()?,
            "through the host's account test",
        ),
    };
    from_upstream(&reading, source, prefix)
}

/// The class of an advisory raised by a failing account test.
pub fn advisory_class(r: &UpstreamReading) -> FailureClass {
    match r {
        UpstreamReading::KeyInvalid { .. } => FailureClass::UpstreamKeyInvalid,
        UpstreamReading::Quota { .. } => FailureClass::UpstreamKeyQuotaIssue,
        UpstreamReading::ModelUnknown { .. } => FailureClass::ModelNotExposed,
        UpstreamReading::RateLimited { .. } => FailureClass::TransientRateLimited,
        UpstreamReading::ServerError { .. } => FailureClass::UpstreamUnavailable,
        UpstreamReading::Unreachable { .. } => FailureClass::HostUnreachable,
        UpstreamReading::Answers | UpstreamReading::Other { .. } => {
            FailureClass::HostCompatibilityGap
        }
    }
}

/// What a reading said, for summaries.
pub fn reading_text(r: &UpstreamReading) -> String {
    match r {
        UpstreamReading::Unreachable { detail } => detail.clone(),
        UpstreamReading::Answers => "answers".into(),
        UpstreamReading::Other { said, .. }
        | UpstreamReading::RateLimited { said }
        | UpstreamReading::ServerError { said, .. }
        | UpstreamReading::ModelUnknown { said }
        | UpstreamReading::Quota { said }
        | UpstreamReading::KeyInvalid { said } => said.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureClass::*;
    use crm_domain::spec::ErrorSignal;

    fn out(
        status: Option<u16>,
        ok: bool,
        ty: Option<&str>,
        code: Option<&str>,
        msg: &str,
    ) -> CallOutcome {
        CallOutcome {
            status,
            ok,
            error_type: ty.map(str::to_owned),
            error_code: code.map(str::to_owned),
            message: (!msg.is_empty()).then(|| msg.to_owned()),
            body_excerpt: String::new(),
            latency_ms: 3,
            transport_error: if status.is_none() {
                Some("connection refused".to_owned())
            } else {
                None
            },
        }
    }

    /// Expected shape of a gateway reading.
    #[derive(Debug, PartialEq)]
    enum Want {
        Ok,
        Fail(FailureClass),
        Advisory(FailureClass),
        Ask(UpstreamSuspicion),
    }

    fn shape(r: &GatewayReading) -> Want {
        match r {
            GatewayReading::Ok => Want::Ok,
            GatewayReading::Final(d) => match d.verdict {
                Verdict::Fail => Want::Fail(d.failure_class.unwrap()),
                Verdict::PassWithAdvisories => Want::Advisory(d.failure_class.unwrap()),
                Verdict::Pass => Want::Ok,
            },
            GatewayReading::AskUpstream { suspicion, .. } => Want::Ask(*suspicion),
        }
    }

    #[test]
    fn gateway_readings() {
        use GatewayStep::*;
        use UpstreamSuspicion as S;
        let smoke = "deepseek-v4-flash";
        let listed = vec!["deepseek-v4-pro".to_owned(), smoke.to_owned()];
        let other = vec!["deepseek-v4-pro".to_owned()];
        #[rustfmt::skip]
        let rows: Vec<(&str, GatewayStep, CallOutcome, &Vec<String>, Want)> = vec![
            ("models ok, smoke listed", Models, out(Some(200), true, None, None, ""), &listed, Want::Ok),
            ("models ok, smoke missing", Models, out(Some(200), true, None, None, ""), &other, Want::Fail(ModelNotExposed)),
            ("chat ok ignores listing", Chat, out(Some(200), true, None, None, ""), &other, Want::Ok),
            ("no answer", Models, out(None, false, None, None, ""), &listed, Want::Fail(HostUnreachable)),
            ("API_KEY_REQUIRED", Models, out(Some(401), false, Some("API_KEY_REQUIRED"), None, "API key is required"), &listed, Want::Fail(AuthIssue)),
            ("INVALID_API_KEY", Chat, out(Some(401), false, Some("INVALID_API_KEY"), None, "Invalid API key"), &listed, Want::Fail(AuthIssue)),
            ("API_KEY_DISABLED", Chat, out(Some(401), false, Some("API_KEY_DISABLED"), None, ""), &listed, Want::Fail(AuthIssue)),
            ("USER_INACTIVE", Chat, out(Some(401), false, Some("USER_INACTIVE"), None, ""), &listed, Want::Fail(AuthIssue)),
            ("API_KEY_EXPIRED", Chat, out(Some(403), false, Some("API_KEY_EXPIRED"), None, ""), &listed, Want::Fail(AuthIssue)),
            ("GROUP_DELETED", Chat, out(Some(403), false, Some("GROUP_DELETED"), None, "group deleted"), &listed, Want::Fail(AuthIssue)),
            ("GROUP_DISABLED", Models, out(Some(403), false, Some("GROUP_DISABLED"), None, ""), &listed, Want::Fail(AuthIssue)),
            ("ACCESS_DENIED ip", Chat, out(Some(403), false, Some("ACCESS_DENIED"), None, ""), &listed, Want::Fail(AuthIssue)),
            ("ungrouped key", Chat, out(Some(403), false, Some("permission_error"), None, "API key is not assigned to any group"), &listed, Want::Fail(AuthIssue)),
            ("INSUFFICIENT_BALANCE", Chat, out(Some(403), false, Some("INSUFFICIENT_BALANCE"), None, "Insufficient account balance"), &listed, Want::Fail(BillingGate)),
            ("SUBSCRIPTION_NOT_FOUND", Models, out(Some(403), false, Some("SUBSCRIPTION_NOT_FOUND"), None, ""), &listed, Want::Fail(BillingGate)),
            ("SUBSCRIPTION_INVALID", Chat, out(Some(403), false, Some("SUBSCRIPTION_INVALID"), None, "expired"), &listed, Want::Fail(BillingGate)),
            ("billing_error handler", Chat, out(Some(403), false, Some("billing_error"), None, ""), &listed, Want::Fail(BillingGate)),
            ("USAGE_LIMIT_EXCEEDED", Chat, out(Some(429), false, Some("USAGE_LIMIT_EXCEEDED"), None, "daily limit"), &listed, Want::Advisory(TransientRateLimited)),
            ("API_KEY_QUOTA_EXHAUSTED", Chat, out(Some(429), false, Some("API_KEY_QUOTA_EXHAUSTED"), None, ""), &listed, Want::Advisory(TransientRateLimited)),
            ("upstream_error 502", Chat, out(Some(502), false, Some("upstream_error"), None, "Upstream authentication failed"), &listed, Want::Ask(S::UpstreamError)),
            ("upstream_error 503", Chat, out(Some(503), false, Some("upstream_error"), None, "Upstream service temporarily unavailable"), &listed, Want::Ask(S::UpstreamError)),
            ("rate_limit_error", Chat, out(Some(429), false, Some("rate_limit_error"), None, "Too many requests"), &listed, Want::Ask(S::RateLimit)),
            ("no available accounts", Chat, out(Some(503), false, Some("api_error"), None, "No available accounts: group 7"), &listed, Want::Ask(S::NoAvailableAccounts)),
            ("plain 404 route", Chat, out(Some(404), false, None, None, ""), &listed, Want::Fail(RouteMissing)),
            ("typed 404 route", Chat, out(Some(404), false, Some("not_found_error"), None, "Not found"), &listed, Want::Fail(RouteMissing)),
            ("client route_missing", Chat, out(Some(404), false, Some("route_missing"), None, "404 page not found"), &listed, Want::Fail(RouteMissing)),
            ("html instead of api", Models, out(Some(200), false, Some("unexpected_html"), None, "an HTML page answered instead of the API"), &listed, Want::Fail(RouteMissing)),
            ("405", Models, out(Some(405), false, None, None, ""), &listed, Want::Fail(RouteMissing)),
            ("model not allowed 400", Chat, out(Some(400), false, Some("invalid_request_error"), None, "model deepseek-v4-flash is not allowed in this channel"), &listed, Want::Fail(ModelNotExposed)),
            ("model 404", Chat, out(Some(404), false, Some("not_found_error"), None, "model not found"), &listed, Want::Fail(ModelNotExposed)),
            ("bare 401", Chat, out(Some(401), false, None, None, ""), &listed, Want::Fail(AuthIssue)),
            ("bare 402", Chat, out(Some(402), false, None, None, ""), &listed, Want::Fail(BillingGate)),
            ("bare 403", Chat, out(Some(403), false, None, None, ""), &listed, Want::Fail(AuthIssue)),
            ("bare 429", Chat, out(Some(429), false, None, None, ""), &listed, Want::Ask(S::RateLimit)),
            ("400 parse failure", Chat, out(Some(400), false, Some("invalid_request_error"), None, "Failed to parse request body"), &listed, Want::Ask(S::Unexplained)),
            ("error inside a 200", Chat, out(Some(200), false, Some("upstream_error"), None, "stream broke"), &listed, Want::Ask(S::UpstreamError)),
            ("untyped error inside a 200", Chat, out(Some(200), false, None, None, ""), &listed, Want::Ask(S::Unexplained)),
            ("500 internal", Models, out(Some(500), false, None, None, "internal error"), &listed, Want::Ask(S::Unexplained)),
        ];
        for (name, step, outcome, ids, want) in rows {
            let got = read_gateway(step, &outcome, ids, smoke);
            assert_eq!(shape(&got), want, "{name}: {got:?}");
            if let GatewayReading::Final(d) = &got {
                assert!(!d.summary.is_empty(), "{name}");
            }
        }
    }

    fn sig(status: Option<u16>, body: Option<&str>) -> ErrorSignal {
        ErrorSignal {
            status,
            body_contains: body.map(str::to_owned),
        }
    }

    fn provider_signals(p: &str) -> ErrorSignals {
        match p {
            "deepseek" => ErrorSignals {
                invalid_key: vec![sig(Some(401), None)],
                quota: vec![sig(Some(402), None)],
            },
            "kimi" => ErrorSignals {
                invalid_key: vec![sig(Some(401), None)],
                quota: vec![sig(Some(429), Some("exceeded_current_quota_error"))],
            },
            "zhipu" => ErrorSignals {
                invalid_key: vec![sig(Some(401), None)],
                quota: vec![sig(Some(429), Some("1113"))],
            },
            "minimax" => ErrorSignals {
                invalid_key: vec![sig(None, Some("1004"))],
                quota: vec![sig(None, Some("1008"))],
            },
            "qwen" => ErrorSignals {
                invalid_key: vec![sig(Some(401), None)],
                quota: vec![sig(None, Some("Arrearage"))],
            },
            _ => ErrorSignals::default(),
        }
    }

    #[derive(Debug, PartialEq)]
    enum U {
        Unreachable,
        Answers,
        Other,
        Rate,
        Server,
        Model,
        Quota,
        Invalid,
    }

    fn u(r: &UpstreamReading) -> U {
        match r {
            UpstreamReading::Unreachable { .. } => U::Unreachable,
            UpstreamReading::Answers => U::Answers,
            UpstreamReading::Other { .. } => U::Other,
            UpstreamReading::RateLimited { .. } => U::Rate,
            UpstreamReading::ServerError { .. } => U::Server,
            UpstreamReading::ModelUnknown { .. } => U::Model,
            UpstreamReading::Quota { .. } => U::Quota,
            UpstreamReading::KeyInvalid { .. } => U::Invalid,
        }
    }

    #[test]
    fn upstream_readings_use_provider_signals() {
        #[rustfmt::skip]
        let rows: Vec<(&str, &str, CallOutcome, U)> = vec![
            ("ok", "deepseek", out(Some(200), true, None, None, ""), U::Answers),
            ("no answer", "deepseek", out(None, false, None, None, ""), U::Unreachable),
            ("deepseek 401", "deepseek", out(Some(401), false, Some("authentication_error"), None, "Authentication Fails"), U::Invalid),
            ("deepseek 402", "deepseek", out(Some(402), false, Some("unknown_error"), Some("invalid_request_error"), "Insufficient Balance"), U::Quota),
            ("deepseek 429", "deepseek", out(Some(429), false, Some("rate_limit_error"), None, "Rate limit reached"), U::Rate),
            ("deepseek 503", "deepseek", out(Some(503), false, None, None, "Server overloaded"), U::Server),
            ("deepseek 500", "deepseek", out(Some(500), false, None, None, "internal"), U::Server),
            ("kimi quota 429", "kimi", out(Some(429), false, Some("exceeded_current_quota_error"), None, "You exceeded your current quota"), U::Quota),
            ("kimi rate 429", "kimi", out(Some(429), false, Some("rate_limit_reached_error"), None, "max RPM reached"), U::Rate),
            ("kimi bad key", "kimi", out(Some(401), false, Some("invalid_authentication_error"), None, "Invalid Authentication"), U::Invalid),
            ("zhipu 1113", "zhipu", out(Some(429), false, None, Some("1113"), "余额不足或无可用资源包"), U::Quota),
            ("zhipu 1302 rate", "zhipu", out(Some(429), false, None, Some("1302"), "并发数过高"), U::Rate),
            ("zhipu bad key", "zhipu", out(Some(401), false, None, Some("1000"), "身份验证失败"), U::Invalid),
            ("minimax 1008 in 500", "minimax", out(Some(500), false, Some("api_error"), None, "insufficient balance (1008)"), U::Quota),
            ("minimax 1004 in 200-ish error", "minimax", out(Some(200), false, None, None, "login fail (1004)"), U::Invalid),
            ("qwen arrearage 400", "qwen", out(Some(400), false, Some("Arrearage"), None, "Access denied, please make sure your account is in good standing."), U::Quota),
            ("qwen rate quota", "qwen", out(Some(429), false, Some("Throttling.RateQuota"), None, "Requests rate limit exceeded"), U::Rate),
            ("doubao overdue 403 generic", "none", out(Some(403), false, Some("AccountOverdueError"), None, "account is overdue"), U::Quota),
            ("generic 403", "none", out(Some(403), false, None, None, "forbidden"), U::Invalid),
            ("generic 402", "none", out(Some(402), false, None, None, ""), U::Quota),
            ("model 404", "none", out(Some(404), false, Some("ModelNotFound"), None, "The model does not exist"), U::Model),
            ("plain 404", "none", out(Some(404), false, None, None, "not found"), U::Other),
            ("400 other", "none", out(Some(400), false, Some("invalid_request_error"), None, "bad param"), U::Other),
        ];
        for (name, provider, outcome, want) in rows {
            let got = read_upstream(&outcome, &provider_signals(provider));
            assert_eq!(u(&got), want, "{name}: {got:?}");
        }
    }

    #[test]
    fn account_probe_readings() {
        let probe = |success: bool, error: Option<&str>, code: Option<&str>| AccountProbe {
            success,
            model: Some("deepseek-v4-flash".into()),
            text: String::new(),
            error: error.map(str::to_owned),
            error_code: code.map(str::to_owned),
        };
        let ds = provider_signals("deepseek");
        #[rustfmt::skip]
        let rows = vec![
            ("success", probe(true, None, None), U::Answers),
            ("401 code", probe(false, Some("API returned 401: {\"error\":{\"message\":\"Authentication Fails\"}}"), Some("401")), U::Invalid),
            ("401 only in text (older host)", probe(false, Some("API returned 401: bad"), None), U::Invalid),
            ("402 code", probe(false, Some("API returned 402: Insufficient Balance"), Some("402")), U::Quota),
            ("429", probe(false, Some("API returned 429: slow down"), Some("429")), U::Rate),
            ("no key", probe(false, Some("No API key available"), None), U::Other),
            ("request failed", probe(false, Some("Request failed: timeout"), None), U::Other),
        ];
        for (name, p, want) in rows {
            assert_eq!(u(&read_account_probe(&p, &ds)), want, "{name}");
        }
        let mm = provider_signals("minimax");
        assert_eq!(
            u(&read_account_probe(
                &probe(false, Some("insufficient balance (1008)"), None),
                &mm
            )),
            U::Quota
        );
    }

    #[test]
    fn a_working_chat_call_wins_over_a_failing_listing() {
        let ds = provider_signals("deepseek");
        let e = |m: Option<CallOutcome>, c: Option<CallOutcome>| UpstreamEvidence {
            models: m,
            chat: c,
        };
        let ok = out(Some(200), true, None, None, "");
        let bad = out(Some(401), false, None, None, "");
        let quota = out(Some(402), false, None, None, "");
        let down = out(None, false, None, None, "");
        assert_eq!(
            u(&read_upstream_key(
                &e(Some(bad.clone()), Some(ok.clone())),
                &ds
            )),
            U::Answers
        );
        assert_eq!(
            u(&read_upstream_key(
                &e(Some(ok.clone()), Some(quota.clone())),
                &ds
            )),
            U::Quota
        );
        assert_eq!(
            u(&read_upstream_key(
                &e(Some(bad.clone()), Some(quota.clone())),
                &ds
            )),
            U::Invalid
        );
        assert_eq!(
            u(&read_upstream_key(
                &e(Some(bad.clone()), Some(down.clone())),
                &ds
            )),
            U::Invalid
        );
        assert_eq!(
            u(&read_upstream_key(&e(Some(down.clone()), None), &ds)),
            U::Unreachable
        );
        assert_eq!(u(&read_upstream_key(&e(None, None), &ds)), U::Unreachable);
    }

    #[test]
    fn diagnoses() {
        use UpstreamSuspicion as S;
        let answers = UpstreamReading::Answers;
        let invalid = UpstreamReading::KeyInvalid {
            said: "HTTP 401".into(),
        };
        let quota = UpstreamReading::Quota {
            said: "HTTP 402".into(),
        };
        let rate = UpstreamReading::RateLimited {
            said: "HTTP 429".into(),
        };
        let server = UpstreamReading::ServerError {
            status: 500,
            said: "HTTP 500".into(),
        };
        let model = UpstreamReading::ModelUnknown {
            said: "HTTP 404 model".into(),
        };
        let down = UpstreamReading::Unreachable {
            detail: "refused".into(),
        };
        let other = UpstreamReading::Other {
            status: 400,
            said: "HTTP 400".into(),
        };
        type Row<'a> = (
            &'a str,
            S,
            &'a str,
            Vec<UpstreamReading>,
            Vec<UpstreamReading>,
            Verdict,
            FailureClass,
        );
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            ("upstream answers: host gap", S::UpstreamError, "HTTP 502 upstream_error", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
            ("unexplained, upstream answers", S::Unexplained, "HTTP 200", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
            ("no accounts, upstream answers", S::NoAvailableAccounts, "HTTP 503 api_error", vec![answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
            ("host 429, upstream answers", S::RateLimit, "HTTP 429 rate_limit_error", vec![answers.clone()], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
            ("invalid key", S::UpstreamError, "HTTP 502", vec![invalid.clone()], vec![], Verdict::Fail, UpstreamKeyInvalid),
            ("quota", S::UpstreamError, "HTTP 502", vec![quota.clone()], vec![], Verdict::Fail, UpstreamKeyQuotaIssue),
            ("quota behind a host 429", S::RateLimit, "HTTP 429", vec![quota.clone()], vec![], Verdict::Fail, UpstreamKeyQuotaIssue),
            ("rate limited", S::RateLimit, "HTTP 429", vec![rate.clone()], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
            ("server error", S::UpstreamError, "HTTP 502", vec![server.clone()], vec![], Verdict::Fail, UpstreamUnavailable),
            ("upstream model unknown", S::UpstreamError, "HTTP 502", vec![model.clone()], vec![], Verdict::Fail, ModelNotExposed),
            ("two keys: worst wins", S::UpstreamError, "HTTP 502", vec![quota.clone(), invalid.clone()], vec![], Verdict::Fail, UpstreamKeyInvalid),
            ("one key answers: host gap", S::UpstreamError, "HTTP 502", vec![invalid.clone(), answers.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
            ("unreachable upstream, account probe says invalid", S::UpstreamError, "HTTP 502", vec![down.clone()], vec![invalid.clone()], Verdict::Fail, UpstreamKeyInvalid),
            ("no upstream key, account probe says quota", S::NoAvailableAccounts, "HTTP 503", vec![], vec![quota.clone()], Verdict::Fail, UpstreamKeyQuotaIssue),
            ("direct probe beats account probe", S::UpstreamError, "HTTP 502", vec![quota.clone()], vec![invalid.clone()], Verdict::Fail, UpstreamKeyQuotaIssue),
            ("nothing conclusive: auth text", S::UpstreamError, "HTTP 502 upstream_error: Upstream authentication failed, please contact administrator", vec![down.clone()], vec![other.clone()], Verdict::Fail, UpstreamKeyInvalid),
            ("nothing conclusive: unavailable", S::UpstreamError, "HTTP 502 upstream_error: Upstream service temporarily unavailable", vec![], vec![], Verdict::Fail, UpstreamUnavailable),
            ("nothing conclusive: overloaded", S::UpstreamError, "HTTP 503 overloaded_error: Upstream service overloaded, please retry later", vec![], vec![], Verdict::Fail, UpstreamUnavailable),
            ("nothing conclusive: 429", S::RateLimit, "HTTP 429 rate_limit_error", vec![], vec![], Verdict::PassWithAdvisories, TransientRateLimited),
            ("nothing conclusive at all", S::Unexplained, "HTTP 400", vec![other.clone()], vec![], Verdict::Fail, HostCompatibilityGap),
        ];
        for (name, s, host_said, up, acc, verdict, class) in rows {
            let d = diagnose(s, host_said, &up, &acc);
            assert_eq!(
                (d.verdict, d.failure_class),
                (verdict, Some(class)),
                "{name}: {}",
                d.summary
            );
            assert!(
                d.summary.contains(host_said),
                "{name}: summary keeps what the host said"
            );
        }
    }

    #[test]
    fn host_errors_read_like_outcomes() {
        let smoke = "m";
        let ids = vec!["m".to_owned()];
        let read = |e: HostError| {
            shape(&read_gateway(
                GatewayStep::Chat,
                &outcome_from_host_error(&e),
                &ids,
                smoke,
            ))
        };
        assert_eq!(
            read(HostError::Unreachable {
                detail: "refused".into()
            }),
            Want::Fail(HostUnreachable)
        );
        assert_eq!(
            read(HostError::Timeout {
                operation: "chat".into()
            }),
            Want::Fail(HostUnreachable)
        );
        assert_eq!(
            read(HostError::RouteMissing {
                route: "/v1/chat/completions".into()
            }),
            Want::Fail(RouteMissing)
        );
        assert_eq!(
            read(HostError::Unauthorized {
                reason: "INVALID_API_KEY".into()
            }),
            Want::Fail(AuthIssue)
        );
        assert_eq!(
            read(HostError::Forbidden {
                reason: "INSUFFICIENT_BALANCE".into()
            }),
            Want::Fail(BillingGate)
        );
        assert_eq!(
            read(HostError::RateLimited {
                retry_after_secs: Some(3)
            }),
            Want::Ask(UpstreamSuspicion::RateLimit)
        );
        assert_eq!(
            read(HostError::Unavailable {
                status: 502,
                message: "bad gateway".into()
            }),
            Want::Ask(UpstreamSuspicion::Unexplained)
        );
    }

    /// The precedence of evidence, pinned: one row per situation, the
    /// evidence gathered and the verdict and class `decide` must reach.
    #[test]
    fn decide_precedence_table() {
        use GatewayStep as G;
        let smoke = "deepseek-v4-flash";
        let ok = GatewayReading::Ok;
        let not_listed = read_gateway(
            G::Models,
            &out(Some(200), true, None, None, ""),
            &["claude-sonnet-4-5-20250929".to_owned()],
            smoke,
        );
        let final_of = |step: G, o: CallOutcome| read_gateway(step, &o, &[], smoke);
        let upstream_auth_502 = final_of(
            G::Messages,
            out(
                Some(502),
                false,
                Some("upstream_error"),
                None,
                "Upstream authentication failed, please contact administrator",
            ),
        );
        let upstream_5xx = final_of(
            G::Messages,
            out(
                Some(502),
                false,
                Some("upstream_error"),
                None,
                "Upstream service temporarily unavailable",
            ),
        );
        let overloaded = final_of(
            G::Messages,
            out(
                Some(503),
                false,
                Some("overloaded_error"),
                None,
                "Upstream service overloaded, please retry later",
            ),
        );
        let no_accounts = final_of(
            G::Chat,
            out(
                Some(503),
                false,
                Some("api_error"),
                None,
                "No available accounts: no available accounts",
            ),
        );
        let user_key_refused = final_of(
            G::Chat,
            out(
                Some(401),
                false,
                Some("INVALID_API_KEY"),
                None,
                "Invalid API key",
            ),
        );
        let no_route = final_of(
            G::Chat,
            out(
                Some(404),
                false,
                Some("route_missing"),
                None,
                "404 page not found",
            ),
        );
        let said = |s: &str| s.to_owned();
        let a401 = UpstreamReading::KeyInvalid {
            said: said("API returned 401: Authentication Fails"),
        };
        let a402 = UpstreamReading::Quota {
            said: said("API returned 402: Insufficient Balance"),
        };
        let a500 = UpstreamReading::ServerError {
            status: 500,
            said: said("API returned 500: internal"),
        };
        let a529 = UpstreamReading::ServerError {
            status: 529,
            said: said("HTTP 529 overloaded_error"),
        };
        let a429 = UpstreamReading::RateLimited {
            said: said("HTTP 429"),
        };
        let answers = UpstreamReading::Answers;
        let down = UpstreamReading::Unreachable {
            detail: said("refused"),
        };
        let legacy = Some("the probe found an older-era host".to_owned());
        struct Row {
            name: &'static str,
            models: GatewayReading,
            static_listing: Option<String>,
            completion: Option<(G, GatewayReading)>,
            upstream: Vec<UpstreamReading>,
            accounts: Vec<UpstreamReading>,
            want: (Verdict, Option<FailureClass>),
        }
        let row = |name,
                   models: &GatewayReading,
                   st: &Option<String>,
                   completion: Option<(G, &GatewayReading)>,
                   up: Vec<UpstreamReading>,
                   acc: Vec<UpstreamReading>,
                   want| Row {
            name,
            models: models.clone(),
            static_listing: st.clone(),
            completion: completion.map(|(s, r)| (s, r.clone())),
            upstream: up,
            accounts: acc,
            want,
        };
        let none = None;
        let pass = (Verdict::Pass, None);
        let fail = |c| (Verdict::Fail, Some(c));
        let adv = |c| (Verdict::PassWithAdvisories, Some(c));
        #[rustfmt::skip]
        let rows = vec![
            row("listed + completion ok", &ok, &none, Some((G::Chat, &ok)), vec![], vec![answers.clone()], pass),
            row("static listing, messages ok: ready rests on the completion", &not_listed, &legacy, Some((G::Messages, &ok)), vec![], vec![answers.clone()], pass),
            row("not listed, not static: model_not_exposed", &not_listed, &none, None, vec![], vec![answers.clone()], fail(ModelNotExposed)),
            row("upstream 401 seen only by the account test beats the hidden model", &not_listed, &none, None, vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
            row("account test 402 beats the hidden model", &not_listed, &none, None, vec![], vec![a402.clone()], fail(UpstreamKeyQuotaIssue)),
            row("account test 500 beats the hidden model", &not_listed, &none, None, vec![], vec![a500.clone()], fail(UpstreamUnavailable)),
            row("direct probe answers: the model is really not exposed", &not_listed, &none, None, vec![answers.clone()], vec![a401.clone()], fail(ModelNotExposed)),
            row("direct 402 beats account test 401", &not_listed, &none, None, vec![a402.clone()], vec![a401.clone()], fail(UpstreamKeyQuotaIssue)),
            row("direct unreachable: the account test decides", &not_listed, &none, None, vec![down.clone()], vec![a401.clone()], fail(UpstreamKeyInvalid)),
            row("upstream_error 502 + account test 401", &ok, &none, Some((G::Messages, &upstream_auth_502)), vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
            row("upstream_error 502, nothing probed: the host's words", &ok, &none, Some((G::Messages, &upstream_auth_502)), vec![], vec![], fail(UpstreamKeyInvalid)),
            row("upstream 5xx through the gateway, nothing probed", &ok, &none, Some((G::Messages, &upstream_5xx)), vec![], vec![], fail(UpstreamUnavailable)),
            row("upstream 529 overloaded through the gateway", &ok, &legacy, Some((G::Messages, &overloaded)), vec![], vec![], fail(UpstreamUnavailable)),
            row("upstream 5xx probed directly", &ok, &none, Some((G::Chat, &upstream_5xx)), vec![a529.clone()], vec![], fail(UpstreamUnavailable)),
            row("no available accounts + account test 401", &ok, &none, Some((G::Chat, &no_accounts)), vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
            row("no available accounts, upstream answers: host gap", &ok, &none, Some((G::Chat, &no_accounts)), vec![answers.clone()], vec![], fail(HostCompatibilityGap)),
            row("upstream 429 is the only rate limit", &ok, &none, Some((G::Chat, &upstream_5xx)), vec![a429.clone()], vec![], adv(TransientRateLimited)),
            row("user key refused: the host's own verdict", &ok, &none, Some((G::Chat, &user_key_refused)), vec![], vec![a401.clone()], fail(AuthIssue)),
            row("no route: the host's own verdict", &ok, &none, Some((G::Chat, &no_route)), vec![], vec![a401.clone()], fail(RouteMissing)),
            row("completion ok, account test 401: advisory", &ok, &none, Some((G::Chat, &ok)), vec![], vec![a401.clone()], adv(UpstreamKeyInvalid)),
            row("completion ok, account test 500: advisory", &ok, &none, Some((G::Chat, &ok)), vec![], vec![a500.clone()], adv(UpstreamUnavailable)),
            row("static, completion skipped, account test answers", &not_listed, &legacy, None, vec![], vec![answers.clone()], pass),
            row("static, completion skipped, account test 401", &not_listed, &legacy, None, vec![], vec![a401.clone()], fail(UpstreamKeyInvalid)),
            row("static, completion skipped, no account evidence", &not_listed, &legacy, None, vec![], vec![], adv(HostCompatibilityGap)),
        ];
        for r in rows {
            let e = CheckEvidence {
                smoke_model: smoke.to_owned(),
                models: r.models,
                static_listing: r.static_listing,
                completion: r.completion,
                upstream: r.upstream,
                accounts: r
                    .accounts
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| (format!("{}", i + 1), a))
                    .collect(),
            };
            let d = decide(&e);
            assert_eq!(
                (d.verdict, d.failure_class),
                r.want,
                "{}: {}",
                r.name,
                d.summary
            );
            if d.verdict != Verdict::Pass {
                assert!(
                    d.summary.contains("`crm "),
                    "{}: the hint names a command: {}",
                    r.name,
                    d.summary
                );
            }
            if e.static_listing.is_some() && d.verdict == Verdict::Pass {
                assert!(
                    d.summary.contains("informational"),
                    "{}: {}",
                    r.name,
                    d.summary
                );
            }
        }
    }

    #[test]
    fn static_listings_are_recognised_from_evidence() {
        let current = ListingFacts {
            version: Some("0.1.130".into()),
            channels: true,
            chat_completions: true,
        };
        let legacy = ListingFacts {
            version: Some("0.1.0".into()),
            channels: false,
            chat_completions: false,
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            static_listing(&current, &ids(&["gpt-5", "gpt-5.1"]))
                .unwrap()
                .contains("OpenAI")
        );
        assert!(
            static_listing(&current, &ids(STATIC_CLAUDE_MODELS))
                .unwrap()
                .contains("Claude")
        );
        assert_eq!(
            static_listing(&current, &ids(&["deepseek-chat", "gpt-5"])),
            None
        );
        assert_eq!(static_listing(&current, &[]), None);
        assert!(
            static_listing(&legacy, &ids(&["deepseek-chat"]))
                .unwrap()
                .contains("older-era")
        );
    }
}
