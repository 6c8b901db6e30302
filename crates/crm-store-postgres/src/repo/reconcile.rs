//! [`ReconcileRepo`]: reconcile runs and their drift items (one row per item,
//! so drift can be queried by category or object).

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::ports::{ReconcileRepo, StoreError, StoreResult};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{BatchId, HostId, HostObjectId, ProviderRef, ReconcileRunId};
use crm_store::columns::RUN_COLUMNS;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

fn run_from_row(row: &Row) -> StoreResult<ReconcileRun> {
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
        repaired: get(row, "repaired")?,
        error: get(row, "error")?,
    })
}

fn item_from_row(row: &Row) -> StoreResult<DriftItem> {
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

/// Runs matching `filter_sql` (which binds $1), newest first, with items.
/// One REPEATABLE READ transaction, so a run and its items come from the
/// same snapshot even while another replica replaces the run.
async fn load_runs(
    store: &PostgresStore,
    filter_sql: &str,
    key: &str,
    limit_n: i64,
) -> StoreResult<Vec<ReconcileRun>> {
    let mut c = store.client().await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)?;
    let mut runs = query_all(
        &tx,
        &format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE {filter_sql}
             ORDER BY started_at DESC, id DESC LIMIT $2"
        ),
        &[&key, &limit_n],
        run_from_row,
    )
    .await?;
    for run in &mut runs {
        run.items = items(&tx, run.id.as_str()).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(runs)
}

async fn items<C: GenericClient>(c: &C, run: &str) -> StoreResult<Vec<DriftItem>> {
    query_all(
        c,
        "SELECT category, kind, name, host_object_id, batch_id, fields, detail, reason
         FROM drift_items WHERE run_id = $1 ORDER BY position",
        &[&run],
        item_from_row,
    )
    .await
}

#[async_trait]
impl ReconcileRepo for PostgresStore {
    /// Saves a run; saving the same run id again replaces it (a run may be
    /// saved when it starts and again when it ends).
    async fn save_run(&self, run: ReconcileRun) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Upsert rather than delete-then-insert: two saves of one run on two
        // connections then serialize on the row instead of one failing on
        // the primary key.
        exec(
            &tx,
            &format!(
                "INSERT INTO reconcile_runs ({RUN_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET host_id = excluded.host_id,
                    batch_id = excluded.batch_id, provider = excluded.provider,
                    status = excluded.status, started_at = excluded.started_at,
                    finished_at = excluded.finished_at, host_requests = excluded.host_requests,
                    repaired = excluded.repaired, error = excluded.error"
            ),
            &[
                &run.id.as_str(),
                &run.scope.host_id.as_str(),
                &run.scope.batch_id.as_ref().map(|b| b.as_str()),
                &run.scope.provider.as_ref().map(|p| p.to_string()),
                &run.status.as_str(),
                &ts(&run.started_at),
                &ts(&run.finished_at),
                &i64::from(run.host_requests),
                &run.repaired,
                &run.error,
            ],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM drift_items WHERE run_id = $1",
            &[&run.id.as_str()],
        )
        .await?;
        for (i, item) in run.items.iter().enumerate() {
            exec(
                &tx,
                "INSERT INTO drift_items (run_id, position, category, kind, name,
                    host_object_id, batch_id, fields, detail, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &run.id.as_str(),
                    &i64::try_from(i).unwrap_or(i64::MAX),
                    &item.category.as_str(),
                    &item.kind.as_str(),
                    &item.name,
                    &item.host_object_id.map(|h| h.0),
                    &item.batch_id.as_ref().map(|b| b.as_str()),
                    &to_json("drift fields", &item.fields)?,
                    &item.detail,
                    &item.reason.map(|r| r.as_str()),
                ],
            )
            .await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn get_run(&self, id: &ReconcileRunId) -> StoreResult<ReconcileRun> {
        load_runs(self, "id = $1", id.as_str(), 1)
            .await?
            .pop()
            .ok_or_else(|| not_found(format!("reconcile run {id}")))
    }

    async fn runs_for_host(&self, host: &HostId, limit_n: u32) -> StoreResult<Vec<ReconcileRun>> {
        load_runs(self, "host_id = $1", host.as_str(), i64::from(limit_n)).await
    }

    async fn runs_for_batch(
        &self,
        batch: &BatchId,
        limit_n: u32,
    ) -> StoreResult<Vec<ReconcileRun>> {
        load_runs(self, "batch_id = $1", batch.as_str(), i64::from(limit_n)).await
    }

    /// The newest run of any scope on the host.
    async fn latest_for_host(&self, host: &HostId) -> StoreResult<Option<ReconcileRun>> {
        Ok(load_runs(self, "host_id = $1", host.as_str(), 1)
            .await?
            .pop())
    }

    async fn latest_for_batch(&self, batch: &BatchId) -> StoreResult<Option<ReconcileRun>> {
        Ok(load_runs(self, "batch_id = $1", batch.as_str(), 1)
            .await?
            .pop())
    }
}
