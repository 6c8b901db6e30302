//! Repair: a plan first, then applied under the scope's lease and through
//! crm-provision's write-ahead journal, exactly like an import.
//!
//! What a repair does, per drift category:
//! - `missing`: recreated from the recorded desired spec; an account found
//!   again by natural key is adopted instead. crm stores upstream keys only
//!   as fingerprints, so recreating an account needs its key from the caller
//!   ([`RepairOptions::upstream_keys`]); without it the item is `blocked` and
//!   names the key by fingerprint. Closure objects (users, keys,
//!   subscriptions) belong to the access setup and are `blocked` here.
//! - `changed`: the recorded fields are written back; an object whose marker
//!   was removed is `blocked` (crm never modifies an object without it).
//! - `duplicate`: crm-marked duplicates are disabled (status `inactive`, not
//!   schedulable), never deleted; the oldest healthy account of the set is kept.
//! - `unhealthy`: `clear-error` and `schedulable=true`, only when asked.
//! - `unmanaged_leftover`: deleted (and the deletion confirmed by a fresh
//!   list; 404 counts as done) only when asked to prune.
//! - `access_broken`, `unknown`: nothing to do here.
//!
//! Every mutation is journaled under the batch that owns the object. A
//! leftover whose batch crm has no record of is journaled under a batch
//! record created for it (status `rolled_back`, reason says it was found as
//! residue), because the journal needs a batch and the trail should say who
//! deleted what.

use crate::desired::{self, DesiredAccount};
use crate::diff::{Recorded, RecordedBatch, account_identity, is_active_account};
use crate::error::{ReconcileError, Result};
use crate::run::{self, Observation, Ports, RUN_LEASE_TTL, busy};
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::observed::{
    AccountDraft, AccountPatch, ChannelDraft, GroupDraft, HostAccount, HostSnapshot,
};
use crm_domain::ops::Lease;
use crm_domain::ownership::{NAME_PREFIX, parse_marker};
use crm_domain::plan::{FieldChange, Plan, PlanItem};
use crm_domain::ports::{HostApi, HostError, HostResult, StoreError};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, DriftCategory, Fingerprint, HostObjectId,
    JournalOp, KeyFingerprinter, PlanAction, ProviderRef, ReconcileRunId, ResourceKind,
    ResourceState, SecretString,
};
use crm_provision::{Intent, JournalExecutor, ProvisionError, Step};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a repair may do.
#[derive(Debug, Clone)]
pub struct RepairOptions {
    /// Upstream keys the operator supplied: recreating a missing account (or
    /// restoring one that lost its key) needs its key, which crm does not
    /// keep. Matched to accounts by fingerprint.
    pub upstream_keys: Vec<SecretString>,
    /// Fingerprints `upstream_keys` (the installation's keyed HMAC); keys are
    /// ignored without it.
    pub fingerprinter: Option<Arc<KeyFingerprinter>>,
    /// Apply the plan (otherwise only plan it).
    pub apply: bool,
    /// Delete `unmanaged_leftover` objects.
    pub prune: bool,
    /// Clear `unhealthy` accounts (clear-error, schedulable).
    pub clear_unhealthy: bool,
    /// Lease holder name.
    pub holder: String,
}

impl RepairOptions {
    /// The supplied keys by fingerprint hmac.
    fn keys(&self) -> BTreeMap<String, SecretString> {
        let Some(f) = &self.fingerprinter else {
            return BTreeMap::new();
        };
        self.upstream_keys
            .iter()
            .map(|k| (f.fingerprint(k).hmac, k.clone()))
            .collect()
    }
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions {
            apply: false,
            prune: false,
            clear_unhealthy: false,
            holder: "crm-reconcile".into(),
            upstream_keys: vec![],
            fingerprinter: None,
        }
    }
}

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

/// One step of a repair, with what it needs to run.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Nothing,
    RecreateGroup {
        old: ManagedResource,
        draft: GroupDraft,
    },
    RecreateAccount {
        old: ManagedResource,
        /// Fingerprint hmac of the upstream key (supplied by the caller).
        key: String,
        desired: Value,
        groups: Vec<HostObjectId>,
    },
    AdoptAccount {
        old: ManagedResource,
        found: HostObjectId,
    },
    RecreateChannel {
        old: ManagedResource,
        draft: ChannelDraft,
    },
    RestoreAccount {
        r: ManagedResource,
        base_url: Option<String>,
        model_mapping: Option<BTreeMap<String, String>>,
        extra: Option<BTreeMap<String, Value>>,
        groups: Option<Vec<HostObjectId>>,
        activate: bool,
        /// Fingerprint hmac of the upstream key to put back, if it was lost.
        key: Option<String>,
    },
    RestoreGroup {
        r: ManagedResource,
        draft: GroupDraft,
    },
    RestoreChannel {
        r: ManagedResource,
        draft: ChannelDraft,
    },
    Disable {
        batch: BatchId,
        id: HostObjectId,
        name: String,
    },
    Clear {
        r: ManagedResource,
        error: bool,
        schedulable: bool,
    },
    Prune {
        batch: BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        name: String,
    },
}

