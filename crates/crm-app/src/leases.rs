//! Lease use cases: see who holds a (host, provider) or host lease, and
//! release one by its exact id.
//!
//! A process that dies while importing (a crash, `kill -9`, a lost VM) keeps
//! its lease until the lease's TTL runs out. The `LeaseHeld` error names the
//! holder and the lease id; an operator who knows the holder is gone releases
//! that one lease and resumes or rolls the batch back, instead of waiting.
//!
//! crm also reaps such leases by itself when it opens the database: a holder
//! names its process as `pid N@host`, and a holder on this machine whose
//! process no longer exists cannot be working. (With SQLite every holder is
//! on this machine, as WAL mode only works on a local disk; with a shared
//! PostgreSQL store, holders on other machines are left to expire.) A reused pid only makes crm keep a dead
//! lease (the safe direction); a live holder is never reaped.

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

    /// Refuses at once, naming the holder, when an unexpired lease holds
    /// `provider` on `host`. A face that answers before the work starts (the
    /// API's 202) calls this so a second import is refused with 409 instead
    /// of accepted and failed later. Advisory only: the operation still
    /// takes the lease itself, so a race between two callers is decided there.
    pub async fn ensure_provider_free(
        &self,
        host: &crm_domain::HostId,
        provider: &crm_domain::ProviderRef,
    ) -> Result<()> {
        let scope = Lease::provider_scope(host, provider);
        let held = self
            .store
            .active_leases(&scope)
            .await?
            .into_iter()
            .find(|l| l.scope == scope);
        match held {
            Some(l) => Err(AppError::Store(StoreError::LeaseHeld {
                scope: l.scope,
                holder: l.holder,
                operation: l.operation,
                lease_id: l.id,
                expires_at: l.expires_at,
            })),
            None => Ok(()),
        }
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

/// Environment variable naming this replica in lease holders (optional).
pub const REPLICA_ID_ENV: &str = "CRM_REPLICA_ID";

/// This machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `actor (pid N@host)`, or `actor (pid N@host, replica R)`.
pub(crate) fn holder_name(actor: &str) -> String {
    let pid = std::process::id();
    let host = host_name();
    match std::env::var(REPLICA_ID_ENV)
        .ok()
        .filter(|r| !r.trim().is_empty())
    {
        Some(r) => format!("{actor} (pid {pid}@{host}, replica {})", r.trim()),
        None => format!("{actor} (pid {pid}@{host})"),
    }
}

/// The pid and, when named, the host of a holder written by
/// [`holder_name`] (`actor (pid N@host...)`, or the older `actor (pid N)`).
fn holder_process(holder: &str) -> Option<(u32, Option<&str>)> {
    let start = holder.rfind("(pid ")? + "(pid ".len();
    let rest = &holder[start..];
    let inner = &rest[..rest.find(')')?];
    let process = inner.split(',').next()?.trim();
    match process.split_once('@') {
        Some((pid, host)) => Some((pid.trim().parse().ok()?, Some(host.trim()))),
        None => Some((process.parse().ok()?, None)),
    }
}

/// The pid in a holder name.
#[cfg(test)]
fn holder_pid(holder: &str) -> Option<u32> {
    holder_process(holder).map(|(pid, _)| pid)
}

/// Whether a process with this pid exists on this machine. Where that cannot
/// be told (no `/proc`), every holder counts as alive.
fn pid_alive(pid: u32) -> bool {
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

impl App {
    /// Releases unexpired leases whose holder process is gone (a crash or
    /// `kill -9` of a CLI or server using this database), so a restarted
    /// process can resume at once instead of waiting out the TTL. Returns the
    /// leases it released; each release is audited.
    pub async fn reap_dead_leases(&self) -> Result<Vec<Lease>> {
        let me = std::process::id();
        let this_host = host_name();
        let mut reaped = Vec::new();
        for lease in self.store.active_leases("").await? {
            let Some((pid, host)) = holder_process(&lease.holder) else {
                continue;
            };
            // A pid means something only on its own machine. A shared
            // (PostgreSQL) store has holders on other machines, and older
            // holder names there say no host: those wait for expiry.
            let local = match host {
                Some(h) => h == this_host,
                None => !self.store.is_shared(),
            };
            if !local || pid == me || pid_alive(pid) {
                continue;
            }
            match self.store.release_lease(&lease.id).await {
                Ok(()) | Err(StoreError::LeaseLost { .. }) => {
                    tracing::warn!(
                        lease = %lease.id,
                        scope = %lease.scope,
                        holder = %lease.holder,
                        "released the lease of a process that no longer exists"
                    );
                    self.audit(
                        "lease.reap",
                        &lease.scope,
                        "ok",
                        Some(format!(
                            "lease {} held by {} for {}: process gone",
                            lease.id, lease.holder, lease.operation
                        )),
                    )
                    .await;
                    reaped.push(lease);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(reaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_pids_are_read_from_crm_holder_names() {
        assert_eq!(holder_pid("token:admin (pid 11658)"), Some(11658));
        assert_eq!(holder_pid("cli (pid 7)"), Some(7));
        assert_eq!(holder_pid("crm-reconcile"), None);
        assert_eq!(holder_pid("x (pid abc)"), None);
        assert_eq!(
            holder_process("token:admin (pid 7@vm-a)"),
            Some((7, Some("vm-a")))
        );
        assert_eq!(
            holder_process("token:admin (pid 7@vm-a, replica r2)"),
            Some((7, Some("vm-a")))
        );
        let mine = holder_name("cli");
        assert_eq!(
            holder_process(&mine),
            Some((std::process::id(), Some(host_name().as_str())))
        );
    }

    #[test]
    fn this_process_is_alive_and_an_impossible_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        if std::path::Path::new("/proc/self").exists() {
            assert!(!pid_alive(u32::MAX - 1));
        }
    }
}
