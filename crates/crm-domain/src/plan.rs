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

    /// The accounts whose upstream key would be sent to another base URL
    /// than the one recorded for them (a `base_url` change on an account
    /// item). An apply refuses them unless the operator confirmed
    /// (docs/design.md §4 step 3).
    pub fn url_changes(&self) -> Vec<UrlChange> {
        self.items
            .iter()
            .filter(|i| i.kind == ResourceKind::Account && i.action != PlanAction::Blocked)
            .flat_map(|i| {
                i.changes
                    .iter()
                    .filter(|c| c.field == BASE_URL_FIELD)
                    .map(move |c| UrlChange {
                        account: i.name.clone(),
                        host_object_id: i.host_object_id,
                        from: c.from.as_str().unwrap_or_default().to_owned(),
                        to: c.to.as_str().unwrap_or_default().to_owned(),
                    })
            })
            .collect()
    }
}

/// The field of an account item's change that moves its base URL.
pub const BASE_URL_FIELD: &str = "base_url";

/// One account's upstream key moving from its recorded base URL to a new
/// one (a pack version that changed the provider's URL). Serialized with
/// `"kind": "base_url_change"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename = "base_url_change")]
pub struct UrlChange {
    /// The account's deterministic name.
    pub account: String,
    /// Its host id, when it exists on the host.
    pub host_object_id: Option<crate::HostObjectId>,
    /// The base URL recorded for it (where its key goes today).
    pub from: String,
    /// The base URL the new pack version gives it.
    pub to: String,
}

impl UrlChange {
    /// The `kind` this change serializes with.
    pub const KIND: &'static str = "base_url_change";
}

impl std::fmt::Display for UrlChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {}", self.account)?;
        if let Some(id) = self.host_object_id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {} -> {}", self.from, self.to)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_change_of_an_account_is_listed_with_its_kind() {
        let item = |kind, action, field: &str| PlanItem {
            kind,
            action,
            name: "crm-a".into(),
            natural_key: String::new(),
            host_object_id: Some(crate::HostObjectId(7)),
            changes: vec![FieldChange {
                field: field.into(),
                from: "https://old".into(),
                to: "https://new".into(),
            }],
            reason: None,
        };
        let plan = Plan {
            items: vec![
                item(ResourceKind::Account, PlanAction::Update, BASE_URL_FIELD),
                item(ResourceKind::Account, PlanAction::Update, "model_mapping.x"),
                item(ResourceKind::Account, PlanAction::Blocked, BASE_URL_FIELD),
                item(ResourceKind::Channel, PlanAction::Update, BASE_URL_FIELD),
            ],
            notes: vec![],
        };
        let changes = plan.url_changes();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            changes[0].to_string(),
            "account crm-a (id 7): https://old -> https://new"
        );
        let v = serde_json::to_value(&changes[0]).unwrap();
        assert_eq!(v["kind"], UrlChange::KIND);
        assert_eq!(v["from"], "https://old");
    }
}
