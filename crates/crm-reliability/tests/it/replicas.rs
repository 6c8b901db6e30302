//! Two real `crm-server` replicas on one PostgreSQL database and one
//! in-process simulator (issue 22, item 4; docs/design.md §5 "No
//! duplicates"): what a load balancer sending any request to any replica
//! relies on.
//!
//! - 50 concurrent identical imports spread over both replicas make one
//!   object set on the host, and every request is answered (the stored 202
//!   replayed, or 409 while the first is in flight); the same without an
//!   `Idempotency-Key`, where the shared lease decides.
//! - SIGKILL of the replica holding an import's lease, at a seeded host
//!   write: the other replica cannot resume before the lease expires, does
//!   after, and leaves no orphan and no duplicate.
//! - The scheduler of both replicas over 20 hosts for several intervals:
//!   each host reconciled once per interval, none twice, none skipped after
//!   one replica is killed mid-run.
//!
//! They need a database: `CRM_TEST_POSTGRES_URL` (`.ci/run` starts a
//! throwaway cluster); without it each test says SKIPPED and passes. Each
//! test gets a private schema. The test reads the database through the
//! PostgreSQL adapter itself, never through `crm_app::App`: opening an App
//! releases the leases of dead processes on this machine (crm-app
//! `leases.rs`), which would hide exactly what these tests look at.

use crm_domain::batch::BatchFilter;
use crm_domain::ops::Lease;
use crm_domain::ports::{BatchRepo, LeaseRepo, ReconcileRepo};
use crm_domain::{BatchStatus, HostId};
use crm_reliability::bins::{Server, ServerOpts};
use crm_reliability::invariants::{self, Recorded};
use crm_reliability::{Budget, Tally};
use crm_sim::{FaultAction, FaultSpec, SimConfig, SimHandle, SimServer};
use crm_store::{SealKeySource, StoreOptions, parse_key_text};
use crm_store_postgres::{PgTarget, PostgresStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "replicas-admin-token-0123456789abcdef";
const SEAL_KEY_HEX: &str = "0303030303030303030303030303030303030303030303030303030303030303";
const URL_ENV: &str = "CRM_TEST_POSTGRES_URL";

/// The test database URL, or `None` after saying the test is skipped.
fn pg_url(test: &str) -> Option<String> {
    match std::env::var(URL_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            // Straight to stderr: libtest captures the print macros of
            // passing tests, and a skip must be seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {URL_ENV} is not set (see .ci/run for a throwaway cluster)"
            );
            None
        }
    }
}

/// One answer of a replica.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    replayed: bool,
}

/// Two replicas over one private schema, their shared keys, and the
/// test's own view of the database.
struct Cluster {
    _keys: tempfile::TempDir,
    opts: Vec<ServerOpts>,
    servers: Vec<Option<Server>>,
    store: PostgresStore,
    http: reqwest::Client,
}

