//! The client's [`Error`] as the port's [`HostError`]: the one place a
//! transport or host refusal becomes the error every use case and face
//! classifies (docs/design.md, "One meaning, one place").

use crate::error::Error;
use crm_domain::ports::HostError;

/// Maps a client error to the port's error. `what` names the object for
/// `NotFound` (e.g. `account 12`).
pub fn host_error(e: Error, what: &str) -> HostError {
    match e {
        Error::InvalidBaseUrl { url, detail } => HostError::Unreachable {
            detail: format!("invalid base URL {url:?}: {detail}"),
        },
        Error::InvalidSecret { what } => HostError::Validation {
            message: format!("the {what} cannot be sent in an HTTP header"),
        },
        Error::Unauthorized { code, .. } => HostError::Unauthorized { reason: code },
        Error::Forbidden { code, message } => HostError::Forbidden {
            reason: format!("{code}: {message}"),
        },
        Error::ComplianceGate { document_url, .. } => HostError::ComplianceGate { document_url },
        Error::NotFound { .. } => HostError::NotFound {
            what: what.to_owned(),
        },
        Error::RouteMissing { method, path } => HostError::RouteMissing {
            route: format!("{method} {path}"),
        },
        Error::Conflict { reason, message } => HostError::Conflict { reason, message },
        Error::Validation { reason, message } => HostError::Validation {
            message: match reason {
                Some(r) => format!("{message} ({r})"),
                None => message,
            },
        },
        Error::RateLimited { retry_after, .. } => HostError::RateLimited {
            retry_after_secs: retry_after.map(|d| d.as_secs()),
        },
        Error::HostUnavailable { status, message } => HostError::Unavailable { status, message },
        Error::UnexpectedStatus {
            status, message, ..
        } if (400..500).contains(&status) => HostError::Validation {
            message: format!("HTTP {status}: {message}"),
        },
        Error::UnexpectedStatus {
            status, message, ..
        } => HostError::Unavailable { status, message },
        Error::Timeout { method, path, .. } => HostError::Timeout {
            operation: format!("{method} {path}"),
        },
        Error::Connect { detail } => HostError::Unreachable { detail },
        Error::Transport { detail, .. } => HostError::Unreachable { detail },
        // A redirect is a refusal: nothing was sent to the new location.
        e @ Error::Redirected { .. } => HostError::Forbidden {
            reason: e.to_string(),
        },
        e @ (Error::Decode { .. } | Error::UnexpectedHtml { .. } | Error::TooLarge { .. }) => {
            HostError::Decode {
                detail: e.to_string(),
            }
        }
    }
}
