//! crm's host ports ([`HostApi`], [`UpstreamProbe`], [`HostConnector`])
//! implemented on the client.
//!
//! This is the border: wire structs become `crm_domain::observed` types here
//! (raw credential secrets are dropped on the spot, only `has_api_key`
//! survives), drafts become wire bodies, and [`Error`] becomes [`HostError`].
//! The few version-dependent choices (send `notes`? send `Idempotency-Key`?
//! which page size?) come from the host's probed [`Capabilities`].

use crate::admin::{
    AccountFilter, AccountUpdate, AssignSubscription, BalanceChange, BalanceOperation,
    ChannelInput, GroupInput, NewAccount, NewUser, UserUpdate,
};
use crate::client::{AdminKey, DEFAULT_PAGE_SIZE, RetryPolicy, Sub2apiClient};
use crate::error::Error;
use crate::gateway::{UpstreamClient, UpstreamRouting};
use crate::sse::AccountTestResult;
use crate::user::{KeyUpdate, NewKey};
use crate::wire;
use async_trait::async_trait;
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::observed::*;
use crm_domain::ports::{HostApi, HostConnector, HostError, HostResult, UpstreamProbe};
use crm_domain::{GroupBilling, HostObjectId, Platform, SecretString};
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::Duration;

// ------------------------------------------------------------------ errors

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

// ------------------------------------------------------------------ wire -> domain

fn oid(id: i64) -> HostObjectId {
    HostObjectId(id)
}

fn ids(v: Vec<i64>) -> Vec<HostObjectId> {
    v.into_iter().map(HostObjectId).collect()
}

/// An observed channel monitor; the wire's masked key is already reduced
/// to whether there is one.
pub fn monitor_from_wire(m: crate::monitors::Monitor) -> HostMonitor {
    HostMonitor {
        id: oid(m.id),
        name: m.name,
        provider: m.provider,
        api_mode: m.api_mode,
        endpoint: m.endpoint,
        primary_model: m.primary_model,
        extra_models: m.extra_models,
        group_name: m.group_name,
        enabled: m.enabled,
        interval_seconds: u32::try_from(m.interval_seconds).unwrap_or(0),
        has_api_key: m.api_key_masked,
        last_checked_at: m.last_checked_at.filter(|t| !t.is_empty()),
        primary_status: Some(m.primary_status).filter(|s| !s.is_empty()),
        availability_7d: m.availability_7d,
    }
}

/// One monitor check; the host's message may quote an upstream error, so it
/// is scrubbed of key-shaped tokens.
pub fn monitor_check_from_wire(c: crate::monitors::MonitorCheck) -> MonitorCheck {
    MonitorCheck {
        model: c.model,
        status: c.status,
        latency_ms: c.latency_ms.and_then(|l| u64::try_from(l).ok()),
        message: crate::scrub::scrub_text(&c.message, &[]),
        checked_at: c.checked_at,
    }
}

/// The create body of a monitor draft.
pub fn new_monitor(d: &MonitorDraft) -> crate::monitors::NewMonitor {
    crate::monitors::NewMonitor {
        name: d.name.clone(),
        provider: d.provider.clone(),
        api_mode: d.api_mode.clone(),
        endpoint: d.endpoint.clone(),
        api_key: d.api_key.clone(),
        primary_model: d.primary_model.clone(),
        extra_models: d.extra_models.clone(),
        group_name: d.group_name.clone(),
        enabled: d.enabled,
        interval_seconds: d.interval_seconds,
    }
}

/// The update body of a monitor patch.
pub fn monitor_update(p: &MonitorPatch) -> crate::monitors::MonitorUpdate {
    crate::monitors::MonitorUpdate {
        name: p.name.clone(),
        endpoint: p.endpoint.clone(),
        api_key: p.api_key.clone(),
        primary_model: p.primary_model.clone(),
        group_name: p.group_name.clone(),
        enabled: p.enabled,
        interval_seconds: p.interval_seconds,
    }
}

