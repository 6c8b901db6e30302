//! Probes: `/healthz` (the process answers) and `/readyz` (the database
//! answers and its schema is current) need no token and show nothing
//! sensitive; `/metrics` (Prometheus text, host names in its labels) needs
//! the admin or read-only token unless the server runs with
//! `--public-metrics`.

use crate::ApiState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crm_domain::ports::AuditRepo;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The store runs every embedded migration when it opens, so a store that
/// answers a query is at the schema version this build knows.
async fn readyz(State(st): State<ApiState>) -> Response {
    match st.app().store().list_audit(1).await {
        Ok(_) => Json(serde_json::json!({
            "status": "ready",
            "database": "reachable",
            "schema_version": crm_store::migrations::latest_version(),
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "not_ready", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(st): State<ApiState>, req: axum::extract::Request) -> Response {
    if !st.inner.config.public_metrics
        && let Err(refused) = crate::auth::authenticate(&st, &req)
    {
        return refused;
    }
    crate::telemetry::provider_status_gauges(st.app()).await;
    crate::telemetry::funds_gauges(st.app()).await;
    let mut resp = st.inner.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
