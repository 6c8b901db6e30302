//! Matching a desired object against what the batch recorded and what the
//! host shows: `create`, `adopt`, `update`, `no-op` or `blocked`.

use super::changes::{account_changes, change};
use super::{recorded, recorded_key_hmac};
use crate::desired::{AccountKey, AccountSpec, PackProvider, PlatformChoice};
use crm_domain::batch::ManagedResource;
use crm_domain::observed::{HostAccount, HostSnapshot};
use crm_domain::ownership;
use crm_domain::plan::{BASE_URL_FIELD, FieldChange, PlanItem};
use crm_domain::{AccessMode, HostObjectId, PlanAction, ResourceKind};
use serde_json::{Value, json};

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

pub(super) fn account_item(
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
pub(super) fn match_named<T>(
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
