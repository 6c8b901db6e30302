//! The connection thread: one SQLite connection owned by one OS thread.
//!
//! Why a dedicated thread rather than deadpool-sqlite: SQLite has one writer
//! at a time anyway, so a pool buys no write throughput; a single owner
//! thread serializes this process's writes (no SQLITE_BUSY between our own
//! connections) and needs no extra crate. Async callers hand the thread a
//! closure and await a oneshot reply, so blocking rusqlite calls (including
//! the 5 s busy wait on another process's write lock) never run on a
//! runtime worker.
//!
//! Writes are group-committed. Every write is durable before its caller
//! hears back (`synchronous=FULL`: one fsync per commit), and an import runs
//! dozens of journal writes concurrently; committing each alone made the
//! fsyncs, not the host, the bottleneck. So the thread takes every write
//! already queued behind the one it is about to run (up to
//! [`MAX_GROUP`]), runs each inside its own savepoint of one `BEGIN
//! IMMEDIATE` transaction, commits once, and only then answers them. Each
//! write stays atomic and isolated as before: one that fails is rolled back
//! to its savepoint and answered with its error without touching the others;
//! if the commit itself fails, every write of the group gets that error and
//! none of them happened. Writes never wait for company: a write that finds
//! the queue empty commits alone at once.

use crate::error::{Error, Result};
use crm_domain::ports::{StoreError, StoreResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Answers one write of a group once the group's commit is known.
type Finish = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// One write: given the group's transaction (or the reason there is none),
/// runs inside its savepoint; returns how to answer after the commit, or
/// `None` when it already answered (it failed, or never ran).
type WriteJob = Box<dyn FnOnce(StoreResult<&Group<'_>>) -> Option<Finish> + Send>;

/// The transaction a group of writes shares.
struct Group<'c> {
    txn: Transaction<'c>,
    /// A failed write could not be rolled back to its savepoint: committing
    /// would keep part of it, so the whole group is rolled back instead.
    poisoned: std::cell::Cell<bool>,
}

enum Job {
    /// Anything that is not a plain write: reads, `VACUUM INTO`, ...
    Call(Box<dyn FnOnce(&mut Connection) + Send>),
    Write(WriteJob),
}

/// At most this many writes share one commit, so one group's transaction
/// (which holds SQLite's write lock) stays short for other processes.
pub(crate) const MAX_GROUP: usize = 128;

/// How long a connection waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A handle to the connection thread. The thread, and the connection with
/// it, ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct ConnThread {
    tx: mpsc::Sender<Job>,
    commits: Arc<AtomicU64>,
}

impl ConnThread {
    /// Starts the thread, which opens the connection with `open` and then
    /// serves calls. Returns once opening succeeded or failed.
    pub(crate) async fn start(
        open: impl FnOnce() -> Result<Connection> + Send + 'static,
    ) -> Result<ConnThread> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
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
                serve(&mut conn, &rx, &counter);
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
        Ok(ConnThread { tx, commits })
    }

    /// Runs `f` on the connection thread and awaits its result.
    pub(crate) async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job::Call(Box::new(move |conn| {
            // A panic must not take the thread (and every later call) down;
            // an open transaction rolls back as the panic unwinds past it.
            let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(panicked()));
            let _ = tx.send(out);
        }));
        self.send(job, rx).await
    }

    /// Runs `f` as one atomic write and answers once it is durably
    /// committed: inside its own savepoint of a `BEGIN IMMEDIATE`
    /// transaction that other queued writes may share (see the module doc).
    /// Immediate, because a deferred transaction that reads and then writes
    /// gets SQLITE_BUSY at once when another process holds the write lock,
    /// ignoring the busy timeout.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let job = Job::Write(Box::new(move |group| {
            let group = match group {
                Ok(g) => g,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return None;
                }
            };
            match in_savepoint(group, f) {
                Ok(value) => Some(Box::new(move |committed: StoreResult<()>| {
                    let _ = tx.send(committed.map(|()| value));
                }) as Finish),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    None
                }
            }
        }));
        self.send(job, rx).await
    }

    /// How many write transactions this thread has committed (a group of
    /// writes counts once).
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn send<T>(
        &self,
        job: Job,
        rx: tokio::sync::oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T> {
        self.tx.send(job).map_err(|_| StoreError::Backend {
            detail: "the storage thread has stopped".into(),
        })?;
        rx.await.map_err(|_| StoreError::Backend {
            detail: "the storage thread stopped before answering".into(),
        })?
    }
}

