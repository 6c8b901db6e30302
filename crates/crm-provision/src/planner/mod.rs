//! The pure planner: desired state (pack provider, mode, upstream keys) against
//! one [`HostSnapshot`] and the batch's recorded resources, to a [`Plan`].
//!
//! Same inputs, same plan, byte for byte: items come in apply order
//! (accounts by name, then the group, then the channel, then the monitor),
//! field changes in a fixed order, maps are `BTreeMap`s. Nothing here does
//! I/O.
//!
//! Matching, per desired resource: first the object the batch recorded (by
//! host id), else the object with the same natural key on the host. An
//! unrecorded match is adopted only if it carries crm's marker (or, on hosts
//! that keep no account notes, crm's name); otherwise the item is `blocked`,
//! because crm never touches objects that are not its own and never creates
//! a second object with the same natural key.

//!
//! Its modules: `matching` (desired against recorded and observed objects:
//! create, adopt, update, blocked), `changes` (field comparisons), `monitor`
//! (the host-side channel monitor's item); this one assembles the plan.

mod changes;
mod matching;
mod monitor;
#[cfg(test)]
mod tests;

pub use changes::same_f64;

use crate::desired::{
    AccountSpec, PackProvider, PlatformChoice, channel_draft, channel_name, choose_platform,
    group_draft, group_name,
};
use crate::monitor::MonitorSpec;
use changes::{channel_changes, group_changes};
use crm_domain::batch::ManagedResource;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::observed::{HostChannel, HostGroup, HostSnapshot};
use crm_domain::plan::{Plan, PlanItem};
use crm_domain::{
    AccessMode, BatchId, Fingerprint, HostObjectId, PlanAction, ResourceKind, ResourceState,
};
use matching::{account_item, match_named};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything a plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub pack: &'a PackProvider,
    pub caps: &'a Capabilities,
    pub snapshot: &'a HostSnapshot,
    pub mode: AccessMode,
    /// Fingerprints of every upstream key the batch should provision.
    pub keys: &'a [Fingerprint],
    /// Live managed resources of the batch being planned (empty for a new one).
    pub resources: &'a [ManagedResource],
    /// The batch wants a host-side channel monitor (`--monitor`, or the
    /// pack's `monitor = true`). A monitor the batch records is planned
    /// whatever this says: an import never deletes one.
    pub monitor: bool,
}

/// A plan plus what applying it needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub plan: Plan,
    pub choice: Option<PlatformChoice>,
    /// Specs of the account items, in the order of the account items.
    pub accounts: Vec<AccountSpec>,
    /// `create` items that replace a recorded object gone from the host:
    /// (kind, plan natural key) -> the recorded host id. Their journal
    /// intents use [`crate::journal::recreation_key`].
    pub recreates: BTreeMap<(ResourceKind, String), HostObjectId>,
    /// The spec of the monitor item, when the plan has one.
    pub monitor: Option<MonitorSpec>,
}

impl Planned {
    pub fn account_items(&self) -> impl Iterator<Item = (&PlanItem, &AccountSpec)> {
        self.plan
            .items
            .iter()
            .filter(|i| i.kind == ResourceKind::Account)
            .zip(self.accounts.iter())
    }

    pub fn item(&self, kind: ResourceKind) -> Option<&PlanItem> {
        self.plan.items.iter().find(|i| i.kind == kind)
    }

    /// The recorded object a `create` item replaces, if any.
    pub fn replaces(&self, item: &PlanItem) -> Option<HostObjectId> {
        self.recreates
            .get(&(item.kind, item.natural_key.clone()))
            .copied()
    }

    /// The journal natural key of a `create` item.
    pub fn intent_key(&self, item: &PlanItem) -> String {
        match self.replaces(item) {
            Some(old) => crate::journal::recreation_key(&item.natural_key, old),
            None => item.natural_key.clone(),
        }
    }
}

/// The plan of an import, resume or upgrade.
pub fn plan(input: PlanInput<'_>) -> Plan {
    plan_detailed(input).plan
}

