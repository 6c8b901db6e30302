//! The pure diff: recorded desired state against one observation of a host.
//!
//! `diff` is a function from data to data. It never looks at a secret (it has
//! none: observed accounts carry `has_api_key`, not keys) and never reports an
//! object as crm's unless the object carries crm's marker, or, for kinds the
//! host keeps no notes for, crm's deterministic name.
//!
//! Rules, in the words of docs/design.md §3:
//! - `missing`: a live managed resource whose host id is not in the snapshot.
//! - `changed`: a live managed resource whose observed fields differ from the
//!   fields its desired spec states (see [`crate::desired`]); each differing
//!   field is a [`FieldChange`] from the observed value to the desired one.
//! - `duplicate`: an active account with the same natural key (name, platform,
//!   base URL; crm's names embed the key fingerprint) as a recorded account, or
//!   an unrecorded crm account of the same provider bound to a recorded group.
//! - `unmanaged_leftover`: an object whose marker names a batch that is not
//!   live (or, without notes, carries crm's name and is recorded by no live batch).
//! - `unhealthy`: a recorded account with `status=error`, temporarily
//!   unschedulable, or not schedulable.
//! - `access_broken`: a supplied access re-check that failed.
//! - `unknown`: produced only by [`unreachable()`], when the host cannot be read.

use crate::desired::{
    self, DesiredAccount, DesiredApiKey, DesiredChannel, DesiredGroup, DesiredSubscription,
    DesiredUser, normalize_url, same_f64, same_limit,
};
use crm_domain::access::AccessCheck;
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::Capabilities;
use crm_domain::observed::{ChannelPricing, HostAccount, HostSnapshot};
use crm_domain::ownership::{has_crm_name, parse_marker, provider_slug};
use crm_domain::plan::FieldChange;
use crm_domain::reconcile::{DriftItem, ReconcileScope};
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    BatchId, DriftCategory, HostObjectId, Platform, ProviderRef, ReconcileStatus, ResourceKind,
    ResourceState, Verdict,
};
use crm_provision::desired::{PlatformChoice, choose_platform};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One live batch and the resources it manages.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBatch {
    pub batch: ImportBatch,
    pub resources: Vec<ManagedResource>,
    /// The batch's provider as its pack version declares it, when the pack
    /// is installed: what the platform choice is made from
    /// ([`crm_provision::desired::choose_platform`]).
    pub provider_spec: Option<ProviderSpec>,
}

impl RecordedBatch {
    /// Host ids of the live groups the batch manages (the default binding of
    /// its accounts and channels when their desired spec names none).
    pub fn groups(&self) -> Vec<HostObjectId> {
        let mut ids: Vec<HostObjectId> = self
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Group && r.state == ResourceState::Live)
            .map(|r| r.host_object_id)
            .collect();
        ids.sort();
        ids
    }
}

/// Where an account of `rb` should send its requests on this host, when the
/// recorded route cannot work here: an `openai` account on a host without
/// `/v1/chat/completions` speaks the Responses API upstream, which the CN
/// providers do not serve (batches imported before crm chose `anthropic`
/// there). `Ok(None)`: the recorded route is fine; `Err`: no route works.
pub fn platform_migration(
    rb: &RecordedBatch,
    platform: &Platform,
    caps: &Capabilities,
) -> Option<std::result::Result<PlatformChoice, String>> {
    if caps.chat_completions || platform.as_str() != Platform::OPENAI {
        return None;
    }
    Some(match &rb.provider_spec {
        Some(spec) => choose_platform(spec, caps).map_err(|b| b.reason),
        None => Err(format!(
            "the host has no /v1/chat/completions, so this openai account speaks the Responses API upstream; pack {} {} is not installed, so crm cannot say where it should point",
            rb.batch.provider.pack, rb.batch.pack_version
        )),
    })
    .filter(|c| c.as_ref().map_or(true, |c| c.platform != *platform))
}

/// Everything crm recorded about one host, and which part of it a run is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// What the run compares. Items outside the scope are not reported.
    pub scope: ReconcileScope,
    /// Every live batch on the host, in scope or not: ownership questions
    /// ("is this marker's batch live?") need all of them.
    pub batches: Vec<RecordedBatch>,
    /// Optional access re-checks (one per batch) made for this run.
    pub access: Vec<AccessCheck>,
}

impl Recorded {
    /// Whether a batch is inside the run's scope.
    pub fn in_scope(&self, batch: &ImportBatch) -> bool {
        scope_contains(&self.scope, batch)
    }

    /// The in-scope batches.
    pub fn scoped(&self) -> impl Iterator<Item = &RecordedBatch> {
        self.batches.iter().filter(|b| self.in_scope(&b.batch))
    }
}

/// Whether `batch` is part of `scope`.
pub fn scope_contains(scope: &ReconcileScope, batch: &ImportBatch) -> bool {
    batch.host_id == scope.host_id
        && scope.batch_id.as_ref().is_none_or(|b| *b == batch.id)
        && scope.provider.as_ref().is_none_or(|p| *p == batch.provider)
}

/// An account is counted for duplicates unless someone switched it off.
pub fn is_active_account(a: &HostAccount) -> bool {
    !matches!(a.status.as_str(), "inactive" | "disabled")
}

/// The natural key of an account as far as an observation can tell: crm's
/// deterministic names embed the upstream key's fingerprint, so the same
/// name on the same platform and base URL means the same upstream key.
pub fn account_identity(name: &str, platform: &str, base_url: Option<&str>) -> String {
    format!(
        "{platform}|{}|{name}",
        base_url.map(normalize_url).unwrap_or_default()
    )
}

