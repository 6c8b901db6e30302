//! Recorded long-running operations (import, rollback, resume, reconcile
//! with repair): a durable record with status, progress and result that a
//! face can hand out by id while the work runs elsewhere.
//!
//! The record never holds a secret: callers pass a request description with
//! upstream keys already reduced to a count. Operations cannot be replayed
//! after a crash (upstream keys are never stored), so on startup the ones
//! left `running` are marked `interrupted` with the way to continue.

use crate::App;
use crate::error::{AppError, Result};
use crm_domain::ops::Operation;
use crm_domain::ports::{LeaseRepo, OperationRepo, StoreError};
use crm_domain::{OperationId, OperationKind, OperationStatus};

/// How a finished operation ended.
#[derive(Debug, Clone)]
pub struct OperationOutcome {
    /// `succeeded` or `failed`.
    pub status: OperationStatus,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

impl App {
    /// Records a new operation as `running` (the caller starts the work right after).
    pub async fn begin_operation(
        &self,
        kind: OperationKind,
        target: &str,
        request: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> Result<Operation> {
        let now = self.clock.now();
        let id = OperationId::new(self.ids.new_id("op"));
        if self.store.is_shared() {
            // Taken before the record exists, so no other replica ever sees
            // this operation running without a live runner.
            self.hold_operation_lease(&id).await?;
        }
        let op = Operation {
            id,
            kind,
            status: OperationStatus::Running,
            target: target.to_owned(),
            request,
            progress: vec![format!("started by {}", self.actor)],
            result: None,
            error: None,
            idempotency_key,
            created_at: now,
            updated_at: now,
        };
        Ok(self.store.create_operation(op).await?)
    }

    /// Adds a progress line to a running operation.
    pub async fn operation_progress(&self, id: &OperationId, line: String) -> Result<Operation> {
        let mut op = self.operation(id.as_str()).await?;
        op.progress.push(line);
        op.updated_at = self.clock.now();
        self.store.update_operation(&op).await?;
        Ok(op)
    }

    /// Records how an operation ended.
    pub async fn finish_operation(
        &self,
        id: &OperationId,
        outcome: OperationOutcome,
    ) -> Result<Operation> {
        let mut op = self.operation(id.as_str()).await?;
        op.progress.push(format!("{}", outcome.status));
        op.status = outcome.status;
        op.result = outcome.result;
        op.error = outcome.error;
        op.updated_at = self.clock.now();
        self.store.update_operation(&op).await?;
        if self.store.is_shared() {
            self.release_operation_lease(id).await;
        }
        Ok(op)
    }

    pub async fn operation(&self, id: &str) -> Result<Operation> {
        self.store
            .get_operation(&OperationId::new(id))
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => AppError::NotFound {
                    what: format!("operation {id:?}"),
                    hint: None,
                },
                other => other.into(),
            })
    }

    /// Marks every operation a previous process left `queued` or `running`
    /// as `interrupted`, saying how to continue; returns them. On a shared
    /// (PostgreSQL) store, only those whose runner is gone: no live
    /// `operation:<id>` lease (see [`App::begin_operation`]), so a replica
    /// starting never interrupts another replica's work. Safe to call
    /// periodically there (the server's scheduler does).
    pub async fn interrupt_unfinished_operations(&self) -> Result<Vec<Operation>> {
        let mut out = Vec::new();
        let running: std::collections::HashSet<String> = if self.store.is_shared() {
            self.store
                .active_leases(OPERATION_SCOPE)
                .await?
                .into_iter()
                .map(|l| l.scope)
                .collect()
        } else {
            Default::default()
        };
        for mut op in self.store.unfinished_operations().await? {
            if running.contains(&operation_scope(&op.id)) {
                continue;
            }
            let hint = resume_hint(&op);
            op.status = OperationStatus::Interrupted;
            op.error = Some(format!(
                "the server stopped while this operation ran; {hint}"
            ));
            op.progress.push("interrupted".into());
            op.updated_at = self.clock.now();
            self.store.update_operation(&op).await?;
            self.audit("operation.interrupted", &op.target, "interrupted", None)
                .await;
            out.push(op);
        }
        Ok(out)
    }
}

/// Prefix of the leases that say a replica is running an operation.
const OPERATION_SCOPE: &str = "operation:";
/// An operation lease lives this long without a heartbeat: a dead replica's
/// operations are marked interrupted about this long after it died.
const OPERATION_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

fn operation_scope(id: &OperationId) -> String {
    format!("{OPERATION_SCOPE}{id}")
}

impl App {
    /// Takes `operation:<id>` and keeps it alive (a heartbeat every third of
    /// its TTL) until [`App::finish_operation`] releases it or this process
    /// dies.
    async fn hold_operation_lease(&self, id: &OperationId) -> Result<()> {
        let lease = self
            .store
            .acquire_lease(
                &operation_scope(id),
                &self.holder(),
                "operation",
                OPERATION_LEASE_TTL,
            )
            .await?;
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(OPERATION_LEASE_TTL / 3);
            beat.tick().await;
            loop {
                beat.tick().await;
                match store.heartbeat_lease(&lease.id, OPERATION_LEASE_TTL).await {
                    Ok(_) => {}
                    // Released by finish_operation (or taken over): done.
                    Err(StoreError::LeaseLost { .. }) => break,
                    Err(e) => {
                        tracing::warn!(lease = %lease.id, error = %e, "could not heartbeat an operation lease");
                    }
                }
            }
        });
        Ok(())
    }

    async fn release_operation_lease(&self, id: &OperationId) {
        let scope = operation_scope(id);
        let leases = match self.store.active_leases(&scope).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(operation = %id, error = %e, "could not look up the operation lease");
                return;
            }
        };
        for l in leases.into_iter().filter(|l| l.scope == scope) {
            if let Err(e) = self.store.release_lease(&l.id).await {
                tracing::warn!(lease = %l.id, error = %e, "could not release the operation lease");
            }
        }
    }
}

/// What an operator does next after an interruption: the journal is
/// consistent at every step, so resuming the batch finishes the work.
fn resume_hint(op: &Operation) -> String {
    let batch = op
        .result
        .as_ref()
        .and_then(|r| r.pointer("/batch/id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| op.target.strip_prefix("batch:").map(str::to_owned));
    match (op.kind, batch) {
        (OperationKind::Rollback, Some(b)) => {
            format!("roll back again with POST /api/import-batches/{b}/rollback")
        }
        (OperationKind::Reconcile, _) => "run the reconcile again".into(),
        (_, Some(b)) => format!(
            "resume with POST /api/import-batches/{b}/resume (supply the upstream keys again)"
        ),
        (_, None) => "find the batch with GET /api/providers/{pack}/{provider}/import-batches \
             and resume it with POST /api/import-batches/{id}/resume"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OperationKind, target: &str) -> Operation {
        let now = chrono::Utc::now();
        Operation {
            id: OperationId::new("op-1"),
            kind,
            status: OperationStatus::Running,
            target: target.into(),
            request: serde_json::json!({}),
            progress: vec![],
            result: None,
            error: None,
            idempotency_key: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn interruption_hints_name_the_route_that_continues_the_work() {
        assert!(
            resume_hint(&op(OperationKind::Resume, "batch:b-7"))
                .contains("/api/import-batches/b-7/resume")
        );
        assert!(
            resume_hint(&op(OperationKind::Rollback, "batch:b-7"))
                .contains("/api/import-batches/b-7/rollback")
        );
        assert!(resume_hint(&op(OperationKind::Import, "host:h/provider:p/x")).contains("resume"));
    }
}
