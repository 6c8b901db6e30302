//! Channel monitors across the border: the wire's monitor and check become
//! observed types, drafts and patches become wire bodies.

use crm_domain::HostObjectId;
use crm_domain::observed::{HostMonitor, MonitorCheck, MonitorDraft, MonitorPatch};

/// An observed channel monitor; the wire's masked key is already reduced
/// to whether there is one.
pub fn monitor_from_wire(m: crate::monitors::Monitor) -> HostMonitor {
    HostMonitor {
        id: HostObjectId(m.id),
        name: m.name,
        provider: m.provider,
        api_mode: m.api_mode,
        endpoint: m.endpoint,
        primary_model: m.primary_model,
        extra_models: m.extra_models,
        group_name: m.group_name,
        enabled: m.enabled,
        interval_seconds: u32::try_from(m.interval_seconds).unwrap_or(0),
        has_api_key: m.api_key_masked,
        last_checked_at: m.last_checked_at.filter(|t| !t.is_empty()),
        primary_status: Some(m.primary_status).filter(|s| !s.is_empty()),
        availability_7d: m.availability_7d,
    }
}

/// One monitor check; the host's message may quote an upstream error, so it
/// is scrubbed of key-shaped tokens.
pub fn monitor_check_from_wire(c: crate::monitors::MonitorCheck) -> MonitorCheck {
    MonitorCheck {
        model: c.model,
        status: c.status,
        latency_ms: c.latency_ms.and_then(|l| u64::try_from(l).ok()),
        message: crate::scrub::scrub_text(&c.message, &[]),
        checked_at: c.checked_at,
    }
}

/// The create body of a monitor draft.
pub fn new_monitor(d: &MonitorDraft) -> crate::monitors::NewMonitor {
    crate::monitors::NewMonitor {
        name: d.name.clone(),
        provider: d.provider.clone(),
        api_mode: d.api_mode.clone(),
        endpoint: d.endpoint.clone(),
        api_key: d.api_key.clone(),
        primary_model: d.primary_model.clone(),
        extra_models: d.extra_models.clone(),
        group_name: d.group_name.clone(),
        enabled: d.enabled,
        interval_seconds: d.interval_seconds,
    }
}

/// The update body of a monitor patch.
pub fn monitor_update(p: &MonitorPatch) -> crate::monitors::MonitorUpdate {
    crate::monitors::MonitorUpdate {
        name: p.name.clone(),
        endpoint: p.endpoint.clone(),
        api_key: p.api_key.clone(),
        primary_model: p.primary_model.clone(),
        group_name: p.group_name.clone(),
        enabled: p.enabled,
        interval_seconds: p.interval_seconds,
    }
}
