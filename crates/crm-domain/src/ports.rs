//! Ports: the seams between crm's use cases and the outside world.
//!
//! - [`HostApi`] and [`UpstreamProbe`]: a sub2api host and the providers
//!   behind it (implemented by `crm-sub2api`).
//! - The repositories ([`PackRepo`], [`HostRepo`], [`BatchRepo`], ...):
//!   durable records (implemented by `crm-store`).
//! - [`Clock`], [`IdSource`], [`SecretSealer`]: time, identity and
//!   encryption at rest, so use cases stay deterministic under test.

use crate::access::AccessCheck;
use crate::batch::{
    BatchFilter, ImportBatch, JournalEntry, JournalResolution, ManagedResource, NewJournalEntry,
};
use crate::funds::{FundsReading, FundsValue};
use crate::host::{Capabilities, HostRecord, SealContext, SealedSecret};
use crate::observed::*;
use crate::ops::{
    AuditEvent, ConsoleSession, IdempotencyBegin, Lease, NewAuditEvent, Operation, StoredResponse,
};
use crate::reconcile::ReconcileRun;
use crate::spec::InstalledPack;
use crate::{
    AccessStatus, BatchId, BatchStatus, HostId, HostObjectId, LeaseId, OperationId, PackId,
    ProviderRef, ReconcileRunId, ResourceKind, ResourceState, SecretString,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------- host

/// Why a host call failed, in terms an operator (and a recovery rule) can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostError {
    #[error("host rejected the credentials ({reason}); check the admin key or user login")]
    Unauthorized { reason: String },
    #[error("host refused the request ({reason})")]
    Forbidden { reason: String },
    #[error(
        "host returned 423: an administrator must accept the compliance notice{}",
        document_url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
    )]
    ComplianceGate { document_url: Option<String> },
    #[error("{what} not found on the host")]
    NotFound { what: String },
    #[error("host has no route {route} (older sub2api version?)")]
    RouteMissing { route: String },
    #[error("host reported a conflict: {reason}: {message}")]
    Conflict { reason: String, message: String },
    #[error("host rejected the request as invalid: {message}")]
    Validation { message: String },
    #[error("host is rate limiting{}", retry_after_secs.map(|s| format!("; retry after {s}s")).unwrap_or_default())]
    RateLimited { retry_after_secs: Option<u64> },
    #[error("host answered {status}: {message}")]
    Unavailable { status: u16, message: String },
    #[error("host did not answer {operation} in time")]
    Timeout { operation: String },
    #[error("host unreachable: {detail}")]
    Unreachable { detail: String },
    #[error("host answered something crm cannot read: {detail}")]
    Decode { detail: String },
}

impl HostError {
    /// The host may or may not have applied a mutation that failed this way,
    /// so a create must be resolved by natural-key lookup, never blindly retried.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            HostError::Timeout { .. }
                | HostError::Unreachable { .. }
                | HostError::Unavailable { .. }
                | HostError::Decode { .. }
        )
    }

    /// The host never got far enough to matter (no side effect possible).
    pub fn is_refusal(&self) -> bool {
        !self.outcome_unknown()
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, HostError::NotFound { .. })
    }
}

pub type HostResult<T> = Result<T, HostError>;

