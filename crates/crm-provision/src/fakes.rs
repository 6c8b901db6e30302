//! In-memory fakes of the storage ports and the clock, for this crate's unit
//! tests (the real adapter is crm-store; the cross-crate tests use it).

#![allow(dead_code)]

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use crm_domain::batch::*;
use crm_domain::host::SealContext;
use crm_domain::ops::Lease;
use crm_domain::ports::*;
use crm_domain::*;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct FakeStore {
    pub batches: Mutex<Vec<ImportBatch>>,
    pub journal: Mutex<Vec<JournalEntry>>,
    pub resources: Mutex<Vec<ManagedResource>>,
    pub leases: Mutex<Vec<Lease>>,
    pub packs: Mutex<Vec<crm_domain::spec::InstalledPack>>,
}

#[async_trait]
impl PackRepo for FakeStore {
    async fn install_pack(
        &self,
        pack: crm_domain::spec::InstalledPack,
    ) -> StoreResult<crm_domain::spec::InstalledPack> {
        let mut all = self.packs.lock().unwrap();
        for p in all.iter_mut() {
            if p.manifest.pack_id == pack.manifest.pack_id {
                p.current = false;
            }
        }
        all.push(crm_domain::spec::InstalledPack {
            current: true,
            ..pack.clone()
        });
        Ok(pack)
    }
    async fn list_packs(&self) -> StoreResult<Vec<crm_domain::spec::InstalledPack>> {
        Ok(self.packs.lock().unwrap().clone())
    }
    async fn get_pack(
        &self,
        id: &PackId,
        version: Option<String>,
    ) -> StoreResult<crm_domain::spec::InstalledPack> {
        self.packs
            .lock()
            .unwrap()
            .iter()
            .find(|p| {
                &p.manifest.pack_id == id
                    && version
                        .as_ref()
                        .map_or(p.current, |v| &p.manifest.version == v)
            })
            .cloned()
            .ok_or_else(|| nf("pack"))
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fn nf(what: &str) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

#[async_trait]
impl BatchRepo for FakeStore {
    async fn create_batch(&self, batch: ImportBatch) -> StoreResult<ImportBatch> {
        self.batches.lock().unwrap().push(batch.clone());
        Ok(batch)
    }
    async fn get_batch(&self, id: &BatchId) -> StoreResult<ImportBatch> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .find(|b| &b.id == id)
            .cloned()
            .ok_or_else(|| nf("batch"))
    }
    async fn list_batches(&self, f: BatchFilter) -> StoreResult<Vec<ImportBatch>> {
        Ok(self
            .batches
            .lock()
            .unwrap()
            .iter()
            .filter(|b| f.host_id.as_ref().is_none_or(|h| &b.host_id == h))
            .filter(|b| f.provider.as_ref().is_none_or(|p| &b.provider == p))
            .filter(|b| f.status.is_none_or(|s| b.status == s))
            .cloned()
            .collect())
    }
    async fn update_batch(&self, batch: &ImportBatch) -> StoreResult<()> {
        let mut all = self.batches.lock().unwrap();
        let b = all
            .iter_mut()
            .find(|b| b.id == batch.id)
            .ok_or_else(|| nf("batch"))?;
        *b = batch.clone();
        Ok(())
    }
    async fn set_batch_status(
        &self,
        id: &BatchId,
        status: BatchStatus,
        reason: Option<String>,
    ) -> StoreResult<()> {
        let mut all = self.batches.lock().unwrap();
        let b = all
            .iter_mut()
            .find(|b| &b.id == id)
            .ok_or_else(|| nf("batch"))?;
        b.status = status;
        b.status_reason = reason;
        Ok(())
    }
    async fn set_access_status(&self, id: &BatchId, status: AccessStatus) -> StoreResult<()> {
        let mut all = self.batches.lock().unwrap();
        let b = all
            .iter_mut()
            .find(|b| &b.id == id)
            .ok_or_else(|| nf("batch"))?;
        b.access_status = status;
        Ok(())
    }
    async fn record_intent(&self, e: NewJournalEntry) -> StoreResult<JournalEntry> {
        let mut j = self.journal.lock().unwrap();
        if let Some(x) = j.iter().find(|x| x.intent_key == e.intent_key) {
            return Ok(x.clone());
        }
        let seq = j.iter().filter(|x| x.batch_id == e.batch_id).count() as u32 + 1;
        let entry = JournalEntry {
            seq,
            batch_id: e.batch_id,
            intent_key: e.intent_key,
            op: e.op,
            kind: e.kind,
            natural_key: e.natural_key,
            name: e.name,
            host_object_id: e.host_object_id,
            spec_digest: e.spec_digest,
            desired: e.desired,
            state: JournalState::Pending,
            detail: None,
            created_at: t0(),
            resolved_at: None,
        };
        j.push(entry.clone());
        Ok(entry)
    }
    async fn resolve_intent(
        &self,
        batch: &BatchId,
        seq: u32,
        r: JournalResolution,
    ) -> StoreResult<JournalEntry> {
        let mut j = self.journal.lock().unwrap();
        let e = j
            .iter_mut()
            .find(|x| &x.batch_id == batch && x.seq == seq)
            .ok_or_else(|| nf("journal entry"))?;
        e.state = r.state;
        if r.host_object_id.is_some() {
            e.host_object_id = r.host_object_id;
        }
        e.detail = r.detail;
        e.resolved_at = Some(t0());
        let e = e.clone();
        if e.state == JournalState::Applied
            && matches!(e.op, JournalOp::Create | JournalOp::Adopt)
            && let Some(id) = e.host_object_id
        {
            self.resources.lock().unwrap().push(ManagedResource {
                batch_id: e.batch_id.clone(),
                kind: e.kind,
                host_object_id: id,
                name: e.name.clone(),
                natural_key: e.natural_key.clone(),
                origin: e.op,
                spec_digest: e.spec_digest.clone(),
                desired: e.desired.clone(),
                state: ResourceState::Live,
                journal_seq: e.seq,
                updated_at: t0(),
            });
        }
        Ok(e)
    }
    async fn journal(&self, batch: &BatchId) -> StoreResult<Vec<JournalEntry>> {
        Ok(self
            .journal
            .lock()
            .unwrap()
            .iter()
            .filter(|e| &e.batch_id == batch)
            .cloned()
            .collect())
    }
    async fn pending_intents(&self, batch: Option<BatchId>) -> StoreResult<Vec<JournalEntry>> {
        Ok(self
            .journal
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.state == JournalState::Pending)
            .filter(|e| batch.as_ref().is_none_or(|b| &e.batch_id == b))
            .cloned()
            .collect())
    }
    async fn resources(&self, batch: &BatchId) -> StoreResult<Vec<ManagedResource>> {
        Ok(self
            .resources
            .lock()
            .unwrap()
            .iter()
            .filter(|r| &r.batch_id == batch)
            .cloned()
            .collect())
    }
    async fn set_resource_state(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        state: ResourceState,
    ) -> StoreResult<()> {
        for r in self.resources.lock().unwrap().iter_mut() {
            if &r.batch_id == batch && r.kind == kind && r.host_object_id == id {
                r.state = state;
            }
        }
        Ok(())
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
        for r in self.resources.lock().unwrap().iter_mut() {
            if &r.batch_id == batch && r.kind == kind && r.host_object_id == id {
                if let Some(k) = &natural_key {
                    r.natural_key = k.clone();
                }
                r.spec_digest = spec_digest.clone();
                r.desired = desired.clone();
            }
        }
        Ok(())
    }
    async fn live_resources_on_host(&self, host: &HostId) -> StoreResult<Vec<ManagedResource>> {
        let live: Vec<BatchId> = self
            .batches
            .lock()
            .unwrap()
            .iter()
            .filter(|b| &b.host_id == host && b.status.is_live())
            .map(|b| b.id.clone())
            .collect();
        Ok(self
            .resources
            .lock()
            .unwrap()
            .iter()
            .filter(|r| live.contains(&r.batch_id) && r.state == ResourceState::Live)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl LeaseRepo for FakeStore {
    async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> StoreResult<Lease> {
        let mut l = self.leases.lock().unwrap();
        if let Some(h) = l.iter().find(|x| x.scope == scope) {
            return Err(StoreError::LeaseHeld {
                scope: scope.into(),
                holder: h.holder.clone(),
                operation: h.operation.clone(),
                lease_id: h.id.clone(),
                expires_at: h.expires_at,
            });
        }
        let lease = Lease {
            id: LeaseId::new(format!("l-{}", l.len() + 1)),
            scope: scope.into(),
            holder: holder.into(),
            operation: operation.into(),
            acquired_at: t0(),
            heartbeat_at: t0(),
            expires_at: t0() + chrono::Duration::from_std(ttl).unwrap(),
        };
        l.push(lease.clone());
        Ok(lease)
    }
    async fn heartbeat_lease(&self, id: &LeaseId, _ttl: Duration) -> StoreResult<Lease> {
        self.leases
            .lock()
            .unwrap()
            .iter()
            .find(|x| &x.id == id)
            .cloned()
            .ok_or(StoreError::LeaseLost {
                lease_id: id.clone(),
            })
    }
    async fn release_lease(&self, id: &LeaseId) -> StoreResult<()> {
        self.leases.lock().unwrap().retain(|x| &x.id != id);
        Ok(())
    }
    async fn active_leases(&self, prefix: &str) -> StoreResult<Vec<Lease>> {
        Ok(self
            .leases
            .lock()
            .unwrap()
            .iter()
            .filter(|x| x.scope.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[derive(Debug)]
pub struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        t0()
    }
}

#[derive(Debug, Default)]
pub struct SeqIds(pub std::sync::atomic::AtomicU32);
impl IdSource for SeqIds {
    fn new_id(&self, prefix: &str) -> String {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        format!("{prefix}-{n}")
    }
}

/// "Seals" by reversing and tagging with the context (tests only; not
/// encryption). Like the real sealer, a value opens only in its context.
#[derive(Debug)]
pub struct FakeSealer;
impl SecretSealer for FakeSealer {
    fn seal(
        &self,
        ctx: &SealContext,
        secret: &SecretString,
    ) -> StoreResult<crm_domain::host::SealedSecret> {
        use crm_domain::secret::ExposeSecret;
        Ok(crm_domain::host::SealedSecret(format!(
            "sealed[{ctx}]:{}",
            secret.expose_secret().chars().rev().collect::<String>()
        )))
    }
    fn open(
        &self,
        ctx: &SealContext,
        sealed: &crm_domain::host::SealedSecret,
    ) -> StoreResult<SecretString> {
        let body =
            sealed
                .0
                .strip_prefix(&format!("sealed[{ctx}]:"))
                .ok_or(StoreError::Sealing {
                    detail: format!("not sealed by FakeSealer for {ctx}"),
                })?;
        Ok(SecretString::from(body.chars().rev().collect::<String>()))
    }
}
