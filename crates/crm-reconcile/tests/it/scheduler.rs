//! The scheduler driver over real ports with a controllable clock: two
//! hosts, their intervals, no overlapping runs, busy hosts skipped, one
//! event for one drift transition, and the quota-limited re-check rule.

use crate::env::World;
use async_trait::async_trait;
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::HostRecord;
use crm_domain::ports::{Clock, HostApi, HostError, HostRepo, LeaseRepo};
use crm_domain::{HostId, ReconcileStatus};
use crm_reconcile::schedule::{
    AccessRecheck, EventSink, HostOpener, Outcome, RecheckPlan, ScheduleConfig, Scheduler,
    SchedulerDriver, StatusChange,
};
use crm_sim::{Profile, SimConfig, SimServer};
use crm_sub2api::Sub2apiConnector;
use crm_testkit::{admin_key, sim_key};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Events(Mutex<Vec<StatusChange>>);

#[async_trait]
impl EventSink for Events {
    async fn status_changed(&self, change: &StatusChange) {
        self.0.lock().unwrap().push(change.clone());
    }
}

/// Opens pre-connected hosts and counts how many runs are open per host at once.
struct Opener {
    hosts: BTreeMap<HostId, Arc<dyn HostApi>>,
}

#[async_trait]
impl HostOpener for Opener {
    async fn open(&self, host: &HostRecord) -> Result<Arc<dyn HostApi>, HostError> {
        self.hosts
            .get(&host.id)
            .cloned()
            .ok_or_else(|| HostError::Unreachable {
                detail: format!("no connection for {}", host.id),
            })
    }
}

#[derive(Default)]
struct Rechecks(Mutex<Vec<(String, bool)>>);

#[async_trait]
impl AccessRecheck for Rechecks {
    async fn recheck(
        &self,
        _host: &HostRecord,
        _api: &dyn HostApi,
        batch: &ImportBatch,
        plan: RecheckPlan,
    ) -> Option<AccessCheck> {
        self.0
            .lock()
            .unwrap()
            .push((batch.provider.to_string(), plan.skip_completion));
        // DeepSeek's key stopped working: the re-check says so.
        (batch.provider.provider.as_str() == "deepseek").then(|| AccessCheck {
            id: crm_domain::AccessCheckId::new("ac-1"),
            batch_id: batch.id.clone(),
            mode: batch.mode,
            checked_at: chrono::Utc::now(),
            verdict: crm_domain::Verdict::Fail,
            failure_class: Some(crm_domain::FailureClass::UpstreamKeyInvalid),
            summary: "the completion failed: upstream key rejected".into(),
            steps: vec![],
        })
    }
}

struct Setup {
    w: World,
    driver: SchedulerDriver,
    events: Arc<Events>,
    a: HostId,
    b: HostId,
    _sim_b: crm_sim::SimHandle,
}

async fn setup(recheck: Option<Arc<dyn AccessRecheck>>) -> Setup {
    let w = World::current().await;
    let a = w.env.host_record.id.clone();
    w.env
        .store
        .set_reconcile_interval(&a, Some(60))
        .await
        .unwrap();
    // A second host on its own simulator, every five minutes.
    let sim_b = SimServer::start(SimConfig::with_profile(Profile::current()))
        .await
        .unwrap();
    let mut rec_b = HostRecord {
        id: HostId::new("h-b"),
        name: "second".into(),
        base_url: sim_b.base_url(),
        reconcile_every_secs: Some(300),
        ..w.env.host_record.clone()
    };
    let api_b = Sub2apiConnector::default()
        .open(&rec_b, admin_key(&sim_b))
        .unwrap();
    rec_b.capabilities = Some(api_b.probe().await.unwrap());
    w.env.store.add_host(rec_b.clone()).await.unwrap();
    let events = Arc::new(Events::default());
    let opener = Opener {
        hosts: BTreeMap::from([
            (a.clone(), w.env.host_api()),
            (rec_b.id.clone(), Arc::new(api_b) as Arc<dyn HostApi>),
        ]),
    };
    let driver = SchedulerDriver {
        sched: Mutex::new(Scheduler::new(ScheduleConfig::default())),
        ports: w.ports.clone(),
        hosts: Arc::new(w.env.store.clone()),
        packs: Arc::new(w.env.store.clone()),
        opener: Arc::new(opener),
        events: events.clone(),
        recheck,
        holder: "test-scheduler".into(),
        schedule_lease: false,
    };
    Setup {
        w,
        driver,
        events,
        a,
        b: rec_b.id,
        _sim_b: sim_b,
    }
}

