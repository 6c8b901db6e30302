//! Small helpers shared by the repositories: error mapping, the timestamp
//! text form, JSON and vocabulary columns, and cached-statement queries.

use chrono::{DateTime, SecondsFormat, Utc};
use crm_domain::UnknownWord;
use crm_domain::ports::{StoreError, StoreResult};
use deadpool_postgres::GenericClient;
use std::str::FromStr;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

/// Query parameters as tokio-postgres takes them.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A database failure. Only PostgreSQL's message (which names tables,
/// columns and constraints) is kept: its `DETAIL` can quote row values, and
/// no value of ours belongs in an error.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    let detail = match e.as_db_error() {
        Some(d) => format!(
            "PostgreSQL {} {}: {}",
            d.severity(),
            d.code().code(),
            d.message()
        ),
        None => e.to_string(),
    };
    StoreError::Backend { detail }
}

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db(e),
        other => StoreError::Backend {
            detail: format!("no database connection: {other}"),
        },
    }
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

pub(crate) fn is_fk_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// RFC 3339 in UTC with nine fractional digits, exactly as the SQLite
/// adapter writes it: fixed width, so comparing the text (`COLLATE "C"`)
/// compares the times, and lossless.
pub(crate) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_ts(column: &str, s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            detail: format!("column {column} holds '{s}', not a time: {e}"),
        })
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

pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> StoreResult<T> {
    row.try_get(column).map_err(|e| StoreError::Corrupt {
        detail: format!("column {column}: {e}"),
    })
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> StoreResult<T> {
    from_json(column, get::<&str>(row, column)?)
}

pub(crate) fn get_opt_json<T: serde::de::DeserializeOwned>(
    row: &Row,
    column: &str,
) -> StoreResult<Option<T>> {
    get::<Option<&str>>(row, column)?
        .map(|s| from_json(column, s))
        .transpose()
}

pub(crate) fn word<T: FromStr<Err = UnknownWord>>(column: &str, s: &str) -> StoreResult<T> {
    s.parse().map_err(|e: UnknownWord| StoreError::Corrupt {
        detail: format!("column {column}: {e}"),
    })
}

pub(crate) fn get_word<T: FromStr<Err = UnknownWord>>(row: &Row, column: &str) -> StoreResult<T> {
    word(column, get::<&str>(row, column)?)
}

pub(crate) fn get_opt_word<T: FromStr<Err = UnknownWord>>(
    row: &Row,
    column: &str,
) -> StoreResult<Option<T>> {
    get::<Option<&str>>(row, column)?
        .map(|s| word(column, s))
        .transpose()
}

pub(crate) fn get_ts(row: &Row, column: &str) -> StoreResult<DateTime<Utc>> {
    parse_ts(column, get::<&str>(row, column)?)
}

pub(crate) fn get_opt_ts(row: &Row, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<&str>>(row, column)?
        .map(|s| parse_ts(column, s))
        .transpose()
}

pub(crate) fn get_u32(row: &Row, column: &str) -> StoreResult<u32> {
    let v: i64 = get(row, column)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        detail: format!("column {column} holds {v}, out of range"),
    })
}

/// Runs a cached statement and maps every row.
pub(crate) async fn query_all<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: Params<'_>,
    f: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let st = c.prepare_cached(sql).await.map_err(db)?;
    let rows = c.query(&st, params).await.map_err(db)?;
    rows.iter().map(f).collect()
}

/// Runs a cached statement that returns at most one row.
pub(crate) async fn query_opt<C: GenericClient, T>(
    c: &C,
    sql: &str,
    params: Params<'_>,
    f: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let st = c.prepare_cached(sql).await.map_err(db)?;
    let row = c.query_opt(&st, params).await.map_err(db)?;
    row.as_ref().map(f).transpose()
}

/// Runs a cached statement; the number of rows it touched, or the raw error
/// (so callers can tell constraint violations apart).
pub(crate) async fn exec_raw<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.execute(&st, params).await
}

pub(crate) async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    exec_raw(c, sql, params).await.map_err(db)
}

pub(crate) fn not_found(what: impl Into<String>) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

pub(crate) fn one_row(n: u64, what: impl FnOnce() -> String) -> StoreResult<()> {
    if n == 0 {
        Err(not_found(what()))
    } else {
        Ok(())
    }
}
