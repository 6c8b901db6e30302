//! The one error type of `crm-access`, with messages an operator can act on.

use crm_domain::ports::{HostError, StoreError};
use crm_domain::{AccessMode, BatchId, ResourceKind};

/// Why an access operation could not be carried out.
///
/// A *failed access check* is not an error: it is a stored
/// [`crm_domain::access::AccessCheck`] with a failure class. These variants
/// are for when crm could not even plan, apply or record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provision(#[from] crm_provision::ProvisionError),
    #[error(
        "batch {batch} has no live {kind} resource; import it (or resume the import) before closing access"
    )]
    MissingResource { batch: BatchId, kind: ResourceKind },
    #[error("batch {batch} is {mode}, but {what}")]
    ModeMismatch {
        batch: BatchId,
        mode: AccessMode,
        what: String,
    },
    #[error("the access closure of batch {batch} is blocked: {reason}")]
    Blocked { batch: BatchId, reason: String },
    #[error(
        "stored closure record of batch {batch} is unreadable ({detail}); run a reconcile, or roll the batch back"
    )]
    BadRecord { batch: BatchId, detail: String },
    #[error("no host user matches '{user}'; create the user first or pass its id")]
    UnknownUser { user: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
