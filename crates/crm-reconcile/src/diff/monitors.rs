//! Host-side channel monitors (issue 20 item 4): `missing`, and `changed`
//! (interval, model, endpoint, enabled, name, marker) against the recorded
//! spec. Monitors are observed only when a batch in scope records one
//! (`run::observe`); a host that no longer lists them makes a recorded
//! monitor `missing` with that reason.

use super::cx::Cx;
use super::fields::{change, marker_field};
use crate::desired::{self, DesiredMonitor};
use crm_domain::DriftReason;
use crm_domain::batch::ManagedResource;
use crm_domain::observed::HostMonitor;
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
        if let Some(detail) = failing(m) {
            self.unhealthy(r, DriftReason::MonitorFailing, detail);
        }
    }
}

/// The monitor's own verdict on the upstream, read from the listing (its
/// latest check of the primary model): `failed` and `error` mean users of
/// the provider fail too; `degraded` (slow) and `operational` do not.
fn failing(m: &HostMonitor) -> Option<String> {
    let status = m.primary_status.as_deref()?;
    if !matches!(status, "failed" | "error") {
        return None;
    }
    let mut detail = format!(
        "the host's channel monitor reports {status} for {}",
        m.primary_model
    );
    if let Some(at) = &m.last_checked_at {
        detail.push_str(&format!(" (checked {at})"));
    }
    if let Some(a) = m.availability_7d {
        detail.push_str(&format!("; 7-day availability {a:.1}%"));
    }
    detail.push_str("; check the upstream key and its funds");
    Some(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(status: Option<&str>) -> HostMonitor {
        HostMonitor {
            id: crm_domain::HostObjectId(1),
            name: "m".into(),
            provider: "openai".into(),
            api_mode: "chat_completions".into(),
            endpoint: "https://api.deepseek.com".into(),
            primary_model: "deepseek-chat".into(),
            extra_models: vec![],
            group_name: String::new(),
            enabled: true,
            interval_seconds: 300,
            has_api_key: true,
            last_checked_at: Some("2026-12-07T12:00:00Z".into()),
            primary_status: status.map(str::to_owned),
            availability_7d: Some(62.5),
        }
    }

    #[test]
    fn only_a_failed_or_erroring_primary_check_is_failing() {
        for (status, want) in [
            (None, false),
            (Some(""), false),
            (Some("operational"), false),
            (Some("degraded"), false),
            (Some("failed"), true),
            (Some("error"), true),
        ] {
            assert_eq!(failing(&monitor(status)).is_some(), want, "{status:?}");
        }
        let d = failing(&monitor(Some("failed"))).unwrap();
        assert!(d.contains("failed for deepseek-chat"), "{d}");
        assert!(d.contains("7-day availability 62.5%"), "{d}");
    }
}
