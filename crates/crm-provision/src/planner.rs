//! The pure planner: desired state (pack provider, mode, upstream keys) against
//! one [`HostSnapshot`] and the batch's recorded resources, to a [`Plan`].
//!
//! Same inputs, same plan, byte for byte: items come in apply order
//! (accounts by name, then the group, then the channel), field changes in a
//! fixed order, maps are `BTreeMap`s. Nothing here does I/O.
//!
//! Matching, per desired resource: first the object the batch recorded (by
//! host id), else the object with the same natural key on the host. An
//! unrecorded match is adopted only if it carries crm's marker (or, on hosts
//! that keep no account notes, crm's name); otherwise the item is `blocked`,
//! because crm never touches objects that are not its own and never creates
//! a second object with the same natural key.

use crate::desired::{
    AccountKey, AccountSpec, PackProvider, PlatformChoice, channel_draft, channel_name,
    choose_platform, group_draft, group_name,
};
use crm_domain::batch::ManagedResource;
use crm_domain::host::{AdminAuth, Capabilities};
use crm_domain::observed::{ChannelPricing, HostAccount, HostChannel, HostGroup, HostSnapshot};
use crm_domain::ownership;
use crm_domain::plan::{BASE_URL_FIELD, FieldChange, Plan, PlanItem};
use crm_domain::{
    AccessMode, BatchId, Fingerprint, HostObjectId, PlanAction, ResourceKind, ResourceState,
};
use serde_json::{Value, json};
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
        matches!(i.kind, ResourceKind::Group | ResourceKind::Channel)
            && i.action == PlanAction::Create
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

/// Where a recorded account sends its key: its platform and base URL, from
/// its desired spec (or, for older records, its natural key
/// `platform|base_url|hmac`).
fn recorded_target(r: &ManagedResource) -> (Option<String>, Option<String>) {
    let nk = crate::journal::base_natural_key(&r.natural_key);
    let mut parts = nk.splitn(3, '|');
    let (nk_platform, nk_url) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(u), Some(_)) => (Some(p.to_owned()), Some(u.to_owned())),
        _ => (None, None),
    };
    let field = |f: &str| r.desired.get(f).and_then(Value::as_str).map(str::to_owned);
    (
        field("platform").or(nk_platform),
        field("base_url")
            .or(nk_url)
            .map(|u| crate::desired::normalize_url(&u)),
    )
}

/// Compares a recorded account with its spec in the new plan. A platform
/// cannot be patched: the item is `blocked` with the way out. A moved base
/// URL is a `base_url` change (from the recorded URL), which the apply
/// refuses unless the operator confirmed it (docs/design.md §4 step 3): the
/// recorded URL is where the direct upstream probe and key rotation send the
/// key, so a pack must not move it unseen.
fn recorded_moves(
    r: &ManagedResource,
    spec: &AccountSpec,
    pack: &PackProvider,
    mode: AccessMode,
) -> std::result::Result<Option<FieldChange>, String> {
    let (platform, url) = recorded_target(r);
    if let Some(p) = platform
        && p != spec.platform.as_str()
    {
        return Err(format!(
            "account {} (host id {}) was created on platform {p}{}; pack {} {} puts it on {} at {}, and an account's platform cannot be changed in place: roll the batch back (crm batch rollback {}) and import it again (crm provider import {} --host <host> --mode {mode} --upstream-keys-file <file>)",
            spec.name,
            r.host_object_id,
            url.as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default(),
            pack.provider,
            pack.pack_version,
            spec.platform,
            spec.base_url,
            r.batch_id,
            pack.provider,
        ));
    }
    Ok(url
        .filter(|u| *u != crate::desired::normalize_url(&spec.base_url))
        .map(|u| change(BASE_URL_FIELD, json!(u), json!(spec.base_url))))
}

