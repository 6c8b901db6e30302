//! The fixtures every scenario builds on: a simulator with injected latency,
//! an application core in a temporary directory, a registered and probed host.

use anyhow::{Context, Result, bail};
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::{App, AppConfig};
use crm_domain::SecretString;
use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use crm_store::{SealKeySource, StoreOptions};
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A simulator on the `current` profile (max page size 1,000), no latency yet.
pub async fn sim() -> Result<SimHandle> {
    SimServer::start(SimConfig::with_profile(Profile::current()))
        .await
        .context("starting crm-sim")
}

/// Host calls in flight per import (`AppConfig::host_concurrency`); 0 keeps crm's default.
static HOST_CONCURRENCY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn set_host_concurrency(n: usize) {
    HOST_CONCURRENCY.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// The application configuration every scenario uses for `db`.
pub fn config(db: PathBuf) -> AppConfig {
    let mut cfg = AppConfig::new(db);
    cfg.actor = "bench".into();
    let n = HOST_CONCURRENCY.load(std::sync::atomic::Ordering::Relaxed);
    if n > 0 {
        cfg.host_concurrency = n;
    }
    cfg
}

/// What `--db` names: where every scenario's own database goes.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file per scenario, in a temporary directory under this one
    /// (`None`: the system's temporary directory).
    Sqlite(Option<PathBuf>),
    /// A schema per scenario in this PostgreSQL database: the URL as given
    /// (holding no password, see [`parse_db`]) and the parsed target.
    Postgres(String, crm_store_postgres::PgTarget),
}

impl std::fmt::Display for Backend {
    /// What the report prints: never a password (the target's own form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(None) => f.write_str("sqlite"),
            Backend::Sqlite(Some(dir)) => write!(f, "sqlite in {}", dir.display()),
            Backend::Postgres(_, target) => write!(f, "{target}"),
        }
    }
}

/// Parses `--db`: a `postgres://` URL (its password from `password_file`,
/// i.e. `CRM_DB_PASSWORD_FILE`, or from the `${VAR}` written in its place,
/// as crm-server takes it), or a directory for the SQLite files. An error
/// never repeats the argument: a mistyped URL may hold a password.
pub fn parse_db(arg: &str, password_file: Option<&Path>) -> Result<Backend> {
    if crm_store_postgres::is_postgres_url(arg) {
        let target = crm_store_postgres::PgTarget::parse(arg, password_file)
            .map_err(|e| anyhow::anyhow!("--db: {e}"))?;
        // Each scenario's schema is set through the URL's `options`
        // (`Db::create`); a second `options` would replace or be replaced by it.
        if arg.contains("options=") {
            bail!(
                "--db: {target}: leave `options` out of the URL; crm-bench gives each scenario its own schema through it"
            );
        }
        return Ok(Backend::Postgres(arg.to_owned(), target));
    }
    if arg.contains("://") {
        bail!(
            "--db: not a postgres:// or postgresql:// URL; give one of those, or a directory for the SQLite files (leave --db out for the system's temporary directory)"
        );
    }
    let dir = PathBuf::from(arg);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--db: cannot create the directory {}", dir.display()))?;
    Ok(Backend::Sqlite(Some(dir)))
}

/// The `--db` of this run; unset means SQLite in the system's temporary directory.
static BACKEND: OnceLock<Backend> = OnceLock::new();

pub fn set_backend(b: Backend) {
    let _ = BACKEND.set(b);
}

pub fn backend() -> &'static Backend {
    BACKEND.get_or_init(|| Backend::Sqlite(None))
}

/// A scenario's temporary directory, under `--db`'s directory if it names one.
pub fn scratch_dir() -> Result<tempfile::TempDir> {
    Ok(match backend() {
        Backend::Sqlite(Some(dir)) => tempfile::tempdir_in(dir)?,
        _ => tempfile::tempdir()?,
    })
}

/// The database of one scenario: a SQLite file in the scenario's temporary
/// directory, or a fresh schema of the `--db` database (dropped with this
/// value) with its key files in that directory, so that several
/// application cores, servers and CLI runs can share it.
pub struct Db {
    /// What `AppConfig::new` and `--db` take.
    pub location: PathBuf,
    /// PostgreSQL: the schema and the pepper and seal key files.
    postgres: Option<(String, PathBuf, PathBuf)>,
}

