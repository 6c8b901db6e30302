//! [`FundsRepo`]: funds and quota readings, one row per reading, never a key.

use crate::SqliteStore;
use crate::clock::ts;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::funds::{FundsReading, FundsValue};
use crm_domain::ports::{FundsRepo, StoreError, StoreResult};
use crm_domain::{BatchId, HostId, HostObjectId, ProviderRef};
use rusqlite::{Row, params};

fn reading_from_row(row: &Row<'_>) -> StoreResult<FundsReading> {
    let provider: String = get(row, "provider")?;
    let mut value: FundsValue = get_json(row, "value")?;
    // The columns are what queries filter on; they win over the JSON copy.
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
impl FundsRepo for SqliteStore {
    /// All readings of one run in one transaction.
    async fn save_readings(&self, readings: Vec<FundsReading>) -> StoreResult<()> {
        if readings.is_empty() {
            return Ok(());
        }
        self.conn()
            .write(move |tx| {
                for r in &readings {
                    let res = tx.execute(
                        "INSERT INTO funds_readings (host_id, batch_id, provider, account_id,
                            account_name, source, kind, state, taken_at, value)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            r.host_id.as_str(),
                            r.batch_id.as_ref().map(|b| b.as_str()),
                            r.provider.to_string(),
                            r.account_id.0,
                            r.account_name,
                            r.source.as_str(),
                            r.value.kind.as_str(),
                            r.value.state.as_str(),
                            ts(&r.taken_at),
                            to_json("funds reading", &r.value)?,
                        ],
                    );
                    match res {
                        Ok(_) => {}
                        Err(e) if is_fk_violation(&e) => {
                            return Err(not_found(format!("host {}", r.host_id)));
                        }
                        Err(e) => return Err(db(e)),
                    }
                }
                Ok(())
            })
            .await
    }

    async fn latest_readings(&self, host: &HostId) -> StoreResult<Vec<FundsReading>> {
        let host = host.as_str().to_owned();
        self.conn()
            .call(move |c| {
                query_all(
                    c,
                    "SELECT r.host_id, r.batch_id, r.provider, r.account_id, r.account_name,
                            r.source, r.kind, r.state, r.taken_at, r.value
                     FROM funds_readings r
                     WHERE r.host_id = ?1
                       AND r.id = (SELECT l.id FROM funds_readings l
                                   WHERE l.host_id = r.host_id AND l.account_id = r.account_id
                                     AND l.kind = r.kind AND l.source = r.source
                                   ORDER BY l.taken_at DESC, l.id DESC LIMIT 1)
                     ORDER BY r.provider, r.account_id, r.kind, r.source",
                    [host.as_str()],
                    reading_from_row,
                )
            })
            .await
    }
}
