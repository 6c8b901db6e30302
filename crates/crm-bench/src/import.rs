//! Import latency against its critical path: one provider with K upstream keys.

use crate::env;
use anyhow::{Result, bail};
use crm_app::providers::ImportInput;
use crm_domain::{AccessMode, ProviderRef};
use std::time::{Duration, Instant};

/// One measured import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSample {
    pub keys: usize,
    pub wall_ms: f64,
    pub host_requests: u64,
    /// `METHOD route` of every host request, in arrival order.
    pub routes: Vec<String>,
}

/// Imports `cn-official/deepseek` (self-service, no verification) with `k`
/// keys onto a fresh simulator at `latency` per host request.
pub async fn run(k: usize, latency: Duration) -> Result<ImportSample> {
    let sim = env::sim().await?;
    let dir = env::scratch_dir()?;
    let db = env::Db::create(dir.path()).await?;
    let app = env::app_on(&db, &sim).await?;
    app.install_bundled_pack("cn-official").await?;
    env::add_host(&app, &sim, "bench").await?;
    sim.clear_requests();
    env::set_latency(&sim, latency);
    let t = Instant::now();
    let report = app
        .import(ImportInput {
            host: "bench".into(),
            provider: ProviderRef::new("cn-official", "deepseek"),
            mode: AccessMode::SelfService,
            upstream_keys: env::upstream_keys("deepseek", "imp", k),
            user: None,
            starting_balance: None,
            verify: false,
            accept_url_change: false,
            monitor: None,
        })
        .await?;
    let wall = t.elapsed();
    if !report.succeeded() {
        bail!(
            "import with {k} keys ended {}: {:?}",
            report.batch.status,
            report.error
        );
    }
    let routes = sim.requests().iter().map(|r| r.counter_key()).collect();
    drop(app);
    db.remove().await?;
    Ok(ImportSample {
        keys: k,
        wall_ms: wall.as_secs_f64() * 1e3,
        host_requests: env::host_requests(&sim),
        routes,
    })
}
