//! Scheduling logic the server runs: which hosts are due, and what a finished
//! run means for the next one.
//!
//! [`Scheduler`] is pure state over an injected "now": per-host interval plus
//! a jitter that is deterministic per host (hosts registered together do not
//! all fire together, and a restart keeps each host's phase), at most one run
//! per host at a time, exponential backoff for unreachable hosts, a short
//! retry for hosts with an apply in progress, and status transitions.
//!
//! [`SchedulerDriver::tick`] drives it over the ports: it skips hosts whose
//! provider leases show an import in progress, asks an optional
//! [`AccessRecheck`] hook (telling it to skip the completion smoke for
//! providers whose pack marks them `quota_limited`), runs a host-scope
//! reconcile under the host lease, and hands every status change to an
//! [`EventSink`] (the server logs it, counts it and may post a webhook),
//! and every funds crossing too: a provider going below a funds or quota
//! threshold, or back above, is told once, not on every run (issue 20).
//! The server owns the loop and the timer; this module owns no runtime.

use crate::error::{ReconcileError, Result};
use crate::run::{self, Ports, RunOptions};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::funds::{Crossing, ProviderFunds, crossing};
use crm_domain::host::HostRecord;
use crm_domain::ops::Lease;
use crm_domain::ports::{HostApi, HostError, HostRepo, PackRepo};
use crm_domain::reconcile::{ReconcileRun, ReconcileScope};
use crm_domain::{HostId, ProviderRef, ReconcileRunId, ReconcileStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tunables of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Largest jitter, as a fraction of the host's interval (0.1 = up to 10% later).
    pub jitter: f64,
    /// Ceiling of the backoff for unreachable hosts.
    pub max_backoff: Duration,
    /// When a host is busy (an import holds its lease), look again after this.
    pub busy_retry: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            jitter: 0.1,
            max_backoff: Duration::from_secs(6 * 3600),
            busy_retry: Duration::from_secs(60),
        }
    }
}

/// One host to schedule and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSchedule {
    pub host: HostId,
    pub every: Duration,
}

impl HostSchedule {
    /// Hosts with a reconcile interval; hosts without one are not scheduled.
    pub fn from_records(hosts: &[HostRecord]) -> Vec<HostSchedule> {
        hosts
            .iter()
            .filter_map(|h| {
                h.reconcile_every_secs
                    .filter(|s| *s > 0)
                    .map(|s| HostSchedule {
                        host: h.id.clone(),
                        every: Duration::from_secs(s),
                    })
            })
            .collect()
    }
}

/// How one scheduled attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A run was made and persisted.
    Ran {
        run_id: ReconcileRunId,
        status: ReconcileStatus,
        items: usize,
    },
    /// An import (or another run) held the host; nothing was observed.
    Busy { holder: String },
    /// No run could be made or persisted (store failure, unknown host).
    Failed { error: String },
}

/// A change of a host's reconcile status, delivered to an [`EventSink`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusChange {
    pub host: HostId,
    /// `None` on the first run crm ever made of this host.
    pub from: Option<ReconcileStatus>,
    pub to: ReconcileStatus,
    pub run_id: ReconcileRunId,
    pub items: usize,
    pub at: DateTime<Utc>,
}

impl StatusChange {
    /// The transition operators most want to hear about.
    pub fn is_new_drift(&self) -> bool {
        self.to == ReconcileStatus::Drifted && self.from != Some(ReconcileStatus::Drifted)
    }
}

/// A provider whose funds crossed a threshold on a host, delivered to an
/// [`EventSink`] once per crossing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FundsCrossing {
    /// Always `funds_crossing` (tells a webhook receiver this from a
    /// [`StatusChange`]).
    pub event: &'static str,
    pub host: HostId,
    pub provider: ProviderRef,
    /// `below` (a threshold, or cannot pay) or `recovered`.
    pub crossing: Crossing,
    /// The provider's funds after the run (per provider, never per key).
    pub funds: ProviderFunds,
    pub run_id: ReconcileRunId,
    pub at: DateTime<Utc>,
}

