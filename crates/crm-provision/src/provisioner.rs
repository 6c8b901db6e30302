//! The provisioner and its entry points: preview, import, resume and pack
//! upgrade. Each takes the per-(host, provider) lease, observes the host,
//! plans with the pure planner and converges through the journal executor
//! (the `apply` module). Upstream key rotation is in `rotation`, rollback in
//! `rollback`, the natural-key lookups and crash recovery in `lookup`; those
//! modules add methods to [`Provisioner`] and this one imports none of them.
//!
//! Access closure comes after (crm-access): call the `*_holding` variants
//! with a [`HeldLease`] to run it under the same lease.

use crate::desired::PackProvider;
use crate::error::{ProvisionError, Result};
use crate::journal::JournalExecutor;
use crate::lease::HeldLease;
use crate::planner::{PlanInput, plan_detailed};
use crate::snapshot::{observe_bounded, observe_monitors};
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::Capabilities;
use crm_domain::observed::HostSnapshot;
use crm_domain::plan::Plan;
use crm_domain::ports::{BatchRepo, Clock, HostApi, IdSource, LeaseRepo, PackRepo, SecretSealer};
use crm_domain::{
    AccessMode, BatchId, BatchStatus, Fingerprint, HostId, KeyFingerprinter, ProviderRef,
    ResourceKind, ResourceState, SecretString,
};
use std::sync::Arc;
use std::time::Duration;

/// Everything the provisioning use cases need, for one host.
#[derive(Clone)]
pub struct Provisioner {
    pub host_id: HostId,
    pub host: Arc<dyn HostApi>,
    /// The host's last probe.
    pub caps: Capabilities,
    pub batches: Arc<dyn BatchRepo>,
    pub leases: Arc<dyn LeaseRepo>,
    pub packs: Arc<dyn PackRepo>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub sealer: Arc<dyn SecretSealer>,
    pub fingerprinter: Arc<KeyFingerprinter>,
    /// Who takes leases (shown to whoever is refused), e.g. `cli:1234@vm`.
    pub holder: String,
    pub lease_ttl: Duration,
    /// At most this many independent host calls in flight at once (the
    /// channel and account writes of an import, deletes of one kind in a
    /// rollback, observation reads); 0 counts as 1.
    /// [`Provisioner::DEFAULT_MAX_CONCURRENCY`] is 64.
    pub max_concurrency: usize,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("host_id", &self.host_id)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// An import of one provider onto the host in one mode.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub provider: ProviderRef,
    /// The pack version to use; the current one when `None`.
    pub pack_version: Option<String>,
    pub mode: AccessMode,
    /// Upstream keys to provision (added to the batch's keys if it exists).
    pub upstream_keys: Vec<SecretString>,
    /// The operator confirmed that accounts move to the base URLs of this
    /// pack version (the plan's `url_changes`); without it such a plan is
    /// refused (docs/design.md §4 step 3).
    pub accept_url_change: bool,
    /// Create a host-side channel monitor for the batch (`--monitor`):
    /// `None` takes the pack's `monitor` default (and keeps the choice an
    /// earlier run of the batch planned). Only hosts with channel monitors
    /// get one; elsewhere the plan says so in a note. An existing monitor
    /// of the batch is kept either way.
    pub monitor: Option<bool>,
}

/// A read-only plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Preview {
    pub plan: Plan,
    /// The live batch the plan would apply to, if one exists.
    pub batch: Option<BatchId>,
    pub pack_version: String,
    /// The base URL the plan's accounts use on this host (the pack's
    /// OpenAI-compatible or Anthropic one, by the platform chosen), when a
    /// platform is available.
    pub base_url: Option<String>,
    pub host_requests: u32,
}

/// How an import, resume or upgrade ended. The batch status is the verdict;
/// `error` says why it stopped early.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApplyReport {
    pub batch: ImportBatch,
    pub plan: Plan,
    /// The plan was all `no-op` and nothing was written.
    pub noop: bool,
    pub error: Option<String>,
    /// Journal seqs of pending closure intents (user, key, subscription,
    /// balance) this crate does not resolve; crm-access does.
    pub closure_pending: Vec<u32>,
    pub host_requests: u32,
}

impl Provisioner {
    /// The default bound on concurrent host calls. High enough that an
    /// import of a few dozen upstream keys creates its accounts in one round
    /// trip (a sub2api host takes that many admin writes at once without
    /// strain); an operator with a fragile host lowers it
    /// (`--host-concurrency`, `CRM_HOST_CONCURRENCY`).
    pub const DEFAULT_MAX_CONCURRENCY: usize = crate::concurrency::DEFAULT_MAX_CONCURRENCY;

    /// The bound on concurrent host calls, at least 1.
    pub(crate) fn limit(&self) -> usize {
        self.max_concurrency.max(1)
    }

