//! [`HostRepo`]: registered hosts and their probed capabilities.

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::HOST_COLUMNS;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::HostId;
use crm_domain::funds::HostThresholds;
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::ports::{HostRepo, StoreError, StoreResult};
use rusqlite::{Row, params};

fn host_from_row(row: &Row<'_>) -> StoreResult<HostRecord> {
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
impl HostRepo for SqliteStore {
    async fn add_host(&self, host: HostRecord) -> StoreResult<HostRecord> {
        self.conn()
            .write(move |tx| {
                let caps = host
                    .capabilities
                    .as_ref()
                    .map(|c| to_json("capabilities", c))
                    .transpose()?;
                let res = tx.execute(
                    "INSERT INTO hosts (id, name, base_url, admin_credential, capabilities,
                                        reconcile_every_secs, created_at, probed_at, host_version,
                                        funds_thresholds)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        host.id.as_str(),
                        host.name,
                        host.base_url,
                        to_json("admin credential reference", &host.admin_credential)?,
                        caps,
                        secs(host.reconcile_every_secs)?,
                        ts(&host.created_at),
                        host.capabilities.as_ref().map(|c| ts(&c.probed_at)),
                        host.capabilities.as_ref().and_then(|c| c.version.clone()),
                        thresholds_json(&host.funds_thresholds)?,
                    ],
                );
                match res {
                    Ok(_) => Ok(host),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists {
                        what: format!("a host with id {} or name {}", host.id, host.name),
                    }),
                    Err(e) => Err(db(e)),
                }
            })
            .await
    }

    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>> {
        self.conn()
            .call(|c| {
                query_all(
                    c,
                    &format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name"),
                    [],
                    host_from_row,
                )
            })
            .await
    }

    async fn get_host(&self, id_or_name: &str) -> StoreResult<HostRecord> {
        let key = id_or_name.to_owned();
        self.conn()
            .call(move |c| {
                // An id match wins over a name match, so a host named like
                // another host's id cannot shadow it.
                query_opt(
                    c,
                    &format!(
                        "SELECT {HOST_COLUMNS} FROM hosts WHERE id = ?1 OR name = ?1
                         ORDER BY (id = ?1) DESC LIMIT 1"
                    ),
                    [&key],
                    host_from_row,
                )?
                .ok_or_else(|| not_found(format!("host {key}")))
            })
            .await
    }

    async fn remove_host(&self, id: &HostId) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.conn()
            .write(move |tx| {
                let batches: i64 = tx
                    .query_row("SELECT count(*) FROM batches WHERE host_id = ?1", [&id], |r| {
                        r.get(0)
                    })
                    .map_err(db)?;
                if batches > 0 {
                    // The batches are the record of what crm did on the host;
                    // removing the host would orphan them.
                    return Err(StoreError::AlreadyExists {
                        what: format!(
                            "host {id} is referenced by {batches} import batch(es) and cannot be removed; that history"
                        ),
                    });
                }
                match tx.execute("DELETE FROM hosts WHERE id = ?1", [&id]).map_err(db)? {
                    0 => Err(not_found(format!("host {id}"))),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn save_capabilities(&self, id: &HostId, caps: Capabilities) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.conn()
            .write(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE hosts SET capabilities = ?2, probed_at = ?3, host_version = ?4
                         WHERE id = ?1",
                        params![
                            id,
                            to_json("capabilities", &caps)?,
                            ts(&caps.probed_at),
                            caps.version
                        ],
                    )
                    .map_err(db)?;
                if n == 0 {
                    return Err(not_found(format!("host {id}")));
                }
                Ok(())
            })
            .await
    }

    async fn set_reconcile_interval(
        &self,
        id: &HostId,
        every_secs: Option<u64>,
    ) -> StoreResult<()> {
        let every = secs(every_secs)?;
        self.set_host_column(
            id,
            "UPDATE hosts SET reconcile_every_secs = ?2 WHERE id = ?1",
            every.into(),
        )
        .await
    }

    async fn set_funds_thresholds(
        &self,
        id: &HostId,
        thresholds: HostThresholds,
    ) -> StoreResult<()> {
        let json = thresholds_json(&thresholds)?;
        self.set_host_column(
            id,
            "UPDATE hosts SET funds_thresholds = ?2 WHERE id = ?1",
            json.into(),
        )
        .await
    }
}

impl SqliteStore {
    /// One `UPDATE hosts SET <column> = ?2 WHERE id = ?1`; `NotFound` when
    /// no host has the id.
    async fn set_host_column(
        &self,
        id: &HostId,
        sql: &'static str,
        value: rusqlite::types::Value,
    ) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.conn()
            .write(move |tx| {
                let n = tx.execute(sql, params![id, value]).map_err(db)?;
                if n == 0 {
                    return Err(not_found(format!("host {id}")));
                }
                Ok(())
            })
            .await
    }
}

/// NULL when the host sets none.
fn thresholds_json(t: &HostThresholds) -> StoreResult<Option<String>> {
    (!t.is_empty())
        .then(|| to_json("funds thresholds", t))
        .transpose()
}