/// The status a set of items amounts to.
pub fn status_of(items: &[DriftItem]) -> ReconcileStatus {
    if items.iter().any(|i| i.category == DriftCategory::Unknown) {
        ReconcileStatus::Unreachable
    } else if items.is_empty() {
        ReconcileStatus::InSync
    } else {
        ReconcileStatus::Drifted
    }
}

/// Items for a host that could not be observed: one `unknown` per in-scope
/// live resource, nothing else. Nothing about the host is guessed.
pub fn unreachable(recorded: &Recorded, reason: &str) -> Vec<DriftItem> {
    let mut items: Vec<DriftItem> = recorded
        .scoped()
        .flat_map(|rb| {
            rb.resources
                .iter()
                .filter(|r| r.state == ResourceState::Live)
                .map(|r| DriftItem {
                    category: DriftCategory::Unknown,
                    reason: None,
                    kind: r.kind,
                    name: r.name.clone(),
                    host_object_id: Some(r.host_object_id),
                    batch_id: Some(rb.batch.id.clone()),
                    fields: vec![],
                    detail: format!("state unknown: {reason}"),
                })
        })
        .collect();
    sort_items(&mut items);
    items
}

/// Compares recorded desired state with one observation of the host.
pub fn diff(recorded: &Recorded, observed: &HostSnapshot, caps: &Capabilities) -> Vec<DriftItem> {
    let mut cx = Cx::new(recorded, observed, caps);
    for rb in recorded.scoped() {
        for r in rb
            .resources
            .iter()
            .filter(|r| r.state == ResourceState::Live)
        {
            cx.check_resource(rb, r);
        }
    }
    for rb in recorded.scoped() {
        cx.group_duplicates(rb);
    }
    cx.leftovers();
    cx.access();
    let mut items = cx.items;
    sort_items(&mut items);
    items
}

/// Deterministic order: by category, then import order of kinds, then name.
pub fn sort_items(items: &mut [DriftItem]) {
    items.sort_by(|a, b| {
        (
            a.category,
            a.kind.apply_rank(),
            &a.name,
            a.host_object_id,
            &a.batch_id,
            &a.detail,
        )
            .cmp(&(
                b.category,
                b.kind.apply_rank(),
                &b.name,
                b.host_object_id,
                &b.batch_id,
                &b.detail,
            ))
    });
}

struct Cx<'a> {
    recorded: &'a Recorded,
    observed: &'a HostSnapshot,
    caps: &'a Capabilities,
    /// Live batch -> provider, for ownership questions.
    live: BTreeMap<&'a BatchId, &'a ProviderRef>,
    /// Every (kind, host id) any live batch records (any resource state but
    /// deleted), so a recorded object is never called a leftover.
    recorded_ids: BTreeSet<(ResourceKind, HostObjectId)>,
    /// Accounts already reported as duplicates.
    flagged: BTreeSet<HostObjectId>,
    /// Observed accounts by id, and by natural identity in observed order:
    /// every recorded account looks itself and its duplicates up, so a scan
    /// per account made a host with thousands of accounts quadratic.
    account_by_id: HashMap<HostObjectId, &'a HostAccount>,
    accounts_by_identity: HashMap<String, Vec<&'a HostAccount>>,
    items: Vec<DriftItem>,
}

impl<'a> Cx<'a> {
    fn new(recorded: &'a Recorded, observed: &'a HostSnapshot, caps: &'a Capabilities) -> Self {
        let live = recorded
            .batches
            .iter()
            .filter(|b| b.batch.status.is_live())
            .map(|b| (&b.batch.id, &b.batch.provider))
            .collect();
        let recorded_ids = recorded
            .batches
            .iter()
            .filter(|b| b.batch.status.is_live())
            .flat_map(|b| &b.resources)
            .filter(|r| r.state != ResourceState::Deleted)
            .map(|r| (r.kind, r.host_object_id))
            .collect();
        let account_by_id = observed.accounts.iter().map(|a| (a.id, a)).collect();
        let mut accounts_by_identity: HashMap<String, Vec<&HostAccount>> = HashMap::new();
        for a in &observed.accounts {
            accounts_by_identity
                .entry(account_identity(
                    &a.name,
                    a.platform.as_str(),
                    a.base_url.as_deref(),
                ))
                .or_default()
                .push(a);
        }
        Cx {
            recorded,
            observed,
            caps,
            live,
            recorded_ids,
            flagged: BTreeSet::new(),
            account_by_id,
            accounts_by_identity,
            items: vec![],
        }
    }

    fn push(
        &mut self,
        category: DriftCategory,
        r: &ManagedResource,
        fields: Vec<FieldChange>,
        detail: String,
    ) {
        self.items.push(DriftItem {
            category,
            reason: None,
            kind: r.kind,
            name: r.name.clone(),
            host_object_id: Some(r.host_object_id),
            batch_id: Some(r.batch_id.clone()),
            fields,
            detail,
        });
    }

    fn missing(&mut self, r: &ManagedResource, detail: String) {
        self.push(DriftCategory::Missing, r, vec![], detail);
    }

    fn changed(&mut self, r: &ManagedResource, fields: Vec<FieldChange>) {
        if fields.is_empty() {
            return;
        }
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let detail = format!("differs from the recorded spec in {}", names.join(", "));
        self.push(DriftCategory::Changed, r, fields, detail);
    }

