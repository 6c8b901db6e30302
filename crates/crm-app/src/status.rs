//! Provider status per host and provider: gathers the evidence (latest live
//! batch, its latest access check, the latest reconcile run covering it, the
//! newest funds readings of its accounts against their thresholds) and
//! hands it to [`crm_domain::status::provider_status`], the one place the
//! status is decided. The CLI, the API, the console and the metrics all show
//! this use case's answer.

use crate::App;
use crate::error::Result;
use chrono::{DateTime, Utc};
use crm_domain::batch::ImportBatch;
use crm_domain::funds::{Assessment, FundsReading, FundsThreshold, per_provider};
use crm_domain::host::HostRecord;
use crm_domain::ports::{AccessCheckRepo, BatchRepo, HostRepo, ReconcileRepo};
use crm_domain::reconcile::ReconcileRun;
use crm_domain::status::{
    BatchFacts, CheckFacts, FundsFacts, ReconcileFacts, StatusEvidence, StatusReason,
    provider_status,
};
use crm_domain::{AccessStatus, BatchStatus, ProviderRef, ProviderStatus};

/// How many recent runs of a host are searched for the one covering a batch.
const RUNS_SEARCHED: u32 = 50;

/// The status of one provider on one host, with the evidence it rests on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProviderStatusView {
    /// Host name.
    pub host: String,
    pub provider: ProviderRef,
    pub status: ProviderStatus,
    /// The rule that decided the status.
    pub reason: StatusReason,
    /// The reason in a sentence, with the command that moves it on.
    pub detail: String,
    /// The latest live batch (absent when there is none).
    pub batch_id: Option<String>,
    pub batch_status: Option<BatchStatus>,
    pub access_status: Option<AccessStatus>,
    pub checked_at: Option<DateTime<Utc>>,
    /// The latest reconcile run that covered the batch.
    pub reconcile_run: Option<String>,
    pub reconciled_at: Option<DateTime<Utc>>,
}

fn covers(run: &ReconcileRun, batch: &ImportBatch) -> bool {
    match (&run.scope.batch_id, &run.scope.provider) {
        (Some(b), _) => *b == batch.id,
        (None, Some(p)) => *p == batch.provider,
        (None, None) => true,
    }
}

fn next_step(reason: StatusReason, host: &str, provider: &ProviderRef, batch: &str) -> String {
    match reason {
        StatusReason::NoLiveBatch => format!(
            "import it with `crm provider import {provider} --host {host} --mode MODE --upstream-keys-file FILE`"
        ),
        StatusReason::HostUnreachable => {
            format!("check the host answers with `crm host probe {host}`")
        }
        StatusReason::NeverChecked
        | StatusReason::AccessBroken
        | StatusReason::AccessNotConfigured => {
            format!("check access with `crm provider access {provider} --host {host}`")
        }
        StatusReason::NotReconciled | StatusReason::ReconcileError | StatusReason::DriftFound => {
            format!("compare with the host using `crm provider reconcile {provider} --host {host}`")
        }
        StatusReason::FundsLow => format!(
            "see the readings with `crm provider funds --host {host} --provider {provider}` and top up the upstream account"
        ),
        StatusReason::MonitorFailing => format!(
            "see the monitor's finding with `crm provider reconcile {provider} --host {host}`, then the upstream key with `crm provider funds --host {host} --provider {provider}`"
        ),
        StatusReason::BatchNotApplied => {
            format!("see the batch with `crm batch show {batch}` (resume or roll it back)")
        }
        StatusReason::ReadyInSync => String::new(),
    }
}

impl App {
    /// The status of `provider` on one host.
    pub async fn provider_status(
        &self,
        host: &str,
        provider: &ProviderRef,
    ) -> Result<ProviderStatusView> {
        let record = self.host(host).await?;
        let runs = self.store.runs_for_host(&record.id, RUNS_SEARCHED).await?;
        let batches = self.live_batches_on(&record).await?;
        let (_, readings) = self
            .assessed_readings(&record, Some(provider), &FundsThreshold::default())
            .await?;
        self.status_of(&record, provider, &batches, &runs, &readings)
            .await
    }

