//! `/api/hosts`: register, list, show, remove, probe; a host's provider
//! status, funds readings and reconcile runs.

use super::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ApiState;
use crate::auth::Principal;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_domain::SecretString;

/// A host to register. Give the admin key as `admin_key`: it is sealed
/// into the database and never echoed. `admin_key_env` is refused (422), and
/// so is `admin_key_file` unless the server was started with
/// `--credential-dir DIR` and the file lies under DIR: an API caller is not
/// the operator at the server's shell.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHostBody {
    /// 1-64 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// `http(s)://HOST[:PORT]` of the sub2api host.
    pub base_url: String,
    /// Refused over HTTP (422): the server's environment is not the caller's.
    pub admin_key_env: Option<String>,
    /// File under the server's `--credential-dir` that holds the admin key;
    /// refused (422) without one or outside it.
    pub admin_key_file: Option<String>,
    /// The admin key itself (write-only).
    #[schema(value_type = Option<String>, format = Password, write_only)]
    pub admin_key: Option<SecretString>,
    /// Reconcile this host every N seconds (the server's scheduler).
    #[schema(minimum = 1)]
    pub reconcile_every_secs: Option<u64>,
}

#[utoipa::path(get, path = "/api/hosts", tag = "hosts",
    responses((status = 200, description = "Registered hosts (no credential values)", body = Vec<crate::schemas::Host>)))]
pub async fn list_hosts(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).list_hosts().await?).into_response())
}

#[utoipa::path(post, path = "/api/hosts", tag = "hosts", request_body = NewHostBody,
    responses((status = 201, description = "Registered", body = crate::schemas::Host,
        headers(("location" = String, description = "The host's URL"))),
        (status = 422, description = "Invalid, or a credential reference refused over HTTP (admin_key_env always; admin_key_file outside --credential-dir)", body = crate::Problem, content_type = "application/problem+json")))]
pub async fn create_host(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiJson(body): ApiJson<NewHostBody>,
) -> ApiResult<Response> {
    let admin_key = match (body.admin_key_env, body.admin_key_file, body.admin_key) {
        (Some(var), None, None) => AdminKeySource::Env(var),
        (None, Some(path), None) => AdminKeySource::File(path),
        (None, None, Some(value)) => AdminKeySource::Value(value),
        _ => {
            return Err(crate::ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "Invalid request",
                "give exactly one of admin_key_env, admin_key_file or admin_key",
            ));
        }
    };
    crm_app::hosts::check_remote_source(&admin_key, st.inner.config.credential_dir.as_deref())?;
    if body.reconcile_every_secs == Some(0) {
        return Err(crate::ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Invalid request",
            "reconcile_every_secs must be at least 1 (leave it out to not schedule reconciles)",
        ));
    }
    let view = st
        .app_for(p)
        .add_host(NewHost {
            name: body.name,
            base_url: body.base_url,
            admin_key,
            reconcile_every_secs: body.reconcile_every_secs,
        })
        .await?;
    let location = format!("/api/hosts/{}", view.id);
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/api/hosts/{id}", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name")),
    responses((status = 200, description = "The host", body = crate::schemas::Host)))]
pub async fn get_host(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).show_host(&id).await?).into_response())
}

#[utoipa::path(delete, path = "/api/hosts/{id}", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name")),
    responses((status = 204, description = "Removed from crm (nothing on the host is touched)")))]
pub async fn delete_host(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    st.app_for(p).remove_host(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/hosts/{id}/probe", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name")),
    responses((status = 200, description = "The host with fresh capabilities", body = crate::schemas::Host)))]
pub async fn probe_host(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let app = st.app_for(p);
    let result = app.probe_host(&id).await;
    // Label by name, whichever of id or name the path used.
    let name = match app.host(&id).await {
        Ok(h) => h.name,
        Err(_) => id,
    };
    crate::telemetry::host_call(&name, &result, |_| 0);
    Ok(Json(result?).into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// At most this many (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl LimitQuery {
    /// The limit asked for, or `default`; out of range is refused, not clamped.
    pub fn limit(&self, default: u32) -> ApiResult<u32> {
        match self.limit {
            None => Ok(default),
            Some(n @ 1..=1000) => Ok(n),
            Some(n) => Err(crate::ApiError::bad_request(format!(
                "limit must be between 1 and 1000, not {n}"
            ))),
        }
    }
}

#[utoipa::path(get, path = "/api/hosts/{id}/provider-status", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name")),
    responses((status = 200, description = "Status of every installed or imported provider on the host", body = Vec<crate::schemas::ProviderStatus>)))]
