//! [`AccessCheckRepo`]: stored access checks with their redacted evidence.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::access::AccessCheck;
use crm_domain::ports::{AccessCheckRepo, StoreError, StoreResult};
use crm_domain::{AccessCheckId, BatchId};
use tokio_postgres::Row;

fn check_from_row(row: &Row) -> StoreResult<AccessCheck> {
    Ok(AccessCheck {
        id: AccessCheckId(get(row, "id")?),
        batch_id: BatchId(get(row, "batch_id")?),
        mode: get_word(row, "mode")?,
        checked_at: get_ts(row, "checked_at")?,
        verdict: get_word(row, "verdict")?,
        failure_class: get_opt_word(row, "failure_class")?,
        summary: get(row, "summary")?,
        steps: get_json(row, "steps")?,
    })
}

#[async_trait]
impl AccessCheckRepo for PostgresStore {
    async fn record_access_check(&self, check: AccessCheck) -> StoreResult<()> {
        let c = self.client().await?;
        let res = exec_raw(
            &c,
            "INSERT INTO access_checks (id, batch_id, mode, checked_at, verdict,
                failure_class, summary, steps)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &check.id.as_str(),
                &check.batch_id.as_str(),
                &check.mode.as_str(),
                &ts(&check.checked_at),
                &check.verdict.as_str(),
                &check.failure_class.map(|f| f.as_str()),
                &check.summary,
                &to_json("check steps", &check.steps)?,
            ],
        )
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: format!("access check {}", check.id),
            }),
            Err(e) if is_fk_violation(&e) => Err(not_found(format!("batch {}", check.batch_id))),
            Err(e) => Err(db(e)),
        }
    }

    /// Oldest first, so the last element is the latest verdict.
    async fn access_checks(&self, batch: &BatchId) -> StoreResult<Vec<AccessCheck>> {
        let c = self.client().await?;
        query_all(
            &c,
            "SELECT id, batch_id, mode, checked_at, verdict, failure_class, summary, steps
             FROM access_checks WHERE batch_id = $1 ORDER BY checked_at, id",
            &[&batch.as_str()],
            check_from_row,
        )
        .await
    }
}
