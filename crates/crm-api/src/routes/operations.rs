//! `/api/operations/{id}` and `/api/audit`.

use super::{ApiPath, ApiQuery, ApiResult};
use crate::ApiState;
use crate::auth::Principal;
use crate::ops::OperationView;
use axum::extract::State;
use axum::{Extension, Json};

#[utoipa::path(get, path = "/api/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "Operation id (from a 202's Location)")),
    responses((status = 200, description = "Status, progress and result", body = OperationView)))]
pub async fn get_operation(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OperationView>> {
    Ok(Json(st.app_for(p).operation(&id).await?.into()))
}

#[utoipa::path(get, path = "/api/audit", tag = "audit",
    params(crate::routes::hosts::LimitQuery),
    responses((status = 200, description = "Audit events, newest first", body = Vec<crate::schemas::AuditEvent>)))]
pub async fn list_audit(
    State(st): State<ApiState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<crate::routes::hosts::LimitQuery>,
) -> ApiResult<Json<Vec<crm_domain::ops::AuditEvent>>> {
    let limit = q.limit(100)?;
    Ok(Json(st.app_for(p).audit_log(limit).await?))
}
