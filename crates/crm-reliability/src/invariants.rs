//! The invariants every step of the suite checks, read from the simulator's
//! state dump (what really is on the host) and from the store (what crm
//! recorded).
//!
//! - **No orphans**: every host object carrying crm's marker or name belongs
//!   to exactly one batch's journal or managed resources (an intent still
//!   `pending` after a lost answer owns the object of its deterministic name,
//!   or an unnamed object of its kind carrying its batch's marker, until
//!   resume or rollback resolves it). One account shared by the two access
//!   modes of a provider (one upstream key) belongs to both batches by design.
//! - **No duplicates**: no two crm accounts share a natural key (platform,
//!   base URL, upstream key) and no two crm objects of one kind share a name.
//! - **Rollback leaves nothing**: no host object belongs to a `rolled_back`
//!   batch.

use crm_domain::batch::{ImportBatch, JournalEntry, ManagedResource};
use crm_domain::{BatchStatus, JournalState};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One object on the host that crm's marker or name claims.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostObject {
    /// The dump's collection: `accounts`, `groups`, `channels`, `users`, `api_keys`, `subscriptions`.
    pub kind: &'static str,
    pub id: i64,
    /// Name (email for users); empty for subscriptions.
    pub name: String,
    /// The batch id of the ownership marker, when the object has one.
    pub marker: Option<String>,
    /// Accounts: `platform|base_url|last4 of the key`.
    pub natural_key: Option<String>,
}

impl HostObject {
    pub fn label(&self) -> String {
        format!("{} #{} {:?}", self.kind, self.id, self.name)
    }
}

const KINDS: [(&str, &str, &str); 6] = [
    ("accounts", "name", "notes"),
    ("groups", "name", "description"),
    ("channels", "name", "description"),
    ("users", "email", "notes"),
    ("api_keys", "name", ""),
    ("subscriptions", "", "notes"),
];

/// The dump collection of a journal/resource kind (`None`: not a host object).
pub fn dump_kind(resource_kind: &str) -> Option<&'static str> {
    Some(match resource_kind {
        "account" => "accounts",
        "group" => "groups",
        "channel" => "channels",
        "user" => "users",
        "user_api_key" => "api_keys",
        "subscription" => "subscriptions",
        _ => return None,
    })
}