fn panicked() -> StoreError {
    StoreError::Backend {
        detail: "a storage call panicked; it was rolled back".into(),
    }
}

/// The thread's loop: calls one at a time, writes in groups.
fn serve(conn: &mut Connection, rx: &mpsc::Receiver<Job>, commits: &AtomicU64) {
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        match job {
            Job::Call(f) => f(conn),
            Job::Write(first) => {
                let mut group = vec![first];
                // Only writes already queued: never wait for more.
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Job::Write(w)) => group.push(w),
                        Ok(other) => {
                            // Runs after the group, keeping arrival order
                            // between a write and a later read.
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(conn, group, commits);
            }
        }
    }
}

fn commit_group(conn: &mut Connection, group: Vec<WriteJob>, commits: &AtomicU64) {
    let txn = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(t) => t,
        Err(e) => {
            let e = crate::sql::db(e);
            for w in group {
                w(Err(e.clone()));
            }
            return;
        }
    };
    let shared = Group {
        txn,
        poisoned: std::cell::Cell::new(false),
    };
    let finishes: Vec<Finish> = group.into_iter().filter_map(|w| w(Ok(&shared))).collect();
    let Group { txn, poisoned } = shared;
    let committed = if poisoned.get() {
        let _ = txn.rollback();
        Err(StoreError::Backend {
            detail: "a failed write could not be undone, so its whole commit group was rolled back; retry".into(),
        })
    } else if finishes.is_empty() {
        // Every write failed and rolled back to its savepoint: nothing to
        // make durable.
        txn.rollback().map_err(crate::sql::db)
    } else {
        let c = txn.commit().map_err(crate::sql::db);
        if c.is_ok() {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        c
    };
    for finish in finishes {
        finish(committed.clone());
    }
}

/// Runs `f` inside a savepoint of `txn`: released when `f` succeeds, rolled
/// back (and released) when it fails or panics, so a failed write leaves no
/// trace in the group it shares.
fn in_savepoint<T>(
    group: &Group<'_>,
    f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let txn = &group.txn;
    txn.execute_batch("SAVEPOINT crm_write")
        .map_err(crate::sql::db)?;
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(txn)))
        .unwrap_or_else(|_| Err(panicked()))
        .and_then(|v| {
            txn.execute_batch("RELEASE crm_write")
                .map(|()| v)
                .map_err(crate::sql::db)
        });
    if out.is_err()
        && txn
            .execute_batch("ROLLBACK TO crm_write; RELEASE crm_write")
            .is_err()
    {
        group.poisoned.set(true);
    }
    out
}

/// Creates a missing database file as 0600 before SQLite opens it: SQLite
/// gives the `-wal` and `-shm` files the database file's mode, so all three
/// stay private whatever the umask (they hold fingerprints and sealed keys).
fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            // A missing directory and the like: SQLite reports it better.
            Err(_) => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Opens a database file with crm's durability settings and migrates it.
