//! Console sign-in sessions (`console_sessions`, migration V3): every
//! replica reads and ends the same rows.

use crate::PostgresStore;
use crate::sql::*;
use async_trait::async_trait;
use crm_domain::ops::ConsoleSession;
use crm_domain::ports::{SessionRepo, StoreResult};
use crm_store::columns::{SESSION_COLUMNS, session_from_columns};
use tokio_postgres::Row;

fn session_from_row(row: &Row) -> StoreResult<ConsoleSession> {
    session_from_columns(|c| get(row, c), |c| get_ts(row, c))
}

#[async_trait]
impl SessionRepo for PostgresStore {
    async fn create_session(&self, session: ConsoleSession) -> StoreResult<()> {
        let now = ts(&self.now());
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        exec(
            &tx,
            "DELETE FROM console_sessions WHERE expires_at <= $1",
            &[&now],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO console_sessions (id_digest, role, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &session.id_digest,
                &session.role.as_str(),
                &ts(&session.created_at),
                &ts(&session.expires_at),
            ],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn get_session(&self, id_digest: &str) -> StoreResult<Option<ConsoleSession>> {
        let now = ts(&self.now());
        let c = self.client().await?;
        query_opt(
            &c,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM console_sessions
                 WHERE id_digest = $1 AND expires_at > $2"
            ),
            &[&id_digest, &now],
            session_from_row,
        )
        .await
    }

    async fn delete_session(&self, id_digest: &str) -> StoreResult<()> {
        let c = self.client().await?;
        exec(
            &c,
            "DELETE FROM console_sessions WHERE id_digest = $1",
            &[&id_digest],
        )
        .await?;
        Ok(())
    }
}
