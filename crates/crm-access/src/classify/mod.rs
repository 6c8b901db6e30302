//! Failure classification: from what the gateway, the upstream and the
//! account probe answered to one of docs/design.md's failure classes (§3) and a
//! sentence an operator can act on.
//!
//! Pure: the verification routine gathers [`CallOutcome`](crm_domain::observed::CallOutcome)s and calls these
//! functions. Classification runs in two phases because the second one costs
//! upstream calls (and, for quota-limited providers, upstream quota):
//!
//! 1. [`read_gateway`] reads one gateway step. Host-side verdicts (bad key,
//!    no balance, missing route, model not listed) are final. When the host
//!    blames the upstream (`upstream_error`, a handler `rate_limit_error`,
//!    "No available accounts", an unreadable error) the reading asks for an
//!    upstream probe.
//! 2. [`diagnose`] combines the gateway reading with the direct upstream
//!    probes (read with the provider's [`ErrorSignals`](crm_domain::spec::ErrorSignals)) and the account probes.
//!
//! A 429 anywhere is an advisory (`pass_with_advisories`, access status
//! `degraded`), except when the upstream itself, probed directly, says the
//! key is out of quota: a Kimi `exceeded_current_quota_error` or a Zhipu 1113
//! arrives as a 429 but will not go away by waiting.
//!
//! One module per step, imports running one way: `reading` (the types) and
//! `outcome` (an answer's words) are leaves; `gateway`, `upstream`,
//! `diagnose` and `listing` read one kind of evidence; `decide` weighs them.

mod decide;
mod diagnose;
mod gateway;
mod listing;
mod outcome;
mod reading;
mod upstream;

pub use decide::{CheckEvidence, advisory_class, decide, reading_text, upstream_may_explain};
pub use diagnose::diagnose;
pub use gateway::read_gateway;
pub use listing::{ListingFacts, STATIC_CLAUDE_MODELS, STATIC_OPENAI_MODELS, static_listing};
pub use outcome::outcome_from_host_error;
pub use reading::{Diagnosis, GatewayReading, GatewayStep, UpstreamReading, UpstreamSuspicion};
pub use upstream::{UpstreamEvidence, read_account_probe, read_upstream, read_upstream_key};

#[cfg(test)]
mod tests;