    fn check_resource(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        match r.kind {
            ResourceKind::Account => self.check_account(rb, r),
            ResourceKind::Group => self.check_group(rb, r),
            ResourceKind::Channel => self.check_channel(rb, r),
            ResourceKind::User => self.check_user(r),
            ResourceKind::UserApiKey => self.check_api_key(r),
            ResourceKind::Subscription => self.check_subscription(r),
            // A balance grant is an event, not an object the host lists.
            ResourceKind::BalanceGrant => {}
        }
    }

    fn check_account(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredAccount = desired::read(&r.desired);
        let Some(a) = self.account_by_id.get(&r.host_object_id).copied() else {
            let identity = account_identity(
                d.name.as_deref().unwrap_or(&r.name),
                d.platform.as_ref().map(|p| p.as_str()).unwrap_or_default(),
                d.base_url.as_deref(),
            );
            let candidates = self.accounts_by_identity.get(&identity).map_or(0, |same| {
                same.iter().filter(|a| is_active_account(a)).count()
            });
            let detail = if candidates == 0 {
                "account is gone from the host".to_owned()
            } else {
                format!(
                    "account is gone from the host; {candidates} other account(s) share its natural key"
                )
            };
            self.missing(r, detail);
            return;
        };
        let mut f = Vec::new();
        // An account shared by both modes of a provider carries the marker
        // of the batch that created it; the other batch adopted it as is.
        let shared_owner = a
            .notes
            .as_deref()
            .and_then(parse_marker)
            .is_some_and(|owner| self.live.get(&owner) == Some(&&rb.batch.provider));
        if self.account_notes() && !shared_owner {
            marker_field(&mut f, "notes", d.notes.as_deref(), a.notes.as_deref());
        }
        if let Some(name) = &d.name
            && *name != a.name
        {
            f.push(change("name", json!(a.name), json!(name)));
        }
        let migration = platform_migration(rb, &a.platform, self.caps);
        if let Some(target) = &migration {
            // Recorded as crm made it, but a route this host cannot serve.
            let (p, u) = match target {
                Ok(c) => (json!(c.platform), json!(c.base_url)),
                Err(_) => (Value::Null, Value::Null),
            };
            f.push(change("platform", json!(a.platform), p));
            f.push(change("base_url", json!(a.base_url), u));
        } else if let Some(p) = &d.platform
            && *p != a.platform
        {
            f.push(change("platform", json!(a.platform), json!(p)));
        }
        if let Some(t) = &d.account_type
            && *t != a.account_type
        {
            f.push(change("type", json!(a.account_type), json!(t)));
        }
        if let Some(u) = &d.base_url
            && migration.is_none()
            && a.base_url.as_deref().map(normalize_url) != Some(normalize_url(u))
        {
            f.push(change("base_url", json!(a.base_url), json!(u)));
        }
        if let Some(m) = &d.model_mapping
            && *m != a.model_mapping
        {
            f.push(change("model_mapping", json!(a.model_mapping), json!(m)));
        }
        for (k, v) in d.credential_fields.iter().flatten() {
            let seen = a.credential_fields.get(k);
            if seen != Some(v) {
                f.push(change(&format!("credentials.{k}"), json!(seen), v.clone()));
            }
        }
        for (k, v) in d.extra.iter().flatten().filter(|_| migration.is_none()) {
            let seen = a.extra.get(k);
            if seen != Some(v) {
                f.push(change(&format!("extra.{k}"), json!(seen), v.clone()));
            }
        }
        // Redacting hosts only say whether a key is there; that is all crm compares.
        if !a.has_api_key {
            f.push(change("credentials.has_api_key", json!(false), json!(true)));
        }
        // Only groups a live batch still manages: a rolled-back batch that
        // shared this account took its group (and the binding) with it.
        let expected: Vec<HostObjectId> = d
            .group_ids
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| rb.groups())
            .into_iter()
            .filter(|g| self.recorded_ids.contains(&(ResourceKind::Group, *g)))
            .collect();
        if let Some(bound) = binding_change(&a.group_ids, &expected) {
            f.push(bound);
        }
        if matches!(a.status.as_str(), "inactive" | "disabled") {
            f.push(change("status", json!(a.status), json!("active")));
        }
        self.changed(r, f);

        let mut reasons = Vec::new();
        let mut uf = Vec::new();
        if a.status == "error" {
            let msg = a.error_message.as_deref().filter(|m| !m.is_empty());
            reasons.push(match msg {
                Some(m) => format!("status=error ({m})"),
                None => "status=error".to_owned(),
            });
            uf.push(change("status", json!(a.status), json!("active")));
        }
        if let Some(reason) = a
            .temp_unschedulable_reason
            .as_deref()
            .filter(|r| !r.is_empty())
        {
            reasons.push(format!("temporarily unschedulable ({reason})"));
            uf.push(change(
                "temp_unschedulable_reason",
                json!(reason),
                Value::Null,
            ));
        }
        if !a.schedulable {
            reasons.push("not schedulable".to_owned());
            uf.push(change("schedulable", json!(false), json!(true)));
        }
        if !reasons.is_empty() {
            self.push(DriftCategory::Unhealthy, r, uf, reasons.join("; "));
        }