fn account_item(
    spec: &AccountSpec,
    choice: &PlatformChoice,
    snapshot: &HostSnapshot,
    resources: &[ManagedResource],
    group: Option<HostObjectId>,
    pack: &PackProvider,
    mode: AccessMode,
) -> PlanItem {
    let mut item = PlanItem {
        kind: ResourceKind::Account,
        action: PlanAction::Create,
        name: spec.name.clone(),
        natural_key: spec.natural_key.clone(),
        host_object_id: None,
        changes: vec![],
        reason: Some(choice.reason.clone()),
    };
    let rec = recorded(resources, ResourceKind::Account, |r| {
        r.natural_key == spec.natural_key || recorded_key_hmac(r) == Some(spec.key.hmac.as_str())
    });
    if let Some(r) = rec {
        let moved = match recorded_moves(r, spec, pack, mode) {
            Ok(m) => m,
            Err(reason) => {
                item.action = PlanAction::Blocked;
                item.host_object_id = Some(r.host_object_id);
                item.reason = Some(reason);
                return item;
            }
        };
        match snapshot.accounts.iter().find(|a| a.id == r.host_object_id) {
            Some(a) => {
                item.host_object_id = Some(a.id);
                item.changes = moved.into_iter().collect();
                item.changes.extend(account_changes(spec, a, group));
                item.action = if item.changes.is_empty() {
                    PlanAction::NoOp
                } else {
                    PlanAction::Update
                };
                item.reason = None;
            }
            None => {
                // Created again at the new URL: the same confirmation.
                item.changes = moved.into_iter().collect();
                item.reason = Some(format!(
                    "recorded account {} is gone from the host; it is created again ({})",
                    r.host_object_id, choice.reason
                ));
            }
        }
        return item;
    }
    let want = AccountKey::new(&spec.platform, &spec.base_url, &spec.key);
    let found: Vec<&HostAccount> = snapshot
        .accounts
        .iter()
        .filter(|a| want.matches(a))
        .collect();
    match found.as_slice() {
        [] => item,
        [a] => {
            let owner = a.notes.as_deref().and_then(ownership::parse_marker);
            item.host_object_id = Some(a.id);
            item.changes = account_changes(spec, a, group);
            match (owner, a.notes.as_deref(), spec.notes_supported) {
                (Some(b), _, _) => {
                    item.action = PlanAction::Adopt;
                    item.reason = Some(format!(
                        "found by natural key (platform, base URL, key fingerprint) with crm's marker of batch {b}"
                    ));
                }
                (None, None, false) => {
                    item.action = PlanAction::Adopt;
                    item.reason = Some(
                        "found by natural key with crm's name (this host keeps no account notes)"
                            .into(),
                    );
                }
                _ => {
                    item.action = PlanAction::Blocked;
                    item.reason = Some(format!(
                        "account {} has this key's natural key but no crm marker; crm will not touch it nor create a duplicate: delete it or add the marker",
                        a.id
                    ));
                }
            }
            item
        }
        many => PlanItem {
            action: PlanAction::Blocked,
            reason: Some(format!(
                "{} accounts share this natural key (ids {}): duplicates must be resolved by an operator",
                many.len(),
                ids(many.iter().map(|a| a.id))
            )),
            ..item
        },
    }
}

