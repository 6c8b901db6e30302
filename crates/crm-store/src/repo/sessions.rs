//! Console sign-in sessions (`console_sessions`, migration V5).

use crate::SqliteStore;
use crate::clock::ts;
use crate::columns::{SESSION_COLUMNS, session_from_columns};
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::ops::ConsoleSession;
use crm_domain::ports::{SessionRepo, StoreResult};
use rusqlite::{Row, params};

fn session_from_row(row: &Row<'_>) -> StoreResult<ConsoleSession> {
    session_from_columns(|c| get(row, c), |c| get_ts(row, c))
}

#[async_trait]
impl SessionRepo for SqliteStore {
    async fn create_session(&self, session: ConsoleSession) -> StoreResult<()> {
        let now = ts(&self.now());
        self.conn()
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM console_sessions WHERE expires_at <= ?1",
                    [&now],
                )
                .map_err(db)?;
                tx.execute(
                    "INSERT INTO console_sessions (id_digest, role, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        session.id_digest,
                        session.role.as_str(),
                        ts(&session.created_at),
                        ts(&session.expires_at),
                    ],
                )
                .map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn get_session(&self, id_digest: &str) -> StoreResult<Option<ConsoleSession>> {
        let id = id_digest.to_owned();
        let now = ts(&self.now());
        self.conn()
            .call(move |c| {
                query_opt(
                    c,
                    &format!(
                        "SELECT {SESSION_COLUMNS} FROM console_sessions
                         WHERE id_digest = ?1 AND expires_at > ?2"
                    ),
                    params![id, now],
                    session_from_row,
                )
            })
            .await
    }

    async fn delete_session(&self, id_digest: &str) -> StoreResult<()> {
        let id = id_digest.to_owned();
        self.conn()
            .write(move |tx| {
                tx.execute("DELETE FROM console_sessions WHERE id_digest = ?1", [id])
                    .map_err(db)?;
                Ok(())
            })
            .await
    }
}
