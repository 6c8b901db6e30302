//! Registered hosts and what a probe found about them.

use crate::{BatchId, HostId, Platform};
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
    /// The operator's funds thresholds for this host, over the packs'
    /// (`crm host set --low-balance`).
    #[serde(
        default,
        skip_serializing_if = "crate::funds::HostThresholds::is_empty"
    )]
    pub funds_thresholds: crate::funds::HostThresholds,
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

/// Where a sealed value is kept: sealing binds the ciphertext to this place
/// (it is the AEAD's associated data), so a value copied to another row or
/// field does not open (docs/design.md §5 "Secrets").
///
/// Only the constructors below exist, one per kind of sealed value, so two
/// call sites cannot spell one place two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealContext {
    table: &'static str,
    row: String,
    field: &'static str,
}

impl SealContext {
    /// A host's admin key: table `hosts`, the host's id (never its name,
    /// which an operator chooses), field `admin_credential`.
    pub fn host_admin_key(host: &HostId) -> Self {
        SealContext {
            table: "hosts",
            row: host.as_str().to_owned(),
            field: "admin_credential",
        }
    }

    /// The login password of a batch's closure user. The same sealed value
    /// is copied into several journal entries and managed resources of the
    /// batch (the user, then every key that logs in as it), so its row is
    /// the batch that owns it together with the login it belongs to:
    /// `<batch id>/<email>`, table `batches`, field `login_password_sealed`.
    /// Moved to another batch, or beside another login, it does not open.
    pub fn batch_login_password(batch: &BatchId, email: &str) -> Self {
        SealContext {
            table: "batches",
            row: format!("{}/{email}", batch.as_str()),
            field: "login_password_sealed",
        }
    }

    /// The seal key check of an installation: a fixed label sealed once,
    /// on the first open of a database, so every later open (another
    /// process, another replica) proves it holds the same seal key before
    /// it seals anything (docs/design.md §5 "Secrets"). Table
    /// `installation`, row `seal_check`, field `value`.
    pub fn seal_key_check() -> Self {
        SealContext {
            table: "installation",
            row: "seal_check".to_owned(),
            field: "value",
        }
    }

    /// The context of the login password a batch's desired spec carries
    /// (`login_password_sealed` beside `login_email` in a key's spec, or
    /// beside `email` in the user's own), or `None` when it names no login.
    pub fn login_password_in(batch: &BatchId, desired: &serde_json::Value) -> Option<Self> {
        let email = desired
            .get("login_email")
            .or_else(|| desired.get("email"))
            .and_then(|v| v.as_str())?;
        Some(SealContext::batch_login_password(batch, email))
    }

    pub fn table(&self) -> &str {
        self.table
    }

    pub fn row(&self) -> &str {
        &self.row
    }

    pub fn field(&self) -> &str {
        self.field
    }

    /// The bytes a sealer authenticates: a label, then table, row and field,
    /// each preceded by its length, so no two contexts give the same bytes.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut out = b"crm-seal-v2".to_vec();
        for part in [self.table, self.row.as_str(), self.field] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

impl std::fmt::Display for SealContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{} of {}", self.table, self.field, self.row)
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
    pub channel_monitors: bool,
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