    /// Takes the (host, provider) lease.
    pub async fn acquire(&self, provider: &ProviderRef, operation: &str) -> Result<HeldLease> {
        HeldLease::acquire(
            self.leases.clone(),
            &self.host_id,
            provider,
            &self.holder,
            operation,
            self.lease_ttl,
        )
        .await
    }

    pub(crate) fn exec(&self) -> JournalExecutor<'_> {
        JournalExecutor::new(&*self.batches, self.caps.idempotency_key)
    }

    /// The provider of an installed pack version (current when `None`).
    pub async fn pack_provider(
        &self,
        provider: &ProviderRef,
        version: Option<String>,
    ) -> Result<PackProvider> {
        let pack = self.packs.get_pack(&provider.pack, version).await?;
        PackProvider::from_pack(&pack, &provider.provider)
    }

    /// The live batch of (host, provider, mode), if any.
    pub async fn live_batch(
        &self,
        provider: &ProviderRef,
        mode: AccessMode,
    ) -> Result<Option<ImportBatch>> {
        let mut all = self
            .batches
            .live_batches(&self.host_id, Some(provider))
            .await?;
        all.retain(|b| b.mode == mode);
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all.pop())
    }

    // -------------------------------------------------------------- preview

    /// The plan an import would apply. Only list calls reach the host.
    pub async fn preview(&self, req: &ImportRequest) -> Result<Preview> {
        let before = self.host.request_count();
        let pp = self
            .pack_provider(&req.provider, req.pack_version.clone())
            .await?;
        let batch = self.live_batch(&req.provider, req.mode).await?;
        let keys = self.keys_of(batch.as_ref(), &req.upstream_keys);
        let resources = match &batch {
            Some(b) => live(self.batches.resources(&b.id).await?),
            None => vec![],
        };
        let monitor = wants_monitor(req.monitor, &pp, batch.as_ref());
        let snapshot = self.observe(monitor || has_monitor(&resources)).await?;
        let planned = plan_detailed(PlanInput {
            pack: &pp,
            caps: &self.caps,
            snapshot: &snapshot,
            mode: req.mode,
            keys: &keys,
            resources: &resources,
            monitor,
        });
        Ok(Preview {
            plan: planned.plan,
            batch: batch.map(|b| b.id),
            pack_version: pp.pack_version,
            base_url: planned.choice.map(|c| c.base_url),
            host_requests: self.host.request_count().saturating_sub(before),
        })
    }

    /// A pack upgrade's plan for a live batch (`update`s of prices, mapping, models).
    pub async fn preview_upgrade(
        &self,
        batch: &BatchId,
        version: Option<String>,
    ) -> Result<Preview> {
        let b = self.batches.get_batch(batch).await?;
        self.preview(&ImportRequest {
            provider: b.provider.clone(),
            pack_version: version,
            mode: b.mode,
            upstream_keys: vec![],
            accept_url_change: false,
            monitor: None,
        })
        .await
    }

    // -------------------------------------------------------------- import

    /// Imports under a fresh lease, released at the end.
    pub async fn import(&self, req: ImportRequest) -> Result<ApplyReport> {
        let lease = self.acquire(&req.provider, "import").await?;
        let r = self.import_holding(&lease, req).await;
        lease.release_after(r).await
    }

    /// Imports under a lease the caller holds (so access closure can follow
    /// under the same lease). One batch per (host, provider, mode): a live
    /// batch is reused, and re-importing an applied batch is a no-op.
    pub async fn import_holding(
        &self,
        lease: &HeldLease,
        req: ImportRequest,
    ) -> Result<ApplyReport> {
        let pp = self
            .pack_provider(&req.provider, req.pack_version.clone())
            .await?;
        let batch = self.live_batch(&req.provider, req.mode).await?;
        if let Some(b) = &batch {
            match b.status {
                BatchStatus::RollingBack | BatchStatus::RollbackIncomplete => {
                    return Err(ProvisionError::BatchState {
                        batch: b.id.clone(),
                        status: b.status,
                        hint: "finish its rollback (crm rollback) before importing again".into(),
                    });
                }
                _ => {}
            }
        }
        let monitor = wants_monitor(req.monitor, &pp, batch.as_ref());
        self.converge(
            lease,
            batch,
            &pp,
            req.mode,
            &req.upstream_keys,
            req.accept_url_change,
            monitor,
        )
        .await
    }

    // -------------------------------------------------------------- resume

    /// Resumes a batch under a fresh lease.
    pub async fn resume(&self, batch: &BatchId, keys: Vec<SecretString>) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "resume").await?;
        let r = self.resume_holding(&lease, batch, keys).await;
        lease.release_after(r).await
    }

    /// Finishes a `partially_applied`, `failed`, crashed (`applying` with no
    /// lease holder: the caller holds the lease now) or operator-fixed
    /// `needs_operator` batch: pending intents are resolved by natural-key
    /// lookup first (one → adopt, none → create again, several →
    /// `needs_operator`, stop), then the plan continues. crm keeps no copy of
    /// upstream keys: an account still to be created needs its key in `keys`,
    /// else that item is `blocked` (naming the key's fingerprint), the rest
    /// proceeds and the batch stays resumable.
    pub async fn resume_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        keys: Vec<SecretString>,
    ) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        if !b.status.is_resumable() {
            return Err(ProvisionError::BatchState {
                batch: b.id.clone(),
                status: b.status,
                hint: "only partially_applied, failed, applying (crashed) or needs_operator batches can be resumed".into(),
            });
        }
        let pp = self
            .pack_provider(&b.provider, Some(b.pack_version.clone()))
            .await?;
        let mode = b.mode;
        // The batch's own pack version: its URLs are the recorded ones, so
        // a resume never moves an account unconfirmed.
        let monitor = wants_monitor(None, &pp, Some(&b));
        self.converge(lease, Some(b), &pp, mode, &keys, false, monitor)
            .await
    }

    // -------------------------------------------------------------- upgrade

    /// Applies a newer pack version to a live batch under a fresh lease.
    pub async fn upgrade(
        &self,
        batch: &BatchId,
        version: Option<String>,
        accept_url_change: bool,
    ) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "upgrade").await?;
        let r = self
            .upgrade_holding(&lease, batch, version, accept_url_change)
            .await;
        lease.release_after(r).await
    }

    /// Applies `version` (the current one when `None`) of the batch's pack:
    /// `update`s of prices, mapping and models; on success the batch records
    /// the new version and checksum. A version that moves accounts to
    /// another base URL needs `accept_url_change`
    /// ([`ProvisionError::UrlChangeUnconfirmed`] otherwise).
    pub async fn upgrade_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        version: Option<String>,
        accept_url_change: bool,
    ) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        applied_or_refuse(
            &b,
            "only applied or partially_applied batches can be upgraded; resume or roll it back first",
        )?;
        let pp = self.pack_provider(&b.provider, version).await?;
        let mode = b.mode;
        let monitor = wants_monitor(None, &pp, Some(&b));
        self.converge(lease, Some(b), &pp, mode, &[], accept_url_change, monitor)
            .await
    }

    /// One observation of the host, with its channel monitors when
    /// `monitors` (a batch in scope has or wants one).
    pub(crate) async fn observe(&self, monitors: bool) -> Result<HostSnapshot> {
        let mut snapshot = observe_bounded(&*self.host, &self.caps, &[], self.limit()).await?;
        if monitors {
            snapshot.monitors = observe_monitors(&*self.host, &self.caps).await?;
        }
        Ok(snapshot)
    }

    /// Fingerprints of the batch's keys plus the given ones.
    pub(crate) fn keys_of(
        &self,
        batch: Option<&ImportBatch>,
        given: &[SecretString],
    ) -> Vec<Fingerprint> {
        let mut keys: Vec<Fingerprint> = batch.map(|b| b.upstream_keys.clone()).unwrap_or_default();
        for k in given {
            let fp = self.fingerprinter.fingerprint(k);
            if !keys.iter().any(|x| x.hmac == fp.hmac) {
                keys.push(fp);
            }
        }
        keys
    }
}