/// Every object of the dump that crm's marker or `crm-` name claims.
pub fn crm_objects(dump: &Value) -> Vec<HostObject> {
    let mut out = Vec::new();
    for (kind, name_field, text_field) in KINDS {
        for o in dump[kind].as_array().into_iter().flatten() {
            let name = o
                .get(name_field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let marker = o
                .get(text_field)
                .and_then(Value::as_str)
                .and_then(crm_domain::ownership::parse_marker)
                .map(|b| b.to_string());
            if marker.is_none() && !crm_domain::ownership::has_crm_name(&name) {
                continue;
            }
            let natural_key = (kind == "accounts").then(|| {
                format!(
                    "{}|{}|{}",
                    o["platform"].as_str().unwrap_or_default(),
                    o["credentials"]["base_url"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches('/'),
                    o["credentials"]["api_key"].as_str().unwrap_or_default()
                )
            });
            out.push(HostObject {
                kind,
                id: o["id"].as_i64().unwrap_or(-1),
                name,
                marker,
                natural_key,
            });
        }
    }
    out.sort();
    out
}

/// What the store holds about one batch.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub batch: ImportBatch,
    pub journal: Vec<JournalEntry>,
    pub resources: Vec<ManagedResource>,
}

fn kind_word<T: serde::Serialize>(k: &T) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Whether the live owners of an account are batches of one provider (and
/// host) in pairwise different access modes.
fn shared_across_modes(live: &[&String], batch_of: &BTreeMap<String, &ImportBatch>) -> bool {
    let owners: Vec<&ImportBatch> = live
        .iter()
        .filter_map(|b| batch_of.get(*b).copied())
        .collect();
    if owners.len() != live.len() || owners.len() < 2 {
        return owners.len() == live.len() && owners.len() < 2;
    }
    let first = owners[0];
    let same = owners
        .iter()
        .all(|b| b.provider == first.provider && b.host_id == first.host_id);
    let modes: BTreeSet<_> = owners.iter().map(|b| b.mode.as_str()).collect();
    same && modes.len() == owners.len()
}

/// Every invariant violated by the host `dump` against the `recorded`
/// batches (empty when all hold).
pub fn check(dump: &Value, recorded: &[Recorded]) -> Vec<String> {
    let objects = crm_objects(dump);
    // (dump kind, host id) -> batches that reference it.
    let mut owners: BTreeMap<(&'static str, i64), BTreeSet<String>> = BTreeMap::new();
    // (dump kind, name) -> batches with a pending intent of that name.
    let mut pending: BTreeMap<(&'static str, String), BTreeSet<String>> = BTreeMap::new();
    // (dump kind, batch) with a pending intent: owns an unnamed object
    // (a subscription) carrying that batch's marker.
    let mut pending_in_batch: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let status: BTreeMap<String, BatchStatus> = recorded
        .iter()
        .map(|r| (r.batch.id.to_string(), r.batch.status))
        .collect();
    let batch_of: BTreeMap<String, &ImportBatch> = recorded
        .iter()
        .map(|r| (r.batch.id.to_string(), &r.batch))
        .collect();
    for r in recorded {
        let b = r.batch.id.to_string();
        for e in &r.journal {
            let Some(kind) = dump_kind(&kind_word(&e.kind)) else {
                continue;
            };
            if let Some(id) = e.host_object_id {
                owners.entry((kind, id.0)).or_default().insert(b.clone());
            } else if e.state == JournalState::Pending {
                pending
                    .entry((kind, e.name.clone()))
                    .or_default()
                    .insert(b.clone());
                pending_in_batch.insert((kind, b.clone()));
            }
        }
        for m in &r.resources {
            if let Some(kind) = dump_kind(&kind_word(&m.kind)) {
                owners
                    .entry((kind, m.host_object_id.0))
                    .or_default()
                    .insert(b.clone());
            }
        }
    }

    let mut violations = Vec::new();
    for o in &objects {
        let by_id = owners.get(&(o.kind, o.id));
        let by_pending = pending.get(&(o.kind, o.name.clone()));
        let by_marker = o
            .marker
            .as_ref()
            .filter(|m| by_id.is_none() && pending_in_batch.contains(&(o.kind, (*m).clone())));
        let batches: BTreeSet<&String> = by_id
            .into_iter()
            .flatten()
            .chain(by_pending.into_iter().flatten())
            .chain(by_marker)
            .collect();
        let live: Vec<&String> = batches
            .iter()
            .copied()
            .filter(|b| status.get(*b) != Some(&BatchStatus::RolledBack))
            .collect();
        match batches.len() {
            0 => violations.push(format!(
                "orphan: {} (marker {:?}) is in no journal",
                o.label(),
                o.marker
            )),
            1 => {}
            // By design one upstream key imported in both access modes is
            // one account shared by the two batches of that provider.
            _ if o.kind == "accounts" && shared_across_modes(&live, &batch_of) => {}
            n => violations.push(format!("{} belongs to {n} batches: {batches:?}", o.label())),
        }
        // A rolled-back batch leaves nothing, unless a live batch still uses
        // the object (a shared account stays, unbound from the rolled-back
        // batch's group; its marker keeps naming its creator).
        if live.is_empty() {
            for b in &batches {
                violations.push(format!(
                    "{} is still on the host although its batch {b} is rolled_back",
                    o.label()
                ));
            }
            if let Some(m) = &o.marker
                && status.get(m) == Some(&BatchStatus::RolledBack)
                && batches.is_empty()
            {
                violations.push(format!(
                    "{} carries the marker of rolled-back batch {m}",
                    o.label()
                ));
            }
        }
    }

    let mut names: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut keys: BTreeMap<&str, u32> = BTreeMap::new();
    for o in &objects {
        if !o.name.is_empty() {
            *names.entry((o.kind, o.name.as_str())).or_default() += 1;
        }
        if let Some(k) = &o.natural_key {
            *keys.entry(k.as_str()).or_default() += 1;
        }
    }
    for ((kind, name), n) in names {
        if n > 1 {
            violations.push(format!("duplicate: {n} {kind} named {name:?}"));
        }
    }
    for (k, n) in keys {
        if n > 1 {
            violations.push(format!("duplicate: {n} accounts with natural key {k}"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unjournaled_marked_account_is_an_orphan_and_twins_are_duplicates() {
        let dump = json!({
            "accounts": [
                {"id": 5, "name": "crm-a", "notes": "[crm:batch=b-1] x", "platform": "deepseek",
                 "credentials": {"base_url": "https://u", "api_key": "****abcd"}},
                {"id": 6, "name": "crm-a", "notes": "", "platform": "deepseek",
                 "credentials": {"base_url": "https://u/", "api_key": "****abcd"}},
                {"id": 7, "name": "operator-own", "notes": "", "platform": "openai",
                 "credentials": {}}
            ]
        });
        let v = check(&dump, &[]);
        assert!(
            v.iter().any(|s| s.contains("orphan") && s.contains("#5")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|s| s.contains("orphan") && s.contains("#6")),
            "{v:?}"
        );
        assert!(v.iter().any(|s| s.contains("2 accounts named")), "{v:?}");
        assert!(v.iter().any(|s| s.contains("natural key")), "{v:?}");
        assert!(
            !v.iter().any(|s| s.contains("#7")),
            "unowned objects are not crm's: {v:?}"
        );
    }
}
