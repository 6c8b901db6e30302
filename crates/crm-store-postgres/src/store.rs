//! [`PostgresStore`]: where the database is, how to reach it, its keys.

use crate::error::{Error, Result};
use crate::sql::{db, pool_err};
use crm_domain::KeyFingerprinter;
use crm_domain::SecretString;
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::ports::{Clock, SecretSealer, StoreError, StoreResult};
use crm_store::{KeyBytes, PEPPER_FILE_ENV, SEAL_KEY_ENV, SEAL_KEY_FILE_ENV, Sealer, StoreOptions};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// Environment variable naming a file that holds the database password.
pub const PASSWORD_FILE_ENV: &str = "CRM_DB_PASSWORD_FILE";

/// Connections in one process's pool. An import runs dozens of journal
/// writes at once and each holds a connection only for its transaction; a
/// handful of replicas times this stays far below PostgreSQL's default
/// `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A PostgreSQL database to open: the parsed URL with its password
/// resolved, and a form of it safe to print.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    redacted: String,
    pool_size: usize,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl PgTarget {
    /// Parses `postgres://user[:${VAR}]@host[:port]/dbname[?options]`, taking
    /// the password from `CRM_DB_PASSWORD_FILE` when it is set.
    pub fn from_env(url: &str) -> Result<PgTarget> {
        let file = std::env::var_os(PASSWORD_FILE_ENV).filter(|v| !v.is_empty());
        Self::parse(url, file.as_deref().map(Path::new))
    }

    /// Parses a URL. The password is never taken literally from the URL (it
    /// would sit in shell history, process lists and config files): it comes
    /// from `password_file`, or from the environment variable the URL names
    /// in its place (`postgres://crm:${CRM_PG_PASSWORD}@db/crm`), or there is
    /// none (trust, peer or `.pgpass`-less setups such as a loopback test
    /// cluster).
    pub fn parse(url: &str, password_file: Option<&Path>) -> Result<PgTarget> {
        if !is_postgres_url(url) {
            return Err(Error::BadUrl {
                detail: "it does not start with postgres:// or postgresql://".into(),
            });
        }
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| Error::BadUrl {
            detail: e.to_string(),
        })?;
        let in_url = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let password = match (in_url, password_file) {
            (Some(p), file) => match env_reference(&p) {
                Some(var) if file.is_none() => Some(
                    std::env::var(var)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| Error::Password {
                            detail: format!(
                                "the database URL takes its password from ${{{var}}}, which is not set"
                            ),
                        })?,
                ),
                Some(_) => {
                    return Err(Error::Password {
                        detail: format!(
                            "both {PASSWORD_FILE_ENV} and a password reference in the URL are given; keep one"
                        ),
                    });
                }
                None => {
                    return Err(Error::Password {
                        detail: format!(
                            "the database URL holds a password in clear; put it in a file named by {PASSWORD_FILE_ENV}, or write ${{VAR}} in its place and set VAR"
                        ),
                    });
                }
            },
            (None, Some(file)) => Some(read_password_file(file)?),
            (None, None) => None,
        };
        if let Some(p) = password {
            config.password(p);
        }
        if config.get_connect_timeout().is_none() {
            // An unreachable database must fail opening, not hang it.
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("crm");
        let redacted = redact(&config);
        Ok(PgTarget {
            config,
            redacted,
            pool_size: DEFAULT_POOL_SIZE,
        })
    }

    /// Every connection uses `schema` (which must exist) as its search path:
    /// tests give each store a private, empty schema of one database.
    pub fn with_schema(mut self, schema: &str) -> PgTarget {
        self.config.options(format!("-c search_path={schema}"));
        self.redacted = format!("{} (schema {schema})", self.redacted);
        self
    }

    pub fn with_pool_size(mut self, n: usize) -> PgTarget {
        self.pool_size = n.max(1);
        self
    }

    /// Creates `schema` if it does not exist (tests and separate installs
    /// sharing one database).
    pub async fn create_schema(&self, schema: &str) -> Result<()> {
        check_schema_name(schema)?;
        self.outside_schema(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
    }

    /// Drops `schema` and everything in it, if it exists (crm-bench's
    /// throwaway schemas, once measured).
    pub async fn drop_schema(&self, schema: &str) -> Result<()> {
        check_schema_name(schema)?;
        self.outside_schema(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
    }

    /// Runs one statement on a connection of its own: a schema is made
    /// before, or dropped after, any store's pool uses it.
    async fn outside_schema(&self, sql: &str) -> Result<()> {
        let connect_error = |e| Error::Connect {
            target: self.redacted.clone(),
            detail: db(e).to_string(),
        };
        let (client, conn) = self.config.connect(NoTls).await.map_err(connect_error)?;
        let task = tokio::spawn(conn);
        let res = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        res.map_err(connect_error)
    }
}

/// A schema name is spliced into SQL: lowercase letters, digits and `_` only.
fn check_schema_name(schema: &str) -> Result<()> {
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::BadUrl {
            detail: format!("schema name {schema:?} must be lowercase letters, digits and _"),
        });
    }
    Ok(())
}

