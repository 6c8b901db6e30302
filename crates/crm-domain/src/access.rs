//! Stored access checks.

use crate::{AccessCheckId, AccessMode, BatchId, FailureClass, Verdict};
use chrono::{DateTime, Utc};

/// One verification of an access closure (docs/design.md §2 "Access check").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccessCheck {
    pub id: AccessCheckId,
    pub batch_id: BatchId,
    pub mode: AccessMode,
    pub checked_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub failure_class: Option<FailureClass>,
    /// Operator-facing explanation.
    pub summary: String,
    pub steps: Vec<CheckStep>,
}

/// One step of a check (account probe, models, completion, upstream probe, ...).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckStep {
    pub name: String,
    pub verdict: Verdict,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Redacted evidence (host error text, error type, model ids).
    pub detail: serde_json::Value,
}