fn ran(reports: &[crm_reconcile::schedule::TickReport]) -> Vec<(HostId, ReconcileStatus)> {
    reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Ran { status, .. } => Some((r.host.clone(), *status)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn intervals_no_overlap_and_one_event_per_drift_transition() {
    let s = setup(None).await;
    let ds = s.w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    let jitter = Scheduler::new(ScheduleConfig::default());
    let (ja, jb) = (
        jitter.jitter(&s.a, Duration::from_secs(60)),
        jitter.jitter(&s.b, Duration::from_secs(300)),
    );
    let start = s.w.clock.now();

    // Ten-second ticks for twenty minutes; the drift appears after eight.
    let mut runs: BTreeMap<HostId, Vec<i64>> = BTreeMap::new();
    for step in 0..=120 {
        if step == 48 {
            s.w.env
                .sim
                .delete_object("accounts", ds.accounts[0].0)
                .unwrap();
        }
        // Two ticks at the same instant: a host still runs once.
        let (r1, r2) = tokio::join!(s.driver.tick(), s.driver.tick());
        for (host, _) in ran(&r1.unwrap()).into_iter().chain(ran(&r2.unwrap())) {
            runs.entry(host)
                .or_default()
                .push((s.w.clock.now() - start).num_seconds());
        }
        s.w.clock.advance(Duration::from_secs(10));
    }
    for (host, every, jit) in [(&s.a, 60, ja), (&s.b, 300, jb)] {
        let times = &runs[host];
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap > 0, "{host} ran twice at {}", pair[0]);
            assert!(
                gap >= every && gap <= every + jit.as_secs() as i64 + 10,
                "{host}: gap {gap}s for an interval of {every}s (+{jit:?} jitter): {times:?}"
            );
        }
        println!("{host} ran at {times:?}");
    }
    assert!(runs[&s.a].len() >= 17 && runs[&s.b].len() >= 4, "{runs:?}");

    let events = s.events.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0].host, events[0].from, events[0].to),
        (
            &s.a,
            Some(ReconcileStatus::InSync),
            ReconcileStatus::Drifted
        )
    );
    assert!(events[0].is_new_drift());
}

#[tokio::test]
async fn hosts_with_an_apply_in_progress_are_skipped() {
    let s = setup(None).await;
    // The first tick registers the hosts (each first runs after its jitter).
    s.driver.tick().await.unwrap();
    let provider = s.w.env.provider_ref("deepseek");
    let lease =
        s.w.env
            .store
            .acquire_lease(
                &crm_domain::ops::Lease::provider_scope(&s.a, &provider),
                "import",
                "import",
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
    s.w.clock.advance(Duration::from_secs(400));
    let reports = s.driver.tick().await.unwrap();
    let a = reports.iter().find(|r| r.host == s.a).unwrap();
    assert!(matches!(a.outcome, Outcome::Busy { .. }), "{:?}", a.outcome);
    assert!(
        crm_domain::ports::ReconcileRepo::latest_for_host(&s.w.env.store, &s.a)
            .await
            .unwrap()
            .is_none(),
        "a busy host gets no run"
    );
    s.w.env.store.release_lease(&lease.id).await.unwrap();
    s.w.clock.advance(Duration::from_secs(60));
    let reports = s.driver.tick().await.unwrap();
    assert_eq!(ran(&reports), [(s.a.clone(), ReconcileStatus::InSync)]);
}

#[tokio::test]
async fn quota_limited_providers_are_rechecked_without_a_completion() {
    let hook = Arc::new(Rechecks::default());
    let s = setup(Some(hook.clone())).await;
    s.w.import("deepseek", &[sim_key("ok", "ds1")]).await;
    s.w.import_in(
        "zhipu-coding",
        crm_domain::AccessMode::Subscription,
        &[sim_key("ok", "z1")],
    )
    .await;
    s.driver.tick().await.unwrap();
    s.w.clock.advance(Duration::from_secs(400));
    let reports = s.driver.tick().await.unwrap();
    let a = reports.iter().find(|r| r.host == s.a).unwrap();
    assert!(
        matches!(
            a.outcome,
            Outcome::Ran {
                status: ReconcileStatus::Drifted,
                items: 1,
                ..
            }
        ),
        "{:?}",
        a.outcome
    );
    let run = crm_domain::ports::ReconcileRepo::latest_for_host(&s.w.env.store, &s.a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run.items[0].category,
        crm_domain::DriftCategory::AccessBroken
    );
    assert_eq!(
        run.items[0].detail,
        "the completion failed: upstream key rejected"
    );
    let mut seen = hook.0.lock().unwrap().clone();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            ("cn-official/deepseek".to_owned(), false),
            ("cn-official/zhipu-coding".to_owned(), true),
        ]
    );
}

