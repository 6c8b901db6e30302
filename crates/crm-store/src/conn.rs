//! The connection thread: one SQLite connection owned by one OS thread.
//!
//! Why a dedicated thread rather than deadpool-sqlite: SQLite has one writer
//! at a time anyway, and crm is a control plane with a few writes a second at
//! most, so a pool buys no throughput; a single owner thread serializes this
//! process's writes (no SQLITE_BUSY between our own connections) and needs no
//! extra crate (deadpool-sqlite is not in the offline registry here). Async
//! callers hand the thread a closure and await a oneshot reply, so blocking
//! rusqlite calls (including the 5 s busy wait on another process's write
//! lock) never run on a runtime worker.

use crate::error::{Error, Result};
use crm_domain::ports::{StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a connection waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A handle to the connection thread. The thread, and the connection with
/// it, ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct ConnThread {
    tx: mpsc::Sender<Job>,
}

impl ConnThread {
    /// Starts the thread, which opens the connection with `open` and then
    /// serves calls. Returns once opening succeeded or failed.
    pub(crate) async fn start(
        open: impl FnOnce() -> Result<Connection> + Send + 'static,
    ) -> Result<ConnThread> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        std::thread::Builder::new()
            .name("crm-store-sqlite".into())
            .spawn(move || {
                // refinery unwraps on a damaged history table; report that as
                // an open failure instead of a vanished thread.
                let opened =
                    std::panic::catch_unwind(AssertUnwindSafe(open)).unwrap_or_else(|_| {
                        Err(Error::Open {
                            path: PathBuf::new(),
                            detail: "opening panicked; the migration history table may be damaged"
                                .into(),
                        })
                    });
                let mut conn = match opened {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    job(&mut conn);
                }
                tracing::debug!("store connection closed");
            })
            .map_err(|e| Error::Open {
                path: PathBuf::new(),
                detail: format!("cannot start the storage thread: {e}"),
            })?;
        ready_rx.await.map_err(|_| Error::Open {
            path: PathBuf::new(),
            detail: "the storage thread stopped while opening".into(),
        })??;
        Ok(ConnThread { tx })
    }

    /// Runs `f` on the connection thread and awaits its result.
    pub(crate) async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // A panic must not take the thread (and every later call) down;
            // an open transaction rolls back as the panic unwinds past it.
            let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
                Err(StoreError::Backend {
                    detail: "a storage call panicked; it was rolled back".into(),
                })
            });
            let _ = tx.send(out);
        });
        self.tx.send(job).map_err(|_| StoreError::Backend {
            detail: "the storage thread has stopped".into(),
        })?;
        rx.await.map_err(|_| StoreError::Backend {
            detail: "the storage thread stopped before answering".into(),
        })?
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction and commits it if `f`
    /// succeeds. Immediate, because a deferred transaction that reads and then
    /// writes gets SQLITE_BUSY at once when another process holds the write
    /// lock, ignoring the busy timeout.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(crate::sql::db)?;
            let out = f(&tx)?;
            tx.commit().map_err(crate::sql::db)?;
            Ok(out)
        })
        .await
    }
}

/// Opens a database file with crm's durability settings and migrates it.
pub(crate) fn open_file(path: &Path) -> Result<Connection> {
    let open_err = |detail: String| Error::Open {
        path: path.to_owned(),
        detail,
    };
    let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_err(e.to_string()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| open_err(format!("cannot enable WAL: {e}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_err(format!(
            "the database stays in journal mode '{mode}', not WAL; keep it on a local disk (WAL does not work over network filesystems)"
        )));
    }
    apply_pragmas(&conn).map_err(|e| open_err(e.to_string()))?;
    let conn = migrate_locked(path, conn)?;
    Ok(conn)
}

/// Opens a private in-memory database (tests, throwaway runs).
pub(crate) fn open_memory() -> Result<Connection> {
    let path = PathBuf::from(":memory:");
    let mut conn = Connection::open_in_memory().map_err(|e| Error::Open {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    apply_pragmas(&conn).map_err(|e| Error::Open {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    crate::migrations::run(&mut conn, None).map_err(|detail| Error::Migrate { path, detail })?;
    Ok(conn)
}

fn apply_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    // FULL syncs the WAL on every commit: a journal intent reported as
    // committed survives a power cut, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Runs the migrations while holding an exclusive lock on a sibling lock
/// file, so a CLI and a server opening a new database at the same moment do
/// not both try to create the schema.
fn migrate_locked(path: &Path, mut conn: Connection) -> Result<Connection> {
    let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
    lock_name.push(".migrate-lock");
    let lock_path = path.with_file_name(lock_name);
    let lock_err = |detail: String| Error::Migrate {
        path: path.to_owned(),
        detail: format!("migration lock {}: {detail}", lock_path.display()),
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| lock_err(e.to_string()))?;
    lock.lock().map_err(|e| lock_err(e.to_string()))?;
    let res = crate::migrations::run(&mut conn, None);
    let _ = lock.unlock();
    res.map_err(|detail| Error::Migrate {
        path: path.to_owned(),
        detail,
    })?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_connections_use_the_durability_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_file(&dir.path().join("crm.db")).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "2 is FULL");
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("busy_timeout"), "5000");
    }
}