/// `${VAR}` or `$VAR`: a reference to an environment variable.
fn env_reference(p: &str) -> Option<&str> {
    let name = p
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| p.strip_prefix('$'))?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

fn read_password_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Password {
        detail: format!(
            "cannot read {PASSWORD_FILE_ENV} file {}: {e}",
            path.display()
        ),
    })?;
    let p = text.trim_end_matches(['\n', '\r']).to_owned();
    if p.is_empty() {
        return Err(Error::Password {
            detail: format!("{PASSWORD_FILE_ENV} file {} is empty", path.display()),
        });
    }
    Ok(p)
}

/// `postgres://user@host:port/db`: the URL without its password or options.
fn redact(c: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match c.get_ports().get(i).or(c.get_ports().first()) {
                Some(p) => format!("{h}:{p}"),
                None => h,
            }
        })
        .collect();
    let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let dbname = c.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{dbname}", hosts.join(","))
}

/// crm's durable state in a PostgreSQL database, behind the storage ports of
/// `crm-domain` (it implements [`crm_domain::ports::Storage`] and
/// [`SecretSealer`]). Several processes (crm-server replicas, CLIs) may open
/// the same database at once; every rule that keeps them apart is in the
/// database (row locks, unique keys, lease rows). Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    clock: Arc<dyn Clock>,
    pepper: KeyBytes,
    sealer: Arc<Sealer>,
    target: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("sealer", &self.inner.sealer)
            .finish_non_exhaustive()
    }
}

/// What the pepper check value is computed over. Changing it would refuse
/// every existing installation.
const PEPPER_CHECK_INPUT: &[u8] = b"crm-store-postgres pepper check v1";

/// A lock id for migrations (any constant: "crmmig" as ASCII bytes).
const MIGRATION_LOCK: i64 = 0x0000_6372_6d6d_6967;