/// One sub2api host, connected with its admin credential.
///
/// Lists iterate every page at the host's maximum page size. Creates are
/// never retried by the implementation; reads and deletes may be.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait HostApi: Send + Sync {
    /// Detects version and capabilities. Never mutates the host.
    async fn probe(&self) -> HostResult<Capabilities>;

    /// Number of HTTP requests made through this handle so far.
    fn request_count(&self) -> u32;

    // accounts
    async fn list_accounts(&self) -> HostResult<Vec<HostAccount>>;
    async fn get_account(&self, id: HostObjectId) -> HostResult<HostAccount>;
    /// `idempotency_key` is sent only to hosts that honour it.
    async fn create_account(
        &self,
        draft: &AccountDraft,
        idempotency_key: Option<String>,
    ) -> HostResult<HostAccount>;
    async fn update_account(
        &self,
        id: HostObjectId,
        patch: &AccountPatch,
    ) -> HostResult<HostAccount>;
    async fn set_account_schedulable(&self, id: HostObjectId, schedulable: bool) -> HostResult<()>;
    async fn delete_account(&self, id: HostObjectId) -> HostResult<()>;
    /// `POST /accounts/:id/clear-error`: returns an errored account to active.
    async fn clear_account_error(&self, id: HostObjectId) -> HostResult<HostAccount>;
    async fn test_account(
        &self,
        id: HostObjectId,
        model: Option<String>,
    ) -> HostResult<AccountProbe>;

    // groups
    async fn list_groups(&self) -> HostResult<Vec<HostGroup>>;
    async fn create_group(&self, draft: &GroupDraft) -> HostResult<HostGroup>;
    async fn update_group(&self, id: HostObjectId, draft: &GroupDraft) -> HostResult<HostGroup>;
    async fn delete_group(&self, id: HostObjectId) -> HostResult<()>;

    // channels (newer hosts; `RouteMissing` on older ones)
    async fn list_channels(&self) -> HostResult<Vec<HostChannel>>;
    async fn create_channel(&self, draft: &ChannelDraft) -> HostResult<HostChannel>;
    async fn update_channel(
        &self,
        id: HostObjectId,
        draft: &ChannelDraft,
    ) -> HostResult<HostChannel>;
    async fn delete_channel(&self, id: HostObjectId) -> HostResult<()>;

    // users
    async fn list_users(&self, search: Option<String>) -> HostResult<Vec<HostUser>>;
    async fn create_user(&self, draft: &UserDraft) -> HostResult<HostUser>;
    async fn update_user_balance(
        &self,
        id: HostObjectId,
        amount: f64,
        op: BalanceOp,
        notes: Option<String>,
    ) -> HostResult<HostUser>;
    async fn update_user_allowed_groups(
        &self,
        id: HostObjectId,
        groups: Vec<HostObjectId>,
    ) -> HostResult<HostUser>;
    async fn delete_user(&self, id: HostObjectId) -> HostResult<()>;

    // gateway keys
    async fn list_user_api_keys(&self, user: HostObjectId) -> HostResult<Vec<HostApiKey>>;
    async fn list_group_api_keys(&self, group: HostObjectId) -> HostResult<Vec<HostApiKey>>;
    /// Logs in as the user and creates a key (admins cannot mint keys for users).
    async fn create_user_api_key(
        &self,
        login: &UserLogin,
        draft: &ApiKeyDraft,
    ) -> HostResult<CreatedApiKey>;
    /// Logs in as the user and reads one of their keys back (user-side key
    /// listings carry the key string), so crm need not store user keys.
    async fn reveal_user_api_key(
        &self,
        login: &UserLogin,
        key: HostObjectId,
    ) -> HostResult<CreatedApiKey>;
    /// Logs in as the user and rebinds one of their keys to a group
    /// (`PUT /api/v1/keys/:id`), for hosts without the admin rebind.
    async fn rebind_user_api_key(
        &self,
        login: &UserLogin,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey>;
    /// Logs in as the user and deletes one of their keys.
    async fn delete_user_api_key(&self, login: &UserLogin, key: HostObjectId) -> HostResult<()>;
    /// Admin-side rebind (`PUT /admin/api-keys/:id`), newer hosts only.
    async fn rebind_api_key(
        &self,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey>;

    // subscriptions
    async fn list_group_subscriptions(
        &self,
        group: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>>;
    async fn list_user_subscriptions(
        &self,
        user: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>>;
    async fn assign_subscription(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        validity_days: u32,
        notes: Option<String>,
    ) -> HostResult<HostSubscription>;
    async fn revoke_subscription(&self, id: HostObjectId) -> HostResult<()>;

    // gateway, with a user key
    async fn gateway_models(&self, key: &SecretString) -> HostResult<ModelListing>;
    async fn gateway_chat(&self, key: &SecretString, model: String) -> HostResult<CallOutcome>;
    /// A minimal Anthropic Messages call (`POST /v1/messages`), the
    /// completion route of hosts without `/v1/chat/completions`.
    async fn gateway_messages(&self, key: &SecretString, model: String) -> HostResult<CallOutcome>;

    // funds (newer hosts, `Capabilities::cn_funds`)
    /// `GET /admin/cn-providers/accounts/:id/balance`: pay-as-you-go balance
    /// of a kimi or deepseek account as the host reads it from the provider.
    /// An implementation that does not model the route answers as a host
    /// without it does.
    async fn account_balance(&self, id: HostObjectId) -> HostResult<FundsValue> {
        Err(HostError::RouteMissing {
            route: format!("GET /api/v1/admin/cn-providers/accounts/{id}/balance"),
        })
    }
    /// `GET /admin/cn-providers/accounts/:id/quota`: Coding-Plan windows of
    /// a kimi or zhipu coding account.
    async fn account_quota(&self, id: HostObjectId) -> HostResult<FundsValue> {
        Err(HostError::RouteMissing {
            route: format!("GET /api/v1/admin/cn-providers/accounts/{id}/quota"),
        })
    }

    // channel monitors (newer hosts, `Capabilities::channel_monitors`). An
    // implementation that does not model them answers as a host without
    // the routes does.
    /// Every channel monitor, all pages, with the listing's status summary.
    async fn list_monitors(&self) -> HostResult<Vec<HostMonitor>> {
        Err(HostError::RouteMissing {
            route: "GET /api/v1/admin/channel-monitors".into(),
        })
    }
    /// Never retried (the host honours no `Idempotency-Key` on this create).
    async fn create_monitor(&self, draft: &MonitorDraft) -> HostResult<HostMonitor> {
        let _ = draft;
        Err(HostError::RouteMissing {
            route: "POST /api/v1/admin/channel-monitors".into(),
        })
    }
    async fn update_monitor(
        &self,
        id: HostObjectId,
        patch: &MonitorPatch,
    ) -> HostResult<HostMonitor> {
        let _ = patch;
        Err(HostError::RouteMissing {
            route: format!("PUT /api/v1/admin/channel-monitors/{id}"),
        })
    }
    async fn delete_monitor(&self, id: HostObjectId) -> HostResult<()> {
        Err(HostError::RouteMissing {
            route: format!("DELETE /api/v1/admin/channel-monitors/{id}"),
        })
    }
    /// The monitor's most recent checks (of every model it checks), newest first.
    async fn monitor_history(&self, id: HostObjectId, limit: u32) -> HostResult<Vec<MonitorCheck>> {
        let _ = limit;
        Err(HostError::RouteMissing {
            route: format!("GET /api/v1/admin/channel-monitors/{id}/history"),
        })
    }
}

/// A provider's own balance API, called with an upstream key the operator
/// supplied for this run (DeepSeek `GET /user/balance`, Moonshot
/// `GET /v1/users/me/balance`). Never fails: a failure is an `unknown`
/// reading, a provider without a balance API an `unsupported` one.
#[async_trait]
pub trait UpstreamFunds: Send + Sync {
    async fn upstream_balance(&self, base_url: String, key: &SecretString) -> FundsValue;
}

/// Stored funds readings (never a key: readings name host accounts).
#[async_trait]
pub trait FundsRepo: Send + Sync {
    async fn save_readings(&self, readings: Vec<FundsReading>) -> StoreResult<()>;
    /// The newest reading of each (account, kind, source) on the host.
    async fn latest_readings(&self, host: &HostId) -> StoreResult<Vec<FundsReading>>;
}

/// Direct calls to a provider's API with an upstream key, to tell an
/// upstream problem from a host problem: the OpenAI-compatible endpoints
/// (`models`, `chat`) or the Anthropic-compatible one (`messages`), as the
/// account being checked uses.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UpstreamProbe: Send + Sync {
    async fn models(&self, base_url: String, key: &SecretString) -> ModelListing;
    async fn chat(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome;
    /// A minimal `POST {base_url}/v1/messages` (Anthropic headers), the
    /// route an `anthropic` apikey account is relayed to.
    async fn messages(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome;
}

/// Opens a [`HostApi`] for a registered host.
#[async_trait]
pub trait HostConnector: Send + Sync {
    async fn connect(
        &self,
        host: &HostRecord,
        admin_key: SecretString,
    ) -> HostResult<Arc<dyn HostApi>>;
}

// ---------------------------------------------------------------- time, ids, sealing

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh identifiers (`prefix` names the noun, e.g. `b` for batches).
pub trait IdSource: Send + Sync {
    fn new_id(&self, prefix: &str) -> String;
}

/// Encryption at rest for the few secrets crm must keep (host admin keys,
/// passwords of probe users crm creates).
///
/// Every value is sealed for the place it is kept ([`SealContext`]) and
/// opens only there: `open` with another context fails, so a ciphertext
/// copied from one row to another is useless (docs/design.md §5 "Secrets").
pub trait SecretSealer: Send + Sync {
    fn seal(&self, ctx: &SealContext, secret: &SecretString) -> Result<SealedSecret, StoreError>;
    fn open(&self, ctx: &SealContext, sealed: &SealedSecret) -> Result<SecretString, StoreError>;
}

// ---------------------------------------------------------------- storage

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error(
        "{scope} is held by {holder} for {operation} (lease {lease_id}, expires {expires_at}); wait, or release it with that lease id"
    )]
    LeaseHeld {
        scope: String,
        holder: String,
        operation: String,
        lease_id: LeaseId,
        expires_at: DateTime<Utc>,
    },
    #[error("lease {lease_id} is not held (expired or released)")]
    LeaseLost { lease_id: LeaseId },
    #[error("stored data is invalid: {detail}")]
    Corrupt { detail: String },
    #[error("storage failed: {detail}")]
    Backend { detail: String },
    #[error("secret could not be sealed or opened: {detail}")]
    Sealing { detail: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Installed packs.
#[async_trait]
pub trait PackRepo: Send + Sync {
    /// Stores a pack version and makes it current. Installing the same
    /// version with the same checksum again is a no-op; the same version with
    /// a different checksum is `AlreadyExists`.
    async fn install_pack(&self, pack: InstalledPack) -> StoreResult<InstalledPack>;
    async fn list_packs(&self) -> StoreResult<Vec<InstalledPack>>;
    /// The current version, or a named one.
    async fn get_pack(&self, id: &PackId, version: Option<String>) -> StoreResult<InstalledPack>;
}

/// Registered hosts.
#[async_trait]
pub trait HostRepo: Send + Sync {
    async fn add_host(&self, host: HostRecord) -> StoreResult<HostRecord>;
    async fn list_hosts(&self) -> StoreResult<Vec<HostRecord>>;
    /// By id or by name.
    async fn get_host(&self, id_or_name: &str) -> StoreResult<HostRecord>;
    async fn remove_host(&self, id: &HostId) -> StoreResult<()>;
    async fn save_capabilities(&self, id: &HostId, caps: Capabilities) -> StoreResult<()>;
    async fn set_reconcile_interval(&self, id: &HostId, every_secs: Option<u64>)
    -> StoreResult<()>;
    /// Replaces the host's funds thresholds (`HostRecord::funds_thresholds`).
    async fn set_funds_thresholds(
        &self,
        id: &HostId,
        thresholds: crate::funds::HostThresholds,
    ) -> StoreResult<()>;
}

/// Import batches, their journals and managed resources.
#[async_trait]
pub trait BatchRepo: Send + Sync {
    async fn create_batch(&self, batch: ImportBatch) -> StoreResult<ImportBatch>;
    async fn get_batch(&self, id: &BatchId) -> StoreResult<ImportBatch>;
    async fn list_batches(&self, filter: BatchFilter) -> StoreResult<Vec<ImportBatch>>;
    /// The live batches (docs/design.md §3: they own objects on the host) of
    /// `host`, of one `provider` when given (pack-scoped: another pack's
    /// provider with the same id is not it), in the order the store lists them.
    async fn live_batches(
        &self,
        host: &HostId,
        provider: Option<&ProviderRef>,
    ) -> StoreResult<Vec<ImportBatch>> {
        let mut batches = self
            .list_batches(BatchFilter {
                host_id: Some(host.clone()),
                provider: provider.cloned(),
                status: None,
                limit: None,
            })
            .await?;
        batches.retain(|b| b.status.is_live() && provider.is_none_or(|p| b.provider == *p));
        Ok(batches)
    }
    async fn update_batch(&self, batch: &ImportBatch) -> StoreResult<()>;
    async fn set_batch_status(
        &self,
        id: &BatchId,
        status: BatchStatus,
        reason: Option<String>,
    ) -> StoreResult<()>;
    async fn set_access_status(&self, id: &BatchId, status: AccessStatus) -> StoreResult<()>;

    /// Commits an intent before its host call. If an entry with the same
    /// `intent_key` exists it is returned unchanged (replays are safe).
    async fn record_intent(&self, entry: NewJournalEntry) -> StoreResult<JournalEntry>;
    /// Records how an intent ended. For an applied create/adopt this also
    /// records the managed resource, in the same transaction.
    async fn resolve_intent(
        &self,
        batch: &BatchId,
        seq: u32,
        resolution: JournalResolution,
    ) -> StoreResult<JournalEntry>;
    /// The batch journal in order.
    async fn journal(&self, batch: &BatchId) -> StoreResult<Vec<JournalEntry>>;
    /// Every attempt of one intent (`base_key` and `base_key#N`, see
    /// [`crate::batch::is_attempt_of`]) in journal order. Every journaled
    /// host call asks this first, so a store should answer it without
    /// reading the whole journal; the default does read it.
    async fn intent_attempts(
        &self,
        batch: &BatchId,
        base_key: &str,
    ) -> StoreResult<Vec<JournalEntry>> {
        Ok(self
            .journal(batch)
            .await?
            .into_iter()
            .filter(|e| crate::batch::is_attempt_of(&e.intent_key, base_key))
            .collect())
    }
    /// Pending intents of one batch, or of every batch.
    async fn pending_intents(&self, batch: Option<BatchId>) -> StoreResult<Vec<JournalEntry>>;

    /// Managed resources of a batch in journal order.
    async fn resources(&self, batch: &BatchId) -> StoreResult<Vec<ManagedResource>>;
    async fn set_resource_state(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        state: ResourceState,
    ) -> StoreResult<()>;
    /// Replaces the desired spec of a live resource (pack upgrade, repair),
    /// and its natural key when `natural_key` is `Some`: an account's key
    /// names its base URL (docs/design.md §5), so an account moved to
    /// another one (`--accept-url-change`) gets a new key with the new spec.
    /// `None` keeps the recorded key.
    async fn update_resource_desired(
        &self,
        batch: &BatchId,
        kind: ResourceKind,
        id: HostObjectId,
        natural_key: Option<String>,
        spec_digest: String,
        desired: serde_json::Value,
    ) -> StoreResult<()>;
    /// Live managed resources of every live batch on a host.
    async fn live_resources_on_host(&self, host: &HostId) -> StoreResult<Vec<ManagedResource>>;
}

/// Stored access checks.
#[async_trait]
pub trait AccessCheckRepo: Send + Sync {
    async fn record_access_check(&self, check: AccessCheck) -> StoreResult<()>;
    async fn access_checks(&self, batch: &BatchId) -> StoreResult<Vec<AccessCheck>>;
}

/// Reconcile runs.
#[async_trait]
pub trait ReconcileRepo: Send + Sync {
    async fn save_run(&self, run: ReconcileRun) -> StoreResult<()>;
    async fn get_run(&self, id: &ReconcileRunId) -> StoreResult<ReconcileRun>;
    async fn runs_for_host(&self, host: &HostId, limit: u32) -> StoreResult<Vec<ReconcileRun>>;
    async fn runs_for_batch(&self, batch: &BatchId, limit: u32) -> StoreResult<Vec<ReconcileRun>>;
    async fn latest_for_host(&self, host: &HostId) -> StoreResult<Option<ReconcileRun>>;
    async fn latest_for_batch(&self, batch: &BatchId) -> StoreResult<Option<ReconcileRun>>;
}

/// Long-running operations.
#[async_trait]
pub trait OperationRepo: Send + Sync {
    async fn create_operation(&self, op: Operation) -> StoreResult<Operation>;
    async fn get_operation(&self, id: &OperationId) -> StoreResult<Operation>;
    async fn update_operation(&self, op: &Operation) -> StoreResult<()>;
    /// Operations still `queued` or `running` (to resume or mark after a restart).
    async fn unfinished_operations(&self) -> StoreResult<Vec<Operation>>;
}

/// Idempotency keys of the HTTP API.
#[async_trait]
pub trait IdempotencyRepo: Send + Sync {
    async fn begin_idempotent(
        &self,
        principal: &str,
        key: &str,
        route: &str,
        body_hash: &str,
    ) -> StoreResult<IdempotencyBegin>;
    async fn complete_idempotent(
        &self,
        principal: &str,
        key: &str,
        response: StoredResponse,
    ) -> StoreResult<()>;
    /// Forgets an unfinished record so the request can be retried (the
    /// request failed validation or conflicted before executing).
    async fn abandon_idempotent(&self, principal: &str, key: &str) -> StoreResult<()>;
    async fn purge_idempotency_before(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Leases in the database.
#[async_trait]
pub trait LeaseRepo: Send + Sync {
    /// Takes the lease or fails with `LeaseHeld` naming the holder. An
    /// expired lease is taken over.
    async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        operation: &str,
        ttl: Duration,
    ) -> StoreResult<Lease>;
    async fn heartbeat_lease(&self, id: &LeaseId, ttl: Duration) -> StoreResult<Lease>;
    /// Releases only the lease with this id.
    async fn release_lease(&self, id: &LeaseId) -> StoreResult<()>;
    /// Unexpired leases whose scope starts with `prefix`.
    async fn active_leases(&self, prefix: &str) -> StoreResult<Vec<Lease>>;
}

/// Console sign-in sessions, shared by every replica on one database so a
/// browser stays signed in whichever replica answers, and a logout on one
/// replica ends the session on all of them.
#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Stores a new session, and forgets every session already expired.
    async fn create_session(&self, session: ConsoleSession) -> StoreResult<()>;
    /// The session with this id digest, unless it has expired.
    async fn get_session(&self, id_digest: &str) -> StoreResult<Option<ConsoleSession>>;
    /// Ends a session; ending one that is gone already is not an error.
    async fn delete_session(&self, id_digest: &str) -> StoreResult<()>;
}

/// The audit trail.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    async fn append_audit(&self, event: NewAuditEvent) -> StoreResult<AuditEvent>;
    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
}

/// Everything durable, in one handle.
pub trait Storage:
    PackRepo
    + HostRepo
    + BatchRepo
    + AccessCheckRepo
    + ReconcileRepo
    + OperationRepo
    + IdempotencyRepo
    + LeaseRepo
    + SessionRepo
    + AuditRepo
{
}

impl<T> Storage for T where
    T: PackRepo
        + HostRepo
        + BatchRepo
        + AccessCheckRepo
        + ReconcileRepo
        + OperationRepo
        + IdempotencyRepo
        + LeaseRepo
        + SessionRepo
        + AuditRepo
{
}
