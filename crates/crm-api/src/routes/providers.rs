//! `/api/providers`: list and show (pack-scoped ids: `{pack}/{provider}`),
//! and the per-host use cases: preview, import, rollback, reconcile,
//! access-check, assign-subscriptions, batches. The host is named in the
//! body (or the query, for GETs); upstream keys come in the body and are
//! never echoed, stored in an operation or logged.

use super::{ApiJson, ApiPath, ApiQuery, ApiResult, WaitQuery, idempotency_key};
use crate::ApiState;
use crate::auth::Principal;
use crate::ops::{OperationView, outcome, requested_wait};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_app::OperationSpec;
use crm_app::batches::BatchQuery;
use crm_app::providers::ImportInput;
use crm_app::reconcile::ReconcileRequest;
use crm_domain::{AccessMode, BatchStatus, ProviderRef, SecretString};

/// How ordinary users reach the provider (docs/design.md §2 "Access closure").
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    SelfService,
    Subscription,
}

impl From<Mode> for AccessMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::SelfService => AccessMode::SelfService,
            Mode::Subscription => AccessMode::Subscription,
        }
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackQuery {
    /// Only this pack's providers.
    pub pack: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    /// Host id or name.
    pub host: Option<String>,
}

/// Preview or import input.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// Host id or name.
    pub host: String,
    pub mode: Mode,
    /// Upstream API keys (write-only; only fingerprints are stored).
    #[schema(value_type = Vec<String>, write_only)]
    #[serde(default)]
    pub upstream_keys: Vec<SecretString>,
    /// Email of an existing host user for the access closure (import only).
    pub user_email: Option<String>,
    /// That user's password (write-only).
    #[schema(value_type = Option<String>, format = Password, write_only)]
    pub user_password: Option<SecretString>,
    /// Self-service starting balance (import only).
    pub starting_balance: Option<f64>,
    /// Verify access after closing it (import only; default true).
    pub verify: Option<bool>,
    /// Apply although the current pack version moves accounts to another
    /// base URL (the preview's `url_changes`), so their upstream keys go
    /// there (import only). Without it such an import operation fails,
    /// changing nothing, with an error naming `accept_url_change`.
    #[serde(default)]
    pub accept_url_change: bool,
    /// Create a host-side channel monitor for the batch (`true`), or none
    /// although the pack's `monitor` default asks for one (`false`); absent
    /// or `null` takes the pack's default. Only hosts with channel monitors
    /// get one; elsewhere the plan says why not in a note. A monitor the
    /// batch already has is kept either way.
    #[serde(default)]
    pub monitor: Option<bool>,
}

/// Names the host a provider use case runs on.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostBody {
    /// Host id or name.
    pub host: String,
}

/// Reconcile input.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// Host id or name (provider route only).
    pub host: Option<String>,
    /// Repair drift (a recorded operation) instead of only reporting it.
    #[serde(default)]
    pub apply: bool,
    /// With `apply`: also delete crm-marked leftovers of no live batch.
    #[serde(default)]
    pub prune: bool,
    /// With `apply`: return errored accounts to active.
    #[serde(default)]
    pub clear_unhealthy: bool,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessCheckBody {
    /// Host id or name.
    pub host: String,
    /// List models only; spend no upstream quota on a completion.
    #[serde(default)]
    pub skip_completion: bool,
    /// Upstream API keys of the batch's accounts (write-only, optional; used
    /// for this check only, never stored): each is matched to its account
    /// by fingerprint and probed directly at that account's base URL.
    #[schema(value_type = Vec<String>, write_only)]
    #[serde(default)]
    pub upstream_keys: Vec<SecretString>,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Host id or name.
    pub host: String,
    /// Host user ids or emails.
    #[schema(min_items = 1)]
    pub users: Vec<String>,
    /// Validity in days (default: the pack's).
    #[schema(minimum = 1)]
    pub days: Option<u32>,
}

fn provider_ref(pack: &str, provider: &str) -> ProviderRef {
    ProviderRef::new(pack, provider)
}

#[utoipa::path(get, path = "/api/providers", tag = "providers", params(PackQuery),
    responses((status = 200, description = "Providers of the current pack versions", body = Vec<crate::schemas::ProviderSummary>)))]
pub async fn list_providers(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<PackQuery>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).list_providers(q.pack.as_deref()).await?).into_response())
}

#[utoipa::path(get, path = "/api/providers/{pack}/{provider}", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path)),
    responses((status = 200, description = "The provider as its current pack declares it", body = serde_json::Value)))]
