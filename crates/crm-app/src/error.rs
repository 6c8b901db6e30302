//! The application core's error: every library error, plus the few the core
//! itself raises, each with a message an operator can act on.

use crm_domain::ports::{HostError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Pack(#[from] crm_pack::PackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Host(#[from] HostError),
    #[error(transparent)]
    Provision(#[from] crm_provision::ProvisionError),
    #[error(transparent)]
    Access(#[from] crm_access::Error),
    #[error(transparent)]
    Reconcile(#[from] crm_reconcile::ReconcileError),
    #[error("cannot open the crm database: {0}")]
    Open(String),
    #[error("{what} not found{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    NotFound { what: String, hint: Option<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the {what}: {detail}")]
    Credential { what: String, detail: String },
    /// A pack from a file or an upload takes a bundled pack's id with other
    /// content (docs/design.md §2: bundled ids are reserved).
    #[error(
        "pack id `{pack_id}` is reserved for the pack bundled with crm, and this pack is not it: give your pack its own pack_id, or replace the bundled pack on purpose with `crm pack install FILE --replace-bundled` (API: `replace_bundled=true`)"
    )]
    ReservedPack { pack_id: String },
    #[error(
        "the server is stopping and starts no new operation; retry against the restarted server"
    )]
    ShuttingDown,
}

impl AppError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::Invalid(msg.into())
    }

    /// Whether the problem is the caller's input (HTTP 4xx), not crm or a host.
    pub fn is_client_error(&self) -> bool {
        self.kind().is_client_error()
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// What kind of failure an [`AppError`] is, for a face to answer with: one
/// kind, one HTTP status ([`ErrorKind::http_status`]), one exit code. Every
/// face (CLI, API, console, acceptance harness) classifies errors through
/// [`AppError::kind`], so the same error never gets two answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The thing named does not exist (host, batch, pack, operation, ...).
    NotFound,
    /// The request itself is unusable: a malformed pack, a bad value, an
    /// unreadable credential. Fix the input and retry.
    Invalid,
    /// The request contradicts recorded state (already exists, blocked plan,
    /// batch in the wrong status, needs an operator).
    Conflict,
    /// Another operation holds what this one needs; retry later.
    Busy,
    /// The sub2api host did not answer (refused, timed out).
    HostUnreachable,
    /// The sub2api host answered, but not as needed (auth, 4xx/5xx, a failed
    /// journaled step, an unexpected body).
    HostRejected,
    /// crm itself cannot serve now (database unavailable, shutting down).
    Unavailable,
    /// A bug or corrupt record in crm.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind: the one table the API and the console
    /// share (a number, so the core needs no HTTP stack).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Invalid => 422,
            ErrorKind::Conflict | ErrorKind::Busy => 409,
            ErrorKind::HostUnreachable | ErrorKind::HostRejected => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// Whether the caller's input (or timing) is the problem, not crm or a host.
    pub fn is_client_error(self) -> bool {
        matches!(
            self,
            ErrorKind::NotFound | ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Busy
        )
    }
}

fn store_kind(e: &StoreError) -> (ErrorKind, &'static str) {
    match e {
        StoreError::NotFound { .. } => (ErrorKind::NotFound, "not-found"),
        StoreError::AlreadyExists { .. } => (ErrorKind::Conflict, "already-exists"),
        StoreError::LeaseHeld { .. } => (ErrorKind::Busy, "busy"),
        StoreError::LeaseLost { .. } => (ErrorKind::Conflict, "lease-lost"),
        StoreError::Corrupt { .. } | StoreError::Backend { .. } | StoreError::Sealing { .. } => {
            (ErrorKind::Internal, "storage")
        }
    }
}

fn host_kind(e: &HostError) -> (ErrorKind, &'static str) {
    match e {
        HostError::Timeout { .. } => (ErrorKind::HostUnreachable, "host-timeout"),
        HostError::Unreachable { .. } => (ErrorKind::HostUnreachable, "host-unreachable"),
        HostError::Unauthorized { .. } | HostError::Forbidden { .. } => {
            (ErrorKind::HostRejected, "host-auth")
        }
        HostError::ComplianceGate { .. } => (ErrorKind::HostRejected, "host-compliance-gate"),
        HostError::RateLimited { .. } => (ErrorKind::HostRejected, "host-rate-limited"),
        _ => (ErrorKind::HostRejected, "host-error"),
    }
}

