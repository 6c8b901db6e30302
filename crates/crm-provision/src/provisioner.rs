//! The use cases that do I/O: preview, import, resume, pack upgrade and
//! upstream key rotation (rollback is in [`crate::rollback`]).
//!
//! Each takes the per-(host, provider) lease, observes the host, plans with
//! the pure planner and applies through the journal executor, in docs/design.md's
//! order: accounts → group → account group binding → channel. Access closure
//! comes after (crm-access): call the `*_holding` variants with a
//! [`HeldLease`] to run it under the same lease.

use crate::desired::PlatformChoice;
use crate::desired::{
    AccountSpec, PackProvider, account_matches, account_name, channel_draft, group_draft,
    group_generation_name, to_desired,
};
use crate::error::{ProvisionError, Result};
use crate::journal::{Intent, JournalExecutor, LookupFn, Step};
use crate::lease::HeldLease;
use crate::planner::{PlanInput, Planned, plan_detailed, recorded_key_hmac};
use crate::snapshot::observe_bounded;
use crm_domain::batch::{BatchFilter, ImportBatch, JournalEntry, ManagedResource};
use crm_domain::host::Capabilities;
use crm_domain::observed::{AccountPatch, GroupDraft, HostAccount, HostSnapshot};
use crm_domain::ownership;
use crm_domain::plan::{Plan, PlanItem};
use crm_domain::ports::{
    BatchRepo, Clock, HostApi, HostError, IdSource, LeaseRepo, PackRepo, SecretSealer,
};
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, Fingerprint, HostId, HostObjectId, JournalOp,
    JournalState, KeyFingerprinter, PlanAction, ProviderRef, ResourceKind, ResourceState,
    SecretString,
};
use futures::FutureExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
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
}

/// A read-only plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Preview {
    pub plan: Plan,
    /// The live batch the plan would apply to, if one exists.
    pub batch: Option<BatchId>,
    pub pack_version: String,
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

/// Where the apply stopped, for the batch status.
struct Stop {
    status: BatchStatus,
    reason: String,
}

impl Provisioner {
    /// The default bound on concurrent host calls. High enough that an
    /// import of a few dozen upstream keys creates its accounts in one round
    /// trip (a sub2api host takes that many admin writes at once without
    /// strain); an operator with a fragile host lowers it
    /// (`--host-concurrency`, `CRM_HOST_CONCURRENCY`).
    pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

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

