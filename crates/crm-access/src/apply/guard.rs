//! The refusals every entry point shares: a batch that cannot take a
//! closure, a record that does not say what the closure needs.

use crate::{Error, Result};
use crm_domain::batch::ImportBatch;
use crm_domain::{BatchId, BatchStatus, HostObjectId};

/// Closures are added only to batches that own live objects and are not
/// being (or have been) rolled back.
pub(super) fn ensure_open(batch: &ImportBatch) -> Result<()> {
    match batch.status {
        BatchStatus::Planned
        | BatchStatus::RollingBack
        | BatchStatus::RolledBack
        | BatchStatus::RollbackIncomplete => Err(Error::Blocked {
            batch: batch.id.clone(),
            reason: format!(
                "the batch is {}; import (or resume) the provider to get a live batch",
                batch.status
            ),
        }),
        _ => Ok(()),
    }
}

pub(super) fn bad(batch: &BatchId, detail: &str) -> Error {
    Error::BadRecord {
        batch: batch.clone(),
        detail: detail.to_owned(),
    }
}

pub(super) fn need(user: Option<HostObjectId>, batch: &BatchId) -> Result<HostObjectId> {
    user.ok_or_else(|| bad(batch, "closure user has no host id"))
}
