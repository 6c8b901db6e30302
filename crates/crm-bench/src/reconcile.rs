//! Reconcile cost on a host with N objects, a quarter of them crm's: host
//! requests against the page bound, wall time and peak memory.
//!
//! The simulator lives in the bench process; the reconcile runs in a child
//! process (this binary again, hidden `reconcile-child` command) so its peak
//! resident memory is crm's alone, not the simulator's.

use crate::{env, seed, stats};
use anyhow::{Context, Result, bail};
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{AccessMode, ProviderRef};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// What one reconcile measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReconcileSample {
    pub objects: u64,
    pub managed: u64,
    pub page_size: u64,
    /// Σ pages per listing + 2 per crm group (its subscriptions and keys).
    pub page_bound: u64,
    pub host_requests: u64,
    pub extra_requests: i64,
    pub wall_ms: f64,
    /// Round trips a reconcile must wait for even with every independent
    /// request overlapped: the first page of every listing, then (if any
    /// listing has more) the other pages, then the per-group reads.
    pub round_trips: u64,
    /// `wall / (round_trips × latency)`: 1.0 means nothing but the necessary waits.
    pub wall_vs_bound: f64,
    pub status: String,
    pub drift_items: usize,
    /// CPU the reconciling process (crm alone) spent on the run; the rest of
    /// the wall time is waiting on the host.
    pub crm_cpu_ms: f64,
    /// Resident memory of the reconciling process before and at its peak.
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
}

/// What the child reports on stdout.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ChildReport {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub status: String,
    pub drift_items: usize,
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
}

/// The page bound of the host in `dump` (a `/__sim/state` dump), its
/// object count and the round trips a reconcile of it needs at least.
pub fn page_bound(dump: &Value, page_size: u64) -> (u64, u64, u64) {
    let count = |kind: &str, f: &dyn Fn(&Value) -> bool| -> u64 {
        dump[kind]
            .as_array()
            .map_or(0, |a| a.iter().filter(|v| f(v)).count() as u64)
    };
    let all = |_: &Value| true;
    let crm = |field: &str, v: &Value| v[field].as_str().is_some_and(|s| s.contains("crm-"));
    let crm_groups = count("groups", &|g| {
        g["name"].as_str().is_some_and(|s| s.starts_with("crm-"))
    });
    let crm_users = count("users", &|u| crm("email", u) || crm("username", u));
    // The host's own admin user is not one of the N seeded objects.
    let not_admin = |u: &Value| u["role"].as_str() != Some("admin");
    let objects: u64 = [
        "accounts",
        "groups",
        "channels",
        "api_keys",
        "subscriptions",
    ]
    .iter()
    .map(|k| count(k, &all))
    .sum::<u64>()
        + count("users", &not_admin);
    let listings = [
        stats::pages(count("accounts", &all), page_size),
        stats::pages(count("groups", &all), page_size),
        stats::pages(count("channels", &all), page_size),
        stats::pages(crm_users, page_size),
    ];
    let bound = listings.iter().sum::<u64>() + 2 * crm_groups;
    let round_trips = 1 + u64::from(listings.iter().any(|p| *p > 1)) + u64::from(crm_groups > 0);
    (bound, objects, round_trips)
}

/// Funds readings a reconcile of the host in `dump` makes: one per crm
/// account that has a balance or quota route.
pub fn funds_requests(dump: &Value) -> u64 {
    dump["accounts"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|v| v["name"].as_str().is_some_and(|s| s.starts_with("crm-")))
            .filter(|v| {
                let platform = v["platform"].as_str().unwrap_or_default();
                let mode = v["credentials"]["account_mode"].as_str();
                crm_domain::funds::host_route(platform, mode).is_some()
            })
            .count() as u64
    })
}