    fn exec(&self) -> JournalExecutor<'_> {
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
            .list_batches(BatchFilter {
                host_id: Some(self.host_id.clone()),
                provider: Some(provider.clone()),
                status: None,
                limit: None,
            })
            .await?;
        all.retain(|b| b.mode == mode && b.status.is_live());
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
        let snapshot = observe_bounded(&*self.host, &self.caps, &[], self.limit()).await?;
        let planned = plan_detailed(PlanInput {
            pack: &pp,
            caps: &self.caps,
            snapshot: &snapshot,
            mode: req.mode,
            keys: &keys,
            resources: &resources,
        });
        Ok(Preview {
            plan: planned.plan,
            batch: batch.map(|b| b.id),
            pack_version: pp.pack_version,
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
        self.converge(lease, batch, &pp, req.mode, &req.upstream_keys)
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
        self.converge(lease, Some(b), &pp, mode, &keys).await
    }

    // -------------------------------------------------------------- upgrade

    /// Applies a newer pack version to a live batch under a fresh lease.
    pub async fn upgrade(&self, batch: &BatchId, version: Option<String>) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "upgrade").await?;
        let r = self.upgrade_holding(&lease, batch, version).await;
        lease.release_after(r).await
    }

    /// Applies `version` (the current one when `None`) of the batch's pack:
    /// `update`s of prices, mapping and models; on success the batch records
    /// the new version and checksum.
    pub async fn upgrade_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        version: Option<String>,
    ) -> Result<ApplyReport> {
        let b = self.batches.get_batch(batch).await?;
        if !matches!(
            b.status,
            BatchStatus::Applied | BatchStatus::PartiallyApplied
        ) {
            return Err(ProvisionError::BatchState {
                batch: b.id.clone(),
                status: b.status,
                hint: "only applied or partially_applied batches can be upgraded; resume or roll it back first".into(),
            });
        }
        let pp = self.pack_provider(&b.provider, version).await?;
        let mode = b.mode;
        self.converge(lease, Some(b), &pp, mode, &[]).await
    }

    // -------------------------------------------------------------- key rotation

    /// Replaces the upstream key `old` (a fingerprint hmac, or a prefix of at
    /// least 8 hex digits) on the batch's account with `new`, in place
    /// (credentials update, no downtime). Journaled as `rotate_key`; the new
    /// fingerprint is recorded on the batch and in the resource's desired spec.
    pub async fn rotate_key(
        &self,
        batch: &BatchId,
        old: &str,
        new: SecretString,
    ) -> Result<ImportBatch> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "rotate_key").await?;
        let r = self.rotate_key_holding(&lease, batch, old, new).await;
        lease.release_after(r).await
    }

    pub async fn rotate_key_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        old: &str,
        new: SecretString,
    ) -> Result<ImportBatch> {
        let mut b = self.batches.get_batch(batch).await?;
        if !matches!(
            b.status,
            BatchStatus::Applied | BatchStatus::PartiallyApplied
        ) {
            return Err(ProvisionError::BatchState {
                batch: b.id.clone(),
                status: b.status,
                hint: "keys can be rotated on applied or partially_applied batches only".into(),
            });
        }
        if old.len() < 8 {
            return Err(ProvisionError::Invalid(
                "name the old key by at least 8 hex digits of its fingerprint".into(),
            ));
        }
        let old_fp = b
            .upstream_keys
            .iter()
            .find(|k| k.hmac.starts_with(old))
            .cloned()
            .ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "batch {batch} has no upstream key with fingerprint {old} (it has: {})",
                    b.upstream_keys
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let new_fp = self.fingerprinter.fingerprint(&new);
        if b.upstream_keys.iter().any(|k| k.hmac == new_fp.hmac) {
            return Err(ProvisionError::Invalid(format!(
                "the new key ({new_fp}) is already one of batch {batch}'s keys"
            )));
        }
        let resources = live(self.batches.resources(batch).await?);
        let r = resources
            .iter()
            .find(|r| {
                r.kind == ResourceKind::Account
                    && recorded_key_hmac(r).unwrap_or_else(|| hmac_of_nk(&r.natural_key))
                        == old_fp.hmac
            })
            .ok_or_else(|| {
                ProvisionError::Invalid(format!(
                    "batch {batch} has no live account for key {old_fp}; resume the batch first"
                ))
            })?;
        lease.heartbeat().await?;
        let pp = self
            .pack_provider(&b.provider, Some(b.pack_version.clone()))
            .await?;
        let mut desired = r.desired.clone();
        let new_name = account_name(&b.provider, &new_fp);
        desired["name"] = json!(new_name);
        desired["upstream_key"] = json!(new_fp);
        // Records written before keys were kept as fingerprints only.
        if let Some(o) = desired.as_object_mut() {
            o.remove(LEGACY_SEALED_KEY_FIELD);
        }
        let patch = AccountPatch {
            name: Some(new_name.clone()),
            api_key: Some(new),
            // Legacy hosts replace credentials wholesale: resend the rest.
            // The account's own base URL: it depends on the platform the
            // import chose (the Anthropic endpoint on hosts without chat
            // completions), not only on the pack.
            base_url: Some(
                desired
                    .get("base_url")
                    .and_then(Value::as_str)
                    .map(crate::desired::normalize_url)
                    .unwrap_or_else(|| crate::desired::normalize_url(&pp.spec.openai_base_url)),
            ),
            model_mapping: Some(pp.spec.model_mapping.clone()),
            ..AccountPatch::default()
        };
        let id = r.host_object_id;
        let host = &*self.host;
        let patch_ref = &patch;
        let intent = Intent {
            batch_id: b.id.clone(),
            op: JournalOp::RotateKey,
            kind: ResourceKind::Account,
            natural_key: r.natural_key.clone(),
            name: new_name,
            host_object_id: Some(id),
            desired,
        };
        self.update_recorded(Step::new(intent, move |_| {
            host.update_account(id, patch_ref)
        }))
        .await?;
        for k in b.upstream_keys.iter_mut() {
            if k.hmac == old_fp.hmac {
                *k = new_fp.clone();
            }
        }
        b.updated_at = self.clock.now();
        self.batches.update_batch(&b).await?;
        Ok(b)
    }

    // -------------------------------------------------------------- the engine

    /// Fingerprints of the batch's keys plus the given ones.
    fn keys_of(&self, batch: Option<&ImportBatch>, given: &[SecretString]) -> Vec<Fingerprint> {
        let mut keys: Vec<Fingerprint> = batch.map(|b| b.upstream_keys.clone()).unwrap_or_default();
        for k in given {
            let fp = self.fingerprinter.fingerprint(k);
            if !keys.iter().any(|x| x.hmac == fp.hmac) {
                keys.push(fp);
            }
        }
        keys
    }

    /// Observe, plan, apply, record the status. `batch` is the live batch of
    /// the triple, if any.
    async fn converge(
        &self,
        lease: &HeldLease,
        batch: Option<ImportBatch>,
        pp: &PackProvider,
        mode: AccessMode,
        given: &[SecretString],
    ) -> Result<ApplyReport> {
        let before = self.host.request_count();
        let keys = self.keys_of(batch.as_ref(), given);

        let mut closure_pending = Vec::new();
        if let Some(b) = &batch {
            // Crash leftovers first.
            match self.resolve_leftovers(b).await? {
                Leftovers::Clear { closure } => closure_pending = closure,
                Leftovers::Stuck(reason) => {
                    self.batches
                        .set_batch_status(&b.id, BatchStatus::NeedsOperator, Some(reason.clone()))
                        .await?;
                    let batch = self.batches.get_batch(&b.id).await?;
                    return Ok(ApplyReport {
                        plan: batch.plan.clone(),
                        batch,
                        noop: false,
                        error: Some(reason),
                        closure_pending,
                        host_requests: self.host.request_count().saturating_sub(before),
                    });
                }
            }
        }
        // Only the caller's keys: crm keeps fingerprints, never the keys.
        let secrets: BTreeMap<String, SecretString> = given
            .iter()
            .map(|k| (self.fingerprinter.fingerprint(k).hmac, k.clone()))
            .collect();

        let snapshot = observe_bounded(&*self.host, &self.caps, &[], self.limit()).await?;
        let resources = match &batch {
            Some(b) => live(self.batches.resources(&b.id).await?),
            None => vec![],
        };
        let mut planned = plan_detailed(PlanInput {
            pack: pp,
            caps: &self.caps,
            snapshot: &snapshot,
            mode,
            keys: &keys,
            resources: &resources,
        });
        let blocked: Vec<String> = planned
            .plan
            .blocked()
            .map(|i| {
                format!(
                    "{} {}: {}",
                    i.kind,
                    i.name,
                    i.reason.as_deref().unwrap_or("blocked")
                )
            })
            .collect();
        if !blocked.is_empty() {
            return Err(ProvisionError::Blocked { reasons: blocked });
        }
        if let Some(b) = &batch
            && planned.plan.is_noop()
            && b.status == BatchStatus::Applied
            && b.pack_version == pp.pack_version
            && b.upstream_keys.len() == keys.len()
        {
            return Ok(ApplyReport {
                batch: b.clone(),
                plan: planned.plan,
                noop: true,
                error: None,
                closure_pending,
                host_requests: self.host.request_count().saturating_sub(before),
            });
        }
        // An account to create needs its key. Without it that item is
        // blocked (the batch stays resumable) and everything else proceeds.
        let missing_keys = block_missing_keys(&mut planned, &secrets);

        let now = self.clock.now();
        let mut b = match batch {
            Some(mut b) => {
                b.status = BatchStatus::Applying;
                b.status_reason = None;
                b.plan = planned.plan.clone();
                b.upstream_keys = keys.clone();
                b.updated_at = now;
                self.batches.update_batch(&b).await?;
                b
            }
            None => {
                self.batches
                    .create_batch(ImportBatch {
                        id: BatchId::new(self.ids.new_id("b")),
                        host_id: self.host_id.clone(),
                        provider: pp.provider.clone(),
                        mode,
                        pack_version: pp.pack_version.clone(),
                        pack_checksum: pp.pack_checksum.clone(),
                        status: BatchStatus::Applying,
                        status_reason: None,
                        access_status: AccessStatus::NotConfigured,
                        plan: planned.plan.clone(),
                        upstream_keys: keys.clone(),
                        created_at: now,
                        updated_at: now,
                    })
                    .await?
            }
        };

        let outcome = self
            .apply(lease, &b.id, &planned, &snapshot, pp, mode, &secrets)
            .await;
        let error = match outcome {
            Ok(()) if !missing_keys.is_empty() => {
                let reason = missing_keys.join("; ");
                let applied = self
                    .batches
                    .journal(&b.id)
                    .await?
                    .iter()
                    .any(|x| x.state == JournalState::Applied);
                b.status = if applied {
                    BatchStatus::PartiallyApplied
                } else {
                    BatchStatus::Failed
                };
                b.status_reason = Some(reason.clone());
                Some(reason)
            }
            Ok(()) => {
                b.status = BatchStatus::Applied;
                b.status_reason = None;
                b.pack_version = pp.pack_version.clone();
                b.pack_checksum = pp.pack_checksum.clone();
                None
            }
            Err(e) => {
                let stop = self.stop_status(&b.id, &e).await;
                b.status = stop.status;
                b.status_reason = Some(stop.reason.clone());
                if let ProvisionError::Store(_) = e {
                    // The journal may be behind the host: say so loudly.
                    tracing::error!(batch = %b.id, error = %e, "store failed during apply");
                }
                Some(e.to_string())
            }
        };
        b.updated_at = self.clock.now();
        self.batches.update_batch(&b).await?;
        Ok(ApplyReport {
            batch: b,
            plan: planned.plan,
            noop: false,
            error,
            closure_pending,
            host_requests: self.host.request_count().saturating_sub(before),
        })
    }

    async fn stop_status(&self, batch: &BatchId, e: &ProvisionError) -> Stop {
        if let ProvisionError::NeedsOperator { .. } = e {
            return Stop {
                status: BatchStatus::NeedsOperator,
                reason: e.to_string(),
            };
        }
        let applied = self
            .batches
            .journal(batch)
            .await
            .map(|j| j.iter().any(|x| x.state == JournalState::Applied))
            .unwrap_or(true);
        Stop {
            status: if applied {
                BatchStatus::PartiallyApplied
            } else {
                BatchStatus::Failed
            },
            reason: e.to_string(),
        }
    }

    /// Applies a plan in two host levels: the group first (everything else
    /// names its id), then the channel and every account at once (bounded by
    /// `max_concurrency`), since they only need the group's id. New accounts
    /// are created already bound to the group, so a fresh import makes one
    /// request per account, not two. Each intent is still committed before
    /// its own call; a failure stops further starts and the error is
    /// returned once the calls in flight have settled.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
        planned: &Planned,
        snapshot: &HostSnapshot,
        pp: &PackProvider,
        mode: AccessMode,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        let choice = planned
            .choice
            .clone()
            .ok_or_else(|| ProvisionError::Invalid("no platform available on this host".into()))?;
        let display = pp.spec.display_name.as_str();

        lease.heartbeat().await?;
        let group_id = self
            .apply_group(batch, planned, snapshot, pp, &choice, mode)
            .await?;

        lease.heartbeat().await?;
        enum Work<'p> {
            Channel(&'p PlanItem),
            Account(&'p PlanItem, &'p AccountSpec),
        }
        // The channel first, so it is in the first `limit` calls started.
        let work: Vec<Work<'_>> = planned
            .item(ResourceKind::Channel)
            .map(Work::Channel)
            .into_iter()
            .chain(
                planned
                    .account_items()
                    .map(|(item, spec)| Work::Account(item, spec)),
            )
            .collect();
        let choice = &choice;
        bounded(self.limit(), work, |w| async move {
            match w {
                Work::Channel(item) => {
                    self.apply_channel(batch, planned, item, snapshot, pp, choice, mode, group_id)
                        .await
                }
                Work::Account(item, spec) => {
                    self.apply_account(
                        batch, planned, item, spec, snapshot, display, group_id, secrets,
                    )
                    .await
                }
            }
        })
        .await?;
        Ok(())
    }

    /// Creates, adopts or updates the group; returns its host id.
    async fn apply_group(
        &self,
        batch: &BatchId,
        planned: &Planned,
        snapshot: &HostSnapshot,
        pp: &PackProvider,
        choice: &PlatformChoice,
        mode: AccessMode,
    ) -> Result<HostObjectId> {
        let exec = self.exec();
        let host = &*self.host;
        let group_item = planned
            .item(ResourceKind::Group)
            .ok_or_else(|| ProvisionError::Invalid("plan has no group".into()))?;
        let mut group_id = match group_item.action {
            PlanAction::Create => None,
            _ => group_item.host_object_id,
        };
        let mut gdraft = group_draft(pp, choice, mode, batch);
        // An existing group keeps the generation of its name: renaming it back
        // to the base name would hit the deleted group holding that name.
        if let Some(g) = group_item
            .host_object_id
            .and_then(|id| snapshot.groups.iter().find(|g| g.id == id))
            && crate::desired::is_group_generation(&g.name, &gdraft.name)
        {
            gdraft.name = g.name.clone();
        }
        let gd = &gdraft;
        match group_item.action {
            PlanAction::Create => {
                let a = self
                    .create_group_generation(batch, planned, group_item, &gdraft)
                    .await?;
                group_id = a.host_object_id;
                let a = a.stop_on_host_error(ResourceKind::Group, &gdraft.name)?;
                if let Some(id) = a.host_object_id {
                    self.retire(batch, planned, group_item, id).await?;
                }
            }
            PlanAction::Adopt | PlanAction::Update | PlanAction::NoOp => {
                let id = group_item
                    .host_object_id
                    .ok_or_else(|| ProvisionError::Invalid("group item without host id".into()))?;
                let marked = snapshot
                    .groups
                    .iter()
                    .find(|g| g.id == id)
                    .and_then(|g| g.description.as_deref())
                    .and_then(ownership::parse_marker)
                    .as_ref()
                    == Some(batch);
                if group_item.action == PlanAction::Adopt {
                    exec.adopt(
                        self.intent(
                            batch,
                            JournalOp::Adopt,
                            ResourceKind::Group,
                            &gdraft.name,
                            Some(id),
                            to_desired(&gdraft),
                        ),
                        group_item.reason.as_deref().unwrap_or("found by name"),
                    )
                    .await?;
                }
                if !group_item.changes.is_empty() || !marked {
                    let intent = self.intent(
                        batch,
                        JournalOp::Update,
                        ResourceKind::Group,
                        &gdraft.name,
                        Some(id),
                        to_desired(&gdraft),
                    );
                    self.update_recorded(Step::new(intent, move |_| host.update_group(id, gd)))
                        .await?;
                }
            }
            PlanAction::Delete | PlanAction::Blocked => {}
        }
        group_id
            .ok_or_else(|| ProvisionError::Invalid("the group has no host id after apply".into()))
    }

    /// Creates the batch group under its deterministic name or, when the
    /// host refuses that name although no listing shows a group with it, under
    /// the next generation of it (`<name>-g2`, `-g3`, ...). sub2api d3e73f1
    /// deletes groups softly and its unique index on the name still covers
    /// the deleted rows (`internal/repository/group_repo.go`), so a name crm
    /// rolled back stays taken for ever. Each generation is its own journal
    /// intent whose natural key is that name: the refusals stay in the
    /// journal, and an interrupted create is found again by name.
    /// A conflict with a group the listing does show is a real conflict and
    /// is returned as it is.
    async fn create_group_generation(
        &self,
        batch: &BatchId,
        planned: &Planned,
        group_item: &PlanItem,
        gdraft: &GroupDraft,
    ) -> Result<crate::journal::Applied<crm_domain::observed::HostGroup>> {
        let exec = self.exec();
        let host = &*self.host;
        let mut draft = gdraft.clone();
        let mut generation = 1;
        loop {
            let name = draft.name.clone();
            let mut intent = self.intent(
                batch,
                JournalOp::Create,
                ResourceKind::Group,
                &name,
                None,
                to_desired(&draft),
            );
            intent.natural_key = match planned.replaces(group_item) {
                Some(old) => crate::journal::recreation_key(&name, old),
                None => name.clone(),
            };
            let d = &draft;
            let lookup_name = name.clone();
            let run = exec
                .run(
                    Step::new(intent, move |_| host.create_group(d)).with_lookup(move || {
                        let name = lookup_name.clone();
                        async move { group_ids_named(host, &name).await }.boxed()
                    }),
                )
                .await;
            let tombstoned = match &run {
                Err(ProvisionError::StepFailed {
                    source: HostError::Conflict { .. },
                    ..
                }) if generation < GROUP_GENERATIONS => {
                    group_ids_named(host, &name).await?.is_empty()
                }
                _ => false,
            };
            if !tombstoned {
                return run;
            }
            generation += 1;
            draft.name = group_generation_name(&gdraft.name, generation);
        }
    }

    /// Creates, adopts or updates the channel of `group_id`.
    #[allow(clippy::too_many_arguments)]
    async fn apply_channel(
        &self,
        batch: &BatchId,
        planned: &Planned,
        item: &PlanItem,
        snapshot: &HostSnapshot,
        pp: &PackProvider,
        choice: &PlatformChoice,
        mode: AccessMode,
        group_id: HostObjectId,
    ) -> Result<()> {
        let exec = self.exec();
        let host = &*self.host;
        let cdraft = channel_draft(pp, choice, mode, batch, Some(group_id))?;
        let cd = &cdraft;
        match item.action {
            PlanAction::Create => {
                let name = cdraft.name.clone();
                let mut intent = self.intent(
                    batch,
                    JournalOp::Create,
                    ResourceKind::Channel,
                    &cdraft.name,
                    None,
                    to_desired(&cdraft),
                );
                intent.natural_key = planned.intent_key(item);
                let a = exec
                    .run(
                        Step::new(intent, move |_| host.create_channel(cd)).with_lookup(
                            move || {
                                let name = name.clone();
                                async move {
                                    Ok(host
                                        .list_channels()
                                        .await?
                                        .into_iter()
                                        .filter(|c| c.name == name)
                                        .map(|c| c.id)
                                        .collect())
                                }
                                .boxed()
                            },
                        ),
                    )
                    .await?
                    .stop_on_host_error(ResourceKind::Channel, &cdraft.name)?;
                if let Some(id) = a.host_object_id {
                    self.retire(batch, planned, item, id).await?;
                }
            }
            PlanAction::Adopt | PlanAction::Update | PlanAction::NoOp => {
                let id = item.host_object_id.ok_or_else(|| {
                    ProvisionError::Invalid("channel item without host id".into())
                })?;
                let observed = snapshot
                    .channels
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .find(|c| c.id == id);
                let marked = observed
                    .and_then(|c| c.description.as_deref())
                    .and_then(ownership::parse_marker)
                    .as_ref()
                    == Some(batch);
                // The group may be new (e.g. recreated): the binding changed.
                let rebound = observed.is_some_and(|c| c.group_ids != vec![group_id]);
                if item.action == PlanAction::Adopt {
                    exec.adopt(
                        self.intent(
                            batch,
                            JournalOp::Adopt,
                            ResourceKind::Channel,
                            &cdraft.name,
                            Some(id),
                            to_desired(&cdraft),
                        ),
                        item.reason.as_deref().unwrap_or("found by name"),
                    )
                    .await?;
                }
                if !item.changes.is_empty() || !marked || rebound {
                    let intent = self.intent(
                        batch,
                        JournalOp::Update,
                        ResourceKind::Channel,
                        &cdraft.name,
                        Some(id),
                        to_desired(&cdraft),
                    );
                    self.update_recorded(Step::new(intent, move |_| host.update_channel(id, cd)))
                        .await?;
                }
            }
            PlanAction::Delete | PlanAction::Blocked => {}
        }
        Ok(())
    }

    /// One account item: create it with its key, already bound to
    /// `group_id`; or adopt / update the observed one and bind it to the
    /// group if it is not yet. Nothing for items with nothing on the host
    /// (blocked, or gone meanwhile).
    #[allow(clippy::too_many_arguments)]
    async fn apply_account(
        &self,
        batch: &BatchId,
        planned: &Planned,
        item: &PlanItem,
        spec: &AccountSpec,
        snapshot: &HostSnapshot,
        display: &str,
        group_id: HostObjectId,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        let exec = self.exec();
        let host = &*self.host;
        let observed = item
            .host_object_id
            .and_then(|id| snapshot.accounts.iter().find(|a| a.id == id));
        match item.action {
            PlanAction::Create => {
                let secret = secrets.get(&spec.key.hmac).cloned().ok_or_else(|| {
                    ProvisionError::Invalid(format!("upstream key {} is missing", spec.key))
                })?;
                let groups = vec![group_id];
                let draft = spec.draft(batch, display, secret, groups.clone());
                let intent = Intent {
                    batch_id: batch.clone(),
                    op: JournalOp::Create,
                    kind: ResourceKind::Account,
                    natural_key: planned.intent_key(item),
                    name: spec.name.clone(),
                    host_object_id: None,
                    desired: spec.desired(batch, display, &groups),
                };
                let d = &draft;
                let a = exec
                    .run(
                        Step::new(intent, move |key| host.create_account(d, key))
                            .with_lookup(self.account_lookup(&item.natural_key)),
                    )
                    .await?
                    .stop_on_host_error(ResourceKind::Account, &spec.name)?;
                let id = a
                    .host_object_id
                    .ok_or_else(|| ProvisionError::Invalid("host returned no account id".into()))?;
                self.retire(batch, planned, item, id).await?;
                Ok(())
            }
            PlanAction::Adopt | PlanAction::Update | PlanAction::NoOp => {
                let Some(current) = observed else {
                    return Ok(());
                };
                let id = current.id;
                if item.action == PlanAction::Adopt {
                    exec.adopt(
                        Intent {
                            batch_id: batch.clone(),
                            op: JournalOp::Adopt,
                            kind: ResourceKind::Account,
                            natural_key: spec.natural_key.clone(),
                            name: spec.name.clone(),
                            host_object_id: Some(id),
                            desired: keep_notes(
                                spec.desired(batch, display, &current.group_ids),
                                current.notes.as_deref(),
                            ),
                        },
                        item.reason.as_deref().unwrap_or("found by natural key"),
                    )
                    .await?;
                }
                if needs_account_update(item) {
                    self.update_account(batch, spec, current, display).await?;
                }
                if !current.group_ids.contains(&group_id) {
                    self.bind_account(batch, spec, current, display, group_id)
                        .await?;
                }
                Ok(())
            }
            PlanAction::Delete | PlanAction::Blocked => Ok(()),
        }
    }

    /// Adds `group_id` to an existing account's groups.
    async fn bind_account(
        &self,
        batch: &BatchId,
        spec: &AccountSpec,
        current: &HostAccount,
        display: &str,
        group_id: HostObjectId,
    ) -> Result<()> {
        let mut bound = current.group_ids.clone();
        bound.push(group_id);
        let desired = keep_notes(
            spec.desired(batch, display, &bound),
            current.notes.as_deref(),
        );
        let intent = Intent {
            batch_id: batch.clone(),
            op: JournalOp::Bind,
            kind: ResourceKind::Account,
            natural_key: spec.natural_key.clone(),
            name: spec.name.clone(),
            host_object_id: Some(current.id),
            desired,
        };
        let patch = AccountPatch {
            group_ids: Some(bound),
            ..AccountPatch::default()
        };
        let (p, id, host) = (&patch, current.id, &*self.host);
        self.update_recorded(Step::new(intent, move |_| host.update_account(id, p)))
            .await
    }

    /// A re-created object replaces the recorded one that is gone: that
    /// record is marked deleted (the new one was recorded by the journal).
    async fn retire(
        &self,
        batch: &BatchId,
        planned: &Planned,
        item: &PlanItem,
        new: HostObjectId,
    ) -> Result<()> {
        if let Some(old) = planned.replaces(item)
            && old != new
        {
            self.batches
                .set_resource_state(batch, item.kind, old, ResourceState::Deleted)
                .await?;
        }
        Ok(())
    }

    fn intent(
        &self,
        batch: &BatchId,
        op: JournalOp,
        kind: ResourceKind,
        name: &str,
        id: Option<HostObjectId>,
        desired: Value,
    ) -> Intent {
        Intent {
            batch_id: batch.clone(),
            op,
            kind,
            natural_key: name.to_owned(),
            name: name.to_owned(),
            host_object_id: id,
            desired,
        }
    }

    async fn update_account(
        &self,
        batch: &BatchId,
        spec: &AccountSpec,
        current: &HostAccount,
        display: &str,
    ) -> Result<()> {
        let mut extra = current.extra.clone();
        extra.extend(spec.extra.clone());
        let patch = AccountPatch {
            model_mapping: Some(spec.model_mapping.clone()),
            extra: Some(extra),
            ..AccountPatch::default()
        };
        let id = current.id;
        let desired = keep_notes(
            spec.desired(batch, display, &current.group_ids),
            current.notes.as_deref(),
        );
        let intent = Intent {
            batch_id: batch.clone(),
            op: JournalOp::Update,
            kind: ResourceKind::Account,
            natural_key: spec.natural_key.clone(),
            name: spec.name.clone(),
            host_object_id: Some(id),
            desired,
        };
        let host = &*self.host;
        let p = &patch;
        self.update_recorded(Step::new(intent, move |_| host.update_account(id, p)))
            .await
    }

    /// Runs a journaled update of an object the batch records, then records
    /// the intent's desired spec as the object's (reconcile compares with it).
    async fn update_recorded<T: crate::HostObject + Send>(&self, step: Step<'_, T>) -> Result<()> {
        let i = &step.intent;
        let id = i.host_object_id.ok_or_else(|| {
            ProvisionError::Invalid(format!("update of {} {} without a host id", i.kind, i.name))
        })?;
        let (batch, kind, digest, desired) = (
            i.batch_id.clone(),
            i.kind,
            i.spec_digest(),
            i.desired.clone(),
        );
        self.exec().run(step).await?;
        self.batches
            .update_resource_desired(&batch, kind, id, digest, desired)
            .await?;
        Ok(())
    }

    /// Fresh natural-key lookup of accounts: `platform|base_url|hmac`.
    pub(crate) fn account_lookup(&self, natural_key: &str) -> LookupFn<'_> {
        let nk = natural_key.to_owned();
        let host = &*self.host;
        Box::new(move || {
            let nk = nk.clone();
            async move {
                let Some((platform, base, key)) = split_account_nk(&nk) else {
                    return Ok(vec![]);
                };
                Ok(host
                    .list_accounts()
                    .await?
                    .into_iter()
                    .filter(|a| account_matches(a, &platform, &base, &key))
                    .map(|a| a.id)
                    .collect())
            }
            .boxed()
        })
    }

    /// A fresh natural-key lookup for a journal entry of a provisioning kind.
    pub(crate) fn lookup_for(&self, e: &JournalEntry) -> Option<LookupFn<'_>> {
        let host = &*self.host;
        let name = e.name.clone();
        match e.kind {
            ResourceKind::Account => Some(self.account_lookup(&e.natural_key)),
            ResourceKind::Group => Some(Box::new(move || {
                let name = name.clone();
                async move {
                    Ok(host
                        .list_groups()
                        .await?
                        .into_iter()
                        .filter(|g| g.name == name)
                        .map(|g| g.id)
                        .collect())
                }
                .boxed()
            })),
            ResourceKind::Channel => Some(Box::new(move || {
                let name = name.clone();
                async move {
                    Ok(host
                        .list_channels()
                        .await?
                        .into_iter()
                        .filter(|c| c.name == name)
                        .map(|c| c.id)
                        .collect())
                }
                .boxed()
            })),
            _ => None,
        }
    }

    /// Resolves `pending` entries left by a crash (and re-checks
    /// `needs_operator` creates an operator may have fixed).
    pub(crate) async fn resolve_leftovers(&self, b: &ImportBatch) -> Result<Leftovers> {
        let exec = self.exec();
        let mut closure = Vec::new();
        for e in self.batches.journal(&b.id).await? {
            let stuck_create =
                e.state == JournalState::NeedsOperator && matches!(e.op, JournalOp::Create);
            if e.state != JournalState::Pending && !stuck_create {
                continue;
            }
            let Some(lookup) = self.lookup_for(&e) else {
                if e.state == JournalState::Pending {
                    closure.push(e.seq);
                }
                continue;
            };
            let resolved = exec.recover_pending(&e, Some(&lookup)).await?;
            if resolved.state == JournalState::NeedsOperator {
                return Ok(Leftovers::Stuck(format!(
                    "journal entry {} ({} {}): {}",
                    resolved.seq,
                    resolved.kind,
                    resolved.name,
                    resolved.detail.unwrap_or_default()
                )));
            }
        }
        Ok(Leftovers::Clear { closure })
    }
}

