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
