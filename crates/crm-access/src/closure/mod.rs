//! The access closure of a batch: what lets an ordinary user call the
//! provider through the host (docs/design.md §2 "Access closure").
//!
//! - `self_service`: a user with a balance and a key bound to the batch's
//!   standard group;
//! - `subscription`: the batch's subscription-type group, an active
//!   subscription of the user to it, and a key bound to it (bound only after
//!   the subscription exists: the host refuses the binding otherwise).
//!
//! [`plan_closure`] is pure: from what the host shows and what the batch
//! recorded, one [`ClosureItem`] per closure object with docs/design.md's plan
//! action. The access preview is that plan, judged for one target mode. The
//! apply routine (in [`crate::apply`]) walks the same items through
//! crm-provision's journal executor, so every closure object is a managed
//! resource of the batch: rollback removes it first, and re-running is a no-op.

use crm_domain::batch::ManagedResource;
use crm_domain::observed::{BalanceOp, HostApiKey, HostGroup, HostSubscription, HostUser};
use crm_domain::plan::{FieldChange, Plan, PlanItem};
use crm_domain::{
    AccessMode, BatchId, GroupBilling, HostObjectId, PlanAction, ProviderRef, ResourceKind,
    ResourceState, SecretString,
};
use serde_json::json;

mod names;
pub use names::{key_name, natural_key, probe_email, short_batch};

/// Whose user the closure uses.
#[derive(Debug, Clone)]
pub enum UserChoice {
    /// A probe user crm creates and owns (deleted again on rollback), with a
    /// generated password kept sealed.
    Probe,
    /// An operator's existing user. crm logs in as it to manage its key,
    /// adopts it for the batch and never deletes it.
    Existing {
        email: String,
        password: SecretString,
    },
}

/// Which key the closure binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// A new key created as the user (`POST /api/v1/keys`).
    Create,
    /// One of the user's existing keys, rebound to the batch's group.
    Rebind { key_id: HostObjectId },
}

/// What the operator asks for when closing access.
#[derive(Debug, Clone)]
pub struct ClosureRequest {
    pub user: UserChoice,
    pub key: KeyChoice,
    /// Overrides the pack's `self_service_starting_balance` (USD).
    pub starting_balance: Option<f64>,
    /// Overrides the pack's `subscription_validity_days`.
    pub validity_days: Option<u32>,
}

impl ClosureRequest {
    /// A probe user, a new key, the pack's defaults.
    pub fn probe() -> Self {
        ClosureRequest {
            user: UserChoice::Probe,
            key: KeyChoice::Create,
            starting_balance: None,
            validity_days: None,
        }
    }
}

/// Details the apply routine needs beyond the plan item.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum ClosureDetail {
    /// The group the closure binds (only ever `blocked` or `no-op`).
    Group,
    User {
        email: String,
        probe: bool,
    },
    /// Add the group to an existing user's `allowed_groups` (exclusive groups).
    AllowGroup {
        group_id: HostObjectId,
        allowed: Vec<HostObjectId>,
    },
    Balance {
        amount: f64,
        op: BalanceOp,
    },
    Subscription {
        group_id: HostObjectId,
        validity_days: u32,
    },
    Key {
        group_id: HostObjectId,
        name: String,
        /// Set when the key is an existing one (adopted or rebound).
        existing: Option<HostObjectId>,
    },
}

/// One closure object and what to do with it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClosureItem {
    pub item: PlanItem,
    pub detail: ClosureDetail,
}

/// The closure for one target mode.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClosurePlan {
    pub mode: AccessMode,
    pub items: Vec<ClosureItem>,
    /// What is missing or noteworthy, in sentences.
    pub notes: Vec<String>,
}

impl ClosurePlan {
    /// The plan in the shared vocabulary (what previews print).
    pub fn to_plan(&self) -> Plan {
        Plan {
            items: self.items.iter().map(|i| i.item.clone()).collect(),
            notes: self.notes.clone(),
        }
    }