/// Where status changes go (the server: log + metric + optional webhook).
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn status_changed(&self, change: &StatusChange);
    /// A provider's funds crossed a threshold (once per crossing).
    async fn funds_crossed(&self, _crossing: &FundsCrossing) {}
}

/// What an access re-check may do for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecheckPlan {
    /// The provider's pack marks it `quota_limited`: list models only, do not
    /// spend upstream quota on a completion.
    pub skip_completion: bool,
}

/// The optional access re-check the application implements (with crm-access).
#[async_trait]
pub trait AccessRecheck: Send + Sync {
    /// Re-checks access of one live batch; `None` when there is nothing to check.
    async fn recheck(
        &self,
        host: &HostRecord,
        api: &dyn HostApi,
        batch: &ImportBatch,
        plan: RecheckPlan,
    ) -> Option<AccessCheck>;
}

/// Opens the host port of a registered host (the application resolves its
/// admin credential and connects).
#[async_trait]
pub trait HostOpener: Send + Sync {
    async fn open(&self, host: &HostRecord) -> std::result::Result<Arc<dyn HostApi>, HostError>;
}

#[derive(Debug, Clone, PartialEq)]
struct HostState {
    every: Duration,
    next_due: DateTime<Utc>,
    running: bool,
    last_status: Option<ReconcileStatus>,
    /// When the last attempt ended (the base of an interval change).
    last_at: Option<DateTime<Utc>>,
    unreachable_streak: u32,
}

/// Pure schedule state. Time is always passed in.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    cfg: ScheduleConfig,
    hosts: BTreeMap<HostId, HostState>,
    /// The last judged funds state (below or not) of each (host, provider)
    /// this process saw: bridges runs whose readings could not be judged.
    funds: BTreeMap<(HostId, ProviderRef), bool>,
}

/// FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Scheduler {
    pub fn new(cfg: ScheduleConfig) -> Self {
        Scheduler {
            cfg,
            hosts: BTreeMap::new(),
            funds: BTreeMap::new(),
        }
    }

    /// This host's jitter for an interval: a fixed fraction of the allowed
    /// window, chosen by hashing the host id.
    pub fn jitter(&self, host: &HostId, every: Duration) -> Duration {
        let frac = (stable_hash(host.as_str()) % 10_000) as f64 / 10_000.0;
        every.mul_f64(self.cfg.jitter.clamp(0.0, 1.0) * frac)
    }

    /// Remembers the last status persisted for a host (e.g. from
    /// `ReconcileRepo::latest_for_host` after a restart), so the first run
    /// after a restart is not mistaken for a change.
    pub fn seed(&mut self, host: &HostId, last: Option<ReconcileStatus>) {
        if let Some(s) = self.hosts.get_mut(host) {
            s.last_status = last;
        }
    }

    /// Whether a host is known to the schedule (registered by [`Scheduler::due`]).
    pub fn knows(&self, host: &HostId) -> bool {
        self.hosts.contains_key(host)
    }

    /// Registers new hosts (first run after their jitter), forgets removed
    /// ones, and returns the hosts due at `now` that are not running, most
    /// overdue first.
    pub fn due(&mut self, now: DateTime<Utc>, hosts: &[HostSchedule]) -> Vec<HostId> {
        self.hosts
            .retain(|id, _| hosts.iter().any(|h| h.host == *id));
        self.funds
            .retain(|(id, _), _| hosts.iter().any(|h| h.host == *id));
        for h in hosts {
            let jitter = self.jitter(&h.host, h.every);
            let state = self.hosts.entry(h.host.clone()).or_insert(HostState {
                every: h.every,
                next_due: add(now, jitter),
                running: false,
                last_status: None,
                last_at: None,
                unreachable_streak: 0,
            });
            if state.every != h.every {
                // A shorter interval counts from the last run, not from the old due time.
                state.every = h.every;
                let base = state.last_at.unwrap_or(now);
                state.next_due = state.next_due.min(add(base, h.every + jitter));
            }
        }
        let mut due: Vec<(&HostId, &HostState)> = self
            .hosts
            .iter()
            .filter(|(_, s)| !s.running && s.next_due <= now)
            .collect();
        due.sort_by(|a, b| (a.1.next_due, a.0).cmp(&(b.1.next_due, b.0)));
        due.into_iter().map(|(id, _)| id.clone()).collect()
    }

    /// Marks a run as started. `false` if the host is unknown or already running.
    pub fn begin(&mut self, host: &HostId) -> bool {
        match self.hosts.get_mut(host) {
            Some(s) if !s.running => {
                s.running = true;
                true
            }
            _ => false,
        }
    }

    /// When a host is due next.
    pub fn next_due(&self, host: &HostId) -> Option<DateTime<Utc>> {
        self.hosts.get(host).map(|s| s.next_due)
    }

    /// The last status recorded for a host.
    pub fn last_status(&self, host: &HostId) -> Option<ReconcileStatus> {
        self.hosts.get(host).and_then(|s| s.last_status)
    }

    /// Whether a provider's funds crossed a threshold in a run. `stored` is
    /// what the stored readings said before the run (so a restart or another
    /// replica changes nothing), `now` what they say after it; `None` means
    /// they could not be judged (unknown or unsupported readings), and then
    /// the last judged state this process saw stands in, so a route failing
    /// for one run does not make the next `below` a new crossing.
    pub fn funds_crossing(
        &mut self,
        host: &HostId,
        provider: &ProviderRef,
        stored: Option<bool>,
        now: Option<bool>,
    ) -> Option<Crossing> {
        let key = (host.clone(), provider.clone());
        let before = stored.or_else(|| self.funds.get(&key).copied());
        if let Some(n) = now.or(before) {
            self.funds.insert(key, n);
        }
        crossing(before, now)
    }

    /// Records how an attempt ended, schedules the next one and returns the
    /// status change, if any. The first run of a host is a change only when
    /// it is not `in_sync` (an operator wants to hear about drift found at start).
    pub fn record(
        &mut self,
        host: &HostId,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Option<StatusChange> {
        let jitter = {
            let every = self.hosts.get(host)?.every;
            self.jitter(host, every)
        };
        let cfg = self.cfg.clone();
        let s = self.hosts.get_mut(host)?;
        s.running = false;
        s.last_at = Some(now);
        match outcome {
            Outcome::Busy { .. } => {
                s.next_due = add(now, cfg.busy_retry.min(s.every));
                None
            }
            Outcome::Failed { .. } => {
                s.next_due = add(now, s.every + jitter);
                None
            }
            Outcome::Ran {
                run_id,
                status,
                items,
            } => {
                if *status == ReconcileStatus::Unreachable {
                    s.unreachable_streak = s.unreachable_streak.saturating_add(1);
                    let factor = 2u32.saturating_pow(s.unreachable_streak.min(16));
                    let backoff = s
                        .every
                        .saturating_mul(factor)
                        .min(cfg.max_backoff.max(s.every));
                    s.next_due = add(now, backoff + jitter);
                } else {
                    s.unreachable_streak = 0;
                    s.next_due = add(now, s.every + jitter);
                }
                let from = s.last_status.replace(*status);
                let changed = match from {
                    Some(f) => f != *status,
                    None => *status != ReconcileStatus::InSync,
                };
                changed.then(|| StatusChange {
                    host: host.clone(),
                    from,
                    to: *status,
                    run_id: run_id.clone(),
                    items: *items,
                    at: now,
                })
            }
        }
    }
}

/// What one tick did for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    pub host: HostId,
    pub outcome: Outcome,
    pub change: Option<StatusChange>,
    /// Providers whose funds crossed a threshold in this run.
    pub funds: Vec<FundsCrossing>,
}

/// The scope of a host's schedule lease (see [`SchedulerDriver::schedule_lease`]).
pub fn schedule_scope(host: &HostId) -> String {
    format!("schedule:{host}")
}

