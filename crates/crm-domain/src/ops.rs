//! Operations, idempotency records, leases and audit events.

use crate::{HostId, LeaseId, OperationId, OperationKind, OperationStatus};
use chrono::{DateTime, Utc};

/// A long-running request, addressable by id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    pub id: OperationId,
    pub kind: OperationKind,
    pub status: OperationStatus,
    /// What it acts on, e.g. `host:h1/provider:cn-official/deepseek` or `batch:b-1`.
    pub target: String,
    /// The request that started it (replayed on resume after a restart).
    pub request: serde_json::Value,
    /// Human-readable progress lines, newest last.
    pub progress: Vec<String>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored idempotent response, scoped to a principal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub principal: String,
    /// `METHOD route`.
    pub route: String,
    /// SHA-256 of the canonical request body.
    pub body_hash: String,
    /// `None` while the first request is still executing.
    pub response: Option<StoredResponse>,
    pub created_at: DateTime<Utc>,
}

/// A response replayed for a repeated idempotent request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What beginning an idempotent request found.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyBegin {
    /// First time: execute, then complete the record.
    Started,
    /// Same key, same body, finished: replay this.
    Replay(StoredResponse),
    /// Same key, same body, still executing.
    InProgress,
    /// Same key, different body.
    Mismatch,
}

/// A lease on a scope, held in the database so that separate processes exclude each other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    /// `host:<id>` or `host:<id>/provider:<pack>/<provider>`.
    pub scope: String,
    pub holder: String,
    pub operation: String,
    pub acquired_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// A lease's scope is written as a [`Target`] of the host's id.
    pub fn host_scope(host: &HostId) -> String {
        Target::host(host).to_string()
    }
    pub fn provider_scope(host: &HostId, provider: &crate::ProviderRef) -> String {
        Target::provider(host, provider).to_string()
    }
}

/// What an operation or an audit event is about, written the same way by
/// every use case and face: `host:NAME`, `host:NAME/provider:PACK/ID` or
/// `batch:ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Host(String),
    Provider { host: String, provider: String },
    Batch(String),
}

impl Target {
    pub fn host(name: impl std::fmt::Display) -> Self {
        Target::Host(name.to_string())
    }
    pub fn provider(host: impl std::fmt::Display, provider: impl std::fmt::Display) -> Self {
        Target::Provider {
            host: host.to_string(),
            provider: provider.to_string(),
        }
    }
    pub fn batch(id: impl std::fmt::Display) -> Self {
        Target::Batch(id.to_string())
    }
    /// The narrowest of a scope: the batch if given, else the provider on
    /// the host, else the host.
    pub fn scope(
        host: impl std::fmt::Display,
        provider: Option<impl std::fmt::Display>,
        batch: Option<impl std::fmt::Display>,
    ) -> Self {
        match (batch, provider) {
            (Some(b), _) => Target::batch(b),
            (None, Some(p)) => Target::provider(host, p),
            (None, None) => Target::host(host),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Host(h) => write!(f, "host:{h}"),
            Target::Provider { host, provider } => write!(f, "host:{host}/provider:{provider}"),
            Target::Batch(b) => write!(f, "batch:{b}"),
        }
    }
}

/// Who did what to which target, and how it ended. Never contains secrets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// An audit event before it is stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// What a console session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    Admin,
    ReadOnly,
}

impl SessionRole {
    /// The word stored for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionRole::Admin => "admin",
            SessionRole::ReadOnly => "read_only",
        }
    }

    /// The role a stored word names, if any.
    pub fn from_word(word: &str) -> Option<SessionRole> {
        match word {
            "admin" => Some(SessionRole::Admin),
            "read_only" => Some(SessionRole::ReadOnly),
            _ => None,
        }
    }
}

/// A signed-in console browser, as the database keeps it so that every
/// replica knows it (docs/design.md §5, "Secrets"): the digest of the
/// cookie's random id, never the id itself, so whoever reads the database
/// cannot sign in with what they read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the session id the cookie carries.
    pub id_digest: String,
    pub role: SessionRole,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lease scopes are stored: their spelling must not move.
    #[test]
    fn lease_scopes_are_spelled_as_targets_of_the_host_id() {
        let h = HostId::new("h-1");
        let p = crate::ProviderRef::new("cn-official", "kimi");
        assert_eq!(Lease::host_scope(&h), "host:h-1");
        assert_eq!(
            Lease::provider_scope(&h, &p),
            "host:h-1/provider:cn-official/kimi"
        );
        assert_eq!(
            Target::scope("prod", None::<&str>, Some("b-1")).to_string(),
            "batch:b-1"
        );
    }
}
