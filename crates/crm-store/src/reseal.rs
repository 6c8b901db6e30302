//! The re-seal step: values sealed before sealing bound them to their row
//! (form `v1`, no associated data) are opened once and sealed again for the
//! place they are kept (form `v2`, docs/design.md §5 "Secrets").
//!
//! A SQL migration cannot see the seal key, so this is a Rust step that
//! each adapter runs right after its SQL migrations (SQLite V6, PostgreSQL
//! V4 create the `data_upgrades` table it records itself in), every time a
//! store opens, until it has re-sealed every v1 value. One pass is one
//! transaction: what it re-sealed, and the record under [`NAME`] once
//! nothing is left, commit together.
//!
//! A value the pass cannot open (the seal key is not the one that sealed
//! it, or the value was altered) does not stop the store from opening: it
//! is left as it is, with a warning naming its table, row and field (never
//! the value), and `open` refuses it at use with a message saying what to
//! do. The pass is then not recorded, so the next open tries those values
//! again (the right key may be given by then).
//!
//! Sealed values live in two places: a host's `admin_credential` JSON
//! (`{"kind":"sealed","sealed":...}`), and the `login_password_sealed`
//! field of the desired spec of a batch's journal entries and managed
//! resources (the closure user and its keys). A spec's `spec_digest` is left
//! as journaled: it describes the spec as first sent, and only the password's
//! ciphertext changes, not what the host was sent.
//!
//! This module holds the rules both adapters share (which values, which
//! context); each adapter reads and writes its own rows.

use crate::clock::ts;
use crate::conn::ConnThread;
use crate::keys::{LEGACY_PREFIX, SEAL_KEY_ENV, SEAL_KEY_FILE_ENV, Sealer};
use crm_domain::BatchId;
use crm_domain::HostId;
use crm_domain::host::{CredentialRef, SealContext, SealedSecret};
use crm_domain::ports::{SecretSealer, StoreResult};
use rusqlite::params;
use std::sync::Arc;

/// The name the pass is recorded under in `data_upgrades`.
pub const NAME: &str = "reseal-v1-values-bound-to-their-row";

/// The field of a desired spec that holds a sealed login password.
pub const LOGIN_PASSWORD_FIELD: &str = "login_password_sealed";

/// What one pass re-sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Host admin keys.
    pub admin_keys: usize,
    /// Journal entries and managed resources whose login password was v1.
    pub login_passwords: usize,
    /// v1 values that did not open, left as they are.
    pub left: usize,
}

impl Resealed {
    /// The `detail` recorded with the pass.
    pub fn detail(&self) -> String {
        format!(
            "{} admin keys and {} login passwords re-sealed for their row",
            self.admin_keys, self.login_passwords
        )
    }
}

fn is_legacy(sealed: &SealedSecret) -> bool {
    sealed
        .0
        .strip_prefix(LEGACY_PREFIX)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// What the pass does with one column.
#[derive(Debug)]
pub enum Step {
    /// It holds no v1 value (a reference, or already v2).
    Unchanged,
    /// The column's new text, its value re-sealed for its row.
    Resealed(String),
    /// It holds a v1 value that does not open: left as it is, for this
    /// reason (which never holds the value).
    Left(String),
}

fn reseal(sealer: &Sealer, ctx: &SealContext, old: &SealedSecret) -> Result<SealedSecret, String> {
    let secret = sealer.open_legacy(old).map_err(|e| e.to_string())?;
    sealer.seal(ctx, &secret).map_err(|e| e.to_string())
}

/// A host's `admin_credential` column re-sealed for the host.
pub fn admin_credential(sealer: &Sealer, host_id: &str, json: &str) -> StoreResult<Step> {
    let Ok(CredentialRef::Sealed { sealed }) = serde_json::from_str::<CredentialRef>(json) else {
        return Ok(Step::Unchanged);
    };
    if !is_legacy(&sealed) {
        return Ok(Step::Unchanged);
    }
    let ctx = SealContext::host_admin_key(&HostId::new(host_id));
    let sealed = match reseal(sealer, &ctx, &sealed) {
        Ok(s) => s,
        Err(reason) => return Ok(Step::Left(reason)),
    };
    crate::sql::to_json(
        "admin credential reference",
        &CredentialRef::Sealed { sealed },
    )
    .map(Step::Resealed)
}

/// A journal entry's or managed resource's `desired` column with its login
/// password re-sealed for the batch and login.
pub fn desired(sealer: &Sealer, batch_id: &str, json: &str) -> StoreResult<Step> {
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(json) else {
        return Ok(Step::Unchanged);
    };
    let Some(old) = spec
        .get(LOGIN_PASSWORD_FIELD)
        .and_then(|v| v.as_str())
        .map(|s| SealedSecret(s.to_owned()))
        .filter(is_legacy)
    else {
        return Ok(Step::Unchanged);
    };
    let batch = BatchId::new(batch_id);
    let Some(ctx) = SealContext::login_password_in(&batch, &spec) else {
        return Ok(Step::Left(format!(
            "the desired spec holds {LOGIN_PASSWORD_FIELD} but names no login (login_email or email)"
        )));
    };
    match reseal(sealer, &ctx, &old) {
        Ok(sealed) => {
            spec[LOGIN_PASSWORD_FIELD] = serde_json::Value::String(sealed.0);
            Ok(Step::Resealed(spec.to_string()))
        }
        Err(reason) => Ok(Step::Left(reason)),
    }
}

/// Tells the operator where a v1 value was left (table, row, field; never
/// the value) and what the value will do: fail at use until the pass can
/// open it.
pub fn warn_left(table: &str, row: &str, field: &str, reason: &str) {
    tracing::warn!(
        table,
        row,
        field,
        reason,
        "a value sealed by an older crm (v1) did not open and was left as it is; it fails when used. Open the database once with the seal key that sealed it ({SEAL_KEY_ENV} or {SEAL_KEY_FILE_ENV}) to re-seal it, or register it again"
    );
}

/// Tells the operator what a pass did, for either adapter: re-sealed values
/// at info, values left at warn, a failed pass at warn with where the seal
/// key comes from (`key_sources`). A failed pass never stops the store from
/// opening (docs/design.md §5): the next open tries again.
pub fn report(outcome: StoreResult<Option<Resealed>>, key_sources: &str) -> Option<Resealed> {
    match outcome {
        Ok(Some(done)) => {
            if done.admin_keys + done.login_passwords > 0 {
                tracing::info!(
                    admin_keys = done.admin_keys,
                    login_passwords = done.login_passwords,
                    "re-sealed v1 values for their row"
                );
            }
            if done.left > 0 {
                tracing::warn!(
                    left = done.left,
                    "some values sealed by an older crm (v1) did not open and were left as they are (each named above); the next open tries them again"
                );
            }
            Some(done)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "values sealed by an older crm (v1) were not re-sealed and fail when used until they are; check the seal key ({key_sources}) and open the database again"
            );
            None
        }
    }
}

