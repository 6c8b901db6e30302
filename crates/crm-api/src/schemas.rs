//! Documentation types of the OpenAPI document for the responses crm-app
//! serializes itself (its records do not depend on utoipa). Each mirrors
//! the JSON of one record field for field and can parse it
//! (`deny_unknown_fields`), so the integration tests parse real responses
//! into them and a record that changes shape fails a test instead of
//! silently contradicting the document. Status fields list the design
//! words of docs/design.md §3.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

macro_rules! words {
    ($(#[$m:meta])* $name:ident = $vocab:ty) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $vocab);

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(<$vocab>::ALL.iter().map(|w| w.as_str())))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

words!(
    /// Batch status (docs/design.md §3).
    BatchStatusWord = crm_domain::BatchStatus
);
words!(
    /// Access status of a batch (docs/design.md §3).
    AccessStatusWord = crm_domain::AccessStatus
);
words!(
    /// Reconcile status (docs/design.md §3).
    ReconcileStatusWord = crm_domain::ReconcileStatus
);
words!(
    /// Provider status on a host (design brief §3).
    ProviderStatusWord = crm_domain::ProviderStatus
);
words!(
    /// The rule that decided a provider status.
    StatusReasonWord = crm_domain::status::StatusReason
);
words!(
    /// Access mode.
    AccessModeWord = crm_domain::AccessMode
);
words!(
    /// Operation status.
    OperationStatusWord = crm_domain::OperationStatus
);
words!(
    /// Why an access check failed, or an advisory's class (docs/design.md §3).
    FailureClassWord = crm_domain::FailureClass
);
words!(
    /// Operation kind.
    OperationKindWord = crm_domain::OperationKind
);

/// A registered host. Never holds the admin key, only where it is kept.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub base_url: String,
    /// `env:VAR`, `file:PATH` or `sealed`.
    pub admin_credential: String,
    pub version: Option<String>,
    pub probed_at: Option<DateTime<Utc>>,
    pub reconcile_every_secs: Option<u64>,
    /// The host's own funds thresholds, over the packs' and under a run's
    /// (`PUT /api/hosts/{id}/funds-thresholds`, `crm host set`).
    pub funds_thresholds: HostFundsThresholds,
    /// What the last probe found.
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<serde_json::Value>,
    /// What the operator should know about this registration, e.g. a
    /// plain-http `base_url` outside loopback (the admin key and upstream
    /// keys cross the network in clear). Left out when there is nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A keyed fingerprint of an upstream key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    pub hmac: String,
    pub last4: String,
}

/// One import of one provider onto one host in one access mode.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBatch {
    pub id: String,
    pub host_id: String,
    /// `pack/provider`.
    pub provider: String,
    pub mode: AccessModeWord,
    pub pack_version: String,
    pub pack_checksum: String,
    pub status: BatchStatusWord,
    pub status_reason: Option<String>,
    pub access_status: AccessStatusWord,
    /// The plan the batch was created from.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    pub upstream_keys: Vec<Fingerprint>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a reconcile run compared.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileScope {
    pub host_id: String,
    pub batch_id: Option<String>,
    pub provider: Option<String>,
}

/// A persisted reconcile run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRun {
    pub id: String,
    pub scope: ReconcileScope,
    pub status: ReconcileStatusWord,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub host_requests: u32,
    /// Drift items: category (`missing`, `changed`, `duplicate`,
    /// `unmanaged_leftover`, `unhealthy`, `access_broken`, `unknown`), kind,
    /// name, fields, detail.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    pub repaired: bool,
    pub error: Option<String>,
}

/// A reconcile run, and the repair when one was asked for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileReport {
    pub run: ReconcileRun,
    #[schema(value_type = Option<Object>)]
    pub repair_plan: Option<serde_json::Value>,
    pub repaired: Vec<String>,
}

