//! Small helpers shared by the repositories: error mapping, JSON columns,
//! vocabulary columns and row reading.

use crate::clock::parse_ts;
use chrono::{DateTime, Utc};
use crm_domain::UnknownWord;
use crm_domain::ports::{StoreError, StoreResult};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};
use std::str::FromStr;

/// A database failure. rusqlite errors name columns and constraints, never
/// bound values, so they carry no secrets into messages.
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        detail: e.to_string(),
    }
}

pub(crate) fn is_constraint(e: &rusqlite::Error, code: std::ffi::c_int) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == code)
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
        || is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

pub(crate) fn is_fk_violation(e: &rusqlite::Error) -> bool {
    is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend {
        detail: format!("cannot encode {what} as JSON: {e}"),
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        detail: format!("column {column} does not hold a valid record: {e}"),
    })
}

pub(crate) fn get<T: FromSql>(row: &Row<'_>, column: &str) -> StoreResult<T> {
    row.get(column).map_err(db)
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    column: &str,
) -> StoreResult<T> {
    from_json(column, &get::<String>(row, column)?)
}

pub(crate) fn get_opt_json<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    column: &str,
) -> StoreResult<Option<T>> {
    get::<Option<String>>(row, column)?
        .map(|s| from_json(column, &s))
        .transpose()
}

pub(crate) fn get_word<T: FromStr<Err = UnknownWord>>(
    row: &Row<'_>,
    column: &str,
) -> StoreResult<T> {
    word(column, &get::<String>(row, column)?)
}

pub(crate) fn get_opt_word<T: FromStr<Err = UnknownWord>>(
    row: &Row<'_>,
    column: &str,
) -> StoreResult<Option<T>> {
    get::<Option<String>>(row, column)?
        .map(|s| word(column, &s))
        .transpose()
}

pub(crate) fn word<T: FromStr<Err = UnknownWord>>(column: &str, s: &str) -> StoreResult<T> {
    s.parse().map_err(|e: UnknownWord| StoreError::Corrupt {
        detail: format!("column {column}: {e}"),
    })
}

pub(crate) fn get_ts(row: &Row<'_>, column: &str) -> StoreResult<DateTime<Utc>> {
    parse_ts(column, &get::<String>(row, column)?)
}

pub(crate) fn get_opt_ts(row: &Row<'_>, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<String>>(row, column)?
        .map(|s| parse_ts(column, &s))
        .transpose()
}

pub(crate) fn get_u32(row: &Row<'_>, column: &str) -> StoreResult<u32> {
    let v: i64 = get(row, column)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        detail: format!("column {column} holds {v}, out of range"),
    })
}

pub(crate) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(f(row)?);
    }
    Ok(out)
}

pub(crate) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => f(row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn not_found(what: impl Into<String>) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

/// Clamps a caller's limit to SQLite's integer type.
pub(crate) fn limit(n: Option<u32>) -> i64 {
    n.map_or(-1, i64::from)
}
