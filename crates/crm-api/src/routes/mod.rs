//! Handlers of the HTTP API, one module per noun. Each parses its input,
//! calls one use case of [`crm_app::App`] (acting as the caller's token) and
//! renders the result; long ones go through [`crate::ops`].

pub mod batches;
pub mod health;
pub mod hosts;
pub mod operations;
pub mod packs;
pub mod providers;

use crate::error::ApiError;
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderMap, StatusCode};

/// Serde messages quote the offending input, which may be a secret (an
/// upstream key sent where a list was expected): drop every quoted part.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(
            status,
            "invalid-body",
            "Invalid request body",
            format!(
                "{}; send a JSON object as described at /api/openapi.json",
                redact_quoted(&r.body_text())
            ),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(redact_quoted(&r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(redact_quoted(&r.body_text()))
    }
}

/// `axum::Json` with problem+json rejections.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with problem+json rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with problem+json rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `?wait=true` on routes that start an operation.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Answer when the operation finished (up to the server's limit)
    /// instead of at once with 202. `Prefer: wait=N` does the same for N seconds.
    pub wait: Option<bool>,
}

/// The client's `Idempotency-Key`, recorded on the operations it starts.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&crate::idempotency::IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_input_is_dropped_from_messages() {
        assert_eq!(
            super::redact_quoted(
                r#"upstream_keys: invalid type: string "sk-secret", expected a sequence"#
            ),
            r#"upstream_keys: invalid type: string "…", expected a sequence"#
        );
    }
}
