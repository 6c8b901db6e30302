//! The check's verdict from all its evidence.

use super::diagnose::{diagnose, from_upstream};
use super::reading::*;
use crm_domain::{FailureClass, Verdict};

/// Everything one access check gathered, for [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckEvidence {
    pub smoke_model: String,
    /// The `/v1/models` step's reading.
    pub models: GatewayReading,
    /// Why the listing is taken as static, when it is ([`static_listing`](super::static_listing)).
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
