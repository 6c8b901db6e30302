//! Production implementation of the id port: time-ordered UUIDs (v7), so ids
//! sort by creation time in listings and logs.

use crm_domain::ports::IdSource;

#[derive(Debug, Default, Clone, Copy)]
pub struct UuidIds;

impl IdSource for UuidIds {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
    }
}
