//! Running long actions (probe, import, rollback, reconcile, access checks)
//! as recorded operations, so the browser gets an operation page at once and
//! watches it progress instead of holding a request open for minutes. The
//! runner is crm-app's (`crm_app::OperationRunner`, shared with the API);
//! this module only turns the console's work results into outcomes.
//!
//! The record lives in crm's store through `crm-app`'s operation use cases
//! (`begin_operation`, `operation_progress`, `finish_operation`), so the same
//! operation is visible to the HTTP API and survives as history; a restart
//! marks unfinished ones `interrupted` (crm-app does that on startup).

use crm_app::AppError;
use crm_app::operations::OperationOutcome;
use crm_domain::OperationStatus;

/// What a finished piece of work reports: its result (no secrets) and whether
/// it reached its goal (an import that ended `failed` is a failed operation
/// even though the call itself returned).
#[derive(Debug)]
pub struct WorkDone {
    pub result: serde_json::Value,
    pub succeeded: bool,
    /// Why it did not succeed, when `succeeded` is false.
    pub problem: Option<String>,
}

/// How a finished piece of work is recorded.
pub fn outcome(done: crm_app::Result<WorkDone>) -> OperationOutcome {
    match done {
        Ok(done) => OperationOutcome {
            status: if done.succeeded {
                OperationStatus::Succeeded
            } else {
                OperationStatus::Failed
            },
            result: Some(done.result),
            error: done.problem,
        },
        Err(e) => OperationOutcome {
            status: OperationStatus::Failed,
            result: None,
            error: Some(e.to_string()),
        },
    }
}

pub use crm_app::runner::progress;

/// Serializes a use-case report for the operation record.
pub fn to_json<T: serde::Serialize>(value: &T) -> crm_app::Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| AppError::invalid(format!("cannot record the result: {e}")))
}