    /// The status of every provider of the installed packs, and of every
    /// provider with a live batch, on one host (or on every host), sorted
    /// by host and provider.
    pub async fn provider_statuses(&self, host: Option<&str>) -> Result<Vec<ProviderStatusView>> {
        let hosts = match host {
            Some(h) => vec![self.host(h).await?],
            None => self.store.list_hosts().await?,
        };
        let installed: Vec<ProviderRef> = self
            .list_providers(None)
            .await?
            .into_iter()
            .map(|p| p.provider)
            .collect();
        let mut out = Vec::new();
        for record in &hosts {
            let runs = self.store.runs_for_host(&record.id, RUNS_SEARCHED).await?;
            let batches = self.live_batches_on(record).await?;
            let (_, readings) = self
                .assessed_readings(record, None, &FundsThreshold::default())
                .await?;
            let mut providers: Vec<ProviderRef> = installed.clone();
            providers.extend(batches.iter().map(|b| b.provider.clone()));
            providers.sort();
            providers.dedup();
            for p in &providers {
                out.push(
                    self.status_of(record, p, &batches, &runs, &readings)
                        .await?,
                );
            }
        }
        out.sort_by(|a, b| (&a.host, &a.provider).cmp(&(&b.host, &b.provider)));
        Ok(out)
    }

    async fn live_batches_on(&self, record: &HostRecord) -> Result<Vec<ImportBatch>> {
        Ok(self.store.live_batches(&record.id, None).await?)
    }

    async fn status_of(
        &self,
        record: &HostRecord,
        provider: &ProviderRef,
        live: &[ImportBatch],
        runs: &[ReconcileRun],
        readings: &[(FundsReading, Assessment)],
    ) -> Result<ProviderStatusView> {
        // The latest live batch of the provider; ties broken by id so the
        // answer does not depend on the store's order.
        let batch = live
            .iter()
            .filter(|b| b.provider == *provider)
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut evidence = StatusEvidence::default();
        let mut view_check = None;
        let mut view_run = None;
        if let Some(b) = batch {
            evidence.batch = Some(BatchFacts {
                status: b.status,
                access: b.access_status,
                created_at: b.created_at,
            });
            let checks = self.store.access_checks(&b.id).await?;
            if let Some(c) = checks.iter().max_by_key(|c| c.checked_at) {
                evidence.check = Some(CheckFacts {
                    checked_at: c.checked_at,
                    verdict: c.verdict,
                    failure_class: c.failure_class,
                });
                view_check = Some(c.checked_at);
            }
            // `runs` is newest first.
            if let Some(r) = runs.iter().find(|r| covers(r, b)) {
                let mine = || {
                    r.items
                        .iter()
                        .filter(|i| i.batch_id.as_ref() == Some(&b.id))
                };
                evidence.reconcile = Some(ReconcileFacts {
                    started_at: r.started_at,
                    status: r.status,
                    drift: mine().map(|i| i.category).collect(),
                    monitor_failing: mine()
                        .any(|i| i.reason == Some(crm_domain::DriftReason::MonitorFailing)),
                });
                view_run = Some((r.id.to_string(), r.started_at));
            }
            let mine: Vec<(FundsReading, Assessment)> = readings
                .iter()
                .filter(|(r, _)| r.batch_id.as_ref() == Some(&b.id))
                .cloned()
                .collect();
            evidence.funds = per_provider(&mine).first().map(|p| FundsFacts {
                accounts_below: p.accounts_below,
                accounts: p.accounts,
            });
        }
        let (status, reason) = provider_status(&evidence);
        let step = next_step(
            reason,
            &record.name,
            provider,
            batch.map_or("", |b| b.id.as_str()),
        );
        let detail = if step.is_empty() {
            reason.explain().to_owned()
        } else {
            format!("{}; {step}", reason.explain())
        };
        Ok(ProviderStatusView {
            host: record.name.clone(),
            provider: provider.clone(),
            status,
            reason,
            detail,
            batch_id: batch.map(|b| b.id.to_string()),
            batch_status: batch.map(|b| b.status),
            access_status: batch.map(|b| b.access_status),
            checked_at: view_check,
            reconcile_run: view_run.as_ref().map(|(id, _)| id.clone()),
            reconciled_at: view_run.map(|(_, at)| at),
        })
    }
}