pub async fn get_provider(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let spec = st
        .app_for(p)
        .provider_spec(&provider_ref(&pack, &provider), None)
        .await?;
    Ok(Json(spec).into_response())
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/preview", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path)), request_body = ImportBody,
    responses((status = 200, description = "The plan, the provider's base URLs and the base URL changes an import would need confirmed; nothing is changed", body = crate::schemas::Preview)))]
pub async fn preview(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Response> {
    let result = st
        .app_for(p)
        .preview_with(
            &body.host,
            &provider_ref(&pack, &provider),
            body.mode.into(),
            body.upstream_keys,
            body.monitor,
        )
        .await;
    crate::telemetry::host_call(&body.host, &result, |r| r.host_requests);
    Ok(Json(result?).into_response())
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/import", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path), WaitQuery), request_body = ImportBody,
    responses(
        (status = 202, description = "Started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}"))),
        (status = 200, description = "Finished while the client waited", body = OperationView)))]
pub async fn import(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let provider = provider_ref(&pack, &provider);
    let mode: AccessMode = body.mode.into();
    // Fail fast on what can be checked now, before a 202.
    app.provider_spec(&provider, None).await?;
    let host = app.host(&body.host).await?;
    app.ensure_provider_free(&host.id, &provider).await?;
    let user = match (body.user_email, body.user_password) {
        (Some(e), Some(pw)) => Some((e, pw)),
        (None, None) => None,
        _ => {
            return Err(crate::ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Invalid request",
                "give both user_email and user_password, or neither",
            ));
        }
    };
    let spec = OperationSpec::import(
        &host.name,
        &provider,
        mode,
        body.upstream_keys.len(),
        user.as_ref().map(|u| u.0.as_str()),
        body.starting_balance,
        body.verify.unwrap_or(true),
    )
    .accepting_url_change(body.accept_url_change)
    .with_monitor(body.monitor);
    let input = ImportInput {
        host: host.id.to_string(),
        provider: provider.clone(),
        mode,
        upstream_keys: body.upstream_keys,
        user,
        starting_balance: body.starting_balance,
        verify: body.verify.unwrap_or(true),
        accept_url_change: body.accept_url_change,
        monitor: body.monitor,
    };
    let host_name = host.name.clone();
    let op = st
        .start_operation(&app, spec, idempotency_key(&headers), |app| async move {
            let result = app.import(input).await;
            crate::telemetry::host_call(&host_name, &result, |r| r.host_requests);
            outcome(result, |r| r.succeeded())
        })
        .await?;
    let wait = requested_wait(w.wait, &headers, st.inner.config.max_wait);
    Ok(st.operation_response(op, wait).await)
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/rollback", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path), WaitQuery), request_body = HostBody,
    responses(
        (status = 202, description = "Started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}"))),
        (status = 200, description = "Finished while the client waited", body = OperationView)))]
pub async fn rollback(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<HostBody>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let provider = provider_ref(&pack, &provider);
    let host = app.host(&body.host).await?;
    let spec = OperationSpec::rollback_provider(&host.name, &provider);
    let host_id = host.id.to_string();
    let host_name = host.name.clone();
    let op = st
        .start_operation(&app, spec, idempotency_key(&headers), |app| async move {
            let result = app.rollback_provider(&host_id, &provider).await;
            crate::telemetry::host_call(&host_name, &result, |views| {
                views.iter().map(|v| v.report.host_requests).sum()
            });
            outcome(result, |views| {
                views
                    .iter()
                    .all(|v| v.report.status == BatchStatus::RolledBack)
            })
        })
        .await?;
    let wait = requested_wait(w.wait, &headers, st.inner.config.max_wait);
    Ok(st.operation_response(op, wait).await)
}

