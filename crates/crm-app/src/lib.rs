//! `crm-app`: the application core shared by crm's three faces (the CLI, the
//! HTTP server and the acceptance harness).
//!
//! Each use case is one method on [`App`]: the faces parse their input, call
//! it, and render the result. Nothing here knows about terminals or HTTP.
//! [`App`] wires the adapters (`crm-store`, `crm-sub2api`) into the use-case
//! crates (`crm-provision`, `crm-access`, `crm-reconcile`) and records an
//! audit event for every mutation.

pub mod acceptance;
pub mod batches;
pub mod credentials;
pub mod error;
pub mod funds;
pub mod hosts;
pub mod ids;
pub mod leases;
pub mod operations;
pub mod packs;
pub mod providers;
pub mod quickstart;
pub mod reconcile;
pub mod recovery;
pub mod runner;
pub mod scheduler;
pub mod source;
pub mod status;
pub mod store;

pub use error::{AppError, ErrorKind, Result};
pub use hosts::HostView;
pub use runner::{OperationRunner, OperationSpec};

use crm_domain::KeyFingerprinter;
use crm_domain::ops::NewAuditEvent;
use crm_domain::ports::{AuditRepo, Clock, IdSource};
use crm_store::{SqliteStore, StoreOptions, SystemClock};
use crm_sub2api::{Sub2apiConnector, UpstreamClient, UpstreamRouting};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
pub use store::{Database, Store};

/// How to build an [`App`].
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The SQLite database file, or a `postgres://` URL (see [`Database`]).
    pub db_path: PathBuf,
    /// Route direct upstream probes through this prefix instead of the
    /// providers' real base URLs (`{prefix}/{authority}/{path}`): used with the
    /// simulator, or behind an egress relay.
    pub upstream_via: Option<String>,
    /// Timeout of one host request.
    pub host_timeout: Duration,
    /// Who the audit trail names for this process (e.g. `cli:alice`).
    pub actor: String,
    /// At most this many independent requests to one host at once (account
    /// creates of an import, deletes of a rollback, observation reads);
    /// default [`crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY`] (64).
    pub host_concurrency: usize,
    /// How long an import, resume or rollback lease lives without a
    /// heartbeat (default [`DEFAULT_LEASE_TTL`], ten minutes). The work
    /// heartbeats it between steps, so it bounds how long one step may take,
    /// and how long after a crash another process (or replica) may take the
    /// lease over and resume.
    pub lease_ttl: Duration,
}

/// The default of [`AppConfig::lease_ttl`].
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