/// An observed account. The wire struct (and any raw secret a legacy host
/// sent) is consumed and dropped here.
pub fn account_from_wire(a: wire::Account) -> HostAccount {
    let has_api_key = a.has_api_key();
    let base_url = a.credentials.base_url().map(str::to_owned);
    let model_mapping = a.credentials.model_mapping();
    let credential_fields = a
        .credentials
        .fields
        .into_iter()
        .filter(|(k, _)| k != "base_url" && k != "model_mapping")
        .collect();
    HostAccount {
        id: oid(a.id),
        name: a.name,
        notes: a.notes,
        platform: Platform::new(a.platform),
        account_type: a.account_type,
        base_url,
        model_mapping,
        credential_fields,
        has_api_key,
        extra: a.extra,
        status: a.status,
        error_message: a.error_message,
        schedulable: a.schedulable,
        temp_unschedulable_reason: a.temp_unschedulable_reason,
        group_ids: ids(a.group_ids),
        created_at: a.created_at,
    }
}

/// Negative limits mean "unlimited" on newer hosts (`null` is stored as -1).
fn limit(v: Option<f64>) -> Option<f64> {
    v.filter(|l| *l >= 0.0)
}

/// An observed group; negative limits read as unlimited.
pub fn group_from_wire(g: wire::Group) -> HostGroup {
    HostGroup {
        id: oid(g.id),
        name: g.name,
        description: g.description,
        platform: Platform::new(g.platform),
        billing: g
            .subscription_type
            .parse()
            .unwrap_or(GroupBilling::Standard),
        rate_multiplier: g.rate_multiplier.unwrap_or(1.0),
        daily_limit_usd: limit(g.daily_limit_usd),
        weekly_limit_usd: limit(g.weekly_limit_usd),
        monthly_limit_usd: limit(g.monthly_limit_usd),
        is_exclusive: g.is_exclusive,
        status: g.status,
    }
}

/// An observed channel.
pub fn channel_from_wire(c: wire::Channel) -> HostChannel {
    HostChannel {
        id: oid(c.id),
        name: c.name,
        description: c.description,
        status: c.status,
        group_ids: ids(c.group_ids),
        model_pricing: c
            .model_pricing
            .into_iter()
            .map(|r| ChannelPricing {
                platform: r.platform,
                models: r.models,
                billing_mode: r.billing_mode,
                input_price: r.input_price,
                output_price: r.output_price,
                cache_write_price: r.cache_write_price,
                cache_read_price: r.cache_read_price,
            })
            .collect(),
        model_mapping: c.model_mapping,
        billing_model_source: c.billing_model_source,
        restrict_models: c.restrict_models,
    }
}

/// An observed user.
pub fn user_from_wire(u: wire::User) -> HostUser {
    HostUser {
        id: oid(u.id),
        email: u.email,
        username: u.username,
        notes: u.notes,
        role: u.role,
        balance: u.balance,
        status: u.status,
        allowed_groups: ids(u.allowed_groups),
    }
}

/// An observed key: only the last four characters of the key survive.
pub fn api_key_from_wire(k: &wire::ApiKey) -> HostApiKey {
    HostApiKey {
        id: oid(k.id),
        user_id: oid(k.user_id),
        name: k.name.clone(),
        group_id: k.group_id.filter(|g| *g > 0).map(HostObjectId),
        status: k.status.clone(),
        key_last4: k.key_last4(),
    }
}

/// An observed subscription.
pub fn subscription_from_wire(s: wire::Subscription) -> HostSubscription {
    HostSubscription {
        id: oid(s.id),
        user_id: oid(s.user_id),
        group_id: oid(s.group_id),
        status: s.status,
        starts_at: s.starts_at,
        expires_at: s.expires_at,
        notes: s.notes,
    }
}

/// The port's view of an account test.
pub fn probe_from_result(r: AccountTestResult) -> AccountProbe {
    AccountProbe {
        success: r.success,
        model: r.model,
        text: r.text,
        error: r.error,
        error_code: r.error_code,
    }
}

// ------------------------------------------------------------------ domain -> wire

