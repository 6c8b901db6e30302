//! Funds readings on this adapter (schema V4).

use crate::support::{open, temp_db};
use crm_store::contract;

#[tokio::test]
async fn funds_story_passes_on_a_temp_file_database() {
    let (_dir, db) = temp_db();
    let store = open(&db).await;
    contract::run_funds_story(&store).await;
}