impl AppConfig {
    pub fn new(db_path: impl Into<PathBuf>) -> Self {
        AppConfig {
            db_path: db_path.into(),
            upstream_via: None,
            host_timeout: Duration::from_secs(30),
            actor: "cli".into(),
            host_concurrency: crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY,
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

/// The application core. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) store: Store,
    pub(crate) connector: Sub2apiConnector,
    pub(crate) upstream: Arc<UpstreamClient>,
    /// Providers' own balance APIs (readings with operator-supplied keys).
    pub(crate) upstream_funds: Arc<crm_sub2api::UpstreamFundsClient>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
    pub(crate) fingerprinter: Arc<KeyFingerprinter>,
    pub(crate) actor: String,
    pub(crate) host_concurrency: usize,
    pub(crate) lease_ttl: Duration,
    /// The background operations of this process, shared by every clone
    /// (so the API and the console drain together).
    pub(crate) runner: OperationRunner,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("store", &self.store)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Opens (creating if needed) the database and its keys, honouring
    /// `CRM_PEPPER_FILE`, `CRM_SEAL_KEY` and `CRM_SEAL_KEY_FILE`.
    pub async fn open(config: AppConfig) -> Result<App> {
        let options = StoreOptions::from_env().map_err(|e| AppError::Open(e.to_string()))?;
        Self::open_with(config, options, Arc::new(ids::UuidIds)).await
    }

    /// Opens with explicit store options and id source (tests).
    pub async fn open_with(
        config: AppConfig,
        options: StoreOptions,
        ids: Arc<dyn IdSource>,
    ) -> Result<App> {
        let clock: Arc<dyn Clock> = options.clock.clone();
        let store = open_store(&config.db_path, options).await?;
        let routing = match &config.upstream_via {
            Some(prefix) => UpstreamRouting::ViaPrefix(prefix.clone()),
            None => UpstreamRouting::Direct,
        };
        let upstream_funds =
            crm_sub2api::UpstreamFundsClient::new(routing.clone(), config.host_timeout)
                .map_err(|e| AppError::invalid(format!("upstream routing: {e}")))?;
        let upstream = UpstreamClient::new(routing)
            .map_err(|e| AppError::invalid(format!("upstream routing: {e}")))?
            .with_timeout(config.host_timeout);
        let connector = Sub2apiConnector {
            timeout: config.host_timeout,
            // A listing's pages count against the same per-host bound.
            pages_in_flight: crm_sub2api::client::PAGES_IN_FLIGHT
                .min(config.host_concurrency.max(1)),
            ..Sub2apiConnector::default()
        };
        let app = App {
            fingerprinter: Arc::new(store.fingerprinter()),
            store,
            connector,
            upstream: Arc::new(upstream),
            upstream_funds: Arc::new(upstream_funds),
            clock,
            ids,
            actor: config.actor,
            host_concurrency: config.host_concurrency,
            lease_ttl: config.lease_ttl,
            runner: OperationRunner::new(),
        };
        // A crashed predecessor's leases would block resume for their whole
        // TTL; reap them now (see `leases`).
        if let Err(e) = app.reap_dead_leases().await {
            tracing::warn!(error = %e, "could not check for leases of dead processes");
        }
        Ok(app)
    }

    /// The same core acting for another principal (the server sets the token id).
    pub fn with_actor(&self, actor: impl Into<String>) -> App {
        App {
            actor: actor.into(),
            ..self.clone()
        }
    }

    /// The runner of this process's background operations.
    pub fn runner(&self) -> &OperationRunner {
        &self.runner
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Records an audit event; a failure to audit is logged, never hidden
    /// behind the outcome of the action itself.
    pub(crate) async fn audit(
        &self,
        action: &str,
        target: &str,
        outcome: &str,
        detail: Option<String>,
    ) {
        let event = NewAuditEvent {
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            request_id: current_request_id(),
            outcome: outcome.to_owned(),
            detail,
        };
        if let Err(e) = self.store.append_audit(event).await {
            tracing::error!(error = %e, action, target, "could not write the audit event");
        }
    }

    /// The audit trail, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<crm_domain::ops::AuditEvent>> {
        Ok(self.store.list_audit(limit).await?)
    }
}

tokio::task_local! {
    /// The request id of the HTTP request being served, for audit events.
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Opens the store `db` names: a SQLite file (creating its directory), or a
/// PostgreSQL database (password from `CRM_DB_PASSWORD_FILE` or the URL's
/// `${VAR}`; errors name the URL without it).
async fn open_store(db: &std::path::Path, options: StoreOptions) -> Result<Store> {
    match Database::parse(db) {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    AppError::Open(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let store = SqliteStore::open(&path, options)
                .await
                .map_err(|e| AppError::Open(format!("{}: {e}", path.display())))?;
            Ok(Store::Sqlite(store))
        }
        Database::Postgres(url) => {
            let target = crm_store_postgres::PgTarget::from_env(&url)
                .map_err(|e| AppError::Open(e.to_string()))?;
            let store = crm_store_postgres::PostgresStore::open(&target, options)
                .await
                .map_err(|e| AppError::Open(e.to_string()))?;
            Ok(Store::Postgres(store))
        }
    }
}

/// Default clock for callers that build their own store options.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