pub(crate) fn open_file(path: &Path) -> Result<Connection> {
    let open_err = |detail: String| Error::Open {
        path: path.to_owned(),
        detail,
    };
    create_private(path).map_err(|e| open_err(format!("cannot create the file: {e}")))?;
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

    async fn table() -> ConnThread {
        let conn = ConnThread::start(|| Ok(Connection::open_in_memory().unwrap()))
            .await
            .unwrap();
        conn.call(|c| {
            c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                .map_err(crate::sql::db)
        })
        .await
        .unwrap();
        conn
    }

    /// Holds the connection thread until the returned sender is used, so the
    /// writes queued meanwhile are known to be waiting together.
    fn block(conn: &ConnThread) -> (std::sync::mpsc::Sender<()>, impl Future<Output = ()>) {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let c = conn.clone();
        let blocked = async move {
            c.call(move |_| {
                let _ = go_rx.recv();
                Ok(())
            })
            .await
            .unwrap()
        };
        (go_tx, blocked)
    }

    fn insert(conn: &ConnThread, k: i64) -> impl Future<Output = StoreResult<i64>> + use<> {
        let c = conn.clone();
        async move {
            c.write(move |t| {
                t.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])
                    .map_err(crate::sql::db)?;
                Ok(k)
            })
            .await
        }
    }

    async fn keys(conn: &ConnThread) -> Vec<i64> {
        conn.call(|c| {
            let mut st = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn queued_writes_share_one_commit_and_each_stays_atomic() {
        let conn = table().await;
        let (go, blocked) = block(&conn);
        let mut blocked = Box::pin(blocked);
        assert!(futures_poll_once(&mut blocked).await);
        let mut writes: Vec<_> = (1..=40).map(|k| Box::pin(insert(&conn, k))).collect();
        // A write that inserts, then fails: its insert must not survive.
        let c = conn.clone();
        let mut failing = Box::pin(async move {
            c.write(|t| {
                t.execute("INSERT INTO t (k, v) VALUES (1000, 'partial')", [])
                    .map_err(crate::sql::db)?;
                Err::<(), _>(StoreError::Corrupt {
                    detail: "refused".into(),
                })
            })
            .await
        });
        // One that violates the key, one that panics after inserting.
        let mut duplicate = Box::pin(insert(&conn, 7));
        let c = conn.clone();
        let mut panics = Box::pin(async move {
            c.write(|t| {
                t.execute("INSERT INTO t (k, v) VALUES (2000, 'partial')", [])
                    .map_err(crate::sql::db)?;
                panic!("boom")
            })
            .await as StoreResult<()>
        });
        for w in &mut writes {
            assert!(futures_poll_once(w).await);
        }
        assert!(futures_poll_once(&mut failing).await);
        assert!(futures_poll_once(&mut duplicate).await);
        assert!(futures_poll_once(&mut panics).await);
        let before = conn.commits();
        go.send(()).unwrap();
        blocked.await;
        for (k, w) in (1..=40).zip(writes) {
            assert_eq!(w.await.unwrap(), k);
        }
        assert!(matches!(failing.await, Err(StoreError::Corrupt { .. })));
        assert!(matches!(duplicate.await, Err(StoreError::Backend { .. })));
        assert!(
            matches!(panics.await, Err(StoreError::Backend { detail }) if detail.contains("panicked"))
        );
        assert_eq!(conn.commits() - before, 1, "43 queued writes, one commit");
        assert_eq!(keys(&conn).await, (1..=40).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_lone_write_commits_without_waiting_and_reads_keep_their_place() {
        let conn = table().await;
        let before = conn.commits();
        assert_eq!(insert(&conn, 1).await.unwrap(), 1);
        assert_eq!(conn.commits() - before, 1);
        // write, read, write queued together: the read sees the first write
        // only, so it ran between two commits.
        let (go, blocked) = block(&conn);
        let mut blocked = Box::pin(blocked);
        assert!(futures_poll_once(&mut blocked).await);
        let mut w2 = Box::pin(insert(&conn, 2));
        assert!(futures_poll_once(&mut w2).await);
        let c = conn.clone();
        let mut read = Box::pin(async move { keys(&c).await });
        assert!(futures_poll_once(&mut read).await);
        let mut w3 = Box::pin(insert(&conn, 3));
        assert!(futures_poll_once(&mut w3).await);
        go.send(()).unwrap();
        blocked.await;
        w2.await.unwrap();
        w3.await.unwrap();
        assert_eq!(read.await, vec![1, 2]);
        assert_eq!(conn.commits() - before, 3);
    }

    #[tokio::test]
    async fn a_group_whose_writes_all_fail_commits_nothing() {
        let conn = table().await;
        insert(&conn, 1).await.unwrap();
        let before = conn.commits();
        let (a, b) = tokio::join!(insert(&conn, 1), insert(&conn, 1));
        assert!(a.is_err() && b.is_err());
        assert_eq!(conn.commits(), before);
        assert_eq!(keys(&conn).await, vec![1]);
    }

    /// Polls `f` once; true if it is still pending (its job is queued).
    async fn futures_poll_once<F: Future + Unpin>(f: &mut F) -> bool {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx).is_pending())
        })
        .await
    }

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
        #[cfg(unix)]
        {
            // Private whatever the umask (it used to follow the umask).
            use std::os::unix::fs::PermissionsExt;
            conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
                .unwrap();
            for f in ["crm.db", "crm.db-wal"] {
                let mode = std::fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
        assert_eq!(pragma("synchronous"), "2", "2 is FULL");
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("busy_timeout"), "5000");
    }
}
