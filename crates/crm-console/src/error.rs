//! The console's error, and how each one becomes a page: a redirect to the
//! login form, or an error page with the right status and a message an
//! operator can act on (crm-app's messages never carry secrets).

use crate::view;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_app::AppError;
use maud::html;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("sign in first")]
    SignIn,
    #[error("this action needs the admin token; you are signed in read-only")]
    Forbidden,
    #[error("the form was stale or came from another site; reload the page and submit it again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
}

pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            // The same status the API gives the same error (one table:
            // `crm_app::ErrorKind::http_status`).
            ConsoleError::App(e) => StatusCode::from_u16(e.kind().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignIn = self {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "console request failed");
        }
        let body = html! {
            p.error role="alert" { (self.to_string()) }
            p { a href="/" { "Back to the overview" } }
        };
        let title = match (&self, status) {
            (ConsoleError::App(e), _) => e.title(),
            (_, StatusCode::FORBIDDEN) => "Not allowed",
            (_, StatusCode::BAD_REQUEST) => "Cannot do that",
            _ => "Something went wrong",
        };
        (status, view::bare_page(title, body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::ports::{HostError, StoreError};

    /// The console answers an application error with the API's status:
    /// the kind's entry in `crm_app::ErrorKind::http_status`, nothing of its
    /// own (docs/design.md §5, one meaning in one place).
    #[test]
    fn an_app_error_gets_the_status_of_its_kind() {
        for (e, status) in [
            (
                AppError::NotFound {
                    what: "host \"x\"".into(),
                    hint: None,
                },
                404,
            ),
            (AppError::invalid("bad"), 422),
            (
                AppError::Store(StoreError::AlreadyExists {
                    what: "host x".into(),
                }),
                409,
            ),
            (
                AppError::Host(HostError::Unreachable {
                    detail: "refused".into(),
                }),
                502,
            ),
            (AppError::ShuttingDown, 503),
        ] {
            let kind = e.kind();
            let console = ConsoleError::App(e).status().as_u16();
            assert_eq!(console, kind.http_status(), "{kind:?}");
            assert_eq!(console, status, "{kind:?}");
        }
    }
}
