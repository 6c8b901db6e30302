//! Lease use cases: see who holds a (host, provider) or host lease, and
//! release one by its exact id.
//!
//! A process that dies while importing (a crash, `kill -9`, a lost VM) keeps
//! its lease until the lease's TTL runs out. The `LeaseHeld` error names the
//! holder and the lease id; an operator who knows the holder is gone releases
//! that one lease and resumes or rolls the batch back, instead of waiting.

use crate::App;
use crate::error::{AppError, Result};
use crm_domain::LeaseId;
use crm_domain::ops::Lease;
use crm_domain::ports::{LeaseRepo, StoreError};

impl App {
    /// Unexpired leases, optionally only those of one host.
    pub async fn list_leases(&self, host: Option<&str>) -> Result<Vec<Lease>> {
        let prefix = match host {
            Some(h) => Lease::host_scope(&self.host(h).await?.id),
            None => "host:".to_owned(),
        };
        let mut leases = self.store.active_leases(&prefix).await?;
        leases.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(leases)
    }

    /// Releases one lease by id (and nothing else), auditing who did it.
    pub async fn release_lease(&self, id: &str) -> Result<Lease> {
        let lease = self
            .store
            .active_leases("")
            .await?
            .into_iter()
            .find(|l| l.id.as_str() == id)
            .ok_or_else(|| AppError::NotFound {
                what: format!("active lease {id:?}"),
                hint: Some("list active leases with `crm lease list`".into()),
            })?;
        let result = self.store.release_lease(&LeaseId::new(id)).await;
        self.audit(
            "lease.release",
            &lease.scope,
            if result.is_ok() { "ok" } else { "error" },
            Some(format!(
                "lease {} held by {} for {}",
                lease.id, lease.holder, lease.operation
            )),
        )
        .await;
        match result {
            Ok(()) | Err(StoreError::LeaseLost { .. }) => Ok(lease),
            Err(e) => Err(e.into()),
        }
    }
}
