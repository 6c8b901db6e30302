//! Reconcile runs and drift items.

use crate::{
    BatchId, DriftCategory, DriftReason, HostId, HostObjectId, ProviderRef, ReconcileRunId,
    ReconcileStatus, ResourceKind, plan::FieldChange,
};
use chrono::{DateTime, Utc};

/// What a run compared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReconcileScope {
    pub host_id: HostId,
    /// Set for a batch-scoped run.
    pub batch_id: Option<BatchId>,
    /// Set for a provider-on-host run.
    pub provider: Option<ProviderRef>,
}

/// A persisted reconcile run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReconcileRun {
    pub id: ReconcileRunId,
    pub scope: ReconcileScope,
    pub status: ReconcileStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Host requests the observation (and repair) made.
    pub host_requests: u32,
    pub items: Vec<DriftItem>,
    /// Whether a repair was applied in this run.
    pub repaired: bool,
    pub error: Option<String>,
}

/// One difference between recorded desired state and the live host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriftItem {
    pub category: DriftCategory,
    pub kind: ResourceKind,
    pub name: String,
    pub host_object_id: Option<HostObjectId>,
    /// The batch that owns (or owned) the object.
    pub batch_id: Option<BatchId>,
    pub fields: Vec<FieldChange>,
    pub detail: String,
    /// Why an `unhealthy` item was raised when it is not the host's own
    /// account state (`low_funds`, `low_quota`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DriftReason>,
}
