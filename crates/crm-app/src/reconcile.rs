//! Reconcile use cases: a host, a provider on a host, or a batch; read-only
//! or with repair; and the history of runs.

use crate::App;
use crate::error::Result;
use crm_domain::ops::Target;
use crm_domain::plan::Plan;
use crm_domain::ports::ReconcileRepo;
use crm_domain::reconcile::{ReconcileRun, ReconcileScope};
use crm_domain::{BatchId, ProviderRef, ReconcileRunId, SecretString};
use crm_reconcile::{Ports, RepairOptions, RunOptions};
use std::sync::Arc;

/// What to reconcile and whether to repair.
#[derive(Debug, Clone, Default)]
pub struct ReconcileRequest {
    pub host: String,
    pub provider: Option<ProviderRef>,
    pub batch: Option<BatchId>,
    pub apply: bool,
    pub prune: bool,
    pub clear_unhealthy: bool,
}

/// The run, and the repair when one was asked for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReconcileReport {
    pub run: ReconcileRun,
    pub repair_plan: Option<Plan>,
    pub repaired: Vec<String>,
}

impl ReconcileReport {
    /// Drift was found (whether or not it was repaired).
    pub fn drift_present(&self) -> bool {
        !self.run.items.is_empty()
    }
}

impl App {
    pub(crate) fn reconcile_ports(&self) -> Ports {
        Ports::from_storage(
            Arc::new(self.store.clone()),
            self.clock.clone(),
            self.ids.clone(),
        )
        .with_host_concurrency(self.host_concurrency)
        .with_funds(self.funds_watch())
    }

    pub async fn reconcile(&self, req: ReconcileRequest) -> Result<ReconcileReport> {
        self.reconcile_with_keys(req, vec![]).await
    }

    /// [`Self::reconcile`] with the operator's upstream keys for a repair:
    /// crm keeps upstream keys only as fingerprints, so recreating a missing
    /// account needs its key (without it that repair item is `blocked` and
    /// names the key).
    pub async fn reconcile_with_keys(
        &self,
        req: ReconcileRequest,
        upstream_keys: Vec<SecretString>,
    ) -> Result<ReconcileReport> {
        let ctx = self.host_ctx(&req.host).await?;
        let scope = ReconcileScope {
            host_id: ctx.record.id.clone(),
            batch_id: req.batch.clone(),
            provider: req.provider.clone(),
        };
        let target =
            Target::scope(&ctx.record.name, req.provider.as_ref(), req.batch.as_ref()).to_string();
        let ports = self.reconcile_ports();
        let report = if req.apply {
            let r = crm_reconcile::repair(
                &ports,
                &ctx.record,
                ctx.api.as_ref(),
                scope,
                RepairOptions {
                    apply: true,
                    prune: req.prune,
                    clear_unhealthy: req.clear_unhealthy,
                    holder: self.holder(),
                    upstream_keys,
                    fingerprinter: Some(self.fingerprinter.clone()),
                },
            )
            .await;
            match r {
                Ok(r) => ReconcileReport {
                    run: r.run,
                    repair_plan: Some(r.plan),
                    repaired: r.applied,
                },
                Err(e) => {
                    self.audit("reconcile.repair", &target, "error", Some(e.to_string()))
                        .await;
                    return Err(e.into());
                }
            }
        } else {
            let run = crm_reconcile::reconcile(
                &ports,
                &ctx.record,
                ctx.api.as_ref(),
                scope,
                RunOptions {
                    holder: self.holder(),
                    access: vec![],
                    funds: Default::default(),
                },
            )
            .await?;
            ReconcileReport {
                run,
                repair_plan: None,
                repaired: vec![],
            }
        };
        self.audit(
            if req.apply {
                "reconcile.repair"
            } else {
                "reconcile"
            },
            &target,
            report.run.status.as_str(),
            Some(format!(
                "{} drift items, {} repaired",
                report.run.items.len(),
                report.repaired.len()
            )),
        )
        .await;
        Ok(report)
    }

    pub async fn reconcile_runs_for_host(
        &self,
        host: &str,
        limit: u32,
    ) -> Result<Vec<ReconcileRun>> {
        let record = self.host(host).await?;
        Ok(self.store.runs_for_host(&record.id, limit).await?)
    }

    pub async fn reconcile_run(&self, id: &str) -> Result<ReconcileRun> {
        Ok(self.store.get_run(&ReconcileRunId::new(id)).await?)
    }
}
