//! Fleet (issue 22): 200 simulated hosts served by two replicas, i.e. two
//! application cores in this process sharing one store, as crm-server
//! replicas share one PostgreSQL database. Reports reconciling every host at
//! once against reconciling one, an import of 50 keys against its critical
//! path on that store, and the API's batch list route over 10,000 batches.
//!
//! On SQLite the fleet has one replica: a SQLite file belongs to one server
//! (docs/design.md, Durability), so there is nothing to share it with.

use crate::api::{self, RouteLoad};
use crate::import::ImportSample;
use crate::{env, stats};
use anyhow::{Result, bail};
use crm_app::App;
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::ports::BatchRepo;
use crm_domain::{AccessMode, BatchId, ProviderRef};
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

/// The shape of the run.
#[derive(Debug, Clone, Copy)]
pub struct FleetPlan {
    pub hosts: usize,
    pub latency: Duration,
    /// Rounds of "one host, then every host", median reported.
    pub rounds: usize,
    /// Keys of the measured import.
    pub import_keys: usize,
    /// Import batches of one host behind the list route.
    pub batches: usize,
    pub connections: usize,
    pub per_route: Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetSample {
    pub hosts: usize,
    pub replicas: usize,
    pub rounds: usize,
    /// Registering and importing into every host (zero latency), seconds.
    pub setup_secs: f64,
    pub one_host_ms: f64,
    pub all_hosts_ms: f64,
    pub ratio: f64,
    pub requests_per_host: u64,
    /// The import, through the replica that did not register its host.
    pub import: ImportSample,
    pub batches: usize,
    /// `/healthz`, then the list route at its default page and its largest.
    pub routes: Vec<RouteLoad>,
}

async fn reconcile(app: &App, host: &str) -> Result<()> {
    let r = app
        .reconcile(ReconcileRequest {
            host: host.into(),
            ..ReconcileRequest::default()
        })
        .await?;
    if let Some(e) = r.run.error {
        bail!("reconcile of {host} failed: {e:?}");
    }
    Ok(())
}

/// Every host at once, host `i` on replica `i mod replicas` (a load
/// balancer's spread).
async fn reconcile_all(apps: &[App], names: &[String]) -> Result<Duration> {
    let t = Instant::now();
    let results = futures::future::join_all(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| reconcile(&apps[i % apps.len()], n)),
    )
    .await;
    let took = t.elapsed();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(took)
}

fn deepseek(host: &str, keys: Vec<crm_domain::SecretString>) -> ImportInput {
    ImportInput {
        host: host.into(),
        provider: ProviderRef::new("cn-official", "deepseek"),
        mode: AccessMode::SelfService,
        upstream_keys: keys,
        user: None,
        starting_balance: None,
        verify: false,
        accept_url_change: false,
        monitor: None,
    }
}

pub async fn run(plan: FleetPlan) -> Result<FleetSample> {
    let dir = env::scratch_dir()?;
    let db = env::Db::create(dir.path()).await?;
    let replicas = match env::backend() {
        env::Backend::Postgres(..) => 2,
        env::Backend::Sqlite(_) => 1,
    };
    // One more simulator than hosts: the fresh host of the measured import.
    let mut sims = Vec::with_capacity(plan.hosts + 1);
    for _ in 0..=plan.hosts {
        sims.push(env::sim().await?);
    }
    let import_sim = sims.pop().expect("one simulator more than hosts");
    let mut apps = Vec::with_capacity(replicas);
    for r in 0..replicas {
        // Distinct actors: lease holders tell the two replicas apart.
        apps.push(env::app_as(&db, &sims[0], &format!("bench-replica-{}", r + 1)).await?);
    }
    apps[0].install_bundled_pack("cn-official").await?;

    let setup = Instant::now();
    let names: Vec<String> = (0..plan.hosts).map(|i| format!("host-{i:03}")).collect();
    let batches: Vec<_> = futures::stream::iter(names.iter().zip(&sims).enumerate())
        .map(|(i, (name, sim))| {
            let app = &apps[i % replicas];
            async move {
                env::add_host(app, sim, name).await?;
                let keys = env::upstream_keys("deepseek", name, 2);
                let report = app.import(deepseek(name, keys)).await?;
                if !report.succeeded() {
                    bail!("seeding {name} ended {}", report.batch.status);
                }
                Ok(report.batch)
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let setup_secs = setup.elapsed().as_secs_f64();

    for sim in &sims {
        env::set_latency(sim, plan.latency);
    }
    // A first pass over every host (not measured): each host's connector and
    // first lease rows are made once, as on a running server.
    reconcile_all(&apps, &names).await?;
    for sim in &sims {
        sim.clear_requests();
    }
    let (mut one, mut all) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        let t = Instant::now();
        reconcile(&apps[0], &names[0]).await?;
        one.push(t.elapsed());
        all.push(reconcile_all(&apps, &names).await?);
    }
    let one_host_ms = stats::median(&one).map_or(0.0, stats::ms);
    let all_hosts_ms = stats::median(&all).map_or(0.0, stats::ms);
    // Host 1 is reconciled only in the crowd: once per round.
    let requests_per_host = env::host_requests(&sims[1]) / u64::try_from(plan.rounds.max(1))?;

    // The import's host is registered by the first replica and imported
    // into by the last: all it needs is in the shared store.
    env::add_host(&apps[0], &import_sim, "fleet-import").await?;
    import_sim.clear_requests();
    env::set_latency(&import_sim, plan.latency);
    let importer = &apps[replicas - 1];
    let t = Instant::now();
    let report = importer
        .import(deepseek(
            "fleet-import",
            env::upstream_keys("deepseek", "fleet", plan.import_keys),
        ))
        .await?;
    let wall = t.elapsed();
    if !report.succeeded() {
        bail!(
            "the fleet's import with {} keys ended {}: {:?}",
            plan.import_keys,
            report.batch.status,
            report.error
        );
    }
    let import = ImportSample {
        keys: plan.import_keys,
        wall_ms: stats::ms(wall),
        host_requests: env::host_requests(&import_sim),
        routes: import_sim
            .requests()
            .iter()
            .map(|r| r.counter_key())
            .collect(),
    };

    // host-000's batch list grows to `batches` records like its real one,
    // written through the store (16 at a time: on PostgreSQL each insert is
    // a round trip).
    let real = batches[0].clone();
    let store = apps[0].store();
    futures::stream::iter(1..plan.batches)
        .map(|i| {
            let mut b = real.clone();
            b.id = BatchId::new(format!("b-fleet-{i:05}"));
            store.create_batch(b)
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    drop(apps);

    let server = api::spawn_server(&db)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.connections)
        .build()?;
    let list = |limit: u32| {
        (
            format!("GET /api/providers/{{pack}}/{{provider}}/import-batches?limit={limit}"),
            format!(
                "{}/api/providers/cn-official/deepseek/import-batches?host={}&limit={limit}",
                server.base, names[0]
            ),
        )
    };
    let routes = api::measure(
        &client,
        [
            (
                "GET /healthz".to_owned(),
                format!("{}/healthz", server.base),
            ),
            list(100),
            list(1000),
        ],
        plan.connections,
        plan.per_route,
    )
    .await?;
    drop(server);
    db.remove().await?;
    Ok(FleetSample {
        hosts: plan.hosts,
        replicas,
        rounds: plan.rounds,
        setup_secs,
        one_host_ms,
        all_hosts_ms,
        ratio: stats::ratio(all_hosts_ms, one_host_ms),
        requests_per_host,
        import,
        batches: plan.batches,
        routes,
    })
}
