//! The one error type of crm-provision, with messages an operator can act on.

use crm_domain::plan::UrlChange;
use crm_domain::ports::{HostError, StoreError};
use crm_domain::{BatchId, BatchStatus, JournalState, ProviderRef, ResourceKind};

/// Why a provisioning use case stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A read (observation, lookup) against the host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The store failed; the journal may be behind the host, so the lease is
    /// reported and an operator should look before retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A journaled host mutation failed; the journal says how it ended.
    #[error(
        "{kind} '{name}' failed: {source} (journal entry {seq} is {state}); run resume to continue"
    )]
    StepFailed {
        seq: u32,
        kind: ResourceKind,
        name: String,
        state: JournalState,
        #[source]
        source: HostError,
    },
    /// Recovery could not decide alone (several candidates, or no way to look).
    #[error("{kind} '{name}' needs an operator: {reason}")]
    NeedsOperator {
        seq: Option<u32>,
        kind: ResourceKind,
        name: String,
        reason: String,
    },
    /// The plan contains `blocked` items; nothing was applied.
    #[error("the plan is blocked: {}", reasons.join("; "))]
    Blocked { reasons: Vec<String> },
    /// The plan sends upstream keys to base URLs other than the recorded
    /// ones, and the operator did not confirm it; nothing was applied.
    #[error(
        "pack {provider} {pack_version} moves where upstream keys are sent: {}; nothing was changed: check the new URL with the provider, then apply again with --accept-url-change (API and console: accept_url_change)",
        changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ")
    )]
    UrlChangeUnconfirmed {
        provider: ProviderRef,
        pack_version: String,
        changes: Vec<UrlChange>,
    },
    /// The batch is in a status the requested use case cannot start from.
    #[error("batch {batch} is {status}: {hint}")]
    BatchState {
        batch: BatchId,
        status: BatchStatus,
        hint: String,
    },
    /// The request itself is unusable (unknown provider, key, pack version...).
    #[error("{0}")]
    Invalid(String),
}

impl ProvisionError {
    /// Whether a host (or store) failure caused this, as opposed to a refusal
    /// by crm's own rules.
    pub fn is_host_failure(&self) -> bool {
        matches!(
            self,
            ProvisionError::Host(_) | ProvisionError::StepFailed { .. }
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;
