//! The shared storage story, and the replica story, run on this adapter.

use crate::support::{fresh_schema, open, target};
use crm_store::{ManualClock, contract};
use std::sync::Arc;

#[tokio::test]
async fn story_passes_on_postgres() {
    let Some(t) = target("story_passes_on_postgres") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&t, dir.path(), None).await;
    contract::run_story(&store).await;
}

#[tokio::test]
async fn story_passes_through_a_trait_object() {
    let Some(t) = target("story_passes_through_a_trait_object") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn crm_domain::ports::Storage> = Arc::new(open(&t, dir.path(), None).await);
    contract::run_story(store.as_ref()).await;
}

/// Two stores (two pools, as two replicas have) on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_story_passes_on_two_stores_of_one_database() {
    let Some(t) = target("replica_story_passes_on_two_stores_of_one_database") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(contract::at(0)));
    let a = open(&t, dir.path(), Some(clock.clone())).await;
    let b = open(&t, dir.path(), Some(clock.clone())).await;
    contract::run_replica_story(&a, &b, &|d| clock.advance(d)).await;
}

#[tokio::test]
async fn funds_story_passes_on_postgres() {
    let Some(t) = target("funds_story_passes_on_postgres") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&t, dir.path(), None).await;
    crm_store::contract::run_funds_story(&store).await;
}

/// A sealed value opens only in its own row and field (the SQLite
/// adapter runs the same story).
#[tokio::test]
async fn sealing_story_passes_on_postgres() {
    let Some(t) = target("sealing_story_passes_on_postgres") else {
        return;
    };
    let t = fresh_schema(&t).await;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&t, dir.path(), None).await;
    contract::run_sealing_story(&store).await;
}
