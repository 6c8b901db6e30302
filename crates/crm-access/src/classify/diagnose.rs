//! Phase 2: the gateway reading that asked for the upstream, combined
//! with what the upstream keys and the account probes said.

use super::reading::*;
use crm_domain::FailureClass;

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

/// What a conclusive upstream reading says, after `prefix` (what the host
/// showed). `None` for readings that say nothing (answers, unreachable, other).
pub(super) fn from_upstream(r: &UpstreamReading, source: &str, prefix: &str) -> Option<Diagnosis> {
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