/// A reconcile: reported at once (200) when read-only, a recorded
/// operation when it repairs.
pub(crate) async fn reconcile_request(
    st: &ApiState,
    p: Principal,
    req: ReconcileRequest,
    host_name: String,
    wait: Option<bool>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    if !req.apply {
        let result = app.reconcile(req).await;
        crate::telemetry::host_call(&host_name, &result, |r| r.run.host_requests);
        let report = result?;
        crate::telemetry::record_run_metrics(&app, &report.run).await;
        return Ok(Json(report).into_response());
    }
    let spec = OperationSpec::reconcile(&host_name, &req);
    let op = st
        .start_operation(&app, spec, idempotency_key(headers), |app| async move {
            let result = app.reconcile(req).await;
            crate::telemetry::host_call(&host_name, &result, |r| r.run.host_requests);
            if let Ok(r) = &result {
                crate::telemetry::record_run_metrics(&app, &r.run).await;
            }
            outcome(result, |r| {
                matches!(
                    r.run.status,
                    crm_domain::ReconcileStatus::InSync | crm_domain::ReconcileStatus::Drifted
                )
            })
        })
        .await?;
    let wait = requested_wait(wait, headers, st.inner.config.max_wait);
    Ok(st.operation_response(op, wait).await)
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/reconcile", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path), WaitQuery), request_body = ReconcileBody,
    responses(
        (status = 200, description = "The run (read-only: a ReconcileReport), or the finished repair operation (an OperationView)", body = serde_json::Value),
        (status = 202, description = "Repair started; poll the Location", body = OperationView,
            headers(("location" = String, description = "/api/operations/{id}")))))]
pub async fn reconcile(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiQuery(w): ApiQuery<WaitQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> ApiResult<Response> {
    let Some(host) = body.host else {
        return Err(crate::ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Invalid request",
            "name the host in the body: {\"host\": \"<id or name>\"}",
        ));
    };
    let app = st.app_for(p);
    let record = app.host(&host).await?;
    let provider = provider_ref(&pack, &provider);
    let host_name = record.name.clone();
    let req = ReconcileRequest {
        host: record.id.to_string(),
        provider: Some(provider),
        batch: None,
        apply: body.apply,
        prune: body.prune,
        clear_unhealthy: body.clear_unhealthy,
    };
    reconcile_request(&st, p, req, host_name, w.wait, &headers).await
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/access-check", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path)), request_body = AccessCheckBody,
    responses((status = 200, description = "One access check per live batch", body = serde_json::Value)))]
pub async fn access_check(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AccessCheckBody>,
) -> ApiResult<Response> {
    let checks = st
        .app_for(p)
        .verify_provider_access_with_keys(
            &body.host,
            &provider_ref(&pack, &provider),
            body.skip_completion,
            body.upstream_keys,
        )
        .await?;
    Ok(Json(checks).into_response())
}

#[utoipa::path(post, path = "/api/providers/{pack}/{provider}/assign-subscriptions", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path)), request_body = AssignBody,
    responses((status = 200, description = "The subscriptions given", body = serde_json::Value)))]
pub async fn assign_subscriptions(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AssignBody>,
) -> ApiResult<Response> {
    if body.users.is_empty() {
        return Err(crate::ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Invalid request",
            "name at least one host user (id or email) in users",
        ));
    }
    let assigned = st
        .app_for(p)
        .assign_subscriptions(
            &body.host,
            &provider_ref(&pack, &provider),
            &body.users,
            body.days,
        )
        .await?;
    Ok(Json(assigned).into_response())
}

/// Which batches of a provider to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderBatchesQuery {
    /// Host id or name.
    pub host: Option<String>,
    /// At most this many, newest first (default 100, at most 1000). Each
    /// batch carries its plan, so a provider imported many times would
    /// otherwise answer megabytes.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/providers/{pack}/{provider}/status", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path), HostQuery),
    responses((status = 200, description = "The provider's status on each registered host (or on `host`)", body = Vec<crate::schemas::ProviderStatus>)))]
pub async fn provider_status(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<HostQuery>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let pref = provider_ref(&pack, &provider);
    let mut list = app.provider_statuses(q.host.as_deref()).await?;
    list.retain(|s| s.provider == pref);
    if list.is_empty() {
        // No host knows it: a 404 if no pack declares it either.
        app.provider_spec(&pref, None).await?;
    }
    Ok(Json(list).into_response())
}

#[utoipa::path(get, path = "/api/providers/{pack}/{provider}/import-batches", tag = "providers",
    params(("pack" = String, Path), ("provider" = String, Path), ProviderBatchesQuery),
    responses((status = 200, description = "Import batches of the provider, newest first", body = Vec<crate::schemas::ImportBatch>)))]
pub async fn provider_batches(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath((pack, provider)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ProviderBatchesQuery>,
) -> ApiResult<Response> {
    let limit = crate::routes::hosts::LimitQuery { limit: q.limit }.limit(100)?;
    let batches = st
        .app_for(p)
        .list_batches(BatchQuery {
            host: q.host,
            provider: Some(provider_ref(&pack, &provider).to_string()),
            status: None,
            limit: Some(limit),
        })
        .await?;
    Ok(Json(batches).into_response())
}