impl Cluster {
    /// A fresh schema, then two replicas on it (`tune` adjusts each one's
    /// options; replica `i` is named `replica-i`).
    async fn start(url: &str, tune: impl Fn(usize, &mut ServerOpts)) -> Cluster {
        let schema = format!("crm_replicas_{}", uuid::Uuid::new_v4().simple());
        let target = PgTarget::parse(url, None).expect("a usable test URL");
        target
            .create_schema(&schema)
            .await
            .expect("create a test schema");
        // The URL's `options` give every connection of the replicas the
        // private schema, as crm-console's replica test does.
        let sep = if url.contains('?') { '&' } else { '?' };
        let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let keys = tempfile::tempdir().expect("temp dir");
        let pepper = keys.path().join("pepper");
        let seal = keys.path().join("seal.key");
        std::fs::write(&seal, SEAL_KEY_HEX).expect("seal key file");
        // crm refuses a key file others can read.
        std::fs::set_permissions(&seal, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod 600 the seal key file");
        // Opened first: it migrates the schema and writes the pepper file
        // the replicas then share.
        let store = PostgresStore::open(
            &target.clone().with_schema(&schema),
            StoreOptions::default()
                .with_pepper_file(pepper.clone())
                .with_seal_key(SealKeySource::Key(parse_key_text(SEAL_KEY_HEX).unwrap())),
        )
        .await
        .expect("open the test schema");
        let mut opts = Vec::new();
        let mut servers = Vec::new();
        for i in 0..2 {
            let mut o = ServerOpts::new(&db, TOKEN)
                .with_env("CRM_PEPPER_FILE", pepper.display().to_string())
                .with_env("CRM_SEAL_KEY_FILE", seal.display().to_string())
                .with_env("CRM_REPLICA_ID", format!("replica-{i}"));
            tune(i, &mut o);
            servers.push(Some(tokio::task::block_in_place(|| Server::start(&o))));
            opts.push(o);
        }
        Cluster {
            _keys: keys,
            opts,
            servers,
            store,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    fn server(&self, i: usize) -> &Server {
        self.servers[i]
            .as_ref()
            .unwrap_or_else(|| panic!("replica-{i} is not running"))
    }

    /// SIGKILL of replica `i`.
    fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.servers[i].take() {
            s.kill();
        }
    }

    /// Starts replica `i` again on the same database.
    fn restart(&mut self, i: usize) {
        self.kill(i);
        let s = tokio::task::block_in_place(|| Server::start(&self.opts[i]));
        self.servers[i] = Some(s);
    }

    async fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method.parse().expect("method"), self.server(i).url(path))
            .bearer_auth(TOKEN);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let replayed = r.headers().get("idempotent-replayed").is_some();
                let text = r.text().await.unwrap_or_default();
                Reply {
                    status,
                    body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    replayed,
                }
            }
            Err(e) => Reply {
                status: 0,
                body: Value::String(format!("transport: {e}")),
                replayed: false,
            },
        }
    }

    /// Installs the bundled pack (through replica 0).
    async fn install_pack(&self) {
        let (_, text) = crm_pack::bundled::all()[0];
        let r = self
            .http
            .post(self.server(0).url("/api/packs?file_name=cn-official.toml"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await
            .expect("pack upload");
        assert_eq!(r.status().as_u16(), 201);
    }

    /// Registers `sim` as host `name` (through replica 0) and returns its id.
    async fn add_host(&self, name: &str, sim: &SimHandle, every: Option<u64>) -> HostId {
        let r = self
            .call(
                0,
                "POST",
                "/api/hosts",
                Some(json!({"name": name, "base_url": sim.base_url(),
                    "admin_key": sim.admin_key(), "reconcile_every_secs": every})),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        HostId::new(r.body["id"].as_str().expect("host id"))
    }

    /// Polls an operation on replica `i` until it is no longer running.
    async fn finish(&self, i: usize, op: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = self
                .call(i, "GET", &format!("/api/operations/{op}"), None, None)
                .await;
            if r.status == 200 && r.body["status"] != "running" && r.body["status"] != "queued" {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "operation {op} still running: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the database records about the batches on `host`.
    async fn recorded(&self, host: &HostId) -> Vec<Recorded> {
        let mut out = Vec::new();
        let filter = BatchFilter {
            host_id: Some(host.clone()),
            ..BatchFilter::default()
        };
        for batch in self.store.list_batches(filter).await.expect("batches") {
            out.push(Recorded {
                journal: self.store.journal(&batch.id).await.expect("journal"),
                resources: self.store.resources(&batch.id).await.expect("resources"),
                batch,
            });
        }
        out
    }

    /// The unexpired provider leases on `host`.
    async fn leases(&self, host: &HostId) -> Vec<Lease> {
        self.store
            .active_leases(&format!("{}/", Lease::host_scope(host)))
            .await
            .expect("leases")
    }
}

async fn sim() -> SimHandle {
    SimServer::start(SimConfig::default())
        .await
        .expect("simulator starts")
}

/// Holds every host write (create, update, delete) of `sim` for `ms` before
/// handling it, so concurrent requests overlap the work in flight.
fn delay_writes(sim: &SimHandle, ms: u64) {
    for method in ["POST", "PUT", "DELETE"] {
        sim.inject_fault(FaultSpec {
            method: Some(method.into()),
            path: "/api/v1/admin/*".into(),
            nth: 1,
            times: u32::MAX,
            action: FaultAction::Delay { ms },
        });
        sim.inject_fault(FaultSpec {
            method: Some(method.into()),
            path: "/api/v1/admin/*/*".into(),
            nth: 1,
            times: u32::MAX,
            action: FaultAction::Delay { ms },
        });
    }
}

/// Host writes the simulator has seen.
fn writes(sim: &SimHandle) -> usize {
    sim.requests().iter().filter(|r| r.method != "GET").count()
}

fn import_path(provider: &str) -> String {
    format!("/api/providers/cn-official/{provider}/import")
}

fn keys(tag: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("sim-ok-{tag}-{i:03}")).collect()
}

/// Every invariant violated by `host`'s objects on `sim` against the batches
/// the database records for it.
async fn violations(c: &Cluster, sim: &SimHandle, host: &HostId) -> Vec<String> {
    invariants::check(&sim.state_dump(), &c.recorded(host).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_imports_over_two_replicas_make_one_object_set() {
    let test = "fifty_identical_imports_over_two_replicas_make_one_object_set";
    let Some(url) = pg_url(test) else { return };
    let started = Instant::now();
    let sim = sim().await;
    let c = Cluster::start(&url, |_, o| o.upstream_via = Some(sim.upstream_prefix())).await;
    c.install_pack().await;
    let host = c.add_host("sim", &sim, None).await;
    delay_writes(&sim, 150);
    let tally = Tally::new("replicas_identical_imports");
    const N: usize = 50;

    // With one Idempotency-Key: the first request runs, the others are
    // answered with its stored 202 or, while it is being recorded, 409.
    let body = json!({"host": "sim", "mode": "subscription", "verify": false,
        "upstream_keys": keys("dsk", 4)});
    let path = import_path("deepseek");
    let replies = futures::future::join_all((0..N).map(|i| {
        c.call(
            i % 2,
            "POST",
            &path,
            Some(body.clone()),
            Some("replicas-import-1"),
        )
    }))
    .await;
    let (mut ran, mut replayed, mut in_flight) = (0, 0, 0);
    let mut ops = std::collections::BTreeSet::new();
    for (i, r) in replies.iter().enumerate() {
        tally.trial();
        match (r.status, r.replayed) {
            (202, false) => ran += 1,
            (202, true) => replayed += 1,
            (409, _) if r.body["type"] == "/problems/idempotency-in-progress" => in_flight += 1,
            _ => tally.violation(format!(
                "keyed request {i} on replica-{}: {} {}",
                i % 2,
                r.status,
                r.body
            )),
        }
        if r.status == 202 {
            ops.insert(r.body["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    if ran != 1 || ops.len() != 1 {
        tally.violation(format!(
            "one key ran {ran} times as {} operations: {ops:?}",
            ops.len()
        ));
    }
    for op in &ops {
        // Polled on both replicas: an operation is shared.
        for i in 0..2 {
            let done = c.finish(i, op).await;
            if done["status"] != "succeeded" {
                tally.violation(format!("operation {op} on replica-{i}: {done}"));
            }
        }
    }

    // The clients answered 409 retry, each on the other replica: now the
    // stored 202 is replayed, naming the one operation.
    let retries = futures::future::join_all((0..in_flight).map(|i| {
        c.call(
            i % 2,
            "POST",
            &path,
            Some(body.clone()),
            Some("replicas-import-1"),
        )
    }))
    .await;
    let mut retried = 0;
    for (i, r) in retries.iter().enumerate() {
        tally.trial();
        let same = r.body["id"].as_str().is_some_and(|id| ops.contains(id));
        if r.status == 202 && r.replayed && same {
            retried += 1;
        } else {
            tally.violation(format!(
                "retry {i} on replica-{}: {} replayed={} {}",
                i % 2,
                r.status,
                r.replayed,
                r.body
            ));
        }
    }

    // Without a key: the (host, provider) lease shared in the database
    // decides; the losers are refused (409) or their operation fails
    // naming the holder, and re-imports after it find nothing to do.
    let body = json!({"host": "sim", "mode": "subscription", "verify": false,
        "upstream_keys": keys("kimi", 4)});
    let path = import_path("kimi");
    let replies = futures::future::join_all(
        (0..N).map(|i| c.call(i % 2, "POST", &path, Some(body.clone()), None)),
    )
    .await;
    let (mut accepted, mut busy) = (Vec::new(), 0);
    for (i, r) in replies.iter().enumerate() {
        tally.trial();
        match r.status {
            202 => accepted.push((i % 2, r.body["id"].as_str().unwrap_or_default().to_owned())),
            409 => busy += 1,
            _ => tally.violation(format!(
                "unkeyed request {i} on replica-{}: {} {}",
                i % 2,
                r.status,
                r.body
            )),
        }
    }
    let (mut succeeded, mut lost_race) = (0, 0);
    for (i, op) in &accepted {
        let done = c.finish(1 - i, op).await;
        match done["status"].as_str() {
            Some("succeeded") => succeeded += 1,
            Some("failed") if done.to_string().contains("held by") => lost_race += 1,
            _ => tally.violation(format!("unkeyed operation {op}: {done}")),
        }
    }
    if succeeded == 0 {
        tally.violation("no unkeyed import succeeded".to_owned());
    }

    let recorded = c.recorded(&host).await;
    for provider in ["deepseek", "kimi"] {
        let live = recorded
            .iter()
            .filter(|r| r.batch.provider.provider.as_str() == provider)
            .filter(|r| r.batch.status == BatchStatus::Applied)
            .count();
        if live != 1 {
            tally.violation(format!("{provider}: {live} applied batches, want 1"));
        }
    }
    let objects = invariants::crm_objects(&sim.state_dump()).len();
    for v in violations(&c, &sim, &host).await {
        tally.violation(v);
    }
    tally.finish(&format!(
        "keyed: ran={ran} replayed={replayed} in_flight_409={in_flight} then_replayed={retried}; unkeyed: accepted={} \
         refused_409={busy} succeeded={succeeded} lost_lease_race={lost_race}; host objects={objects} ({} ms)",
        accepted.len(),
        started.elapsed().as_millis()
    ));
}

/// One resume attempt on a replica, waited for.
struct Attempt {
    started: chrono::DateTime<chrono::Utc>,
    ended: chrono::DateTime<chrono::Utc>,
    status: Option<String>,
    error: String,
}

async fn resume(c: &Cluster, i: usize, batch: &str, keys: &[String]) -> Attempt {
    let started = chrono::Utc::now();
    let r = c
        .call(
            i,
            "POST",
            &format!("/api/import-batches/{batch}/resume?wait=true"),
            Some(json!({"upstream_keys": keys})),
            None,
        )
        .await;
    let op = match (r.status, r.body["id"].as_str()) {
        (202, Some(id)) => c.finish(i, id).await,
        _ => r.body.clone(),
    };
    Attempt {
        started,
        ended: chrono::Utc::now(),
        status: op
            .pointer("/result/batch/status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        error: format!("{} {}", r.status, op["error"]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_lease_holder_lets_the_other_replica_resume_after_expiry_not_before() {
    let test = "sigkill_of_the_lease_holder_lets_the_other_replica_resume_after_expiry_not_before";
    let Some(url) = pg_url(test) else { return };
    const TTL: u64 = 3;
    let budget = Budget::from_env();
    let mut rng = StdRng::seed_from_u64(budget.seed ^ 0x2E91);
    let sims: Vec<SimHandle> =
        futures::future::join_all((0..budget.crash_trials).map(|_| sim())).await;
    let via = sims[0].upstream_prefix();
    let mut c = Cluster::start(&url, |_, o| {
        o.upstream_via = Some(via.clone());
        o.env.push(("CRM_LEASE_TTL_SECS".into(), TTL.to_string()));
    })
    .await;
    c.install_pack().await;
    let tally = Tally::new("replicas_lease_takeover");
    let mut table = Vec::new();
    let mut early_refusals = 0;
    for (trial, sim) in sims.iter().enumerate() {
        let started = Instant::now();
        let name = format!("sim{trial}");
        let host = c.add_host(&name, sim, None).await;
        // Probed first, so the host writes counted below are the import's.
        let probed = c
            .call(0, "POST", &format!("/api/hosts/{name}/probe"), None, None)
            .await;
        assert_eq!(probed.status, 200, "{}", probed.body);
        // Each host write waits, so the kill lands between a write's
        // journal intent and its answer; well below the TTL, as the import
        // heartbeats only between its steps.
        delay_writes(sim, 300);
        let victim = trial % 2;
        let other = 1 - victim;
        let upstream = keys(&format!("t{trial}"), 4);
        let before = writes(sim);
        let kill_at = before + rng.random_range(1..=5);
        let r = c
            .call(
                victim,
                "POST",
                &import_path("deepseek"),
                Some(
                    json!({"host": name, "mode": "subscription", "verify": false,
                    "upstream_keys": upstream}),
                ),
                None,
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Polling the simulator: the point is to stop the replica at a
        // chosen host write, not to wait for it.
        while writes(sim) < kill_at && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let lease = c.leases(&host).await.into_iter().next();
        let victim_pid = c.server(victim).pid();
        c.kill(victim);
        let killed_after = writes(sim) - before;
        tally.trial();
        let Some(lease) = lease else {
            let op = r.body["id"].as_str().unwrap_or_default();
            let seen = c
                .call(other, "GET", &format!("/api/operations/{op}"), None, None)
                .await;
            tally.violation(format!(
                "trial {trial}: no lease on {name} at host write {killed_after}; operation: {}; host requests: {:?}",
                seen.body,
                sim.requests().iter().map(|r| format!("{} {} {:?}", r.method, r.path, r.status)).collect::<Vec<_>>()
            ));
            c.restart(victim);
            continue;
        };
        if !lease.holder.contains(&format!("pid {victim_pid}@"))
            || !lease.holder.contains(&format!("replica-{victim}"))
        {
            tally.violation(format!(
                "trial {trial}: the lease is held by {:?}, not the killed replica-{victim}",
                lease.holder
            ));
        }
        let batch = c
            .recorded(&host)
            .await
            .into_iter()
            .next()
            .expect("the killed import left its batch")
            .batch
            .id
            .to_string();

        // The survivor tries at once and then every half second: refused
        // while the dead replica's lease lives, resumed once it expired.
        // Its last heartbeat may have come after the look above.
        let lease = c
            .leases(&host)
            .await
            .into_iter()
            .find(|l| l.id == lease.id)
            .unwrap_or(lease);
        let expires = lease.expires_at;
        let pending = c
            .store
            .pending_intents(None)
            .await
            .expect("pending intents")
            .len();
        let mut attempts = Vec::new();
        let resumed = loop {
            let a = resume(&c, other, &batch, &upstream).await;
            let done = a.status.as_deref() == Some("applied");
            attempts.push(a);
            if done || attempts.len() > 40 {
                break done;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for a in &attempts {
            let ok = a.status.as_deref() == Some("applied");
            if ok && a.ended < expires {
                tally.violation(format!(
                    "trial {trial}: replica-{other} resumed at {} before the lease of replica-{victim} expired at {expires}",
                    a.ended
                ));
            }
            if !ok && a.ended < expires {
                early_refusals += 1;
                if !a.error.contains("held by") {
                    tally.violation(format!(
                        "trial {trial}: an early resume failed for another reason: {}",
                        a.error
                    ));
                }
            }
            if !ok && a.started > expires + chrono::Duration::seconds(1) {
                tally.violation(format!(
                    "trial {trial}: resume after the lease expired at {expires} failed: {}",
                    a.error
                ));
            }
        }
        if !resumed {
            tally.violation(format!(
                "trial {trial}: replica-{other} never resumed {batch}"
            ));
        }
        sim.clear_faults();
        for v in violations(&c, sim, &host).await {
            tally.violation(format!(
                "trial {trial} (killed after {killed_after} writes): {v}"
            ));
        }
        let waited = attempts
            .iter()
            .find(|a| a.status.as_deref() == Some("applied"))
            .map(|a| (a.started - lease.heartbeat_at).num_milliseconds());
        table.push(format!(
            "trial {trial}: replica-{victim} killed after {killed_after} host writes, {pending} intents pending; \
             replica-{other}: {} attempts, resumed {waited:?} ms after the last heartbeat (TTL {TTL} s) ({} ms)",
            attempts.len(),
            started.elapsed().as_millis()
        ));
        c.restart(victim);
    }
    eprintln!("{}", table.join("\n"));
    tally.finish(&format!(
        "seed={} ttl_secs={TTL} refused_before_expiry={early_refusals}",
        budget.seed
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_runs_each_of_twenty_hosts_once_per_interval_across_replicas() {
    let test = "the_scheduler_runs_each_of_twenty_hosts_once_per_interval_across_replicas";
    let Some(url) = pg_url(test) else { return };
    const HOSTS: usize = 20;
    const EVERY: u64 = 5;
    const TICK: u64 = 1;
    let sim = sim().await;
    let mut c = Cluster::start(&url, |_, o| {
        o.upstream_via = Some(sim.upstream_prefix());
        o.scheduler = true;
        o.env
            .push(("CRM_SCHEDULER_TICK_SECS".into(), TICK.to_string()));
    })
    .await;
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        hosts.push(c.add_host(&format!("h{i:02}"), &sim, Some(EVERY)).await);
    }
    let t0 = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(3 * EVERY)).await;
    let before = [scheduled_runs(&c, 0).await, scheduled_runs(&c, 1).await];
    // Which replica wins a host's lease depends on the phase of its timer,
    // so one may run most hosts: kill that one, so the survivor must take
    // over hosts it was not running.
    let victim = if before[0] >= before[1] { 0 } else { 1 };
    let other = 1 - victim;
    let killed_at = chrono::Utc::now();
    c.kill(victim);
    tokio::time::sleep(Duration::from_secs(4 * EVERY)).await;
    let t_end = chrono::Utc::now();
    let survivor = scheduled_runs(&c, other).await;

    let tally = Tally::new("replicas_scheduler");
    if before[victim] == 0 {
        tally.violation("no scheduled reconcile ran before the kill".to_owned());
    }
    let every = chrono::Duration::milliseconds((EVERY * 1000) as i64);
    // Slack for a run's own length and a loaded machine.
    let slack = chrono::Duration::milliseconds(2000);
    let tick = chrono::Duration::milliseconds((TICK * 1000) as i64);
    // Up to 10% jitter, one tick of lateness, the run itself.
    let normal = every + every / 10 + tick + slack;
    // The survivor saw the host busy less than an interval before the dead
    // replica's lease expired, and looks again one interval later.
    let takeover = every * 2 + tick + slack;
    let (mut runs, mut max_gap, mut min_gap) = (0usize, chrono::Duration::zero(), every * 100);
    for h in &hosts {
        let mut at: Vec<_> = c
            .store
            .runs_for_host(h, 1000)
            .await
            .expect("runs")
            .into_iter()
            .filter(|r| r.scope.batch_id.is_none() && r.scope.provider.is_none())
            .map(|r| r.started_at)
            .filter(|t| *t >= t0 && *t <= t_end)
            .collect();
        at.sort();
        runs += at.len();
        tally.trial();
        if at.is_empty() {
            tally.violation(format!("host {h}: never reconciled"));
            continue;
        }
        for w in at.windows(2) {
            let gap = w[1] - w[0];
            max_gap = max_gap.max(gap);
            min_gap = min_gap.min(gap);
            if gap < every - chrono::Duration::milliseconds(500) {
                tally.violation(format!(
                    "host {h}: reconciled twice in one interval ({} and {})",
                    w[0], w[1]
                ));
            }
            let spans_kill = w[0] <= killed_at && w[1] >= killed_at;
            let bound = if spans_kill { takeover } else { normal };
            if gap > bound {
                tally.violation(format!(
                    "host {h}: skipped: {} ms between runs at {} and {}{}",
                    gap.num_milliseconds(),
                    w[0],
                    w[1],
                    if spans_kill { " (across the kill)" } else { "" }
                ));
            }
        }
        let last = *at.last().expect("runs");
        if t_end - last > normal {
            tally.violation(format!("host {h}: not reconciled since {last}"));
        }
        if !at.iter().any(|t| *t > killed_at + takeover / 2) {
            tally.violation(format!("host {h}: no run on the survivor after the kill"));
        }
    }
    tally.finish(&format!(
        "hosts={HOSTS} interval_secs={EVERY} tick_secs={TICK} runs={runs} \
         min_gap_ms={} max_gap_ms={} (replica-{victim} killed after {} s of {} s; runs before the kill: \
         replica-0={} replica-1={}, after: replica-{other}={})",
        min_gap.num_milliseconds(),
        max_gap.num_milliseconds(),
        (killed_at - t0).num_seconds(),
        (t_end - t0).num_seconds(),
        before[0],
        before[1],
        survivor - before[other]
    ));
}

/// Reconciles replica `i`'s scheduler ran (not found busy), from its
/// `crm_scheduler_runs_total` counters.
async fn scheduled_runs(c: &Cluster, i: usize) -> u64 {
    let r = c.call(i, "GET", "/metrics", None, None).await;
    let text = r.body.as_str().unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("crm_scheduler_runs_total{"))
        .filter(|l| !l.contains("outcome=\"busy\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
