//! The records the evidence files hold: the steps of a run and their
//! numbered files, `21-summary.json` of one run and `matrix-summary.json` of
//! a matrix. They live apart from the runs that write them so that the
//! renderings (`render`) read them without depending on either run, and the
//! imports of this crate run one way: `matrix` -> `chain` -> `render` ->
//! `summary`.

use crate::config::Modes;
use crate::folder::LeakScan;
use crate::verdict::StepVerdict;
use chrono::{DateTime, Utc};
use crm_domain::{AccessMode, BatchStatus, FailureClass, Verdict};

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

/// The process exit code a verdict maps to.
pub fn exit_code_for(v: Verdict) -> i32 {
    match v {
        Verdict::Pass | Verdict::PassWithAdvisories => 0,
        Verdict::Fail => 1,
    }
}

pub const MATRIX_JSON: &str = "matrix-summary.json";
pub const MATRIX_MD: &str = "matrix-summary.md";

/// One row of the matrix summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellLine {
    pub name: String,
    pub provider: String,
    pub mode: Modes,
    pub host: String,
    /// `None` when the cell could not run at all (see `error`).
    pub verdict: Option<Verdict>,
    pub failure_class: Option<FailureClass>,
    pub exit_code: i32,
    /// The cell's folder, relative to the matrix folder.
    pub folder: Option<String>,
    pub error: Option<String>,
}

/// `matrix-summary.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixSummary {
    pub file: String,
    pub harness: String,
    pub matrix_file: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The worst cell verdict; `fail` when a cell could not run.
    pub verdict: Verdict,
    pub failed_cells: usize,
    pub exit_code: i32,
    pub cells: Vec<CellLine>,
}
