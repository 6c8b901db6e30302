//! The one operation runner: every long-running use case a face starts in
//! the background (import, rollback, resume, reconcile with repair, probe,
//! access check) is recorded as an [`Operation`], run in a task of its own
//! (a client that goes away does not cancel it), and tracked so a shutdown
//! can drain it. The HTTP API and the web console share one runner through
//! the [`App`] they are given, so one drain covers both.
//!
//! What an operation is about ([`OperationSpec`]: kind, target, request
//! description without secrets) is built here once per use case, not by
//! each face.

use crate::App;
use crate::error::{AppError, Result};
use crate::operations::OperationOutcome;
use crate::reconcile::ReconcileRequest;
use crm_domain::ops::{Operation, Target};
use crm_domain::{AccessMode, OperationId, OperationKind, OperationStatus, ProviderRef};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// What an operation is: its kind, its target and a description of the
/// request with every secret reduced to a count.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSpec {
    pub kind: OperationKind,
    pub target: Target,
    pub request: serde_json::Value,
}

impl OperationSpec {
    /// An import of `provider` onto `host` (upstream keys counted, never kept).
    pub fn import(
        host: &str,
        provider: &ProviderRef,
        mode: AccessMode,
        upstream_keys: usize,
        user_email: Option<&str>,
        starting_balance: Option<f64>,
        verify: bool,
    ) -> Self {
        OperationSpec {
            kind: OperationKind::Import,
            target: Target::provider(host, provider),
            request: json!({
                "host": host,
                "provider": provider.to_string(),
                "mode": mode.as_str(),
                "upstream_keys": upstream_keys,
                "user_email": user_email,
                "starting_balance": starting_balance,
                "verify": verify,
            }),
        }
    }

    /// Records in an import's request whether it confirms base URL
    /// changes (`ImportInput::accept_url_change`).
    pub fn accepting_url_change(mut self, accept: bool) -> Self {
        self.request["accept_url_change"] = json!(accept);
        self
    }

    /// Records in an import's request whether it asked for a channel
    /// monitor (`ImportInput::monitor`; nothing when the pack decides).
    pub fn with_monitor(mut self, monitor: Option<bool>) -> Self {
        if let Some(m) = monitor {
            self.request["monitor"] = json!(m);
        }
        self
    }

    /// A rollback of every live batch of `provider` on `host`.
    pub fn rollback_provider(host: &str, provider: &ProviderRef) -> Self {
        OperationSpec {
            kind: OperationKind::Rollback,
            target: Target::provider(host, provider),
            request: json!({ "host": host, "provider": provider.to_string() }),
        }
    }

    /// A rollback of one batch.
    pub fn rollback_batch(batch: &str) -> Self {
        OperationSpec {
            kind: OperationKind::Rollback,
            target: Target::batch(batch),
            request: json!({ "batch": batch }),
        }
    }

    /// A resume of one batch, with `upstream_keys` keys given again.
    pub fn resume(batch: &str, upstream_keys: usize) -> Self {
        OperationSpec {
            kind: OperationKind::Resume,
            target: Target::batch(batch),
            request: json!({ "batch": batch, "upstream_keys": upstream_keys }),
        }
    }

    /// A probe of a host.
    pub fn probe(host: &str) -> Self {
        OperationSpec {
            kind: OperationKind::Probe,
            target: Target::host(host),
            request: json!({ "host": host }),
        }
    }

    /// An access check of `provider` on `host`.
    pub fn access_check(host: &str, provider: &ProviderRef, upstream_keys: usize) -> Self {
        OperationSpec {
            kind: OperationKind::AccessCheck,
            target: Target::provider(host, provider),
            request: json!({
                "host": host,
                "provider": provider.to_string(),
                "upstream_keys": upstream_keys,
            }),
        }
    }

    /// A reconcile (with or without repair) of the narrowest scope the
    /// request names, on the host called `host`.
    pub fn reconcile(host: &str, req: &ReconcileRequest) -> Self {
        OperationSpec {
            kind: OperationKind::Reconcile,
            target: Target::scope(host, req.provider.as_ref(), req.batch.as_ref()),
            request: json!({
                "host": host,
                "provider": req.provider.as_ref().map(|p| p.to_string()),
                "batch": req.batch.as_ref().map(|b| b.to_string()),
                "apply": req.apply,
                "prune": req.prune,
                "clear_unhealthy": req.clear_unhealthy,
            }),
        }
    }
}

