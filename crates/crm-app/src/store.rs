//! The store an [`App`](crate::App) runs on: SQLite (a file path, the
//! default) or PostgreSQL (a `postgres://` URL, for several replicas).
//!
//! One enum rather than a trait object, so the use cases keep taking the
//! store by value or as `&dyn SomeRepo` exactly as before, and each call
//! is a plain match on which adapter is open.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::KeyFingerprinter;
use crm_domain::SecretString;
use crm_domain::access::AccessCheck;
use crm_domain::batch::{
    BatchFilter, ImportBatch, JournalEntry, JournalResolution, ManagedResource, NewJournalEntry,
};
use crm_domain::host::{Capabilities, HostRecord, SealContext, SealedSecret};
use crm_domain::ops::{
    AuditEvent, IdempotencyBegin, Lease, NewAuditEvent, Operation, StoredResponse,
};
use crm_domain::ports::*;
use crm_domain::reconcile::ReconcileRun;
use crm_domain::spec::InstalledPack;
use crm_domain::{
    AccessStatus, BatchId, BatchStatus, HostId, HostObjectId, LeaseId, OperationId, PackId,
    ReconcileRunId, ResourceKind, ResourceState,
};
use crm_store::{Sealer, SqliteStore};
use crm_store_postgres::PostgresStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the database is, as `--db` / `CRM_DB` / `db =` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (no password in it; see `crm_store_postgres::PgTarget`).
    Postgres(String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else
    /// is a SQLite file path.
    pub fn parse(db: &std::path::Path) -> Database {
        match db.to_str() {
            Some(s) if crm_store_postgres::is_postgres_url(s) => Database::Postgres(s.to_owned()),
            _ => Database::Sqlite(db.to_owned()),
        }
    }
}

/// The open store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Fingerprints secrets under this installation's pepper.
    pub fn fingerprinter(&self) -> KeyFingerprinter {
        each!(self, s => s.fingerprinter())
    }

    /// The sealer for secrets kept at rest.
    pub fn sealer(&self) -> Arc<Sealer> {
        each!(self, s => s.sealer())
    }

    /// The SQLite store, when that is what is open (backups, benchmarks).
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Sqlite(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// Whether other processes on other machines may share this store
    /// (PostgreSQL): then a lease holder's pid says nothing on this machine.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }
}

impl SecretSealer for Store {
    fn seal(&self, ctx: &SealContext, secret: &SecretString) -> Result<SealedSecret, StoreError> {
        each!(self, s => s.seal(ctx, secret))
    }
    fn open(&self, ctx: &SealContext, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        each!(self, s => SecretSealer::open(s, ctx, sealed))
    }
}

#[async_trait]
impl PackRepo for Store {
    async fn install_pack(&self, pack: InstalledPack) -> StoreResult<InstalledPack> {
        each!(self, s => s.install_pack(pack).await)
    }
    async fn list_packs(&self) -> StoreResult<Vec<InstalledPack>> {
        each!(self, s => s.list_packs().await)
    }
    async fn get_pack(&self, id: &PackId, version: Option<String>) -> StoreResult<InstalledPack> {
        each!(self, s => s.get_pack(id, version).await)
    }
}

#[async_trait]
impl HostRepo for Store {
    async fn add_host(&self, host: HostRecord) -> StoreResult<HostRecord> {
        each!(self, s => s.add_host(host).await)
    }
    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>> {
        each!(self, s => s.list_hosts().await)
    }
    async fn get_host(&self, id_or_name: &str) -> StoreResult<HostRecord> {
        each!(self, s => s.get_host(id_or_name).await)
    }
    async fn remove_host(&self, id: &HostId) -> StoreResult<()> {
        each!(self, s => s.remove_host(id).await)
    }
    async fn save_capabilities(&self, id: &HostId, caps: Capabilities) -> StoreResult<()> {
        each!(self, s => s.save_capabilities(id, caps).await)
    }
    async fn set_reconcile_interval(
        &self,
        id: &HostId,
        every_secs: Option<u64>,
    ) -> StoreResult<()> {
        each!(self, s => s.set_reconcile_interval(id, every_secs).await)
    }

    async fn set_funds_thresholds(
        &self,
        id: &HostId,
        thresholds: crm_domain::funds::HostThresholds,
    ) -> StoreResult<()> {
        each!(self, s => s.set_funds_thresholds(id, thresholds).await)
    }
}