/// The version-dependent choices the adapter makes when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostProfile {
    /// Send account `notes`. Newer hosts store them; December-2025 hosts have
    /// no such field. Unknown hosts get them (Go's JSON binding ignores
    /// unknown fields, so this is harmless there).
    pub send_notes: bool,
    /// Send `Idempotency-Key` on account creates.
    pub idempotency_key: bool,
    pub page_size: u32,
}

impl HostProfile {
    /// Before any probe.
    pub fn unknown() -> Self {
        HostProfile {
            send_notes: true,
            idempotency_key: false,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// From a probe. Account `notes` arrived with the newer account DTO, as
    /// did credential redaction and channels, so either one observed
    /// implies `notes` (an inference).
    pub fn from_capabilities(caps: &Capabilities) -> Self {
        HostProfile {
            send_notes: caps.credential_redaction || caps.channels,
            idempotency_key: caps.idempotency_key,
            page_size: caps.max_page_size.max(1),
        }
    }
}

/// The create body for a draft; `notes` only where the host keeps them.
pub fn new_account(draft: &AccountDraft, profile: HostProfile) -> NewAccount {
    NewAccount {
        name: draft.name.clone(),
        notes: draft.notes.clone().filter(|_| profile.send_notes),
        platform: draft.platform.as_str().to_owned(),
        account_type: draft.account_type.clone(),
        api_key: draft.api_key.clone(),
        base_url: draft.base_url.clone(),
        model_mapping: draft.model_mapping.clone(),
        credential_fields: draft.credential_fields.clone(),
        extra: draft.extra.clone(),
        group_ids: draft.group_ids.iter().map(|g| g.0).collect(),
        concurrency: Some(draft.concurrency),
        priority: Some(draft.priority),
        proxy_id: None,
        confirm_mixed_channel_risk: false,
    }
}

/// The create/update body for a group draft.
pub fn group_input(d: &GroupDraft) -> GroupInput {
    GroupInput {
        name: d.name.clone(),
        description: d.description.clone(),
        platform: d.platform.as_str().to_owned(),
        rate_multiplier: Some(d.rate_multiplier),
        is_exclusive: d.is_exclusive,
        subscription_type: d.billing.as_str().to_owned(),
        daily_limit_usd: d.daily_limit_usd,
        weekly_limit_usd: d.weekly_limit_usd,
        monthly_limit_usd: d.monthly_limit_usd,
        status: None,
    }
}

/// The create/update body for a channel draft.
pub fn channel_input(d: &ChannelDraft) -> ChannelInput {
    ChannelInput {
        name: d.name.clone(),
        description: d.description.clone(),
        group_ids: d.group_ids.iter().map(|g| g.0).collect(),
        model_pricing: d
            .model_pricing
            .iter()
            .map(|p| wire::PricingRow {
                id: None,
                platform: p.platform.clone(),
                models: p.models.clone(),
                billing_mode: p.billing_mode.clone(),
                input_price: p.input_price,
                output_price: p.output_price,
                cache_write_price: p.cache_write_price,
                cache_read_price: p.cache_read_price,
                image_output_price: None,
                per_request_price: None,
                intervals: Vec::new(),
            })
            .collect(),
        model_mapping: d.model_mapping.clone(),
        billing_model_source: d.billing_model_source.clone(),
        restrict_models: d.restrict_models,
        status: None,
    }
}

/// The create body for a user draft.
pub fn new_user(d: &UserDraft) -> NewUser {
    NewUser {
        email: d.email.clone(),
        password: d.password.clone(),
        username: d.username.clone(),
        notes: d.notes.clone(),
        balance: d.balance,
        concurrency: None,
        allowed_groups: d.allowed_groups.iter().map(|g| g.0).collect(),
    }
}

// ------------------------------------------------------------------ HostApi

/// One sub2api host behind crm's [`HostApi`] port.
#[derive(Debug)]
pub struct Sub2apiHost {
    client: Sub2apiClient,
    caps: RwLock<Option<Capabilities>>,
}

impl Sub2apiHost {
    /// A host whose capabilities are not known yet.
    pub fn new(client: Sub2apiClient) -> Self {
        Sub2apiHost {
            client,
            caps: RwLock::new(None),
        }
    }

    /// A host whose capabilities are already known (from an earlier probe).
    pub fn with_capabilities(client: Sub2apiClient, caps: Capabilities) -> Self {
        let host = Sub2apiHost::new(client);
        host.set_capabilities(caps);
        host
    }

    /// Records capabilities and adopts the page size they allow.
    pub fn set_capabilities(&self, caps: Capabilities) {
        self.client
            .set_page_size(HostProfile::from_capabilities(&caps).page_size);
        if let Ok(mut slot) = self.caps.write() {
            *slot = Some(caps);
        }
    }

    /// The capabilities last probed or set.
    pub fn capabilities(&self) -> Option<Capabilities> {
        self.caps.read().ok().and_then(|c| c.clone())
    }

    /// The write choices the capabilities imply.
    pub fn profile(&self) -> HostProfile {
        self.capabilities()
            .map(|c| HostProfile::from_capabilities(&c))
            .unwrap_or_else(HostProfile::unknown)
    }

    /// The underlying client.
    pub fn client(&self) -> &Sub2apiClient {
        &self.client
    }

    async fn session(&self, login: &UserLogin) -> HostResult<crate::user::UserSession> {
        self.client
            .login(&login.email, &login.password)
            .await
            .map_err(|e| host_error(e, &format!("user {}", login.email)))
    }
}

fn created_key(k: wire::ApiKey) -> HostResult<CreatedApiKey> {
    let key = api_key_from_wire(&k);
    let secret = k.key.ok_or_else(|| HostError::Decode {
        detail: format!("the host returned key {} without its key string", k.id),
    })?;
    Ok(CreatedApiKey { key, secret })
}

#[async_trait]
impl HostApi for Sub2apiHost {
    async fn probe(&self) -> HostResult<Capabilities> {
        let caps = self
            .client
            .probe_capabilities()
            .await
            .map_err(|e| host_error(e, "host"))?;
        self.set_capabilities(caps.clone());
        Ok(caps)
    }

    fn request_count(&self) -> u32 {
        self.client.request_count()
    }

    async fn list_accounts(&self) -> HostResult<Vec<HostAccount>> {
        let list = self
            .client
            .list_accounts(&AccountFilter::default())
            .await
            .map_err(|e| host_error(e, "accounts"))?;
        Ok(list.into_iter().map(account_from_wire).collect())
    }

    async fn get_account(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.client
            .get_account(id.0)
            .await
            .map(account_from_wire)
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn create_account(
        &self,
        draft: &AccountDraft,
        idempotency_key: Option<String>,
    ) -> HostResult<HostAccount> {
        let profile = self.profile();
        let body = new_account(draft, profile);
        let key = idempotency_key.filter(|_| profile.idempotency_key);
        self.client
            .create_account(&body, key.as_deref())
            .await
            .map(account_from_wire)
            .map_err(|e| host_error(e, &format!("account {}", draft.name)))
    }

    async fn update_account(
        &self,
        id: HostObjectId,
        patch: &AccountPatch,
    ) -> HostResult<HostAccount> {
        let what = format!("account {id}");
        let touches_credentials =
            patch.base_url.is_some() || patch.api_key.is_some() || patch.model_mapping.is_some();
        // Legacy hosts replace `credentials` wholesale, so the update carries
        // the current credentials (secrets included) with the patch applied.
        let credentials = if touches_credentials {
            let current = self
                .client
                .get_account(id.0)
                .await
                .map_err(|e| host_error(e, &what))?;
            let mut creds = current.credentials;
            if let Some(u) = &patch.base_url {
                creds
                    .fields
                    .insert("base_url".into(), Value::from(u.clone()));
            }
            if let Some(m) = &patch.model_mapping {
                creds.fields.insert(
                    "model_mapping".into(),
                    serde_json::to_value(m).unwrap_or(Value::Null),
                );
            }
            if let Some(k) = &patch.api_key {
                creds.secrets.insert("api_key".into(), k.clone());
            }
            Some(creds)
        } else {
            None
        };
        let update = AccountUpdate {
            name: patch.name.clone(),
            notes: patch.notes.clone().filter(|_| self.profile().send_notes),
            credentials,
            extra: patch.extra.clone(),
            group_ids: patch
                .group_ids
                .as_ref()
                .map(|g| g.iter().map(|g| g.0).collect()),
            status: patch.status.clone(),
            concurrency: None,
            priority: None,
        };
        self.client
            .update_account(id.0, &update)
            .await
            .map(account_from_wire)
            .map_err(|e| host_error(e, &what))
    }

    async fn set_account_schedulable(&self, id: HostObjectId, schedulable: bool) -> HostResult<()> {
        self.client
            .set_account_schedulable(id.0, schedulable)
            .await
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn delete_account(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .delete_account(id.0)
            .await
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn clear_account_error(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.client
            .clear_account_error(id.0)
            .await
            .map(account_from_wire)
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn test_account(
        &self,
        id: HostObjectId,
        model: Option<String>,
    ) -> HostResult<AccountProbe> {
        self.client
            .test_account(id.0, model.as_deref())
            .await
            .map(probe_from_result)
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn list_groups(&self) -> HostResult<Vec<HostGroup>> {
        let list = self
            .client
            .list_groups()
            .await
            .map_err(|e| host_error(e, "groups"))?;
        Ok(list.into_iter().map(group_from_wire).collect())
    }

    async fn create_group(&self, draft: &GroupDraft) -> HostResult<HostGroup> {
        self.client
            .create_group(&group_input(draft))
            .await
            .map(group_from_wire)
            .map_err(|e| host_error(e, &format!("group {}", draft.name)))
    }

    async fn update_group(&self, id: HostObjectId, draft: &GroupDraft) -> HostResult<HostGroup> {
        self.client
            .update_group(id.0, &group_input(draft))
            .await
            .map(group_from_wire)
            .map_err(|e| host_error(e, &format!("group {id}")))
    }

    async fn delete_group(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .delete_group(id.0)
            .await
            .map_err(|e| host_error(e, &format!("group {id}")))
    }

    async fn list_channels(&self) -> HostResult<Vec<HostChannel>> {
        let list = self
            .client
            .list_channels()
            .await
            .map_err(|e| host_error(e, "channels"))?;
        Ok(list.into_iter().map(channel_from_wire).collect())
    }

    async fn create_channel(&self, draft: &ChannelDraft) -> HostResult<HostChannel> {
        self.client
            .create_channel(&channel_input(draft))
            .await
            .map(channel_from_wire)
            .map_err(|e| host_error(e, &format!("channel {}", draft.name)))
    }

    async fn update_channel(
        &self,
        id: HostObjectId,
        draft: &ChannelDraft,
    ) -> HostResult<HostChannel> {
        self.client
            .update_channel(id.0, &channel_input(draft))
            .await
            .map(channel_from_wire)
            .map_err(|e| host_error(e, &format!("channel {id}")))
    }

    async fn delete_channel(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .delete_channel(id.0)
            .await
            .map_err(|e| host_error(e, &format!("channel {id}")))
    }

    async fn list_users(&self, search: Option<String>) -> HostResult<Vec<HostUser>> {
        let list = self
            .client
            .list_users(search.as_deref())
            .await
            .map_err(|e| host_error(e, "users"))?;
        Ok(list.into_iter().map(user_from_wire).collect())
    }

    async fn create_user(&self, draft: &UserDraft) -> HostResult<HostUser> {
        self.client
            .create_user(&new_user(draft))
            .await
            .map(user_from_wire)
            .map_err(|e| host_error(e, &format!("user {}", draft.email)))
    }

    async fn update_user_balance(
        &self,
        id: HostObjectId,
        amount: f64,
        op: BalanceOp,
        notes: Option<String>,
    ) -> HostResult<HostUser> {
        let change = BalanceChange {
            amount,
            operation: match op {
                BalanceOp::Set => BalanceOperation::Set,
                BalanceOp::Add => BalanceOperation::Add,
                BalanceOp::Subtract => BalanceOperation::Subtract,
            },
            notes: notes.unwrap_or_default(),
        };
        self.client
            .update_balance(id.0, &change)
            .await
            .map(user_from_wire)
            .map_err(|e| host_error(e, &format!("user {id}")))
    }

    async fn update_user_allowed_groups(
        &self,
        id: HostObjectId,
        groups: Vec<HostObjectId>,
    ) -> HostResult<HostUser> {
        let update = UserUpdate {
            allowed_groups: Some(groups.iter().map(|g| g.0).collect()),
            ..Default::default()
        };
        self.client
            .update_user(id.0, &update)
            .await
            .map(user_from_wire)
            .map_err(|e| host_error(e, &format!("user {id}")))
    }

    async fn delete_user(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .delete_user(id.0)
            .await
            .map_err(|e| host_error(e, &format!("user {id}")))
    }

    async fn list_user_api_keys(&self, user: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        let list = self
            .client
            .user_api_keys(user.0)
            .await
            .map_err(|e| host_error(e, &format!("user {user}")))?;
        Ok(list.iter().map(api_key_from_wire).collect())
    }

    async fn list_group_api_keys(&self, group: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        let list = self
            .client
            .group_api_keys(group.0)
            .await
            .map_err(|e| host_error(e, &format!("group {group}")))?;
        Ok(list.iter().map(api_key_from_wire).collect())
    }

    async fn create_user_api_key(
        &self,
        login: &UserLogin,
        draft: &ApiKeyDraft,
    ) -> HostResult<CreatedApiKey> {
        let session = self.session(login).await?;
        let key = session
            .create_key(&NewKey {
                name: draft.name.clone(),
                group_id: draft.group_id.map(|g| g.0),
            })
            .await
            .map_err(|e| host_error(e, &format!("key {}", draft.name)))?;
        created_key(key)
    }

    async fn reveal_user_api_key(
        &self,
        login: &UserLogin,
        key: HostObjectId,
    ) -> HostResult<CreatedApiKey> {
        let session = self.session(login).await?;
        let k = session
            .get_key(key.0)
            .await
            .map_err(|e| host_error(e, &format!("key {key}")))?;
        created_key(k)
    }

    async fn rebind_user_api_key(
        &self,
        login: &UserLogin,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey> {
        let session = self.session(login).await?;
        let k = session
            .update_key(
                key.0,
                &KeyUpdate {
                    group_id: Some(group.0),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| host_error(e, &format!("key {key}")))?;
        Ok(api_key_from_wire(&k))
    }

    async fn delete_user_api_key(&self, login: &UserLogin, key: HostObjectId) -> HostResult<()> {
        let session = self.session(login).await?;
        session
            .delete_key(key.0)
            .await
            .map_err(|e| host_error(e, &format!("key {key}")))
    }

    async fn rebind_api_key(
        &self,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey> {
        self.client
            .rebind_api_key(key.0, Some(group.0))
            .await
            .map(|r| api_key_from_wire(&r.api_key))
            .map_err(|e| host_error(e, &format!("key {key}")))
    }

    async fn list_group_subscriptions(
        &self,
        group: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>> {
        let list = self
            .client
            .group_subscriptions(group.0)
            .await
            .map_err(|e| host_error(e, &format!("group {group}")))?;
        Ok(list.into_iter().map(subscription_from_wire).collect())
    }

    async fn list_user_subscriptions(
        &self,
        user: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>> {
        let list = self
            .client
            .user_subscriptions(user.0)
            .await
            .map_err(|e| host_error(e, &format!("user {user}")))?;
        Ok(list.into_iter().map(subscription_from_wire).collect())
    }

    async fn assign_subscription(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        validity_days: u32,
        notes: Option<String>,
    ) -> HostResult<HostSubscription> {
        let assign = AssignSubscription {
            user_id: user.0,
            group_id: group.0,
            validity_days,
            notes: notes.unwrap_or_default(),
        };
        self.client
            .assign_subscription(&assign)
            .await
            .map(subscription_from_wire)
            .map_err(|e| host_error(e, &format!("subscription of user {user} to group {group}")))
    }

    async fn revoke_subscription(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .revoke_subscription(id.0)
            .await
            .map_err(|e| host_error(e, &format!("subscription {id}")))
    }

    async fn gateway_models(&self, key: &SecretString) -> HostResult<ModelListing> {
        self.client
            .gateway_models(key)
            .await
            .map_err(|e| host_error(e, "gateway"))
    }

    async fn gateway_chat(&self, key: &SecretString, model: String) -> HostResult<CallOutcome> {
        self.client
            .gateway_chat(key, &model)
            .await
            .map_err(|e| host_error(e, "gateway"))
    }

    async fn gateway_messages(&self, key: &SecretString, model: String) -> HostResult<CallOutcome> {
        self.client
            .gateway_messages(key, &model)
            .await
            .map_err(|e| host_error(e, "gateway"))
    }

    async fn account_balance(&self, id: HostObjectId) -> HostResult<crm_domain::funds::FundsValue> {
        self.client
            .cn_account_balance(id.0)
            .await
            .map(|b| b.to_value())
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn account_quota(&self, id: HostObjectId) -> HostResult<crm_domain::funds::FundsValue> {
        self.client
            .cn_account_quota(id.0)
            .await
            .map(|q| q.to_value())
            .map_err(|e| host_error(e, &format!("account {id}")))
    }

    async fn list_monitors(&self) -> HostResult<Vec<HostMonitor>> {
        let list = self
            .client
            .list_monitors()
            .await
            .map_err(|e| host_error(e, "channel monitors"))?;
        Ok(list.into_iter().map(monitor_from_wire).collect())
    }

    async fn create_monitor(&self, draft: &MonitorDraft) -> HostResult<HostMonitor> {
        self.client
            .create_monitor(&new_monitor(draft))
            .await
            .map(monitor_from_wire)
            .map_err(|e| host_error(e, &format!("channel monitor {}", draft.name)))
    }

    async fn update_monitor(
        &self,
        id: HostObjectId,
        patch: &MonitorPatch,
    ) -> HostResult<HostMonitor> {
        self.client
            .update_monitor(id.0, &monitor_update(patch))
            .await
            .map(monitor_from_wire)
            .map_err(|e| host_error(e, &format!("channel monitor {id}")))
    }

    async fn delete_monitor(&self, id: HostObjectId) -> HostResult<()> {
        self.client
            .delete_monitor(id.0)
            .await
            .map_err(|e| host_error(e, &format!("channel monitor {id}")))
    }

    async fn monitor_history(&self, id: HostObjectId, limit: u32) -> HostResult<Vec<MonitorCheck>> {
        let list = self
            .client
            .monitor_history(id.0, None, limit)
            .await
            .map_err(|e| host_error(e, &format!("channel monitor {id}")))?;
        Ok(list.into_iter().map(monitor_check_from_wire).collect())
    }
}

// ------------------------------------------------------------------ UpstreamProbe

fn failed_outcome(e: &Error) -> CallOutcome {
    CallOutcome {
        status: None,
        ok: false,
        error_type: Some("invalid_request".into()),
        error_code: None,
        message: Some(e.to_string()),
        body_excerpt: String::new(),
        latency_ms: 0,
        transport_error: Some(e.to_string()),
    }
}

#[async_trait]
impl UpstreamProbe for UpstreamClient {
    async fn models(&self, base_url: String, key: &SecretString) -> ModelListing {
        match UpstreamClient::models(self, &base_url, key).await {
            Ok(l) => l,
            Err(e) => ModelListing {
                outcome: failed_outcome(&e),
                model_ids: Vec::new(),
            },
        }
    }

    async fn chat(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        match UpstreamClient::chat(self, &base_url, key, &model).await {
            Ok(o) => o,
            Err(e) => failed_outcome(&e),
        }
    }

    async fn messages(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        match UpstreamClient::messages(self, &base_url, key, &model).await {
            Ok(o) => o,
            Err(e) => failed_outcome(&e),
        }
    }
}

// ------------------------------------------------------------------ HostConnector

/// Opens [`Sub2apiHost`]s for registered hosts, reusing their stored
/// capabilities (page size, notes, idempotency) when a probe was recorded.
///
/// Every host it opens, and every clone of it, sends through one shared
/// HTTP client ([`SharedHttp`]): opening a host is then cheap (no TLS roots
/// to load again) and connections to a host are kept alive between
/// operations.
///
/// ```
/// use crm_sub2api::Sub2apiConnector;
/// use std::time::Duration;
///
/// let connector = Sub2apiConnector {
///     timeout: Duration::from_secs(10),
///     ..Sub2apiConnector::default()
/// };
/// # let _ = connector;
/// ```
#[derive(Debug, Clone)]
pub struct Sub2apiConnector {
    pub timeout: Duration,
    pub sse_timeout: Duration,
    pub retry: RetryPolicy,
    /// The HTTP client the opened hosts share, built on first use.
    pub http: SharedHttp,
    /// Pages of one listing requested at once after the first.
    pub pages_in_flight: usize,
}

impl Default for Sub2apiConnector {
    fn default() -> Self {
        Sub2apiConnector {
            timeout: crate::client::DEFAULT_TIMEOUT,
            sse_timeout: crate::client::DEFAULT_SSE_TIMEOUT,
            retry: RetryPolicy::default(),
            http: SharedHttp::default(),
            pages_in_flight: crate::client::PAGES_IN_FLIGHT,
        }
    }
}

/// One HTTP client shared by clones, built the first time it is needed
/// (so a connector that never connects never loads TLS roots).
#[derive(Debug, Clone, Default)]
pub struct SharedHttp(Arc<std::sync::OnceLock<reqwest::Client>>);

impl SharedHttp {
    /// The shared client, building it on first use.
    pub fn get(&self) -> std::result::Result<reqwest::Client, String> {
        if let Some(c) = self.0.get() {
            return Ok(c.clone());
        }
        let built =
            crate::client::http_client(crate::client::DEFAULT_USER_AGENT, Duration::from_secs(10))?;
        // A racing first use may have won; either client is equivalent.
        Ok(self.0.get_or_init(|| built).clone())
    }
}

impl Sub2apiConnector {
    /// The concrete host (for callers that want more than the port).
    pub fn open(&self, host: &HostRecord, admin_key: SecretString) -> HostResult<Sub2apiHost> {
        let http = self.http.get().map_err(|detail| HostError::Unreachable {
            detail: format!("no HTTP client for {}: {detail}", host.base_url),
        })?;
        let client = Sub2apiClient::builder(host.base_url.clone(), AdminKey::new(admin_key))
            .timeout(self.timeout)
            .sse_timeout(self.sse_timeout)
            .retry(self.retry)
            .pages_in_flight(self.pages_in_flight)
            .http_client(http)
            .build()
            .map_err(|e| host_error(e, "host"))?;
        Ok(match host.capabilities.clone() {
            Some(caps) => Sub2apiHost::with_capabilities(client, caps),
            None => Sub2apiHost::new(client),
        })
    }
}

#[async_trait]
impl HostConnector for Sub2apiConnector {
    async fn connect(
        &self,
        host: &HostRecord,
        admin_key: SecretString,
    ) -> HostResult<Arc<dyn HostApi>> {
        Ok(Arc::new(self.open(host, admin_key)?))
    }
}

/// An upstream probe with the given routing (see [`UpstreamRouting`]).
pub fn upstream_probe(routing: UpstreamRouting) -> HostResult<UpstreamClient> {
    UpstreamClient::new(routing).map_err(|e| host_error(e, "upstream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_clones_share_one_http_client_built_on_first_use() {
        let connector = Sub2apiConnector::default();
        let clone = connector.clone();
        assert!(clone.http.0.get().is_none(), "nothing built before use");
        let host = HostRecord {
            id: crm_domain::HostId::new("h-1"),
            name: "a".into(),
            base_url: "http://127.0.0.1:9".into(),
            admin_credential: crm_domain::host::CredentialRef::Env {
                var: "UNUSED".into(),
            },
            capabilities: None,
            reconcile_every_secs: None,
            created_at: chrono::Utc::now(),
        };
        connector
            .open(&host, SecretString::from("k".to_owned()))
            .unwrap();
        assert!(clone.http.0.get().is_some(), "the clone sees the client");
        assert!(Arc::ptr_eq(&connector.http.0, &clone.http.0));
    }
}