impl PostgresStore {
    /// Connects, migrates (one process at a time, under an advisory lock)
    /// and checks the keys.
    ///
    /// Unlike a SQLite file, the database has no "beside it" for keys, and
    /// every replica must use the same pepper and seal key: both must be
    /// named explicitly (`CRM_PEPPER_FILE`, and `CRM_SEAL_KEY` or
    /// `CRM_SEAL_KEY_FILE`). The pepper file is created on first use when
    /// absent; a replica whose pepper differs from the one the database was
    /// first opened with is refused.
    ///
    /// Why deadpool-postgres: tokio-postgres gives one connection per
    /// client, and a connection runs one transaction at a time, so
    /// concurrent use cases need several; deadpool is the pool the
    /// tokio-postgres ecosystem documents, async, small, with statement
    /// caching per connection and a wait timeout (bb8 is similar; r2d2 is
    /// blocking). Every use case's writes still run in one transaction on
    /// one pooled connection.
    pub async fn open(target: &PgTarget, options: StoreOptions) -> Result<PostgresStore> {
        let pepper_path = options.pepper_file.clone().ok_or(Error::KeysNotNamed {
            what: format!("the fingerprint pepper: set {PEPPER_FILE_ENV}"),
        })?;
        let seal = options.seal_key.ok_or(Error::KeysNotNamed {
            what: format!("the seal key: set {SEAL_KEY_ENV} or {SEAL_KEY_FILE_ENV}"),
        })?;
        let pepper =
            tokio::task::spawn_blocking(move || crm_store::load_or_create_key(&pepper_path))
                .await
                .map_err(|e| Error::Keys {
                    detail: format!("key loading stopped: {e}"),
                })?
                .map_err(|e| Error::Keys {
                    detail: e.to_string(),
                })?;
        let manager = Manager::from_config(
            target.config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(target.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Connect {
                target: target.redacted.clone(),
                detail: e.to_string(),
            })?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                clock: options.clock,
                pepper,
                sealer: Arc::new(Sealer::new(seal)),
                target: target.redacted.clone(),
            }),
        };
        let resealed = store.migrate().await?;
        store.check_pepper().await?;
        store.check_seal_key(resealed.as_ref()).await?;
        Ok(store)
    }

    /// Migrates, then runs the re-seal step; answers what that step did
    /// (`None` when it had run before or failed as a whole).
    async fn migrate(&self) -> Result<Option<crm_store::reseal::Resealed>> {
        let connect = |e: StoreError| Error::Connect {
            target: self.inner.target.clone(),
            detail: e.to_string(),
        };
        let mut obj = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| connect(pool_err(e)))?;
        // Two replicas starting at once must not both create the schema:
        // a session advisory lock serializes them (PostgreSQL docs, "Advisory
        // Locks", 13.3.5); the loser finds the migrations applied.
        obj.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| connect(db(e)))?;
        let client: &mut tokio_postgres::Client = &mut obj;
        let res = crate::migrations::run(client, None).await;
        let resealed = match res {
            Ok(()) => self.reseal_v1_values(client).await,
            Err(_) => None,
        };
        let _ = obj
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        res.map(|()| resealed).map_err(|detail| Error::Migrate {
            target: self.inner.target.clone(),
            detail,
        })
    }

    /// The re-seal step after the SQL migrations (`crm_store::reseal`). It
    /// never stops the store from opening: a value it cannot open is left
    /// as it is (warned about by table, row and field) and fails at use;
    /// a pass that fails as a whole writes nothing. Either way the next
    /// open tries again (the seal key may be corrected by then).
    async fn reseal_v1_values(
        &self,
        client: &mut tokio_postgres::Client,
    ) -> Option<crm_store::reseal::Resealed> {
        let outcome = crate::reseal::run(client, &self.inner.sealer, self.now()).await;
        crm_store::reseal::report(outcome, &format!("{SEAL_KEY_ENV} or {SEAL_KEY_FILE_ENV}"))
    }

    /// The seal key check (`crm_store::seal_check`), as the pepper check
    /// below: the first replica records a check value sealed with its key
    /// (`ON CONFLICT DO NOTHING`, so replicas starting together agree on
    /// one), and a replica whose key does not open it is refused.
    async fn check_seal_key(&self, resealed: Option<&crm_store::reseal::Resealed>) -> Result<()> {
        use crm_store::seal_check;
        let c = self.client().await?;
        let read = || async {
            c.query_opt(
                "SELECT value FROM installation WHERE name = $1",
                &[&seal_check::NAME],
            )
            .await
            .map_err(db)
            .map(|row| row.map(|r| r.get::<_, String>(0)))
        };
        let mut stored = read().await?;
        if stored.is_none() {
            if !seal_check::may_record(resealed) {
                seal_check::warn_not_recorded();
                return Ok(());
            }
            let value = seal_check::value(&self.inner.sealer)?;
            c.execute(
                "INSERT INTO installation (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&seal_check::NAME, &value],
            )
            .await
            .map_err(db)?;
            stored = read().await?;
        }
        let stored = stored.ok_or_else(|| {
            Error::Store(StoreError::Corrupt {
                detail: "the seal key check vanished while it was written".into(),
            })
        })?;
        seal_check::verify(&self.inner.sealer, &stored).map_err(|detail| Error::SealKeyMismatch {
            target: self.inner.target.clone(),
            detail,
        })
    }

    async fn check_pepper(&self) -> Result<()> {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.inner.pepper.expose_secret())
            .map_err(|e| Error::Keys {
                detail: e.to_string(),
            })?;
        mac.update(PEPPER_CHECK_INPUT);
        let mine = hex::encode(mac.finalize().into_bytes());
        let c = self.client().await?;
        c.execute(
            "INSERT INTO installation (name, value) VALUES ('pepper_check', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&mine],
        )
        .await
        .map_err(db)?;
        let row = c
            .query_one(
                "SELECT value FROM installation WHERE name = 'pepper_check'",
                &[],
            )
            .await
            .map_err(db)?;
        let stored: String = row.get(0);
        if stored != mine {
            return Err(Error::PepperMismatch {
                target: self.inner.target.clone(),
            });
        }
        Ok(())
    }

    /// The database, without its password.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Fingerprints secrets under this installation's pepper.
    pub fn fingerprinter(&self) -> KeyFingerprinter {
        KeyFingerprinter::new(self.inner.pepper.expose_secret().to_vec())
    }

    /// The sealer for secrets kept at rest (host admin keys).
    pub fn sealer(&self) -> Arc<Sealer> {
        self.inner.sealer.clone()
    }

    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(pool_err)
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

