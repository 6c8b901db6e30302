//! API load and footprint: the real `crm-server` binary over a database of
//! 1,000 import batches, a loopback load generator (N keep-alive connections,
//! a fixed duration per route), the server's resident memory, and the CLI's
//! cold start.

use crate::{env, stats};
use anyhow::{Context, Result, bail};
use crm_app::providers::ImportInput;
use crm_domain::ports::BatchRepo;
use crm_domain::{AccessMode, BatchId, ProviderRef};
use futures::{StreamExt, TryStreamExt};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bearer token the spawned server accepts (only this run knows it).
pub(crate) const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// Load on one route.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteLoad {
    pub route: String,
    pub requests: u64,
    pub errors: u64,
    pub per_sec: f64,
    /// Throughput relative to `/healthz` on the same server in the same run.
    pub vs_healthz: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub response_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiSample {
    pub batches: usize,
    pub connections: usize,
    pub seconds_per_route: f64,
    pub routes: Vec<RouteLoad>,
    pub server_rss_idle_kib: u64,
    pub server_rss_after_kib: u64,
    pub server_peak_rss_kib: u64,
    pub cli_version_ms: f64,
    pub cli_batch_list_ms: f64,
    pub cli_runs: usize,
}

/// Where `crm` and `crm-server` are: next to this binary (`target/release`).
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let p = exe.with_file_name(name);
    if !p.is_file() {
        bail!(
            "{} is missing: build it first with `cargo build --release -p crm -p crm-server -p crm-bench`",
            p.display()
        );
    }
    Ok(p)
}

/// One real import, then `total - 1` batch records like it, written through
/// the store (16 at a time: a PostgreSQL insert is a network round trip).
async fn seed(db: &env::Db, total: usize) -> Result<BatchId> {
    let sim = env::sim().await?;
    let app = env::app_on(db, &sim).await?;
    app.install_bundled_pack("cn-official").await?;
    env::add_host(&app, &sim, "bench").await?;
    let report = app
        .import(ImportInput {
            host: "bench".into(),
            provider: ProviderRef::new("cn-official", "deepseek"),
            mode: AccessMode::SelfService,
            upstream_keys: env::upstream_keys("deepseek", "api", 2),
            user: None,
            starting_balance: None,
            verify: false,
            accept_url_change: false,
            monitor: None,
        })
        .await?;
    if !report.succeeded() {
        bail!("seeding import ended {}", report.batch.status);
    }
    let real = report.batch;
    let store = app.store();
    futures::stream::iter(1..total)
        .map(|i| {
            let mut b = real.clone();
            b.id = BatchId::new(format!("b-bench-{i:05}"));
            store.create_batch(b)
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(real.id)
}

pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn rss(&self, field: &str) -> u64 {
        stats::proc_status_kib(&self.pid(), field).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the server this run started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `crm-server` on port 0 and reads its address from its first log line.
pub(crate) fn spawn_server(db: &env::Db) -> Result<Server> {
    let mut child = Command::new(sibling("crm-server")?)
        .args(["--listen", "127.0.0.1:0", "--scheduler", "false", "--db"])
        .arg(&db.location)
        .envs(db.env())
        .env("CRM_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting crm-server")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        // Keep draining so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(t) = tx.as_ref()
                && line.contains("crm-server listening")
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["fields"]["addr"].as_str()
            {
                let _ = t.send(addr.to_owned());
                tx = None;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("crm-server did not report its address within 30 s")?;
    Ok(Server {
        child,
        base: format!("http://{addr}"),
    })
}

pub(crate) async fn load(
    client: &reqwest::Client,
    url: &str,
    connections: usize,
    duration: Duration,
) -> Result<(Vec<Duration>, u64, u64)> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut bytes) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.get(&url).bearer_auth(TOKEN).send().await {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) => {
                            lat.push(t.elapsed());
                            bytes = b.len() as u64;
                        }
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (lat, errors, bytes)
        }));
    }
    let (mut all, mut errors, mut bytes) = (Vec::new(), 0, 0);
    for t in tasks {
        let (lat, e, b) = t.await?;
        all.extend(lat);
        errors += e;
        bytes = bytes.max(b);
    }
    Ok((all, errors, bytes))
}

fn median_run(program: &Path, args: &[&str], db: &env::Db, runs: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let status = Command::new(program)
            .args(args)
            .envs(db.env())
            .env("CRM_OUTPUT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", program.display()))?;
        times.push(t.elapsed());
        if !status.success() {
            bail!("{} {} exited {status}", program.display(), args.join(" "));
        }
    }
    Ok(stats::median(&times).map_or(0.0, stats::ms))
}

/// Loads each route in turn for `per_route` (after one warm-up request);
/// throughput is also given relative to the first route's.
pub(crate) async fn measure(
    client: &reqwest::Client,
    routes: impl IntoIterator<Item = (String, String)>,
    connections: usize,
    per_route: Duration,
) -> Result<Vec<RouteLoad>> {
    let mut out: Vec<RouteLoad> = Vec::new();
    for (name, url) in routes {
        // One warm-up request: the first answer pays for connection setup.
        client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?;
        let (lat, errors, bytes) = load(client, &url, connections, per_route).await?;
        let per_sec = lat.len() as f64 / per_route.as_secs_f64();
        let healthz = out.first().map_or(per_sec, |h| h.per_sec);
        out.push(RouteLoad {
            route: name,
            requests: lat.len() as u64,
            errors,
            per_sec,
            vs_healthz: stats::ratio(per_sec, healthz),
            p50_ms: stats::median(&lat).map_or(0.0, stats::ms),
            p99_ms: stats::percentile(&lat, 99.0).map_or(0.0, stats::ms),
            response_bytes: bytes,
        });
    }
    Ok(out)
}

pub async fn run(
    batches: usize,
    connections: usize,
    per_route: Duration,
    cli_runs: usize,
) -> Result<ApiSample> {
    let dir = env::scratch_dir()?;
    let db = env::Db::create(dir.path()).await?;
    let batch = seed(&db, batches).await?;
    let server = spawn_server(&db)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let health = format!("{}/healthz", server.base);
    client.get(&health).send().await?.error_for_status()?;
    let server_rss_idle_kib = server.rss("VmRSS");

    let routes = [
        ("GET /healthz".to_owned(), health),
        (
            "GET /api/import-batches/{id}".to_owned(),
            format!("{}/api/import-batches/{batch}", server.base),
        ),
        (
            format!("GET /api/providers/{{pack}}/{{provider}}/import-batches ({batches} batches)"),
            format!(
                "{}/api/providers/cn-official/deepseek/import-batches?host=bench&limit=1000",
                server.base
            ),
        ),
    ];
    let out = measure(&client, routes, connections, per_route).await?;
    let server_rss_after_kib = server.rss("VmRSS");
    let server_peak_rss_kib = server.rss("VmHWM");
    drop(server);

    let crm = sibling("crm")?;
    let db_arg = db.location.to_string_lossy().into_owned();
    let cli_version_ms = median_run(&crm, &["--version"], &db, cli_runs)?;
    let cli_batch_list_ms = median_run(&crm, &["--db", &db_arg, "batch", "list"], &db, cli_runs)?;
    db.remove().await?;
    Ok(ApiSample {
        batches,
        connections,
        seconds_per_route: per_route.as_secs_f64(),
        routes: out,
        server_rss_idle_kib,
        server_rss_after_kib,
        server_peak_rss_kib,
        cli_version_ms,
        cli_batch_list_ms,
        cli_runs,
    })
}
