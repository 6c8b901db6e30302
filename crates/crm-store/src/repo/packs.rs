//! [`PackRepo`]: installed pack versions, one of them current per pack.

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::PACK_COLUMNS;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::PackId;
use crm_domain::ports::{PackRepo, StoreError, StoreResult};
use crm_domain::spec::InstalledPack;
use rusqlite::{Row, params};

fn pack_from_row(row: &Row<'_>) -> StoreResult<InstalledPack> {
    Ok(InstalledPack {
        manifest: get_json(row, "manifest")?,
        checksum: get(row, "checksum")?,
        installed_at: get_ts(row, "installed_at")?,
        origin: get(row, "origin")?,
        current: get::<i64>(row, "current")? == 1,
    })
}

#[async_trait]
impl PackRepo for SqliteStore {
    async fn install_pack(&self, pack: InstalledPack) -> StoreResult<InstalledPack> {
        self.conn()
            .write(move |tx| {
                let id = pack.manifest.pack_id.as_str().to_owned();
                let version = pack.manifest.version.clone();
                let existing = query_opt(
                    tx,
                    &format!("SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = ?1 AND version = ?2"),
                    params![id, version],
                    pack_from_row,
                )?;
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
                tx.execute("UPDATE packs SET current = 0 WHERE pack_id = ?1", [&id])
                    .map_err(db)?;
                tx.execute(
                    "INSERT INTO packs (pack_id, version, checksum, manifest, origin, current, installed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                    params![
                        id,
                        version,
                        pack.checksum,
                        to_json("pack manifest", &pack.manifest)?,
                        pack.origin,
                        ts(&pack.installed_at),
                    ],
                )
                .map_err(db)?;
                Ok(InstalledPack {
                    current: true,
                    ..pack
                })
            })
            .await
    }

    async fn list_packs(&self) -> StoreResult<Vec<InstalledPack>> {
        self.conn()
            .call(|c| {
                query_all(
                    c,
                    &format!(
                        "SELECT {PACK_COLUMNS} FROM packs ORDER BY pack_id, installed_at, version"
                    ),
                    [],
                    pack_from_row,
                )
            })
            .await
    }

    async fn get_pack(&self, id: &PackId, version: Option<String>) -> StoreResult<InstalledPack> {
        let id = id.as_str().to_owned();
        self.conn()
            .call(move |c| {
                let found = match &version {
                    Some(v) => query_opt(
                        c,
                        &format!(
                            "SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = ?1 AND version = ?2"
                        ),
                        params![id, v],
                        pack_from_row,
                    )?,
                    None => query_opt(
                        c,
                        &format!(
                            "SELECT {PACK_COLUMNS} FROM packs WHERE pack_id = ?1 AND current = 1"
                        ),
                        params![id],
                        pack_from_row,
                    )?,
                };
                found.ok_or_else(|| match version {
                    Some(v) => not_found(format!("pack {id} version {v}")),
                    None => not_found(format!("pack {id}")),
                })
            })
            .await
    }
}
