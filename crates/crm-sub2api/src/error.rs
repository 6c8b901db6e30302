//! The client's error type: one variant per thing an operator can act on.
//!
//! Every message that came from the host or the network passes through
//! [`crate::scrub`] before it is stored in a variant, so printing an error
//! never prints a key.

use std::time::Duration;

/// Why a call to a sub2api host failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL given to the client cannot be used.
    #[error("invalid base URL {url:?}: {detail}")]
    InvalidBaseUrl { url: String, detail: String },
    /// A secret contains bytes that cannot travel in an HTTP header.
    #[error("the {what} contains characters that cannot be sent in an HTTP header")]
    InvalidSecret { what: String },
    /// HTTP 401: the admin key, user key or login was rejected.
    #[error(
        "host rejected the credentials ({code}): {message}; check the admin key or the user login"
    )]
    Unauthorized { code: String, message: String },
    /// HTTP 403: authenticated, but not allowed (billing gate, admin only, ...).
    #[error("host refused the request ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// HTTP 423: an administrator must accept the host's compliance notice
    /// in the web console before the admin API answers.
    #[error(
        "host returned 423: an administrator must accept the compliance notice{}",
        document_url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
    )]
    ComplianceGate {
        document_url: Option<String>,
        message: String,
    },
    /// An enveloped 404: the route exists but the record does not.
    #[error("not found on the host: {message}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotFound {
        reason: Option<String>,
        message: String,
    },
    /// gin's plain-text `404 page not found`: this host version has no such route.
    #[error("host has no route {method} {path} (plain 404: older sub2api version?)")]
    RouteMissing { method: String, path: String },
    /// HTTP 409 with the host's machine reason (`SUBSCRIPTION_ALREADY_EXISTS`,
    /// `mixed_channel_warning`, `IDEMPOTENCY_KEY_CONFLICT`, ...).
    #[error("host reported a conflict ({reason}): {message}")]
    Conflict { reason: String, message: String },
    /// HTTP 400/422: the host refused the request body or parameters.
    #[error("host rejected the request as invalid: {message}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Validation {
        reason: Option<String>,
        message: String,
    },
    /// HTTP 429.
    #[error("host is rate limiting{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// HTTP 5xx: the host (or a proxy in front of it) failed.
    #[error("host answered {status}: {message}")]
    HostUnavailable { status: u16, message: String },
    /// Any other non-2xx status.
    #[error("host answered unexpected status {status}: {message}")]
    UnexpectedStatus {
        status: u16,
        reason: Option<String>,
        message: String,
    },
    /// No complete answer within the call's timeout. For a write, the host may
    /// or may not have applied it.
    #[error("{method} {path} got no answer within {}s", after.as_secs_f32())]
    Timeout {
        method: String,
        path: String,
        after: Duration,
    },
    /// The TCP/TLS connection could not be made.
    #[error("could not connect to the host: {detail}")]
    Connect { detail: String },
    /// Some other transport failure after the connection was made.
    #[error("transport error on {method} {path}: {detail}")]
    Transport {
        method: String,
        path: String,
        detail: String,
    },
    /// The host answered, but not with something this client can read.
    #[error("host answered {status} with a body that cannot be read ({detail}): {body_excerpt}")]
    Decode {
        status: u16,
        detail: String,
        /// A short excerpt of the body, scrubbed of secrets and truncated.
        body_excerpt: String,
    },
    /// A 3xx answer. crm never follows a redirect: the admin key travels
    /// as `x-api-key`, which HTTP clients do not strip on a cross-host
    /// redirect, and a 307/308 re-sends bodies that carry upstream keys.
    /// Only the `Location` host is kept (its query may carry anything).
    #[error(
        "host answered {status} redirecting to {}; crm follows no redirect (it would carry the key there): set the host's base URL to the address that answers",
        location_host.as_deref().unwrap_or("an unreadable location")
    )]
    Redirected {
        status: u16,
        location_host: Option<String>,
    },
    /// The host sent more than crm reads in one answer (a hostile or broken
    /// host would otherwise exhaust memory within the timeout).
    #[error("{host} sent a {what} larger than the limit of {limit} bytes; crm stopped reading it")]
    TooLarge {
        host: String,
        what: String,
        limit: usize,
    },
    /// HTML with a success status: the embedded web frontend answered a path
    /// the API does not know. Never data.
    #[error(
        "host answered {path} with an HTML page (status {status}) instead of JSON: this sub2api build does not serve that API route"
    )]
    UnexpectedHtml { status: u16, path: String },
}

impl Error {
    /// Failures worth another attempt for a read or a delete: the host may
    /// answer the same request differently in a moment.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Connect { .. } | Error::Transport { .. } => true,
            Error::HostUnavailable { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// The host's machine-readable reason, when it gave one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Unauthorized { code, .. } | Error::Forbidden { code, .. } => Some(code),
            Error::Conflict { reason, .. } => Some(reason),
            Error::NotFound { reason, .. }
            | Error::Validation { reason, .. }
            | Error::UnexpectedStatus { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
