//! [`ReconcileRepo`]: reconcile runs and their drift items (one row per item,
//! so drift can be queried by category or object).

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::RUN_COLUMNS;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::ports::{ReconcileRepo, StoreError, StoreResult};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{BatchId, HostId, HostObjectId, ProviderRef, ReconcileRunId};
use rusqlite::{Connection, Row, params};

fn run_from_row(row: &Row<'_>) -> StoreResult<ReconcileRun> {
    let provider = get::<Option<String>>(row, "provider")?
        .map(|p| {
            ProviderRef::parse(&p).map_err(|e| StoreError::Corrupt {
                detail: format!("column provider: {e}"),
            })
        })
        .transpose()?;
    Ok(ReconcileRun {
        id: ReconcileRunId(get(row, "id")?),
        scope: ReconcileScope {
            host_id: HostId(get(row, "host_id")?),
            batch_id: get::<Option<String>>(row, "batch_id")?.map(BatchId),
            provider,
        },
        status: get_word(row, "status")?,
        started_at: get_ts(row, "started_at")?,
        finished_at: get_ts(row, "finished_at")?,
        host_requests: get_u32(row, "host_requests")?,
        items: Vec::new(),
        repaired: get::<i64>(row, "repaired")? == 1,
        error: get(row, "error")?,
    })
}

fn item_from_row(row: &Row<'_>) -> StoreResult<DriftItem> {
    Ok(DriftItem {
        category: get_word(row, "category")?,
        reason: get_opt_word(row, "reason")?,
        kind: get_word(row, "kind")?,
        name: get(row, "name")?,
        host_object_id: get::<Option<i64>>(row, "host_object_id")?.map(HostObjectId),
        batch_id: get::<Option<String>>(row, "batch_id")?.map(BatchId),
        fields: get_json(row, "fields")?,
        detail: get(row, "detail")?,
    })
}

/// Runs matching `filter_sql` (which binds ?1), newest first, with items.
fn load_runs(
    c: &Connection,
    filter_sql: &str,
    key: &str,
    limit_n: i64,
) -> StoreResult<Vec<ReconcileRun>> {
    let mut runs = query_all(
        c,
        &format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE {filter_sql}
             ORDER BY started_at DESC, id DESC LIMIT ?2"
        ),
        params![key, limit_n],
        run_from_row,
    )?;
    for run in &mut runs {
        run.items = query_all(
            c,
            "SELECT category, kind, name, host_object_id, batch_id, fields, detail, reason
             FROM drift_items WHERE run_id = ?1 ORDER BY position",
            [run.id.as_str()],
            item_from_row,
        )?;
    }
    Ok(runs)
}

#[async_trait]
impl ReconcileRepo for SqliteStore {
    /// Saves a run; saving the same run id again replaces it (a run may be
    /// saved when it starts and again when it ends).
    async fn save_run(&self, run: ReconcileRun) -> StoreResult<()> {
        self.conn()
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM reconcile_runs WHERE id = ?1",
                    [run.id.as_str()],
                )
                .map_err(db)?;
                tx.execute(
                    &format!(
                        "INSERT INTO reconcile_runs ({RUN_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        run.id.as_str(),
                        run.scope.host_id.as_str(),
                        run.scope.batch_id.as_ref().map(|b| b.as_str()),
                        run.scope.provider.as_ref().map(|p| p.to_string()),
                        run.status.as_str(),
                        ts(&run.started_at),
                        ts(&run.finished_at),
                        run.host_requests,
                        i64::from(run.repaired),
                        run.error,
                    ],
                )
                .map_err(db)?;
                for (i, item) in run.items.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO drift_items (run_id, position, category, kind, name,
                            host_object_id, batch_id, fields, detail, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            run.id.as_str(),
                            i64::try_from(i).unwrap_or(i64::MAX),
                            item.category.as_str(),
                            item.kind.as_str(),
                            item.name,
                            item.host_object_id.map(|h| h.0),
                            item.batch_id.as_ref().map(|b| b.as_str()),
                            to_json("drift fields", &item.fields)?,
                            item.detail,
                            item.reason.map(|r| r.as_str()),
                        ],
                    )
                    .map_err(db)?;
                }
                Ok(())
            })
            .await
    }

    async fn get_run(&self, id: &ReconcileRunId) -> StoreResult<ReconcileRun> {
        let id = id.as_str().to_owned();
        self.conn()
            .call(move |c| {
                load_runs(c, "id = ?1", &id, 1)?
                    .pop()
                    .ok_or_else(|| not_found(format!("reconcile run {id}")))
            })
            .await
    }

    async fn runs_for_host(&self, host: &HostId, limit_n: u32) -> StoreResult<Vec<ReconcileRun>> {
        let host = host.as_str().to_owned();
        self.conn()
            .call(move |c| load_runs(c, "host_id = ?1", &host, i64::from(limit_n)))
            .await
    }

    async fn runs_for_batch(
        &self,
        batch: &BatchId,
        limit_n: u32,
    ) -> StoreResult<Vec<ReconcileRun>> {
        let batch = batch.as_str().to_owned();
        self.conn()
            .call(move |c| load_runs(c, "batch_id = ?1", &batch, i64::from(limit_n)))
            .await
    }

    /// The newest run of any scope on the host.
    async fn latest_for_host(&self, host: &HostId) -> StoreResult<Option<ReconcileRun>> {
        let host = host.as_str().to_owned();
        self.conn()
            .call(move |c| Ok(load_runs(c, "host_id = ?1", &host, 1)?.pop()))
            .await
    }

    async fn latest_for_batch(&self, batch: &BatchId) -> StoreResult<Option<ReconcileRun>> {
        let batch = batch.as_str().to_owned();
        self.conn()
            .call(move |c| Ok(load_runs(c, "batch_id = ?1", &batch, 1)?.pop()))
            .await
    }
}
