//! One acceptance run: the chain of docs/design.md §4 through crm's
//! application core (`crm-app`) on a temporary database, each step leaving
//! a numbered evidence file, then the summary with the verdicts.
//!
//! Order of the files (gaps are deliberate, so a later step can slot in):
//! `01-probe`, `02-pack`, `03-preview`, `05-import`, `07-access-status`,
//! `09-reconcile`, `11-rollback`, `13-post-rollback-access`,
//! `17-upstream-models`, `19-upstream-completion`, `21-summary` (+ `.md`).
//! The pack is installed before the host is probed (it touches no host), so
//! that every file, the first included, names the pack version and checksum.
//!
//! A step that fails is evidence, not an error: it gets a `fail` verdict and
//! the steps that depend on it are written as `skipped` with the reason.
//! Whatever was imported is still rolled back (unless `--keep`), and the
//! direct upstream probes (17, 19) run whatever the host did, each key at
//! the base URL crm recorded for its account (a key no account was
//! recorded for is not probed: docs/design.md §4 step 5).

mod steps;

use crate::config::{ExistingUser, PackSource, RunSpec, Target, UpstreamKeys, simulated_key};
use crate::error::{EvidenceError, Result};
use crate::folder::{EvidenceFolder, LeakScan, SecretKind, SecretSet, scan_dir};
use crate::verdict::{StepOutcome, StepVerdict, class_of_error, overall, worst_of};
use chrono::{DateTime, Utc};
use crm_access::KeyRefusal;
use crm_access::classify::UpstreamReading;
use crm_app::acceptance::{KeyProbe, UpstreamKeyProbe, smoke_upstream_model};
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_app::providers::{ImportInput, ImportReport, RollbackView};
use crm_app::reconcile::ReconcileRequest;
use crm_app::{App, AppConfig};
use crm_domain::host::AdminAuth;
use crm_domain::spec::{InstalledPack, ProviderSpec};
use crm_domain::{
    AccessMode, BatchStatus, FailureClass, ProviderRef, ReconcileStatus, SecretString, Verdict,
};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The name the harness registers the host under in its temporary database.
const HOST_NAME: &str = "acceptance";

/// One step of the chain and its evidence file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Probe,
    Pack,
    Preview,
    Import,
    AccessStatus,
    Reconcile,
    Rollback,
    PostRollbackAccess,
    UpstreamModels,
    UpstreamCompletion,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Probe,
        Step::Pack,
        Step::Preview,
        Step::Import,
        Step::AccessStatus,
        Step::Reconcile,
        Step::Rollback,
        Step::PostRollbackAccess,
        Step::UpstreamModels,
        Step::UpstreamCompletion,
    ];

    pub fn number(self) -> u8 {
        match self {
            Step::Probe => 1,
            Step::Pack => 2,
            Step::Preview => 3,
            Step::Import => 5,
            Step::AccessStatus => 7,
            Step::Reconcile => 9,
            Step::Rollback => 11,
            Step::PostRollbackAccess => 13,
            Step::UpstreamModels => 17,
            Step::UpstreamCompletion => 19,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Probe => "probe",
            Step::Pack => "pack",
            Step::Preview => "preview",
            Step::Import => "import",
            Step::AccessStatus => "access-status",
            Step::Reconcile => "reconcile",
            Step::Rollback => "rollback",
            Step::PostRollbackAccess => "post-rollback-access",
            Step::UpstreamModels => "upstream-models",
            Step::UpstreamCompletion => "upstream-completion",
        }
    }

    pub fn file(self) -> String {
        format!("{:02}-{}.json", self.number(), self.name())
    }
}

/// The summary file names.
pub const SUMMARY_JSON: &str = "21-summary.json";
pub const SUMMARY_MD: &str = "21-summary.md";

/// What one step concluded (also a row of the summary).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    pub number: u8,
    pub step: Step,
    pub file: String,
    pub verdict: StepVerdict,
    pub failure_class: Option<FailureClass>,
    /// One operator-facing sentence.
    pub summary: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// Identity of the run, copied into every file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Header {
    pub run_id: String,
    pub harness: String,
    pub run_started_at: DateTime<Utc>,
    pub host: HostInfo,
    pub pack: Option<PackInfo>,
    pub provider: String,
    pub modes: Vec<AccessMode>,
    pub keep: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostInfo {
    pub url: String,
    pub version: Option<String>,
    /// The simulator profile when the host is an in-process crm-sim.
    pub simulator_profile: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PackInfo {
    pub id: String,
    pub version: String,
    pub checksum: String,
    pub source: String,
}

/// One batch the run created, as the summary lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchLine {
    pub mode: AccessMode,
    pub batch_id: String,
    pub batch_status: BatchStatus,
    pub access_status: crm_domain::AccessStatus,
}