/// The plan with the specs apply needs.
pub fn plan_detailed(input: PlanInput<'_>) -> Planned {
    let PlanInput {
        pack,
        caps,
        snapshot,
        mode,
        keys,
        resources,
        monitor,
    } = input;
    let mut notes = Vec::new();
    let mut global_block = Vec::new();
    match &caps.admin_auth {
        AdminAuth::Ok => {}
        AdminAuth::ComplianceGate { document_url } => global_block.push(format!(
            "compliance gate: the host answers 423 until an administrator accepts its compliance notice{}; crm does not accept it on your behalf",
            document_url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default()
        )),
        AdminAuth::Rejected { reason } => {
            global_block.push(format!("the host rejected the admin credential ({reason})"))
        }
    }
    if !pack.spec.access.modes.contains(&mode) {
        global_block.push(format!(
            "mode {mode} is not one of the access modes of {} (pack {} allows: {})",
            pack.provider,
            pack.pack_version,
            pack.spec
                .access
                .modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if mode == AccessMode::Subscription && !caps.subscriptions {
        global_block
            .push("the host has no subscriptions, so mode subscription is unavailable".into());
    }
    let choice = match choose_platform(&pack.spec, caps) {
        Ok(c) => Some(c),
        Err(blocked) => {
            global_block.push(blocked.reason);
            None
        }
    };
    // A dummy batch id: plans never contain markers, only names.
    let no_batch = BatchId::new("");
    let placeholder = PlatformChoice {
        platform: pack.spec.platform.fallback.clone(),
        native: false,
        base_url: crate::desired::normalize_url(&pack.spec.openai_base_url),
        api: crate::desired::UpstreamApi::ChatCompletions,
        reason: String::new(),
    };
    let ch = choice.as_ref().unwrap_or(&placeholder);

    // The group first (accounts and channel compare their binding to it).
    let gdraft = group_draft(pack, ch, mode, &no_batch);
    let recorded_group = recorded(resources, ResourceKind::Group, |_| true);
    let (mut group_item, group_id) = match_named(
        ResourceKind::Group,
        &gdraft.name,
        recorded_group,
        &snapshot.groups,
        |g: &HostGroup| (g.id, g.name.as_str(), g.description.as_deref()),
        |g| group_changes(&gdraft, g),
    );
    if group_item.action == PlanAction::Create {
        group_item.reason = Some(format!(
            "{} group ({}); accounts are bound to it",
            gdraft.billing,
            match mode {
                AccessMode::SelfService => "balance billing",
                AccessMode::Subscription => "needs an active subscription",
            }
        ));
    }

    let mut specs: Vec<AccountSpec> = keys
        .iter()
        .map(|k| AccountSpec::new(pack, ch, caps, k))
        .collect();
    specs.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.hmac.cmp(&b.key.hmac)));
    specs.dedup_by(|a, b| a.key.hmac == b.key.hmac);
    let mut items: Vec<PlanItem> = specs
        .iter()
        .map(|s| account_item(s, ch, snapshot, resources, group_id, pack, mode))
        .collect();
    if specs.is_empty() {
        items.push(PlanItem {
            kind: ResourceKind::Account,
            action: PlanAction::Blocked,
            name: format!("{}-*", group_name(&pack.provider, mode)),
            natural_key: String::new(),
            host_object_id: None,
            changes: vec![],
            reason: Some("no upstream key: give at least one key of the provider".into()),
        });
    }
    items.push(group_item);

    if caps.channels {
        let name = channel_name(&pack.provider, mode);
        let item = match channel_draft(pack, ch, mode, &no_batch, group_id) {
            Ok(cdraft) => {
                let recorded_channel = recorded(resources, ResourceKind::Channel, |_| true);
                let (mut item, _) = match_named(
                    ResourceKind::Channel,
                    &name,
                    recorded_channel,
                    snapshot.channels.as_deref().unwrap_or(&[]),
                    |c: &HostChannel| (c.id, c.name.as_str(), c.description.as_deref()),
                    |c| channel_changes(&cdraft, group_id, c),
                );
                if item.action == PlanAction::Create {
                    item.reason = Some(
                        "pack prices in USD per token, model mapping, billing_model_source=channel_mapped, restrict_models=true, bound to the group".into(),
                    );
                }
                item
            }
            Err(e) => PlanItem {
                kind: ResourceKind::Channel,
                action: PlanAction::Blocked,
                name,
                natural_key: String::new(),
                host_object_id: None,
                changes: vec![],
                reason: Some(e.to_string()),
            },
        };
        items.push(item);
    } else {
        notes.push(format!(
            "host has no channels: it cannot enforce the pack's prices for {} or restrict the group to the pack's models; the model mapping is carried by the accounts",
            pack.provider
        ));
    }
    let planned_monitor = monitor::plan_monitor(monitor::MonitorInput {
        pack,
        caps,
        snapshot,
        resources,
        mode,
        accounts: &specs,
        wanted: monitor,
    });
    items.extend(planned_monitor.item);
    notes.extend(planned_monitor.note);
    if let Some(c) = &choice
        && !c.native
        && c.platform != pack.spec.platform.native
    {
        notes.push(c.reason.clone());
    }
    if !global_block.is_empty() {
        let reason = global_block.join("; ");
        for i in &mut items {
            i.action = PlanAction::Blocked;
            i.reason = Some(reason.clone());
        }
    }
    let recreates = recreations(&items, &specs, resources);
    Planned {
        plan: Plan { items, notes },
        choice,
        accounts: specs,
        recreates,
        monitor: planned_monitor.spec,
    }
}

/// `create` items whose recorded object is gone from the host.
fn recreations(
    items: &[PlanItem],
    specs: &[AccountSpec],
    resources: &[ManagedResource],
) -> BTreeMap<(ResourceKind, String), HostObjectId> {
    let mut out = BTreeMap::new();
    let accounts = items.iter().filter(|i| i.kind == ResourceKind::Account);
    for (item, spec) in accounts.zip(specs) {
        if item.action != PlanAction::Create {
            continue;
        }
        if let Some(r) = recorded(resources, ResourceKind::Account, |r| {
            r.natural_key == spec.natural_key
                || recorded_key_hmac(r) == Some(spec.key.hmac.as_str())
        }) {
            out.insert((item.kind, item.natural_key.clone()), r.host_object_id);
        }
    }
    for item in items.iter().filter(|i| {
        matches!(
            i.kind,
            ResourceKind::Group | ResourceKind::Channel | ResourceKind::Monitor
        ) && i.action == PlanAction::Create
    }) {
        if let Some(r) = recorded(resources, item.kind, |_| true) {
            out.insert((item.kind, item.natural_key.clone()), r.host_object_id);
        }
    }
    out
}

/// The live recorded resource of `kind` satisfying `pred`, if any.
fn recorded(
    resources: &[ManagedResource],
    kind: ResourceKind,
    pred: impl Fn(&ManagedResource) -> bool,
) -> Option<&ManagedResource> {
    resources
        .iter()
        .filter(|r| r.kind == kind && r.state == ResourceState::Live)
        .find(|r| pred(r))
}

/// The fingerprint hmac a recorded account stands for (its desired spec's
/// `upstream_key`, which key rotation keeps current).
pub fn recorded_key_hmac(r: &ManagedResource) -> Option<&str> {
    r.desired
        .get("upstream_key")
        .and_then(|k| k.get("hmac"))
        .and_then(Value::as_str)
}
