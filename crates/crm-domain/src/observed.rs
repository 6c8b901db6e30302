//! Host objects as crm sees them through the host port, and what it asks the
//! host to create. Wire shapes stay in `crm-sub2api`; these are the parts crm
//! reasons about. Secrets appear only in drafts, as [`SecretString`], and are
//! never part of an observed object.

use crate::{GroupBilling, HostObjectId, Platform, SecretString};
use std::collections::BTreeMap;

/// An upstream account on the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostAccount {
    pub id: HostObjectId,
    pub name: String,
    pub notes: Option<String>,
    pub platform: Platform,
    pub account_type: String,
    pub base_url: Option<String>,
    pub model_mapping: BTreeMap<String, String>,
    /// Non-secret credential fields (`account_mode`, `api_protocol`, ...).
    pub credential_fields: BTreeMap<String, serde_json::Value>,
    /// Whether the account holds an API key (the key itself is never kept).
    pub has_api_key: bool,
    pub extra: BTreeMap<String, serde_json::Value>,
    pub status: String,
    pub error_message: Option<String>,
    pub schedulable: bool,
    pub temp_unschedulable_reason: Option<String>,
    pub group_ids: Vec<HostObjectId>,
    pub created_at: Option<String>,
}

impl HostAccount {
    pub fn is_healthy(&self) -> bool {
        self.status == "active" && self.schedulable && self.temp_unschedulable_reason.is_none()
    }
}

/// What crm asks the host to create as an account.
#[derive(Debug, Clone)]
pub struct AccountDraft {
    pub name: String,
    pub notes: Option<String>,
    pub platform: Platform,
    pub account_type: String,
    pub base_url: String,
    pub api_key: SecretString,
    pub model_mapping: BTreeMap<String, String>,
    pub credential_fields: BTreeMap<String, serde_json::Value>,
    pub extra: BTreeMap<String, serde_json::Value>,
    pub group_ids: Vec<HostObjectId>,
    pub concurrency: u32,
    pub priority: i32,
}

/// A partial account update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub model_mapping: Option<BTreeMap<String, String>>,
    pub extra: Option<BTreeMap<String, serde_json::Value>>,
    pub group_ids: Option<Vec<HostObjectId>>,
    pub status: Option<String>,
}

/// A group on the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostGroup {
    pub id: HostObjectId,
    pub name: String,
    pub description: Option<String>,
    pub platform: Platform,
    pub billing: GroupBilling,
    pub rate_multiplier: f64,
    pub daily_limit_usd: Option<f64>,
    pub weekly_limit_usd: Option<f64>,
    pub monthly_limit_usd: Option<f64>,
    pub is_exclusive: bool,
    pub status: String,
}

/// What crm asks the host to create (or set) for a group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupDraft {
    pub name: String,
    pub description: Option<String>,
    pub platform: Platform,
    pub billing: GroupBilling,
    pub rate_multiplier: f64,
    pub daily_limit_usd: Option<f64>,
    pub weekly_limit_usd: Option<f64>,
    pub monthly_limit_usd: Option<f64>,
    pub is_exclusive: bool,
}

/// A channel (pricing + mapping over groups), newer hosts only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostChannel {
    pub id: HostObjectId,
    pub name: String,
    pub description: Option<String>,
    pub status: String,
    pub group_ids: Vec<HostObjectId>,
    pub model_pricing: Vec<ChannelPricing>,
    /// platform -> (requested model -> mapped model)
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    pub billing_model_source: String,
    pub restrict_models: bool,
}

/// What crm asks the host to create (or set) for a channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelDraft {
    pub name: String,
    pub description: Option<String>,
    pub group_ids: Vec<HostObjectId>,
    pub model_pricing: Vec<ChannelPricing>,
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    pub billing_model_source: String,
    pub restrict_models: bool,
}

/// One pricing row of a channel. Prices are USD per token (the host's unit).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelPricing {
    pub platform: String,
    pub models: Vec<String>,
    pub billing_mode: String,
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub cache_write_price: Option<f64>,
    pub cache_read_price: Option<f64>,
}

/// An ordinary user on the host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostUser {
    pub id: HostObjectId,
    pub email: String,
    pub username: Option<String>,
    pub notes: Option<String>,
    pub role: String,
    pub balance: f64,
    pub status: String,
    pub allowed_groups: Vec<HostObjectId>,
}

/// What crm asks the host to create as a user.
#[derive(Debug, Clone)]
pub struct UserDraft {
    pub email: String,
    pub password: SecretString,
    pub username: Option<String>,
    pub notes: Option<String>,
    pub balance: Option<f64>,
    pub allowed_groups: Vec<HostObjectId>,
}

/// How a balance change is applied (`POST /admin/users/:id/balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceOp {
    Set,
    Add,
    Subtract,
}

/// A user's gateway key. The key string itself is never part of this type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostApiKey {
    pub id: HostObjectId,
    pub user_id: HostObjectId,
    pub name: String,
    pub group_id: Option<HostObjectId>,
    pub status: String,
    /// Last four characters of the key, for display.
    pub key_last4: String,
}

/// A key just created: the only moment crm holds the key string.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: HostApiKey,
    pub secret: SecretString,
}

