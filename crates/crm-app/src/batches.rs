//! Batch use cases: list, detail, resume, roll back.

use crate::App;
use crate::error::{AppError, Result};
use crm_domain::access::AccessCheck;
use crm_domain::batch::{BatchFilter, ImportBatch, JournalEntry, ManagedResource};
use crm_domain::ops::Target;
use crm_domain::ports::{AccessCheckRepo, BatchRepo, HostRepo, ReconcileRepo, StoreError};
use crm_domain::reconcile::ReconcileRun;
use crm_domain::{BatchId, BatchStatus, ProviderRef, SecretString};
use crm_provision::ApplyReport;

use crate::providers::RollbackView;

/// Everything known about one batch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchDetail {
    pub batch: ImportBatch,
    pub host_name: String,
    pub resources: Vec<ManagedResource>,
    pub journal: Vec<JournalEntry>,
    pub access_checks: Vec<AccessCheck>,
    pub latest_reconcile: Option<ReconcileRun>,
    /// Keys of the batch whose newest funds reading says they cannot pay at
    /// all: why its access is `degraded` (`upstream_key_quota_issue`).
    pub funds_advisories: Vec<crm_domain::funds::FundsAdvisory>,
}

/// Filter for [`App::list_batches`], in operator terms.
#[derive(Debug, Clone, Default)]
pub struct BatchQuery {
    pub host: Option<String>,
    pub provider: Option<String>,
    pub status: Option<String>,
    pub limit: Option<u32>,
}

impl App {
    pub async fn list_batches(&self, q: BatchQuery) -> Result<Vec<ImportBatch>> {
        let host_id = match &q.host {
            Some(h) => Some(self.host(h).await?.id),
            None => None,
        };
        let provider = q
            .provider
            .as_deref()
            .map(ProviderRef::parse)
            .transpose()
            .map_err(|e| AppError::invalid(e.to_string()))?;
        let status = q
            .status
            .as_deref()
            .map(str::parse::<BatchStatus>)
            .transpose()
            .map_err(|e| AppError::invalid(e.to_string()))?;
        Ok(self
            .store
            .list_batches(BatchFilter {
                host_id,
                provider,
                status,
                limit: q.limit,
            })
            .await?)
    }

    pub async fn batch(&self, id: &str) -> Result<ImportBatch> {
        self.store
            .get_batch(&BatchId::new(id))
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => AppError::NotFound {
                    what: format!("batch {id:?}"),
                    hint: Some("list batches with `crm batch list`".into()),
                },
                other => other.into(),
            })
    }

    pub async fn batch_detail(&self, id: &str) -> Result<BatchDetail> {
        let batch = self.batch(id).await?;
        let host_name = match self.store.get_host(batch.host_id.as_str()).await {
            Ok(h) => h.name,
            Err(_) => batch.host_id.to_string(),
        };
        let readings: Vec<_> =
            crm_domain::ports::FundsRepo::latest_readings(&self.store, &batch.host_id)
                .await?
                .into_iter()
                .filter(|r| r.batch_id.as_ref() == Some(&batch.id))
                .collect();
        Ok(BatchDetail {
            funds_advisories: crm_domain::funds::cannot_pay(&readings),
            resources: self.store.resources(&batch.id).await?,
            journal: self.store.journal(&batch.id).await?,
            access_checks: self.store.access_checks(&batch.id).await?,
            latest_reconcile: self.store.latest_for_batch(&batch.id).await?,
            host_name,
            batch,
        })
    }

    /// Finishes a partially applied, failed or interrupted batch. Upstream
    /// keys are never stored, so accounts still to be created need their
    /// keys supplied again.
    pub async fn resume_batch(&self, id: &str, keys: Vec<SecretString>) -> Result<ApplyReport> {
        let batch = self.batch(id).await?;
        let ctx = self.host_ctx(batch.host_id.as_str()).await?;
        let result = ctx.prov.resume(&batch.id, keys).await;
        self.audit(
            "batch.resume",
            &Target::batch(&batch.id).to_string(),
            match &result {
                Ok(r) => r.batch.status.as_str(),
                Err(_) => "error",
            },
            result.as_ref().err().map(|e| e.to_string()),
        )
        .await;
        Ok(result?)
    }

    pub async fn rollback_batch(&self, id: &str) -> Result<RollbackView> {
        let batch = self.batch(id).await?;
        let ctx = self.host_ctx(batch.host_id.as_str()).await?;
        self.rollback_with(&ctx, &batch.id).await
    }
}