        // Same natural key, several active accounts.
        let identity = account_identity(&a.name, a.platform.as_str(), a.base_url.as_deref());
        let dups: Vec<&HostAccount> = self
            .accounts_by_identity
            .get(&identity)
            .into_iter()
            .flatten()
            .copied()
            .filter(|o| {
                o.id != a.id
                    && is_active_account(o)
                    && !self.recorded_ids.contains(&(ResourceKind::Account, o.id))
            })
            .collect();
        for o in dups {
            if self.flagged.insert(o.id) {
                let owner = o.notes.as_deref().and_then(parse_marker);
                let whose = if owner.is_some() {
                    "crm-marked"
                } else if !self.account_notes() {
                    // crm's name is only a mark together with a recorded id.
                    "this host keeps no account notes and no batch records it (reported only, never touched)"
                } else {
                    "not crm-marked (reported only, never touched)"
                };
                self.items.push(DriftItem {
                    category: DriftCategory::Duplicate,
                    reason: None,
                    kind: ResourceKind::Account,
                    name: o.name.clone(),
                    host_object_id: Some(o.id),
                    batch_id: owner,
                    fields: vec![],
                    detail: format!(
                        "same natural key as recorded account #{} of batch {}; {whose}",
                        a.id, r.batch_id
                    ),
                });
            }
        }
    }

    /// Unrecorded crm accounts of the batch's provider bound to its groups.
    fn group_duplicates(&mut self, rb: &RecordedBatch) {
        for g in rb.groups() {
            for a in &self.observed.accounts {
                if !a.group_ids.contains(&g)
                    || !is_active_account(a)
                    || self.recorded_ids.contains(&(ResourceKind::Account, a.id))
                    || self.flagged.contains(&a.id)
                {
                    continue;
                }
                let Some(owner) = a.notes.as_deref().and_then(parse_marker) else {
                    continue;
                };
                if self.live.get(&owner) != Some(&&rb.batch.provider) {
                    continue;
                }
                self.flagged.insert(a.id);
                self.items.push(DriftItem {
                    category: DriftCategory::Duplicate,
                    reason: None,
                    kind: ResourceKind::Account,
                    name: a.name.clone(),
                    host_object_id: Some(a.id),
                    batch_id: Some(owner),
                    fields: vec![],
                    detail: format!(
                        "unrecorded crm account of {} bound to group #{g} next to the recorded one(s)",
                        rb.batch.provider
                    ),
                });
            }
        }
    }

    fn check_group(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredGroup = desired::read(&r.desired);
        let Some(g) = self
            .observed
            .groups
            .iter()
            .find(|g| g.id == r.host_object_id)
        else {
            self.missing(r, "group is gone from the host".into());
            return;
        };
        let mut f = Vec::new();
        marker_field(
            &mut f,
            "description",
            d.description.as_deref(),
            g.description.as_deref(),
        );
        if let Some(n) = &d.name
            && *n != g.name
        {
            f.push(change("name", json!(g.name), json!(n)));
        }
        // The group's platform follows its accounts' (see check_account).
        if let Some(Ok(c)) = platform_migration(rb, &g.platform, self.caps) {
            f.push(change("platform", json!(g.platform), json!(c.platform)));
        } else if let Some(p) = &d.platform
            && *p != g.platform
        {
            f.push(change("platform", json!(g.platform), json!(p)));
        }
        if let Some(b) = d.billing
            && b != g.billing
        {
            f.push(change("subscription_type", json!(g.billing), json!(b)));
        }
        if let Some(m) = d.rate_multiplier
            && !same_f64(m, g.rate_multiplier)
        {
            f.push(change(
                "rate_multiplier",
                json!(g.rate_multiplier),
                json!(m),
            ));
        }
        for (field, want, seen) in [
            ("daily_limit_usd", d.daily_limit_usd, g.daily_limit_usd),
            ("weekly_limit_usd", d.weekly_limit_usd, g.weekly_limit_usd),
            (
                "monthly_limit_usd",
                d.monthly_limit_usd,
                g.monthly_limit_usd,
            ),
        ] {
            // `null` in a desired spec means "unlimited", which differs from
            // a spec that does not state the limit at all.
            if desired::states(&r.desired, field) && !same_limit(want, seen) {
                f.push(change(field, json!(seen), json!(want)));
            }
        }
        if let Some(x) = d.is_exclusive
            && x != g.is_exclusive
        {
            f.push(change("is_exclusive", json!(g.is_exclusive), json!(x)));
        }
        if g.status != "active" {
            f.push(change("status", json!(g.status), json!("active")));
        }
        self.changed(r, f);
    }

    fn check_channel(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredChannel = desired::read(&r.desired);
        let Some(c) = self
            .observed
            .channels
            .iter()
            .flatten()
            .find(|c| c.id == r.host_object_id)
        else {
            let detail = if self.observed.channels.is_none() || !self.caps.channels {
                "channel is gone: the host no longer offers channels"
            } else {
                "channel is gone from the host"
            };
            self.missing(r, detail.into());
            return;
        };
        let mut f = Vec::new();
        marker_field(
            &mut f,
            "description",
            d.description.as_deref(),
            c.description.as_deref(),
        );
        if let Some(n) = &d.name
            && *n != c.name
        {
            f.push(change("name", json!(c.name), json!(n)));
        }
        let expected = d
            .group_ids
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| rb.groups());
        if let Some(bound) = binding_change(&c.group_ids, &expected) {
            f.push(bound);
        }
        if let Some(rows) = &d.model_pricing {
            f.extend(pricing_changes(&c.model_pricing, rows));
        }
        if let Some(m) = &d.model_mapping
            && *m != c.model_mapping
        {
            f.push(change("model_mapping", json!(c.model_mapping), json!(m)));
        }
        if let Some(s) = &d.billing_model_source
            && *s != c.billing_model_source
        {
            f.push(change(
                "billing_model_source",
                json!(c.billing_model_source),
                json!(s),
            ));
        }
        if let Some(x) = d.restrict_models
            && x != c.restrict_models
        {
            f.push(change(
                "restrict_models",
                json!(c.restrict_models),
                json!(x),
            ));
        }
        if c.status != "active" {
            f.push(change("status", json!(c.status), json!("active")));
        }
        self.changed(r, f);
    }

    fn check_user(&mut self, r: &ManagedResource) {
        let d: DesiredUser = desired::read(&r.desired);
        let Some(u) = self
            .observed
            .users
            .iter()
            .find(|u| u.id == r.host_object_id)
        else {
            self.missing(r, "user is gone from the host".into());
            return;
        };
        let mut f = Vec::new();
        marker_field(&mut f, "notes", d.notes.as_deref(), u.notes.as_deref());
        if let Some(groups) = &d.allowed_groups
            && let Some(c) = binding_change(&u.allowed_groups, groups)
        {
            f.push(FieldChange {
                field: "allowed_groups".into(),
                ..c
            });
        }
        if u.status != "active" {
            f.push(change("status", json!(u.status), json!("active")));
        }
        self.changed(r, f);
    }

    fn check_api_key(&mut self, r: &ManagedResource) {
        let d: DesiredApiKey = desired::read(&r.desired);
        let Some(k) = self
            .observed
            .api_keys
            .iter()
            .find(|k| k.id == r.host_object_id)
        else {
            self.missing(r, "gateway key is gone from the host".into());
            return;
        };
        let mut f = Vec::new();
        if let Some(g) = d.group_id
            && k.group_id != Some(g)
        {
            f.push(change("group_id", json!(k.group_id), json!(g)));
        }
        if k.status != "active" {
            f.push(change("status", json!(k.status), json!("active")));
        }
        self.changed(r, f);
    }

    fn check_subscription(&mut self, r: &ManagedResource) {
        let d: DesiredSubscription = desired::read(&r.desired);
        let Some(s) = self
            .observed
            .subscriptions
            .iter()
            .find(|s| s.id == r.host_object_id)
        else {
            self.missing(r, "subscription is gone from the host".into());
            return;
        };
        let mut f = Vec::new();
        if let Some(g) = d.group_id
            && s.group_id != g
        {
            f.push(change("group_id", json!(s.group_id), json!(g)));
        }
        if let Some(u) = d.user_id
            && s.user_id != u
        {
            f.push(change("user_id", json!(s.user_id), json!(u)));
        }
        if !s.is_active() {
            f.push(change("status", json!(s.status), json!("active")));
        }
        self.changed(r, f);
    }

    /// Whether this host keeps notes on accounts (older hosts do not, and
    /// then crm's name is the only mark).
    fn account_notes(&self) -> bool {
        // Same rule as provisioning uses when it decides to write notes.
        crm_provision::desired::account_notes_supported(self.caps)
            || self.observed.accounts.iter().any(|a| a.notes.is_some())
    }

    fn user_notes(&self) -> bool {
        self.caps.channels || self.observed.users.iter().any(|u| u.notes.is_some())
    }

    fn leftovers(&mut self) {
        let wanted: Box<dyn Fn(&str) -> bool> =
            match (&self.recorded.scope.batch_id, &self.recorded.scope.provider) {
                // A batch-scoped run is about that batch's objects only.
                (Some(_), _) => return,
                (None, Some(p)) => {
                    let slug = provider_slug(p);
                    Box::new(move |name: &str| name.contains(&slug))
                }
                (None, None) => Box::new(|_| true),
            };
        let account_notes = self.account_notes();
        let user_notes = self.user_notes();
        let mut found = Vec::new();
        for a in &self.observed.accounts {
            found.push((
                ResourceKind::Account,
                a.id,
                a.name.clone(),
                a.notes.clone(),
                !account_notes,
            ));
        }
        for g in &self.observed.groups {
            found.push((
                ResourceKind::Group,
                g.id,
                g.name.clone(),
                g.description.clone(),
                false,
            ));
        }
        for c in self.observed.channels.iter().flatten() {
            found.push((
                ResourceKind::Channel,
                c.id,
                c.name.clone(),
                c.description.clone(),
                false,
            ));
        }
        for u in &self.observed.users {
            let name = u
                .username
                .clone()
                .filter(|n| has_crm_name(n))
                .unwrap_or(u.email.clone());
            found.push((ResourceKind::User, u.id, name, u.notes.clone(), !user_notes));
        }
        for k in &self.observed.api_keys {
            found.push((ResourceKind::UserApiKey, k.id, k.name.clone(), None, true));
        }
        for s in &self.observed.subscriptions {
            let name = format!(
                "subscription of user #{} to group #{}",
                s.user_id, s.group_id
            );
            found.push((
                ResourceKind::Subscription,
                s.id,
                name,
                s.notes.clone(),
                false,
            ));
        }
        for (kind, id, name, text, name_only) in found {
            // A duplicate of a recorded account is reported as that, once:
            // residue is what no live batch accounts for.
            if !wanted(&name) || (kind == ResourceKind::Account && self.flagged.contains(&id)) {
                continue;
            }
            match text.as_deref().and_then(parse_marker) {
                Some(owner) => {
                    // A live batch that records the object owns it now (an
                    // account kept for the other mode after its creator was
                    // rolled back still carries the creator's marker).
                    if !self.live.contains_key(&owner) && !self.recorded_ids.contains(&(kind, id)) {
                        self.items.push(DriftItem {
                            category: DriftCategory::UnmanagedLeftover,
                            reason: None,
                            kind,
                            name,
                            host_object_id: Some(id),
                            detail: format!(
                                "marked as crm's by batch {owner}, which is not live on this host"
                            ),
                            batch_id: Some(owner),
                            fields: vec![],
                        });
                    }
                }
                None => {
                    if name_only && has_crm_name(&name) && !self.recorded_ids.contains(&(kind, id))
                    {
                        self.items.push(DriftItem {
                            category: DriftCategory::UnmanagedLeftover,
                            reason: None,
                            kind,
                            name,
                            host_object_id: Some(id),
                            batch_id: None,
                            fields: vec![],
                            detail: "carries crm's name (this host keeps no notes for it) and no live batch records it".into(),
                        });
                    }
                }
            }
        }
    }

    fn access(&mut self) {
        for check in &self.recorded.access {
            if check.verdict != Verdict::Fail {
                continue;
            }
            let Some(rb) = self
                .recorded
                .scoped()
                .find(|b| b.batch.id == check.batch_id)
            else {
                continue;
            };
            let key = rb
                .resources
                .iter()
                .find(|r| r.kind == ResourceKind::UserApiKey && r.state == ResourceState::Live);
            let fields = check
                .failure_class
                .map(|c| vec![change("failure_class", Value::Null, json!(c))])
                .unwrap_or_default();
            self.items.push(DriftItem {
                category: DriftCategory::AccessBroken,
                reason: None,
                kind: ResourceKind::UserApiKey,
                name: key
                    .map(|k| k.name.clone())
                    .unwrap_or_else(|| format!("{} access ({})", rb.batch.provider, check.mode)),
                host_object_id: key.map(|k| k.host_object_id),
                batch_id: Some(check.batch_id.clone()),
                fields,
                detail: check.summary.clone(),
            });
        }
    }
}

