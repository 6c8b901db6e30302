//! [`FundsRepo`]: funds and quota readings, one row per reading, never a key.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::funds::{FundsReading, FundsValue};
use crm_domain::ports::{FundsRepo, StoreError, StoreResult};
use crm_domain::{BatchId, HostId, HostObjectId, ProviderRef};
use tokio_postgres::Row;

fn reading_from_row(row: &Row) -> StoreResult<FundsReading> {
    let provider: String = get(row, "provider")?;
    let mut value: FundsValue = get_json(row, "value")?;
    value.kind = get_word(row, "kind")?;
    value.state = get_word(row, "state")?;
    Ok(FundsReading {
        host_id: HostId(get(row, "host_id")?),
        batch_id: get::<Option<String>>(row, "batch_id")?.map(BatchId),
        provider: ProviderRef::parse(&provider).map_err(|e| StoreError::Corrupt {
            detail: format!("column provider: {e}"),
        })?,
        account_id: HostObjectId(get(row, "account_id")?),
        account_name: get(row, "account_name")?,
        source: get_word(row, "source")?,
        taken_at: get_ts(row, "taken_at")?,
        value,
    })
}

#[async_trait]
impl FundsRepo for PostgresStore {
    /// All readings of one run in one transaction.
    async fn save_readings(&self, readings: Vec<FundsReading>) -> StoreResult<()> {
        if readings.is_empty() {
            return Ok(());
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        for r in &readings {
            let res = exec_raw(
                &tx,
                "INSERT INTO funds_readings (host_id, batch_id, provider, account_id,
                    account_name, source, kind, state, taken_at, value)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &r.host_id.as_str(),
                    &r.batch_id.as_ref().map(|b| b.as_str()),
                    &r.provider.to_string(),
                    &r.account_id.0,
                    &r.account_name,
                    &r.source.as_str(),
                    &r.value.kind.as_str(),
                    &r.value.state.as_str(),
                    &ts(&r.taken_at),
                    &to_json("funds reading", &r.value)?,
                ],
            )
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_fk_violation(&e) => {
                    return Err(not_found(format!("host {}", r.host_id)));
                }
                Err(e) => return Err(db(e)),
            }
        }
        tx.commit().await.map_err(db)
    }

    async fn latest_readings(&self, host: &HostId) -> StoreResult<Vec<FundsReading>> {
        let c = self.client().await?;
        query_all(
            &c,
            "SELECT DISTINCT ON (account_id, kind, source)
                    host_id, batch_id, provider, account_id, account_name,
                    source, kind, state, taken_at, value
             FROM funds_readings
             WHERE host_id = $1
             ORDER BY account_id, kind, source, taken_at DESC, id DESC",
            &[&host.as_str()],
            reading_from_row,
        )
        .await
        .map(|mut v: Vec<FundsReading>| {
            v.sort_by(|a, b| {
                (a.provider.to_string(), a.account_id, a.value.kind, a.source).cmp(&(
                    b.provider.to_string(),
                    b.account_id,
                    b.value.kind,
                    b.source,
                ))
            });
            v
        })
    }
}