/// What crm asks for when creating a key as a user.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApiKeyDraft {
    pub name: String,
    pub group_id: Option<HostObjectId>,
}

/// Login of an ordinary user (for user-side key management).
#[derive(Debug, Clone)]
pub struct UserLogin {
    pub email: String,
    pub password: SecretString,
}

/// A subscription of a user to a subscription-type group.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostSubscription {
    pub id: HostObjectId,
    pub user_id: HostObjectId,
    pub group_id: HostObjectId,
    pub status: String,
    pub starts_at: Option<String>,
    pub expires_at: Option<String>,
    pub notes: Option<String>,
}

impl HostSubscription {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// Result of `POST /admin/accounts/:id/test` (the SSE account probe).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccountProbe {
    pub success: bool,
    /// Upstream model the host used (`test_start`).
    pub model: Option<String>,
    /// Text the upstream streamed back (truncated).
    pub text: String,
    /// The host's error text, kept verbatim (scrubbed of secrets).
    pub error: Option<String>,
    /// Upstream HTTP status as reported by the host, when given.
    pub error_code: Option<String>,
}

/// One gateway or upstream HTTP exchange, reduced to what classification needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallOutcome {
    /// HTTP status, `None` if no response arrived.
    pub status: Option<u16>,
    /// Whether the call did what it was for (2xx and no `error` object).
    pub ok: bool,
    /// `error.type` (OpenAI/Anthropic style) or the middleware string `code`.
    pub error_type: Option<String>,
    /// `error.code` where the body carries one (e.g. provider codes like `1113`).
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// A short, scrubbed excerpt of the body for evidence.
    pub body_excerpt: String,
    pub latency_ms: u64,
    /// Set when no HTTP response arrived (timeout, refused).
    pub transport_error: Option<String>,
}

/// Models a gateway (or upstream) lists.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelListing {
    pub outcome: CallOutcome,
    pub model_ids: Vec<String>,
}

/// A host-side channel monitor (newer hosts): the host itself calls one
/// upstream endpoint with one key on a schedule and keeps the results. The
/// key, and even the host's masked form of it, is never part of this type.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostMonitor {
    pub id: HostObjectId,
    pub name: String,
    /// The monitor's protocol family (`openai`, `anthropic`, ...).
    pub provider: String,
    /// `chat_completions` or `responses`.
    pub api_mode: String,
    /// The upstream origin the host calls (it appends `/v1/...`).
    pub endpoint: String,
    pub primary_model: String,
    pub extra_models: Vec<String>,
    /// A free display label; crm writes its ownership marker here (monitors
    /// have no notes field, docs/design.md §5 "Ownership").
    pub group_name: String,
    pub enabled: bool,
    pub interval_seconds: u32,
    /// Whether the monitor holds an API key.
    pub has_api_key: bool,
    pub last_checked_at: Option<String>,
    /// Latest status of the primary model (`operational`, `degraded`,
    /// `failed`, `error`); listings only, `None` before the first check.
    pub primary_status: Option<String>,
    /// Percent of the primary model's checks over seven days that were
    /// operational or degraded; listings only.
    pub availability_7d: Option<f64>,
}

/// What crm asks the host to create as a channel monitor.
#[derive(Debug, Clone)]
pub struct MonitorDraft {
    pub name: String,
    pub provider: String,
    pub api_mode: String,
    pub endpoint: String,
    pub api_key: SecretString,
    pub primary_model: String,
    pub extra_models: Vec<String>,
    pub group_name: String,
    pub enabled: bool,
    pub interval_seconds: u32,
}

/// A partial monitor update; `None` leaves a field as it is (the key too:
/// the host keeps its own when none is sent).
#[derive(Debug, Clone, Default)]
pub struct MonitorPatch {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub api_key: Option<SecretString>,
    pub primary_model: Option<String>,
    pub group_name: Option<String>,
    pub enabled: Option<bool>,
    pub interval_seconds: Option<u32>,
}

/// One check a monitor ran, newest first in a history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MonitorCheck {
    pub model: String,
    /// `operational`, `degraded`, `failed` or `error`.
    pub status: String,
    pub latency_ms: Option<u64>,
    /// The host's message (scrubbed of secrets), empty when none.
    pub message: String,
    pub checked_at: String,
}

impl MonitorCheck {
    /// sub2api counts `operational` and `degraded` checks as available.
    pub fn is_available(&self) -> bool {
        matches!(self.status.as_str(), "operational" | "degraded")
    }
}

/// Everything crm observes on a host in one pass (list calls only).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostSnapshot {
    pub accounts: Vec<HostAccount>,
    pub groups: Vec<HostGroup>,
    /// `None` when the host has no channels.
    pub channels: Option<Vec<HostChannel>>,
    pub users: Vec<HostUser>,
    pub subscriptions: Vec<HostSubscription>,
    pub api_keys: Vec<HostApiKey>,
    /// The host's channel monitors: `None` when they were not observed (a
    /// host without them, or no batch in scope has or wants one).
    #[serde(default)]
    pub monitors: Option<Vec<HostMonitor>>,
    /// Host requests the observation made.
    pub requests: u32,
}
