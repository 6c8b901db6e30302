//! One acceptance run: the chain of design brief §4 through crm's
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
//! direct upstream probes (17, 19) run whatever the host did.

use crate::config::{ExistingUser, PackSource, RunSpec, Target, UpstreamKeys, simulated_key};
use crate::error::{EvidenceError, Result};
use crate::folder::{EvidenceFolder, LeakScan, SecretKind, SecretSet, scan_dir};
use crate::verdict::{StepOutcome, StepVerdict, class_of_error, overall, worst_of};
use chrono::{DateTime, Utc};
use crm_access::KeyRefusal;
use crm_access::classify::UpstreamReading;
use crm_app::acceptance::{UpstreamKeyProbe, smoke_upstream_model};
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
        tracing::info!(
            file = %record.file,
            verdict = %record.verdict,
            "{}",
            record.summary
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

    async fn install_pack(
        &mut self,
        c: &Chain,
    ) -> (Concluded, Option<(ProviderRef, ProviderSpec)>) {
        let installed: crm_app::Result<InstalledPack> = match &c.pack {
            PackSource::File(p) => self.app.install_pack_file(p).await,
            PackSource::Bundled(id) => self.app.install_bundled_pack(id).await,
        };
        let pack = match installed {
            Ok(p) => p,
            Err(e) => {
                return (
                    Concluded::error(&e, "the pack could not be installed"),
                    None,
                );
            }
        };
        self.header.pack = Some(PackInfo {
            id: pack.manifest.pack_id.to_string(),
            version: pack.manifest.version.clone(),
            checksum: pack.checksum.clone(),
            source: c.pack.to_string(),
        });
        let mut data = json!({
            "pack_id": pack.manifest.pack_id,
            "version": pack.manifest.version,
            "checksum": pack.checksum,
            "origin": pack.origin,
            "installed_at": pack.installed_at,
            "providers": pack.manifest.providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        });
        let reference = match c.provider.split_once('/') {
            Some(_) => ProviderRef::parse(&c.provider).map_err(|e| e.to_string()),
            None => Ok(ProviderRef::new(
                pack.manifest.pack_id.as_str(),
                c.provider.as_str(),
            )),
        };
        let reference = match reference {
            Ok(r) if r.pack == pack.manifest.pack_id => r,
            Ok(r) => {
                return (
                    Concluded::new(
                        Verdict::Fail,
                        format!(
                            "provider {r} is not in the pack under test ({} {})",
                            pack.manifest.pack_id, pack.manifest.version
                        ),
                        data,
                    ),
                    None,
                );
            }
            Err(e) => return (Concluded::new(Verdict::Fail, e, data), None),
        };
        let spec = match self.app.provider_spec(&reference, None).await {
            Ok(s) => s,
            Err(e) => {
                let mut c = Concluded::error(&e, "the provider is not usable");
                c.data = data;
                return (c, None);
            }
        };
        let modes: Vec<AccessMode> = c.keys_by_mode.iter().map(|(m, _)| *m).collect();
        let unsold: Vec<&str> = modes
            .iter()
            .filter(|m| !spec.access.modes.contains(m))
            .map(|m| m.as_str())
            .collect();
        data["provider"] = json!({
            "ref": reference,
            "display_name": spec.display_name,
            "openai_base_url": spec.openai_base_url,
            "platform": spec.platform,
            "account_mode": spec.account_mode,
            "smoke_test_model": spec.smoke_test_model,
            "smoke_upstream_model": smoke_upstream_model(&spec),
            "modes": spec.access.modes,
            "quota_limited": spec.quota_limited,
            "models": spec.models.iter().map(|m| json!({
                "name": m.name, "upstream_name": m.upstream_name, "price": m.price,
            })).collect::<Vec<_>>(),
        });
        let concluded = if unsold.is_empty() {
            Concluded::new(
                Verdict::Pass,
                format!(
                    "pack {} {} installed (checksum {}); {} declares the modes under test",
                    pack.manifest.pack_id,
                    pack.manifest.version,
                    short(&pack.checksum),
                    reference
                ),
                data,
            )
        } else {
            Concluded::new(
                Verdict::Fail,
                format!(
                    "{reference} is not sold in {} mode (the pack allows: {})",
                    unsold.join(", "),
                    spec.access
                        .modes
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                data,
            )
        };
        let ok = concluded.verdict != StepVerdict::Fail;
        (concluded, ok.then_some((reference, spec)))
    }

    async fn probe(&mut self, c: &Chain) -> Concluded {
        // A database kept from an earlier run (`--db`) may know the host.
        match self.app.host(HOST_NAME).await {
            Ok(known) if same_url(&known.base_url, &c.url) => {}
            Ok(known) => {
                return Concluded::new(
                    Verdict::Fail,
                    format!(
                        "this database registers host {HOST_NAME:?} at {}, not {}; use another --db",
                        known.base_url, c.url
                    ),
                    json!({ "registered_url": known.base_url }),
                );
            }
            Err(_) => {
                let added = self
                    .app
                    .add_host(NewHost {
                        name: HOST_NAME.into(),
                        base_url: c.url.clone(),
                        admin_key: AdminKeySource::Value(c.admin_key.clone()),
                        reconcile_every_secs: None,
                    })
                    .await;
                if let Err(e) = added {
                    return Concluded::error(&e, "the host could not be registered");
                }
            }
        }
        let view = match self.app.probe_host(HOST_NAME).await {
            Ok(v) => v,
            Err(e) => return Concluded::error(&e, "the host probe failed"),
        };
        self.header.host.version = view.version.clone();
        let data =
            serde_json::to_value(&view).unwrap_or_else(|e| json!({ "error": e.to_string() }));
        let version = view.version.clone().unwrap_or_else(|| "unknown".into());
        let Some(caps) = &view.capabilities else {
            return Concluded::new(Verdict::Fail, "the probe stored no capabilities", data);
        };
        match &caps.admin_auth {
            AdminAuth::Ok if caps.chat_completions => Concluded::new(
                Verdict::Pass,
                format!("sub2api {version}: admin key accepted, /v1/chat/completions present"),
                data,
            ),
            AdminAuth::Ok => Concluded::new(
                Verdict::PassWithAdvisories,
                format!(
                    "sub2api {version}: admin key accepted, but the host has no /v1/chat/completions (OpenAI-compatible clients cannot call it)"
                ),
                data,
            )
            .class(Some(FailureClass::RouteMissing)),
            AdminAuth::ComplianceGate { document_url } => Concluded::new(
                Verdict::Fail,
                format!(
                    "sub2api {version}: admin routes answer 423 until an administrator accepts the compliance notice{}",
                    document_url
                        .as_deref()
                        .map(|u| format!(" at {u}"))
                        .unwrap_or_default()
                ),
                data,
            )
            .class(Some(FailureClass::AuthIssue)),
            AdminAuth::Rejected { reason } => Concluded::new(
                Verdict::Fail,
                format!("sub2api {version}: the admin key is rejected ({reason})"),
                data,
            )
            .class(Some(FailureClass::AuthIssue)),
        }
    }

    async fn preview(&mut self, r: &ProviderRef, c: &Chain) -> Concluded {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut class = None;
        for (mode, keys) in &c.keys_by_mode {
            match self.app.preview(HOST_NAME, r, *mode, keys.clone()).await {
                Ok(p) => {
                    let blocked: Vec<String> = p
                        .plan
                        .blocked()
                        .map(|i| {
                            format!(
                                "{} {}: {}",
                                i.kind,
                                i.name,
                                i.reason.as_deref().unwrap_or("blocked")
                            )
                        })
                        .collect();
                    if blocked.is_empty() {
                        verdicts.push(Verdict::Pass);
                        notes.push(format!(
                            "{mode}: {} to create, {} to adopt, {} unchanged",
                            p.plan.count(crm_domain::PlanAction::Create),
                            p.plan.count(crm_domain::PlanAction::Adopt),
                            p.plan.count(crm_domain::PlanAction::NoOp)
                        ));
                    } else {
                        verdicts.push(Verdict::Fail);
                        notes.push(format!("{mode}: blocked: {}", blocked.join("; ")));
                    }
                    per_mode.push(json!({ "mode": mode, "report": p }));
                }
                Err(e) => {
                    verdicts.push(Verdict::Fail);
                    class = class.or(class_of_error(&e));
                    notes.push(format!("{mode}: preview failed: {e}"));
                    per_mode.push(json!({ "mode": mode, "error": e.to_string() }));
                }
            }
        }
        let verdict = worst_of(verdicts).unwrap_or(Verdict::Fail);
        Concluded::new(verdict, notes.join("; "), json!({ "previews": per_mode })).class(class)
    }

    async fn import(&mut self, r: &ProviderRef, c: &Chain) -> (Concluded, Vec<Imported>) {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut class = None;
        let mut done = Vec::new();
        for (mode, keys) in &c.keys_by_mode {
            let input = ImportInput {
                host: HOST_NAME.into(),
                provider: r.clone(),
                mode: *mode,
                upstream_keys: keys.clone(),
                user: c
                    .user
                    .as_ref()
                    .map(|u| (u.email.clone(), u.password.clone())),
                starting_balance: None,
                verify: true,
            };
            match self.app.import(input).await {
                Ok(report) => {
                    let ok = report.succeeded();
                    verdicts.push(if ok { Verdict::Pass } else { Verdict::Fail });
                    notes.push(format!(
                        "{mode}: batch {} {}{}",
                        report.batch.id,
                        report.batch.status,
                        report
                            .error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ));
                    per_mode.push(json!({ "mode": mode, "report": report }));
                    done.push(Imported {
                        mode: *mode,
                        result: Ok(report),
                    });
                }
                Err(e) => {
                    verdicts.push(Verdict::Fail);
                    class = class.or(class_of_error(&e));
                    notes.push(format!("{mode}: import failed: {e}"));
                    per_mode.push(json!({ "mode": mode, "error": e.to_string() }));
                    done.push(Imported {
                        mode: *mode,
                        result: Err(e.to_string()),
                    });
                }
            }
        }
        let verdict = worst_of(verdicts).unwrap_or(Verdict::Fail);
        (
            Concluded::new(verdict, notes.join("; "), json!({ "imports": per_mode })).class(class),
            done,
        )
    }

    async fn access_status(&mut self, imported: &[Imported]) -> Concluded {
        let mut per_mode = Vec::new();
        let mut verdicts = Vec::new();
        let mut classes = Vec::new();
        let mut notes = Vec::new();
        for i in imported {
            let report = match &i.result {
                Ok(r) => r,
                Err(e) => {
                    notes.push(format!("{}: no access check, the import failed", i.mode));
                    per_mode.push(json!({ "mode": i.mode, "import_error": e }));
                    continue;
                }
            };
            // Read back: closing the second mode can move the first to `fully_ready`.
            let batch = self.app.batch(report.batch.id.as_str()).await.ok();
            let access_status = batch
                .as_ref()
                .map(|b| b.access_status)
                .unwrap_or(report.access_status);
            match &report.access_check {
                Some(check) => {
                    verdicts.push(check.verdict);
                    if check.verdict != Verdict::Pass {
                        classes.push((check.verdict, check.failure_class));
                    }
                    notes.push(format!(
                        "{}: {} ({}){}",
                        i.mode,
                        check.verdict,
                        access_status,
                        check
                            .failure_class
                            .map(|c| format!(" {c}: {}", check.summary))
                            .unwrap_or_else(|| format!(": {}", check.summary))
                    ));
                }
                None => {
                    verdicts.push(Verdict::Fail);
                    notes.push(format!(
                        "{}: access was not verified (batch {})",
                        i.mode, report.batch.status
                    ));
                }
            }
            per_mode.push(json!({
                "mode": i.mode,
                "batch_id": report.batch.id,
                "access_status": access_status,
                "access_plan": report.access_plan,
                "check": report.access_check,
            }));
        }
        let verdict = worst_of(verdicts.iter().copied()).unwrap_or(Verdict::Fail);
        // The class of the worst check decides (a failure over an advisory).
        let class = classes
            .iter()
            .filter(|(v, _)| *v == verdict)
            .find_map(|(_, c)| *c);
        Concluded::new(verdict, notes.join("; "), json!({ "checks": per_mode })).class(class)
    }

    /// Reads the closure secrets back so the leak scan covers them. Returns
    /// what could not be read (reported, not fatal).
    async fn reveal_closure_secrets(&mut self, imported: &[Imported]) -> Vec<String> {
        let mut unchecked = Vec::new();
        for i in imported {
            let Ok(report) = &i.result else { continue };
            match self.app.closure_secrets(&report.batch.id).await {
                Ok(Some(s)) => {
                    self.secrets.add(SecretKind::UserPassword, s.user_password);
                    self.secrets.add(SecretKind::UserKey, s.user_key);
                }
                Ok(None) => {}
                Err(e) => unchecked.push(format!("batch {}: {e}", report.batch.id)),
            }
        }
        unchecked
    }

    async fn reconcile(&mut self, r: &ProviderRef) -> Concluded {
        let report = match self
            .app
            .reconcile(ReconcileRequest {
                host: HOST_NAME.into(),
                provider: Some(r.clone()),
                ..ReconcileRequest::default()
            })
            .await
        {
            Ok(rep) => rep,
            Err(e) => return Concluded::error(&e, "reconcile failed"),
        };
        let items = report.run.items.len();
        let data = json!({ "report": report });
        match report.run.status {
            ReconcileStatus::InSync => Concluded::new(
                Verdict::Pass,
                format!("{r} is in sync with the journal right after import"),
                data,
            ),
            ReconcileStatus::Drifted => Concluded::new(
                Verdict::Fail,
                format!(
                    "{items} drift item(s) right after crm's own import: the host does not keep what crm wrote"
                ),
                data,
            ),
            ReconcileStatus::Unreachable => Concluded::new(
                Verdict::Fail,
                "the host became unreachable during reconcile",
                data,
            )
            .class(Some(FailureClass::HostUnreachable)),
            ReconcileStatus::Error => Concluded::new(
                Verdict::Fail,
                format!(
                    "reconcile ended in error: {}",
                    report.run.error.as_deref().unwrap_or("no detail")
                ),
                data,
            ),
        }
    }

    async fn rollback(&mut self, r: &ProviderRef) -> (Concluded, Concluded) {
        let views: Vec<RollbackView> = match self.app.rollback_provider(HOST_NAME, r).await {
            Ok(v) => v,
            Err(e) => {
                let c = Concluded::error(&e, "rollback failed");
                return (
                    c,
                    Concluded::skipped("skipped: the rollback failed (11-rollback.json)"),
                );
            }
        };
        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        for v in &views {
            let ok = v.report.status == BatchStatus::RolledBack;
            verdicts.push(if ok { Verdict::Pass } else { Verdict::Fail });
            notes.push(format!(
                "batch {} {}: {} deleted, {} kept, {} left{}",
                v.report.batch,
                v.report.status,
                v.report.deleted.len(),
                v.report.kept.len(),
                v.report.left.len(),
                if v.report.left.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.report.left.join("; "))
                }
            ));
        }
        let rollback = if views.is_empty() {
            Concluded::new(
                Verdict::Pass,
                "no live batch to roll back",
                json!({ "rollbacks": [] }),
            )
        } else {
            Concluded::new(
                worst_of(verdicts).unwrap_or(Verdict::Fail),
                notes.join("; "),
                json!({ "rollbacks": views }),
            )
        };

        let mut verdicts = Vec::new();
        let mut notes = Vec::new();
        let mut per_batch = Vec::new();
        for v in &views {
            let batch = self.app.batch(v.report.batch.as_str()).await.ok();
            let checks = self
                .app
                .batch_detail(v.report.batch.as_str())
                .await
                .map(|d| d.access_checks)
                .unwrap_or_default();
            let refusal_check = checks.last().cloned();
            let (verdict, note) = match v.key_refusal {
                Some(KeyRefusal::Refused) => (
                    Some(Verdict::Pass),
                    format!("batch {}: the user key is refused", v.report.batch),
                ),
                Some(KeyRefusal::StillServed) => (
                    Some(Verdict::Fail),
                    format!(
                        "batch {}: the user key is STILL served after rollback; delete it on the host by hand",
                        v.report.batch
                    ),
                ),
                Some(KeyRefusal::Inconclusive) => (
                    Some(Verdict::PassWithAdvisories),
                    format!(
                        "batch {}: could not tell whether the user key is refused",
                        v.report.batch
                    ),
                ),
                None => (
                    None,
                    format!("batch {}: had no access closure to check", v.report.batch),
                ),
            };
            if let Some(v) = verdict {
                verdicts.push(v);
            }
            notes.push(note);
            per_batch.push(json!({
                "batch_id": v.report.batch,
                "batch_status": batch.as_ref().map(|b| b.status),
                "access_status": batch.as_ref().map(|b| b.access_status),
                "key_refusal": v.key_refusal,
                "check": refusal_check,
            }));
        }
        let post = match worst_of(verdicts) {
            Some(v) => Concluded::new(v, notes.join("; "), json!({ "batches": per_batch })),
            None => Concluded::skipped("skipped: no batch had an access closure to check"),
        };
        (rollback, post)
    }

    async fn upstream(
        &mut self,
        r: &ProviderRef,
        spec: &ProviderSpec,
        c: &Chain,
    ) -> (Concluded, Concluded) {
        let mut keys: Vec<SecretString> = Vec::new();
        for (_, ks) in &c.keys_by_mode {
            for k in ks {
                if !keys.iter().any(|x| {
                    secrecy::ExposeSecret::expose_secret(x)
                        == secrecy::ExposeSecret::expose_secret(k)
                }) {
                    keys.push(k.clone());
                }
            }
        }
        let probes = match self.app.probe_upstream_keys(r, &keys).await {
            Ok(p) => p,
            Err(e) => {
                return (
                    Concluded::error(&e, "the upstream probe failed"),
                    Concluded::error(&e, "the upstream probe failed"),
                );
            }
        };
        let model = smoke_upstream_model(spec);
        let models = conclude_upstream(
            &probes,
            |p| &p.models_reading,
            |p| {
                json!({
                    "key": p.key,
                    "base_url": p.base_url,
                    "status": p.models.status,
                    "ok": p.models.ok,
                    "error_type": p.models.error_type,
                    "error_code": p.models.error_code,
                    "message": p.models.message,
                    "latency_ms": p.models.latency_ms,
                    "transport_error": p.models.transport_error,
                    "body_excerpt": p.models.body_excerpt,
                    "model_ids": p.model_ids,
                    "smoke_model": p.chat_model,
                    "smoke_model_listed": p.model_listed,
                    "reading": p.models_reading,
                    "failure_class": crm_app::acceptance::reading_class(&p.models_reading),
                })
            },
            "GET /models",
        );
        let completion = conclude_upstream(
            &probes,
            |p| &p.chat_reading,
            |p| {
                json!({
                    "key": p.key,
                    "base_url": p.base_url,
                    "model": p.chat_model,
                    "status": p.chat.status,
                    "ok": p.chat.ok,
                    "error_type": p.chat.error_type,
                    "error_code": p.chat.error_code,
                    "message": p.chat.message,
                    "latency_ms": p.chat.latency_ms,
                    "transport_error": p.chat.transport_error,
                    "body_excerpt": p.chat.body_excerpt,
                    "reading": p.chat_reading,
                    "key_reading": p.reading,
                    "failure_class": p.failure_class,
                })
            },
            &format!("POST /chat/completions ({model})"),
        );
        (models, completion)
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim().trim_end_matches('/')
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}

