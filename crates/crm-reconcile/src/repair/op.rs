//! The steps a repair plan is made of, and the small rules the planners
//! share (how an item is written, which recorded resource a drift item is
//! about, whether the operator supplied an account's key).

use crate::diff::{Recorded, RecordedBatch};
use crm_domain::batch::ManagedResource;
use crm_domain::observed::{ChannelDraft, GroupDraft, HostAccount};
use crm_domain::plan::{FieldChange, PlanItem};
use crm_domain::reconcile::DriftItem;
use crm_domain::{
    BatchId, Fingerprint, HostObjectId, KeyFingerprinter, PlanAction, ResourceKind, ResourceState,
    SecretString,
};
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
    pub(crate) fn keys(&self) -> BTreeMap<String, SecretString> {
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

/// One step of a repair, with what it needs to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
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
    /// A missing channel monitor, made again from its recorded spec with
    /// the key it recorded (crm keeps only its fingerprint).
    RecreateMonitor {
        old: ManagedResource,
        /// Fingerprint hmac of the upstream key (supplied by the caller).
        key: String,
    },
    /// A changed monitor: its recorded fields written back (no key: the
    /// host keeps its own).
    RestoreMonitor {
        r: ManagedResource,
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
    pub(crate) fn rank(&self) -> (u8, u8) {
        match self {
            Op::RecreateGroup { .. } | Op::RestoreGroup { .. } => (0, 0),
            Op::RecreateAccount { .. } | Op::AdoptAccount { .. } | Op::RestoreAccount { .. } => {
                (1, 0)
            }
            Op::RecreateChannel { .. } | Op::RestoreChannel { .. } => (2, 0),
            // After the accounts whose upstream it watches.
            Op::RecreateMonitor { .. } | Op::RestoreMonitor { .. } => (2, 1),
            Op::Disable { .. } => (3, 0),
            Op::Clear { .. } => (4, 0),
            Op::Prune { kind, .. } => (5, 10 - kind.apply_rank().min(9)),
            Op::Nothing => (6, 0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    pub(crate) item: PlanItem,
    pub(crate) op: Op,
}

pub(crate) fn item(
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
pub(crate) fn recorded_key(desired: &Value) -> Option<Fingerprint> {
    serde_json::from_value(desired.get("upstream_key")?.clone()).ok()
}

/// Why an account cannot be given its key back, and what to do.
pub(crate) fn missing_key(key: Option<&Fingerprint>, what: &str) -> String {
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
pub(crate) fn supplied(
    desired: &Value,
    keys: &BTreeSet<String>,
) -> std::result::Result<String, String> {
    supplied_for(desired, keys, "recreating this account")
}

/// The supplied key a recorded object names, by fingerprint; `what` says
/// what needs it.
pub(crate) fn supplied_for(
    desired: &Value,
    keys: &BTreeSet<String>,
    what: &str,
) -> std::result::Result<String, String> {
    let fp = recorded_key(desired);
    match &fp {
        Some(k) if keys.contains(&k.hmac) => Ok(k.hmac.clone()),
        _ => Err(missing_key(fp.as_ref(), what)),
    }
}

pub(crate) fn created_order(a: &crm_domain::observed::HostAccount) -> (String, HostObjectId) {
    (a.created_at.clone().unwrap_or_default(), a.id)
}

pub(crate) fn find<'r>(
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

pub(crate) fn blocked(i: &DriftItem, reason: impl Into<String>) -> Planned {
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

pub(crate) fn disable_changes(a: &HostAccount) -> Vec<FieldChange> {
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