fn change(field: &str, from: Value, to: Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        from,
        to,
    }
}

/// A recorded object whose marker was removed or replaced is no longer
/// provably crm's; report it (repair will refuse to touch it).
fn marker_field(out: &mut Vec<FieldChange>, field: &str, want: Option<&str>, seen: Option<&str>) {
    let Some(want_batch) = want.and_then(parse_marker) else {
        return;
    };
    if seen.and_then(parse_marker) != Some(want_batch) {
        out.push(change(field, json!(seen), json!(want)));
    }
}

/// crm needs its groups bound; other bindings an operator added are theirs.
fn binding_change(seen: &[HostObjectId], expected: &[HostObjectId]) -> Option<FieldChange> {
    if expected.iter().all(|g| seen.contains(g)) {
        return None;
    }
    let mut want: Vec<HostObjectId> = seen.to_vec();
    want.extend(expected.iter().filter(|g| !seen.contains(g)));
    want.sort();
    want.dedup();
    let mut from = seen.to_vec();
    from.sort();
    Some(change("group_ids", json!(from), json!(want)))
}

/// Stable key of a pricing row: its platform and its sorted models.
pub fn pricing_key(row: &ChannelPricing) -> String {
    let mut models = row.models.clone();
    models.sort();
    format!("{}:{}", row.platform, models.join(","))
}

