//! Raw checks of a crm database file, read-only and beside the running
//! application: SQLite's own integrity check, foreign keys, and the rows
//! that must never be half-written.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Problems found in the database at `path` (empty when consistent).
pub fn consistency(path: &Path) -> Vec<String> {
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot open {}: {e}", path.display())],
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let mut out = Vec::new();
    match conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => {}
        Ok(s) => out.push(format!("integrity_check: {s}")),
        Err(e) => out.push(format!("integrity_check failed: {e}")),
    }
    match conn.prepare("PRAGMA foreign_key_check") {
        Ok(mut stmt) => {
            let rows = stmt.query_map([], |r| {
                Ok(format!(
                    "foreign key broken in {} row {:?} -> {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?
                ))
            });
            match rows {
                Ok(rows) => out.extend(rows.filter_map(|r| r.ok())),
                Err(e) => out.push(format!("foreign_key_check failed: {e}")),
            }
        }
        Err(e) => out.push(format!("foreign_key_check failed: {e}")),
    }
    out
}

/// Rows per table, to show that a refused request wrote nothing.
pub fn row_counts(path: &Path) -> Vec<(String, i64)> {
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return vec![];
    };
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))
                .map(|rows| rows.filter_map(|r| r.ok()).collect())
        })
        .unwrap_or_default();
    tables
        .into_iter()
        // The request log and idempotency records grow with every call by
        // design; audit events record refusals too.
        .filter(|t| !matches!(t.as_str(), "audit_events" | "idempotency_keys"))
        .filter_map(|t| {
            let n = conn
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| {
                    r.get::<_, i64>(0)
                })
                .ok()?;
            Some((t, n))
        })
        .collect()
}