impl AppError {
    /// The host error behind this error, wherever it was wrapped (directly,
    /// by provisioning, access or reconcile).
    pub fn host_error(&self) -> Option<&HostError> {
        use crm_provision::ProvisionError as P;
        fn from_provision(p: &P) -> Option<&HostError> {
            match p {
                P::Host(h) | P::StepFailed { source: h, .. } => Some(h),
                _ => None,
            }
        }
        match self {
            AppError::Host(h) => Some(h),
            AppError::Provision(p) => from_provision(p),
            AppError::Access(crm_access::Error::Host(h)) => Some(h),
            AppError::Access(crm_access::Error::Provision(p)) => from_provision(p),
            AppError::Reconcile(crm_reconcile::ReconcileError::Host(h)) => Some(h),
            _ => None,
        }
    }

    /// The store error behind this error, wherever it was wrapped.
    pub fn store_error(&self) -> Option<&StoreError> {
        use crm_provision::ProvisionError as P;
        match self {
            AppError::Store(s)
            | AppError::Provision(P::Store(s))
            | AppError::Access(crm_access::Error::Store(s))
            | AppError::Access(crm_access::Error::Provision(P::Store(s)))
            | AppError::Reconcile(crm_reconcile::ReconcileError::Store(s)) => Some(s),
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.classify().0
    }

    /// A stable machine-readable code, finer than the kind (`pack-invalid`,
    /// `host-timeout`, `batch-state`, ...): the API's problem type and the
    /// console's and CLI's way to tell cases apart.
    pub fn code(&self) -> &'static str {
        self.classify().1
    }

    fn classify(&self) -> (ErrorKind, &'static str) {
        use crm_access::Error as A;
        use crm_provision::ProvisionError as P;
        use crm_reconcile::ReconcileError as R;
        if let Some(s) = self.store_error() {
            return match self {
                AppError::Reconcile(R::Busy(_)) => (ErrorKind::Busy, "busy"),
                _ => store_kind(s),
            };
        }
        match self {
            AppError::Provision(P::StepFailed { .. }) => {
                return (ErrorKind::HostRejected, "step-failed");
            }
            AppError::Reconcile(R::Repair(_)) => {
                return (ErrorKind::HostRejected, "repair-failed");
            }
            _ => {}
        }
        if let Some(h) = self.host_error() {
            return host_kind(h);
        }
        match self {
            AppError::Pack(crm_pack::PackError::Invalid { .. }) => {
                (ErrorKind::Invalid, "pack-invalid")
            }
            AppError::Pack(_) => (ErrorKind::Invalid, "pack-unreadable"),
            AppError::ReservedPack { .. } => (ErrorKind::Conflict, "pack-reserved"),
            AppError::Provision(P::Blocked { .. }) | AppError::Access(A::Blocked { .. }) => {
                (ErrorKind::Conflict, "blocked")
            }
            AppError::Provision(P::NeedsOperator { .. }) => (ErrorKind::Conflict, "needs-operator"),
            AppError::Provision(P::BatchState { .. }) => (ErrorKind::Conflict, "batch-state"),
            AppError::Provision(P::UrlChangeUnconfirmed { .. }) => {
                (ErrorKind::Conflict, "url-change-unconfirmed")
            }
            AppError::Provision(P::Invalid(_)) | AppError::Access(A::Provision(P::Invalid(_))) => {
                (ErrorKind::Invalid, "invalid")
            }
            AppError::Access(A::UnknownUser { .. }) => (ErrorKind::Invalid, "unknown-user"),
            AppError::Access(A::MissingResource { .. } | A::ModeMismatch { .. }) => {
                (ErrorKind::Conflict, "access-precondition")
            }
            AppError::Reconcile(R::Busy(_)) => (ErrorKind::Busy, "busy"),
            AppError::Reconcile(R::UnknownScope(_)) => (ErrorKind::NotFound, "not-found"),
            AppError::Open(_) => (ErrorKind::Unavailable, "database"),
            AppError::ShuttingDown => (ErrorKind::Unavailable, "shutting-down"),
            AppError::NotFound { .. } => (ErrorKind::NotFound, "not-found"),
            AppError::Invalid(_) => (ErrorKind::Invalid, "invalid"),
            AppError::Credential { .. } => (ErrorKind::Invalid, "credential"),
            AppError::Access(_) => (ErrorKind::Internal, "access"),
            _ => (ErrorKind::Internal, "internal"),
        }
    }
}

