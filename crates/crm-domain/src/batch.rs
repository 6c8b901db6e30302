//! Import batches, their write-ahead journal and the resources they manage.

use crate::{
    AccessMode, AccessStatus, BatchId, BatchStatus, Fingerprint, HostId, HostObjectId, JournalOp,
    JournalState, ProviderRef, ResourceKind, ResourceState, plan::Plan,
};
use chrono::{DateTime, Utc};

/// One import of one provider onto one host in one access mode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportBatch {
    pub id: BatchId,
    pub host_id: HostId,
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub pack_version: String,
    pub pack_checksum: String,
    pub status: BatchStatus,
    /// Why the batch is in its status (for failures and `needs_operator`).
    pub status_reason: Option<String>,
    pub access_status: AccessStatus,
    /// The plan the batch was created from (or last upgraded with).
    pub plan: Plan,
    /// Fingerprints of the upstream keys the batch provisions.
    pub upstream_keys: Vec<Fingerprint>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A journal intent about to be committed (before its host call).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewJournalEntry {
    pub batch_id: BatchId,
    /// Unique and deterministic for the intent (e.g.
    /// `b-1/create/account/<natural key>`), so replaying an apply after a crash
    /// finds the same intent instead of writing a second one.
    pub intent_key: String,
    pub op: JournalOp,
    pub kind: ResourceKind,
    pub natural_key: String,
    pub name: String,
    /// Target host object for updates, deletes and binds.
    pub host_object_id: Option<HostObjectId>,
    /// Digest of the desired spec this intent writes.
    pub spec_digest: String,
    /// The desired spec (no secrets), for reconcile and repair.
    pub desired: serde_json::Value,
}

/// Whether the journal intent key `key` is `base` or one of its later
/// attempts (`base#2`, `base#3`, ...). Retries of an intent get a numbered
/// key so every attempt keeps its own journal entry.
///
/// ```
/// use crm_domain::batch::is_attempt_of;
/// assert!(is_attempt_of("b/create/account/x#2", "b/create/account/x"));
/// assert!(!is_attempt_of("b/create/account/xy", "b/create/account/x"));
/// ```
pub fn is_attempt_of(key: &str, base: &str) -> bool {
    match key.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('#')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// A committed journal entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    /// Position in the batch journal (1-based, gapless per batch).
    pub seq: u32,
    pub batch_id: BatchId,
    pub intent_key: String,
    pub op: JournalOp,
    pub kind: ResourceKind,
    pub natural_key: String,
    pub name: String,
    pub host_object_id: Option<HostObjectId>,
    pub spec_digest: String,
    pub desired: serde_json::Value,
    pub state: JournalState,
    /// Scrubbed host error or recovery note.
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// How a pending journal entry ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalResolution {
    pub state: JournalState,
    pub host_object_id: Option<HostObjectId>,
    pub detail: Option<String>,
}

/// A host object a batch created or adopted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManagedResource {
    pub batch_id: BatchId,
    pub kind: ResourceKind,
    pub host_object_id: HostObjectId,
    pub name: String,
    pub natural_key: String,
    /// Whether crm created it (`create`) or took it over (`adopt`).
    pub origin: JournalOp,
    pub spec_digest: String,
    /// Desired spec (no secrets), what reconcile compares against.
    pub desired: serde_json::Value,
    pub state: ResourceState,
    /// Journal seq of the entry that created or adopted it.
    pub journal_seq: u32,
    pub updated_at: DateTime<Utc>,
}

/// Filter for listing batches.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchFilter {
    pub host_id: Option<HostId>,
    pub provider: Option<ProviderRef>,
    pub status: Option<BatchStatus>,
    pub limit: Option<u32>,
}
