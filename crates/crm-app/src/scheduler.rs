//! Wiring of the reconcile scheduler (`crm_reconcile::schedule`) over the
//! application core: hosts are opened with their stored admin credential and
//! access is re-checked with crm-access. The face that runs the scheduler
//! (the server) owns the timer and the [`EventSink`].

use crate::App;
use async_trait::async_trait;
use crm_access::VerifyOptions;
use crm_domain::access::AccessCheck;
use crm_domain::batch::ImportBatch;
use crm_domain::host::HostRecord;
use crm_domain::ports::{HostApi, HostError};
use crm_reconcile::schedule::{
    AccessRecheck, EventSink, HostOpener, RecheckPlan, ScheduleConfig, Scheduler, SchedulerDriver,
};
use std::sync::{Arc, Mutex};

struct AppOpener(App);

#[async_trait]
impl HostOpener for AppOpener {
    async fn open(&self, host: &HostRecord) -> Result<Arc<dyn HostApi>, HostError> {
        self.0.connect(host).await.map_err(|e| match e {
            crate::AppError::Host(h) => h,
            // The credential could not be read: the host cannot be reached as admin.
            other => HostError::Unauthorized {
                reason: other.to_string(),
            },
        })
    }
}

struct AppRecheck(App);

#[async_trait]
impl AccessRecheck for AppRecheck {
    async fn recheck(
        &self,
        host: &HostRecord,
        api: &dyn HostApi,
        batch: &ImportBatch,
        plan: RecheckPlan,
    ) -> Option<AccessCheck> {
        let spec = self
            .0
            .provider_spec(&batch.provider, Some(batch.pack_version.clone()))
            .await
            .ok()?;
        let ports = self.0.access_ports(api);
        match crm_access::verify_batch(
            &ports,
            &batch.id,
            &spec,
            &VerifyOptions {
                skip_completion: plan.skip_completion,
                upstream_keys: vec![],
                fingerprinter: None,
                // Unprobed hosts are probed by the check itself (read-only).
                caps: host.capabilities.clone(),
            },
        )
        .await
        {
            Ok(check) => Some(check),
            Err(e) => {
                tracing::warn!(batch = %batch.id, error = %e, "scheduled access re-check failed");
                None
            }
        }
    }
}

impl App {
    /// A scheduler driver for the hosts that have `reconcile_every_secs`.
    /// With `recheck_access`, every run also re-verifies each live batch's
    /// access (a gateway call per batch; skipped completion for quota-limited
    /// providers).
    pub fn scheduler_driver(
        &self,
        events: Arc<dyn EventSink>,
        recheck_access: bool,
        config: ScheduleConfig,
    ) -> SchedulerDriver {
        let store = Arc::new(self.store.clone());
        SchedulerDriver {
            sched: Mutex::new(Scheduler::new(config)),
            ports: self.reconcile_ports(),
            hosts: store.clone(),
            packs: store,
            opener: Arc::new(AppOpener(self.clone())),
            events,
            recheck: recheck_access
                .then(|| Arc::new(AppRecheck(self.clone())) as Arc<dyn AccessRecheck>),
            holder: self.holder(),
            // Replicas on one shared store take turns per host and interval.
            schedule_lease: self.store.is_shared(),
        }
    }
}