/// Matching for objects whose natural key is their deterministic name.
fn match_named<T>(
    kind: ResourceKind,
    name: &str,
    recorded: Option<&ManagedResource>,
    observed: &[T],
    parts: impl Fn(&T) -> (HostObjectId, &str, Option<&str>),
    changes: impl Fn(&T) -> Vec<FieldChange>,
) -> (PlanItem, Option<HostObjectId>) {
    let mut item = PlanItem {
        kind,
        action: PlanAction::Create,
        name: name.to_owned(),
        natural_key: name.to_owned(),
        host_object_id: None,
        changes: vec![],
        reason: None,
    };
    if let Some(r) = recorded {
        if let Some(o) = observed.iter().find(|o| parts(o).0 == r.host_object_id) {
            item.host_object_id = Some(r.host_object_id);
            item.changes = changes(o);
            item.action = if item.changes.is_empty() {
                PlanAction::NoOp
            } else {
                PlanAction::Update
            };
            return (item, Some(r.host_object_id));
        }
        item.reason = Some(format!(
            "recorded {kind} {} is gone from the host; it is created again",
            r.host_object_id
        ));
        return (item, None);
    }
    // A later generation of the name counts too (hosts that keep deleted
    // names, `Provisioner::create_group_generation`).
    let found: Vec<&T> = observed
        .iter()
        .filter(|o| crate::desired::is_group_generation(parts(o).1, name))
        .collect();
    match found.as_slice() {
        [] => (item, None),
        [o] => {
            let (id, _, text) = parts(o);
            item.host_object_id = Some(id);
            item.changes = changes(o);
            match text.and_then(ownership::parse_marker) {
                Some(b) => {
                    item.action = PlanAction::Adopt;
                    item.reason = Some(format!("found by name with crm's marker of batch {b}"));
                    (item, Some(id))
                }
                None => {
                    item.action = PlanAction::Blocked;
                    item.reason = Some(format!(
                        "{kind} {id} is named {name} but has no crm marker; crm will not touch it nor create a duplicate: rename it or add the marker"
                    ));
                    (item, None)
                }
            }
        }
        many => {
            item.action = PlanAction::Blocked;
            item.reason = Some(format!(
                "{} {kind}s are named {name} (ids {}): duplicates must be resolved by an operator",
                many.len(),
                ids(many.iter().map(|o| parts(o).0))
            ));
            (item, None)
        }
    }
}

fn ids(it: impl Iterator<Item = HostObjectId>) -> String {
    it.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn change(field: impl Into<String>, from: Value, to: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        from,
        to,
    }
}

/// Map differences, one change per key (in key order).
fn map_changes<V: serde::Serialize + PartialEq>(
    prefix: &str,
    observed: &BTreeMap<String, V>,
    desired: &BTreeMap<String, V>,
    out: &mut Vec<FieldChange>,
) {
    let mut keys: Vec<&String> = observed.keys().chain(desired.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (o, d) = (observed.get(k), desired.get(k));
        if o != d {
            out.push(change(format!("{prefix}.{k}"), json!(o), json!(d)));
        }
    }
}

fn account_changes(
    spec: &AccountSpec,
    a: &HostAccount,
    group: Option<HostObjectId>,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    map_changes(
        "model_mapping",
        &a.model_mapping,
        &spec.model_mapping,
        &mut out,
    );
    for (k, v) in &spec.credential_fields {
        if a.credential_fields.get(k) != Some(v) {
            out.push(change(
                format!("credential_fields.{k}"),
                json!(a.credential_fields.get(k)),
                v.clone(),
            ));
        }
    }
    for (k, v) in &spec.extra {
        if a.extra.get(k) != Some(v) {
            out.push(change(
                format!("extra.{k}"),
                json!(a.extra.get(k)),
                v.clone(),
            ));
        }
    }
    if let Some(g) = group
        && !a.group_ids.contains(&g)
    {
        let mut to = a.group_ids.clone();
        to.push(g);
        out.push(change("group_ids", json!(a.group_ids), json!(to)));
    }
    out
}

/// Float equality for prices (~1e-7) and multipliers.
pub fn same_f64(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a - b).abs() < 1e-15
}

fn same_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => same_f64(x, y),
        _ => false,
    }
}

/// sub2api stores "no limit" as `null` or `-1`.
fn limit(v: Option<f64>) -> Option<f64> {
    v.filter(|x| *x >= 0.0)
}

