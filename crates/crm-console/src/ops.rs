//! Running long actions (probe, import, rollback, reconcile, access checks)
//! as recorded operations, so the browser gets an operation page at once and
//! watches it progress instead of holding a request open for minutes.
//!
//! The record lives in crm's store through `crm-app`'s operation use cases
//! (`begin_operation`, `operation_progress`, `finish_operation`), so the same
//! operation is visible to the HTTP API and survives as history; a restart
//! marks unfinished ones `interrupted` (crm-app does that on startup).

use crm_app::operations::OperationOutcome;
use crm_app::{App, AppError, REQUEST_ID};
use crm_domain::ops::Operation;
use crm_domain::{OperationId, OperationKind, OperationStatus};
use std::future::Future;
use tokio_util::task::TaskTracker;

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

/// Starts operations in the background and tracks them for shutdown.
#[derive(Debug, Clone, Default)]
pub struct Launcher {
    tracker: TaskTracker,
}

impl Launcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops accepting work and waits for running operations to finish.
    pub async fn shutdown(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Waits until every operation started so far has finished, then keeps
    /// accepting work (tests use it instead of polling).
    pub async fn wait_idle(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
    }

    /// Records an operation as `running`, runs `work` in the background and
    /// records its outcome. Returns the record at once.
    pub async fn launch<F, Fut>(
        &self,
        app: &App,
        kind: OperationKind,
        target: String,
        request: serde_json::Value,
        work: F,
    ) -> crm_app::Result<Operation>
    where
        F: FnOnce(App, OperationId) -> Fut + Send + 'static,
        Fut: Future<Output = crm_app::Result<WorkDone>> + Send + 'static,
    {
        let op = app.begin_operation(kind, &target, request, None).await?;
        let id = op.id.clone();
        let app = app.clone();
        // The audit events the work writes carry the request id of the click
        // that started it.
        let request_id = REQUEST_ID
            .try_with(Clone::clone)
            .unwrap_or_else(|_| format!("console-{}", uuid::Uuid::new_v4().simple()));
        self.tracker.spawn(REQUEST_ID.scope(request_id, async move {
            let outcome = match work(app.clone(), id.clone()).await {
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
            };
            if let Err(e) = app.finish_operation(&id, outcome).await {
                tracing::error!(operation = %id, error = %e, "could not record how the operation ended");
            }
        }));
        Ok(op)
    }
}

/// Adds a progress line, logging (not failing) when the store refuses: the
/// work itself matters more than its progress display.
pub async fn progress(app: &App, id: &OperationId, line: impl Into<String>) {
    if let Err(e) = app.operation_progress(id, line.into()).await {
        tracing::warn!(operation = %id, error = %e, "could not record progress");
    }
}

/// Serializes a use-case report for the operation record.
pub fn to_json<T: serde::Serialize>(value: &T) -> crm_app::Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| AppError::invalid(format!("cannot record the result: {e}")))
}
