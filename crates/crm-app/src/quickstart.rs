//! The quickstart chain: register a host, install the bundled pack, probe,
//! preview, import two providers (one per access mode), verify access and
//! reconcile the host, timing each step.
//!
//! It knows nothing about where the host comes from: the CLI starts an
//! in-process simulator and passes its URL and admin key; the same chain
//! runs against any host.

use crate::App;
use crate::error::Result;
use crate::hosts::{AdminKeySource, NewHost};
use crate::providers::ImportInput;
use crate::reconcile::ReconcileRequest;
use crm_domain::{
    AccessMode, AccessStatus, BatchStatus, ProviderRef, ReconcileStatus, SecretString,
};
use std::time::Instant;

/// One provider to import in the quickstart.
#[derive(Debug)]
pub struct QuickstartImport {
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub upstream_keys: Vec<SecretString>,
}

/// Input of [`App::quickstart`].
#[derive(Debug)]
pub struct QuickstartInput {
    pub host_name: String,
    pub host_url: String,
    pub admin_key: SecretString,
    pub imports: Vec<QuickstartImport>,
}

/// One line of the summary table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuickstartRow {
    pub host: String,
    pub provider: ProviderRef,
    pub mode: AccessMode,
    pub batch: String,
    pub batch_status: BatchStatus,
    pub access_status: AccessStatus,
    pub reconcile_status: ReconcileStatus,
    pub import_ms: u64,
}

/// Timing of one step of the chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTiming {
    pub step: String,
    pub ms: u64,
}

/// What the quickstart did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuickstartSummary {
    pub host_version: Option<String>,
    pub pack: String,
    pub rows: Vec<QuickstartRow>,
    pub steps: Vec<StepTiming>,
    pub drift_items: usize,
}

impl QuickstartSummary {
    /// Every batch applied, access ready, host in sync.
    pub fn all_ready(&self) -> bool {
        !self.rows.is_empty()
            && self.rows.iter().all(|r| {
                r.batch_status == BatchStatus::Applied
                    && r.access_status.is_ready()
                    && r.reconcile_status == ReconcileStatus::InSync
            })
    }
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl App {
    pub async fn quickstart(&self, input: QuickstartInput) -> Result<QuickstartSummary> {
        let mut steps = Vec::new();
        let mut step = |name: &str, t: Instant| {
            steps.push(StepTiming {
                step: name.to_owned(),
                ms: ms(t),
            })
        };

        let t = Instant::now();
        let host = match self.host(&input.host_name).await {
            Ok(h) => crate::HostView::from(&h),
            Err(_) => {
                self.add_host(NewHost {
                    name: input.host_name.clone(),
                    base_url: input.host_url.clone(),
                    admin_key: AdminKeySource::Value(input.admin_key),
                    reconcile_every_secs: Some(300),
                })
                .await?
            }
        };
        step("register host", t);

        let t = Instant::now();
        let pack = self.install_bundled_pack("cn-official").await?;
        step("install pack cn-official", t);

        let t = Instant::now();
        let probed = self.probe_host(&host.name).await?;
        step("probe host", t);

        let t = Instant::now();
        for imp in &input.imports {
            self.preview(
                &host.name,
                &imp.provider,
                imp.mode,
                imp.upstream_keys.clone(),
            )
            .await?;
        }
        step("preview", t);

        let mut rows = Vec::new();
        for imp in input.imports {
            let t = Instant::now();
            let report = self
                .import(ImportInput {
                    host: host.name.clone(),
                    provider: imp.provider.clone(),
                    mode: imp.mode,
                    upstream_keys: imp.upstream_keys,
                    user: None,
                    starting_balance: None,
                    verify: true,
                    accept_url_change: false,
                    monitor: None,
                })
                .await?;
            step(
                &format!("import + verify {} ({})", imp.provider, imp.mode),
                t,
            );
            rows.push(QuickstartRow {
                host: host.name.clone(),
                provider: imp.provider,
                mode: imp.mode,
                batch: report.batch.id.to_string(),
                batch_status: report.batch.status,
                access_status: report.access_status,
                reconcile_status: ReconcileStatus::Error,
                import_ms: ms(t),
            });
        }

        let t = Instant::now();
        let rec = self
            .reconcile(ReconcileRequest {
                host: host.name.clone(),
                ..ReconcileRequest::default()
            })
            .await?;
        step("reconcile host", t);

        // Access statuses may have moved when the second mode closed
        // (`fully_ready`), so read the batches back.
        for row in &mut rows {
            let b = self.batch(&row.batch).await?;
            row.batch_status = b.status;
            row.access_status = b.access_status;
            row.reconcile_status = rec.run.status;
        }
        Ok(QuickstartSummary {
            host_version: probed.version,
            pack: format!("{} {}", pack.manifest.pack_id, pack.manifest.version),
            rows,
            steps,
            drift_items: rec.run.items.len(),
        })
    }
}