/// The secret scan as the summary reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecretScanReport {
    /// How many secrets of each kind were checked (values never appear).
    pub checked: std::collections::BTreeMap<&'static str, usize>,
    /// Secrets removed from evidence on its way to the disk (a host or
    /// provider echoed one back); each is a finding worth a look.
    pub redacted_before_write: usize,
    /// The raw scan of the files written before the summary.
    pub scan: LeakScan,
    /// Closure secrets that could not be read back (so were not checked).
    pub unchecked: Vec<String>,
}

/// `21-summary.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub file: String,
    #[serde(flatten)]
    pub header: Header,
    pub finished_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub failure_class: Option<FailureClass>,
    pub failing_steps: Vec<String>,
    pub advisories: Vec<FailureClass>,
    pub exit_code: i32,
    pub steps: Vec<StepRecord>,
    pub batches: Vec<BatchLine>,
    /// Upstream keys by fingerprint (HMAC prefix and last four characters).
    pub upstream_keys: Vec<String>,
    pub secret_scan: SecretScanReport,
    /// Evidence files, in chain order.
    pub files: Vec<String>,
}

/// What [`run`] hands back.
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

/// The process exit code a verdict maps to.
pub fn exit_code_for(v: Verdict) -> i32 {
    match v {
        Verdict::Pass | Verdict::PassWithAdvisories => 0,
        Verdict::Fail => 1,
    }
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '.'
            }
        })
        .collect()
}

/// The host the run talks to, with the simulator kept alive while needed.
struct Resolved {
    url: String,
    admin_key: SecretString,
    upstream_via: Option<String>,
    profile: Option<String>,
    sim: Option<crm_sim::SimHandle>,
}

