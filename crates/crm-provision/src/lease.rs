//! The per-(host, provider) lease every import, resume, upgrade, rotation and
//! rollback runs under (docs/design.md §5 "No duplicates", after
//! Terraform's locking). A held lease is a clear error naming its holder.

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

    /// Releases the lease once the work held under it ended with
    /// `outcome`, and returns that outcome. The work's own error wins: a
    /// failed release is reported only when the work succeeded.
    pub async fn release_after<T>(self, outcome: Result<T>) -> Result<T> {
        let released = self.release().await;
        let value = outcome?;
        released?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProvisionError;
    use crm_domain::LeaseId;
    use crm_domain::ports::{StoreError, StoreResult};

    /// Hands out leases; releasing fails when `release_fails`.
    struct Repo {
        release_fails: bool,
    }

    #[async_trait::async_trait]
    impl LeaseRepo for Repo {
        async fn acquire_lease(
            &self,
            scope: &str,
            holder: &str,
            operation: &str,
            _ttl: Duration,
        ) -> StoreResult<Lease> {
            let t = crate::fakes::t0();
            Ok(Lease {
                id: LeaseId::new("l-1"),
                scope: scope.into(),
                holder: holder.into(),
                operation: operation.into(),
                acquired_at: t,
                heartbeat_at: t,
                expires_at: t,
            })
        }
        async fn heartbeat_lease(&self, _id: &LeaseId, _ttl: Duration) -> StoreResult<Lease> {
            unreachable!("not used")
        }
        async fn release_lease(&self, _id: &LeaseId) -> StoreResult<()> {
            if self.release_fails {
                Err(StoreError::Backend {
                    detail: "disk full".into(),
                })
            } else {
                Ok(())
            }
        }
        async fn active_leases(&self, _prefix: &str) -> StoreResult<Vec<Lease>> {
            Ok(vec![])
        }
    }

    async fn held(release_fails: bool) -> HeldLease {
        HeldLease::acquire(
            Arc::new(Repo { release_fails }),
            &HostId::new("h-1"),
            &ProviderRef::new("p", "x"),
            "t",
            "import",
            Duration::from_secs(60),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn release_after_reports_the_work_first_then_the_release() {
        let work_failed = || Err::<u8, _>(ProvisionError::Invalid("work failed".into()));
        assert_eq!(held(false).await.release_after(Ok(7)).await.unwrap(), 7);
        let e = held(true).await.release_after(work_failed()).await;
        assert!(matches!(e, Err(ProvisionError::Invalid(m)) if m == "work failed"));
        let e = held(true).await.release_after(Ok(7)).await;
        assert!(matches!(
            e,
            Err(ProvisionError::Store(StoreError::Backend { .. }))
        ));
    }
}
