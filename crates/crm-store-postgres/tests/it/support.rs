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
