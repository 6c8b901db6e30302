//! Errors: the crate's own [`Error`] (starting and serving), and
//! [`ApiError`], the `application/problem+json` (RFC 9457) answer of every
//! failed request. The mapping from [`crm_app::AppError`] to an HTTP status
//! lives here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_app::AppError;

/// Why the server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid server configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    App(#[from] AppError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A failed request, rendered as `application/problem+json`.
///
/// `kind` is the stable machine-readable `type` (a relative URI under
/// `/problems/`); `detail` is written for an operator and never holds a
/// secret (the errors it comes from never carry one).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

/// The body of an error answer (documented in the OpenAPI document).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `/problems/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// The `x-request-id` of the request, to find it in the logs.
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or wrong token",
            "send `Authorization: Bearer <token>` with the admin or read-only token from the server configuration",
        )
    }

    pub fn forbidden_read_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "read-only-token",
            "Read-only token",
            "the read-only token may only call GET routes; use the admin token to change anything",
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("/problems/{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            request_id: crate::telemetry::current_request_id(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        // One kind, one status: the table is `crm_app::ErrorKind::http_status`,
        // shared with the console.
        let status = StatusCode::from_u16(e.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.code(), e.title(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::ports::{HostError, StoreError};

    #[test]
    fn app_errors_map_to_statuses_an_operator_expects() {
        let nf = ApiError::from(AppError::NotFound {
            what: "host \"x\"".into(),
            hint: None,
        });
        assert_eq!(nf.status, StatusCode::NOT_FOUND);
        let busy = ApiError::from(AppError::Store(StoreError::AlreadyExists {
            what: "host x".into(),
        }));
        assert_eq!(busy.status, StatusCode::CONFLICT);
        let host = ApiError::from(AppError::Host(HostError::Unreachable {
            detail: "refused".into(),
        }));
        assert_eq!(host.status, StatusCode::BAD_GATEWAY);
        assert_eq!(host.problem().kind, "/problems/host-unreachable");
    }
}
