//! `/api/import-batches/{id}`: detail, rollback, resume, reconcile.

use super::providers::ReconcileBody;
use super::{ApiJson, ApiPath, ApiQuery, ApiResult, WaitQuery, idempotency_key};
use crate::ApiState;
use crate::auth::Principal;
use crate::ops::{OperationView, outcome, requested_wait};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_app::OperationSpec;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{BatchStatus, SecretString};

/// Resume input: upstream keys are never stored, so accounts still to be
/// created need them again.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    /// Upstream API keys (write-only).
    #[schema(value_type = Vec<String>, write_only)]
    #[serde(default)]
    pub upstream_keys: Vec<SecretString>,
}

/// The name of a batch's host (its id if the host record is gone), for metrics.
async fn host_name(app: &crm_app::App, batch: &crm_domain::batch::ImportBatch) -> String {
    match app.host(batch.host_id.as_str()).await {
        Ok(h) => h.name,
        Err(_) => batch.host_id.to_string(),
    }
}

#[utoipa::path(get, path = "/api/import-batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, description = "The batch with resources, journal, access checks and latest reconcile", body = crate::schemas::BatchDetail)))]
pub async fn get_batch(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).batch_detail(&id).await?).into_response())
}

#[utoipa::path(post, path = "/api/import-batches/{id}/rollback", tag = "batches",
    params(("id" = String, Path, description = "Batch id"), WaitQuery),
    responses(
        (status = 202, description = "Started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}"))),
        (status = 200, description = "Finished while the client waited", body = OperationView)))]
pub async fn rollback_batch(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let batch = app.batch(&id).await?;
    let spec = OperationSpec::rollback_batch(batch.id.as_str());
    let host_name = host_name(&app, &batch).await;
    let op = st
        .start_operation(
            &app,
            spec,
            idempotency_key(&headers),
            move |app| async move {
                let result = app.rollback_batch(batch.id.as_str()).await;
                crate::telemetry::host_call(&host_name, &result, |v| v.report.host_requests);
                outcome(result, |v| v.report.status == BatchStatus::RolledBack)
            },
        )
        .await?;
    let wait = requested_wait(w.wait, &headers, st.inner.config.max_wait);
    Ok(st.operation_response(op, wait).await)
}

#[utoipa::path(post, path = "/api/import-batches/{id}/resume", tag = "batches",
    params(("id" = String, Path, description = "Batch id"), WaitQuery), request_body = ResumeBody,
    responses(
        (status = 202, description = "Started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}"))),
        (status = 200, description = "Finished while the client waited", body = OperationView)))]
pub async fn resume_batch(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResumeBody>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let batch = app.batch(&id).await?;
    let spec = OperationSpec::resume(batch.id.as_str(), body.upstream_keys.len());
    let keys = body.upstream_keys;
    let host_name = host_name(&app, &batch).await;
    let op = st
        .start_operation(
            &app,
            spec,
            idempotency_key(&headers),
            move |app| async move {
                // Finish, not only resume: an import killed during the access
                // closure leaves an `applied` batch with pending closure
                // intents, which provisioning's resume alone refuses.
                let result = app
                    .finish_batch(
                        batch.id.as_str(),
                        crm_app::recovery::FinishInput {
                            upstream_keys: keys,
                            user: None,
                            verify: true,
                        },
                    )
                    .await;
                crate::telemetry::host_call(&host_name, &result, |r| {
                    r.resumed.as_ref().map_or(0, |a| a.host_requests)
                });
                outcome(result, |r| r.batch.status == BatchStatus::Applied)
            },
        )
        .await?;
    let wait = requested_wait(w.wait, &headers, st.inner.config.max_wait);
    Ok(st.operation_response(op, wait).await)
}

#[utoipa::path(post, path = "/api/import-batches/{id}/reconcile", tag = "batches",
    params(("id" = String, Path, description = "Batch id"), WaitQuery), request_body = ReconcileBody,
    responses(
        (status = 200, description = "The run (read-only: a ReconcileReport), or the finished repair operation (an OperationView)", body = serde_json::Value),
        (status = 202, description = "Repair started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}")))))]
pub async fn reconcile_batch(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let batch = app.batch(&id).await?;
    let host_name = host_name(&app, &batch).await;
    let req = ReconcileRequest {
        host: batch.host_id.to_string(),
        provider: None,
        batch: Some(batch.id),
        apply: body.apply,
        prune: body.prune,
        clear_unhealthy: body.clear_unhealthy,
    };
    super::providers::reconcile_request(&st, p, req, host_name, w.wait, &headers).await
}
