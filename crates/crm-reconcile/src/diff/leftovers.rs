//! `unmanaged_leftover`: objects whose marker names a batch that is not live
//! (or, without notes, that carry crm's name and no live batch records).

use super::cx::Cx;
use crm_domain::ownership::{has_crm_name, parse_marker, provider_slug};
use crm_domain::reconcile::DriftItem;
use crm_domain::{DriftCategory, ResourceKind};

impl Cx<'_> {
    pub(super) fn leftovers(&mut self) {
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
}