#[async_trait]
impl BatchRepo for Store {
    async fn create_batch(&self, batch: ImportBatch) -> StoreResult<ImportBatch> {
        each!(self, s => s.create_batch(batch).await)
    }
    async fn get_batch(&self, id: &BatchId) -> StoreResult<ImportBatch> {
        each!(self, s => s.get_batch(id).await)
    }
    async fn list_batches(&self, filter: BatchFilter) -> StoreResult<Vec<ImportBatch>> {
        each!(self, s => s.list_batches(filter).await)
    }
    async fn update_batch(&self, batch: &ImportBatch) -> StoreResult<()> {
        each!(self, s => s.update_batch(batch).await)
    }
    async fn set_batch_status(
        &self,
        id: &BatchId,
        status: BatchStatus,
        reason: Option<String>,
    ) -> StoreResult<()> {
        each!(self, s => s.set_batch_status(id, status, reason).await)
    }
    async fn set_access_status(&self, id: &BatchId, status: AccessStatus) -> StoreResult<()> {
        each!(self, s => s.set_access_status(id, status).await)
    }
    async fn record_intent(&self, entry: NewJournalEntry) -> StoreResult<JournalEntry> {
        each!(self, s => s.record_intent(entry).await)
    }
    async fn resolve_intent(
        &self,
        batch: &BatchId,
        seq: u32,
        resolution: JournalResolution,
    ) -> StoreResult<JournalEntry> {
        each!(self, s => s.resolve_intent(batch, seq, resolution).await)
    }
    async fn journal(&self, batch: &BatchId) -> StoreResult<Vec<JournalEntry>> {
        each!(self, s => s.journal(batch).await)
    }
    async fn intent_attempts(
        &self,
        batch: &BatchId,
        base_key: &str,
    ) -> StoreResult<Vec<JournalEntry>> {
        each!(self, s => s.intent_attempts(batch, base_key).await)
    }
    async fn pending_intents(&self, batch: Option<BatchId>) -> StoreResult<Vec<JournalEntry>> {
        each!(self, s => s.pending_intents(batch).await)
    }
    async fn resources(&self, batch: &BatchId) -> StoreResult<Vec<ManagedResource>> {
        each!(self, s => s.resources(batch).await)
    }
    async fn set_resource_state(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        state: ResourceState,
    ) -> StoreResult<()> {
        each!(self, s => s.set_resource_state(batch, kind, id, state).await)
    }
    async fn update_resource_desired(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        natural_key: Option<String>,
        spec_digest: String,
        desired: serde_json::Value,
    ) -> StoreResult<()> {
        each!(self, s => s.update_resource_desired(batch, kind, id, natural_key, spec_digest, desired).await)
    }
    async fn live_resources_on_host(&self, host: &HostId) -> StoreResult<Vec<ManagedResource>> {
        each!(self, s => s.live_resources_on_host(host).await)
    }
}

#[async_trait]
impl AccessCheckRepo for Store {
    async fn record_access_check(&self, check: AccessCheck) -> StoreResult<()> {
        each!(self, s => s.record_access_check(check).await)
    }
    async fn access_checks(&self, batch: &BatchId) -> StoreResult<Vec<AccessCheck>> {
        each!(self, s => s.access_checks(batch).await)
    }
}

#[async_trait]
impl ReconcileRepo for Store {
    async fn save_run(&self, run: ReconcileRun) -> StoreResult<()> {
        each!(self, s => s.save_run(run).await)
    }
    async fn get_run(&self, id: &ReconcileRunId) -> StoreResult<ReconcileRun> {
        each!(self, s => s.get_run(id).await)
    }
    async fn runs_for_host(&self, host: &HostId, limit: u32) -> StoreResult<Vec<ReconcileRun>> {
        each!(self, s => s.runs_for_host(host, limit).await)
    }
    async fn runs_for_batch(&self, batch: &BatchId, limit: u32) -> StoreResult<Vec<ReconcileRun>> {
        each!(self, s => s.runs_for_batch(batch, limit).await)
    }
    async fn latest_for_host(&self, host: &HostId) -> StoreResult<Option<ReconcileRun>> {
        each!(self, s => s.latest_for_host(host).await)
    }
    async fn latest_for_batch(&self, batch: &BatchId) -> StoreResult<Option<ReconcileRun>> {
        each!(self, s => s.latest_for_batch(batch).await)
    }
}

