//! Console sign-in sessions (`console_sessions`, migration V5).

use crate::SqliteStore;
use crate::clock::ts;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::ops::{ConsoleSession, SessionRole};
use crm_domain::ports::{SessionRepo, StoreError, StoreResult};
use rusqlite::{Row, params};

fn session_from_row(row: &Row<'_>) -> StoreResult<ConsoleSession> {
    let role: String = get(row, "role")?;
    Ok(ConsoleSession {
        id_digest: get(row, "id_digest")?,
        role: SessionRole::from_word(&role).ok_or_else(|| StoreError::Corrupt {
            detail: format!("column role holds {role:?}"),
        })?,
        created_at: get_ts(row, "created_at")?,
        expires_at: get_ts(row, "expires_at")?,
    })
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
                    "SELECT id_digest, role, created_at, expires_at FROM console_sessions
                     WHERE id_digest = ?1 AND expires_at > ?2",
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