pub(crate) enum Leftovers {
    Clear { closure: Vec<u32> },
    Stuck(String),
}

/// crm never rewrites the notes of an account it found (they may carry the
/// marker of another live batch sharing it), so its desired spec keeps them.
fn keep_notes(mut desired: Value, observed: Option<&str>) -> Value {
    if let Some(n) = observed
        && desired.get("notes").is_some()
    {
        desired["notes"] = json!(n);
    }
    desired
}

/// The field older records used for a sealed upstream key; removed when met.
pub(crate) const LEGACY_SEALED_KEY_FIELD: &str = "upstream_key_sealed";

/// Blocks account creations whose key the caller did not give; returns one
/// reason per blocked item (for the batch status).
fn block_missing_keys(
    planned: &mut Planned,
    secrets: &BTreeMap<String, SecretString>,
) -> Vec<String> {
    let specs = planned.accounts.clone();
    let mut reasons = Vec::new();
    let items = planned
        .plan
        .items
        .iter_mut()
        .filter(|i| i.kind == ResourceKind::Account);
    for (item, spec) in items.zip(specs.iter()) {
        if item.action == PlanAction::Create && !secrets.contains_key(&spec.key.hmac) {
            let reason = missing_key_reason(&spec.key, &spec.name);
            item.action = PlanAction::Blocked;
            item.reason = Some(reason.clone());
            reasons.push(format!("{} {}: {reason}", item.kind, item.name));
        }
    }
    reasons
}