/// Everything known about one batch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchDetail {
    pub batch: ImportBatch,
    pub host_name: String,
    /// Host objects the batch created or adopted.
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<serde_json::Value>,
    /// Every host mutation, intent first.
    #[schema(value_type = Vec<Object>)]
    pub journal: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub access_checks: Vec<serde_json::Value>,
    pub latest_reconcile: Option<ReconcileRun>,
    /// Keys whose newest funds reading says they cannot pay at all (balance
    /// at or below zero, not available, a quota window used up): why ready
    /// access is `degraded`.
    pub funds_advisories: Vec<FundsAdvisory>,
}

/// An advisory on a batch from a funds reading: the key of one host account
/// cannot pay at all.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundsAdvisory {
    /// The host account holding the key (never the key).
    pub account_id: i64,
    pub account_name: String,
    pub kind: ReadingKindWord,
    pub source: ReadingSourceWord,
    pub taken_at: DateTime<Utc>,
    /// Always `upstream_key_quota_issue`.
    pub class: FailureClassWord,
    /// The account and what its reading said.
    pub detail: String,
}

/// Who did what to which target, and how it ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `token:admin`, `token:read-only`, `scheduler`, `cli:...`.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// A provider of an installed pack.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSummary {
    /// `pack/provider`.
    pub provider: String,
    pub display_name: String,
    pub pack_version: String,
    pub native_platform: String,
    pub fallback_platform: String,
    pub models: usize,
    pub smoke_test_model: String,
    pub modes: Vec<AccessModeWord>,
}

/// A provider's base URLs in a preview: where the upstream keys go.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseUrls {
    /// The pack's OpenAI-compatible base URL.
    pub openai: String,
    /// The pack's Anthropic base URL, if the provider has one.
    pub anthropic: Option<String>,
    /// The one the accounts use on this host (by the platform chosen);
    /// null when no platform is available (the plan is blocked).
    pub accounts: Option<String>,
}

/// An account's upstream key moving from its recorded base URL to the one
/// of the current pack version. An import applies it only with
/// `"accept_url_change": true`; otherwise the import operation fails and
/// changes nothing.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlChange {
    /// Always `base_url_change`.
    #[schema(example = "base_url_change")]
    pub kind: String,
    /// The account's name.
    pub account: String,
    /// Its host id, when it exists on the host.
    pub host_object_id: Option<i64>,
    /// The base URL recorded for it (where its key goes today).
    pub from: String,
    /// The base URL the current pack version gives it.
    pub to: String,
}

/// What an import would do; nothing is changed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    pub host: String,
    /// `pack/provider`.
    pub provider: String,
    pub mode: AccessModeWord,
    pub pack_version: String,
    /// The live batch the plan applies to, if any.
    pub batch: Option<String>,
    pub base_urls: BaseUrls,
    /// Items (`kind`, `action`, `name`, `natural_key`, `host_object_id`,
    /// `changes`, `reason`) and notes. An account item whose base URL moves
    /// has a `base_url` change from the recorded URL.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    /// The plan's base URL changes, to confirm with `accept_url_change`.
    pub url_changes: Vec<UrlChange>,
    /// What closing access would create (only when a batch exists).
    #[schema(value_type = Option<Object>)]
    pub access_plan: Option<serde_json::Value>,
    /// Whether importing would change anything.
    pub changes: bool,
    pub host_requests: u32,
}

/// The status of one provider on one host (design brief §3): `active`
/// (applied, access ready or degraded, last reconcile in sync), `drifted`,
/// `inactive` (no live batch, access broken or not configured) or `unknown`
/// (host unreachable, never checked), from the latest live batch, its latest
/// access check and the latest reconcile run covering it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderStatus {
    /// Host name.
    pub host: String,
    /// `pack/provider`.
    pub provider: String,
    pub status: ProviderStatusWord,
    pub reason: StatusReasonWord,
    /// The reason in a sentence, with the command that moves it on.
    pub detail: String,
    pub batch_id: Option<String>,
    pub batch_status: Option<BatchStatusWord>,
    pub access_status: Option<AccessStatusWord>,
    pub checked_at: Option<DateTime<Utc>>,
    pub reconcile_run: Option<String>,
    pub reconciled_at: Option<DateTime<Utc>>,
}

