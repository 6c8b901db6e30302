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
}

impl AppError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::Invalid(msg.into())
    }

    /// Whether the problem is the caller's input (HTTP 4xx), not crm or a host.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            AppError::Pack(_)
                | AppError::NotFound { .. }
                | AppError::Invalid(_)
                | AppError::Credential { .. }
                | AppError::Store(StoreError::NotFound { .. })
                | AppError::Store(StoreError::AlreadyExists { .. })
        )
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;