impl Db {
    pub async fn create(dir: &Path) -> Result<Db> {
        let Backend::Postgres(url, target) = backend() else {
            return Ok(Db {
                location: dir.join("crm.db"),
                postgres: None,
            });
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let schema = format!(
            "crm_bench_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        target.drop_schema(&schema).await?;
        target.create_schema(&schema).await?;
        // The URL's `options` give every connection, in this process or a
        // child, the private schema.
        let sep = if url.contains('?') { '&' } else { '?' };
        let location = PathBuf::from(format!("{url}{sep}options=-c%20search_path%3D{schema}"));
        let seal = dir.join("seal.key");
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)
            .context("reading a random seal key")?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&seal, hex)?;
        std::fs::set_permissions(&seal, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(Db {
            location,
            postgres: Some((schema, dir.join("pepper"), seal)),
        })
    }

    /// Store options for an application core in this process.
    pub fn options(&self) -> StoreOptions {
        match &self.postgres {
            None => StoreOptions::default(),
            Some((_, pepper, seal)) => StoreOptions::default()
                .with_pepper_file(pepper.clone())
                .with_seal_key(SealKeySource::File(seal.clone())),
        }
    }

    /// The environment a `crm-server`, `crm` or child process needs to open it.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        match &self.postgres {
            None => vec![],
            Some((_, pepper, seal)) => vec![
                ("CRM_PEPPER_FILE", pepper.clone()),
                ("CRM_SEAL_KEY_FILE", seal.clone()),
            ],
        }
    }

    /// Drops the PostgreSQL schema (a SQLite file goes with its directory).
    pub async fn remove(self) -> Result<()> {
        if let (Some((schema, _, _)), Backend::Postgres(_, target)) = (&self.postgres, backend()) {
            target.drop_schema(schema).await?;
        }
        Ok(())
    }
}

/// An application core on `db`, routing direct upstream probes to `sim`.
pub async fn app_on(db: &Db, sim: &SimHandle) -> Result<App> {
    app_as(db, sim, "bench").await
}

/// [`app_on`] with its own actor: the fleet's replicas, which lease holders
/// must tell apart.
pub async fn app_as(db: &Db, sim: &SimHandle, actor: &str) -> Result<App> {
    let mut cfg = config(db.location.clone());
    cfg.actor = actor.into();
    cfg.upstream_via = Some(sim.upstream_prefix());
    App::open_with(cfg, db.options(), Arc::new(crm_app::ids::UuidIds))
        .await
        .context("opening the application core")
}

/// Registers `sim` as host `name` and probes it (at whatever latency is set).
pub async fn add_host(app: &App, sim: &SimHandle, name: &str) -> Result<()> {
    app.add_host(NewHost {
        name: name.into(),
        base_url: sim.base_url(),
        admin_key: AdminKeySource::Value(SecretString::from(sim.admin_key())),
        reconcile_every_secs: None,
    })
    .await
    .with_context(|| format!("registering host {name}"))?;
    app.probe_host(name)
        .await
        .with_context(|| format!("probing host {name}"))?;
    Ok(())
}

/// Upstream keys the simulator answers `ok` for.
pub fn upstream_keys(provider: &str, salt: &str, k: usize) -> Vec<SecretString> {
    (0..k)
        .map(|i| SecretString::from(format!("sim-ok-{provider}-{salt}-{i:05}-abcdef0123")))
        .collect()
}

/// Total host requests the simulator has counted since its counters were cleared.
pub fn host_requests(sim: &SimHandle) -> u64 {
    sim.counters().values().sum()
}

pub fn set_latency(sim: &SimHandle, latency: Duration) {
    sim.set_latency(latency);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(arg: &str, password_file: Option<&Path>) -> String {
        let err = parse_db(arg, password_file).expect_err(arg);
        let msg = format!("{err:#}");
        assert!(msg.starts_with("--db: "), "{msg}");
        assert!(
            !msg.contains("hunter2"),
            "the error repeats a password: {msg}"
        );
        msg
    }

    #[test]
    fn db_refuses_bad_urls_clearly_and_never_repeats_a_password() {
        let msg = refused("postgres://crm:hunter2@db:5432/crm", None);
        assert!(msg.contains("CRM_DB_PASSWORD_FILE"), "{msg}");
        let msg = refused("mysql://root:hunter2@db/crm", None);
        assert!(msg.contains("postgres://"), "{msg}");
        let msg = refused("postgres://crm:hunter2@db:port/crm", None);
        assert!(msg.contains("not a PostgreSQL URL"), "{msg}");
        let msg = refused(
            "postgres://crm:${CRM_BENCH_SURELY_UNSET_PW}@db/crm?password=hunter2",
            None,
        );
        assert!(msg.contains("password"), "{msg}");
        let msg = refused(
            "postgres://crm@db/crm?options=-c%20search_path%3Dhunter2",
            None,
        );
        assert!(msg.contains("leave `options` out"), "{msg}");
    }

    #[test]
    fn db_takes_a_url_with_its_password_from_a_file_or_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2\n").unwrap();
        let b = parse_db("postgres://crm@127.0.0.1:5432/crm", Some(&pw)).unwrap();
        assert!(matches!(b, Backend::Postgres(..)));
        assert_eq!(b.to_string(), "postgres://crm@127.0.0.1:5432/crm");
        assert!(!format!("{b:?}").contains("hunter2"));

        let sqlite = dir.path().join("dbs");
        let b = parse_db(sqlite.to_str().unwrap(), None).unwrap();
        assert!(matches!(&b, Backend::Sqlite(Some(d)) if d == &sqlite));
        assert!(sqlite.is_dir());
    }
}
