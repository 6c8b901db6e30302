//! Fan-out: reconciling 20 hosts at once against reconciling one, each host
//! its own simulator at the same latency. Host round trips overlap across
//! hosts, so the ratio should stay near 1.

use crate::{env, stats};
use anyhow::{Result, bail};
use crm_app::App;
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{AccessMode, ProviderRef};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub struct FanoutSample {
    pub hosts: usize,
    pub one_host_ms: f64,
    pub all_hosts_ms: f64,
    pub ratio: f64,
    pub requests_per_host: u64,
    /// Round trips one reconcile waits for: the listings go at once, then
    /// the per-group reads at once.
    pub host_levels: u64,
    /// One host's time not spent waiting on the host (`one - levels × latency`).
    pub one_host_local_ms: f64,
    /// What 20 hosts would take if that local work ran one host after another
    /// while the host waits overlapped: `one + (hosts - 1) × local`.
    pub serialized_local_estimate_ms: f64,
}

async fn reconcile(app: &App, host: &str) -> Result<()> {
    let r = app
        .reconcile(ReconcileRequest {
            host: host.into(),
            ..ReconcileRequest::default()
        })
        .await?;
    if r.run.error.is_some() {
        bail!("reconcile of {host} failed: {:?}", r.run.error);
    }
    Ok(())
}

/// `hosts` simulators, each with one imported provider (two keys), one database.
pub async fn run(hosts: usize, latency: Duration, rounds: usize) -> Result<FanoutSample> {
    let dir = env::scratch_dir()?;
    let mut sims = Vec::with_capacity(hosts);
    for _ in 0..hosts {
        sims.push(env::sim().await?);
    }
    let db = env::Db::create(dir.path()).await?;
    let app = env::app_on(&db, &sims[0]).await?;
    app.install_bundled_pack("cn-official").await?;
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:02}")).collect();
    for (sim, name) in sims.iter().zip(&names) {
        env::add_host(&app, sim, name).await?;
        let report = app
            .import(ImportInput {
                host: name.clone(),
                provider: ProviderRef::new("cn-official", "deepseek"),
                mode: AccessMode::SelfService,
                upstream_keys: env::upstream_keys("deepseek", name, 2),
                user: None,
                starting_balance: None,
                verify: false,
                accept_url_change: false,
                monitor: None,
            })
            .await?;
        if !report.succeeded() {
            bail!("seeding {name} ended {}", report.batch.status);
        }
    }
    for sim in &sims {
        sim.clear_requests();
        env::set_latency(sim, latency);
    }
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        reconcile(&app, &names[0]).await?;
        one.push(t.elapsed());
        let t = Instant::now();
        let results = futures::future::join_all(names.iter().map(|n| reconcile(&app, n))).await;
        all.push(t.elapsed());
        results.into_iter().collect::<Result<Vec<()>>>()?;
    }
    let one_ms = stats::median(&one).map_or(0.0, stats::ms);
    let all_ms = stats::median(&all).map_or(0.0, stats::ms);
    let rounds = u64::try_from(rounds.max(1))?;
    // Host 1 is reconciled only in the crowd: once per round.
    let requests_per_host = env::host_requests(&sims[1]) / rounds;
    let per_group_reads = sims[1]
        .requests()
        .iter()
        .any(|r| r.route.starts_with("/api/v1/admin/groups/{id}/"));
    let host_levels = 1 + u64::from(per_group_reads);
    let local = (one_ms - host_levels as f64 * stats::ms(latency)).max(0.0);
    drop(app);
    db.remove().await?;
    Ok(FanoutSample {
        hosts,
        one_host_ms: one_ms,
        all_hosts_ms: all_ms,
        ratio: stats::ratio(all_ms, one_ms),
        requests_per_host,
        host_levels,
        one_host_local_ms: local,
        serialized_local_estimate_ms: one_ms + (hosts as f64 - 1.0) * local,
    })
}
