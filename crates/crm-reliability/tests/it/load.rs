//! Load test on loopback: at least 50 concurrent API clients against the
//! real `crm-server`, mixing reads (hosts, providers, batches, operations,
//! audit) with imports and re-imports on several simulated hosts for a
//! bounded time. No 5xx, no transport error, no lost operation (every
//! accepted import finishes), no duplicate on any host; p50/p99 read latency
//! is printed.

use crate::served::Served;
use crm_reliability::{Budget, Tally, db, invariants};
use crm_sim::{SimConfig, SimHandle, SimServer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const HOSTS: usize = 3;
const PROVIDERS: [&str; 3] = ["deepseek", "kimi", "zhipu"];

#[derive(Default)]
struct Stats {
    reads: AtomicU64,
    imports: AtomicU64,
    conflicts: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    operations: Mutex<Vec<String>>,
}

async fn client(
    i: usize,
    s: Arc<Served>,
    hosts: Arc<Vec<String>>,
    stats: Arc<Stats>,
    tally: Arc<Tally>,
    until: Instant,
) {
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        // One client in five imports; the others read.
        if i.is_multiple_of(5) {
            let host = &hosts[(i / 5 + n) % hosts.len()];
            let p = PROVIDERS[(i + n) % PROVIDERS.len()];
            let mode = if n.is_multiple_of(2) {
                "subscription"
            } else {
                "self_service"
            };
            let (st, op) = s
                .call(
                    "POST",
                    &format!("/api/providers/cn-official/{p}/import"),
                    Some(json!({"host": host, "mode": mode, "verify": false,
                        "upstream_keys": [format!("sim-ok-{p}-{host}-load-k{:04}", 7)]})),
                )
                .await;
            tally.trial();
            match st {
                202 | 200 => {
                    stats.imports.fetch_add(1, Ordering::Relaxed);
                    if let Some(id) = op["id"].as_str() {
                        stats.operations.lock().await.push(id.to_owned());
                    }
                }
                // Another client holds the (host, provider) lease.
                409 => {
                    stats.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                _ => tally.violation(format!("import on {host}: {st} {op}")),
            }
        } else {
            let path = match n % 5 {
                0 => "/api/hosts".to_owned(),
                1 => "/api/providers".to_owned(),
                2 => format!(
                    "/api/providers/cn-official/{}/import-batches?host={}",
                    PROVIDERS[n % PROVIDERS.len()],
                    hosts[n % hosts.len()]
                ),
                3 => "/api/audit?limit=20".to_owned(),
                _ => format!("/api/hosts/{}", hosts[i % hosts.len()]),
            };
            let t = Instant::now();
            let (st, body) = s.call("GET", &path, None).await;
            let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
            tally.trial();
            stats.reads.fetch_add(1, Ordering::Relaxed);
            stats.latencies_us.lock().await.push(us);
            if st != 200 {
                tally.violation(format!("GET {path}: {st} {body}"));
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_mixing_reads_and_imports_on_several_hosts() {
    let budget = Budget::from_env();
    let tally = Arc::new(Tally::new("load"));
    let s = Served::start(|_, _| {}).await;
    s.setup().await;
    // More simulated hosts besides the one `setup` registered.
    let mut sims: Vec<SimHandle> = Vec::new();
    let mut hosts = vec!["sim".to_owned()];
    for h in 1..HOSTS {
        let sim = SimServer::start(SimConfig::default()).await.expect("sim");
        let name = format!("sim{h}");
        let (st, b) = s
            .call(
                "POST",
                "/api/hosts",
                Some(
                    json!({"name": name, "base_url": sim.base_url(), "admin_key": sim.admin_key()}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{b}");
        hosts.push(name);
        sims.push(sim);
    }
    let s = Arc::new(s);
    let hosts = Arc::new(hosts);
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(budget.load_secs);
    let tasks: Vec<_> = (0..budget.load_clients)
        .map(|i| {
            tokio::spawn(client(
                i,
                s.clone(),
                hosts.clone(),
                stats.clone(),
                tally.clone(),
                until,
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }

    // No lost operation: every accepted import finishes.
    let ops = stats.operations.lock().await.clone();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for id in &ops {
        let op = s.finish(&format!("/api/operations/{id}")).await;
        let status = op["status"].as_str().unwrap_or("?").to_owned();
        if status != "succeeded" && status != "failed" {
            tally.violation(format!("operation {id} ended {status}: {op}"));
        }
        if status == "failed" && !op["error"].as_str().unwrap_or("").contains("is held by") {
            tally.violation(format!("operation {id} failed: {}", op["error"]));
        }
        *outcomes.entry(status).or_default() += 1;
    }

    // No duplicate on any host; the database is consistent.
    let recorded = s.recorded().await;
    let mut dumps: Vec<Value> = vec![s.sim.state_dump()];
    dumps.extend(sims.iter().map(|h| h.state_dump()));
    let (_, listed) = s.call("GET", "/api/hosts", None).await;
    for (h, dump) in dumps.iter().enumerate() {
        let id = listed
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == hosts[h].as_str())
            .and_then(|x| x["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        let mine: Vec<_> = recorded
            .iter()
            .filter(|r| r.batch.host_id.as_str() == id)
            .cloned()
            .collect();
        for v in invariants::check(dump, &mine) {
            tally.violation(format!("host {}: {v}", hosts[h]));
        }
    }
    for v in db::consistency(&s.db()) {
        tally.violation(v);
    }
    let mut lat = stats.latencies_us.lock().await.clone();
    lat.sort_unstable();
    tally.finish(&format!(
        "clients={} secs={} reads={} imports={} lease_conflicts={} operations={outcomes:?} read_p50_ms={:.1} read_p99_ms={:.1} read_max_ms={:.1}",
        budget.load_clients,
        budget.load_secs,
        stats.reads.load(Ordering::Relaxed),
        stats.imports.load(Ordering::Relaxed),
        stats.conflicts.load(Ordering::Relaxed),
        percentile(&lat, 0.50) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
    ));
}