async fn resolve_target(target: Target) -> Result<Resolved> {
    match target {
        Target::Host {
            url,
            admin_key,
            upstream_via,
        } => Ok(Resolved {
            url,
            admin_key,
            upstream_via,
            profile: None,
            sim: None,
        }),
        Target::Sim { profile } => {
            let p = crm_sim::Profile::by_name(&profile).ok_or_else(|| {
                EvidenceError::invalid(format!(
                    "unknown simulator profile {profile:?}; expected one of: {}",
                    crm_sim::Profile::all()
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let sim = crm_sim::SimServer::start(crm_sim::SimConfig::with_profile(p))
                .await
                .map_err(|e| EvidenceError::Sim(e.to_string()))?;
            Ok(Resolved {
                url: sim.base_url(),
                admin_key: SecretString::from(sim.admin_key()),
                upstream_via: Some(sim.upstream_prefix()),
                profile: Some(profile),
                sim: Some(sim),
            })
        }
    }
}

/// Runs the chain once and writes its evidence folder under `spec.out`.
pub async fn run(spec: RunSpec) -> Result<RunOutcome> {
    let modes = spec.modes.list();
    let is_sim = matches!(spec.target, Target::Sim { .. });
    let keys_by_mode: Vec<(AccessMode, Vec<SecretString>)> = match &spec.upstream_keys {
        UpstreamKeys::Given(keys) if keys.is_empty() => {
            return Err(EvidenceError::invalid(
                "the upstream keys file holds no key; put one upstream key per line",
            ));
        }
        UpstreamKeys::Given(keys) => modes.iter().map(|m| (*m, keys.clone())).collect(),
        UpstreamKeys::Simulated { .. } if !is_sim => {
            return Err(EvidenceError::invalid(
                "simulated upstream keys need --sim; give a real host an --upstream-keys-file",
            ));
        }
        UpstreamKeys::Simulated { behaviour } => {
            crate::config::check_behaviour(behaviour)?;
            // One key per mode, as an operator would use one provider
            // account per sold product.
            modes
                .iter()
                .map(|m| (*m, vec![simulated_key(behaviour)]))
                .collect()
        }
    };
    let resolved = resolve_target(spec.target).await?;

    let run_started_at = Utc::now();
    let folder_name = match &spec.label {
        Some(label) => sanitize(label),
        None => {
            let base = format!("{}-{}", spec.provider, spec.modes.as_str());
            let label = match &resolved.profile {
                Some(p) => format!("sim-{p}-{base}"),
                None => base,
            };
            format!(
                "{}-{}",
                run_started_at.format("%Y%m%dT%H%M%SZ"),
                sanitize(&label)
            )
        }
    };
    let folder = EvidenceFolder::create(&spec.out, &folder_name)?;

    let db_dir = tempfile::tempdir().map_err(|e| EvidenceError::Write {
        path: std::env::temp_dir(),
        detail: e.to_string(),
    })?;
    let db_path = spec
        .db
        .clone()
        .unwrap_or_else(|| db_dir.path().join("crm.db"));
    let mut config = AppConfig::new(db_path);
    config.upstream_via = resolved.upstream_via.clone();
    config.actor = "crm-acceptance".into();
    let app = App::open(config).await?;

    let mut secrets = SecretSet::default();
    secrets.add(SecretKind::AdminKey, resolved.admin_key.clone());
    for (_, keys) in &keys_by_mode {
        for k in keys {
            secrets.add(SecretKind::UpstreamKey, k.clone());
        }
    }
    if let Some(u) = &spec.user {
        secrets.add(SecretKind::UserPassword, u.password.clone());
    }

    let header = Header {
        run_id: uuid::Uuid::new_v4().to_string(),
        harness: format!("crm-acceptance {}", env!("CARGO_PKG_VERSION")),
        run_started_at,
        host: HostInfo {
            url: resolved.url.clone(),
            version: None,
            simulator_profile: resolved.profile.clone(),
        },
        pack: None,
        provider: spec.provider.clone(),
        modes: modes.clone(),
        keep: spec.keep,
    };
    let mut r = Runner {
        app,
        folder,
        secrets,
        header,
        records: Vec::new(),
        redactions_seen: 0,
    };
    let chain = Chain {
        url: resolved.url.clone(),
        admin_key: resolved.admin_key.clone(),
        pack: spec.pack.clone(),
        provider: spec.provider.clone(),
        keys_by_mode,
        user: spec.user,
        keep: spec.keep,
    };
    let outcome = r.chain(chain).await;
    if let Some(sim) = resolved.sim {
        sim.shutdown().await;
    }
    drop(db_dir);
    outcome
}

struct Chain {
    url: String,
    admin_key: SecretString,
    pack: PackSource,
    provider: String,
    keys_by_mode: Vec<(AccessMode, Vec<SecretString>)>,
    user: Option<ExistingUser>,
    keep: bool,
}

/// A step's conclusion before it is written.
struct Concluded {
    verdict: StepVerdict,
    class: Option<FailureClass>,
    summary: String,
    data: Value,
}

impl Concluded {
    fn new(verdict: impl Into<StepVerdict>, summary: impl Into<String>, data: Value) -> Self {
        Concluded {
            verdict: verdict.into(),
            class: None,
            summary: summary.into(),
            data,
        }
    }

    fn class(mut self, class: Option<FailureClass>) -> Self {
        self.class = class;
        self
    }

    fn skipped(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Concluded {
            verdict: StepVerdict::Skipped,
            class: None,
            data: json!({ "skipped": reason }),
            summary: reason,
        }
    }

    fn error(e: &crm_app::AppError, what: &str) -> Self {
        Concluded {
            verdict: StepVerdict::Fail,
            class: class_of_error(e),
            summary: format!("{what}: {e}"),
            data: json!({ "error": e.to_string() }),
        }
    }
}

struct Runner {
    app: App,
    folder: EvidenceFolder,
    secrets: SecretSet,
    header: Header,
    records: Vec<StepRecord>,
    redactions_seen: usize,
}

/// What the import step leaves for the later ones.
struct Imported {
    mode: AccessMode,
    result: std::result::Result<ImportReport, String>,
}

impl Runner {
    fn write(&mut self, step: Step, started_at: DateTime<Utc>, c: Concluded) -> Result<()> {
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

    async fn chain(&mut self, c: Chain) -> Result<RunOutcome> {
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