/// Runs the pass on a SQLite store unless it is recorded: `Ok(None)` when
/// it already ran, else what it re-sealed and left.
pub(crate) async fn run_sqlite(
    conn: &ConnThread,
    sealer: Arc<Sealer>,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<Resealed>> {
    conn.write(move |txn| {
        let db = crate::sql::db;
        let done: bool = txn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM data_upgrades WHERE name = ?1)",
                [NAME],
                |r| r.get(0),
            )
            .map_err(db)?;
        if done {
            return Ok(None);
        }
        let mut out = Resealed::default();
        let rows = |sql: &str| -> StoreResult<Vec<(i64, String, String)>> {
            let mut stmt = txn.prepare(sql).map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(rows)
        };
        type Named = (i64, (String, String), String);
        let rows_named = |sql: &str| -> StoreResult<Vec<Named>> {
            let mut stmt = txn.prepare(sql).map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?), r.get(3)?)))
                .map_err(db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            Ok(rows)
        };
        // rowid names a row of any of the three tables, whatever its key.
        for (rowid, host, json) in rows(
            "SELECT rowid, id, admin_credential FROM hosts
             WHERE admin_credential LIKE '%\"v1:%'",
        )? {
            match admin_credential(&sealer, &host, &json)? {
                Step::Unchanged => {}
                Step::Resealed(new) => {
                    txn.execute(
                        "UPDATE hosts SET admin_credential = ?1 WHERE rowid = ?2",
                        params![new, rowid],
                    )
                    .map_err(db)?;
                    out.admin_keys += 1;
                }
                Step::Left(reason) => {
                    warn_left("hosts", &host, "admin_credential", &reason);
                    out.left += 1;
                }
            }
        }
        for (table, row) in [
            ("journal", "batch_id || '/' || seq"),
            (
                "managed_resources",
                "batch_id || '/' || kind || '/' || host_object_id",
            ),
        ] {
            for (rowid, (batch, name), json) in rows_named(&format!(
                "SELECT rowid, batch_id, {row}, desired FROM {table}
                 WHERE desired LIKE '%{LOGIN_PASSWORD_FIELD}%'"
            ))? {
                match desired(&sealer, &batch, &json)? {
                    Step::Unchanged => {}
                    Step::Resealed(new) => {
                        txn.execute(
                            &format!("UPDATE {table} SET desired = ?1 WHERE rowid = ?2"),
                            params![new, rowid],
                        )
                        .map_err(db)?;
                        out.login_passwords += 1;
                    }
                    Step::Left(reason) => {
                        let field = format!("desired.{LOGIN_PASSWORD_FIELD}");
                        warn_left(table, &name, &field, &reason);
                        out.left += 1;
                    }
                }
            }
        }
        if out.left == 0 {
            txn.execute(
                "INSERT INTO data_upgrades (name, applied_at, detail) VALUES (?1, ?2, ?3)",
                params![NAME, ts(&now), out.detail()],
            )
            .map_err(db)?;
        }
        Ok(Some(out))
    })
    .await
}
