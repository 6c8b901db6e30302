//! [`SqliteStore`]: opening a database, its keys and its options.

use crate::clock::SystemClock;
use crate::conn::{self, ConnThread};
use crate::error::{Error, Result};
use crate::keys::{
    self, KeyBytes, PEPPER_FILE_ENV, SEAL_KEY_ENV, SEAL_KEY_FILE_ENV, SealKeySource, Sealer,
};
use crm_domain::KeyFingerprinter;
use crm_domain::SecretString;
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::ports::{Clock, SecretSealer, StoreError, StoreResult};
use rusqlite::OptionalExtension as _;
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to open a store. The defaults read nothing from the environment;
/// binaries call [`StoreOptions::from_env`] to honour `CRM_PEPPER_FILE`,
/// `CRM_SEAL_KEY` and `CRM_SEAL_KEY_FILE`.
pub struct StoreOptions {
    /// "Now" for leases, audit events and journal times.
    pub clock: Arc<dyn Clock>,
    /// Where the fingerprint pepper lives (default `<db>.keys/pepper`).
    pub pepper_file: Option<PathBuf>,
    /// Where the seal key comes from (default the file `<db>.keys/seal.key`).
    pub seal_key: Option<SealKeySource>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: Arc::new(SystemClock),
            pepper_file: None,
            seal_key: None,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("pepper_file", &self.pepper_file)
            .field("seal_key", &self.seal_key)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// Defaults overridden by the environment: `CRM_PEPPER_FILE` (path),
    /// `CRM_SEAL_KEY` (the key, hex or base64) or else `CRM_SEAL_KEY_FILE` (path).
    pub fn from_env() -> Result<Self> {
        let mut o = StoreOptions::default();
        if let Some(p) = std::env::var_os(PEPPER_FILE_ENV).filter(|v| !v.is_empty()) {
            o.pepper_file = Some(PathBuf::from(p));
        }
        if let Ok(k) = std::env::var(SEAL_KEY_ENV)
            && !k.is_empty()
        {
            let key = keys::parse_key_text(&k).ok_or(Error::BadKeyEnv { var: SEAL_KEY_ENV })?;
            o.seal_key = Some(SealKeySource::Key(key));
        } else if let Some(p) = std::env::var_os(SEAL_KEY_FILE_ENV).filter(|v| !v.is_empty()) {
            o.seal_key = Some(SealKeySource::File(PathBuf::from(p)));
        }
        Ok(o)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_pepper_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pepper_file = Some(path.into());
        self
    }

    pub fn with_seal_key(mut self, source: SealKeySource) -> Self {
        self.seal_key = Some(source);
        self
    }
}

/// crm's durable state in one SQLite file, behind the storage ports of
/// `crm-domain` (it implements [`crm_domain::ports::Storage`] and
/// [`SecretSealer`]). Cheap to clone; all clones share one connection thread.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnThread,
    clock: Arc<dyn Clock>,
    pepper: KeyBytes,
    sealer: Arc<Sealer>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("sealer", &self.inner.sealer)
            .finish_non_exhaustive()
    }
}

