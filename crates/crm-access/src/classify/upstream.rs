//! Direct upstream calls and account probes, read with the provider's
//! [`ErrorSignals`].

use super::outcome::{mentions_model, said, text_of};
use super::reading::*;
use crm_domain::observed::{AccountProbe, CallOutcome};
use crm_domain::spec::ErrorSignals;

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
