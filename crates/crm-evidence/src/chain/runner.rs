//! The run in order: each step's conclusion written as its numbered file,
//! the skips that follow a failure, and the summary with the verdicts.

use crate::config::{ExistingUser, PackSource};
use crate::error::{EvidenceError, Result};
use crate::folder::{EvidenceFolder, SecretKind, SecretSet, scan_dir};
use crate::summary::{
    BatchLine, Header, SUMMARY_JSON, SUMMARY_MD, SecretScanReport, Step, StepRecord, Summary,
    exit_code_for,
};
use crate::verdict::{StepOutcome, StepVerdict, class_of_error, overall};
use chrono::{DateTime, Utc};
use crm_app::App;
use crm_app::providers::ImportReport;
use crm_domain::{AccessMode, FailureClass, SecretString};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The name the harness registers the host under in its temporary database.
pub(super) const HOST_NAME: &str = "acceptance";

/// What [`run`](super::run) hands back.
#[derive(Debug)]
pub struct RunOutcome {
    pub folder: PathBuf,
    pub summary: Summary,
    /// Every secret the run knew (held in memory only), so callers can scan
    /// other outputs (logs, captured stdout) for them too.
    pub secrets: SecretSet,
}

impl RunOutcome {
    /// 0 for `pass` and `pass_with_advisories`, 1 for `fail`.
    pub fn exit_code(&self) -> i32 {
        self.summary.exit_code
    }
}

pub(super) struct Chain {
    pub(super) url: String,
    pub(super) admin_key: SecretString,
    pub(super) pack: PackSource,
    pub(super) provider: String,
    pub(super) keys_by_mode: Vec<(AccessMode, Vec<SecretString>)>,
    pub(super) user: Option<ExistingUser>,
    pub(super) keep: bool,
}

/// A step's conclusion before it is written.
pub(super) struct Concluded {
    pub(super) verdict: StepVerdict,
    pub(super) class: Option<FailureClass>,
    pub(super) summary: String,
    pub(super) data: Value,
}

impl Concluded {
    pub(super) fn new(
        verdict: impl Into<StepVerdict>,
        summary: impl Into<String>,
        data: Value,
    ) -> Self {
        Concluded {
            verdict: verdict.into(),
            class: None,
            summary: summary.into(),
            data,
        }
    }

    pub(super) fn class(mut self, class: Option<FailureClass>) -> Self {
        self.class = class;
        self
    }

    pub(super) fn skipped(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Concluded {
            verdict: StepVerdict::Skipped,
            class: None,
            data: json!({ "skipped": reason }),
            summary: reason,
        }
    }

    pub(super) fn error(e: &crm_app::AppError, what: &str) -> Self {
        Concluded {
            verdict: StepVerdict::Fail,
            class: class_of_error(e),
            summary: format!("{what}: {e}"),
            data: json!({ "error": e.to_string() }),
        }
    }
}

pub(super) struct Runner {
    pub(super) app: App,
    pub(super) folder: EvidenceFolder,
    pub(super) secrets: SecretSet,
    pub(super) header: Header,
    pub(super) records: Vec<StepRecord>,
    pub(super) redactions_seen: usize,
}

/// What the import step leaves for the later ones.
pub(super) struct Imported {
    pub(super) mode: AccessMode,
    pub(super) result: std::result::Result<ImportReport, String>,
}

impl Runner {
    pub(super) fn write(
        &mut self,
        step: Step,
        started_at: DateTime<Utc>,
        c: Concluded,
    ) -> Result<()> {
        let finished_at = Utc::now();
        let record = StepRecord {
            number: step.number(),
            step,
            file: step.file(),
            verdict: c.verdict,
            failure_class: c.class,
            summary: c.summary,
            started_at,
            finished_at,
        };
        let mut doc = serde_json::to_value(&self.header).unwrap_or_else(|_| json!({}));
        doc["file"] = json!(record.file);
        doc["step"] = json!(step);
        doc["started_at"] = json!(started_at);
        doc["finished_at"] = json!(finished_at);
        doc["verdict"] = json!(record.verdict);
        doc["failure_class"] = json!(record.failure_class);
        doc["summary"] = json!(record.summary);
        doc["data"] = c.data;
        // Summaries quote hosts, and hosts echo keys: scrub before logging too.
        tracing::info!(
            file = %record.file,
            verdict = %record.verdict,
            "{}",
            self.secrets.scrub(&record.summary).0
        );
        self.folder.write_json(&record.file, &doc, &self.secrets)?;
        self.records.push(record);
        Ok(())
    }

