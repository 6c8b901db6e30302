//! The shared storage story, run on this adapter.

use crate::support::{open, temp_db};
use crm_store::{SqliteStore, StoreOptions, contract};

#[tokio::test]
async fn story_passes_on_a_temp_file_database() {
    let (_dir, db) = temp_db();
    let store = open(&db).await;
    contract::run_story(&store).await;
}

#[tokio::test]
async fn story_passes_in_memory() {
    let store = SqliteStore::open_in_memory(StoreOptions::default())
        .await
        .unwrap();
    contract::run_story(&store).await;
}

#[tokio::test]
async fn story_passes_through_a_trait_object() {
    let (_dir, db) = temp_db();
    let store: std::sync::Arc<dyn crm_domain::ports::Storage> =
        std::sync::Arc::new(open(&db).await);
    contract::run_story(store.as_ref()).await;
}

/// Two stores on one file, as a CLI and a server (or two servers on one
/// machine) have: the replica contract holds on SQLite too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_story_passes_on_two_stores_of_one_file() {
    let (_dir, db) = temp_db();
    let clock = std::sync::Arc::new(crm_store::ManualClock::new(contract::at(0)));
    let opts = || StoreOptions::default().with_clock(clock.clone());
    let a = SqliteStore::open(&db, opts()).await.unwrap();
    let b = SqliteStore::open(&db, opts()).await.unwrap();
    contract::run_replica_story(&a, &b, &|d| clock.advance(d)).await;
}

/// A sealed value opens only in its own row and field: a host's admin key
/// copied into another host row, or a batch's password into another batch,
/// does not open there.
#[tokio::test]
async fn sealing_story_passes_on_a_temp_file_database() {
    let (_dir, db) = temp_db();
    let store = open(&db).await;
    contract::run_sealing_story(&store).await;
}
