//! Reconcile runs: observe a host, diff it against what crm recorded, and
//! persist the run with its scope, status, timings, request count and items.
//!
//! A run is read-only on the host. It holds the lease of its scope
//! (`host:<id>` for a host, `host:<id>/provider:<ref>` for a provider or a
//! batch) so two runs of one scope never overlap, and it counts every host
//! request it made (probe included) on the run.

use crate::diff::{self, Recorded, RecordedBatch};
use crate::error::{ReconcileError, Result};
use chrono::{DateTime, Utc};
use crm_domain::access::AccessCheck;
use crm_domain::batch::BatchFilter;
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::observed::HostSnapshot;
use crm_domain::ops::Lease;
use crm_domain::ports::{
    BatchRepo, Clock, HostApi, HostError, IdSource, LeaseRepo, PackRepo, ReconcileRepo, Storage,
    StoreError,
};
use crm_domain::reconcile::{DriftItem, ReconcileRun, ReconcileScope};
use crm_domain::{LeaseId, ReconcileRunId, ReconcileStatus, ResourceKind, ResourceState};
use crm_provision::ProvisionError;
use std::sync::Arc;
use std::time::Duration;

/// How long a run's lease lives without a heartbeat. Runs are a handful of
/// list calls; a crashed holder frees the scope after this.
pub const RUN_LEASE_TTL: Duration = Duration::from_secs(600);

/// The ports a run uses.
#[derive(Clone)]
pub struct Ports {
    pub batches: Arc<dyn BatchRepo>,
    /// Installed packs: the platform a batch's accounts should use on a host
    /// is decided from its provider's pack entry.
    pub packs: Option<Arc<dyn PackRepo>>,
    pub runs: Arc<dyn ReconcileRepo>,
    pub leases: Arc<dyn LeaseRepo>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    /// At most this many host requests at once while observing (crm-app's
    /// `host_concurrency`).
    pub host_concurrency: usize,
    /// Take funds readings in each run (see [`crate::funds`]).
    pub funds: Option<crate::funds::FundsWatch>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}

impl Ports {
    /// All storage ports from one store.
    pub fn from_storage<S: Storage + 'static>(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Self {
        Ports {
            batches: store.clone(),
            packs: Some(store.clone()),
            runs: store.clone(),
            leases: store,
            clock,
            ids,
            host_concurrency: crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY,
            funds: None,
        }
    }

    /// The same ports, taking funds readings in every run.
    pub fn with_funds(mut self, watch: crate::funds::FundsWatch) -> Self {
        self.funds = Some(watch);
        self
    }

    /// The same ports with another bound on concurrent host requests.
    pub fn with_host_concurrency(mut self, n: usize) -> Self {
        self.host_concurrency = n.max(1);
        self
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Who holds the lease (shown to anyone who finds the scope busy).
    pub holder: String,
    /// Access re-checks made for this run; failed ones become `access_broken`.
    pub access: Vec<AccessCheck>,
    /// Threshold overrides and upstream keys for the funds readings.
    pub funds: crate::funds::FundsOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            holder: "crm-reconcile".into(),
            access: vec![],
            funds: Default::default(),
        }
    }
}

/// The scope a lease must cover for `scope`.
pub fn lease_scope(scope: &ReconcileScope, recorded: &Recorded) -> String {
    if let Some(p) = &scope.provider {
        return Lease::provider_scope(&scope.host_id, p);
    }
    if let Some(b) = &scope.batch_id
        && let Some(rb) = recorded.batches.iter().find(|rb| rb.batch.id == *b)
    {
        return Lease::provider_scope(&scope.host_id, &rb.batch.provider);
    }
    Lease::host_scope(&scope.host_id)
}

/// Loads every live batch on the host with its resources, and checks that
/// the scope names something crm knows.
pub async fn load_recorded(
    batches: &dyn BatchRepo,
    packs: Option<&dyn PackRepo>,
    scope: &ReconcileScope,
    access: Vec<AccessCheck>,
) -> Result<Recorded> {
    let all = batches
        .list_batches(BatchFilter {
            host_id: Some(scope.host_id.clone()),
            ..BatchFilter::default()
        })
        .await?;
    if let Some(b) = &scope.batch_id {
        match all.iter().find(|x| x.id == *b) {
            None => {
                return Err(ReconcileError::UnknownScope(format!(
                    "batch {b} is not on host {}",
                    scope.host_id
                )));
            }
            Some(x) if !x.status.is_live() => {
                return Err(ReconcileError::UnknownScope(format!(
                    "batch {b} is {}: it owns nothing on the host",
                    x.status
                )));
            }
            Some(_) => {}
        }
    }
    let mut recorded = Vec::new();
    for batch in all.into_iter().filter(|b| b.status.is_live()) {
        let resources = batches.resources(&batch.id).await?;
        let provider_spec = match packs {
            // A pack version crm cannot read leaves the platform check out;
            // the rest of the comparison needs only the journal.
            Some(p) => p
                .get_pack(&batch.provider.pack, Some(batch.pack_version.clone()))
                .await
                .ok()
                .and_then(|pk| {
                    pk.manifest
                        .provider(batch.provider.provider.as_str())
                        .cloned()
                }),
            None => None,
        };
        recorded.push(RecordedBatch {
            batch,
            resources,
            provider_spec,
        });
    }
    recorded.sort_by(|a, b| a.batch.id.cmp(&b.batch.id));
    Ok(Recorded {
        scope: scope.clone(),
        batches: recorded,
        access,
    })
}