impl SecretSealer for PostgresStore {
    fn seal(&self, ctx: &SealContext, secret: &SecretString) -> Result<SealedSecret, StoreError> {
        self.inner.sealer.seal(ctx, secret)
    }

    fn open(&self, ctx: &SealContext, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        self.inner.sealer.open(ctx, sealed)
    }
}

/// Options for a store whose keys are named by the environment, as
/// [`StoreOptions::from_env`] reads them.
pub fn options_from_env() -> Result<StoreOptions> {
    StoreOptions::from_env().map_err(|e| Error::Keys {
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_come_from_a_file_or_an_env_reference_never_the_url() {
        let t = PgTarget::parse("postgres://crm@127.0.0.1:5432/crm", None).unwrap();
        assert_eq!(t.to_string(), "postgres://crm@127.0.0.1:5432/crm");
        assert!(t.config.get_password().is_none());

        let err = PgTarget::parse("postgres://crm:hunter2-canary@db:5432/crm", None).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("hunter2-canary"), "{msg}");
        assert!(msg.contains(PASSWORD_FILE_ENV), "{msg}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-canary\n").unwrap();
        let t = PgTarget::parse("postgres://crm@db/crm", Some(&file)).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"s3cret-canary"[..]));
        assert!(!format!("{t} {t:?}").contains("s3cret"));

        let err =
            PgTarget::parse("postgres://crm:${CRM_TEST_SURELY_UNSET_PW}@db/crm", None).unwrap_err();
        assert!(
            err.to_string().contains("CRM_TEST_SURELY_UNSET_PW"),
            "{err}"
        );
        // PATH is set in every test environment.
        let t = PgTarget::parse("postgres://crm:${PATH}@db/crm", None).unwrap();
        assert!(t.config.get_password().is_some());
        assert!(!t.to_string().contains("PATH"));

        assert!(matches!(
            PgTarget::parse("crm.db", None),
            Err(Error::BadUrl { .. })
        ));
    }

    #[test]
    fn env_references_are_recognised() {
        assert_eq!(env_reference("${A_B1}"), Some("A_B1"));
        assert_eq!(env_reference("$PW"), Some("PW"));
        assert_eq!(env_reference("plain"), None);
        assert_eq!(env_reference("${}"), None);
        assert_eq!(env_reference("${a-b}"), None);
    }
}
