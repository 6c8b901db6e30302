//! The seal key check: every process that opens a database must hold the
//! seal key the database was first opened with (docs/design.md §5
//! "Secrets"). Several `crm-server` replicas over one PostgreSQL, or the
//! CLI beside the server on one SQLite file, each name their key on their
//! own (`CRM_SEAL_KEY`, `CRM_SEAL_KEY_FILE`, `<db>.keys/seal.key`); one
//! with another key would seal values nobody else can open and fail to
//! open theirs.
//!
//! On the first open a fixed label is sealed under
//! [`SealContext::seal_key_check`] and kept in the `installation` table
//! under [`NAME`]; every later open must open it, or the store refuses to
//! open. The check value is a ciphertext like any sealed value: it tells
//! nothing about the key.
//!
//! This module holds the rules both adapters share; each adapter reads and
//! writes its own `installation` row.

use crate::keys::Sealer;
use crate::reseal::Resealed;
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::ports::{SecretSealer, StoreResult};
use crm_domain::secret::ExposeSecret;

/// The `installation` row holding the check value.
pub const NAME: &str = "seal_check";

/// What is sealed. Changing it would refuse every existing installation.
const LABEL: &str = "crm seal key check v1";

/// A fresh check value for this process's key (creating a key file that
/// does not exist yet, as any first seal does).
pub fn value(sealer: &Sealer) -> StoreResult<String> {
    sealer
        .seal(
            &SealContext::seal_key_check(),
            &crm_domain::SecretString::from(LABEL),
        )
        .map(|s| s.0)
}

/// Whether this process's key opens the stored check value: `Err` with
/// why not (never holding a key).
pub fn verify(sealer: &Sealer, stored: &str) -> Result<(), String> {
    let opened = sealer
        .open(
            &SealContext::seal_key_check(),
            &SealedSecret(stored.to_owned()),
        )
        .map_err(|e| e.to_string())?;
    if opened.expose_secret() == LABEL {
        Ok(())
    } else {
        Err("the check value opens to something else".into())
    }
}

/// Whether this open may record the first check value. Not when the
/// re-seal step just found old values and this key opened none of them:
/// the key is then likely not the database's, and recording it would lock
/// out the right one. The check is recorded at a later open instead.
pub fn may_record(resealed: Option<&Resealed>) -> bool {
    resealed.is_none_or(|r| r.left == 0 || r.admin_keys + r.login_passwords > 0)
}

/// The warning when [`may_record`] says no.
pub fn warn_not_recorded() {
    tracing::warn!(
        "the seal key check is not recorded yet: this seal key opened none of the old sealed values of this database (each named above), so it may not be the database's key; it is recorded at the first open whose key opens them"
    );
}
