//! The fixtures every scenario builds on: a simulator with injected latency,
//! an application core in a temporary directory, a registered and probed host.

use anyhow::{Context, Result};
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::{App, AppConfig};
use crm_domain::SecretString;
use crm_sim::{Profile, SimConfig, SimHandle, SimServer};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
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

/// An application core on `dir/crm.db`, routing direct upstream probes to `sim`.
pub async fn app(dir: &Path, sim: &SimHandle) -> Result<App> {
    let mut cfg = config(dir.join("crm.db"));
    cfg.upstream_via = Some(sim.upstream_prefix());
    App::open_with(cfg, Default::default(), Arc::new(crm_app::ids::UuidIds))
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
