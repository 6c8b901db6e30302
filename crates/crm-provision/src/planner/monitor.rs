//! The host-side channel monitor's plan item (issue 20 item 4).
//!
//! A batch has a monitor when it asked for one (`--monitor`, the pack's
//! `monitor = true`) or already records one. On a host without channel
//! monitors (older sub2api) there is no item but a plan note, never a
//! `blocked`: a monitor adds no access, so an import without it is as safe
//! as one with it, and a pack's default must not stop imports onto the
//! hosts that predate monitors. The same holds for a provider whose base
//! URL the host's monitor cannot call (`crate::monitor::monitor_endpoint`).

use super::changes::change;
use super::matching::match_named;
use super::recorded;
use crate::desired::{AccountSpec, PackProvider};
use crate::monitor::{MonitorSpec, monitor_name};
use crm_domain::batch::ManagedResource;
use crm_domain::host::Capabilities;
use crm_domain::observed::{HostMonitor, HostSnapshot};
use crm_domain::plan::{FieldChange, PlanItem};
use crm_domain::{AccessMode, Fingerprint, PlanAction, ResourceKind};
use serde_json::json;

/// What the monitor item is planned from.
pub(super) struct MonitorInput<'a> {
    pub pack: &'a PackProvider,
    pub caps: &'a Capabilities,
    pub snapshot: &'a HostSnapshot,
    pub resources: &'a [ManagedResource],
    pub mode: AccessMode,
    /// The plan's account specs, in plan order: a new monitor checks with
    /// the first one's key.
    pub accounts: &'a [AccountSpec],
    pub wanted: bool,
}

/// The monitor's item and spec, or the note saying why there is none.
#[derive(Debug, Default)]
pub(super) struct MonitorPlan {
    pub item: Option<PlanItem>,
    pub spec: Option<MonitorSpec>,
    pub note: Option<String>,
}

pub(super) fn plan_monitor(input: MonitorInput<'_>) -> MonitorPlan {
    let MonitorInput {
        pack,
        caps,
        snapshot,
        resources,
        mode,
        accounts,
        wanted,
    } = input;
    let recorded = recorded(resources, ResourceKind::Monitor, |_| true);
    if !wanted && recorded.is_none() {
        return MonitorPlan::default();
    }
    if !caps.channel_monitors {
        return MonitorPlan {
            note: Some(format!(
                "host has no channel monitors (an older sub2api): no host-side monitor for {}; crm's reconcile and access checks still watch it",
                pack.provider
            )),
            ..MonitorPlan::default()
        };
    }
    // The key a recorded monitor checks with stays its key.
    let key: Option<Fingerprint> = recorded
        .and_then(|r| r.desired.get("upstream_key"))
        .and_then(|k| serde_json::from_value(k.clone()).ok())
        .or_else(|| accounts.first().map(|a| a.key.clone()));
    let Some(key) = key else {
        // No upstream key at all: the account items are blocked for it.
        return MonitorPlan::default();
    };
    let spec = match MonitorSpec::new(pack, mode, &key) {
        Ok(s) => s,
        Err(why) => {
            return MonitorPlan {
                note: Some(format!("no host-side monitor: {why}")),
                ..MonitorPlan::default()
            };
        }
    };
    let Some(observed) = snapshot.monitors.as_deref() else {
        // Observation asks for monitors whenever a plan may have one
        // (`Provisioner::observe`); without them crm cannot tell a create
        // from a duplicate.
        return MonitorPlan {
            item: Some(PlanItem {
                kind: ResourceKind::Monitor,
                action: PlanAction::Blocked,
                name: spec.name.clone(),
                natural_key: spec.name.clone(),
                host_object_id: None,
                changes: vec![],
                reason: Some("the host's channel monitors were not observed".into()),
            }),
            spec: Some(spec),
            note: None,
        };
    };
    let (mut item, _) = match_named(
        ResourceKind::Monitor,
        &monitor_name(pack, mode),
        recorded,
        observed,
        |m: &HostMonitor| (m.id, m.name.as_str(), Some(m.group_name.as_str())),
        |m| monitor_changes(&spec, m),
    );
    if item.action == PlanAction::Create && item.reason.is_none() {
        item.reason = Some(format!(
            "the host checks {} at {} every {} s with upstream key {}",
            spec.primary_model, spec.endpoint, spec.interval_seconds, spec.key
        ));
    }
    MonitorPlan {
        item: Some(item),
        spec: Some(spec),
        note: None,
    }
}

/// The fields of an observed monitor that differ from the spec.
pub(crate) fn monitor_changes(spec: &MonitorSpec, m: &HostMonitor) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if m.endpoint.trim_end_matches('/') != spec.endpoint {
        out.push(change("endpoint", json!(m.endpoint), json!(spec.endpoint)));
    }
    if m.primary_model != spec.primary_model {
        out.push(change(
            "primary_model",
            json!(m.primary_model),
            json!(spec.primary_model),
        ));
    }
    if m.interval_seconds != spec.interval_seconds {
        out.push(change(
            "interval_seconds",
            json!(m.interval_seconds),
            json!(spec.interval_seconds),
        ));
    }
    if !m.enabled {
        out.push(change("enabled", json!(false), json!(true)));
    }
    out
}
