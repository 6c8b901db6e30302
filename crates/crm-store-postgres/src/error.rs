//! The crate's own error, for opening a store (URL, password, keys,
//! connection, migrations). Messages never hold the password.

use crm_domain::ports::StoreError;

/// Why a PostgreSQL store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the database URL is not a PostgreSQL URL ({detail}); expected postgres://user@host:port/dbname"
    )]
    BadUrl { detail: String },
    #[error("database password: {detail}")]
    Password { detail: String },
    #[error("cannot connect to {target}: {detail}")]
    Connect { target: String, detail: String },
    #[error(
        "cannot migrate {target}: {detail}; restore a backup or open it with the crm version that created it"
    )]
    Migrate { target: String, detail: String },
    #[error(
        "a PostgreSQL store is shared by every replica, so its keys must be named, not kept beside a file: missing {what}"
    )]
    KeysNotNamed { what: String },
    #[error("keys: {detail}")]
    Keys { detail: String },
    #[error(
        "{target} was set up with another fingerprint pepper than this process's CRM_PEPPER_FILE; copy the pepper file every other replica uses"
    )]
    PepperMismatch { target: String },
    #[error(
        "{target} was set up with another seal key than this process's ({detail}); set CRM_SEAL_KEY or CRM_SEAL_KEY_FILE to the key every other replica uses (copy its seal key file)"
    )]
    SealKeyMismatch { target: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
