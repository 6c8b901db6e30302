//! The column lists both store adapters select, the SQL form of the
//! domain's "live batch" rule, and the row mappers whose columns read alike
//! in both: the schema's shape written once, so the SQLite and PostgreSQL
//! adapters cannot drift apart in what they read.

use chrono::{DateTime, Utc};
use crm_domain::BatchStatus;
use crm_domain::ops::{ConsoleSession, SessionRole};
use crm_domain::ports::{StoreError, StoreResult};

/// Columns of an import batch (`batches`).
pub const BATCH_COLUMNS: &str = "id, host_id, pack_id, provider_key, mode, pack_version, pack_checksum, \
     status, status_reason, access_status, plan, upstream_keys, created_at, updated_at";

/// Columns of a journal entry (`journal`).
pub const JOURNAL_COLUMNS: &str = "batch_id, seq, intent_key, op, kind, natural_key, name, \
     host_object_id, spec_digest, desired, state, detail, created_at, resolved_at";

/// Columns of a managed resource (`resources r`).
pub const RESOURCE_COLUMNS: &str = "r.batch_id, r.kind, r.host_object_id, r.name, r.natural_key, \
     r.origin, r.spec_digest, r.desired, r.state, r.journal_seq, r.updated_at";

/// Batch states whose resources are desired state ([`BatchStatus::is_live`]),
/// as SQL, derived from the domain rule so the two cannot disagree.
pub fn live_statuses_sql() -> String {
    BatchStatus::ALL
        .iter()
        .filter(|s| s.is_live())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns of a host (`hosts`).
pub const HOST_COLUMNS: &str = "id, name, base_url, admin_credential, capabilities, reconcile_every_secs, funds_thresholds, created_at";

/// Columns of an operation (`operations`).
pub const OP_COLUMNS: &str = "id, kind, status, target, request, progress, result, error, \
     idempotency_key, created_at, updated_at";

/// Columns of a lease (`leases`).
pub const LEASE_COLUMNS: &str =
    "id, scope, holder, operation, acquired_at, heartbeat_at, expires_at";

/// Columns of an installed pack (`packs`).
pub const PACK_COLUMNS: &str = "manifest, checksum, installed_at, origin, current";

/// Columns of a reconcile run (`reconcile_runs`).
pub const RUN_COLUMNS: &str = "id, host_id, batch_id, provider, status, started_at, finished_at, host_requests, repaired, error";

/// Columns of a console session (`console_sessions`).
pub const SESSION_COLUMNS: &str = "id_digest, role, created_at, expires_at";

/// A console session from its [`SESSION_COLUMNS`], read through the
/// adapter's own getters of a text and a timestamp column.
pub fn session_from_columns(
    text: impl Fn(&str) -> StoreResult<String>,
    time: impl Fn(&str) -> StoreResult<DateTime<Utc>>,
) -> StoreResult<ConsoleSession> {
    let role = text("role")?;
    Ok(ConsoleSession {
        id_digest: text("id_digest")?,
        role: SessionRole::from_word(&role).ok_or_else(|| StoreError::Corrupt {
            detail: format!("column role holds {role:?}"),
        })?,
        created_at: time("created_at")?,
        expires_at: time("expires_at")?,
    })
}
