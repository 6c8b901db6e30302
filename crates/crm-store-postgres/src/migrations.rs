//! Embedded schema migrations (`migrations/V<n>__<name>.sql`), this
//! adapter's own folder. Released files are never edited: refinery keeps a
//! checksum of each applied file and refuses an applied one that changed
//! (`abort_divergent`) or a database with a migration this build does not
//! know (`abort_missing`: an older crm opening a newer database).

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

/// Applies the embedded migrations up to `target` (all when `None`) in one
/// transaction.
pub async fn run(client: &mut tokio_postgres::Client, target: Option<i32>) -> Result<(), String> {
    let mut runner = embedded::migrations::runner().set_grouped(true);
    if let Some(v) = target {
        runner = runner.set_target(refinery::Target::Version(v));
    }
    let report = runner.run_async(client).await.map_err(|e| e.to_string())?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "applied migration");
    }
    Ok(())
}
