//! Embedded schema migrations (`migrations/V<n>__<name>.sql`).
//!
//! The SQL files are compiled into the binary, so a deployed `crm` can
//! always bring its database up to date. Released files are never edited:
//! refinery stores a checksum of each applied file and refuses to run when
//! an applied one changed (`abort_divergent`), or when the database has a
//! migration this binary does not know (`abort_missing`, i.e. an older crm
//! opening a newer database).

use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Applies the embedded migrations up to `target` (all when `None`), all or
/// nothing. Exposed so upgrade tests can build a database at an old version.
pub fn run(conn: &mut Connection, target: Option<i32>) -> Result<(), String> {
    let mut runner = embedded::migrations::runner().set_grouped(true);
    if let Some(v) = target {
        runner = runner.set_target(refinery::Target::Version(v));
    }
    let report = runner.run(conn).map_err(|e| e.to_string())?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queries operators ask (and crash recovery runs) are served by an
    /// index, not a table scan, on the migrated schema.
    #[test]
    fn operator_queries_use_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn, None).unwrap();
        let cases = [
            (
                "SELECT id FROM batches WHERE host_id = 'h' ORDER BY created_at DESC LIMIT 5",
                "batches_by_host",
            ),
            (
                "SELECT id FROM batches WHERE pack_id = 'p' AND provider_key = 'k' ORDER BY created_at DESC",
                "batches_by_provider",
            ),
            (
                "SELECT id FROM batches WHERE status = 'failed' ORDER BY created_at DESC",
                "batches_by_status",
            ),
            (
                "SELECT seq FROM journal WHERE state = 'pending' ORDER BY batch_id, seq",
                "journal_pending",
            ),
            (
                "SELECT host_object_id FROM managed_resources WHERE batch_id = 'b' ORDER BY journal_seq",
                "resources_in_journal_order",
            ),
            (
                "SELECT id FROM reconcile_runs WHERE host_id = 'h' ORDER BY started_at DESC LIMIT 1",
                "reconcile_runs_by_host",
            ),
            (
                "SELECT id FROM reconcile_runs WHERE batch_id = 'b' ORDER BY started_at DESC LIMIT 1",
                "reconcile_runs_by_batch",
            ),
            (
                "SELECT id FROM operations WHERE status IN ('queued', 'running') ORDER BY created_at",
                "operations_unfinished",
            ),
            (
                "DELETE FROM idempotency_keys WHERE created_at < 'x'",
                "idempotency_keys_by_age",
            ),
        ];
        for (sql, index) in cases {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(plan.contains(index), "{sql}\nplan: {plan}");
        }
    }
}