fn reading_verdict(r: &UpstreamReading) -> Verdict {
    match r {
        UpstreamReading::Answers => Verdict::Pass,
        UpstreamReading::RateLimited { .. } => Verdict::PassWithAdvisories,
        _ => Verdict::Fail,
    }
}

fn conclude_upstream(
    probes: &[UpstreamKeyProbe],
    reading: impl Fn(&UpstreamKeyProbe) -> &UpstreamReading,
    entry: impl Fn(&UpstreamKeyProbe) -> Value,
    what: &str,
) -> Concluded {
    let mut verdicts = Vec::new();
    let mut notes = Vec::new();
    let mut classes = Vec::new();
    for p in probes {
        let r = reading(p);
        let v = reading_verdict(r);
        verdicts.push(v);
        let class = crm_app::acceptance::reading_class(r);
        if v != Verdict::Pass {
            classes.push((v, class));
        }
        let latency = match what.starts_with("GET") {
            true => p.models.latency_ms,
            false => p.chat.latency_ms,
        };
        let status = match what.starts_with("GET") {
            true => p.models.status,
            false => p.chat.status,
        };
        // Informative only: providers accept aliases their listing omits,
        // and the host's own /v1/models (07) is the gate that matters.
        let unlisted = if what.starts_with("GET") && p.models.ok && !p.model_listed {
            format!(", {} not in the listing", p.chat_model)
        } else {
            String::new()
        };
        notes.push(format!(
            "key {}: {} HTTP {} in {latency} ms{}{unlisted}",
            p.key,
            v,
            status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            class.map(|c| format!(" ({c})")).unwrap_or_default()
        ));
    }
    let verdict = worst_of(verdicts.iter().copied()).unwrap_or(Verdict::Fail);
    let class = classes
        .iter()
        .filter(|(v, _)| *v == verdict)
        .find_map(|(_, c)| *c);
    Concluded::new(
        verdict,
        format!("{what} directly: {}", notes.join("; ")),
        json!({ "probes": probes.iter().map(entry).collect::<Vec<_>>() }),
    )
    .class(class)
}