/// Seeds a host with `n` objects (25% crm's), then reconciles it once in a child process.
pub async fn run(n: u64, latency: Duration) -> Result<ReconcileSample> {
    let sim = env::sim().await?;
    let dir = env::scratch_dir()?;
    let db = env::Db::create(dir.path()).await?;
    let app = env::app_on(&db, &sim).await?;
    app.install_bundled_pack("cn-official").await?;
    env::add_host(&app, &sim, "bench").await?;
    // One self-service import creates its K accounts plus a group, a channel,
    // a user and a key.
    let managed = n / 4;
    let k = managed.saturating_sub(4).max(1);
    let report = app
        .import(ImportInput {
            host: "bench".into(),
            provider: ProviderRef::new("cn-official", "deepseek"),
            mode: AccessMode::SelfService,
            upstream_keys: env::upstream_keys("deepseek", "rec", usize::try_from(k)?),
            user: None,
            starting_balance: None,
            verify: false,
            accept_url_change: false,
            monitor: None,
        })
        .await?;
    if !report.succeeded() {
        bail!(
            "seeding import ended {}: {:?}",
            report.batch.status,
            report.error
        );
    }
    seed::unmanaged(&sim, seed::Unmanaged::split(n.saturating_sub(k + 4))).await?;
    let caps = app.show_host("bench").await?.capabilities;
    let page_size = caps.as_ref().map_or(1, |c| u64::from(c.max_page_size));
    let dump = sim.state_dump();
    let (bound, objects, round_trips) = page_bound(&dump, page_size);
    // Funds readings: one request per crm account with a cn-providers route,
    // on hosts that have the routes (issue 20).
    let bound = bound
        + if caps.as_ref().is_some_and(|c| c.cn_funds) {
            funds_requests(&dump)
        } else {
            0
        };
    drop(app);

    sim.clear_requests();
    env::set_latency(&sim, latency);
    let child = spawn_child(&db)?;
    let host_requests = env::host_requests(&sim);
    db.remove().await?;
    Ok(ReconcileSample {
        objects,
        managed: k + 4,
        page_size,
        page_bound: bound,
        host_requests,
        extra_requests: i64::try_from(host_requests)? - i64::try_from(bound)?,
        wall_ms: child.wall_ms,
        round_trips,
        wall_vs_bound: stats::ratio(child.wall_ms, round_trips as f64 * stats::ms(latency)),
        status: child.status,
        drift_items: child.drift_items,
        crm_cpu_ms: child.cpu_ms,
        rss_before_kib: child.rss_before_kib,
        peak_rss_kib: child.peak_rss_kib,
    })
}

fn spawn_child(db: &env::Db) -> Result<ChildReport> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let out = std::process::Command::new(exe)
        .arg("reconcile-child")
        .arg("--db")
        .arg(&db.location)
        .envs(db.env())
        .output()
        .context("running the reconcile child")?;
    if !out.status.success() {
        bail!(
            "reconcile child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("reading the reconcile child's report")
}

/// The child: opens the database, reconciles host `bench` read-only, and
/// reports wall time and its own resident memory.
pub async fn child(db: &Path) -> Result<()> {
    let app = crm_app::App::open(env::config(db.to_owned())).await?;
    let me = std::process::id().to_string();
    let rss_before_kib = stats::proc_status_kib(&me, "VmRSS").unwrap_or(0);
    let cpu_before = stats::own_cpu().unwrap_or_default();
    let t = Instant::now();
    let report = app
        .reconcile(ReconcileRequest {
            host: "bench".into(),
            ..ReconcileRequest::default()
        })
        .await?;
    let wall = t.elapsed();
    let cpu = stats::own_cpu()
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    let out = ChildReport {
        wall_ms: stats::ms(wall),
        cpu_ms: stats::ms(cpu),
        status: report.run.status.as_str().to_owned(),
        drift_items: report.run.items.len(),
        rss_before_kib,
        peak_rss_kib: stats::proc_status_kib(&me, "VmHWM").unwrap_or(0),
    };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_bound_counts_pages_per_listing_and_two_requests_per_crm_group() {
        let accounts: Vec<Value> = (0..2_500).map(|i| json!({"id": i})).collect();
        let dump = json!({
            "accounts": accounts,
            "groups": [{"name": "crm-cn-official-deepseek"}, {"name": "ops"}],
            "channels": [],
            "users": [
                {"email": "crm-probe@x", "username": ""},
                {"email": "a@b", "username": "a"},
                {"email": "admin@sim.local", "username": "admin", "role": "admin"},
            ],
        });
        // accounts 3 pages, groups 1, channels 1 (empty), crm users 1, one
        // crm group 2; first pages, more account pages, group reads.
        assert_eq!(page_bound(&dump, 1000), (8, 2_504, 3));
    }
}