    pub fn blocked_reasons(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.item.action == PlanAction::Blocked)
            .map(|i| {
                format!(
                    "{} {}: {}",
                    i.item.kind,
                    i.item.name,
                    i.item.reason.as_deref().unwrap_or("blocked")
                )
            })
            .collect()
    }

    /// Whether applying would change nothing on the host.
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| i.item.action == PlanAction::NoOp)
    }
}

/// Everything [`plan_closure`] decides from. Observed objects are what the
/// host shows now; `recorded` are the batch's managed resources.
#[derive(Debug, Clone)]
pub struct ClosureFacts<'a> {
    pub batch_id: &'a BatchId,
    pub provider: &'a ProviderRef,
    /// The mode the closure is judged for.
    pub target_mode: AccessMode,
    /// Email of the closure user (the probe email, or the operator's).
    pub user_email: &'a str,
    pub probe_user: bool,
    pub key: &'a KeyChoice,
    /// Starting balance to grant (self-service).
    pub balance: f64,
    /// Subscription validity (subscription).
    pub validity_days: u32,
    /// Host id of the batch's group, from its managed resources.
    pub group_id: Option<HostObjectId>,
    /// That group as the host shows it.
    pub group: Option<&'a HostGroup>,
    pub user: Option<&'a HostUser>,
    pub user_keys: &'a [HostApiKey],
    pub user_subscriptions: &'a [HostSubscription],
    pub recorded: &'a [ManagedResource],
    /// `Capabilities::subscriptions`.
    pub host_has_subscriptions: bool,
}

fn recorded<'r>(
    resources: &'r [ManagedResource],
    kind: ResourceKind,
    natural_key: &str,
) -> Option<&'r ManagedResource> {
    resources
        .iter()
        .find(|r| r.kind == kind && r.natural_key == natural_key && r.state == ResourceState::Live)
}

fn item(
    kind: ResourceKind,
    action: PlanAction,
    name: &str,
    natural_key: &str,
    id: Option<HostObjectId>,
    reason: Option<String>,
) -> PlanItem {
    PlanItem {
        kind,
        action,
        name: name.to_owned(),
        natural_key: natural_key.to_owned(),
        host_object_id: id,
        changes: Vec::new(),
        reason,
    }
}

fn change(field: &str, from: serde_json::Value, to: serde_json::Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        from,
        to,
    }
}

