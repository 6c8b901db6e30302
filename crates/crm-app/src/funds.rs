//! Funds and quota watch: readings taken in a reconcile run, their
//! thresholds and statuses, per host and provider.

use crate::App;
use crate::error::Result;
use chrono::{DateTime, Utc};
use crm_domain::funds::{Assessment, FundsReading, FundsThreshold, ProviderFunds, per_provider};
use crm_domain::ops::Target;
use crm_domain::ports::{BatchRepo, FundsRepo};
use crm_domain::reconcile::ReconcileScope;
use crm_domain::{FundsStatus, ProviderRef, ReconcileRunId, SecretString};
use crm_reconcile::RunOptions;
use crm_reconcile::funds::{FundsOptions, FundsWatch};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What `crm provider funds` asks.
#[derive(Debug, Clone, Default)]
pub struct FundsRequest {
    /// One host, or every registered host.
    pub host: Option<String>,
    pub provider: Option<ProviderRef>,
    /// Thresholds replacing the pack's for this run (CLI flags, host config).
    pub overrides: FundsThreshold,
    /// Take fresh readings (a read-only reconcile run) before reporting;
    /// otherwise report the stored ones.
    pub refresh: bool,
}

/// One reading with its verdict and age.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AssessedReading {
    #[serde(flatten)]
    pub reading: FundsReading,
    pub status: FundsStatus,
    pub status_detail: String,
    pub age_secs: i64,
}

/// The funds of one host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostFunds {
    pub host: String,
    /// The run that took the readings, when this request took them.
    pub run_id: Option<ReconcileRunId>,
    /// Why fresh readings could not be taken (the stored ones are shown).
    pub error: Option<String>,
    pub thresholds: BTreeMap<String, FundsThreshold>,
    pub providers: Vec<ProviderFunds>,
    pub readings: Vec<AssessedReading>,
}

/// The answer of `crm provider funds` and `GET /api/hosts/{name}/funds`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FundsReport {
    pub at: DateTime<Utc>,
    pub hosts: Vec<HostFunds>,
}

impl FundsReport {
    /// Some reading is below a threshold or says the key cannot pay.
    pub fn below(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.providers.iter().any(ProviderFunds::is_below))
    }
}

impl App {
    pub(crate) fn funds_watch(&self) -> FundsWatch {
        let store = Arc::new(self.store.clone());
        FundsWatch {
            repo: store.clone(),
            batches: store.clone(),
            checks: store.clone(),
            packs: store,
            upstream: Some(self.upstream_funds.clone()),
        }
    }

    /// Funds of one host or every host, taking fresh readings when asked.
    /// `upstream_keys` are used for this run only (matched to accounts by
    /// fingerprint, never stored).
    pub async fn funds(
        &self,
        req: FundsRequest,
        upstream_keys: Vec<SecretString>,
    ) -> Result<FundsReport> {
        let hosts = match &req.host {
            Some(h) => vec![self.host(h).await?],
            None => self.store_hosts().await?,
        };
        let mut out = Vec::new();
        for host in hosts {
            let mut run_id = None;
            let mut error = None;
            if req.refresh {
                match self
                    .funds_run(
                        &host.name,
                        req.provider.clone(),
                        &req,
                        upstream_keys.clone(),
                    )
                    .await
                {
                    Ok(id) => run_id = Some(id),
                    Err(e) => error = Some(e.to_string()),
                }
            }
            let mut h = self
                .stored_funds(&host.name, req.provider.as_ref(), &req.overrides)
                .await?;
            h.run_id = run_id;
            h.error = error;
            out.push(h);
        }
        Ok(FundsReport {
            at: self.now(),
            hosts: out,
        })
    }

    async fn store_hosts(&self) -> Result<Vec<crm_domain::host::HostRecord>> {
        use crm_domain::ports::HostRepo;
        Ok(self.store.list_hosts().await?)
    }

    async fn funds_run(
        &self,
        host: &str,
        provider: Option<ProviderRef>,
        req: &FundsRequest,
        upstream_keys: Vec<SecretString>,
    ) -> Result<ReconcileRunId> {
        let ctx = self.host_ctx(host).await?;
        let scope = ReconcileScope {
            host_id: ctx.record.id.clone(),
            batch_id: None,
            provider,
        };
        let run = crm_reconcile::reconcile(
            &self.reconcile_ports(),
            &ctx.record,
            ctx.api.as_ref(),
            scope,
            RunOptions {
                holder: self.holder(),
                access: vec![],
                funds: FundsOptions {
                    overrides: req.overrides.clone(),
                    upstream_keys,
                    fingerprinter: Some(self.fingerprinter.clone()),
                },
            },
        )
        .await?;
        self.audit(
            "funds.read",
            &Target::host(&ctx.record.name).to_string(),
            run.status.as_str(),
            Some(format!("reconcile run {}", run.id)),
        )
        .await;
        Ok(run.id)
    }

    /// The stored (latest) readings of a host with their thresholds and
    /// statuses; no host request.
    pub async fn stored_funds(
        &self,
        host: &str,
        provider: Option<&ProviderRef>,
        overrides: &FundsThreshold,
    ) -> Result<HostFunds> {
        let record = self.host(host).await?;
        let (limits, assessed) = self.assessed_readings(&record, provider, overrides).await?;
        let now = self.now();
        Ok(HostFunds {
            host: record.name.clone(),
            run_id: None,
            error: None,
            thresholds: limits
                .iter()
                .map(|(p, t)| (p.to_string(), t.clone()))
                .collect(),
            providers: per_provider(&assessed),
            readings: assessed
                .into_iter()
                .map(|(reading, a)| AssessedReading {
                    age_secs: (now - reading.taken_at).num_seconds().max(0),
                    reading,
                    status: a.status,
                    status_detail: a.detail,
                })
                .collect(),
        })
    }

    /// The stored (newest) readings of a host, each assessed against its
    /// provider's thresholds, and those thresholds: what the funds report
    /// and the provider status both read.
    pub(crate) async fn assessed_readings(
        &self,
        record: &crm_domain::host::HostRecord,
        provider: Option<&ProviderRef>,
        overrides: &FundsThreshold,
    ) -> Result<(
        BTreeMap<ProviderRef, FundsThreshold>,
        Vec<(FundsReading, Assessment)>,
    )> {
        let readings: Vec<FundsReading> = self
            .store
            .latest_readings(&record.id)
            .await?
            .into_iter()
            .filter(|r| provider.is_none_or(|p| *p == r.provider))
            .collect();
        // Thresholds of the pack versions the live batches were imported from.
        let batches = self.store.live_batches(&record.id, None).await?;
        let versions = batches
            .iter()
            .filter(|b| readings.iter().any(|r| r.provider == b.provider))
            .map(|b| (b.provider.clone(), b.pack_version.clone()))
            .collect::<Vec<_>>();
        let limits = crm_reconcile::funds::thresholds(
            &self.store,
            versions,
            &record.funds_thresholds,
            overrides,
        )
        .await;
        let assessed = crm_reconcile::funds::assess_all(&readings, &limits);
        Ok((limits, assessed))
    }
}
