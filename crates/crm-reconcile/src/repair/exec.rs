//! Running a repair: observe, diff and plan under the scope's lease, then
//! each step of the plan through crm-provision's journal executor, stopping
//! at the first failure like an import does.

use super::op::{Op, RepairOptions};
use super::plan::plan_ops;
use crate::desired::{self, DesiredAccount, DesiredMonitor};
use crate::diff::Recorded;
use crate::error::{ReconcileError, Result};
use crate::run::{self, Beside, Held, Observation, Outcome, Ports, RUN_LEASE_TTL};
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::observed::{AccountDraft, AccountPatch, MonitorDraft, MonitorPatch};
use crm_domain::ownership::NAME_PREFIX;
use crm_domain::plan::Plan;
use crm_domain::ports::{HostApi, HostError, HostResult, StoreError};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, HostObjectId, JournalOp, PlanAction,
    ProviderRef, ReconcileRunId, ResourceKind, ResourceState, SecretString,
};
use crm_provision::desired::AccountKey;
use crm_provision::lookup::{channel_ids_named, group_ids_named, monitor_ids_named};
use crm_provision::{Intent, JournalExecutor, ProvisionError, Step};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a repair found, planned and did.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairReport {
    /// The persisted run: the drift found before repairing; `repaired` is
    /// true when at least one mutation was applied.
    pub run: ReconcileRun,
    pub plan: Plan,
    /// Plan items applied, in order (`kind name: how`).
    pub applied: Vec<String>,
}

/// Observes, diffs, plans and (when asked) applies a repair of `scope`, all
/// under the scope's lease; persists the run.
pub async fn repair(
    ports: &Ports,
    host: &HostRecord,
    api: &dyn HostApi,
    scope: ReconcileScope,
    opts: RepairOptions,
) -> Result<RepairReport> {
    let held = Held::open(
        ports,
        api,
        &scope,
        vec![],
        &opts.holder,
        "repair",
        Beside::NoImport,
    )
    .await?;
    let result = repair_locked(ports, host, api, &held.recorded, &opts, &held.lease).await;
    let run_id = ReconcileRunId::new(ports.ids.new_id("rr"));
    let (status, items, plan, applied, error) = match result {
        Ok(r) => r,
        Err(e) => {
            held.abandon(ports).await;
            return Err(e);
        }
    };
    let outcome = Outcome {
        status,
        items,
        repaired: !applied.is_empty(),
        error,
    };
    let run = held.close(ports, api, run_id, scope, outcome).await?;
    tracing::info!(run = %run.id, status = %run.status, applied = applied.len(), "reconcile repair");
    Ok(RepairReport { run, plan, applied })
}

type Locked = (
    crm_domain::ReconcileStatus,
    Vec<DriftItem>,
    Plan,
    Vec<String>,
    Option<String>,
);

async fn repair_locked(
    ports: &Ports,
    host: &HostRecord,
    api: &dyn HostApi,
    recorded: &Recorded,
    opts: &RepairOptions,
    lease: &crm_domain::LeaseId,
) -> Result<Locked> {
    let obs = run::observe(host, api, recorded, ports.host_concurrency).await;
    let (status, items) = run::assess(recorded, &obs);
    let Observation::Seen { caps, snapshot } = obs else {
        let error = match obs {
            Observation::Failed { error, .. } => Some(error),
            Observation::Seen { .. } => None,
        };
        return Ok((status, items, Plan::default(), vec![], error));
    };
    let planned = plan_ops(recorded, &snapshot, &items, opts);
    let plan = Plan {
        items: planned.iter().map(|p| p.item.clone()).collect(),
        notes: vec![],
    };
    if !opts.apply {
        return Ok((status, items, plan, vec![], None));
    }
    let mut ex = Exec {
        ports,
        keys: opts.keys(),
        api,
        caps: &caps,
        host,
        remap: BTreeMap::new(),
    };
    let mut applied = Vec::new();
    let mut error = None;
    for p in planned
        .iter()
        .filter(|p| p.op != Op::Nothing && p.item.action != PlanAction::Blocked)
    {
        // Keep the lease alive between steps; a lost lease means someone else
        // may be writing to this scope, so stop.
        let step = match ports.leases.heartbeat_lease(lease, RUN_LEASE_TTL).await {
            Ok(_) => ex.apply(&p.op).await,
            Err(e) => Err(e.into()),
        };
        match step {
            Ok(()) => applied.push(format!("{} {} {}", p.item.action, p.item.kind, p.item.name)),
            Err(e) => {
                // Stop like an import does: later steps may depend on this one.
                error = Some(format!(
                    "repair stopped at {} {}: {e}",
                    p.item.kind, p.item.name
                ));
                break;
            }
        }
    }
    Ok((status, items, plan, applied, error))
}