/// Plans the closure for `facts.target_mode`. Deterministic; no I/O.
pub fn plan_closure(f: &ClosureFacts<'_>) -> ClosurePlan {
    let mut items = Vec::new();
    let mut notes = Vec::new();
    let mode = f.target_mode;

    // The group: created by the import, of the billing type of its mode.
    let Some(group_id) = f.group_id else {
        items.push(ClosureItem {
            item: item(
                ResourceKind::Group,
                PlanAction::Blocked,
                "(batch group)",
                "",
                None,
                Some("the batch has no group yet; run (or resume) the import first".into()),
            ),
            detail: ClosureDetail::Group,
        });
        return ClosurePlan { mode, items, notes };
    };
    let wanted_billing = match mode {
        AccessMode::SelfService => GroupBilling::Standard,
        AccessMode::Subscription => GroupBilling::Subscription,
    };
    let group_item = match f.group {
        None => item(
            ResourceKind::Group,
            PlanAction::Blocked,
            &format!("group {group_id}"),
            "",
            Some(group_id),
            Some(format!(
                "the batch's group {group_id} is missing on the host; run reconcile (and repair) or roll the batch back"
            )),
        ),
        Some(g) if g.billing != wanted_billing => item(
            ResourceKind::Group,
            PlanAction::Blocked,
            &g.name,
            &g.name,
            Some(g.id),
            Some(format!(
                "{mode} access needs a {wanted_billing} group, but this batch's group is {}; import the provider in {mode} mode (a separate batch) to close it",
                g.billing
            )),
        ),
        Some(_) if mode == AccessMode::Subscription && !f.host_has_subscriptions => item(
            ResourceKind::Group,
            PlanAction::Blocked,
            &format!("group {group_id}"),
            "",
            Some(group_id),
            Some(
                "the host does not offer subscriptions (probe found no subscription routes)".into(),
            ),
        ),
        Some(g) => item(
            ResourceKind::Group,
            PlanAction::NoOp,
            &g.name,
            &g.name,
            Some(g.id),
            None,
        ),
    };
    items.push(ClosureItem {
        item: group_item,
        detail: ClosureDetail::Group,
    });

    // The user.
    let email = f.user_email;
    let user_nk = natural_key::user(email);
    let recorded_user = recorded(f.recorded, ResourceKind::User, &user_nk);
    let user_detail = ClosureDetail::User {
        email: email.to_owned(),
        probe: f.probe_user,
    };
    let user_item = match (f.user, recorded_user) {
        (Some(u), _) if u.status != "active" => item(
            ResourceKind::User,
            PlanAction::Blocked,
            email,
            &user_nk,
            Some(u.id),
            Some(format!(
                "user {email} is {} on the host; enable it first",
                u.status
            )),
        ),
        (Some(u), Some(r)) if r.host_object_id == u.id => item(
            ResourceKind::User,
            PlanAction::NoOp,
            email,
            &user_nk,
            Some(u.id),
            None,
        ),
        (Some(u), Some(r)) => item(
            ResourceKind::User,
            PlanAction::Blocked,
            email,
            &user_nk,
            Some(u.id),
            Some(format!(
                "the batch recorded user {} but the host's {email} is user {}; run reconcile",
                r.host_object_id, u.id
            )),
        ),
        (Some(u), None) => item(
            ResourceKind::User,
            PlanAction::Adopt,
            email,
            &user_nk,
            Some(u.id),
            Some(if f.probe_user {
                "the probe user exists (left by an interrupted run); crm adopts it".into()
            } else {
                "the operator's user; crm adopts it for this batch and never deletes it".into()
            }),
        ),
        (None, Some(r)) => item(
            ResourceKind::User,
            PlanAction::Blocked,
            email,
            &user_nk,
            Some(r.host_object_id),
            Some(format!(
                "recorded user {} is gone from the host; run reconcile, or roll the batch back and import again",
                r.host_object_id
            )),
        ),
        (None, None) if f.probe_user => {
            let mut i = item(
                ResourceKind::User,
                PlanAction::Create,
                email,
                &user_nk,
                None,
                None,
            );
            i.reason = Some(
                "an ordinary probe user owned by crm (password generated and kept sealed)".into(),
            );
            i
        }
        (None, None) => item(
            ResourceKind::User,
            PlanAction::Blocked,
            email,
            &user_nk,
            None,
            Some(format!(
                "no host user has the email {email}; create it first or use a probe user"
            )),
        ),
    };
    items.push(ClosureItem {
        item: user_item,
        detail: user_detail,
    });

    // Exclusive groups need the user to be allowed in (probe users are created allowed).
    if let (Some(g), Some(u)) = (f.group, f.user)
        && g.is_exclusive
        && !u.allowed_groups.contains(&g.id)
    {
        let mut allowed = u.allowed_groups.clone();
        allowed.push(g.id);
        allowed.sort();
        let mut i = item(
            ResourceKind::User,
            PlanAction::Update,
            email,
            &user_nk,
            Some(u.id),
            Some(format!(
                "group {} is exclusive: the user must be allowed in it",
                g.name
            )),
        );
        i.changes.push(change(
            "allowed_groups",
            json!(u.allowed_groups),
            json!(allowed),
        ));
        items.push(ClosureItem {
            item: i,
            detail: ClosureDetail::AllowGroup {
                group_id: g.id,
                allowed,
            },
        });
    }

    match mode {
        AccessMode::SelfService => {
            let nk = natural_key::balance(email);
            let name = format!("starting balance of {email}");
            let current = f.user.map(|u| u.balance);
            if let Some(r) = recorded(f.recorded, ResourceKind::BalanceGrant, &nk) {
                items.push(ClosureItem {
                    item: item(
                        ResourceKind::BalanceGrant,
                        PlanAction::NoOp,
                        &name,
                        &nk,
                        Some(r.host_object_id),
                        Some("already granted by this batch".into()),
                    ),
                    detail: ClosureDetail::Balance {
                        amount: r
                            .desired
                            .get("amount")
                            .and_then(|a| a.as_f64())
                            .unwrap_or(0.0),
                        op: BalanceOp::Add,
                    },
                });
            } else if f.balance > 0.0 {
                let op = if f.probe_user {
                    BalanceOp::Set
                } else {
                    BalanceOp::Add
                };
                let to = match op {
                    BalanceOp::Set => f.balance,
                    _ => current.unwrap_or(0.0) + f.balance,
                };
                let mut i = item(
                    ResourceKind::BalanceGrant,
                    PlanAction::Create,
                    &name,
                    &nk,
                    f.user.map(|u| u.id),
                    Some(match op {
                        BalanceOp::Set => {
                            format!("set the new user's balance to {} USD", f.balance)
                        }
                        _ => format!("add {} USD to the user's balance", f.balance),
                    }),
                );
                i.changes
                    .push(change("balance", json!(current.unwrap_or(0.0)), json!(to)));
                items.push(ClosureItem {
                    item: i,
                    detail: ClosureDetail::Balance {
                        amount: f.balance,
                        op,
                    },
                });
            } else if current.unwrap_or(0.0) <= 0.0 {
                notes.push(format!(
                    "no starting balance is granted (0 USD) and {email} has none: the host's billing gate will refuse calls (billing_gate)"
                ));
            } else {
                notes.push(format!(
                    "no starting balance is granted; {email} keeps its balance of {} USD",
                    current.unwrap_or(0.0)
                ));
            }
        }
        AccessMode::Subscription => {
            let nk = natural_key::subscription(email, group_id);
            let name = format!("subscription of {email} to group {group_id}");
            let live = f
                .user_subscriptions
                .iter()
                .filter(|s| s.group_id == group_id && s.is_active())
                .max_by_key(|s| s.id);
            let detail = ClosureDetail::Subscription {
                group_id,
                validity_days: f.validity_days,
            };
            let i = match (live, recorded(f.recorded, ResourceKind::Subscription, &nk)) {
                (Some(s), Some(r)) if r.host_object_id == s.id => item(
                    ResourceKind::Subscription,
                    PlanAction::NoOp,
                    &name,
                    &nk,
                    Some(s.id),
                    s.expires_at.as_ref().map(|e| format!("active until {e}")),
                ),
                (Some(s), _) => item(
                    ResourceKind::Subscription,
                    PlanAction::Adopt,
                    &name,
                    &nk,
                    Some(s.id),
                    Some(format!(
                        "an active subscription exists{}; assigning never extends, so crm reuses it",
                        s.expires_at
                            .as_ref()
                            .map(|e| format!(" (until {e})"))
                            .unwrap_or_default()
                    )),
                ),
                (None, _) => item(
                    ResourceKind::Subscription,
                    PlanAction::Create,
                    &name,
                    &nk,
                    None,
                    Some(format!("assign for {} days", f.validity_days)),
                ),
            };
            items.push(ClosureItem { item: i, detail });
        }
    }

    // The key, bound last (after the subscription, which the host requires).
    let name = match f.key {
        KeyChoice::Create => key_name(f.batch_id, f.provider),
        KeyChoice::Rebind { key_id } => f
            .user_keys
            .iter()
            .find(|k| k.id == *key_id)
            .map(|k| k.name.clone())
            .unwrap_or_else(|| format!("key {key_id}")),
    };
    let nk = match f.key {
        KeyChoice::Create => natural_key::key(email, &name),
        KeyChoice::Rebind { key_id } => natural_key::key(email, &format!("#{key_id}")),
    };
    let recorded_key = recorded(f.recorded, ResourceKind::UserApiKey, &nk);
    let observed_key = match (f.key, recorded_key) {
        (_, Some(r)) => f.user_keys.iter().find(|k| k.id == r.host_object_id),
        (KeyChoice::Create, None) => f.user_keys.iter().find(|k| k.name == name),
        (KeyChoice::Rebind { key_id }, None) => f.user_keys.iter().find(|k| k.id == *key_id),
    };
    let key_detail = |existing: Option<HostObjectId>| ClosureDetail::Key {
        group_id,
        name: name.clone(),
        existing,
    };
    let rebind = |k: &HostApiKey| {
        let mut i = item(
            ResourceKind::UserApiKey,
            PlanAction::Update,
            &name,
            &nk,
            Some(k.id),
            Some(format!("bind the key to group {group_id}")),
        );
        i.changes
            .push(change("group_id", json!(k.group_id), json!(group_id)));
        ClosureItem {
            item: i,
            detail: key_detail(Some(k.id)),
        }
    };
    match (recorded_key, observed_key) {
        (Some(_), Some(k)) if k.group_id == Some(group_id) => items.push(ClosureItem {
            item: item(ResourceKind::UserApiKey, PlanAction::NoOp, &name, &nk, Some(k.id), None),
            detail: key_detail(Some(k.id)),
        }),
        (Some(_), Some(k)) => items.push(rebind(k)),
        (Some(r), None) => items.push(ClosureItem {
            item: item(
                ResourceKind::UserApiKey,
                PlanAction::Blocked,
                &name,
                &nk,
                Some(r.host_object_id),
                Some(format!(
                    "recorded key {} is gone from the host; run reconcile, or roll the batch back and import again",
                    r.host_object_id
                )),
            ),
            detail: key_detail(Some(r.host_object_id)),
        }),
        (None, Some(k)) => {
            let reason = match f.key {
                KeyChoice::Create => "a key with crm's name exists (left by an interrupted run); crm adopts it",
                KeyChoice::Rebind { .. } => "the operator's key; crm adopts it for this batch",
            };
            items.push(ClosureItem {
                item: item(
                    ResourceKind::UserApiKey,
                    PlanAction::Adopt,
                    &name,
                    &nk,
                    Some(k.id),
                    Some(reason.into()),
                ),
                detail: key_detail(Some(k.id)),
            });
            if k.group_id != Some(group_id) {
                items.push(rebind(k));
            }
        }
        (None, None) => match f.key {
            KeyChoice::Create => items.push(ClosureItem {
                item: item(
                    ResourceKind::UserApiKey,
                    PlanAction::Create,
                    &name,
                    &nk,
                    None,
                    Some(format!("created as the user, bound to group {group_id}")),
                ),
                detail: key_detail(None),
            }),
            KeyChoice::Rebind { key_id } => items.push(ClosureItem {
                item: item(
                    ResourceKind::UserApiKey,
                    PlanAction::Blocked,
                    &name,
                    &nk,
                    Some(*key_id),
                    Some(format!("key {key_id} is not one of {email}'s keys")),
                ),
                detail: key_detail(Some(*key_id)),
            }),
        },
    }

    ClosurePlan { mode, items, notes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::{JournalOp, Platform};

    const GROUP: HostObjectId = HostObjectId(7);

    fn group(billing: GroupBilling, exclusive: bool) -> HostGroup {
        HostGroup {
            id: GROUP,
            name: "crm-cn-official.deepseek".into(),
            description: None,
            platform: Platform::new("deepseek"),
            billing,
            rate_multiplier: 1.0,
            daily_limit_usd: None,
            weekly_limit_usd: None,
            monthly_limit_usd: None,
            is_exclusive: exclusive,
            status: "active".into(),
        }
    }

    fn user(id: i64, email: &str, balance: f64) -> HostUser {
        HostUser {
            id: HostObjectId(id),
            email: email.into(),
            username: None,
            notes: None,
            role: "user".into(),
            balance,
            status: "active".into(),
            allowed_groups: vec![],
        }
    }

    fn key(id: i64, name: &str, group: Option<i64>) -> HostApiKey {
        HostApiKey {
            id: HostObjectId(id),
            user_id: HostObjectId(21),
            name: name.into(),
            group_id: group.map(HostObjectId),
            status: "active".into(),
            key_last4: "abcd".into(),
        }
    }

    fn sub(id: i64, status: &str) -> HostSubscription {
        HostSubscription {
            id: HostObjectId(id),
            user_id: HostObjectId(21),
            group_id: GROUP,
            status: status.into(),
            starts_at: None,
            expires_at: Some("2026-12-22T00:00:00Z".into()),
            notes: None,
        }
    }

    fn resource(kind: ResourceKind, id: i64, nk: &str) -> ManagedResource {
        ManagedResource {
            batch_id: BatchId::new("b-0193-aaaa-bbbbccccdddd"),
            kind,
            host_object_id: HostObjectId(id),
            name: nk.into(),
            natural_key: nk.into(),
            origin: JournalOp::Create,
            spec_digest: String::new(),
            desired: serde_json::json!({"amount": 5.0}),
            state: ResourceState::Live,
            journal_seq: 1,
            updated_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    struct World {
        batch: BatchId,
        provider: ProviderRef,
        email: String,
        group: Option<HostGroup>,
        group_id: Option<HostObjectId>,
        user: Option<HostUser>,
        keys: Vec<HostApiKey>,
        subs: Vec<HostSubscription>,
        recorded: Vec<ManagedResource>,
        key_choice: KeyChoice,
        probe: bool,
        balance: f64,
        subscriptions: bool,
    }

    impl World {
        fn new(billing: GroupBilling) -> Self {
            let batch = BatchId::new("b-0193-aaaa-bbbbccccdddd");
            let provider = ProviderRef::new("cn-official", "deepseek");
            World {
                email: probe_email(&batch, &provider),
                batch,
                provider,
                group: Some(group(billing, false)),
                group_id: Some(GROUP),
                user: None,
                keys: vec![],
                subs: vec![],
                recorded: vec![],
                key_choice: KeyChoice::Create,
                probe: true,
                balance: 5.0,
                subscriptions: true,
            }
        }

        fn plan(&self, mode: AccessMode) -> ClosurePlan {
            plan_closure(&ClosureFacts {
                batch_id: &self.batch,
                provider: &self.provider,
                target_mode: mode,
                user_email: &self.email,
                probe_user: self.probe,
                key: &self.key_choice,
                balance: self.balance,
                validity_days: 30,
                group_id: self.group_id,
                group: self.group.as_ref(),
                user: self.user.as_ref(),
                user_keys: &self.keys,
                user_subscriptions: &self.subs,
                recorded: &self.recorded,
                host_has_subscriptions: self.subscriptions,
            })
        }

        fn key_name(&self) -> String {
            key_name(&self.batch, &self.provider)
        }
    }

    fn actions(p: &ClosurePlan) -> Vec<String> {
        p.items
            .iter()
            .map(|i| format!("{} {}", i.item.kind, i.item.action))
            .collect()
    }

    #[test]
    fn names_are_deterministic_crm_prefixed_and_email_shaped() {
        let b = BatchId::new("b-0193f2a1-7c3e-7000-8000-1234567890ab");
        let p = ProviderRef::new("cn-official", "deepseek");
        assert_eq!(
            probe_email(&b, &p),
            "crm-probe-cn-official.deepseek-1234567890ab@crm.invalid"
        );
        assert_eq!(key_name(&b, &p), "crm-cn-official.deepseek-1234567890ab");
        let odd = ProviderRef::new("My Pack", "Kimi_K3");
        let email = probe_email(&BatchId::new("b_1"), &odd);
        assert_eq!(email, "crm-probe-my-pack.kimi-k3-b1@crm.invalid");
        assert!(email.split('@').next().unwrap().len() <= 64);
    }

    #[test]
    fn fresh_self_service_closure_creates_user_balance_and_key() {
        let w = World::new(GroupBilling::Standard);
        let plan = w.plan(AccessMode::SelfService);
        insta::assert_yaml_snapshot!(plan);
    }

    #[test]
    fn fresh_subscription_closure_assigns_before_binding() {
        let w = World::new(GroupBilling::Subscription);
        let plan = w.plan(AccessMode::Subscription);
        assert_eq!(
            actions(&plan),
            [
                "group no-op",
                "user create",
                "subscription create",
                "user_api_key create"
            ]
        );
        assert!(plan.notes.is_empty());
    }

    #[test]
    fn a_closed_batch_plans_only_no_ops() {
        let mut w = World::new(GroupBilling::Standard);
        let u = user(21, &w.email, 5.0);
        w.recorded = vec![
            resource(ResourceKind::User, 21, &natural_key::user(&w.email)),
            resource(
                ResourceKind::BalanceGrant,
                21,
                &natural_key::balance(&w.email),
            ),
            resource(
                ResourceKind::UserApiKey,
                31,
                &natural_key::key(&w.email, &w.key_name()),
            ),
        ];
        w.keys = vec![key(31, &w.key_name(), Some(7))];
        w.user = Some(u);
        let plan = w.plan(AccessMode::SelfService);
        assert!(plan.is_noop(), "{:?}", actions(&plan));
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_adopted() {
        let mut w = World::new(GroupBilling::Subscription);
        w.user = Some(user(21, &w.email, 0.0));
        w.subs = vec![sub(40, "expired"), sub(41, "active")];
        w.keys = vec![key(31, &w.key_name(), Some(7))];
        let plan = w.plan(AccessMode::Subscription);
        assert_eq!(
            actions(&plan),
            [
                "group no-op",
                "user adopt",
                "subscription adopt",
                "user_api_key adopt"
            ]
        );
        assert_eq!(plan.items[2].item.host_object_id, Some(HostObjectId(41)));
        assert!(
            plan.items[2]
                .item
                .reason
                .as_deref()
                .unwrap()
                .contains("never extends")
        );
    }

    #[test]
    fn preview_is_judged_for_the_target_mode_only() {
        let w = World::new(GroupBilling::Standard);
        let plan = w.plan(AccessMode::Subscription);
        assert_eq!(plan.items[0].item.action, PlanAction::Blocked);
        let reason = plan.items[0].item.reason.clone().unwrap();
        assert!(reason.contains("needs a subscription group"), "{reason}");
        // No balance item in a subscription plan, no subscription item in a self-service one.
        assert!(
            !plan
                .items
                .iter()
                .any(|i| i.item.kind == ResourceKind::BalanceGrant)
        );
        let ss = World::new(GroupBilling::Standard).plan(AccessMode::SelfService);
        assert!(
            !ss.items
                .iter()
                .any(|i| i.item.kind == ResourceKind::Subscription)
        );
    }

    #[test]
    fn blocked_plans_say_why() {
        let mut no_group = World::new(GroupBilling::Standard);
        no_group.group_id = None;
        no_group.group = None;
        let p = no_group.plan(AccessMode::SelfService);
        assert_eq!(actions(&p), ["group blocked"]);
        assert!(p.blocked_reasons()[0].contains("run (or resume) the import"));

        let mut gone = World::new(GroupBilling::Standard);
        gone.group = None;
        assert!(
            gone.plan(AccessMode::SelfService).blocked_reasons()[0].contains("missing on the host")
        );

        let mut no_subs = World::new(GroupBilling::Subscription);
        no_subs.subscriptions = false;
        assert!(
            no_subs.plan(AccessMode::Subscription).blocked_reasons()[0]
                .contains("does not offer subscriptions")
        );

        let mut unknown_user = World::new(GroupBilling::Standard);
        unknown_user.probe = false;
        unknown_user.email = "alice@example.com".into();
        let p = unknown_user.plan(AccessMode::SelfService);
        assert!(
            p.blocked_reasons()
                .iter()
                .any(|r| r.contains("no host user has the email alice@example.com"))
        );

        let mut disabled = World::new(GroupBilling::Standard);
        let mut u = user(21, &disabled.email, 0.0);
        u.status = "disabled".into();
        disabled.user = Some(u);
        assert!(
            disabled
                .plan(AccessMode::SelfService)
                .blocked_reasons()
                .iter()
                .any(|r| r.contains("is disabled"))
        );

        let mut key_gone = World::new(GroupBilling::Standard);
        key_gone.user = Some(user(21, &key_gone.email, 5.0));
        key_gone.recorded = vec![
            resource(ResourceKind::User, 21, &natural_key::user(&key_gone.email)),
            resource(
                ResourceKind::UserApiKey,
                31,
                &natural_key::key(&key_gone.email, &key_gone.key_name()),
            ),
        ];
        assert!(
            key_gone
                .plan(AccessMode::SelfService)
                .blocked_reasons()
                .iter()
                .any(|r| r.contains("recorded key 31 is gone"))
        );
    }

    #[test]
    fn operator_user_with_an_exclusive_group_and_a_key_to_rebind() {
        let mut w = World::new(GroupBilling::Standard);
        w.group = Some(group(GroupBilling::Standard, true));
        w.probe = false;
        w.email = "alice@example.com".into();
        let mut u = user(21, "alice@example.com", 1.5);
        u.allowed_groups = vec![HostObjectId(3)];
        w.user = Some(u);
        w.keys = vec![key(55, "alice-laptop", Some(3))];
        w.key_choice = KeyChoice::Rebind {
            key_id: HostObjectId(55),
        };
        let plan = w.plan(AccessMode::SelfService);
        insta::assert_yaml_snapshot!(plan);
    }

    #[test]
    fn zero_balance_grants_nothing_and_warns_of_the_billing_gate() {
        let mut w = World::new(GroupBilling::Standard);
        w.balance = 0.0;
        let plan = w.plan(AccessMode::SelfService);
        assert!(
            !plan
                .items
                .iter()
                .any(|i| i.item.kind == ResourceKind::BalanceGrant)
        );
        assert!(plan.notes[0].contains("billing_gate"), "{:?}", plan.notes);
    }

    #[test]
    fn a_key_bound_elsewhere_is_rebound() {
        let mut w = World::new(GroupBilling::Standard);
        w.user = Some(user(21, &w.email, 5.0));
        w.recorded = vec![
            resource(ResourceKind::User, 21, &natural_key::user(&w.email)),
            resource(
                ResourceKind::BalanceGrant,
                21,
                &natural_key::balance(&w.email),
            ),
            resource(
                ResourceKind::UserApiKey,
                31,
                &natural_key::key(&w.email, &w.key_name()),
            ),
        ];
        w.keys = vec![key(31, &w.key_name(), Some(99))];
        let plan = w.plan(AccessMode::SelfService);
        let last = plan.items.last().unwrap();
        assert_eq!(last.item.action, PlanAction::Update);
        assert_eq!(last.item.changes[0].from, serde_json::json!(99));
        assert_eq!(last.item.changes[0].to, serde_json::json!(7));
    }
}