/// Drives a [`Scheduler`] over the ports. The server calls [`Self::tick`]
/// on its own timer (e.g. every few seconds); each call runs the hosts due.
pub struct SchedulerDriver {
    pub sched: Mutex<Scheduler>,
    pub ports: Ports,
    pub hosts: Arc<dyn HostRepo>,
    pub packs: Arc<dyn PackRepo>,
    pub opener: Arc<dyn HostOpener>,
    pub events: Arc<dyn EventSink>,
    pub recheck: Option<Arc<dyn AccessRecheck>>,
    /// Lease holder name, e.g. `crm-server@<hostname>`.
    pub holder: String,
    /// Take a per-host schedule lease (`schedule:<host id>`, held for one
    /// interval and never released) before each run, so that of several
    /// schedulers sharing one store (replicas on PostgreSQL) exactly one
    /// runs each host per interval, and a surviving one takes over when the
    /// interval of a dead one ends. The others see the host as busy.
    pub schedule_lease: bool,
}

impl std::fmt::Debug for SchedulerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerDriver")
            .field("holder", &self.holder)
            .field("recheck", &self.recheck.is_some())
            .finish()
    }
}

impl SchedulerDriver {
    /// Runs every due host once (concurrently across hosts, never twice for
    /// one host) and returns what happened.
    pub async fn tick(&self) -> Result<Vec<TickReport>> {
        let now = self.ports.clock.now();
        let records = self.hosts.list_hosts().await?;
        let plans = HostSchedule::from_records(&records);
        let due = {
            let mut s = self.lock();
            let due = s.due(now, &plans);
            due.into_iter().filter(|h| s.begin(h)).collect::<Vec<_>>()
        };
        let mut reports = Vec::new();
        let records = &records;
        let runs = due.iter().map(|id| async move {
            let record = records.iter().find(|h| h.id == *id);
            let (outcome, funds) = match record {
                Some(h) => {
                    let before = self.funds_states(h).await;
                    let outcome = self.attempt(h).await;
                    let funds = match &outcome {
                        Outcome::Ran { run_id, .. } => {
                            self.funds_crossings(h, before, run_id).await
                        }
                        _ => vec![],
                    };
                    (outcome, funds)
                }
                None => (
                    Outcome::Failed {
                        error: format!("host {id} disappeared"),
                    },
                    vec![],
                ),
            };
            (id.clone(), outcome, funds)
        });
        for (host, outcome, funds) in futures::future::join_all(runs).await {
            let change = self.lock().record(&host, &outcome, self.ports.clock.now());
            if let Some(c) = &change {
                tracing::info!(host = %c.host, from = ?c.from, to = %c.to, run = %c.run_id, "reconcile status changed");
                self.events.status_changed(c).await;
            }
            for f in &funds {
                tracing::info!(host = %f.host, provider = %f.provider, crossing = ?f.crossing, run = %f.run_id, "funds crossed a threshold");
                self.events.funds_crossed(f).await;
            }
            reports.push(TickReport {
                host,
                outcome,
                change,
                funds,
            });
        }
        Ok(reports)
    }

    /// What the stored readings say of each provider's funds on a host
    /// (nothing when the run takes no readings or the store fails: then no
    /// crossing is told this run).
    async fn funds_states(
        &self,
        host: &HostRecord,
    ) -> BTreeMap<ProviderRef, (ProviderFunds, Option<bool>)> {
        let Some(watch) = &self.ports.funds else {
            return BTreeMap::new();
        };
        match crate::funds::provider_states(watch, self.ports.batches.as_ref(), host).await {
            Ok(v) => v
                .into_iter()
                .map(|(p, b)| (p.provider.clone(), (p, b)))
                .collect(),
            Err(e) => {
                tracing::warn!(host = %host.id, error = %e, "could not read the stored funds readings");
                BTreeMap::new()
            }
        }
    }

