//! A fresh schema per test, and the skip rule.

use crm_domain::ports::Clock;
use crm_store::{SealKeySource, StoreOptions, parse_key_text};
use crm_store_postgres::{PgTarget, PostgresStore};
use std::path::Path;
use std::sync::Arc;

pub const URL_ENV: &str = "CRM_TEST_POSTGRES_URL";

/// The test database, or `None` after printing why the test is skipped.
pub fn target(test: &str) -> Option<PgTarget> {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => Some(PgTarget::parse(&url, None).expect("a usable test URL")),
        _ => {
            // Straight to stderr, not eprintln!: libtest captures the print
            // macros of passing tests, and a skip must be seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {URL_ENV} is not set (see .ci/run for a throwaway cluster)"
            );
            None
        }
    }
}

/// A new empty schema of the test database.
pub async fn fresh_schema(t: &PgTarget) -> PgTarget {
    let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
    t.create_schema(&name).await.expect("create a test schema");
    t.clone().with_schema(&name)
}

pub const SEAL_KEY_HEX: &str = "0101010101010101010101010101010101010101010101010101010101010101";

/// Options naming a pepper file in `dir` and a fixed seal key.
pub fn options(dir: &Path, clock: Option<Arc<dyn Clock>>) -> StoreOptions {
    let mut o = StoreOptions::default()
        .with_pepper_file(dir.join("pepper"))
        .with_seal_key(SealKeySource::Key(parse_key_text(SEAL_KEY_HEX).unwrap()));
    if let Some(c) = clock {
        o = o.with_clock(c);
    }
    o
}

pub async fn open(t: &PgTarget, dir: &Path, clock: Option<Arc<dyn Clock>>) -> PostgresStore {
    PostgresStore::open(t, options(dir, clock))
        .await
        .expect("open the PostgreSQL store")
}

/// A new empty schema, its name, and a plain client whose search path is it
/// (for tests that write rows as an older crm would have).
pub async fn fresh_schema_with_client(
    t: &PgTarget,
) -> (
    PgTarget,
    tokio_postgres::Client,
    tokio::task::JoinHandle<()>,
) {
    let name = format!("crm_test_{}", uuid::Uuid::new_v4().simple());
    t.create_schema(&name).await.expect("create a test schema");
    let url = std::env::var(URL_ENV).expect("the test URL");
    let mut config: tokio_postgres::Config = url.parse().expect("a usable test URL");
    config.options(format!("-c search_path={name}"));
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (t.clone().with_schema(&name), client, task)
}

/// Everything this test binary logs, for tests that check what a warning
/// names (and that it never holds a secret). One global subscriber: the
/// store logs from its own threads, where a scoped one would not see it.
pub fn logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        logs
    })
}

#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// The lines logged so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
