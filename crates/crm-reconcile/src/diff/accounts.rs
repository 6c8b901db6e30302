//! Accounts: `missing`, `changed`, `unhealthy` and `duplicate` (by natural
//! key, and unrecorded crm accounts bound to a recorded group).

use super::cx::Cx;
use super::fields::{binding_change, change, marker_field};
use super::identity::is_active_account;
use super::platform::platform_migration;
use super::recorded::RecordedBatch;
use crate::desired::{self, DesiredAccount, normalize_url};
use crm_domain::batch::ManagedResource;
use crm_domain::observed::HostAccount;
use crm_domain::ownership::parse_marker;
use crm_domain::reconcile::DriftItem;
use crm_domain::{DriftCategory, HostObjectId, ResourceKind};
use crm_provision::desired::AccountKey;
use serde_json::{Value, json};

impl Cx<'_> {
    pub(super) fn check_account(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredAccount = desired::read(&r.desired);
        let Some(a) = self.account_by_id.get(&r.host_object_id).copied() else {
            let key = d.platform.as_ref().and_then(|p| {
                AccountKey::of_name(
                    d.name.as_deref().unwrap_or(&r.name),
                    p,
                    d.base_url.as_deref(),
                )
            });
            let candidates = key
                .and_then(|k| self.accounts_by_key.get(&k))
                .map_or(0, |same| {
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
        let dups: Vec<&HostAccount> = AccountKey::of(a)
            .and_then(|k| self.accounts_by_key.get(&k))
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
    pub(super) fn group_duplicates(&mut self, rb: &RecordedBatch) {
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
}
