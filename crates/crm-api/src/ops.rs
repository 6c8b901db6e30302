//! Long operations over HTTP: each runs in a task of its own (a client that
//! disconnects does not cancel it), is recorded as an `Operation`, and the
//! request is answered at once with `202` + `Location: /api/operations/{id}`,
//! or after it finished when the client asks to wait (`?wait=true` or
//! `Prefer: wait=N`).

use crate::ApiState;
use crate::error::ApiError;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_app::App;
use crm_app::OperationSpec;
use crm_app::operations::OperationOutcome;
use crm_domain::OperationStatus;
use crm_domain::ops::Operation;
use std::future::Future;
use std::time::{Duration, Instant};

/// An operation as the API shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OperationView {
    pub id: String,
    #[schema(value_type = crate::schemas::OperationKindWord)]
    pub kind: String,
    #[schema(value_type = crate::schemas::OperationStatusWord)]
    pub status: String,
    pub target: String,
    /// The request, with upstream keys reduced to a count.
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    pub progress: Vec<String>,
    /// The use case's report once finished (batch, plan, access check, ...).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Operation> for OperationView {
    fn from(op: Operation) -> Self {
        OperationView {
            id: op.id.to_string(),
            kind: op.kind.to_string(),
            status: op.status.to_string(),
            target: op.target,
            request: op.request,
            progress: op.progress,
            result: op.result,
            error: op.error,
            created_at: op.created_at,
            updated_at: op.updated_at,
        }
    }
}

/// How long a client asked to wait for the result.
pub fn requested_wait(
    wait_query: Option<bool>,
    headers: &HeaderMap,
    max: Duration,
) -> Option<Duration> {
    let prefer = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .next();
    match (wait_query, prefer) {
        (_, Some(d)) => Some(d.min(max)),
        (Some(true), None) => Some(max),
        _ => None,
    }
}

impl ApiState {
    /// Records and starts an operation through the app's one runner
    /// (`crm_app::OperationRunner`); `work` runs in its own task. The API
    /// adds its metrics around the work.
    pub(crate) async fn start_operation<F, Fut>(
        &self,
        app: &App,
        spec: OperationSpec,
        idempotency_key: Option<String>,
        work: F,
    ) -> Result<Operation, ApiError>
    where
        F: FnOnce(App) -> Fut + Send + 'static,
        Fut: Future<Output = OperationOutcome> + Send + 'static,
    {
        let kind = spec.kind;
        Ok(app
            .runner()
            .launch(app, spec, idempotency_key, move |app, _id| async move {
                let started = Instant::now();
                let outcome = work(app).await;
                metrics::counter!("crm_operations_total", "kind" => kind.as_str(), "outcome" => outcome.status.as_str()).increment(1);
                metrics::histogram!("crm_operation_duration_seconds", "kind" => kind.as_str())
                    .record(started.elapsed().as_secs_f64());
                outcome
            })
            .await?)
    }

    /// `202` + `Location` now, or the finished operation (`200`) when the
    /// client asked to wait and it finished in time.
    pub(crate) async fn operation_response(
        &self,
        op: Operation,
        wait: Option<Duration>,
    ) -> Response {
        let mut current = op;
        if let Some(wait) = wait {
            let rx = self.app().runner().watch(&current.id);
            if let Some(mut rx) = rx {
                let stopping = self.inner.stopping.clone();
                let finished = tokio::time::timeout(wait, async {
                    loop {
                        if let Some(op) = rx.borrow_and_update().clone() {
                            return Some(op);
                        }
                        tokio::select! {
                            changed = rx.changed() => {
                                if changed.is_err() {
                                    return rx.borrow().clone();
                                }
                            }
                            _ = stopping.cancelled() => return None,
                        }
                    }
                })
                .await;
                if let Ok(Some(op)) = finished {
                    current = op;
                }
            } else if let Ok(op) = self.app().operation(current.id.as_str()).await {
                current = op;
            }
        }
        let done = !matches!(
            current.status,
            OperationStatus::Running | OperationStatus::Queued
        );
        let location = format!("/api/operations/{}", current.id);
        let status = if done {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        let mut resp = (status, Json(OperationView::from(current))).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    }
}

/// `succeeded` or `failed` with the report or the error.
pub(crate) fn outcome<T: serde::Serialize>(
    result: crm_app::Result<T>,
    succeeded: impl FnOnce(&T) -> bool,
) -> OperationOutcome {
    OperationOutcome::from_result(result, succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_asked_by_query_or_prefer_header_and_capped() {
        let max = Duration::from_secs(60);
        let mut h = HeaderMap::new();
        assert_eq!(requested_wait(None, &h, max), None);
        assert_eq!(requested_wait(Some(true), &h, max), Some(max));
        h.insert("prefer", HeaderValue::from_static("respond-async, wait=5"));
        assert_eq!(requested_wait(None, &h, max), Some(Duration::from_secs(5)));
        h.insert("prefer", HeaderValue::from_static("wait=600"));
        assert_eq!(requested_wait(Some(false), &h, max), Some(max));
    }
}