fn group_changes(d: &crm_domain::observed::GroupDraft, g: &HostGroup) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if g.platform != d.platform {
        out.push(change("platform", json!(g.platform), json!(d.platform)));
    }
    if g.billing != d.billing {
        out.push(change("billing", json!(g.billing), json!(d.billing)));
    }
    if !same_f64(g.rate_multiplier, d.rate_multiplier) {
        out.push(change(
            "rate_multiplier",
            json!(g.rate_multiplier),
            json!(d.rate_multiplier),
        ));
    }
    for (f, o, w) in [
        ("daily_limit_usd", g.daily_limit_usd, d.daily_limit_usd),
        ("weekly_limit_usd", g.weekly_limit_usd, d.weekly_limit_usd),
        (
            "monthly_limit_usd",
            g.monthly_limit_usd,
            d.monthly_limit_usd,
        ),
    ] {
        if !same_opt(limit(o), limit(w)) {
            out.push(change(f, json!(limit(o)), json!(limit(w))));
        }
    }
    if g.is_exclusive != d.is_exclusive {
        out.push(change(
            "is_exclusive",
            json!(g.is_exclusive),
            json!(d.is_exclusive),
        ));
    }
    out
}

/// Pricing rows flattened per model name.
fn per_model(rows: &[ChannelPricing]) -> BTreeMap<String, &ChannelPricing> {
    rows.iter()
        .flat_map(|r| r.models.iter().map(move |m| (m.clone(), r)))
        .collect()
}

