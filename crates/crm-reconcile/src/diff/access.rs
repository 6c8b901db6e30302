//! The access a batch sets up: users, gateway keys and subscriptions
//! (`missing`, `changed`), and failed access re-checks (`access_broken`).

use super::cx::Cx;
use super::fields::{binding_change, change, marker_field};
use crate::desired::{self, DesiredApiKey, DesiredSubscription, DesiredUser};
use crm_domain::batch::ManagedResource;
use crm_domain::plan::FieldChange;
use crm_domain::reconcile::DriftItem;
use crm_domain::{DriftCategory, ResourceKind, ResourceState, Verdict};
use serde_json::{Value, json};

impl Cx<'_> {
    pub(super) fn check_user(&mut self, r: &ManagedResource) {
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

    pub(super) fn check_api_key(&mut self, r: &ManagedResource) {
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

    pub(super) fn check_subscription(&mut self, r: &ManagedResource) {
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

    pub(super) fn access(&mut self) {
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