    pub(super) async fn chain(&mut self, c: Chain) -> Result<RunOutcome> {
        // 02 first: it touches no host, and every file then names the pack.
        let pack_started = Utc::now();
        let (pack_result, provider) = self.install_pack(&c).await;
        let probe_started = Utc::now();
        let probe = self.probe(&c).await;
        let host_ok = probe.verdict != StepVerdict::Fail;
        self.write(Step::Probe, probe_started, probe)?;
        let pack_ok = pack_result.verdict != StepVerdict::Fail;
        self.write(Step::Pack, pack_started, pack_result)?;

        let blocked = match (host_ok, pack_ok) {
            (true, true) => None,
            (false, _) => Some("skipped: the host probe failed (01-probe.json)".to_owned()),
            (true, false) => {
                Some("skipped: the pack or provider is unusable (02-pack.json)".to_owned())
            }
        };

        // 03 preview
        let started = Utc::now();
        let preview = match (&blocked, &provider) {
            (None, Some((r, _))) => self.preview(r, &c).await,
            (Some(why), _) => Concluded::skipped(why.clone()),
            (None, None) => Concluded::skipped("skipped: no provider"),
        };
        let preview_ok =
            preview.verdict != StepVerdict::Fail && preview.verdict != StepVerdict::Skipped;
        self.write(Step::Preview, started, preview)?;
        let blocked = blocked.or_else(|| {
            (!preview_ok).then(|| {
                "skipped: the preview failed (03-preview.json); nothing was imported".to_owned()
            })
        });

        // 05 import (with the access closure and its verification)
        let started = Utc::now();
        let mut imported: Vec<Imported> = Vec::new();
        let import = match (&blocked, &provider) {
            (None, Some((r, _))) => {
                let (concluded, done) = self.import(r, &c).await;
                imported = done;
                concluded
            }
            (Some(why), _) => Concluded::skipped(why.clone()),
            (None, None) => Concluded::skipped("skipped: no provider"),
        };
        self.write(Step::Import, started, import)?;

        // 07 access status
        let started = Utc::now();
        let access = if imported.is_empty() {
            Concluded::skipped(
                blocked
                    .clone()
                    .unwrap_or_else(|| "skipped: nothing was imported".into()),
            )
        } else {
            self.access_status(&imported).await
        };
        self.write(Step::AccessStatus, started, access)?;
        let unchecked = self.reveal_closure_secrets(&imported).await;

        // 09 reconcile
        let started = Utc::now();
        let reconcile = match (&blocked, &provider) {
            (None, Some((r, _))) if !imported.is_empty() => self.reconcile(r).await,
            (Some(why), _) => Concluded::skipped(why.clone()),
            _ => Concluded::skipped("skipped: nothing was imported"),
        };
        self.write(Step::Reconcile, started, reconcile)?;

        // 11 rollback and 13 the post-rollback access check
        let started = Utc::now();
        let (rollback, post) = match (&blocked, &provider) {
            _ if c.keep => (
                Concluded::skipped("skipped: --keep leaves the host provisioned"),
                Concluded::skipped("skipped: --keep, nothing was rolled back"),
            ),
            (None, Some((r, _))) if !imported.is_empty() => self.rollback(r).await,
            (Some(why), _) => (
                Concluded::skipped(why.clone()),
                Concluded::skipped(why.clone()),
            ),
            _ => (
                Concluded::skipped("skipped: nothing was imported"),
                Concluded::skipped("skipped: nothing was imported"),
            ),
        };
        self.write(Step::Rollback, started, rollback)?;
        let started = Utc::now();
        self.write(Step::PostRollbackAccess, started, post)?;

        // 17 and 19: the upstream, directly, with every key
        let started = Utc::now();
        let (models, completion) = match &provider {
            Some((r, spec)) => self.upstream(r, spec, &c).await,
            None => (
                Concluded::skipped("skipped: the provider is unknown (02-pack.json)"),
                Concluded::skipped("skipped: the provider is unknown (02-pack.json)"),
            ),
        };
        self.write(Step::UpstreamModels, started, models)?;
        let started = Utc::now();
        self.write(Step::UpstreamCompletion, started, completion)?;

        self.finish(&imported, unchecked).await
    }

