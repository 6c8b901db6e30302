//! The seal key check (docs/design.md §5 "Secrets"): a database remembers
//! which seal key first opened it, and a process with another key is
//! refused at open with the fix, never a key.

use crate::support::temp_db;
use crm_domain::SecretString;
use crm_domain::host::SealContext;
use crm_domain::ports::SecretSealer;
use crm_store::{SealKeySource, SqliteStore, StoreOptions, parse_key_text};

const KEY_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const KEY_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

fn with_key(hex: &str) -> StoreOptions {
    StoreOptions::default().with_seal_key(SealKeySource::Key(parse_key_text(hex).unwrap()))
}

/// Before the check, a process with key B opened a database of key A and
/// sealed new values with B: each process then failed on the other's.
#[tokio::test]
async fn a_process_with_another_seal_key_is_refused_at_open() {
    let (_dir, db) = temp_db();
    let store = SqliteStore::open(&db, with_key(KEY_A)).await.unwrap();
    let ctx = SealContext::host_admin_key(&crm_domain::HostId::new("h-1"));
    let sealed = store
        .seal(&ctx, &SecretString::from("admin-key-of-a"))
        .unwrap();
    drop(store);

    let err = SqliteStore::open(&db, with_key(KEY_B))
        .await
        .expect_err("key B on a database of key A")
        .to_string();
    for fix in [
        "another seal key",
        "CRM_SEAL_KEY",
        "CRM_SEAL_KEY_FILE",
        "seal.key",
    ] {
        assert!(err.contains(fix), "the error names the fix ({fix}): {err}");
    }
    for key in [KEY_A, KEY_B] {
        assert!(!err.contains(&key[..16]), "no key in the error: {err}");
    }

    let store = SqliteStore::open(&db, with_key(KEY_A))
        .await
        .expect("key A still opens");
    assert!(store.open(&ctx, &sealed).is_ok());
}

/// The default key file beside the database: created on the first open
/// and checked on every later one; a process told another key (or whose
/// key file is gone) is refused.
#[tokio::test]
async fn the_default_key_file_is_the_databases_key_from_the_first_open() {
    let (_dir, db) = temp_db();
    drop(
        SqliteStore::open(&db, StoreOptions::default())
            .await
            .unwrap(),
    );
    let key_file = crm_store::default_keys_dir(&db).join("seal.key");
    assert!(key_file.exists(), "created at the first open");

    let err = SqliteStore::open(&db, with_key(KEY_B))
        .await
        .expect_err("CRM_SEAL_KEY is not the key of the first open")
        .to_string();
    assert!(err.contains(&key_file.display().to_string()), "{err}");

    let moved = key_file.with_file_name("seal.key.moved");
    std::fs::rename(&key_file, &moved).unwrap();
    let err = SqliteStore::open(&db, StoreOptions::default())
        .await
        .expect_err("the key file is gone")
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(!key_file.exists(), "no new key made in its place");

    std::fs::rename(&moved, &key_file).unwrap();
    drop(
        SqliteStore::open(&db, StoreOptions::default())
            .await
            .unwrap(),
    );
    drop(
        SqliteStore::open(
            &db,
            StoreOptions::default().with_seal_key(SealKeySource::File(key_file)),
        )
        .await
        .expect("the same key, named by CRM_SEAL_KEY_FILE"),
    );
}
