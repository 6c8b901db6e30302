//! The crate's own error, for opening a store (files, keys, migrations).
//!
//! Repository calls answer with the domain's [`StoreError`], because that is
//! what the ports promise; [`Error`] covers what happens before there is a
//! store to call.

use crm_domain::ports::StoreError;
use std::path::PathBuf;

/// Why a store could not be opened or a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "cannot migrate database {path}: {detail}; restore a backup or open it with the crm version that created it"
    )]
    Migrate { path: PathBuf, detail: String },
    #[error("key file {path}: {detail}")]
    KeyFile { path: PathBuf, detail: String },
    #[error("{var} is not a 32-byte key in hex (64 digits) or base64")]
    BadKeyEnv { var: &'static str },
    #[error(
        "database {path} was first opened with another seal key than this process's ({detail}); start with the key every other crm process of this database uses: set CRM_SEAL_KEY or CRM_SEAL_KEY_FILE to it, or set neither to use {keys}"
    )]
    SealKeyMismatch {
        path: PathBuf,
        keys: PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s,
            Error::KeyFile { .. } | Error::BadKeyEnv { .. } => StoreError::Sealing {
                detail: e.to_string(),
            },
            other => StoreError::Backend {
                detail: other.to_string(),
            },
        }
    }
}
