//! [`HostRepo`]: registered hosts and their probed capabilities.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::HostId;
use crm_domain::funds::HostThresholds;
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::ports::{HostRepo, StoreError, StoreResult};
use crm_store::columns::HOST_COLUMNS;
use tokio_postgres::Row;

fn host_from_row(row: &Row) -> StoreResult<HostRecord> {
    Ok(HostRecord {
        id: HostId(get(row, "id")?),
        name: get(row, "name")?,
        base_url: get(row, "base_url")?,
        admin_credential: get_json(row, "admin_credential")?,
        capabilities: get_opt_json(row, "capabilities")?,
        reconcile_every_secs: get::<Option<i64>>(row, "reconcile_every_secs")?
            .map(|v| {
                u64::try_from(v).map_err(|_| StoreError::Corrupt {
                    detail: format!("column reconcile_every_secs holds {v}"),
                })
            })
            .transpose()?,
        funds_thresholds: get_opt_json::<HostThresholds>(row, "funds_thresholds")?
            .unwrap_or_default(),
        created_at: get_ts(row, "created_at")?,
    })
}

fn secs(v: Option<u64>) -> StoreResult<Option<i64>> {
    v.map(|s| {
        i64::try_from(s).map_err(|_| StoreError::Backend {
            detail: format!("reconcile interval {s}s is too large"),
        })
    })
    .transpose()
}

#[async_trait]
impl HostRepo for PostgresStore {
    async fn add_host(&self, host: HostRecord) -> StoreResult<HostRecord> {
        let c = self.client().await?;
        let caps = host
            .capabilities
            .as_ref()
            .map(|c| to_json("capabilities", c))
            .transpose()?;
        let res = exec_raw(
            &c,
            "INSERT INTO hosts (id, name, base_url, admin_credential, capabilities,
                                reconcile_every_secs, created_at, probed_at, host_version,
                                funds_thresholds)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &host.id.as_str(),
                &host.name,
                &host.base_url,
                &to_json("admin credential reference", &host.admin_credential)?,
                &caps,
                &secs(host.reconcile_every_secs)?,
                &ts(&host.created_at),
                &host.capabilities.as_ref().map(|c| ts(&c.probed_at)),
                &host.capabilities.as_ref().and_then(|c| c.version.clone()),
                &thresholds_json(&host.funds_thresholds)?,
            ],
        )
        .await;
        match res {
            Ok(_) => Ok(host),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                what: format!("a host with id {} or name {}", host.id, host.name),
            }),
            Err(e) => Err(db(e)),
        }
    }

    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name"),
            &[],
            host_from_row,
        )
        .await
    }

    async fn get_host(&self, id_or_name: &str) -> StoreResult<HostRecord> {
        let c = self.client().await?;
        // An id match wins over a name match, so a host named like another
        // host's id cannot shadow it.
        query_opt(
            &c,
            &format!(
                "SELECT {HOST_COLUMNS} FROM hosts WHERE id = $1 OR name = $1
                 ORDER BY (id = $1) DESC LIMIT 1"
            ),
            &[&id_or_name],
            host_from_row,
        )
        .await?
        .ok_or_else(|| not_found(format!("host {id_or_name}")))
    }

    async fn remove_host(&self, id: &HostId) -> StoreResult<()> {
        let id = id.as_str();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Locks the host row: a batch created meanwhile on another
        // replica waits for this (its foreign key check needs the row).
        let exists = query_opt(
            &tx,
            "SELECT id FROM hosts WHERE id = $1 FOR UPDATE",
            &[&id],
            |_| Ok(()),
        )
        .await?;
        if exists.is_none() {
            return Err(not_found(format!("host {id}")));
        }
        let batches: i64 = query_opt(
            &tx,
            "SELECT count(*) AS n FROM batches WHERE host_id = $1",
            &[&id],
            |r| get(r, "n"),
        )
        .await?
        .unwrap_or(0);
        if batches > 0 {
            // The batches are the record of what crm did on the host;
            // removing the host would orphan them.
            return Err(StoreError::AlreadyExists {
                what: format!(
                    "host {id} is referenced by {batches} import batch(es) and cannot be removed; that history"
                ),
            });
        }
        exec(&tx, "DELETE FROM hosts WHERE id = $1", &[&id]).await?;
        tx.commit().await.map_err(db)
    }

    async fn save_capabilities(&self, id: &HostId, caps: Capabilities) -> StoreResult<()> {
        let id = id.as_str();
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE hosts SET capabilities = $2, probed_at = $3, host_version = $4 WHERE id = $1",
            &[
                &id,
                &to_json("capabilities", &caps)?,
                &ts(&caps.probed_at),
                &caps.version,
            ],
        )
        .await?;
        one_row(n, || format!("host {id}"))
    }

    async fn set_reconcile_interval(
        &self,
        id: &HostId,
        every_secs: Option<u64>,
    ) -> StoreResult<()> {
        let id = id.as_str();
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE hosts SET reconcile_every_secs = $2 WHERE id = $1",
            &[&id, &secs(every_secs)?],
        )
        .await?;
        one_row(n, || format!("host {id}"))
    }

    async fn set_funds_thresholds(
        &self,
        id: &HostId,
        thresholds: HostThresholds,
    ) -> StoreResult<()> {
        let id = id.as_str();
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE hosts SET funds_thresholds = $2 WHERE id = $1",
            &[&id, &thresholds_json(&thresholds)?],
        )
        .await?;
        one_row(n, || format!("host {id}"))
    }
}

/// NULL when the host sets none.
fn thresholds_json(t: &HostThresholds) -> StoreResult<Option<String>> {
    (!t.is_empty())
        .then(|| to_json("funds thresholds", t))
        .transpose()
}
