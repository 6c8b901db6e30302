//! The engine of an import, resume or upgrade: observe, plan, apply in
//! docs/design.md's order (accounts → group → account group binding →
//! channel), record the batch status. The per-kind steps are in
//! [`crate::steps`].

use crate::concurrency::bounded;
use crate::desired::{AccountSpec, PackProvider};
use crate::error::{ProvisionError, Result};
use crate::lease::HeldLease;
use crate::lookup::Leftovers;
use crate::planner::{PlanInput, Planned, plan_detailed};
use crate::provisioner::{ApplyReport, Provisioner, has_monitor, live};
use crm_domain::batch::ImportBatch;
use crm_domain::observed::HostSnapshot;
use crm_domain::plan::PlanItem;

use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, Fingerprint, JournalState, PlanAction,
    ResourceKind, SecretString,
};
use std::collections::BTreeMap;

/// Where the apply stopped, for the batch status.
struct Stop {
    status: BatchStatus,
    reason: String,
}

impl Provisioner {
    /// Observe, plan, apply, record the status. `batch` is the live batch of
    /// the triple, if any.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn converge(
        &self,
        lease: &HeldLease,
        batch: Option<ImportBatch>,
        pp: &PackProvider,
        mode: AccessMode,
        given: &[SecretString],
        accept_url_change: bool,
        monitor: bool,
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

        let resources = match &batch {
            Some(b) => live(self.batches.resources(&b.id).await?),
            None => vec![],
        };
        let snapshot = self.observe(monitor || has_monitor(&resources)).await?;
        let mut planned = plan_detailed(PlanInput {
            pack: pp,
            caps: &self.caps,
            snapshot: &snapshot,
            mode,
            keys: &keys,
            resources: &resources,
            monitor,
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
        let url_changes = planned.plan.url_changes();
        if !url_changes.is_empty() && !accept_url_change {
            return Err(ProvisionError::UrlChangeUnconfirmed {
                provider: pp.provider.clone(),
                pack_version: pp.pack_version.clone(),
                changes: url_changes,
            });
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

        // The monitor last: it watches the upstream the accounts relay to.
        if let (Some(item), Some(spec)) = (planned.item(ResourceKind::Monitor), &planned.monitor) {
            lease.heartbeat().await?;
            self.apply_monitor(batch, planned, item, spec, snapshot, display, secrets)
                .await?;
        }
        Ok(())
    }
}

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
    // A new monitor checks with one of the batch's keys: the planned one, or
    // else the first account's key the caller gave.
    let given = |k: &Fingerprint| secrets.contains_key(&k.hmac);
    if let Some(spec) = planned.monitor.as_mut()
        && let Some(item) = planned
            .plan
            .items
            .iter_mut()
            .find(|i| i.kind == ResourceKind::Monitor && i.action == PlanAction::Create)
        && !given(&spec.key)
    {
        match specs.iter().map(|a| &a.key).find(|k| given(k)) {
            Some(k) => {
                spec.key = k.clone();
                item.reason = Some(format!(
                    "the host checks {} at {} every {} s with upstream key {}",
                    spec.primary_model, spec.endpoint, spec.interval_seconds, spec.key
                ));
            }
            None => {
                let reason = format!(
                    "the monitor {} must be created with one of the batch's upstream keys and crm keeps them only as fingerprints: supply the upstream key {} with --upstream-keys-file and resume",
                    spec.name, spec.key
                );
                item.action = PlanAction::Blocked;
                item.reason = Some(reason.clone());
                reasons.push(format!("{} {}: {reason}", item.kind, item.name));
            }
        }
    }
    reasons
}

/// Why an account cannot be created without its key, and what to do.
pub(crate) fn missing_key_reason(key: &Fingerprint, account: &str) -> String {
    format!(
        "account {account} must be created and crm keeps upstream keys only as fingerprints: supply the upstream key {key} with --upstream-keys-file and resume"
    )
}