/// Two schedulers sharing one store (replicas) with schedule leases: each
/// host runs once per interval across both, never twice; when one stops
/// (its replica died), the other keeps every host on schedule.
#[tokio::test]
async fn replicas_run_each_host_once_per_interval_and_survive_one_dying() {
    let s = setup(None).await;
    // Leases are judged by the store's clock: a second store on the same
    // file, on the test's clock, is what both replicas share.
    let path = s.w.env.store.path().unwrap().to_owned();
    let shared = Arc::new(
        crm_store::SqliteStore::open(
            &path,
            crm_store::StoreOptions::default().with_clock(s.w.clock.clone()),
        )
        .await
        .unwrap(),
    );
    let ports =
        crm_reconcile::Ports::from_storage(shared.clone(), s.w.clock.clone(), s.w.env.ids.clone());
    let replica = |name: &str| SchedulerDriver {
        sched: Mutex::new(Scheduler::new(ScheduleConfig::default())),
        ports: ports.clone(),
        hosts: shared.clone(),
        packs: shared.clone(),
        opener: s.driver.opener.clone(),
        events: s.events.clone(),
        recheck: None,
        holder: format!("{name} (pid 1@{name})"),
        schedule_lease: true,
    };
    let (r1, r2) = (replica("r1"), replica("r2"));
    let start = s.w.clock.now();
    let mut runs: BTreeMap<HostId, Vec<i64>> = BTreeMap::new();
    // Ten-second ticks for thirty minutes; r1 dies after ten.
    for step in 0..=180 {
        let t = (s.w.clock.now() - start).num_seconds();
        let reports = if step < 60 {
            let (a, b) = tokio::join!(r1.tick(), r2.tick());
            let mut all = a.unwrap();
            all.extend(b.unwrap());
            all
        } else {
            r2.tick().await.unwrap()
        };
        for (host, _) in ran(&reports) {
            runs.entry(host).or_default().push(t);
        }
        s.w.clock.advance(Duration::from_secs(10));
    }
    let busy_retry = ScheduleConfig::default().busy_retry.as_secs() as i64;
    let mut violations = 0;
    for (host, every) in [(&s.a, 60i64), (&s.b, 300)] {
        let times = &runs[host];
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            // Never twice in one interval; never a missed interval (the
            // slack is the loser's busy retry, jitter and one tick).
            if gap < every || gap > every + every / 10 + busy_retry + 20 {
                violations += 1;
                println!("{host}: gap {gap}s for an interval of {every}s");
            }
        }
        println!("{host} ran at {times:?}");
    }
    let trials: usize = runs.values().map(Vec::len).sum();
    println!("replica scheduler: trials {trials}, violations {violations}");
    assert_eq!(violations, 0, "{runs:?}");
    assert!(runs[&s.a].len() >= 25 && runs[&s.b].len() >= 5, "{runs:?}");
}