/// The human title of a problem code (see [`AppError::code`]).
pub fn title_of(code: &str) -> &'static str {
    match code {
        "not-found" => "Not found",
        "already-exists" => "Already exists",
        "busy" => "Another operation holds it",
        "lease-lost" => "Lease lost",
        "storage" => "Storage failure",
        "host-timeout" => "Host timed out",
        "host-unreachable" => "Host unreachable",
        "host-auth" => "Host rejected the credentials",
        "host-compliance-gate" => "Host compliance gate",
        "host-rate-limited" => "Host is rate limiting",
        "host-error" => "Host call failed",
        "step-failed" => "A host step failed",
        "repair-failed" => "A repair step failed",
        "pack-invalid" => "Pack is invalid",
        "pack-unreadable" => "Pack unreadable",
        "pack-reserved" => "Pack id is reserved",
        "blocked" => "The plan is blocked",
        "needs-operator" => "Needs an operator",
        "batch-state" => "The batch is not in a state that allows this",
        "url-change-unconfirmed" => "A base URL change needs confirmation",
        "invalid" => "Invalid request",
        "unknown-user" => "Unknown host user",
        "access-precondition" => "Access cannot be closed yet",
        "database" => "Database unavailable",
        "shutting-down" => "Server is shutting down",
        "credential" => "Credential unreadable",
        "access" => "Access records unreadable",
        "internal" => "Internal error",
        _ => "Something went wrong",
    }
}

impl AppError {
    /// A short human title for this error (the API's problem title, the
    /// console's page heading).
    pub fn title(&self) -> &'static str {
        title_of(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: AppError, kind: ErrorKind, status: u16, code: &str) {
        assert_eq!(e.kind(), kind, "{e}");
        assert_eq!(e.kind().http_status(), status, "{e}");
        assert_eq!(e.code(), code, "{e}");
        assert_ne!(e.title(), "Something went wrong", "{e} has a title");
    }

    #[test]
    fn every_error_has_one_kind_one_status_and_a_code() {
        use crm_provision::ProvisionError as P;
        let host = || HostError::Unreachable {
            detail: "refused".into(),
        };
        check(
            AppError::NotFound {
                what: "host x".into(),
                hint: None,
            },
            ErrorKind::NotFound,
            404,
            "not-found",
        );
        check(
            AppError::Store(StoreError::AlreadyExists { what: "x".into() }),
            ErrorKind::Conflict,
            409,
            "already-exists",
        );
        check(
            AppError::Host(host()),
            ErrorKind::HostUnreachable,
            502,
            "host-unreachable",
        );
        check(
            AppError::Host(HostError::Timeout {
                operation: "GET".into(),
            }),
            ErrorKind::HostUnreachable,
            502,
            "host-timeout",
        );
        check(
            AppError::Access(crm_access::Error::Provision(P::Host(
                HostError::Unauthorized {
                    reason: "no".into(),
                },
            ))),
            ErrorKind::HostRejected,
            502,
            "host-auth",
        );
        check(
            AppError::Provision(P::Blocked {
                reasons: vec!["x".into()],
            }),
            ErrorKind::Conflict,
            409,
            "blocked",
        );
        check(
            AppError::Provision(P::UrlChangeUnconfirmed {
                provider: crm_domain::ProviderRef::new("cn-official", "deepseek"),
                pack_version: "2".into(),
                changes: vec![],
            }),
            ErrorKind::Conflict,
            409,
            "url-change-unconfirmed",
        );
        check(AppError::invalid("bad"), ErrorKind::Invalid, 422, "invalid");
        check(
            AppError::ReservedPack {
                pack_id: "cn-official".into(),
            },
            ErrorKind::Conflict,
            409,
            "pack-reserved",
        );
        check(
            AppError::Open("gone".into()),
            ErrorKind::Unavailable,
            503,
            "database",
        );
        check(
            AppError::Store(StoreError::Backend {
                detail: "disk".into(),
            }),
            ErrorKind::Internal,
            500,
            "storage",
        );
    }

    #[test]
    fn the_host_error_is_found_wherever_it_was_wrapped() {
        use crm_provision::ProvisionError as P;
        let h = HostError::Unreachable {
            detail: "refused".into(),
        };
        for e in [
            AppError::Host(h.clone()),
            AppError::Provision(P::Host(h.clone())),
            AppError::Access(crm_access::Error::Host(h.clone())),
            AppError::Access(crm_access::Error::Provision(P::Host(h.clone()))),
            AppError::Reconcile(crm_reconcile::ReconcileError::Host(h.clone())),
        ] {
            assert_eq!(e.host_error(), Some(&h), "{e}");
        }
        assert_eq!(AppError::invalid("x").host_error(), None);
    }
}
