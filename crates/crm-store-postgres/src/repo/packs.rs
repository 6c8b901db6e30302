//! [`PackRepo`]: installed pack versions, one of them current per pack.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::PackId;
use crm_domain::ports::{PackRepo, StoreError, StoreResult};
use crm_domain::spec::InstalledPack;
use crm_store::columns::PACK_COLUMNS;
use tokio_postgres::Row;

fn pack_from_row(row: &Row) -> StoreResult<InstalledPack> {
    Ok(InstalledPack {
        manifest: get_json(row, "manifest")?,
        checksum: get(row, "checksum")?,
        installed_at: get_ts(row, "installed_at")?,
        origin: get(row, "origin")?,
        current: get(row, "current")?,
    })
}

#[async_trait]
impl PackRepo for PostgresStore {
    async fn install_pack(&self, pack: InstalledPack) -> StoreResult<InstalledPack> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let id = pack.manifest.pack_id.as_str().to_owned();
        let version = pack.manifest.version.clone();
        // Two processes installing versions of one pack would race on the
        // "one current version" index; a transaction-scoped advisory lock
        // on the pack id makes them take turns.
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            &[&id],
        )
        .await?;
        let existing = query_opt(
            &tx,
            &format!("SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = $1 AND version = $2"),
            &[&id, &version],
            pack_from_row,
        )
        .await?;
        if let Some(stored) = existing {
            if stored.checksum == pack.checksum {
                return Ok(stored);
            }
            return Err(StoreError::AlreadyExists {
                what: format!(
                    "pack {id} version {version} with a different checksum (stored {}, new {}); bump the pack version",
                    stored.checksum, pack.checksum
                ),
            });
        }
        exec(
            &tx,
            "UPDATE packs SET current = FALSE WHERE pack_id = $1",
            &[&id],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO packs (pack_id, version, checksum, manifest, origin, current, installed_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, $6)",
            &[
                &id,
                &version,
                &pack.checksum,
                &to_json("pack manifest", &pack.manifest)?,
                &pack.origin,
                &ts(&pack.installed_at),
            ],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(InstalledPack {
            current: true,
            ..pack
        })
    }

    async fn list_packs(&self) -> StoreResult<Vec<InstalledPack>> {
        let c = self.client().await?;
        query_all(
            &c,
            &format!("SELECT {PACK_COLUMNS} FROM packs ORDER BY pack_id, installed_at, version"),
            &[],
            pack_from_row,
        )
        .await
    }

    async fn get_pack(&self, id: &PackId, version: Option<String>) -> StoreResult<InstalledPack> {
        let id = id.as_str();
        let c = self.client().await?;
        let found = match &version {
            Some(v) => {
                query_opt(
                    &c,
                    &format!(
                        "SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = $1 AND version = $2"
                    ),
                    &[&id, v],
                    pack_from_row,
                )
                .await?
            }
            None => {
                query_opt(
                    &c,
                    &format!("SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = $1 AND current"),
                    &[&id],
                    pack_from_row,
                )
                .await?
            }
        };
        found.ok_or_else(|| match version {
            Some(v) => not_found(format!("pack {id} version {v}")),
            None => not_found(format!("pack {id}")),
        })
    }
}