words!(
    /// How a funds reading compares with its thresholds.
    FundsStatusWord = crm_domain::FundsStatus
);
words!(
    /// What a funds reading measures.
    ReadingKindWord = crm_domain::ReadingKind
);
words!(
    /// Where a funds reading came from.
    ReadingSourceWord = crm_domain::ReadingSource
);
words!(
    /// Whether a funds reading holds a value.
    ReadingStateWord = crm_domain::ReadingState
);
words!(
    /// A currency a pack may price (and set a threshold) in.
    CurrencyWord = crm_domain::Currency
);

/// An amount in the currency the provider reported it in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: f64,
    /// Upper-cased as reported (`CNY`, `USD`, ...).
    pub currency: String,
}

/// One Coding-Plan rolling window as the host reports it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaWindow {
    /// `5h`, `weekly`, ...
    pub window: String,
    /// Share of the window used, 0..100 (a host may report more).
    pub used_percent: f64,
    #[serde(default)]
    pub reset_at: Option<String>,
}

/// A balance threshold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceThreshold {
    pub amount: f64,
    pub currency: CurrencyWord,
}

/// A provider's thresholds: the pack's, with the host's or the request's
/// overrides on top. Absent means none.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundsThreshold {
    /// Below this amount a balance is `low_funds`.
    #[serde(default)]
    pub low_balance: Option<BalanceThreshold>,
    /// Below this share (0..100) of a quota window left, quota is `low_quota`.
    #[serde(default)]
    pub low_quota_percent: Option<f64>,
}

/// A host's own funds thresholds: host-wide (`all`) and per `pack/provider`
/// on top. Empty when the host sets none (the packs' apply).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFundsThresholds {
    /// For every provider on the host.
    #[serde(default)]
    pub all: Option<FundsThreshold>,
    /// For one `pack/provider`, over `all`.
    #[serde(default)]
    pub providers: std::collections::BTreeMap<String, FundsThreshold>,
}

/// One provider's readings on the host, aggregated (never per key).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderFunds {
    /// `pack/provider`.
    pub provider: String,
    /// Sum of the accounts' balances per currency.
    pub balances: std::collections::BTreeMap<String, f64>,
    /// The tightest remaining quota share (0..1) over the accounts.
    pub quota_remaining_ratio: Option<f64>,
    /// The worst status of any account.
    pub status: FundsStatusWord,
    /// Accounts below a threshold or unable to pay.
    pub accounts_below: usize,
    pub accounts: usize,
}

/// The newest reading of one account (per kind and source), with its
/// status and age. Names the host account, never the key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundsReading {
    pub host_id: String,
    pub batch_id: Option<String>,
    /// `pack/provider`.
    pub provider: String,
    /// The host account holding the upstream key.
    pub account_id: i64,
    pub account_name: String,
    pub source: ReadingSourceWord,
    pub taken_at: DateTime<Utc>,
    pub kind: ReadingKindWord,
    pub state: ReadingStateWord,
    /// Every currency the provider reported, primary first.
    #[serde(default)]
    pub balances: Vec<Money>,
    /// The provider's own "can pay" flag, where it has one.
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub quota: Vec<QuotaWindow>,
    /// Why the state is `unknown` or `unsupported`.
    #[serde(default)]
    pub detail: Option<String>,
    pub status: FundsStatusWord,
    /// The status in a sentence (amount and threshold, or what failed).
    pub status_detail: String,
    /// Seconds since the reading was taken.
    pub age_secs: i64,
}

/// The funds of one host.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFunds {
    /// Host name.
    pub host: String,
    /// The reconcile run that took the readings, when this request took them.
    pub run_id: Option<String>,
    /// Why fresh readings could not be taken (the stored ones are shown).
    pub error: Option<String>,
    /// Thresholds per `pack/provider`.
    pub thresholds: std::collections::BTreeMap<String, FundsThreshold>,
    pub providers: Vec<ProviderFunds>,
    pub readings: Vec<FundsReading>,
}

/// What `crm provider funds --output json` prints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundsReport {
    pub at: DateTime<Utc>,
    pub hosts: Vec<HostFunds>,
}