fn same_price(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => same_f64(x, y),
        _ => false,
    }
}

fn same_row(a: &ChannelPricing, b: &ChannelPricing) -> bool {
    a.billing_mode == b.billing_mode
        && same_price(a.input_price, b.input_price)
        && same_price(a.output_price, b.output_price)
        && same_price(a.cache_read_price, b.cache_read_price)
        && same_price(a.cache_write_price, b.cache_write_price)
}

/// Per-row differences of channel pricing, keyed by platform and models.
fn pricing_changes(seen: &[ChannelPricing], want: &[ChannelPricing]) -> Vec<FieldChange> {
    let seen: BTreeMap<String, &ChannelPricing> =
        seen.iter().map(|r| (pricing_key(r), r)).collect();
    let want: BTreeMap<String, &ChannelPricing> =
        want.iter().map(|r| (pricing_key(r), r)).collect();
    let keys: BTreeSet<&String> = seen.keys().chain(want.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        let field = format!("model_pricing[{k}]");
        match (seen.get(k), want.get(k)) {
            (Some(s), Some(w)) if !same_row(s, w) => {
                out.push(change(&field, json!(s), json!(w)));
            }
            (Some(s), None) => out.push(change(&field, json!(s), Value::Null)),
            (None, Some(w)) => out.push(change(&field, Value::Null, json!(w))),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crm_domain::access::AccessCheck;
    use crm_domain::observed::HostGroup;
    use crm_domain::ownership::marked_text;
    use crm_domain::{
        AccessCheckId, AccessMode, BatchStatus, FailureClass, GroupBilling, HostId, Platform,
    };

    type Mutate = fn(&mut Recorded, &mut HostSnapshot);

    fn old_batch_group() -> HostGroup {
        HostGroup {
            id: HostObjectId(50),
            name: "crm-cn-official.deepseek".into(),
            description: Some(marked_text(&BatchId::new("b-old"), "provider group")),
            ..DEEPSEEK.group()
        }
    }

    fn run(mutate: Mutate) -> Vec<DriftItem> {
        let mut rec = recorded();
        let mut obs = in_sync();
        mutate(&mut rec, &mut obs);
        diff(&rec, &obs, &caps())
    }

    fn summary(items: &[DriftItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| {
                let fields: Vec<&str> = i.fields.iter().map(|f| f.field.as_str()).collect();
                format!(
                    "{} {} #{} [{}]",
                    i.category,
                    i.kind,
                    i.host_object_id.map(|h| h.0).unwrap_or(0),
                    fields.join(",")
                )
            })
            .collect()
    }

    /// (case, mutation, expected "category kind #id [fields]" lines, in order)
    const CASES: &[(&str, Mutate, &[&str])] = &[
        ("in sync", |_, _| {}, &[]),
        (
            "deleted account is missing",
            |_, o| o.accounts.retain(|a| a.id.0 != 1),
            &["missing account #1 []"],
        ),
        (
            "deleted group and channel are missing",
            |_, o| {
                o.groups.retain(|g| g.id.0 != 11);
                o.channels.as_mut().unwrap().retain(|c| c.id.0 != 21);
            },
            &["missing group #11 []", "missing channel #21 []"],
        ),
        (
            "channel price change names the row",
            |_, o| o.channels.as_mut().unwrap()[0].model_pricing[0].input_price = Some(5e-7),
            &["changed channel #20 [model_pricing[deepseek:deepseek-chat]]"],
        ),
        (
            "channel mapping, billing source and restriction",
            |_, o| {
                let c = &mut o.channels.as_mut().unwrap()[1];
                c.model_mapping.clear();
                c.billing_model_source = "requested".into();
                c.restrict_models = false;
            },
            &["changed channel #21 [model_mapping,billing_model_source,restrict_models]"],
        ),
        (
            "an extra pricing row is reported as removed",
            |_, o| {
                let c = &mut o.channels.as_mut().unwrap()[0];
                let mut row = c.model_pricing[0].clone();
                row.models = vec!["deepseek-reasoner".into()];
                c.model_pricing.push(row);
            },
            &["changed channel #20 [model_pricing[deepseek:deepseek-reasoner]]"],
        ),
        (
            "group billing type, multiplier and limits",
            |_, o| {
                let g = &mut o.groups[0];
                g.billing = GroupBilling::Subscription;
                g.rate_multiplier = 1.5;
                g.monthly_limit_usd = Some(10.0);
            },
            &["changed group #10 [subscription_type,rate_multiplier,monthly_limit_usd]"],
        ),
        (
            "unlimited as -1 or null is the same",
            |_, o| o.groups[1].weekly_limit_usd = Some(-1.0),
            &[],
        ),
        (
            "account base url, platform, binding, mapping, key presence",
            |_, o| {
                let a = &mut o.accounts[0];
                a.base_url = Some("https://evil.example".into());
                a.platform = Platform::openai();
                a.group_ids.clear();
                a.model_mapping.clear();
                a.has_api_key = false;
            },
            &[
                "changed account #1 [platform,base_url,model_mapping,credentials.has_api_key,group_ids]",
            ],
        ),
        (
            "trailing slash on the base url is not drift",
            |_, o| o.accounts[1].base_url = Some("https://api.moonshot.cn/v1/".into()),
            &[],
        ),
        (
            "extra bindings an operator added are theirs",
            |_, o| o.accounts[0].group_ids.push(HostObjectId(77)),
            &[],
        ),
        (
            "host-written extra keys are not compared",
            |_, o| {
                o.accounts[0]
                    .extra
                    .insert("openai_responses_supported".into(), json!(true));
            },
            &[],
        ),
        (
            "disabled recorded account is changed",
            |_, o| o.accounts[0].status = "inactive".into(),
            &["changed account #1 [status]"],
        ),
        (
            "removed marker is reported, never silently accepted",
            |_, o| o.groups[0].description = Some("the operator rewrote this".into()),
            &["changed group #10 [description]"],
        ),
        (
            "copy with the same key is a duplicate",
            |_, o| {
                let mut dup = DEEPSEEK.account();
                dup.id = HostObjectId(30);
                o.accounts.push(dup);
            },
            &["duplicate account #30 []"],
        ),
        (
            "disabled copies are not duplicates",
            |_, o| {
                let mut dup = DEEPSEEK.account();
                dup.id = HostObjectId(30);
                dup.status = "inactive".into();
                o.accounts.push(dup);
            },
            &[],
        ),
        (
            "unrecorded crm account of the provider in its group",
            |_, o| {
                let mut other = DEEPSEEK.account();
                other.id = HostObjectId(31);
                other.name = "crm-cn-official.deepseek-k9".into();
                o.accounts.push(other);
            },
            &["duplicate account #31 []"],
        ),
        (
            "unmarked account in the group is not crm's",
            |_, o| {
                let mut other = DEEPSEEK.account();
                other.id = HostObjectId(32);
                other.name = "crm-cn-official.deepseek-k9".into();
                other.notes = Some("operator's".into());
                o.accounts.push(other);
            },
            &[],
        ),
        (
            "group from an old batch is a leftover",
            |_, o| o.groups.push(old_batch_group()),
            &["unmanaged_leftover group #50 []"],
        ),
        (
            "objects of a rolled back batch are leftovers",
            |r, _| r.batches[1].batch.status = BatchStatus::RolledBack,
            &[
                "unmanaged_leftover account #2 []",
                "unmanaged_leftover group #11 []",
                "unmanaged_leftover channel #21 []",
            ],
        ),
        (
            "crm-named object without a marker on a notes host is not crm's",
            |_, o| {
                let mut g = old_batch_group();
                g.description = None;
                o.groups.push(g);
            },
            &[],
        ),
        (
            "error, temp-unschedulable and unschedulable accounts",
            |_, o| {
                o.accounts[0].status = "error".into();
                o.accounts[0].error_message = Some("API returned 401".into());
                o.accounts[1].temp_unschedulable_reason = Some("429 burst".into());
                o.accounts[1].schedulable = false;
            },
            &[
                "unhealthy account #1 [status]",
                "unhealthy account #2 [temp_unschedulable_reason,schedulable]",
            ],
        ),
        (
            "failed access re-check",
            |r, _| {
                r.access.push(AccessCheck {
                    id: AccessCheckId::new("ac-1"),
                    batch_id: BatchId::new("b-kimi"),
                    mode: AccessMode::SelfService,
                    checked_at: t0(),
                    verdict: Verdict::Fail,
                    failure_class: Some(FailureClass::ModelNotExposed),
                    summary: "kimi-k2 is not listed on /v1/models".into(),
                    steps: vec![],
                })
            },
            &["access_broken user_api_key #0 [failure_class]"],
        ),
        (
            "batch scope ignores other batches and leftovers",
            |r, o| {
                r.scope.batch_id = Some(BatchId::new("b-ds"));
                o.accounts.retain(|a| a.id.0 != 2);
                o.groups.push(old_batch_group());
                o.channels.as_mut().unwrap()[0].restrict_models = false;
            },
            &["changed channel #20 [restrict_models]"],
        ),
        (
            "provider scope keeps leftovers named for the provider",
            |r, o| {
                r.scope.provider = Some(ProviderRef::parse("cn-official/kimi").unwrap());
                o.groups.push(old_batch_group());
                let mut g = old_batch_group();
                g.id = HostObjectId(51);
                g.name = "crm-cn-official.kimi".into();
                o.groups.push(g);
            },
            &["unmanaged_leftover group #51 []"],
        ),
    ];

    #[test]
    fn drift_table() {
        for (case, mutate, want) in CASES {
            let got = summary(&run(*mutate));
            assert_eq!(got, *want, "case: {case}");
        }
    }

    #[test]
    fn diff_is_deterministic() {
        let m: Mutate = |_, o| {
            o.accounts.retain(|a| a.id.0 != 1);
            o.groups.push(old_batch_group());
            o.accounts.reverse();
            o.groups.reverse();
        };
        assert_eq!(run(m), run(m));
    }

    #[test]
    fn name_is_the_only_mark_on_hosts_without_account_notes() {
        let mut rec = recorded();
        let mut obs = in_sync();
        let mut c = caps();
        c.credential_redaction = false;
        c.channels = false;
        obs.channels = None;
        for rb in &mut rec.batches {
            rb.resources.retain(|r| r.kind != ResourceKind::Channel);
        }
        for a in &mut obs.accounts {
            a.notes = None;
        }
        let mut stray = KIMI.account();
        stray.id = HostObjectId(40);
        stray.name = "crm-cn-official.kimi-k7".into();
        stray.notes = None;
        obs.accounts.push(stray);
        let got = summary(&diff(&rec, &obs, &c));
        assert_eq!(got, ["unmanaged_leftover account #40 []"]);
    }

    #[test]
    fn a_copy_of_a_recorded_account_is_a_duplicate_on_hosts_without_notes() {
        let mut rec = recorded();
        let mut obs = in_sync();
        let mut c = caps();
        c.credential_redaction = false;
        c.channels = false;
        obs.channels = None;
        for rb in &mut rec.batches {
            rb.resources.retain(|r| r.kind != ResourceKind::Channel);
        }
        for a in &mut obs.accounts {
            a.notes = None;
        }
        // Same natural key (platform, base URL, name with the key's
        // fingerprint) as the recorded DeepSeek account, recorded by no batch.
        let mut copy = DEEPSEEK.account();
        copy.id = HostObjectId(31);
        copy.notes = None;
        obs.accounts.push(copy);
        let items = diff(&rec, &obs, &c);
        assert_eq!(summary(&items), ["duplicate account #31 []"]);
        let d = &items[0];
        // Without a marker it is reported, never touched.
        assert_eq!(d.batch_id, None);
        assert!(
            d.detail.contains("same natural key as recorded account #"),
            "{}",
            d.detail
        );
        assert!(d.detail.contains("keeps no account notes"), "{}", d.detail);
    }

    #[test]
    fn unreachable_reports_unknown_and_nothing_else() {
        let rec = recorded();
        let items = unreachable(&rec, "connection refused");
        assert_eq!(items.len(), 6);
        assert!(items.iter().all(|i| i.category == DriftCategory::Unknown));
        assert_eq!(status_of(&items), ReconcileStatus::Unreachable);
        let empty = Recorded {
            batches: vec![],
            ..recorded()
        };
        assert!(unreachable(&empty, "x").is_empty());
        assert_eq!(status_of(&[]), ReconcileStatus::InSync);
        let _ = HostId::new("unused");
    }

    #[test]
    fn five_kinds_of_drift_snapshot() {
        let items = run(|_, o| {
            o.accounts.retain(|a| a.id.0 != 2);
            o.channels.as_mut().unwrap()[0].model_pricing[0].output_price = Some(2.2e-6);
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            dup.created_at = Some("2026-11-22T09:30:00Z".into());
            o.accounts.push(dup);
            o.groups.push(old_batch_group());
            o.accounts[0].status = "error".into();
            o.accounts[0].error_message = Some("API returned 401: invalid key".into());
        });
        assert_eq!(status_of(&items), ReconcileStatus::Drifted);
        insta::assert_json_snapshot!(items);
    }
}
