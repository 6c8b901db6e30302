//! The one error type of crm-reconcile.

use crm_domain::ports::{HostError, StoreError};

/// Why a reconcile, repair or scheduler step failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store could not be read or written.
    #[error("reconcile could not use the store: {0}")]
    Store(#[from] StoreError),
    /// A host call failed outside observation (observation failures become an
    /// `unreachable` or `error` run instead).
    #[error("host call failed during repair: {0}")]
    Host(#[from] HostError),
    /// Another run, repair or import holds the scope; try again later.
    #[error("busy: {0}")]
    Busy(StoreError),
    /// A repair step failed; the journal says how far it got, and repairing
    /// again continues from there.
    #[error("{0}")]
    Repair(String),
    /// The scope names something crm does not know.
    #[error("nothing to reconcile: {0}")]
    UnknownScope(String),
}

/// Result alias of this crate.
pub type Result<T, E = ReconcileError> = std::result::Result<T, E>;