fn channel_changes(
    d: &crm_domain::observed::ChannelDraft,
    group: Option<HostObjectId>,
    c: &HostChannel,
) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let (have, want) = (per_model(&c.model_pricing), per_model(&d.model_pricing));
    let mut models: Vec<&String> = have.keys().chain(want.keys()).collect();
    models.sort();
    models.dedup();
    for m in models {
        match (have.get(m), want.get(m)) {
            (Some(h), Some(w)) => {
                for (f, o, n) in [
                    ("input_price", h.input_price, w.input_price),
                    ("output_price", h.output_price, w.output_price),
                    (
                        "cache_write_price",
                        h.cache_write_price,
                        w.cache_write_price,
                    ),
                    ("cache_read_price", h.cache_read_price, w.cache_read_price),
                ] {
                    if !same_opt(o, n) {
                        out.push(change(format!("model_pricing.{m}.{f}"), json!(o), json!(n)));
                    }
                }
                if h.platform != w.platform || h.billing_mode != w.billing_mode {
                    out.push(change(
                        format!("model_pricing.{m}.platform"),
                        json!(format!("{}/{}", h.platform, h.billing_mode)),
                        json!(format!("{}/{}", w.platform, w.billing_mode)),
                    ));
                }
            }
            (h, w) => out.push(change(format!("model_pricing.{m}"), json!(h), json!(w))),
        }
    }
    let mut platforms: Vec<&String> = c
        .model_mapping
        .keys()
        .chain(d.model_mapping.keys())
        .collect();
    platforms.sort();
    platforms.dedup();
    let empty = BTreeMap::new();
    for p in platforms {
        map_changes(
            &format!("model_mapping.{p}"),
            c.model_mapping.get(p).unwrap_or(&empty),
            d.model_mapping.get(p).unwrap_or(&empty),
            &mut out,
        );
    }
    if c.billing_model_source != d.billing_model_source {
        out.push(change(
            "billing_model_source",
            json!(c.billing_model_source),
            json!(d.billing_model_source),
        ));
    }
    if c.restrict_models != d.restrict_models {
        out.push(change(
            "restrict_models",
            json!(c.restrict_models),
            json!(d.restrict_models),
        ));
    }
    if let Some(g) = group
        && c.group_ids != vec![g]
    {
        out.push(change("group_ids", json!(c.group_ids), json!([g])));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crm_domain::host::AdminAuth;

    fn run(
        pp: &PackProvider,
        caps: &Capabilities,
        snap: &HostSnapshot,
        mode: AccessMode,
        keys: &[u32],
    ) -> Plan {
        let keys: Vec<Fingerprint> = keys.iter().map(|n| fp(*n)).collect();
        plan(PlanInput {
            pack: pp,
            caps,
            snapshot: snap,
            mode,
            keys: &keys,
            resources: &[],
        })
    }

    fn actions(p: &Plan) -> Vec<(ResourceKind, PlanAction)> {
        p.items.iter().map(|i| (i.kind, i.action)).collect()
    }

    #[test]
    fn fresh_current_host_plan() {
        let p = run(
            &deepseek("1.0.0", 2.0),
            &caps(true),
            &HostSnapshot::default(),
            AccessMode::SelfService,
            &[2, 1],
        );
        insta::assert_json_snapshot!("fresh_current_host", p);
    }

    #[test]
    fn fresh_legacy_host_plan_falls_back_and_says_what_is_lost() {
        let p = run(
            &deepseek("1.0.0", 2.0),
            &caps(false),
            &HostSnapshot::default(),
            AccessMode::Subscription,
            &[1],
        );
        insta::assert_json_snapshot!("fresh_legacy_host", p);
        assert_eq!(p.notes.len(), 2);
        assert!(p.items.iter().all(|i| i.kind != ResourceKind::Channel));
    }

    #[test]
    fn legacy_host_plan_uses_the_anthropic_endpoint_for_accounts_and_group() {
        let pp = deepseek("1.0.0", 2.0);
        let keys = [fp(1)];
        let planned = plan_detailed(PlanInput {
            pack: &pp,
            caps: &caps(false),
            snapshot: &HostSnapshot::default(),
            mode: AccessMode::SelfService,
            keys: &keys,
            resources: &[],
        });
        let choice = planned.choice.clone().unwrap();
        assert_eq!(choice.platform.as_str(), "anthropic");
        let spec = &planned.accounts[0];
        assert_eq!(spec.base_url, "https://api.deepseek.com/anthropic");
        assert!(
            planned.plan.items[0]
                .natural_key
                .starts_with("anthropic|https://api.deepseek.com/anthropic|")
        );
        // The group's platform must match its accounts'.
        let g = group_draft(&pp, &choice, AccessMode::SelfService, &BatchId::new("b"));
        assert_eq!(g.platform.as_str(), "anthropic");
        // An account crm made earlier with the old fallback (openai at the
        // OpenAI base URL) is not this key's account on this host.
        let mut old = caps(true);
        old.native_platforms.clear();
        let snap = applied_snapshot(&pp, &old, AccessMode::SelfService, &[1], &"b-0".into());
        let p = run(&pp, &caps(false), &snap, AccessMode::SelfService, &[1]);
        assert_eq!(p.items[0].action, PlanAction::Create, "{p:#?}");
    }

    #[test]
    fn legacy_host_blocks_a_provider_without_an_anthropic_endpoint() {
        let mut pp = deepseek("1.0.0", 2.0);
        pp.spec.anthropic_base_url = None;
        for mode in [AccessMode::SelfService, AccessMode::Subscription] {
            let p = run(&pp, &caps(false), &HostSnapshot::default(), mode, &[1]);
            assert!(p.items.iter().all(|i| i.action == PlanAction::Blocked));
            insta::assert_json_snapshot!(format!("legacy_no_anthropic_endpoint-{mode}"), p);
        }
        // The current host still takes it natively.
        let p = run(
            &pp,
            &caps(true),
            &HostSnapshot::default(),
            AccessMode::SelfService,
            &[1],
        );
        assert_eq!(p.count(PlanAction::Blocked), 0);
    }

    #[test]
    fn same_inputs_give_byte_identical_plans() {
        let pp = deepseek("1.0.0", 2.0);
        let snap = applied_snapshot(
            &pp,
            &caps(true),
            AccessMode::SelfService,
            &[1],
            &"b-1".into(),
        );
        let a = serde_json::to_string(&run(
            &pp,
            &caps(true),
            &snap,
            AccessMode::SelfService,
            &[1, 2],
        ))
        .unwrap();
        let b = serde_json::to_string(&run(
            &pp,
            &caps(true),
            &snap,
            AccessMode::SelfService,
            &[2, 1],
        ))
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn applied_state_is_a_noop_and_a_new_key_creates_only_its_account() {
        for current in [true, false] {
            let pp = deepseek("1.0.0", 2.0);
            let c = caps(current);
            let snap = applied_snapshot(&pp, &c, AccessMode::SelfService, &[1], &"b-1".into());
            // Unrecorded but marked (crash before the journal): adopt; the host
            // objects exactly match, so nothing else changes.
            let p = run(&pp, &c, &snap, AccessMode::SelfService, &[1]);
            assert!(
                p.items
                    .iter()
                    .all(|i| i.action == PlanAction::Adopt && i.changes.is_empty()),
                "{p:#?}"
            );
            let p = run(&pp, &c, &snap, AccessMode::SelfService, &[1, 7]);
            assert_eq!(p.count(PlanAction::Create), 1);
            let created = p
                .items
                .iter()
                .find(|i| i.action == PlanAction::Create)
                .unwrap();
            assert_eq!(
                created.name,
                crate::desired::account_name(&pp.provider, &fp(7))
            );
        }
    }

    #[test]
    fn recorded_resources_make_a_noop_plan() {
        let pp = deepseek("1.0.0", 2.0);
        let c = caps(true);
        let b = BatchId::new("b-1");
        let snap = applied_snapshot(&pp, &c, AccessMode::SelfService, &[1], &b);
        let res = vec![
            resource(&b, ResourceKind::Account, 1, json!({"upstream_key": fp(1)})),
            resource(&b, ResourceKind::Group, 100, json!({})),
            resource(&b, ResourceKind::Channel, 200, json!({})),
        ];
        let p = plan(PlanInput {
            pack: &pp,
            caps: &c,
            snapshot: &snap,
            mode: AccessMode::SelfService,
            keys: &[fp(1)],
            resources: &res,
        });
        assert!(p.is_noop(), "{p:#?}");
    }

    fn resource(b: &BatchId, kind: ResourceKind, id: i64, desired: Value) -> ManagedResource {
        ManagedResource {
            batch_id: b.clone(),
            kind,
            host_object_id: HostObjectId(id),
            name: String::new(),
            natural_key: String::new(),
            origin: crm_domain::JournalOp::Create,
            spec_digest: String::new(),
            desired,
            state: ResourceState::Live,
            journal_seq: 1,
            updated_at: crate::fakes::t0(),
        }
    }

    #[test]
    fn a_newer_pack_shows_price_and_mapping_changes_as_updates() {
        let old = deepseek("1.0.0", 2.0);
        let mut new = deepseek("1.1.0", 1.0);
        new.spec
            .model_mapping
            .insert("deepseek-v4".into(), "deepseek-v4-flash".into());
        let c = caps(true);
        let b = BatchId::new("b-1");
        let snap = applied_snapshot(&old, &c, AccessMode::SelfService, &[1], &b);
        let res = vec![
            resource(&b, ResourceKind::Account, 1, json!({"upstream_key": fp(1)})),
            resource(&b, ResourceKind::Group, 100, json!({})),
            resource(&b, ResourceKind::Channel, 200, json!({})),
        ];
        let p = plan(PlanInput {
            pack: &new,
            caps: &c,
            snapshot: &snap,
            mode: AccessMode::SelfService,
            keys: &[fp(1)],
            resources: &res,
        });
        insta::assert_json_snapshot!("pack_upgrade", p);
        assert_eq!(
            actions(&p),
            vec![
                (ResourceKind::Account, PlanAction::Update),
                (ResourceKind::Group, PlanAction::NoOp),
                (ResourceKind::Channel, PlanAction::Update),
            ]
        );
    }

    #[test]
    fn a_moved_base_url_is_a_url_change_even_for_an_account_created_again() {
        let old = deepseek("1.0.0", 2.0);
        let mut new = deepseek("1.1.0", 2.0);
        new.spec.openai_base_url = "https://moved.example/v1/".into();
        let c = caps(true);
        let b = BatchId::new("b-1");
        let mut snap = applied_snapshot(&old, &c, AccessMode::SelfService, &[1], &b);
        let recorded_url = snap.accounts[0].base_url.clone().unwrap();
        let res = vec![
            resource(
                &b,
                ResourceKind::Account,
                1,
                json!({"upstream_key": fp(1), "base_url": recorded_url, "platform": snap.accounts[0].platform}),
            ),
            resource(&b, ResourceKind::Group, 100, json!({})),
            resource(&b, ResourceKind::Channel, 200, json!({})),
        ];
        let keys = [fp(1)];
        let run = |pack: &PackProvider, snap: &HostSnapshot| {
            plan(PlanInput {
                pack,
                caps: &c,
                snapshot: snap,
                mode: AccessMode::SelfService,
                keys: &keys,
                resources: &res,
            })
        };
        let p = run(&new, &snap);
        let urls = p.url_changes();
        assert_eq!(urls.len(), 1, "{p:#?}");
        assert_eq!(
            (urls[0].from.as_str(), urls[0].to.as_str()),
            (recorded_url.as_str(), "https://moved.example/v1")
        );
        assert_eq!(urls[0].host_object_id, Some(HostObjectId(1)));
        // Gone from the host: created again at the new URL, the same change.
        snap.accounts.clear();
        let p = run(&new, &snap);
        assert_eq!(p.items[0].action, PlanAction::Create);
        assert_eq!(p.url_changes().len(), 1, "{p:#?}");
        // The same URL (up to a trailing slash) is no change.
        let p = run(&old, &snap);
        assert!(p.url_changes().is_empty(), "{p:#?}");
    }

    #[test]
    fn blocked_for_mode_gate_and_foreign_objects() {
        let mut pp = deepseek("1.0.0", 2.0);
        pp.spec.access.modes = vec![AccessMode::SelfService];
        let p = run(
            &pp,
            &caps(true),
            &HostSnapshot::default(),
            AccessMode::Subscription,
            &[1],
        );
        assert_eq!(p.count(PlanAction::Blocked), 3);
        assert!(
            p.items[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("mode subscription is not one of")
        );

        let mut c = caps(true);
        c.admin_auth = AdminAuth::ComplianceGate { document_url: None };
        let p = run(
            &deepseek("1.0.0", 2.0),
            &c,
            &HostSnapshot::default(),
            AccessMode::SelfService,
            &[1],
        );
        assert!(
            p.blocked()
                .all(|i| i.reason.as_deref().unwrap().contains("compliance gate"))
        );
        assert_eq!(p.count(PlanAction::Blocked), 3);

        // An operator's group with crm's name but no marker, and duplicate accounts.
        let pp = deepseek("1.0.0", 2.0);
        let mut snap = applied_snapshot(
            &pp,
            &caps(true),
            AccessMode::SelfService,
            &[1],
            &"b-1".into(),
        );
        snap.groups[0].description = Some("mine".into());
        let mut dup = snap.accounts[0].clone();
        dup.id = HostObjectId(9);
        snap.accounts.push(dup);
        let p = run(&pp, &caps(true), &snap, AccessMode::SelfService, &[1]);
        assert_eq!(
            actions(&p),
            vec![
                (ResourceKind::Account, PlanAction::Blocked),
                (ResourceKind::Group, PlanAction::Blocked),
                (ResourceKind::Channel, PlanAction::Adopt),
            ]
        );
        assert!(p.items[0].reason.as_deref().unwrap().contains("ids 1, 9"));
    }
}