impl Op {
    /// Execution order: groups exist before the accounts and channels bound
    /// to them; deletions go last, closure first and groups last.
    fn rank(&self) -> (u8, u8) {
        match self {
            Op::RecreateGroup { .. } | Op::RestoreGroup { .. } => (0, 0),
            Op::RecreateAccount { .. } | Op::AdoptAccount { .. } | Op::RestoreAccount { .. } => {
                (1, 0)
            }
            Op::RecreateChannel { .. } | Op::RestoreChannel { .. } => (2, 0),
            Op::Disable { .. } => (3, 0),
            Op::Clear { .. } => (4, 0),
            Op::Prune { kind, .. } => (5, 10 - kind.apply_rank().min(9)),
            Op::Nothing => (6, 0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Planned {
    item: PlanItem,
    op: Op,
}

fn item(
    kind: ResourceKind,
    action: PlanAction,
    name: &str,
    id: Option<HostObjectId>,
    changes: Vec<FieldChange>,
    reason: impl Into<String>,
) -> PlanItem {
    PlanItem {
        kind,
        action,
        name: name.to_owned(),
        natural_key: name.to_owned(),
        host_object_id: id,
        changes,
        reason: Some(reason.into()),
    }
}

/// The upstream key a recorded account stands for (its fingerprint).
fn recorded_key(desired: &Value) -> Option<Fingerprint> {
    serde_json::from_value(desired.get("upstream_key")?.clone()).ok()
}

/// Why an account cannot be given its key back, and what to do.
fn missing_key(key: Option<&Fingerprint>, what: &str) -> String {
    match key {
        Some(k) => format!(
            "{what} needs its upstream key and crm keeps upstream keys only as fingerprints: supply the upstream key {k} with --upstream-keys-file"
        ),
        None => format!(
            "{what} needs its upstream key and its record names no key fingerprint; re-import the provider with its key"
        ),
    }
}

/// The supplied key for a recorded account, by fingerprint.
fn supplied(desired: &Value, keys: &BTreeSet<String>) -> std::result::Result<String, String> {
    let fp = recorded_key(desired);
    match &fp {
        Some(k) if keys.contains(&k.hmac) => Ok(k.hmac.clone()),
        _ => Err(missing_key(fp.as_ref(), "recreating this account")),
    }
}

fn created_order(a: &crm_domain::observed::HostAccount) -> (String, HostObjectId) {
    (a.created_at.clone().unwrap_or_default(), a.id)
}

/// Plans the repair of `items` (from [`crate::diff::diff`] of the same inputs).
/// Pure and deterministic.
pub fn plan(
    recorded: &Recorded,
    observed: &HostSnapshot,
    items: &[DriftItem],
    opts: &RepairOptions,
) -> Plan {
    let planned = plan_ops(recorded, observed, items, opts);
    Plan {
        items: planned.into_iter().map(|p| p.item).collect(),
        notes: vec![],
    }
}

fn find<'r>(
    recorded: &'r Recorded,
    i: &DriftItem,
) -> Option<(&'r RecordedBatch, &'r ManagedResource)> {
    let rb = recorded
        .batches
        .iter()
        .find(|b| Some(&b.batch.id) == i.batch_id.as_ref())?;
    let r = rb.resources.iter().find(|r| {
        r.kind == i.kind
            && Some(r.host_object_id) == i.host_object_id
            && r.state == ResourceState::Live
    })?;
    Some((rb, r))
}

fn plan_ops(
    recorded: &Recorded,
    observed: &HostSnapshot,
    items: &[DriftItem],
    opts: &RepairOptions,
) -> Vec<Planned> {
    let keys: BTreeSet<String> = opts.keys().into_keys().collect();
    let mut out: Vec<Planned> = Vec::new();
    // Groups being recreated, per batch: their dependents need rebinding.
    let mut recreated_groups: Vec<(BatchId, HostObjectId)> = Vec::new();
    for i in items {
        let p = match i.category {
            DriftCategory::Missing => plan_missing(recorded, observed, i, &keys),
            DriftCategory::Changed => plan_changed(recorded, i, &keys),
            DriftCategory::Duplicate => {
                out.extend(plan_duplicate(recorded, observed, i, opts));
                continue;
            }
            DriftCategory::Unhealthy => plan_unhealthy(recorded, i, opts),
            DriftCategory::UnmanagedLeftover => plan_leftover(i, opts),
            DriftCategory::AccessBroken => Planned {
                item: item(
                    i.kind,
                    PlanAction::NoOp,
                    &i.name,
                    i.host_object_id,
                    vec![],
                    "access is repaired by the access setup (crm access check / setup), not by reconcile",
                ),
                op: Op::Nothing,
            },
            DriftCategory::Unknown => continue,
        };
        if let Op::RecreateGroup { old, .. } = &p.op {
            recreated_groups.push((old.batch_id.clone(), old.host_object_id));
        }
        out.push(p);
    }
    // An account being disabled is not also cleared (a later clear-error
    // would switch it back on).
    let disabled: Vec<HostObjectId> = out
        .iter()
        .filter_map(|p| match &p.op {
            Op::Disable { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    out.retain(|p| !matches!(&p.op, Op::Clear { r, .. } if disabled.contains(&r.host_object_id)));
    // Accounts and channels of a batch whose group is recreated must be bound
    // to the new group; their restore steps carry the old id, remapped when run.
    for (batch, old_group) in &recreated_groups {
        let Some(rb) = recorded.batches.iter().find(|b| b.batch.id == *batch) else {
            continue;
        };
        for r in rb
            .resources
            .iter()
            .filter(|r| r.state == ResourceState::Live)
        {
            let already = out.iter().any(|p| match &p.op {
                Op::RestoreAccount { r: x, .. }
                | Op::RestoreChannel { r: x, .. }
                | Op::RecreateAccount { old: x, .. }
                | Op::RecreateChannel { old: x, .. }
                | Op::AdoptAccount { old: x, .. } => {
                    x.kind == r.kind && x.host_object_id == r.host_object_id
                }
                _ => false,
            });
            if already {
                continue;
            }
            match r.kind {
                ResourceKind::Account => {
                    let Some(a) = observed.accounts.iter().find(|a| a.id == r.host_object_id)
                    else {
                        continue;
                    };
                    let mut groups = a.group_ids.clone();
                    groups.retain(|g| g != old_group);
                    groups.push(*old_group);
                    out.push(Planned {
                        item: item(
                            ResourceKind::Account,
                            PlanAction::Update,
                            &r.name,
                            Some(r.host_object_id),
                            vec![FieldChange {
                                field: "group_ids".into(),
                                from: json!(a.group_ids),
                                to: json!("bound to the recreated group"),
                            }],
                            "bind to the recreated batch group",
                        ),
                        op: Op::RestoreAccount {
                            r: r.clone(),
                            base_url: None,
                            model_mapping: None,
                            extra: None,
                            groups: Some(groups),
                            activate: false,
                            key: None,
                        },
                    });
                }
                ResourceKind::Channel => {
                    let Ok(draft) = serde_json::from_value::<ChannelDraft>(r.desired.clone())
                    else {
                        continue;
                    };
                    out.push(Planned {
                        item: item(
                            ResourceKind::Channel,
                            PlanAction::Update,
                            &r.name,
                            Some(r.host_object_id),
                            vec![],
                            "bind to the recreated batch group",
                        ),
                        op: Op::RestoreChannel {
                            r: r.clone(),
                            draft,
                        },
                    });
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| {
        (
            a.op.rank(),
            a.item.kind.apply_rank(),
            &a.item.name,
            a.item.host_object_id,
        )
            .cmp(&(
                b.op.rank(),
                b.item.kind.apply_rank(),
                &b.item.name,
                b.item.host_object_id,
            ))
    });
    out
}

fn blocked(i: &DriftItem, reason: impl Into<String>) -> Planned {
    Planned {
        item: item(
            i.kind,
            PlanAction::Blocked,
            &i.name,
            i.host_object_id,
            i.fields.clone(),
            reason,
        ),
        op: Op::Nothing,
    }
}

fn plan_missing(
    recorded: &Recorded,
    observed: &HostSnapshot,
    i: &DriftItem,
    keys: &BTreeSet<String>,
) -> Planned {
    let Some((rb, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    match r.kind {
        ResourceKind::Group => match serde_json::from_value::<GroupDraft>(r.desired.clone()) {
            Ok(draft) => Planned {
                item: item(
                    r.kind,
                    PlanAction::Create,
                    &r.name,
                    None,
                    vec![],
                    "recreate the missing group from its recorded spec",
                ),
                op: Op::RecreateGroup {
                    old: r.clone(),
                    draft,
                },
            },
            Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
        },
        ResourceKind::Channel => match serde_json::from_value::<ChannelDraft>(r.desired.clone()) {
            Ok(draft) => Planned {
                item: item(
                    r.kind,
                    PlanAction::Create,
                    &r.name,
                    None,
                    vec![],
                    "recreate the missing channel from its recorded spec",
                ),
                op: Op::RecreateChannel {
                    old: r.clone(),
                    draft,
                },
            },
            Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
        },
        ResourceKind::Account => {
            let d: DesiredAccount = desired::read(&r.desired);
            let identity = account_identity(
                d.name.as_deref().unwrap_or(&r.name),
                d.platform.as_ref().map(|p| p.as_str()).unwrap_or_default(),
                d.base_url.as_deref(),
            );
            let candidates: Vec<_> = observed
                .accounts
                .iter()
                .filter(|a| {
                    is_active_account(a)
                        && account_identity(&a.name, a.platform.as_str(), a.base_url.as_deref())
                            == identity
                })
                .collect();
            match candidates.as_slice() {
                [] => match supplied(&r.desired, keys) {
                    Ok(key) => Planned {
                        item: item(
                            r.kind,
                            PlanAction::Create,
                            &r.name,
                            None,
                            vec![],
                            "recreate the missing account with the supplied upstream key",
                        ),
                        op: Op::RecreateAccount {
                            old: r.clone(),
                            key,
                            desired: r.desired.clone(),
                            groups: d
                                .group_ids
                                .clone()
                                .filter(|g| !g.is_empty())
                                .unwrap_or_else(|| rb.groups()),
                        },
                    },
                    Err(reason) => blocked(i, reason),
                },
                [a] if a.notes.as_deref().and_then(parse_marker) == Some(r.batch_id.clone()) => {
                    Planned {
                        item: item(
                            r.kind,
                            PlanAction::Adopt,
                            &r.name,
                            Some(a.id),
                            vec![],
                            format!(
                                "account #{} has the same natural key and this batch's marker",
                                a.id
                            ),
                        ),
                        op: Op::AdoptAccount {
                            old: r.clone(),
                            found: a.id,
                        },
                    }
                }
                [a] => blocked(
                    i,
                    format!(
                        "account #{} has the same natural key but not this batch's marker; crm will not take it over",
                        a.id
                    ),
                ),
                many => blocked(
                    i,
                    format!(
                        "{} accounts share the natural key; resolve the duplicates first",
                        many.len()
                    ),
                ),
            }
        }
        _ => blocked(
            i,
            format!(
                "a missing {} is recreated by the access setup of batch {}, not by reconcile",
                r.kind, r.batch_id
            ),
        ),
    }
}

fn plan_changed(recorded: &Recorded, i: &DriftItem, keys: &BTreeSet<String>) -> Planned {
    let Some((rb, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    if i.fields
        .iter()
        .any(|f| f.field == "notes" || f.field == "description")
    {
        return blocked(
            i,
            "crm's marker was removed or replaced; crm will not modify an object without its marker (restore the marker to let repair proceed)",
        );
    }
    let restore = |op: Op| Planned {
        item: item(
            r.kind,
            PlanAction::Update,
            &r.name,
            Some(r.host_object_id),
            i.fields.clone(),
            "restore the recorded fields",
        ),
        op,
    };
    let d_platform = desired::read::<DesiredAccount>(&r.desired).platform;
    let migration = i.fields.iter().find(|f| {
        f.field == "platform" && Some(&f.to) != d_platform.as_ref().map(|p| json!(p)).as_ref()
    });
    if let Some(m) = migration {
        return blocked(i, migration_reason(rb, r, i, m, keys));
    }
    match r.kind {
        ResourceKind::Account => {
            let unpatchable: Vec<&str> = i
                .fields
                .iter()
                .map(|f| f.field.as_str())
                .filter(|f| {
                    matches!(*f, "platform" | "type" | "name")
                        || f.starts_with("credentials.") && *f != "credentials.has_api_key"
                })
                .collect();
            if !unpatchable.is_empty() {
                return blocked(
                    i,
                    format!(
                        "{} cannot be changed on an existing account; delete it on the host and repair recreates it",
                        unpatchable.join(", ")
                    ),
                );
            }
            let d: DesiredAccount = desired::read(&r.desired);
            let has = |name: &str| i.fields.iter().any(|f| f.field == name);
            let key = if has("credentials.has_api_key") {
                let fp = recorded_key(&r.desired);
                match &fp {
                    Some(k) if keys.contains(&k.hmac) => Some(k.hmac.clone()),
                    _ => {
                        return blocked(
                            i,
                            missing_key(fp.as_ref(), "the account lost its key: restoring it"),
                        );
                    }
                }
            } else {
                None
            };
            let groups = i
                .fields
                .iter()
                .find(|f| f.field == "group_ids")
                .and_then(|f| serde_json::from_value::<Vec<HostObjectId>>(f.to.clone()).ok());
            let extra = i
                .fields
                .iter()
                .any(|f| f.field.starts_with("extra."))
                .then(|| d.extra.clone().unwrap_or_default());
            restore(Op::RestoreAccount {
                r: r.clone(),
                base_url: if has("base_url") {
                    d.base_url.clone()
                } else {
                    None
                },
                model_mapping: if has("model_mapping") {
                    d.model_mapping.clone()
                } else {
                    None
                },
                extra,
                groups,
                activate: has("status"),
                key,
            })
        }
        ResourceKind::Group => {
            if i.fields.iter().any(|f| f.field == "status") {
                return blocked(
                    i,
                    "the group was disabled on the host; re-enable it there (the host port cannot set group status)",
                );
            }
            match serde_json::from_value::<GroupDraft>(r.desired.clone()) {
                Ok(draft) => restore(Op::RestoreGroup {
                    r: r.clone(),
                    draft,
                }),
                Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
            }
        }
        ResourceKind::Channel => {
            if i.fields.iter().any(|f| f.field == "status") {
                return blocked(
                    i,
                    "the channel was disabled on the host; re-enable it there (the host port cannot set channel status)",
                );
            }
            match serde_json::from_value::<ChannelDraft>(r.desired.clone()) {
                Ok(mut draft) => {
                    if draft.group_ids.is_empty() {
                        draft.group_ids = rb.groups();
                    }
                    restore(Op::RestoreChannel {
                        r: r.clone(),
                        draft,
                    })
                }
                Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
            }
        }
        _ => blocked(
            i,
            format!(
                "{} drift is repaired by the access setup of batch {}",
                r.kind, r.batch_id
            ),
        ),
    }
}

/// What moving a batch off a route the host cannot serve takes (see
/// [`crate::diff::platform_migration`]): the account is recreated on the
/// new platform and base URL, which needs its upstream key, and the group
/// follows. Repair does not migrate platforms itself; a rollback and a new
/// import do it with the same journal guarantees.
fn migration_reason(
    rb: &RecordedBatch,
    r: &ManagedResource,
    i: &DriftItem,
    platform: &FieldChange,
    keys: &BTreeSet<String>,
) -> String {
    let from = platform.from.as_str().unwrap_or("?");
    let Some(to) = platform.to.as_str() else {
        return format!(
            "{} {} uses '{from}', which this host cannot serve, and no other platform works here for {}: {}",
            r.kind,
            r.name,
            rb.batch.provider,
            if i.detail.is_empty() {
                "see the pack"
            } else {
                &i.detail
            }
        );
    };
    let what = match r.kind {
        ResourceKind::Account => {
            let url = i
                .fields
                .iter()
                .find(|f| f.field == "base_url")
                .and_then(|f| f.to.as_str())
                .unwrap_or("?");
            let key = recorded_key(&r.desired);
            let has_key = key.as_ref().is_some_and(|k| keys.contains(&k.hmac));
            format!(
                "recreate account {} as {to} at {url} (an '{from}' account on a host without /v1/chat/completions speaks the Responses API upstream); that needs its upstream key{}",
                r.name,
                match (&key, has_key) {
                    (_, true) => " (supplied)".to_owned(),
                    (Some(k), false) => format!(" {k}"),
                    (None, false) => String::new(),
                }
            )
        }
        _ => format!("change {} {} from '{from}' to '{to}'", r.kind, r.name),
    };
    format!(
        "{what}. Repair does not change an account's platform: roll the batch back (`crm batch rollback {}`) and import the provider again with its keys (`crm provider import {} --host {} --mode {} --upstream-keys-file FILE`)",
        rb.batch.id, rb.batch.provider, rb.batch.host_id, rb.batch.mode
    )
}

fn plan_duplicate(
    recorded: &Recorded,
    observed: &HostSnapshot,
    i: &DriftItem,
    opts: &RepairOptions,
) -> Vec<Planned> {
    let (Some(id), Some(owner)) = (i.host_object_id, i.batch_id.clone()) else {
        return vec![Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                i.host_object_id,
                vec![],
                "not crm-marked: reported only, never touched",
            ),
            op: Op::Nothing,
        }];
    };
    let Some(dup) = observed.accounts.iter().find(|a| a.id == id) else {
        return vec![blocked(i, "the duplicate is gone from the host")];
    };
    let identity = account_identity(&dup.name, dup.platform.as_str(), dup.base_url.as_deref());
    let same = |a: &HostAccount| {
        account_identity(&a.name, a.platform.as_str(), a.base_url.as_deref()) == identity
    };
    // The recorded account this one duplicates, if the duplicate shares its key.
    let twin = recorded
        .batches
        .iter()
        .flat_map(|b| &b.resources)
        .filter(|r| r.kind == ResourceKind::Account && r.state == ResourceState::Live)
        .find_map(|r| {
            observed
                .accounts
                .iter()
                .find(|a| a.id == r.host_object_id && same(a))
                .map(|a| (r, a))
        });
    let disable_dup = |reason: String| Planned {
        item: item(
            ResourceKind::Account,
            PlanAction::Update,
            &i.name,
            Some(id),
            disable_changes(dup),
            reason,
        ),
        op: Op::Disable {
            batch: owner.clone(),
            id,
            name: i.name.clone(),
        },
    };
    let Some((twin_r, twin)) = twin else {
        return vec![disable_dup(
            "disable the unrecorded crm account (the batch's recorded accounts are kept)".into(),
        )];
    };
    // Keep the oldest healthy account of the set; an error the operator asked
    // to clear does not count against the recorded one.
    let healthy = |a: &HostAccount| {
        a.is_healthy()
            || (opts.clear_unhealthy
                && a.id == twin.id
                && matches!(a.status.as_str(), "active" | "error")
                && a.temp_unschedulable_reason
                    .as_deref()
                    .is_none_or(str::is_empty))
    };
    let set: Vec<&HostAccount> = observed
        .accounts
        .iter()
        .filter(|a| {
            is_active_account(a)
                && same(a)
                && (a.id == twin.id || a.notes.as_deref().and_then(parse_marker).is_some())
        })
        .collect();
    let keep = set
        .iter()
        .filter(|a| healthy(a))
        .min_by_key(|a| created_order(a))
        .map_or(twin.id, |a| a.id);
    if keep != id {
        return vec![disable_dup(format!(
            "disable the duplicate, keeping #{keep} (the oldest healthy account with this key)"
        ))];
    }
    // This duplicate is the one to keep: the batch takes it over and the
    // recorded account is switched off instead.
    vec![
        Planned {
            item: item(
                ResourceKind::Account,
                PlanAction::Adopt,
                &twin_r.name,
                Some(id),
                vec![],
                format!(
                    "#{id} is the oldest healthy account with this key; batch {} takes it over from #{}",
                    twin_r.batch_id, twin.id
                ),
            ),
            op: Op::AdoptAccount {
                old: twin_r.clone(),
                found: id,
            },
        },
        Planned {
            item: item(
                ResourceKind::Account,
                PlanAction::Update,
                &twin_r.name,
                Some(twin.id),
                disable_changes(twin),
                format!("disable the recorded account, keeping #{id}"),
            ),
            op: Op::Disable {
                batch: twin_r.batch_id.clone(),
                id: twin.id,
                name: twin_r.name.clone(),
            },
        },
    ]
}

fn disable_changes(a: &HostAccount) -> Vec<FieldChange> {
    vec![
        FieldChange {
            field: "status".into(),
            from: json!(a.status),
            to: json!("inactive"),
        },
        FieldChange {
            field: "schedulable".into(),
            from: json!(a.schedulable),
            to: json!(false),
        },
    ]
}

fn plan_unhealthy(recorded: &Recorded, i: &DriftItem, opts: &RepairOptions) -> Planned {
    let Some((_, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    if i.reason.is_some() {
        // Funds are the provider account's, not the host's: nothing on the
        // host can repair them.
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                vec![],
                "top up the upstream account (or raise its plan); reconcile cannot repair funds",
            ),
            op: Op::Nothing,
        };
    }
    let error = i.fields.iter().any(|f| f.field == "status");
    let schedulable = i.fields.iter().any(|f| f.field == "schedulable");
    if !opts.clear_unhealthy {
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                i.fields.clone(),
                "reported only; ask to clear unhealthy accounts to clear it",
            ),
            op: Op::Nothing,
        };
    }
    if !error && !schedulable {
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                i.fields.clone(),
                "temporarily unschedulable: the host lifts it by itself",
            ),
            op: Op::Nothing,
        };
    }
    Planned {
        item: item(
            r.kind,
            PlanAction::Update,
            &r.name,
            Some(r.host_object_id),
            i.fields.clone(),
            "clear the account's error state",
        ),
        op: Op::Clear {
            r: r.clone(),
            error,
            schedulable,
        },
    }
}

fn plan_leftover(i: &DriftItem, opts: &RepairOptions) -> Planned {
    let Some(id) = i.host_object_id else {
        return blocked(i, "no host id");
    };
    let Some(batch) = i.batch_id.clone() else {
        // Found by crm's name only (a host without notes): the name is the
        // only mark, which is enough to report but not to delete.
        return Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                Some(id),
                vec![],
                "carries crm's name but no marker; delete it on the host if it is residue",
            ),
            op: Op::Nothing,
        };
    };
    if !opts.prune {
        return Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                Some(id),
                vec![],
                "reported only; ask to prune leftovers to delete it",
            ),
            op: Op::Nothing,
        };
    }
    if i.kind == ResourceKind::UserApiKey {
        return blocked(
            i,
            "gateway keys are deleted as their user; prune the user or delete the key on the host",
        );
    }
    Planned {
        item: item(
            i.kind,
            PlanAction::Delete,
            &i.name,
            Some(id),
            vec![],
            format!("delete residue of batch {batch}"),
        ),
        op: Op::Prune {
            batch,
            kind: i.kind,
            id,
            name: i.name.clone(),
        },
    }
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
    let started_at = ports.clock.now();
    let before = api.request_count();
    let recorded = run::load_recorded(
        ports.batches.as_ref(),
        ports.packs.as_deref(),
        &scope,
        vec![],
    )
    .await?;
    let lease_scope = run::lease_scope(&scope, &recorded);
    if lease_scope == Lease::host_scope(&scope.host_id) {
        // A host-wide repair must not run beside an import of any provider.
        let prefix = format!("{lease_scope}/");
        if let Some(l) = ports
            .leases
            .active_leases(&prefix)
            .await?
            .into_iter()
            .next()
        {
            return Err(ReconcileError::Busy(StoreError::LeaseHeld {
                scope: l.scope,
                holder: l.holder,
                operation: l.operation,
                lease_id: l.id,
                expires_at: l.expires_at,
            }));
        }
    }
    let lease = ports
        .leases
        .acquire_lease(&lease_scope, &opts.holder, "repair", RUN_LEASE_TTL)
        .await
        .map_err(busy)?;
    let result = repair_locked(ports, host, api, &recorded, &opts, &lease.id).await;
    let run_id = ReconcileRunId::new(ports.ids.new_id("rr"));
    let (status, items, plan, applied, error) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = ports.leases.release_lease(&lease.id).await;
            return Err(e);
        }
    };
    let run = ReconcileRun {
        id: run_id,
        scope,
        status,
        started_at,
        finished_at: ports.clock.now(),
        host_requests: api.request_count().saturating_sub(before),
        items,
        repaired: !applied.is_empty(),
        error,
    };
    let saved = ports.runs.save_run(run.clone()).await;
    let released = ports.leases.release_lease(&lease.id).await;
    saved?;
    released?;
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
                        Box::pin(async move {
                            Ok(api
                                .list_groups()
                                .await?
                                .into_iter()
                                .filter(|g| {
                                    g.name == name
                                        && g.description.as_deref().and_then(parse_marker)
                                            == Some(batch.clone())
                                })
                                .map(|g| g.id)
                                .collect())
                        })
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
                        Box::pin(async move {
                            Ok(api
                                .list_channels()
                                .await?
                                .into_iter()
                                .filter(|c| c.name == name)
                                .map(|c| c.id)
                                .collect())
                        })
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
                let identity =
                    account_identity(&draft.name, draft.platform.as_str(), Some(&draft.base_url));
                let dr = &draft;
                let step = Step::new(intent, move |idem| api.create_account(dr, idem)).with_lookup(
                    move || {
                        let identity = identity.clone();
                        Box::pin(async move {
                            Ok(api
                                .list_accounts()
                                .await?
                                .into_iter()
                                .filter(|a| {
                                    account_identity(
                                        &a.name,
                                        a.platform.as_str(),
                                        a.base_url.as_deref(),
                                    ) == identity
                                })
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
            .update_resource_desired(&r.batch_id, r.kind, r.host_object_id, digest, desired)
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

async fn delete(api: &dyn HostApi, kind: ResourceKind, id: HostObjectId) -> HostResult<()> {
    match kind {
        ResourceKind::Account => api.delete_account(id).await,
        ResourceKind::Group => api.delete_group(id).await,
        ResourceKind::Channel => api.delete_channel(id).await,
        ResourceKind::User => api.delete_user(id).await,
        ResourceKind::Subscription => api.revoke_subscription(id).await,
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
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::diff;
    use crate::fixtures::*;
    use crm_domain::observed::HostGroup;
    use crm_domain::ownership::marked_text;

    fn planned(
        opts: &RepairOptions,
        mutate: impl FnOnce(&mut HostSnapshot),
    ) -> (Vec<DriftItem>, Vec<Planned>) {
        let rec = recorded();
        let mut obs = in_sync();
        mutate(&mut obs);
        let items = diff(&rec, &obs, &caps());
        let p = plan_ops(&rec, &obs, &items, &keyed(opts));
        (items, p)
    }

    /// `opts` with the upstream keys of every fixture account supplied.
    fn keyed(opts: &RepairOptions) -> RepairOptions {
        RepairOptions {
            upstream_keys: [1, 2, 3, 4, 5].map(upstream_key).to_vec(),
            fingerprinter: Some(fingerprinter()),
            ..opts.clone()
        }
    }

    fn lines(p: &[Planned]) -> Vec<String> {
        p.iter()
            .map(|p| {
                format!(
                    "{} {} #{}",
                    p.item.action,
                    p.item.kind,
                    p.item.host_object_id.map_or(0, |h| h.0)
                )
            })
            .collect()
    }

    fn five(o: &mut HostSnapshot) {
        o.accounts.retain(|a| a.id.0 != 2);
        o.channels.as_mut().unwrap()[0].model_pricing[0].output_price = Some(2.2e-6);
        let mut dup = DEEPSEEK.account();
        dup.id = HostObjectId(30);
        dup.created_at = Some("2026-11-22T09:30:00Z".into());
        o.accounts.push(dup);
        o.groups.push(HostGroup {
            id: HostObjectId(50),
            name: "crm-cn-official.glm-self_service".into(),
            description: Some(marked_text(&BatchId::new("b-old"), "old group")),
            ..DEEPSEEK.group()
        });
        o.accounts[0].status = "error".into();
    }

    #[test]
    fn without_flags_only_missing_changed_and_duplicates_are_acted_on() {
        // The recorded account is in error and nobody asked to clear it, so
        // the healthy duplicate is the oldest healthy one: it is kept.
        let (_, p) = planned(&RepairOptions::default(), five);
        assert_eq!(
            lines(&p),
            [
                "adopt account #30",
                "create account #0",
                "update channel #20",
                "update account #1",
                "no-op account #1",
                "no-op group #50",
            ]
        );
    }

    #[test]
    fn repair_plan_snapshot_with_prune_and_clear() {
        let opts = RepairOptions {
            prune: true,
            clear_unhealthy: true,
            ..RepairOptions::default()
        };
        let (_, p) = planned(&opts, five);
        let plan = Plan {
            items: p.iter().map(|p| p.item.clone()).collect(),
            notes: vec![],
        };
        insta::assert_json_snapshot!(plan);
    }

    #[test]
    fn the_oldest_healthy_account_is_kept() {
        // The recorded account is in error and not asked to be cleared: the
        // healthy duplicate is kept and the batch takes it over.
        let (_, p) = planned(&RepairOptions::default(), |o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            o.accounts.push(dup);
            o.accounts[0].status = "error".into();
        });
        assert_eq!(
            lines(&p),
            ["adopt account #30", "update account #1", "no-op account #1"]
        );
        // Asked to clear it, the older recorded account stays.
        let opts = RepairOptions {
            clear_unhealthy: true,
            ..RepairOptions::default()
        };
        let (_, p) = planned(&opts, |o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            o.accounts.push(dup);
            o.accounts[0].status = "error".into();
        });
        assert_eq!(lines(&p), ["update account #30", "update account #1"]);
        assert!(matches!(p[1].op, Op::Clear { .. }));
    }

    #[test]
    fn crm_never_modifies_objects_without_its_marker() {
        let (_, p) = planned(&RepairOptions::default(), |o| {
            o.groups[0].description = Some("operator's now".into());
            o.groups[0].rate_multiplier = 3.0;
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(31);
            dup.notes = Some("operator's copy".into());
            o.accounts.push(dup);
        });
        assert_eq!(lines(&p), ["no-op account #31", "blocked group #10"]);
    }

    #[test]
    fn missing_group_is_recreated_and_dependents_rebound() {
        let (_, p) = planned(&RepairOptions::default(), |o| {
            o.groups.retain(|g| g.id.0 != 10);
        });
        assert_eq!(
            lines(&p),
            ["create group #0", "update account #1", "update channel #20"]
        );
    }

    #[test]
    fn closure_objects_and_accounts_without_a_supplied_key_are_blocked() {
        let mut rec = recorded();
        rec.batches[0].resources.push(crate::fixtures::resource(
            "b-ds",
            ResourceKind::User,
            70,
            "crm-user",
            json!({}),
        ));
        let mut obs = in_sync();
        obs.accounts.retain(|a| a.id.0 != 1);
        let items = diff(&rec, &obs, &caps());
        let p = plan_ops(&rec, &obs, &items, &RepairOptions::default());
        assert_eq!(lines(&p), ["blocked account #1", "blocked user #70"]);
        let fp = fingerprinter().fingerprint(&upstream_key(1));
        let reason = p[0].item.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&format!(
                "supply the upstream key {fp} with --upstream-keys-file"
            )),
            "{reason}"
        );
        // Given the key, the account is recreated.
        let p = plan_ops(&rec, &obs, &items, &keyed(&RepairOptions::default()));
        assert_eq!(lines(&p), ["create account #0", "blocked user #70"]);
    }

    #[test]
    fn an_in_sync_host_plans_nothing() {
        let (items, p) = planned(&RepairOptions::default(), |_| {});
        assert!(items.is_empty() && p.is_empty());
    }

    #[test]
    fn residue_names_give_their_provider() {
        assert_eq!(
            provider_from_name("crm-cn-official.glm-self_service").to_string(),
            "cn-official/glm"
        );
        assert_eq!(
            provider_from_name("operator").to_string(),
            "unknown/unknown"
        );
    }
}