/// Whether a batch wants a monitor: the request's choice, else one an
/// earlier run of the batch planned, blocked or not (so a resume finishes
/// it), else the pack's default.
pub(crate) fn wants_monitor(
    asked: Option<bool>,
    pp: &PackProvider,
    batch: Option<&ImportBatch>,
) -> bool {
    asked.unwrap_or_else(|| {
        pp.spec.funds.monitor
            || batch.is_some_and(|b| b.plan.items.iter().any(|i| i.kind == ResourceKind::Monitor))
    })
}

/// Whether resources include a live monitor.
pub(crate) fn has_monitor(resources: &[ManagedResource]) -> bool {
    resources
        .iter()
        .any(|r| r.kind == ResourceKind::Monitor && r.state == ResourceState::Live)
}

/// Live resources only.
pub(crate) fn live(all: Vec<ManagedResource>) -> Vec<ManagedResource> {
    all.into_iter()
        .filter(|r| r.state == ResourceState::Live)
        .collect()
}

/// Refuses (with `hint`) a batch that is neither `applied` nor
/// `partially_applied`: only those have host objects to change in place.
pub(crate) fn applied_or_refuse(b: &ImportBatch, hint: &str) -> Result<()> {
    if matches!(
        b.status,
        BatchStatus::Applied | BatchStatus::PartiallyApplied
    ) {
        return Ok(());
    }
    Err(ProvisionError::BatchState {
        batch: b.id.clone(),
        status: b.status,
        hint: hint.into(),
    })
}
