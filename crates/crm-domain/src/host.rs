//! Registered hosts and what a probe found about them.

use crate::{HostId, Platform};
use chrono::{DateTime, Utc};

/// A sub2api host crm manages.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostRecord {
    pub id: HostId,
    /// Operator-chosen unique name.
    pub name: String,
    /// Base URL, e.g. `https://relay.example.com` (no trailing `/api`).
    pub base_url: String,
    /// Where the admin API key comes from. Never the key itself in clear.
    pub admin_credential: CredentialRef,
    pub capabilities: Option<Capabilities>,
    /// Reconcile schedule for this host, if any.
    #[serde(default)]
    pub reconcile_every_secs: Option<u64>,
    pub created_at: DateTime<Utc>,
}

/// How to obtain a secret at the moment it is needed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialRef {
    /// Read from an environment variable of the process that uses it.
    Env { var: String },
    /// Read from a file (first line, trimmed).
    File { path: String },
    /// Encrypted at rest by the store's sealer; `sealed` is opaque ciphertext.
    Sealed { sealed: SealedSecret },
}

/// Ciphertext produced by a [`crate::ports::SecretSealer`]; printable, useless without the key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

/// What a probe found (docs/design.md §2 "Capabilities").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    pub probed_at: DateTime<Utc>,
    pub version: Option<String>,
    pub admin_auth: AdminAuth,
    pub channels: bool,
    pub chat_completions: bool,
    /// Native CN platforms the host accepts (kimi, zhipu, deepseek, minimax, ...).
    pub native_platforms: Vec<Platform>,
    pub subscriptions: bool,
    pub payment_plans: bool,
    /// `PUT /admin/api-keys/:id` exists.
    pub admin_key_rebind: bool,
    pub idempotency_key: bool,
    /// Accounts come back with `credentials_status` instead of raw secrets.
    pub credential_redaction: bool,
    /// Largest `page_size` the host honours.
    pub max_page_size: u32,
    /// `GET /admin/cn-providers/accounts/:id/balance` and `.../quota` exist
    /// (funds and Coding-Plan quota readings through the host).
    #[serde(default)]
    pub cn_funds: bool,
    /// `/admin/channel-monitors` exists (host-side scheduled channel checks).
    #[serde(default)]
    /// Why each verdict was reached.
    pub evidence: Vec<CapabilityEvidence>,
}

impl Capabilities {
    pub fn accepts_platform(&self, p: &Platform) -> bool {
        p.is_baseline() || self.native_platforms.contains(p)
    }
}

/// Result of the admin authentication check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AdminAuth {
    Ok,
    /// HTTP 423: an administrator must accept the compliance notice.
    ComplianceGate {
        document_url: Option<String>,
    },
    Rejected {
        reason: String,
    },
}

/// One probe observation behind a capability verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CapabilityEvidence {
    pub capability: String,
    pub verdict: bool,
    pub request: String,
    pub status: Option<u16>,
    pub detail: String,
}
