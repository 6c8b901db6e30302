//! [`BatchRepo`]: import batches, their write-ahead journal and the managed
//! resources the journal proves crm created or adopted.

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::{BATCH_COLUMNS, JOURNAL_COLUMNS, RESOURCE_COLUMNS, live_statuses_sql};
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
use rusqlite::{Row, Transaction, params};

fn batch_from_row(row: &Row<'_>) -> StoreResult<ImportBatch> {
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

fn entry_from_row(row: &Row<'_>) -> StoreResult<JournalEntry> {
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

fn resource_from_row(row: &Row<'_>) -> StoreResult<ManagedResource> {
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

fn load_entry(tx: &Transaction<'_>, batch: &str, seq: u32) -> StoreResult<JournalEntry> {
    query_opt(
        tx,
        &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE batch_id = ?1 AND seq = ?2"),
        params![batch, seq],
        entry_from_row,
    )?
    .ok_or_else(|| not_found(format!("journal entry {seq} of batch {batch}")))
}

/// Writes every column of a batch (insert or full update).
fn batch_params(b: &ImportBatch) -> StoreResult<[Box<dyn rusqlite::ToSql>; 14]> {
    Ok([
        Box::new(b.id.as_str().to_owned()),
        Box::new(b.host_id.as_str().to_owned()),
        Box::new(b.provider.pack.as_str().to_owned()),
        Box::new(b.provider.provider.as_str().to_owned()),
        Box::new(b.mode.as_str()),
        Box::new(b.pack_version.clone()),
        Box::new(b.pack_checksum.clone()),
        Box::new(b.status.as_str()),
        Box::new(b.status_reason.clone()),
        Box::new(b.access_status.as_str()),
        Box::new(to_json("batch plan", &b.plan)?),
        Box::new(to_json("upstream key fingerprints", &b.upstream_keys)?),
        Box::new(ts(&b.created_at)),
        Box::new(ts(&b.updated_at)),
    ])
}

fn one_row(n: usize, what: impl FnOnce() -> String) -> StoreResult<()> {
    if n == 0 {
        Err(not_found(what()))
    } else {
        Ok(())
    }
}

/// The key itself, or the range of keys `base#...` ('$' sorts right after
/// '#'), both searched on the unique index of `intent_key`. `+batch_id`
/// keeps SQLite from choosing the primary key instead, which reads the
/// whole journal of the batch for every journaled host call.
const INTENT_ATTEMPTS_WHERE: &str = "WHERE +batch_id = ?1
    AND (intent_key = ?2 OR (intent_key >= ?2 || '#' AND intent_key < ?2 || '$'))
    ORDER BY seq";

#[async_trait]
impl BatchRepo for SqliteStore {
    async fn create_batch(&self, batch: ImportBatch) -> StoreResult<ImportBatch> {
        self.conn()
            .write(move |tx| {
                let p = batch_params(&batch)?;
                let res = tx.execute(
                    &format!(
                        "INSERT INTO batches ({BATCH_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                    ),
                    rusqlite::params_from_iter(p.iter()),
                );
                match res {
                    Ok(_) => Ok(batch),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                        what: format!("batch {}", batch.id),
                    }),
                    Err(e) if is_fk_violation(&e) => {
                        Err(not_found(format!("host {}", batch.host_id)))
                    }
                    Err(e) => Err(db(e)),
                }
            })
            .await
    }

    async fn get_batch(&self, id: &BatchId) -> StoreResult<ImportBatch> {
        let id = id.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_opt(
                    c,
                    &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1"),
                    [&id],
                    batch_from_row,
                )?
                .ok_or_else(|| not_found(format!("batch {id}")))
            })
            .await
    }

    async fn list_batches(&self, filter: BatchFilter) -> StoreResult<Vec<ImportBatch>> {
        self.conn()
            .call(move |c| {
                // Only the filters given become conditions, so SQLite can
                // use the host, provider and status indexes.
                let mut conds: Vec<&str> = Vec::new();
                let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
                if let Some(h) = &filter.host_id {
                    conds.push("host_id = ?");
                    args.push(Box::new(h.as_str().to_owned()));
                }
                if let Some(p) = &filter.provider {
                    conds.push("pack_id = ? AND provider_key = ?");
                    args.push(Box::new(p.pack.as_str().to_owned()));
                    args.push(Box::new(p.provider.as_str().to_owned()));
                }
                if let Some(st) = filter.status {
                    conds.push("status = ?");
                    args.push(Box::new(st.as_str()));
                }
                args.push(Box::new(limit(filter.limit)));
                let where_sql = if conds.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", conds.join(" AND "))
                };
                query_all(
                    c,
                    &format!(
                        "SELECT {BATCH_COLUMNS} FROM batches {where_sql}
                         ORDER BY created_at DESC, id DESC LIMIT ?"
                    ),
                    rusqlite::params_from_iter(args.iter()),
                    batch_from_row,
                )
            })
            .await
    }

    async fn update_batch(&self, batch: &ImportBatch) -> StoreResult<()> {
        let batch = batch.clone();
        self.conn()
            .write(move |tx| {
                let p = batch_params(&batch)?;
                let n = tx
                    .execute(
                        "UPDATE batches SET host_id = ?2, pack_id = ?3, provider_key = ?4, mode = ?5,
                            pack_version = ?6, pack_checksum = ?7, status = ?8, status_reason = ?9,
                            access_status = ?10, plan = ?11, upstream_keys = ?12, created_at = ?13,
                            updated_at = ?14
                         WHERE id = ?1",
                        rusqlite::params_from_iter(p.iter()),
                    )
                    .map_err(db)?;
                one_row(n, || format!("batch {}", batch.id))
            })
            .await
    }

    async fn set_batch_status(
        &self,
        id: &BatchId,
        status: BatchStatus,
        reason: Option<String>,
    ) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE batches SET status = ?2, status_reason = ?3, updated_at = ?4 WHERE id = ?1",
                        params![id, status.as_str(), reason, now],
                    )
                    .map_err(db)?;
                one_row(n, || format!("batch {id}"))
            })
            .await
    }

    async fn set_access_status(&self, id: &BatchId, status: AccessStatus) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE batches SET access_status = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id, status.as_str(), now],
                    )
                    .map_err(db)?;
                one_row(n, || format!("batch {id}"))
            })
            .await
    }

    async fn record_intent(&self, entry: NewJournalEntry) -> StoreResult<JournalEntry> {
        let now = self.now();
        self.conn()
            .write(move |tx| {
                if let Some(existing) = query_opt(
                    tx,
                    &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE intent_key = ?1"),
                    [&entry.intent_key],
                    entry_from_row,
                )? {
                    return Ok(existing);
                }
                // Gapless per batch: the next number is taken inside the
                // write transaction, so no other writer can take it too.
                let last: i64 = tx
                    .query_row(
                        "SELECT coalesce(max(seq), 0) FROM journal WHERE batch_id = ?1",
                        [entry.batch_id.as_str()],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                let seq = u32::try_from(last + 1).map_err(|_| StoreError::Corrupt {
                    detail: format!("journal of batch {} is full", entry.batch_id),
                })?;
                let res = tx.execute(
                    &format!(
                        "INSERT INTO journal ({JOURNAL_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, ?12, NULL)"
                    ),
                    params![
                        entry.batch_id.as_str(),
                        seq,
                        entry.intent_key,
                        entry.op.as_str(),
                        entry.kind.as_str(),
                        entry.natural_key,
                        entry.name,
                        entry.host_object_id.map(|h| h.0),
                        entry.spec_digest,
                        to_json("desired spec", &entry.desired)?,
                        JournalState::Pending.as_str(),
                        ts(&now),
                    ],
                );
                match res {
                    Ok(_) => {}
                    Err(e) if is_fk_violation(&e) => {
                        return Err(not_found(format!("batch {}", entry.batch_id)));
                    }
                    Err(e) => return Err(db(e)),
                }
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
            })
            .await
    }

    async fn resolve_intent(
        &self,
        batch: &BatchId,
        seq: u32,
        resolution: JournalResolution,
    ) -> StoreResult<JournalEntry> {
        let batch = batch.as_str().to_owned();
        let now = self.now();
        self.conn()
            .write(move |tx| {
                let entry = load_entry(tx, &batch, seq)?;
                let host_object_id = resolution.host_object_id.or(entry.host_object_id);
                let resolved_at = (resolution.state != JournalState::Pending).then_some(now);
                tx.execute(
                    "UPDATE journal SET state = ?3, host_object_id = ?4, detail = ?5, resolved_at = ?6
                     WHERE batch_id = ?1 AND seq = ?2",
                    params![
                        batch,
                        seq,
                        resolution.state.as_str(),
                        host_object_id.map(|h| h.0),
                        resolution.detail,
                        resolved_at.as_ref().map(ts),
                    ],
                )
                .map_err(db)?;
                if resolution.state == JournalState::Applied
                    && let Some(hid) = host_object_id
                {
                    match entry.op {
                        JournalOp::Create | JournalOp::Adopt => {
                            tx.execute(
                                "INSERT INTO managed_resources (batch_id, kind, host_object_id, name,
                                    natural_key, origin, spec_digest, desired, state, journal_seq, updated_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                                 ON CONFLICT (batch_id, kind, host_object_id) DO UPDATE SET
                                    name = excluded.name, natural_key = excluded.natural_key,
                                    origin = excluded.origin, spec_digest = excluded.spec_digest,
                                    desired = excluded.desired, state = excluded.state,
                                    journal_seq = excluded.journal_seq, updated_at = excluded.updated_at",
                                params![
                                    batch,
                                    entry.kind.as_str(),
                                    hid.0,
                                    entry.name,
                                    entry.natural_key,
                                    entry.op.as_str(),
                                    entry.spec_digest,
                                    to_json("desired spec", &entry.desired)?,
                                    ResourceState::Live.as_str(),
                                    seq,
                                    ts(&now),
                                ],
                            )
                            .map_err(db)?;
                        }
                        JournalOp::Delete | JournalOp::Disable => {
                            // A host object id names one object per kind on a
                            // host, whichever batch of that host manages it.
                            let state = if entry.op == JournalOp::Delete {
                                ResourceState::Deleted
                            } else {
                                ResourceState::Disabled
                            };
                            tx.execute(
                                "UPDATE managed_resources SET state = ?1, updated_at = ?2
                                 WHERE kind = ?3 AND host_object_id = ?4
                                   AND batch_id IN (SELECT id FROM batches WHERE host_id =
                                       (SELECT host_id FROM batches WHERE id = ?5))",
                                params![state.as_str(), ts(&now), entry.kind.as_str(), hid.0, batch],
                            )
                            .map_err(db)?;
                        }
                        _ => {}
                    }
                }
                load_entry(tx, &batch, seq)
            })
            .await
    }

    async fn journal(&self, batch: &BatchId) -> StoreResult<Vec<JournalEntry>> {
        let batch = batch.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE batch_id = ?1 ORDER BY seq"
                    ),
                    [&batch],
                    entry_from_row,
                )
            })
            .await
    }

    async fn intent_attempts(
        &self,
        batch: &BatchId,
        base_key: &str,
    ) -> StoreResult<Vec<JournalEntry>> {
        let batch = batch.as_str().to_owned();
        let base = base_key.to_owned();
        self.conn()
            .call(move |c| {
                let rows = query_all(
                    c,
                    &format!("SELECT {JOURNAL_COLUMNS} FROM journal {INTENT_ATTEMPTS_WHERE}"),
                    params![batch, base],
                    entry_from_row,
                )?;
                Ok(rows
                    .into_iter()
                    .filter(|e| crm_domain::batch::is_attempt_of(&e.intent_key, &base))
                    .collect())
            })
            .await
    }

    async fn pending_intents(&self, batch: Option<BatchId>) -> StoreResult<Vec<JournalEntry>> {
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {JOURNAL_COLUMNS} FROM journal
                         WHERE state = 'pending' AND (?1 IS NULL OR batch_id = ?1)
                         ORDER BY batch_id, seq"
                    ),
                    [batch.as_ref().map(|b| b.as_str())],
                    entry_from_row,
                )
            })
            .await
    }

    async fn resources(&self, batch: &BatchId) -> StoreResult<Vec<ManagedResource>> {
        let batch = batch.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {RESOURCE_COLUMNS} FROM managed_resources r
                         WHERE r.batch_id = ?1 ORDER BY r.journal_seq, r.kind, r.host_object_id"
                    ),
                    [&batch],
                    resource_from_row,
                )
            })
            .await
    }

    async fn set_resource_state(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        state: ResourceState,
    ) -> StoreResult<()> {
        let batch = batch.as_str().to_owned();
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE managed_resources SET state = ?4, updated_at = ?5
                         WHERE batch_id = ?1 AND kind = ?2 AND host_object_id = ?3",
                        params![batch, kind.as_str(), id.0, state.as_str(), now],
                    )
                    .map_err(db)?;
                one_row(n, || format!("{kind} {id} of batch {batch}"))
            })
            .await
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
        let batch = batch.as_str().to_owned();
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE managed_resources SET spec_digest = ?4, desired = ?5, updated_at = ?6,
                             natural_key = COALESCE(?7, natural_key)
                         WHERE batch_id = ?1 AND kind = ?2 AND host_object_id = ?3",
                        params![
                            batch,
                            kind.as_str(),
                            id.0,
                            spec_digest,
                            to_json("desired spec", &desired)?,
                            now,
                            natural_key
                        ],
                    )
                    .map_err(db)?;
                one_row(n, || format!("{kind} {id} of batch {batch}"))
            })
            .await
    }

    async fn live_resources_on_host(&self, host: &HostId) -> StoreResult<Vec<ManagedResource>> {
        let host = host.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {RESOURCE_COLUMNS} FROM managed_resources r
                         JOIN batches b ON b.id = r.batch_id
                         WHERE b.host_id = ?1 AND r.state = 'live' AND b.status IN ({})
                         ORDER BY b.created_at, b.id, r.journal_seq, r.kind, r.host_object_id",
                        live_statuses_sql()
                    ),
                    [&host],
                    resource_from_row,
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::INTENT_ATTEMPTS_WHERE;

    #[test]
    fn intent_attempts_search_the_intent_key_index() {
        let conn = crate::conn::open_memory().unwrap();
        let mut st = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT * FROM journal {INTENT_ATTEMPTS_WHERE}"
            ))
            .unwrap();
        let plan: Vec<String> = st
            .query_map(["b-1", "b-1/create/account/x"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plan.iter().all(|l| !l.contains("SCAN journal")), "{plan:?}");
        assert_eq!(
            plan.iter()
                .filter(|l| l.contains("USING INDEX sqlite_autoindex_journal_1 (intent_key"))
                .count(),
            2,
            "{plan:?}"
        );
    }
}