/// Why an account cannot be created without its key, and what to do.
pub fn missing_key_reason(key: &Fingerprint, account: &str) -> String {
    format!(
        "account {account} must be created and crm keeps upstream keys only as fingerprints: supply the upstream key {key} with --upstream-keys-file and resume"
    )
}

fn needs_account_update(item: &PlanItem) -> bool {
    item.changes.iter().any(|c| c.field != "group_ids")
}

/// Runs `f` over `items` with at most `limit` in flight. Once one fails no
/// further item is started; the calls in flight settle, then the first
/// error is returned (a `needs_operator` one before any other, since it
/// decides the batch status). Results come back in `items` order.
pub(crate) async fn bounded<I, T, F, Fut>(limit: usize, items: Vec<I>, f: F) -> Result<Vec<T>>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let stop = &stop;
    // Futures are built first (lazy: nothing runs before it is polled),
    // then polled at most `limit` at once.
    let calls: Vec<_> = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            let call = f(item);
            async move {
                if stop.load(Ordering::SeqCst) {
                    return (n, None);
                }
                let r = call.await;
                if r.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                (n, Some(r))
            }
        })
        .collect();
    let mut done: Vec<(usize, Option<Result<T>>)> = futures::stream::iter(calls)
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    done.sort_by_key(|(n, _)| *n);
    let mut out = Vec::new();
    let mut error: Option<ProvisionError> = None;
    for (_, r) in done {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                let stronger = matches!(e, ProvisionError::NeedsOperator { .. })
                    && !matches!(error, Some(ProvisionError::NeedsOperator { .. }));
                if error.is_none() || stronger {
                    error = Some(e);
                }
            }
            None => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Live resources only.
