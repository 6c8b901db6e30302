//! One journaled step per plan item: create, adopt, update or bind the
//! group, the channel and each account.

use crate::desired::PlatformChoice;
use crate::desired::{
    AccountSpec, PackProvider, channel_draft, group_draft, group_generation_name, to_desired,
};
use crate::error::{ProvisionError, Result};
use crate::journal::{Intent, Step};
use crate::lookup::{channel_ids_named, group_ids_named, monitor_ids_named};
use crate::monitor::MonitorSpec;
use crate::planner::Planned;
use crate::provisioner::Provisioner;
use crm_domain::observed::{AccountPatch, GroupDraft, HostAccount, HostSnapshot};
use crm_domain::ownership;
use crm_domain::plan::{BASE_URL_FIELD, PlanItem};
use crm_domain::ports::HostError;
use crm_domain::{
    AccessMode, BatchId, HostObjectId, JournalOp, PlanAction, ResourceKind, ResourceState,
    SecretString,
};
use futures::FutureExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl Provisioner {
    /// Creates, adopts or updates the group; returns its host id.
    pub(crate) async fn apply_group(
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
                        async move { group_ids_named(host, &name, None).await }.boxed()
                    }),
                )
                .await;
            let tombstoned = match &run {
                Err(ProvisionError::StepFailed {
                    source: HostError::Conflict { .. },
                    ..
                }) if generation < GROUP_GENERATIONS => {
                    group_ids_named(host, &name, None).await?.is_empty()
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
    pub(crate) async fn apply_channel(
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
                                async move { channel_ids_named(host, &name).await }.boxed()
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
    pub(crate) async fn apply_account(
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
                    // Only a plan whose URL change was confirmed gets here
                    // with one (`Provisioner::converge`).
                    let moves = item.changes.iter().any(|c| c.field == BASE_URL_FIELD);
                    self.update_account(batch, spec, current, display, moves)
                        .await?;
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

    /// The batch's channel monitor: create it with one of the batch's
    /// upstream keys (journaled like every create: the intent first, a
    /// crash resolved by its name), or adopt / update the observed one. A
    /// monitor has no notes: crm's marker is in its `group_name`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_monitor(
        &self,
        batch: &BatchId,
        planned: &Planned,
        item: &PlanItem,
        spec: &MonitorSpec,
        snapshot: &HostSnapshot,
        display: &str,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        let exec = self.exec();
        let host = &*self.host;
        let desired = spec.desired(batch, display);
        match item.action {
            PlanAction::Create => {
                let secret = secrets.get(&spec.key.hmac).cloned().ok_or_else(|| {
                    ProvisionError::Invalid(format!("upstream key {} is missing", spec.key))
                })?;
                let draft = spec.draft(batch, display, secret);
                let mut intent = self.intent(
                    batch,
                    JournalOp::Create,
                    ResourceKind::Monitor,
                    &spec.name,
                    None,
                    desired,
                );
                intent.natural_key = planned.intent_key(item);
                let (d, name) = (&draft, spec.name.clone());
                let a = exec
                    .run(
                        Step::new(intent, move |_| host.create_monitor(d)).with_lookup(move || {
                            let name = name.clone();
                            async move { monitor_ids_named(host, &name).await }.boxed()
                        }),
                    )
                    .await?
                    .stop_on_host_error(ResourceKind::Monitor, &spec.name)?;
                if let Some(id) = a.host_object_id {
                    self.retire(batch, planned, item, id).await?;
                }
            }
            PlanAction::Adopt | PlanAction::Update | PlanAction::NoOp => {
                let id = item.host_object_id.ok_or_else(|| {
                    ProvisionError::Invalid("monitor item without host id".into())
                })?;
                let marked = snapshot
                    .monitors
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .find(|m| m.id == id)
                    .and_then(|m| ownership::parse_marker(&m.group_name))
                    .as_ref()
                    == Some(batch);
                if item.action == PlanAction::Adopt {
                    exec.adopt(
                        self.intent(
                            batch,
                            JournalOp::Adopt,
                            ResourceKind::Monitor,
                            &spec.name,
                            Some(id),
                            desired.clone(),
                        ),
                        item.reason.as_deref().unwrap_or("found by name"),
                    )
                    .await?;
                }
                if !item.changes.is_empty() || !marked {
                    // The key stays the host's: an update sends none.
                    let patch = spec.patch(batch, display);
                    let intent = self.intent(
                        batch,
                        JournalOp::Update,
                        ResourceKind::Monitor,
                        &spec.name,
                        Some(id),
                        desired,
                    );
                    let p = &patch;
                    self.update_recorded(Step::new(intent, move |_| host.update_monitor(id, p)))
                        .await?;
                }
            }
            PlanAction::Delete | PlanAction::Blocked => {}
        }
        Ok(())
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
        move_base_url: bool,
    ) -> Result<()> {
        let mut extra = current.extra.clone();
        extra.extend(spec.extra.clone());
        // The desired spec recorded after this step names the new base URL,
        // so the host account is moved in the same journaled write: the
        // recorded URL never names one the host does not use.
        let patch = AccountPatch {
            model_mapping: Some(spec.model_mapping.clone()),
            extra: Some(extra),
            base_url: move_base_url.then(|| spec.base_url.clone()),
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
    pub(crate) async fn update_recorded<T: crate::HostObject + Send>(
        &self,
        step: Step<'_, T>,
    ) -> Result<()> {
        let i = &step.intent;
        let id = i.host_object_id.ok_or_else(|| {
            ProvisionError::Invalid(format!("update of {} {} without a host id", i.kind, i.name))
        })?;
        let (batch, kind, natural_key, digest, desired) = (
            i.batch_id.clone(),
            i.kind,
            i.natural_key.clone(),
            i.spec_digest(),
            i.desired.clone(),
        );
        self.exec().run(step).await?;
        // The intent's natural key too: an account's names its base URL
        // (docs/design.md §5), which this update may have moved.
        self.batches
            .update_resource_desired(&batch, kind, id, Some(natural_key), digest, desired)
            .await?;
        Ok(())
    }
}

/// crm never rewrites the notes of an account it found (they may carry the
/// marker of another live batch sharing it), so its desired spec keeps them.
pub(crate) fn keep_notes(mut desired: Value, observed: Option<&str>) -> Value {
    if let Some(n) = observed
        && desired.get("notes").is_some()
    {
        desired["notes"] = json!(n);
    }
    desired
}

fn needs_account_update(item: &PlanItem) -> bool {
    item.changes.iter().any(|c| c.field != "group_ids")
}

/// How many generations of a group name crm tries on a host that keeps
/// deleted names (each one a rollback of the same provider and mode).
const GROUP_GENERATIONS: u32 = 20;