#[async_trait]
impl OperationRepo for Store {
    async fn create_operation(&self, op: Operation) -> StoreResult<Operation> {
        each!(self, s => s.create_operation(op).await)
    }
    async fn get_operation(&self, id: &OperationId) -> StoreResult<Operation> {
        each!(self, s => s.get_operation(id).await)
    }
    async fn update_operation(&self, op: &Operation) -> StoreResult<()> {
        each!(self, s => s.update_operation(op).await)
    }
    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>> {
        each!(self, s => s.unfinished_operations().await)
    }
}

#[async_trait]
impl IdempotencyRepo for Store {
    async fn begin_idempotent(
        &self,
        principal: &str,
        key: &str,
        route: &str,
        body_hash: &str,
    ) -> StoreResult<IdempotencyBegin> {
        each!(self, s => s.begin_idempotent(principal, key, route, body_hash).await)
    }
    async fn complete_idempotent(
        &self,
        principal: &str,
        key: &str,
        response: StoredResponse,
    ) -> StoreResult<()> {
        each!(self, s => s.complete_idempotent(principal, key, response).await)
    }
    async fn abandon_idempotent(&self, principal: &str, key: &str) -> StoreResult<()> {
        each!(self, s => s.abandon_idempotent(principal, key).await)
    }
    async fn purge_idempotency_before(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        each!(self, s => s.purge_idempotency_before(before).await)
    }
}

#[async_trait]
impl LeaseRepo for Store {
    async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> StoreResult<Lease> {
        each!(self, s => s.acquire_lease(scope, holder, operation, ttl).await)
    }
    async fn heartbeat_lease(&self, id: &LeaseId, ttl: Duration) -> StoreResult<Lease> {
        each!(self, s => s.heartbeat_lease(id, ttl).await)
    }
    async fn release_lease(&self, id: &LeaseId) -> StoreResult<()> {
        each!(self, s => s.release_lease(id).await)
    }
    async fn active_leases(&self, prefix: &str) -> StoreResult<Vec<Lease>> {
        each!(self, s => s.active_leases(prefix).await)
    }
}

#[async_trait]
impl SessionRepo for Store {
    async fn create_session(&self, session: crm_domain::ops::ConsoleSession) -> StoreResult<()> {
        each!(self, s => s.create_session(session).await)
    }
    async fn get_session(
        &self,
        id_digest: &str,
    ) -> StoreResult<Option<crm_domain::ops::ConsoleSession>> {
        each!(self, s => s.get_session(id_digest).await)
    }
    async fn delete_session(&self, id_digest: &str) -> StoreResult<()> {
        each!(self, s => s.delete_session(id_digest).await)
    }
}

#[async_trait]
impl AuditRepo for Store {
    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent> {
        each!(self, s => s.append_audit(event).await)
    }
    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        each!(self, s => s.list_audit(limit).await)
    }
}

#[async_trait]
impl crm_domain::ports::FundsRepo for Store {
    async fn save_readings(
        &self,
        readings: Vec<crm_domain::funds::FundsReading>,
    ) -> StoreResult<()> {
        each!(self, s => s.save_readings(readings).await)
    }
    async fn latest_readings(
        &self,
        host: &HostId,
    ) -> StoreResult<Vec<crm_domain::funds::FundsReading>> {
        each!(self, s => s.latest_readings(host).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_url_is_postgres_and_anything_else_a_sqlite_path() {
        assert_eq!(
            Database::parse(Path::new("postgres://crm@db/crm")),
            Database::Postgres("postgres://crm@db/crm".into())
        );
        assert_eq!(
            Database::parse(Path::new("postgresql://crm@db/crm")),
            Database::Postgres("postgresql://crm@db/crm".into())
        );
        assert_eq!(
            Database::parse(Path::new("crm.db")),
            Database::Sqlite("crm.db".into())
        );
        assert_eq!(
            Database::parse(Path::new("/var/lib/postgres/crm.db")),
            Database::Sqlite("/var/lib/postgres/crm.db".into())
        );
    }
}