pub(crate) fn live(all: Vec<ManagedResource>) -> Vec<ManagedResource> {
    all.into_iter()
        .filter(|r| r.state == ResourceState::Live)
        .collect()
}

/// The hmac part of an account natural key.
fn hmac_of_nk(nk: &str) -> &str {
    crate::journal::base_natural_key(nk)
        .rsplit('|')
        .next()
        .unwrap_or("")
}

/// `platform|base_url|hmac` back into its parts.
pub(crate) fn split_account_nk(nk: &str) -> Option<(crm_domain::Platform, String, Fingerprint)> {
    let nk = crate::journal::base_natural_key(nk);
    let (rest, hmac) = nk.rsplit_once('|')?;
    let (platform, base) = rest.split_once('|')?;
    Some((
        crm_domain::Platform::new(platform),
        base.to_owned(),
        Fingerprint {
            hmac: hmac.to_owned(),
            last4: String::new(),
        },
    ))
}

/// How many generations of a group name crm tries on a host that keeps
/// deleted names (each one a rollback of the same provider and mode).
const GROUP_GENERATIONS: u32 = 20;

/// Ids of the groups named `name`, from a fresh listing.
async fn group_ids_named(
    host: &dyn HostApi,
    name: &str,
) -> crm_domain::ports::HostResult<Vec<HostObjectId>> {
    Ok(host
        .list_groups()
        .await?
        .into_iter()
        .filter(|g| g.name == name)
        .map(|g| g.id)
        .collect())
}