/// Why an observation failed, as a run status.
pub fn classify_failure(err: &ProvisionError) -> ReconcileStatus {
    match err {
        ProvisionError::Host(
            HostError::Unreachable { .. }
            | HostError::Timeout { .. }
            | HostError::Unavailable { .. }
            | HostError::RateLimited { .. },
        ) => ReconcileStatus::Unreachable,
        _ => ReconcileStatus::Error,
    }
}

/// The observation a run (or a repair) works from.
#[derive(Debug, Clone)]
pub enum Observation {
    Seen {
        caps: Capabilities,
        snapshot: HostSnapshot,
    },
    Failed {
        status: ReconcileStatus,
        error: String,
    },
}

/// Probes (only when the host record has no capabilities) and observes,
/// including the users live batches adopted (an operator's existing user
/// carries no crm name, so the crm-prefix listing alone would miss it).
pub async fn observe(
    host: &HostRecord,
    api: &dyn HostApi,
    recorded: &Recorded,
    concurrency: usize,
) -> Observation {
    let caps = match &host.capabilities {
        Some(c) => c.clone(),
        None => match api.probe().await {
            Ok(c) => c,
            Err(e) => {
                let e = ProvisionError::Host(e);
                return Observation::Failed {
                    status: classify_failure(&e),
                    error: e.to_string(),
                };
            }
        },
    };
    let wanted = crm_provision::wanted_users(
        recorded
            .batches
            .iter()
            .filter(|b| b.batch.status.is_live())
            .flat_map(|b| &b.resources),
    );
    // Monitors are listed only when a live batch records one, so a host's
    // reconcile without monitors costs what it did.
    let monitors = recorded
        .batches
        .iter()
        .filter(|b| b.batch.status.is_live())
        .flat_map(|b| &b.resources)
        .any(|r| r.kind == ResourceKind::Monitor && r.state == ResourceState::Live);
    let seen = async {
        let mut snapshot = crm_provision::observe_bounded(api, &caps, &wanted, concurrency).await?;
        if monitors {
            snapshot.monitors = crm_provision::observe_monitors(api, &caps).await?;
        }
        Ok::<_, ProvisionError>(snapshot)
    };
    match seen.await {
        Ok(snapshot) => Observation::Seen { caps, snapshot },
        Err(e) => Observation::Failed {
            status: classify_failure(&e),
            error: e.to_string(),
        },
    }
}

/// Items and status of one observation against the record.
pub fn assess(recorded: &Recorded, obs: &Observation) -> (ReconcileStatus, Vec<DriftItem>) {
    match obs {
        Observation::Seen { caps, snapshot } => {
            let items = diff::diff(recorded, snapshot, caps);
            (diff::status_of(&items), items)
        }
        Observation::Failed {
            status: ReconcileStatus::Unreachable,
            error,
        } => (
            ReconcileStatus::Unreachable,
            diff::unreachable(recorded, error),
        ),
        // The host answered but crm cannot read it (credentials, compliance
        // gate, undecodable answers): no item is guessed.
        Observation::Failed { status, .. } => (*status, vec![]),
    }
}

/// Runs one reconcile of `scope` on `host` and persists it.
///
/// Fails only when the store fails or the scope is unknown or busy; a host
/// that cannot be observed gives a persisted `unreachable` or `error` run.
pub async fn reconcile(
    ports: &Ports,
    host: &HostRecord,
    api: &dyn HostApi,
    scope: ReconcileScope,
    opts: RunOptions,
) -> Result<ReconcileRun> {
    let held = Held::open(
        ports,
        api,
        &scope,
        opts.access,
        &opts.holder,
        "reconcile",
        Beside::Anything,
    )
    .await?;
    let recorded = &held.recorded;
    let obs = observe(host, api, recorded, ports.host_concurrency).await;
    let (mut status, mut items) = assess(recorded, &obs);
    if let (Some(watch), Observation::Seen { caps, snapshot }) = (&ports.funds, &obs) {
        let funds = crate::funds::funds_step(
            watch,
            host,
            api,
            caps,
            recorded,
            snapshot,
            &opts.funds,
            ports.host_concurrency,
            ports.clock.now(),
        )
        .await;
        if !funds.is_empty() {
            items.extend(funds);
            diff::sort_items(&mut items);
            status = diff::status_of(&items);
        }
    }
    let id = ReconcileRunId::new(ports.ids.new_id("rr"));
    let error = match &obs {
        Observation::Failed { error, .. } => Some(error.clone()),
        Observation::Seen { .. } => None,
    };
    let run = held
        .close(
            ports,
            api,
            id,
            scope,
            Outcome {
                status,
                items,
                repaired: false,
                error,
            },
        )
        .await?;
    tracing::info!(
        run = %run.id, host = %run.scope.host_id, status = %run.status,
        items = run.items.len(), requests = run.host_requests, "reconcile run"
    );
    Ok(run)
}

