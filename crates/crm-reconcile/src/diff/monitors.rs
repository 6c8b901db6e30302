//! Host-side channel monitors (issue 20 item 4): `missing`, and `changed`
//! (interval, model, endpoint, enabled, name, marker) against the recorded
//! spec. Monitors are observed only when a batch in scope records one
//! (`run::observe`); a host that no longer lists them makes a recorded
//! monitor `missing` with that reason.

use super::cx::Cx;
use super::fields::{change, marker_field};
use crate::desired::{self, DesiredMonitor};
use crm_domain::batch::ManagedResource;
use serde_json::json;

impl Cx<'_> {
    pub(super) fn check_monitor(&mut self, r: &ManagedResource) {
        let d: DesiredMonitor = desired::read(&r.desired);
        let Some(m) = self
            .observed
            .monitors
            .iter()
            .flatten()
            .find(|m| m.id == r.host_object_id)
        else {
            let detail = if self.observed.monitors.is_none() || !self.caps.channel_monitors {
                "monitor is gone: the host no longer offers channel monitors"
            } else {
                "monitor is gone from the host"
            };
            self.missing(r, detail.into());
            return;
        };
        let mut f = Vec::new();
        marker_field(
            &mut f,
            "group_name",
            d.group_name.as_deref(),
            Some(m.group_name.as_str()),
        );
        if let Some(n) = &d.name
            && *n != m.name
        {
            f.push(change("name", json!(m.name), json!(n)));
        }
        if let Some(e) = &d.endpoint
            && e.trim_end_matches('/') != m.endpoint.trim_end_matches('/')
        {
            f.push(change("endpoint", json!(m.endpoint), json!(e)));
        }
        if let Some(model) = &d.primary_model
            && *model != m.primary_model
        {
            f.push(change(
                "primary_model",
                json!(m.primary_model),
                json!(model),
            ));
        }
        if let Some(i) = d.interval_seconds
            && i != m.interval_seconds
        {
            f.push(change(
                "interval_seconds",
                json!(m.interval_seconds),
                json!(i),
            ));
        }
        if let Some(e) = d.enabled
            && e != m.enabled
        {
            f.push(change("enabled", json!(m.enabled), json!(e)));
        }
        self.changed(r, f);
    }
}
