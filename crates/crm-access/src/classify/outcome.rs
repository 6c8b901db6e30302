//! What an outcome said, in words: the summary text of a call and the
//! text that signals and keywords are matched against.

use crm_domain::observed::CallOutcome;
use crm_domain::ports::HostError;

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

pub(super) fn said(o: &CallOutcome) -> String {
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
pub(super) fn text_of(o: &CallOutcome) -> String {
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

pub(super) fn mentions_model(lower: &str) -> bool {
    lower.contains("model")
}
