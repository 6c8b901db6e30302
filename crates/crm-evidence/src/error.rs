//! The harness's error: what stopped a run from producing evidence at all.
//!
//! A host that fails a step is not an error here: that is a `fail` verdict
//! written into the evidence. These variants are the cases where no honest
//! evidence can be written (bad arguments, an unwritable folder, a secret
//! found in the output).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write evidence to {path}: {detail}")]
    Write { path: PathBuf, detail: String },
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("matrix file {path}: {detail}")]
    Matrix { path: PathBuf, detail: String },
    #[error("cannot start the simulator: {0}")]
    Sim(String),
    #[error("cannot open crm's temporary database: {0}")]
    App(#[from] crm_app::AppError),
    #[error(
        "secret leak: {hits} occurrence(s) of {kinds} found in {files}; the evidence folder {folder} must not be shared"
    )]
    SecretLeak {
        hits: usize,
        kinds: String,
        files: String,
        folder: PathBuf,
    },
}

impl EvidenceError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        EvidenceError::Invalid(msg.into())
    }
}

pub type Result<T, E = EvidenceError> = std::result::Result<T, E>;