/// Whom a run makes way for when it takes its scope's lease.
pub(crate) enum Beside {
    /// Only another holder of the same scope (a read-only run).
    Anything,
    /// Also, for a host-wide scope, an import of any provider on the host
    /// (a repair writes where an import may be writing).
    NoImport,
}

/// A run between its opening and its record: what crm recorded for its
/// scope, and the scope's lease, held until [`Held::close`] or
/// [`Held::abandon`].
pub(crate) struct Held {
    pub(crate) recorded: Recorded,
    pub(crate) lease: LeaseId,
    started_at: DateTime<Utc>,
    /// The host client's request count when the run opened.
    before: u32,
}

/// What a run found (and, for a repair, did), to be recorded.
pub(crate) struct Outcome {
    pub(crate) status: ReconcileStatus,
    pub(crate) items: Vec<DriftItem>,
    pub(crate) repaired: bool,
    pub(crate) error: Option<String>,
}

impl Held {
    /// Loads what crm recorded for `scope` and takes the scope's lease for
    /// `operation`.
    pub(crate) async fn open(
        ports: &Ports,
        api: &dyn HostApi,
        scope: &ReconcileScope,
        access: Vec<AccessCheck>,
        holder: &str,
        operation: &str,
        beside: Beside,
    ) -> Result<Held> {
        let started_at = ports.clock.now();
        let before = api.request_count();
        let recorded = load_recorded(
            ports.batches.as_ref(),
            ports.packs.as_deref(),
            scope,
            access,
        )
        .await?;
        let lease_scope = lease_scope(scope, &recorded);
        if matches!(beside, Beside::NoImport) && lease_scope == Lease::host_scope(&scope.host_id) {
            let prefix = format!("{lease_scope}/");
            if let Some(l) = ports
                .leases
                .active_leases(&prefix)
                .await?
                .into_iter()
                .next()
            {
                return Err(ReconcileError::Busy(StoreError::LeaseHeld {
                    scope: l.scope,
                    holder: l.holder,
                    operation: l.operation,
                    lease_id: l.id,
                    expires_at: l.expires_at,
                }));
            }
        }
        let lease = ports
            .leases
            .acquire_lease(&lease_scope, holder, operation, RUN_LEASE_TTL)
            .await
            .map_err(busy)?;
        Ok(Held {
            recorded,
            lease: lease.id,
            started_at,
            before,
        })
    }

    /// Persists the run and releases the lease (both tried, the first
    /// failure returned).
    pub(crate) async fn close(
        self,
        ports: &Ports,
        api: &dyn HostApi,
        id: ReconcileRunId,
        scope: ReconcileScope,
        outcome: Outcome,
    ) -> Result<ReconcileRun> {
        let run = ReconcileRun {
            id,
            scope,
            status: outcome.status,
            started_at: self.started_at,
            finished_at: ports.clock.now(),
            host_requests: api.request_count().saturating_sub(self.before),
            items: outcome.items,
            repaired: outcome.repaired,
            error: outcome.error,
        };
        let saved = ports.runs.save_run(run.clone()).await;
        let released = ports.leases.release_lease(&self.lease).await;
        saved?;
        released?;
        Ok(run)
    }

    /// Releases the lease of a run that failed before it could be recorded.
    pub(crate) async fn abandon(self, ports: &Ports) {
        let _ = ports.leases.release_lease(&self.lease).await;
    }
}

pub(crate) fn busy(e: StoreError) -> ReconcileError {
    match e {
        StoreError::LeaseHeld { .. } => ReconcileError::Busy(e),
        other => ReconcileError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_that_do_not_answer_are_unreachable() {
        let host = |e: HostError| classify_failure(&ProvisionError::Host(e));
        for e in [
            HostError::Unreachable {
                detail: "refused".into(),
            },
            HostError::Timeout {
                operation: "GET".into(),
            },
            HostError::Unavailable {
                status: 502,
                message: "bad gateway".into(),
            },
            HostError::RateLimited {
                retry_after_secs: Some(5),
            },
        ] {
            assert_eq!(host(e), ReconcileStatus::Unreachable);
        }
        for e in [
            HostError::Unauthorized {
                reason: "bad key".into(),
            },
            HostError::ComplianceGate { document_url: None },
            HostError::Decode {
                detail: "html".into(),
            },
        ] {
            assert_eq!(host(e), ReconcileStatus::Error);
        }
    }
}