/// The default directory for a database's keys: `<db path>.keys`.
pub fn default_keys_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".keys");
    PathBuf::from(name)
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`, and
    /// loads (creating on first open) the fingerprint pepper.
    pub async fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_owned();
        let keys_dir = default_keys_dir(&path);
        let pepper_path = options
            .pepper_file
            .clone()
            .unwrap_or_else(|| keys_dir.join("pepper"));
        let pepper = tokio::task::spawn_blocking(move || keys::load_or_create_key(&pepper_path))
            .await
            .map_err(|e| Error::Open {
                path: path.clone(),
                detail: format!("key loading stopped: {e}"),
            })??;
        let seal = options
            .seal_key
            .unwrap_or_else(|| SealKeySource::File(keys_dir.join("seal.key")));
        let p = path.clone();
        let conn = ConnThread::start(move || conn::open_file(&p))
            .await
            .map_err(|e| with_path(e, &path))?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                conn,
                clock: options.clock,
                pepper,
                sealer: Arc::new(Sealer::new(seal)),
                path: Some(path.clone()),
            }),
        };
        let resealed = store.reseal_v1_values().await;
        store
            .check_seal_key(resealed.as_ref())
            .await
            .map_err(|detail| Error::SealKeyMismatch {
                keys: keys_dir.join("seal.key"),
                path,
                detail,
            })?;
        Ok(store)
    }

    /// A private in-memory database. The pepper and seal key are random
    /// unless the options name them, so nothing survives the store.
    pub async fn open_in_memory(options: StoreOptions) -> Result<SqliteStore> {
        let pepper = match &options.pepper_file {
            Some(p) => keys::load_or_create_key(p)?,
            None => keys::random_key(),
        };
        let seal = options
            .seal_key
            .unwrap_or_else(|| SealKeySource::Key(keys::random_key()));
        let conn = ConnThread::start(conn::open_memory).await?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                conn,
                clock: options.clock,
                pepper,
                sealer: Arc::new(Sealer::new(seal)),
                path: None,
            }),
        };
        let resealed = store.reseal_v1_values().await;
        store
            .check_seal_key(resealed.as_ref())
            .await
            .map_err(|detail| Error::SealKeyMismatch {
                path: PathBuf::from(":memory:"),
                keys: PathBuf::from("(none: in memory)"),
                detail,
            })?;
        Ok(store)
    }

    /// The re-seal step after the SQL migrations (`crm_store::reseal`). It
    /// never stops the store from opening: a value it cannot open is left
    /// as it is (warned about by table, row and field) and fails at use;
    /// a pass that fails as a whole writes nothing. Either way the next
    /// open tries again (the seal key may be corrected by then).
    async fn reseal_v1_values(&self) -> Option<crate::reseal::Resealed> {
        let now = self.now();
        let outcome =
            crate::reseal::run_sqlite(&self.inner.conn, self.inner.sealer.clone(), now).await;
        crate::reseal::report(
            outcome,
            &format!("{SEAL_KEY_ENV}, {SEAL_KEY_FILE_ENV} or <db>.keys/seal.key"),
        )
    }

    /// The seal key check ([`crate::seal_check`]): records the check value
    /// on the first open, and on every later one answers `Err` (why, never
    /// a key) when this process's seal key does not open it.
    async fn check_seal_key(
        &self,
        resealed: Option<&crate::reseal::Resealed>,
    ) -> std::result::Result<(), String> {
        use crate::seal_check;
        let may_record = seal_check::may_record(resealed);
        let sealer = self.inner.sealer.clone();
        let stored = self
            .inner
            .conn
            .write(move |txn| {
                let db = crate::sql::db;
                let read = |txn: &rusqlite::Transaction<'_>| {
                    txn.query_row(
                        "SELECT value FROM installation WHERE name = ?1",
                        [seal_check::NAME],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(db)
                };
                if let Some(v) = read(txn)? {
                    return Ok(Some(v));
                }
                if !may_record {
                    return Ok(None);
                }
                let value = seal_check::value(&sealer)?;
                txn.execute(
                    "INSERT OR IGNORE INTO installation (name, value) VALUES (?1, ?2)",
                    rusqlite::params![seal_check::NAME, value],
                )
                .map_err(db)?;
                read(txn)
            })
            .await
            .map_err(|e| e.to_string())?;
        match stored {
            Some(v) => seal_check::verify(&self.inner.sealer, &v),
            None => {
                seal_check::warn_not_recorded();
                Ok(())
            }
        }
    }

    /// The database file, if not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Fingerprints secrets under this installation's pepper.
    pub fn fingerprinter(&self) -> KeyFingerprinter {
        KeyFingerprinter::new(self.inner.pepper.expose_secret().to_vec())
    }

    /// The sealer for secrets kept at rest (host admin keys).
    pub fn sealer(&self) -> Arc<Sealer> {
        self.inner.sealer.clone()
    }

    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`),
    /// safe while other connections write. Copying the files is not: the
    /// `-wal` file holds committed transactions the main file lacks.
    pub async fn backup_to(&self, dest: impl AsRef<Path>) -> StoreResult<()> {
        let dest =
            dest.as_ref()
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| StoreError::Backend {
                    detail: "backup path is not valid UTF-8".into(),
                })?;
        self.inner
            .conn
            .call(move |c| {
                c.execute("VACUUM INTO ?1", [dest])
                    .map(|_| ())
                    .map_err(crate::sql::db)
            })
            .await
    }

    /// Durable write transactions committed through this store since it
    /// was opened. Concurrent writes share commits (group commit), so this
    /// is at most the number of writes; benchmarks report it.
    pub fn commit_count(&self) -> u64 {
        self.inner.conn.commits()
    }

    pub(crate) fn conn(&self) -> &ConnThread {
        &self.inner.conn
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

fn with_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Open { path: p, detail } if p.as_os_str().is_empty() => Error::Open {
            path: path.to_owned(),
            detail,
        },
        other => other,
    }
}

impl SecretSealer for SqliteStore {
    fn seal(&self, ctx: &SealContext, secret: &SecretString) -> Result<SealedSecret, StoreError> {
        self.inner.sealer.seal(ctx, secret)
    }

    fn open(&self, ctx: &SealContext, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        self.inner.sealer.open(ctx, sealed)
    }
}