    /// The providers whose funds crossed a threshold between `before` (the
    /// stored states before the run) and the states after it.
    async fn funds_crossings(
        &self,
        record: &HostRecord,
        before: BTreeMap<ProviderRef, (ProviderFunds, Option<bool>)>,
        run_id: &ReconcileRunId,
    ) -> Vec<FundsCrossing> {
        let after = self.funds_states(record).await;
        let host = &record.id;
        let at = self.ports.clock.now();
        let mut out = Vec::new();
        for (provider, (funds, now)) in after {
            let stored = before.get(&provider).and_then(|(_, b)| *b);
            let Some(c) = self.lock().funds_crossing(host, &provider, stored, now) else {
                continue;
            };
            out.push(FundsCrossing {
                event: "funds_crossing",
                host: host.clone(),
                provider,
                crossing: c,
                funds,
                run_id: run_id.clone(),
                at,
            });
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Scheduler> {
        // The state is plain data; a panic elsewhere cannot leave it half-written.
        self.sched.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn attempt(&self, host: &HostRecord) -> Outcome {
        match self.attempt_inner(host).await {
            Ok(run) => Outcome::Ran {
                run_id: run.id,
                status: run.status,
                items: run.items.len(),
            },
            Err(ReconcileError::Busy(e)) => Outcome::Busy {
                holder: e.to_string(),
            },
            Err(e) => Outcome::Failed {
                error: e.to_string(),
            },
        }
    }

    async fn attempt_inner(&self, host: &HostRecord) -> Result<ReconcileRun> {
        if !self.lock().knows(&host.id) {
            return Err(ReconcileError::UnknownScope(host.id.to_string()));
        }
        if self.lock().last_status(&host.id).is_none() {
            // Only host-scope runs say what the schedule last saw.
            let last = self
                .ports
                .runs
                .runs_for_host(&host.id, 50)
                .await?
                .into_iter()
                .find(|r| r.scope.batch_id.is_none() && r.scope.provider.is_none());
            self.lock().seed(&host.id, last.map(|r| r.status));
        }
        if self.schedule_lease
            && let Some(every) = host.reconcile_every_secs.filter(|s| *s > 0)
        {
            match self
                .ports
                .leases
                .acquire_lease(
                    &schedule_scope(&host.id),
                    &self.holder,
                    "scheduled reconcile",
                    std::time::Duration::from_secs(every),
                )
                .await
            {
                // Kept until it expires: it marks this interval as taken.
                Ok(_) => {}
                Err(e @ crm_domain::ports::StoreError::LeaseHeld { .. }) => {
                    return Err(ReconcileError::Busy(e));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Imports hold `host:<id>/provider:...`; reconcile waits for them.
        let applying = self
            .ports
            .leases
            .active_leases(&format!("{}/", Lease::host_scope(&host.id)))
            .await?;
        if let Some(l) = applying.first() {
            return Err(ReconcileError::Busy(
                crm_domain::ports::StoreError::LeaseHeld {
                    scope: l.scope.clone(),
                    holder: l.holder.clone(),
                    operation: l.operation.clone(),
                    lease_id: l.id.clone(),
                    expires_at: l.expires_at,
                },
            ));
        }
        let scope = ReconcileScope {
            host_id: host.id.clone(),
            batch_id: None,
            provider: None,
        };
        let api = match self.opener.open(host).await {
            Ok(api) => api,
            Err(e) => return self.unopened(host, scope, e).await,
        };
        let access = match &self.recheck {
            Some(hook) => self.rechecks(hook.as_ref(), host, api.as_ref()).await?,
            None => vec![],
        };
        let opts = RunOptions {
            holder: self.holder.clone(),
            access,
            funds: Default::default(),
        };
        run::reconcile(&self.ports, host, api.as_ref(), scope, opts).await
    }

    /// A host whose port cannot even be opened gets a persisted run too.
    async fn unopened(
        &self,
        host: &HostRecord,
        scope: ReconcileScope,
        e: HostError,
    ) -> Result<ReconcileRun> {
        let recorded = run::load_recorded(
            self.ports.batches.as_ref(),
            self.ports.packs.as_deref(),
            &scope,
            vec![],
        )
        .await?;
        let obs = run::Observation::Failed {
            status: run::classify_failure(&crm_provision::ProvisionError::Host(e.clone())),
            error: e.to_string(),
        };
        let (status, items) = run::assess(&recorded, &obs);
        let now = self.ports.clock.now();
        let run = ReconcileRun {
            id: ReconcileRunId::new(self.ports.ids.new_id("rr")),
            scope,
            status,
            started_at: now,
            finished_at: now,
            host_requests: 0,
            items,
            repaired: false,
            error: Some(format!("could not open host {}: {e}", host.name)),
        };
        self.ports.runs.save_run(run.clone()).await?;
        Ok(run)
    }

    async fn rechecks(
        &self,
        hook: &dyn AccessRecheck,
        host: &HostRecord,
        api: &dyn HostApi,
    ) -> Result<Vec<AccessCheck>> {
        let batches = self.ports.batches.live_batches(&host.id, None).await?;
        let mut checks = Vec::new();
        for b in &batches {
            let plan = RecheckPlan {
                skip_completion: self.quota_limited(b).await,
            };
            if let Some(c) = hook.recheck(host, api, b, plan).await {
                checks.push(c);
            }
        }
        Ok(checks)
    }

    /// Whether the batch's pack version marks its provider quota-limited.
    /// When the pack cannot be read, assume it is: a skipped completion costs
    /// nothing, a spent quota costs the operator.
    async fn quota_limited(&self, b: &ImportBatch) -> bool {
        match self
            .packs
            .get_pack(&b.provider.pack, Some(b.pack_version.clone()))
            .await
        {
            Ok(p) => p
                .manifest
                .provider(b.provider.provider.as_str())
                .is_none_or(|s| s.quota_limited),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn plan(host: &str, every: u64) -> HostSchedule {
        HostSchedule {
            host: HostId::new(host),
            every: Duration::from_secs(every),
        }
    }

    fn ran(status: ReconcileStatus) -> Outcome {
        Outcome::Ran {
            run_id: ReconcileRunId::new("rr"),
            status,
            items: 0,
        }
    }

    #[test]
    fn jitter_is_deterministic_bounded_and_spreads_hosts() {
        let s = Scheduler::new(ScheduleConfig::default());
        let every = Duration::from_secs(600);
        let a = s.jitter(&HostId::new("h1"), every);
        assert_eq!(a, s.jitter(&HostId::new("h1"), every));
        assert!(a <= Duration::from_secs(60));
        let distinct: std::collections::BTreeSet<Duration> = (0..20)
            .map(|i| s.jitter(&HostId::new(format!("host-{i}")), every))
            .collect();
        assert!(distinct.len() > 15, "hosts share phases: {distinct:?}");
    }

    #[test]
    fn intervals_are_honoured_and_a_running_host_is_never_due() {
        let mut s = Scheduler::new(ScheduleConfig {
            jitter: 0.0,
            ..ScheduleConfig::default()
        });
        let hosts = [plan("a", 60), plan("b", 300)];
        assert_eq!(s.due(t(0), &hosts), [HostId::new("a"), HostId::new("b")]);
        assert!(s.begin(&HostId::new("a")));
        assert!(!s.begin(&HostId::new("a")), "one run per host at a time");
        assert_eq!(s.due(t(1), &hosts), [HostId::new("b")]);
        s.record(&HostId::new("a"), &ran(ReconcileStatus::InSync), t(5));
        assert!(s.begin(&HostId::new("b")));
        s.record(&HostId::new("b"), &ran(ReconcileStatus::InSync), t(5));
        assert!(s.due(t(64), &hosts).is_empty());
        assert_eq!(s.due(t(65), &hosts), [HostId::new("a")]);
        assert_eq!(s.next_due(&HostId::new("b")), Some(t(305)));
    }

    #[test]
    fn unreachable_hosts_back_off_exponentially_up_to_a_ceiling() {
        let mut s = Scheduler::new(ScheduleConfig {
            jitter: 0.0,
            max_backoff: Duration::from_secs(400),
            ..ScheduleConfig::default()
        });
        let h = HostId::new("a");
        s.due(t(0), &[plan("a", 60)]);
        let mut gaps = vec![];
        for _ in 0..4 {
            s.begin(&h);
            s.record(&h, &ran(ReconcileStatus::Unreachable), t(0));
            gaps.push((s.next_due(&h).unwrap() - t(0)).num_seconds());
        }
        assert_eq!(gaps, [120, 240, 400, 400]);
        s.begin(&h);
        s.record(&h, &ran(ReconcileStatus::InSync), t(0));
        assert_eq!(s.next_due(&h), Some(t(60)), "recovery resets the backoff");
    }

    #[test]
    fn busy_hosts_are_retried_soon() {
        let mut s = Scheduler::new(ScheduleConfig {
            jitter: 0.0,
            busy_retry: Duration::from_secs(30),
            ..ScheduleConfig::default()
        });
        let h = HostId::new("a");
        s.due(t(0), &[plan("a", 600)]);
        s.begin(&h);
        let change = s.record(
            &h,
            &Outcome::Busy {
                holder: "import".into(),
            },
            t(0),
        );
        assert_eq!((change, s.next_due(&h)), (None, Some(t(30))));
    }

    #[test]
    fn only_status_changes_are_events() {
        let mut s = Scheduler::new(ScheduleConfig::default());
        let h = HostId::new("a");
        s.due(t(0), &[plan("a", 60)]);
        let mut events = vec![];
        for st in [
            ReconcileStatus::InSync,
            ReconcileStatus::InSync,
            ReconcileStatus::Drifted,
            ReconcileStatus::Drifted,
            ReconcileStatus::InSync,
        ] {
            s.begin(&h);
            if let Some(c) = s.record(&h, &ran(st), t(0)) {
                events.push((c.from, c.to, c.is_new_drift()));
            }
        }
        use ReconcileStatus::*;
        assert_eq!(
            events,
            [
                (Some(InSync), Drifted, true),
                (Some(Drifted), InSync, false)
            ]
        );
        // Drift found on the very first run is worth an event; a seeded
        // history (restart) suppresses the repeat.
        let mut fresh = Scheduler::new(ScheduleConfig::default());
        fresh.due(t(0), &[plan("a", 60)]);
        fresh.begin(&h);
        assert!(
            fresh
                .record(&h, &ran(Drifted), t(0))
                .unwrap()
                .is_new_drift()
        );
        let mut restarted = Scheduler::new(ScheduleConfig::default());
        restarted.due(t(0), &[plan("a", 60)]);
        restarted.seed(&h, Some(Drifted));
        restarted.begin(&h);
        assert_eq!(restarted.record(&h, &ran(Drifted), t(0)), None);
    }

    #[test]
    fn funds_cross_once_each_way_and_unjudged_runs_change_nothing() {
        let h = HostId::new("a");
        let p = ProviderRef::parse("cn-official/deepseek").unwrap();
        let mut s = Scheduler::new(ScheduleConfig::default());
        // (stored before the run, after the run, crossing told)
        let runs = [
            (None, Some(false), None),
            (Some(false), Some(true), Some(Crossing::Below)),
            (Some(true), Some(true), None),
            // The route failed: unknown, then below again is no news.
            (Some(true), None, None),
            (None, Some(true), None),
            (Some(true), Some(false), Some(Crossing::Recovered)),
            (Some(false), Some(false), None),
        ];
        for (i, (stored, now, want)) in runs.into_iter().enumerate() {
            assert_eq!(s.funds_crossing(&h, &p, stored, now), want, "run {i}");
        }
        // A restarted scheduler knows nothing but what the store says.
        let mut restarted = Scheduler::new(ScheduleConfig::default());
        assert_eq!(
            restarted.funds_crossing(&h, &p, Some(true), Some(true)),
            None
        );
        assert_eq!(
            Scheduler::new(ScheduleConfig::default()).funds_crossing(&h, &p, None, Some(true)),
            Some(Crossing::Below),
            "below on the first run ever is worth telling"
        );
    }

    #[test]
    fn removed_hosts_are_forgotten_and_interval_changes_apply() {
        let mut s = Scheduler::new(ScheduleConfig {
            jitter: 0.0,
            ..ScheduleConfig::default()
        });
        let h = HostId::new("a");
        s.due(t(0), &[plan("a", 3600)]);
        s.begin(&h);
        s.record(&h, &ran(ReconcileStatus::InSync), t(0));
        assert_eq!(s.due(t(100), &[plan("a", 60)]), [HostId::new("a")]);
        s.due(t(100), &[]);
        assert!(!s.knows(&h));
    }
}
