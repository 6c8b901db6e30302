//! [`BatchRepo`]: import batches, their write-ahead journal and the managed
//! resources the journal proves crm created or adopted.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::batch::{
    BatchFilter, ImportBatch, JournalEntry, JournalResolution, ManagedResource, NewJournalEntry,
};
use crm_domain::ports::{BatchRepo, StoreError, StoreResult};
use crm_domain::{
    AccessStatus, BatchId, BatchStatus, HostId, HostObjectId, JournalOp, JournalState, PackId,
    ProviderKey, ProviderRef, ResourceKind, ResourceState,
};
use crm_store::columns::{BATCH_COLUMNS, JOURNAL_COLUMNS, RESOURCE_COLUMNS, live_statuses_sql};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

fn batch_from_row(row: &Row) -> StoreResult<ImportBatch> {
    Ok(ImportBatch {
        id: BatchId(get(row, "id")?),
        host_id: HostId(get(row, "host_id")?),
        provider: ProviderRef {
            pack: PackId(get(row, "pack_id")?),
            provider: ProviderKey(get(row, "provider_key")?),
        },
        mode: get_word(row, "mode")?,
        pack_version: get(row, "pack_version")?,
        pack_checksum: get(row, "pack_checksum")?,
        status: get_word(row, "status")?,
        status_reason: get(row, "status_reason")?,
        access_status: get_word(row, "access_status")?,
        plan: get_json(row, "plan")?,
        upstream_keys: get_json(row, "upstream_keys")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

fn entry_from_row(row: &Row) -> StoreResult<JournalEntry> {
    Ok(JournalEntry {
        seq: get_u32(row, "seq")?,
        batch_id: BatchId(get(row, "batch_id")?),
        intent_key: get(row, "intent_key")?,
        op: get_word(row, "op")?,
        kind: get_word(row, "kind")?,
        natural_key: get(row, "natural_key")?,
        name: get(row, "name")?,
        host_object_id: get::<Option<i64>>(row, "host_object_id")?.map(HostObjectId),
        spec_digest: get(row, "spec_digest")?,
        desired: get_json(row, "desired")?,
        state: get_word(row, "state")?,
        detail: get(row, "detail")?,
        created_at: get_ts(row, "created_at")?,
        resolved_at: get_opt_ts(row, "resolved_at")?,
    })
}

fn resource_from_row(row: &Row) -> StoreResult<ManagedResource> {
    Ok(ManagedResource {
        batch_id: BatchId(get(row, "batch_id")?),
        kind: get_word(row, "kind")?,
        host_object_id: HostObjectId(get(row, "host_object_id")?),
        name: get(row, "name")?,
        natural_key: get(row, "natural_key")?,
        origin: get_word(row, "origin")?,
        spec_digest: get(row, "spec_digest")?,
        desired: get_json(row, "desired")?,
        state: get_word(row, "state")?,
        journal_seq: get_u32(row, "journal_seq")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

async fn load_entry<C: GenericClient>(c: &C, batch: &str, seq: u32) -> StoreResult<JournalEntry> {
    query_opt(
        c,
        &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE batch_id = $1 AND seq = $2"),
        &[&batch, &i64::from(seq)],
        entry_from_row,
    )
    .await?
    .ok_or_else(|| not_found(format!("journal entry {seq} of batch {batch}")))
}

/// Every column of a batch, in [`BATCH_COLUMNS`] order.
struct BatchParams {
    text: [String; 9],
    reason: Option<String>,
    words: [&'static str; 3],
}

impl BatchParams {
    fn new(b: &ImportBatch) -> StoreResult<BatchParams> {
        Ok(BatchParams {
            text: [
                b.id.as_str().to_owned(),
                b.host_id.as_str().to_owned(),
                b.provider.pack.as_str().to_owned(),
                b.provider.provider.as_str().to_owned(),
                b.pack_version.clone(),
                b.pack_checksum.clone(),
                to_json("batch plan", &b.plan)?,
                to_json("upstream key fingerprints", &b.upstream_keys)?,
                ts(&b.created_at),
            ],
            reason: b.status_reason.clone(),
            words: [b.mode.as_str(), b.status.as_str(), b.access_status.as_str()],
        })
    }

    fn params<'a>(&'a self, updated_at: &'a String) -> [&'a (dyn ToSql + Sync); 14] {
        let t = &self.text;
        [
            &t[0],
            &t[1],
            &t[2],
            &t[3],
            &self.words[0],
            &t[4],
            &t[5],
            &self.words[1],
            &self.reason,
            &self.words[2],
            &t[6],
            &t[7],
            &t[8],
            updated_at,
        ]
    }
}

/// The key itself, or the range of keys `base#...` ('$' sorts right after
/// '#' bytewise; the column is `COLLATE "C"`), both served by the unique
/// index of `intent_key`.
const INTENT_ATTEMPTS_WHERE: &str = "WHERE batch_id = $1
    AND (intent_key = $2 OR (intent_key >= $2 || '#' AND intent_key < $2 || '$'))
    ORDER BY seq";

#[async_trait]
impl BatchRepo for PostgresStore {
    async fn create_batch(&self, batch: ImportBatch) -> StoreResult<ImportBatch> {
        let c = self.client().await?;
        let p = BatchParams::new(&batch)?;
        let updated = ts(&batch.updated_at);
        let res = exec_raw(
            &c,
            &format!(
                "INSERT INTO batches ({BATCH_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            &p.params(&updated),
        )
        .await;
        match res {
            Ok(_) => Ok(batch),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: format!("batch {}", batch.id),
            }),
            Err(e) if is_fk_violation(&e) => Err(not_found(format!("host {}", batch.host_id))),
            Err(e) => Err(db(e)),
        }
    }

    async fn get_batch(&self, id: &BatchId) -> StoreResult<ImportBatch> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = $1"),
            &[&id.as_str()],
            batch_from_row,
        )
        .await?
        .ok_or_else(|| not_found(format!("batch {id}")))
    }

    async fn list_batches(&self, filter: BatchFilter) -> StoreResult<Vec<ImportBatch>> {
        // Only the filters given become conditions, so the planner can use
        // the host, provider and status indexes.
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(h) = &filter.host_id {
            args.push(Box::new(h.as_str().to_owned()));
            conds.push(format!("host_id = ${}", args.len()));
        }
        if let Some(p) = &filter.provider {
            args.push(Box::new(p.pack.as_str().to_owned()));
            args.push(Box::new(p.provider.as_str().to_owned()));
            conds.push(format!(
                "pack_id = ${} AND provider_key = ${}",
                args.len() - 1,
                args.len()
            ));
        }
        if let Some(st) = filter.status {
            args.push(Box::new(st.as_str()));
            conds.push(format!("status = ${}", args.len()));
        }
        // NULL means no limit.
        args.push(Box::new(filter.limit.map(i64::from)));
        let where_sql = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {BATCH_COLUMNS} FROM batches {where_sql}
             ORDER BY created_at DESC, id DESC LIMIT ${}",
            args.len()
        );
        let params: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let c = self.client().await?;
        query_all(&c, &sql, &params, batch_from_row).await
    }

    async fn update_batch(&self, batch: &ImportBatch) -> StoreResult<()> {
        let p = BatchParams::new(batch)?;
        let updated = ts(&batch.updated_at);
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE batches SET host_id = $2, pack_id = $3, provider_key = $4, mode = $5,
                pack_version = $6, pack_checksum = $7, status = $8, status_reason = $9,
                access_status = $10, plan = $11, upstream_keys = $12, created_at = $13,
                updated_at = $14
             WHERE id = $1",
            &p.params(&updated),
        )
        .await?;
        one_row(n, || format!("batch {}", batch.id))
    }

    async fn set_batch_status(
        &self,
        id: &BatchId,
        status: BatchStatus,
        reason: Option<String>,
    ) -> StoreResult<()> {
        let now = ts(&self.now());
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE batches SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1",
            &[&id.as_str(), &status.as_str(), &reason, &now],
        )
        .await?;
        one_row(n, || format!("batch {id}"))
    }

    async fn set_access_status(&self, id: &BatchId, status: AccessStatus) -> StoreResult<()> {
        let now = ts(&self.now());
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE batches SET access_status = $2, updated_at = $3 WHERE id = $1",
            &[&id.as_str(), &status.as_str(), &now],
        )
        .await?;
        one_row(n, || format!("batch {id}"))
    }

    async fn record_intent(&self, entry: NewJournalEntry) -> StoreResult<JournalEntry> {
        let now = self.now();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Gapless per batch, across replicas: the batch row is locked first
        // (FOR NO KEY UPDATE: it does not block the journal's foreign key
        // checks), so two writers of one batch take turns; the second then
        // sees the first's intent, in a fresh READ COMMITTED snapshot.
        let locked = query_opt(
            &tx,
            "SELECT id FROM batches WHERE id = $1 FOR NO KEY UPDATE",
            &[&entry.batch_id.as_str()],
            |_| Ok(()),
        )
        .await?;
        if locked.is_none() {
            return Err(not_found(format!("batch {}", entry.batch_id)));
        }
        if let Some(existing) = query_opt(
            &tx,
            &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE intent_key = $1"),
            &[&entry.intent_key],
            entry_from_row,
        )
        .await?
        {
            return Ok(existing);
        }
        let last: i64 = query_opt(
            &tx,
            "SELECT coalesce(max(seq), 0) AS last FROM journal WHERE batch_id = $1",
            &[&entry.batch_id.as_str()],
            |r| get(r, "last"),
        )
        .await?
        .unwrap_or(0);
        let seq = u32::try_from(last + 1).map_err(|_| StoreError::Corrupt {
            detail: format!("journal of batch {} is full", entry.batch_id),
        })?;
        exec(
            &tx,
            &format!(
                "INSERT INTO journal ({JOURNAL_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, NULL)"
            ),
            &[
                &entry.batch_id.as_str(),
                &i64::from(seq),
                &entry.intent_key,
                &entry.op.as_str(),
                &entry.kind.as_str(),
                &entry.natural_key,
                &entry.name,
                &entry.host_object_id.map(|h| h.0),
                &entry.spec_digest,
                &to_json("desired spec", &entry.desired)?,
                &JournalState::Pending.as_str(),
                &ts(&now),
            ],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(JournalEntry {
            seq,
            batch_id: entry.batch_id,
            intent_key: entry.intent_key,
            op: entry.op,
            kind: entry.kind,
            natural_key: entry.natural_key,
            name: entry.name,
            host_object_id: entry.host_object_id,
            spec_digest: entry.spec_digest,
            desired: entry.desired,
            state: JournalState::Pending,
            detail: None,
            created_at: now,
            resolved_at: None,
        })
    }

    async fn resolve_intent(
        &self,
        batch: &BatchId,
        seq: u32,
        resolution: JournalResolution,
    ) -> StoreResult<JournalEntry> {
        let batch = batch.as_str();
        let now = self.now();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Locks the entry, so two replicas resolving it take turns.
        let entry = query_opt(
            &tx,
            &format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal WHERE batch_id = $1 AND seq = $2 FOR UPDATE"
            ),
            &[&batch, &i64::from(seq)],
            entry_from_row,
        )
        .await?
        .ok_or_else(|| not_found(format!("journal entry {seq} of batch {batch}")))?;
        let host_object_id = resolution.host_object_id.or(entry.host_object_id);
        let resolved_at = (resolution.state != JournalState::Pending).then(|| ts(&now));
        exec(
            &tx,
            "UPDATE journal SET state = $3, host_object_id = $4, detail = $5, resolved_at = $6
             WHERE batch_id = $1 AND seq = $2",
            &[
                &batch,
                &i64::from(seq),
                &resolution.state.as_str(),
                &host_object_id.map(|h| h.0),
                &resolution.detail,
                &resolved_at,
            ],
        )
        .await?;
        if resolution.state == JournalState::Applied
            && let Some(hid) = host_object_id
        {
            match entry.op {
                JournalOp::Create | JournalOp::Adopt => {
                    exec(
                        &tx,
                        "INSERT INTO managed_resources (batch_id, kind, host_object_id, name,
                            natural_key, origin, spec_digest, desired, state, journal_seq, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                         ON CONFLICT (batch_id, kind, host_object_id) DO UPDATE SET
                            name = excluded.name, natural_key = excluded.natural_key,
                            origin = excluded.origin, spec_digest = excluded.spec_digest,
                            desired = excluded.desired, state = excluded.state,
                            journal_seq = excluded.journal_seq, updated_at = excluded.updated_at",
                        &[
                            &batch,
                            &entry.kind.as_str(),
                            &hid.0,
                            &entry.name,
                            &entry.natural_key,
                            &entry.op.as_str(),
                            &entry.spec_digest,
                            &to_json("desired spec", &entry.desired)?,
                            &ResourceState::Live.as_str(),
                            &i64::from(seq),
                            &ts(&now),
                        ],
                    )
                    .await?;
                }
                JournalOp::Delete | JournalOp::Disable => {
                    // A host object id names one object per kind on a host,
                    // whichever batch of that host manages it.
                    let state = if entry.op == JournalOp::Delete {
                        ResourceState::Deleted
                    } else {
                        ResourceState::Disabled
                    };
                    exec(
                        &tx,
                        "UPDATE managed_resources SET state = $1, updated_at = $2
                         WHERE kind = $3 AND host_object_id = $4
                           AND batch_id IN (SELECT id FROM batches WHERE host_id =
                               (SELECT host_id FROM batches WHERE id = $5))",
                        &[
                            &state.as_str(),
                            &ts(&now),
                            &entry.kind.as_str(),
                            &hid.0,
                            &batch,
                        ],
                    )
                    .await?;
                }
                _ => {}
            }
        }
        let out = load_entry(&tx, batch, seq).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn journal(&self, batch: &BatchId) -> StoreResult<Vec<JournalEntry>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE batch_id = $1 ORDER BY seq"),
            &[&batch.as_str()],
            entry_from_row,
        )
        .await
    }

    async fn intent_attempts(
        &self,
        batch: &BatchId,
        base_key: &str,
    ) -> StoreResult<Vec<JournalEntry>> {
        let c = self.client().await?;
        let rows = query_all(
            &c,
            &format!("SELECT {JOURNAL_COLUMNS} FROM journal {INTENT_ATTEMPTS_WHERE}"),
            &[&batch.as_str(), &base_key],
            entry_from_row,
        )
        .await?;
        Ok(rows
            .into_iter()
            .filter(|e| crm_domain::batch::is_attempt_of(&e.intent_key, base_key))
            .collect())
    }

    async fn pending_intents(&self, batch: Option<BatchId>) -> StoreResult<Vec<JournalEntry>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal
                 WHERE state = 'pending' AND ($1::text IS NULL OR batch_id = $1)
                 ORDER BY batch_id, seq"
            ),
            &[&batch.as_ref().map(|b| b.as_str())],
            entry_from_row,
        )
        .await
    }

    async fn resources(&self, batch: &BatchId) -> StoreResult<Vec<ManagedResource>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!(
                "SELECT {RESOURCE_COLUMNS} FROM managed_resources r
                 WHERE r.batch_id = $1 ORDER BY r.journal_seq, r.kind, r.host_object_id"
            ),
            &[&batch.as_str()],
            resource_from_row,
        )
        .await
    }

    async fn set_resource_state(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        state: ResourceState,
    ) -> StoreResult<()> {
        let now = ts(&self.now());
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE managed_resources SET state = $4, updated_at = $5
             WHERE batch_id = $1 AND kind = $2 AND host_object_id = $3",
            &[
                &batch.as_str(),
                &kind.as_str(),
                &id.0,
                &state.as_str(),
                &now,
            ],
        )
        .await?;
        one_row(n, || format!("{kind} {id} of batch {batch}"))
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
        let now = ts(&self.now());
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE managed_resources SET spec_digest = $4, desired = $5, updated_at = $6,
                 natural_key = COALESCE($7, natural_key)
             WHERE batch_id = $1 AND kind = $2 AND host_object_id = $3",
            &[
                &batch.as_str(),
                &kind.as_str(),
                &id.0,
                &spec_digest,
                &to_json("desired spec", &desired)?,
                &now,
                &natural_key,
            ],
        )
        .await?;
        one_row(n, || format!("{kind} {id} of batch {batch}"))
    }

    async fn live_resources_on_host(&self, host: &HostId) -> StoreResult<Vec<ManagedResource>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!(
                "SELECT {RESOURCE_COLUMNS} FROM managed_resources r
                 JOIN batches b ON b.id = r.batch_id
                 WHERE b.host_id = $1 AND r.state = 'live' AND b.status IN ({})
                 ORDER BY b.created_at, b.id, r.journal_seq, r.kind, r.host_object_id",
                live_statuses_sql()
            ),
            &[&host.as_str()],
            resource_from_row,
        )
        .await
    }
}