impl OperationOutcome {
    /// `succeeded` when the use case returned and `succeeded(report)` holds,
    /// `failed` with the report otherwise, or `failed` with the error.
    pub fn from_result<T: serde::Serialize>(
        result: Result<T>,
        succeeded: impl FnOnce(&T) -> bool,
    ) -> OperationOutcome {
        match result {
            Ok(report) => OperationOutcome {
                status: if succeeded(&report) {
                    OperationStatus::Succeeded
                } else {
                    OperationStatus::Failed
                },
                result: serde_json::to_value(&report).ok(),
                error: None,
            },
            Err(e) => OperationOutcome {
                status: OperationStatus::Failed,
                result: None,
                error: Some(e.to_string()),
            },
        }
    }
}

type Finished = watch::Receiver<Option<Operation>>;

#[derive(Debug, Default)]
struct RunnerInner {
    tracker: TaskTracker,
    finished: Mutex<HashMap<String, Finished>>,
}

/// Starts recorded operations in the background and tracks them. Cheap to
/// clone; clones share the same tasks.
#[derive(Debug, Clone, Default)]
pub struct OperationRunner {
    inner: Arc<RunnerInner>,
}

impl OperationRunner {
    pub fn new() -> Self {
        Self::default()
    }

    fn finished_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Finished>> {
        self.inner
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records the operation as `running`, runs `work` in its own task and
    /// records how it ended. Returns the record at once. Refused once a
    /// shutdown has begun.
    pub async fn launch<F, Fut>(
        &self,
        app: &App,
        spec: OperationSpec,
        idempotency_key: Option<String>,
        work: F,
    ) -> Result<Operation>
    where
        F: FnOnce(App, OperationId) -> Fut + Send + 'static,
        Fut: Future<Output = OperationOutcome> + Send + 'static,
    {
        if self.inner.tracker.is_closed() {
            return Err(AppError::ShuttingDown);
        }
        let op = app
            .begin_operation(
                spec.kind,
                &spec.target.to_string(),
                spec.request,
                idempotency_key,
            )
            .await?;
        let (tx, rx) = watch::channel(None);
        self.finished_map().insert(op.id.to_string(), rx);
        let id = op.id.clone();
        let app = app.clone();
        let runner = self.clone();
        // The audit events the work writes carry the request id of the
        // request (or click) that started it.
        let request_id = crate::REQUEST_ID
            .try_with(Clone::clone)
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| format!("op-{}", uuid::Uuid::new_v4().simple()));
        self.inner
            .tracker
            .spawn(crate::REQUEST_ID.scope(request_id, async move {
                let outcome = work(app.clone(), id.clone()).await;
                tracing::info!(operation = %id, outcome = %outcome.status, "operation finished");
                let finished = match app.finish_operation(&id, outcome).await {
                    Ok(op) => Some(op),
                    Err(e) => {
                        tracing::error!(operation = %id, error = %e, "could not record how the operation ended");
                        None
                    }
                };
                let _ = tx.send(finished);
                runner.finished_map().remove(id.as_str());
            }));
        Ok(op)
    }

    /// A receiver that gets the finished record of a running operation of
    /// this process (`None` once it finished or if another process runs it).
    pub fn watch(&self, id: &OperationId) -> Option<watch::Receiver<Option<Operation>>> {
        self.finished_map().get(id.as_str()).cloned()
    }

    /// How many operations are running.
    pub fn running(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Whether a shutdown has begun (no new operation starts).
    pub fn is_closed(&self) -> bool {
        self.inner.tracker.is_closed()
    }

    /// Stops accepting operations and waits at most `drain` for the running
    /// ones; `false` when some were still running (the next start marks
    /// them `interrupted`).
    pub async fn drain(&self, drain: Duration) -> bool {
        self.inner.tracker.close();
        tokio::time::timeout(drain, self.inner.tracker.wait())
            .await
            .is_ok()
    }

    /// Waits until every operation started so far has finished, then keeps
    /// accepting work (tests use it instead of polling).
    pub async fn wait_idle(&self) {
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        self.inner.tracker.reopen();
    }
}

/// Adds a progress line, logging (not failing) when the store refuses: the
/// work itself matters more than its progress display.
pub async fn progress(app: &App, id: &OperationId, line: impl Into<String>) {
    if let Err(e) = app.operation_progress(id, line.into()).await {
        tracing::warn!(operation = %id, error = %e, "could not record progress");
    }
}
