//! A journal intent committed before a crash is pending after reopening.

use crate::support::{aborted, db_files, open, run_child, temp_db};
use crm_domain::BatchId;
use crm_domain::ports::{BatchRepo, HostRepo};
use crm_domain::{BatchStatus, JournalOp, JournalState, ResourceKind};
use crm_store::contract::{batch, host, intent};
use crm_store::{SealKeySource, SqliteStore, StoreOptions};
use std::path::Path;

const CHILD_DB: &str = "CRM_STORE_TEST_CRASH_DB";

async fn commit_one_intent(store: &SqliteStore) {
    store.add_host(host("h1", "relay-one")).await.unwrap();
    store
        .create_batch(batch(
            "b-1",
            "h1",
            "cn-official/deepseek",
            BatchStatus::Applying,
            0,
        ))
        .await
        .unwrap();
    let e = store
        .record_intent(intent(
            "b-1",
            "acct",
            JournalOp::Create,
            ResourceKind::Account,
        ))
        .await
        .unwrap();
    assert_eq!(e.state, JournalState::Pending);
}

async fn assert_pending_after_reopen(db: &Path) {
    assert_pending_in(open(db).await).await;
}

async fn assert_pending_in(store: SqliteStore) {
    let pending = store.pending_intents(None).await.unwrap();
    assert_eq!(pending.len(), 1, "the committed intent survived");
    assert_eq!(pending[0].intent_key, "b-1/acct");
    assert_eq!(pending[0].state, JournalState::Pending);
    assert_eq!(pending[0].seq, 1);
}

/// The child process commits an intent and then dies with `abort()`: no
/// destructors, no connection close, no WAL checkpoint.
#[tokio::test]
async fn intent_committed_before_a_process_crash_is_pending_after_restart() {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        let store = open(Path::new(&db)).await;
        commit_one_intent(&store).await;
        std::process::abort();
    }
    let (_dir, db) = temp_db();
    let status = run_child(
        "durability::intent_committed_before_a_process_crash_is_pending_after_restart",
        &[(CHILD_DB, db.to_str().unwrap())],
    );
    assert!(
        aborted(status),
        "the child crashed where intended: {status}"
    );
    let files = db_files(&db);
    let wal = files.iter().find(|(name, _)| name.ends_with("-wal"));
    assert!(
        wal.is_some_and(|(_, bytes)| !bytes.is_empty()),
        "the crash left the commit in the WAL, un-checkpointed"
    );
    assert_pending_after_reopen(&db).await;
}

/// The same in one process: the store is leaked, so its connection is never
/// closed, and a second store opens the file beside it.
#[tokio::test]
async fn intent_committed_before_a_leaked_store_is_pending_after_reopen() {
    let (_dir, db) = temp_db();
    let store = open(&db).await;
    commit_one_intent(&store).await;
    std::mem::forget(store);
    assert_pending_after_reopen(&db).await;
}

/// Two connections appending to one batch journal at once still number it
/// 1, 2, 3, ... with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_keep_the_journal_gapless() {
    let (_dir, db) = temp_db();
    let a = open(&db).await;
    let b = open(&db).await;
    a.add_host(host("h1", "relay-one")).await.unwrap();
    a.create_batch(batch(
        "b-1",
        "h1",
        "cn-official/deepseek",
        BatchStatus::Applying,
        0,
    ))
    .await
    .unwrap();
    let write = |store: SqliteStore, who: &'static str| async move {
        for i in 0..20 {
            let key = format!("{who}-{i}");
            store
                .record_intent(intent(
                    "b-1",
                    &key,
                    JournalOp::Create,
                    ResourceKind::Account,
                ))
                .await
                .unwrap();
        }
    };
    tokio::join!(write(a.clone(), "a"), write(b.clone(), "b"));
    let seqs: Vec<u32> = a
        .journal(&BatchId::new("b-1"))
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<u32>>());
}

/// `backup_to` takes a consistent copy while the store is open.
#[tokio::test]
async fn a_backup_opens_with_the_same_records() {
    let (dir, db) = temp_db();
    let store = open(&db).await;
    commit_one_intent(&store).await;
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy).await.unwrap();
    drop(store);
    // The copy's sealed values open only with the original's seal key: a
    // copy opened without it (its own `<copy>.keys` is empty) is refused,
    // and the error says which key to give.
    let err = SqliteStore::open(&copy, StoreOptions::default())
        .await
        .expect_err("a backup opened without its seal key")
        .to_string();
    assert!(err.contains("CRM_SEAL_KEY_FILE"), "{err}");
    let keys = crm_store::default_keys_dir(&db);
    let with_its_keys = StoreOptions::default()
        .with_pepper_file(keys.join("pepper"))
        .with_seal_key(SealKeySource::File(keys.join("seal.key")));
    assert_pending_in(SqliteStore::open(&copy, with_its_keys).await.unwrap()).await;
}
