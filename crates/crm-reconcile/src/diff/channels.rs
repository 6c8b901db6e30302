//! Channels: `missing` and `changed` (bindings, pricing, model rules).

use super::cx::Cx;
use super::fields::{binding_change, change, marker_field, pricing_changes};
use super::recorded::RecordedBatch;
use crate::desired::{self, DesiredChannel};
use crm_domain::batch::ManagedResource;
use serde_json::json;

impl Cx<'_> {
    pub(super) fn check_channel(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        let d: DesiredChannel = desired::read(&r.desired);
        let Some(c) = self
            .observed
            .channels
            .iter()
            .flatten()
            .find(|c| c.id == r.host_object_id)
        else {
            let detail = if self.observed.channels.is_none() || !self.caps.channels {
                "channel is gone: the host no longer offers channels"
            } else {
                "channel is gone from the host"
            };
            self.missing(r, detail.into());
            return;
        };
        let mut f = Vec::new();
        marker_field(
            &mut f,
            "description",
            d.description.as_deref(),
            c.description.as_deref(),
        );
        if let Some(n) = &d.name
            && *n != c.name
        {
            f.push(change("name", json!(c.name), json!(n)));
        }
        let expected = d
            .group_ids
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| rb.groups());
        if let Some(bound) = binding_change(&c.group_ids, &expected) {
            f.push(bound);
        }
        if let Some(rows) = &d.model_pricing {
            f.extend(pricing_changes(&c.model_pricing, rows));
        }
        if let Some(m) = &d.model_mapping
            && *m != c.model_mapping
        {
            f.push(change("model_mapping", json!(c.model_mapping), json!(m)));
        }
        if let Some(s) = &d.billing_model_source
            && *s != c.billing_model_source
        {
            f.push(change(
                "billing_model_source",
                json!(c.billing_model_source),
                json!(s),
            ));
        }
        if let Some(x) = d.restrict_models
            && x != c.restrict_models
        {
            f.push(change(
                "restrict_models",
                json!(c.restrict_models),
                json!(x),
            ));
        }
        if c.status != "active" {
            f.push(change("status", json!(c.status), json!("active")));
        }
        self.changed(r, f);
    }
}
