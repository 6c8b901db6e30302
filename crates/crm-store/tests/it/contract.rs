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