struct Exec<'a> {
    ports: &'a Ports,
    /// The supplied upstream keys by fingerprint hmac.
    keys: BTreeMap<String, SecretString>,
    api: &'a dyn HostApi,
    caps: &'a Capabilities,
    host: &'a HostRecord,
    /// Recreated groups: old host id -> new host id.
    remap: BTreeMap<HostObjectId, HostObjectId>,
}

fn provision(e: ProvisionError) -> ReconcileError {
    match e {
        ProvisionError::Store(s) => ReconcileError::Store(s),
        other => ReconcileError::Repair(other.to_string()),
    }
}

impl Exec<'_> {
    fn exec(&self) -> JournalExecutor<'_> {
        JournalExecutor::new(self.ports.batches.as_ref(), self.caps.idempotency_key)
    }

    fn remap(&self, ids: &[HostObjectId]) -> Vec<HostObjectId> {
        let mut out: Vec<HostObjectId> = ids
            .iter()
            .map(|g| *self.remap.get(g).unwrap_or(g))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn key(&self, hmac: &str) -> Result<SecretString> {
        self.keys.get(hmac).cloned().ok_or_else(|| {
            ReconcileError::Repair(format!(
                "the upstream key with fingerprint {} was not supplied",
                &hmac[..hmac.len().min(8)]
            ))
        })
    }

    fn intent(
        &self,
        r: &ManagedResource,
        op: JournalOp,
        id: Option<HostObjectId>,
        desired: Value,
    ) -> Intent {
        Intent {
            batch_id: r.batch_id.clone(),
            op,
            kind: r.kind,
            natural_key: r.natural_key.clone(),
            name: r.name.clone(),
            host_object_id: id,
            desired,
        }
    }

    async fn apply(&mut self, op: &Op) -> Result<()> {
        let api = self.api;
        match op {
            Op::Nothing => Ok(()),
            Op::RecreateGroup { old, draft } => {
                let mut intent = self.intent(old, JournalOp::Create, None, json!(draft));
                intent.natural_key = recreation_key(old);
                let name = draft.name.clone();
                let batch = old.batch_id.clone();
                let step =
                    Step::new(intent, move |_| api.create_group(draft)).with_lookup(move || {
                        let name = name.clone();
                        let batch = batch.clone();
                        Box::pin(async move { group_ids_named(api, &name, Some(&batch)).await })
                    });
                let applied = self.exec().run(step).await.map_err(provision)?;
                let new = applied.host_object_id.ok_or_else(|| {
                    ReconcileError::Repair("the host returned no group id".into())
                })?;
                self.remap.insert(old.host_object_id, new);
                self.retire(old).await
            }
            Op::RecreateChannel { old, draft } => {
                let mut draft = draft.clone();
                draft.group_ids = self.remap(&draft.group_ids);
                let mut intent = self.intent(old, JournalOp::Create, None, json!(draft));
                intent.natural_key = recreation_key(old);
                let name = draft.name.clone();
                let d = &draft;
                let step =
                    Step::new(intent, move |_| api.create_channel(d)).with_lookup(move || {
                        let name = name.clone();
                        Box::pin(async move { channel_ids_named(api, &name).await })
                    });
                self.exec().run(step).await.map_err(provision)?;
                self.retire(old).await
            }
            Op::RecreateAccount {
                old,
                key,
                desired,
                groups,
            } => {
                let key = self.key(key)?;
                let d: DesiredAccount = desired::read(desired);
                let groups = self.remap(groups);
                let mut spec = desired.clone();
                spec["group_ids"] = json!(groups);
                // Records written before keys were kept as fingerprints only.
                if let Some(o) = spec.as_object_mut() {
                    o.remove("upstream_key_sealed");
                }
                let draft = AccountDraft {
                    name: d.name.clone().unwrap_or_else(|| old.name.clone()),
                    notes: d.notes.clone(),
                    platform: d
                        .platform
                        .clone()
                        .unwrap_or_else(crm_domain::Platform::openai),
                    account_type: d.account_type.clone().unwrap_or_else(|| "apikey".into()),
                    base_url: d.base_url.clone().unwrap_or_default(),
                    api_key: key,
                    model_mapping: d.model_mapping.clone().unwrap_or_default(),
                    credential_fields: d.credential_fields.clone().unwrap_or_default(),
                    extra: d.extra.clone().unwrap_or_default(),
                    group_ids: groups,
                    concurrency: d.concurrency.unwrap_or(3),
                    priority: d.priority.unwrap_or(1),
                };
                let mut intent = self.intent(old, JournalOp::Create, None, spec);
                intent.natural_key = recreation_key(old);
                let key = AccountKey::of_name(&draft.name, &draft.platform, Some(&draft.base_url));
                let dr = &draft;
                let step = Step::new(intent, move |idem| api.create_account(dr, idem)).with_lookup(
                    move || {
                        let key = key.clone();
                        Box::pin(async move {
                            Ok(api
                                .list_accounts()
                                .await?
                                .into_iter()
                                .filter(|a| key.as_ref().is_some_and(|k| k.matches(a)))
                                .map(|a| a.id)
                                .collect())
                        })
                    },
                );
                self.exec().run(step).await.map_err(provision)?;
                self.retire(old).await
            }
            Op::AdoptAccount { old, found } => {
                let mut intent =
                    self.intent(old, JournalOp::Adopt, Some(*found), old.desired.clone());
                intent.natural_key = recreation_key(old);
                self.exec()
                    .adopt(
                        intent,
                        "found again by natural key with this batch's marker during repair",
                    )
                    .await
                    .map_err(provision)?;
                self.retire(old).await
            }
            Op::RestoreAccount {
                r,
                base_url,
                model_mapping,
                extra,
                groups,
                activate,
                key,
            } => {
                let api_key = match key {
                    Some(k) => Some(self.key(k)?),
                    None => None,
                };
                let patch = AccountPatch {
                    base_url: base_url.clone(),
                    api_key,
                    model_mapping: model_mapping.clone(),
                    extra: extra.clone(),
                    group_ids: groups.as_ref().map(|g| self.remap(g)),
                    status: activate.then(|| "active".to_owned()),
                    ..AccountPatch::default()
                };
                let op = if groups.is_some()
                    && base_url.is_none()
                    && model_mapping.is_none()
                    && extra.is_none()
                    && !activate
                    && key.is_none()
                {
                    JournalOp::Bind
                } else {
                    JournalOp::Update
                };
                let intent = self.intent(r, op, Some(r.host_object_id), r.desired.clone());
                let id = r.host_object_id;
                let p = &patch;
                self.exec()
                    .run(Step::new(intent, move |_| api.update_account(id, p)))
                    .await
                    .map_err(provision)?;
                self.rebase_desired(r).await
            }
            Op::RestoreGroup { r, draft } => {
                let intent = self.intent(
                    r,
                    JournalOp::Update,
                    Some(r.host_object_id),
                    r.desired.clone(),
                );
                let id = r.host_object_id;
                self.exec()
                    .run(Step::new(intent, move |_| api.update_group(id, draft)))
                    .await
                    .map_err(provision)?;
                Ok(())
            }
            Op::RestoreChannel { r, draft } => {
                let mut draft = draft.clone();
                draft.group_ids = self.remap(&draft.group_ids);
                let intent =
                    self.intent(r, JournalOp::Update, Some(r.host_object_id), json!(draft));
                let id = r.host_object_id;
                let d = &draft;
                self.exec()
                    .run(Step::new(intent, move |_| api.update_channel(id, d)))
                    .await
                    .map_err(provision)?;
                self.rebase_desired(r).await
            }
            Op::RecreateMonitor { old, key } => {
                let key = self.key(key)?;
                let draft = monitor_draft(old, key);
                let mut intent = self.intent(old, JournalOp::Create, None, old.desired.clone());
                intent.natural_key = recreation_key(old);
                let name = draft.name.clone();
                let d = &draft;
                let step =
                    Step::new(intent, move |_| api.create_monitor(d)).with_lookup(move || {
                        let name = name.clone();
                        Box::pin(async move { monitor_ids_named(api, &name).await })
                    });
                self.exec().run(step).await.map_err(provision)?;
                self.retire(old).await
            }
            Op::RestoreMonitor { r } => {
                let patch = monitor_patch(r);
                let intent = self.intent(
                    r,
                    JournalOp::Update,
                    Some(r.host_object_id),
                    r.desired.clone(),
                );
                let (id, p) = (r.host_object_id, &patch);
                self.exec()
                    .run(Step::new(intent, move |_| api.update_monitor(id, p)))
                    .await
                    .map_err(provision)?;
                Ok(())
            }
            Op::Disable { batch, id, name } => {
                let intent = Intent {
                    batch_id: batch.clone(),
                    op: JournalOp::Disable,
                    kind: ResourceKind::Account,
                    natural_key: format!("{name}#{id}"),
                    name: name.clone(),
                    host_object_id: Some(*id),
                    desired: json!({"status": "inactive", "schedulable": false}),
                };
                let id = *id;
                let step = Step::new(intent, move |_| {
                    Box::pin(async move {
                        let patch = AccountPatch {
                            status: Some("inactive".into()),
                            ..AccountPatch::default()
                        };
                        let a = api.update_account(id, &patch).await?;
                        api.set_account_schedulable(id, false).await?;
                        Ok(a)
                    })
                });
                self.exec().run(step).await.map_err(provision)?;
                Ok(())
            }
            Op::Clear {
                r,
                error,
                schedulable,
            } => {
                let intent = self.intent(
                    r,
                    JournalOp::Update,
                    Some(r.host_object_id),
                    json!({"clear_error": error, "schedulable": schedulable}),
                );
                let (id, error, schedulable) = (r.host_object_id, *error, *schedulable);
                let step = Step::new(intent, move |_| {
                    Box::pin(async move {
                        if error {
                            api.clear_account_error(id).await?;
                        }
                        if schedulable {
                            api.set_account_schedulable(id, true).await?;
                        }
                        Ok(())
                    })
                });
                self.exec().run(step).await.map_err(provision)?;
                Ok(())
            }
            Op::Prune {
                batch,
                kind,
                id,
                name,
            } => {
                self.ensure_batch(batch, name).await?;
                let intent = Intent {
                    batch_id: batch.clone(),
                    op: JournalOp::Delete,
                    kind: *kind,
                    natural_key: format!("{name}#{id}"),
                    name: name.clone(),
                    host_object_id: Some(*id),
                    desired: json!({"prune": "unmanaged_leftover"}),
                };
                let (kind, id) = (*kind, *id);
                let step = Step::new(intent, move |_| Box::pin(delete(api, kind, id)));
                self.exec().run(step).await.map_err(provision)?;
                if still_there(api, kind, id).await? {
                    return Err(ReconcileError::Repair(format!(
                        "{kind} #{id} was deleted but the host still lists it"
                    )));
                }
                Ok(())
            }
        }
    }

    /// The recorded resource a recreation or adoption replaced is gone.
    async fn retire(&self, old: &ManagedResource) -> Result<()> {
        self.ports
            .batches
            .set_resource_state(
                &old.batch_id,
                old.kind,
                old.host_object_id,
                ResourceState::Deleted,
            )
            .await?;
        Ok(())
    }

    /// Rewrites recreated group ids inside a resource's desired spec.
    async fn rebase_desired(&self, r: &ManagedResource) -> Result<()> {
        let Some(ids) = r
            .desired
            .get("group_ids")
            .and_then(|v| serde_json::from_value::<Vec<HostObjectId>>(v.clone()).ok())
        else {
            return Ok(());
        };
        let new = self.remap(&ids);
        if new == ids || self.remap.is_empty() {
            return Ok(());
        }
        let mut desired = r.desired.clone();
        desired["group_ids"] = json!(new);
        let digest = crm_provision::journal::spec_digest(&desired);
        self.ports
            .batches
            .update_resource_desired(&r.batch_id, r.kind, r.host_object_id, None, digest, desired)
            .await?;
        Ok(())
    }

    /// Makes sure the journal has a batch to hold a leftover's deletion.
    async fn ensure_batch(&self, id: &BatchId, name: &str) -> Result<()> {
        match self.ports.batches.get_batch(id).await {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let now = self.ports.clock.now();
        self.ports
            .batches
            .create_batch(ImportBatch {
                id: id.clone(),
                host_id: self.host.id.clone(),
                provider: provider_from_name(name),
                mode: AccessMode::SelfService,
                pack_version: String::new(),
                pack_checksum: String::new(),
                status: BatchStatus::RolledBack,
                status_reason: Some(format!(
                    "residue found on host {} by reconcile; crm had no record of this batch, so this record only holds the prune journal",
                    self.host.name
                )),
                access_status: AccessStatus::NotConfigured,
                plan: Plan::default(),
                upstream_keys: vec![],
                created_at: now,
                updated_at: now,
            })
            .await?;
        Ok(())
    }
}

/// The journal natural key of a recreation of `old`: crm-provision's
/// [`crm_provision::journal::recreation_key`] (`<natural key>~recreated-from-<old id>`),
/// the same rule a re-import uses, so both crates key a re-creation alike.
pub fn recreation_key(old: &ManagedResource) -> String {
    crm_provision::journal::recreation_key(&old.natural_key, old.host_object_id)
}

/// `crm-<pack>.<provider>-<suffix>` -> `pack/provider`, for residue records.
pub fn provider_from_name(name: &str) -> ProviderRef {
    name.strip_prefix(NAME_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .map(|(pack, rest)| {
            let provider = rest.rsplit_once('-').map_or(rest, |(p, _)| p);
            ProviderRef::new(pack, provider)
        })
        .filter(|p| !p.pack.as_str().is_empty() && !p.provider.as_str().is_empty())
        .unwrap_or_else(|| ProviderRef::new("unknown", "unknown"))
}

/// The create body of a recorded monitor, with its upstream key.
fn monitor_draft(old: &ManagedResource, key: SecretString) -> MonitorDraft {
    let d: DesiredMonitor = desired::read(&old.desired);
    MonitorDraft {
        name: d.name.unwrap_or_else(|| old.name.clone()),
        provider: d
            .provider
            .unwrap_or_else(|| crm_provision::monitor::MONITOR_PROVIDER.into()),
        api_mode: d
            .api_mode
            .unwrap_or_else(|| crm_provision::monitor::MONITOR_API_MODE.into()),
        endpoint: d.endpoint.unwrap_or_default(),
        api_key: key,
        primary_model: d.primary_model.unwrap_or_default(),
        extra_models: vec![],
        group_name: d.group_name.unwrap_or_default(),
        enabled: d.enabled.unwrap_or(true),
        interval_seconds: d
            .interval_seconds
            .unwrap_or(crm_provision::monitor::MONITOR_INTERVAL_SECS),
    }
}

/// The update that writes a recorded monitor's fields back (no key).
fn monitor_patch(r: &ManagedResource) -> MonitorPatch {
    let d: DesiredMonitor = desired::read(&r.desired);
    MonitorPatch {
        name: d.name,
        endpoint: d.endpoint,
        api_key: None,
        primary_model: d.primary_model,
        group_name: d.group_name,
        enabled: d.enabled,
        interval_seconds: d.interval_seconds,
    }
}

async fn delete(api: &dyn HostApi, kind: ResourceKind, id: HostObjectId) -> HostResult<()> {
    match kind {
        ResourceKind::Account => api.delete_account(id).await,
        ResourceKind::Group => api.delete_group(id).await,
        ResourceKind::Channel => api.delete_channel(id).await,
        ResourceKind::User => api.delete_user(id).await,
        ResourceKind::Subscription => api.revoke_subscription(id).await,
        ResourceKind::Monitor => api.delete_monitor(id).await,
        ResourceKind::UserApiKey | ResourceKind::BalanceGrant => Err(HostError::Validation {
            message: format!("crm cannot delete a {kind} by itself"),
        }),
    }
}

/// A fresh list to confirm a deletion.
async fn still_there(api: &dyn HostApi, kind: ResourceKind, id: HostObjectId) -> Result<bool> {
    Ok(match kind {
        ResourceKind::Account => api.list_accounts().await?.iter().any(|a| a.id == id),
        ResourceKind::Group => api.list_groups().await?.iter().any(|g| g.id == id),
        ResourceKind::Channel => match api.list_channels().await {
            Ok(c) => c.iter().any(|c| c.id == id),
            Err(HostError::RouteMissing { .. }) => false,
            Err(e) => return Err(e.into()),
        },
        ResourceKind::User => api.list_users(None).await?.iter().any(|u| u.id == id),
        ResourceKind::Monitor => match api.list_monitors().await {
            Ok(m) => m.iter().any(|m| m.id == id),
            Err(HostError::RouteMissing { .. }) => false,
            Err(e) => return Err(e.into()),
        },
        _ => false,
    })
}