pub async fn host_provider_status(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).provider_statuses(Some(&id)).await?).into_response())
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FundsQuery {
    /// Only this provider, as `pack/provider`.
    pub provider: Option<String>,
}

#[utoipa::path(get, path = "/api/hosts/{id}/funds", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name"), FundsQuery),
    responses((status = 200, description = "The stored (newest) funds and quota readings of the host's accounts, with their thresholds, statuses and ages, and per provider; the same JSON as `crm provider funds --host H --stored --output json`. Readings are taken by every reconcile run (the scheduler's too); this route makes no host request", body = crate::schemas::FundsReport)))]
pub async fn host_funds(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<FundsQuery>,
) -> ApiResult<Response> {
    let provider = q
        .provider
        .as_deref()
        .map(crm_domain::ProviderRef::parse)
        .transpose()
        .map_err(|e| crate::ApiError::bad_request(e.to_string()))?;
    let report = st
        .app_for(p)
        .funds(
            crm_app::funds::FundsRequest {
                host: Some(id),
                provider,
                overrides: Default::default(),
                refresh: false,
            },
            vec![],
        )
        .await?;
    Ok(Json(report).into_response())
}

/// The host's own funds thresholds for one scope: host-wide, or one
/// provider with `provider`. What the body sets replaces that scope's value;
/// with `clear`, the scope's thresholds are dropped first (so `{"clear":
/// true}` alone removes them). The same as `crm host set`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostThresholdsBody {
    /// Only this provider, as `pack/provider` (default: host-wide).
    pub provider: Option<String>,
    /// Below this balance a key is `low_funds`.
    #[schema(value_type = Option<crate::schemas::BalanceThreshold>)]
    pub low_balance: Option<crm_domain::funds::Threshold>,
    /// Below this share (0..100) of a quota window left, quota is `low_quota`.
    #[schema(minimum = 0, maximum = 100)]
    pub low_quota_percent: Option<f64>,
    /// Drop the scope's thresholds before setting.
    #[serde(default)]
    pub clear: bool,
}

#[utoipa::path(put, path = "/api/hosts/{id}/funds-thresholds", tag = "hosts",
    params(("id" = String, Path, description = "Host id or name")),
    request_body = HostThresholdsBody,
    responses((status = 200, description = "The host with its thresholds; reconcile runs, funds reports, gauges, provider status and the scheduler's crossing webhook use them from now on", body = crate::schemas::Host),
        (status = 422, description = "A threshold out of range, or nothing to set", body = crate::Problem, content_type = "application/problem+json")))]
pub async fn set_host_thresholds(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<HostThresholdsBody>,
) -> ApiResult<Response> {
    let provider = body
        .provider
        .as_deref()
        .map(crm_domain::ProviderRef::parse)
        .transpose()
        .map_err(|e| crate::ApiError::bad_request(e.to_string()))?;
    let thresholds = crm_domain::funds::FundsThreshold {
        low_balance: body.low_balance,
        low_quota_percent: body.low_quota_percent,
    };
    let view = st
        .app_for(p)
        .set_host_thresholds(&id, provider.as_ref(), &thresholds, body.clear)
        .await?;
    Ok(Json(view).into_response())
}

#[utoipa::path(get, path = "/api/hosts/{id}/reconcile-runs", tag = "reconcile",
    params(("id" = String, Path, description = "Host id or name"), LimitQuery),
    responses((status = 200, description = "Reconcile runs of the host, newest first", body = Vec<crate::schemas::ReconcileRun>)))]
pub async fn host_reconcile_runs(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<Response> {
    let limit = q.limit(50)?;
    Ok(Json(st.app_for(p).reconcile_runs_for_host(&id, limit).await?).into_response())
}

#[utoipa::path(get, path = "/api/reconcile-runs/{id}", tag = "reconcile",
    params(("id" = String, Path, description = "Reconcile run id")),
    responses((status = 200, description = "The run and its drift items", body = crate::schemas::ReconcileRun)))]
pub async fn get_reconcile_run(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(Json(st.app_for(p).reconcile_run(&id).await?).into_response())
}
