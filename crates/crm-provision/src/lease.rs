//! The per-(host, provider) lease every import, resume, upgrade, rotation and
//! rollback runs under (design brief §5 "No duplicates"; crates.md §B
//! Terraform locking). A held lease is a clear error naming its holder.

use crate::error::Result;
use crm_domain::ops::Lease;
use crm_domain::ports::LeaseRepo;
use crm_domain::{HostId, ProviderRef};
use std::sync::Arc;
use std::time::Duration;

/// A lease this process holds. Release it with [`HeldLease::release`]; if the
/// process dies instead, the lease expires after its TTL and the next
/// operation takes it over (and finds the batch `applying`: a crash).
pub struct HeldLease {
    lease: Lease,
    repo: Arc<dyn LeaseRepo>,
    ttl: Duration,
}

impl std::fmt::Debug for HeldLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldLease")
            .field("lease", &self.lease)
            .finish()
    }
}

impl HeldLease {
    /// Takes the lease on `(host, provider)` or fails with
    /// `StoreError::LeaseHeld` naming the holder.
    pub async fn acquire(
        repo: Arc<dyn LeaseRepo>,
        host: &HostId,
        provider: &ProviderRef,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Self> {
        let lease = repo
            .acquire_lease(
                &Lease::provider_scope(host, provider),
                holder,
                operation,
                ttl,
            )
            .await?;
        Ok(HeldLease { lease, repo, ttl })
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Extends the lease; fails with `LeaseLost` if it expired and was taken.
    pub async fn heartbeat(&self) -> Result<()> {
        self.repo.heartbeat_lease(&self.lease.id, self.ttl).await?;
        Ok(())
    }

    pub async fn release(self) -> Result<()> {
        self.repo.release_lease(&self.lease.id).await?;
        Ok(())
    }
}