    fn finish_batches(&self, imported: &[Imported]) -> Vec<(AccessMode, String)> {
        imported
            .iter()
            .filter_map(|i| {
                i.result
                    .as_ref()
                    .ok()
                    .map(|r| (i.mode, r.batch.id.to_string()))
            })
            .collect()
    }

    async fn finish(
        &mut self,
        imported: &[Imported],
        unchecked: Vec<String>,
    ) -> Result<RunOutcome> {
        let mut batches = Vec::new();
        for (mode, id) in self.finish_batches(imported) {
            if let Ok(b) = self.app.batch(&id).await {
                batches.push(BatchLine {
                    mode,
                    batch_id: id,
                    batch_status: b.status,
                    access_status: b.access_status,
                });
            }
        }
        let outcomes: Vec<StepOutcome> = self
            .records
            .iter()
            .map(|r| StepOutcome {
                number: r.number,
                verdict: r.verdict,
                failure_class: r.failure_class,
                is_access_check: r.step == Step::AccessStatus,
            })
            .collect();
        let o = overall(&outcomes);
        let upstream_keys: Vec<String> = self
            .secrets
            .of_kind(SecretKind::UpstreamKey)
            .iter()
            .map(|k| self.app.fingerprint(k).to_string())
            .collect();
        let scan = scan_dir(self.folder.path(), &self.secrets)?;
        self.redactions_seen = self.folder.redactions();
        let mut files = self.folder.files().to_vec();
        files.push(SUMMARY_JSON.into());
        files.push(SUMMARY_MD.into());
        let summary = Summary {
            file: SUMMARY_JSON.into(),
            header: self.header.clone(),
            finished_at: Utc::now(),
            verdict: o.verdict,
            failure_class: o.failure_class,
            failing_steps: o
                .failing_steps
                .iter()
                .filter_map(|n| Step::ALL.iter().find(|s| s.number() == *n))
                .map(|s| s.file())
                .collect(),
            advisories: o.advisories,
            exit_code: exit_code_for(o.verdict),
            steps: self.records.clone(),
            batches,
            upstream_keys,
            secret_scan: SecretScanReport {
                checked: self
                    .secrets
                    .kinds()
                    .into_iter()
                    .map(|(k, n)| (k.as_str(), n))
                    .collect(),
                redacted_before_write: self.redactions_seen,
                scan,
                unchecked,
            },
            files,
        };
        let value = serde_json::to_value(&summary).map_err(|e| EvidenceError::Write {
            path: self.folder.path().join(SUMMARY_JSON),
            detail: e.to_string(),
        })?;
        self.folder
            .write_json(SUMMARY_JSON, &value, &self.secrets)?;
        let md = crate::render::summary_markdown(&summary);
        self.folder.write_text(SUMMARY_MD, &md, &self.secrets)?;
        // The final word: the whole folder, raw, summary included.
        scan_dir(self.folder.path(), &self.secrets)?.into_result(self.folder.path())?;
        Ok(RunOutcome {
            folder: self.folder.path().to_owned(),
            summary,
            secrets: std::mem::take(&mut self.secrets),
        })
    }
}
