//! Plans: what an import, upgrade, repair or rollback intends to do, per resource.

use crate::{PlanAction, ResourceKind};

/// A deterministic plan. Same inputs produce the same plan, byte for byte.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    /// Things the plan cannot do on this host, said plainly (e.g. "host has
    /// no channels: pricing is not enforced by the host").
    pub notes: Vec<String>,
}

impl Plan {
    /// True when every item is `no-op`: applying would change nothing.
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| i.action == PlanAction::NoOp)
    }

    pub fn blocked(&self) -> impl Iterator<Item = &PlanItem> {
        self.items
            .iter()
            .filter(|i| i.action == PlanAction::Blocked)
    }

    pub fn count(&self, action: PlanAction) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

/// One resource of a plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanItem {
    pub kind: ResourceKind,
    pub action: PlanAction,
    /// Deterministic host-side name.
    pub name: String,
    /// Natural key used to find the object again (never a secret).
    pub natural_key: String,
    /// Host id when the object already exists.
    pub host_object_id: Option<crate::HostObjectId>,
    /// Field differences for `update` (and informational ones for `no-op`).
    pub changes: Vec<FieldChange>,
    /// Why, for `blocked` and `adopt`, or what a choice means.
    pub reason: Option<String>,
}

/// One field that differs between desired and observed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}
