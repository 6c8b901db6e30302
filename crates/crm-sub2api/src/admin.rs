//! Admin API resources under `/api/v1/admin` (docs/sub2api-contract.md §3), authenticated
//! with the admin key as `x-api-key`, plus the unauthenticated system
//! endpoints. One method per host operation; listings walk every page.

use crate::client::{Auth, Call, Sub2apiClient, decode};
use crate::error::Result;
use crate::wire::*;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;

pub(crate) const ADMIN: &str = "/api/v1/admin";

// ------------------------------------------------------------------ requests

/// Filters of `GET /admin/accounts`. `group` is honoured by newer hosts
/// only; legacy hosts ignore it, so callers filter on `group_ids` too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountFilter {
    pub platform: Option<String>,
    pub account_type: Option<String>,
    pub status: Option<String>,
    pub search: Option<String>,
    pub group: Option<i64>,
}

impl AccountFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        let mut push = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        };
        push("platform", &self.platform);
        push("type", &self.account_type);
        push("status", &self.status);
        push("search", &self.search);
        if let Some(g) = self.group {
            q.push(("group", g.to_string()));
        }
        q
    }
}

/// Body of `POST /admin/accounts`. `Debug` hides the API key.
#[derive(Clone)]
pub struct NewAccount {
    pub name: String,
    /// Sent only when set; legacy hosts have no `notes` field.
    pub notes: Option<String>,
    pub platform: String,
    /// `apikey` for relays.
    pub account_type: String,
    pub api_key: SecretString,
    pub base_url: String,
    pub model_mapping: BTreeMap<String, String>,
    /// More non-secret credential fields (`account_mode`, `api_protocol`, ...).
    pub credential_fields: BTreeMap<String, Value>,
    pub extra: BTreeMap<String, Value>,
    pub group_ids: Vec<i64>,
    pub concurrency: Option<u32>,
    pub priority: Option<i32>,
    pub proxy_id: Option<i64>,
    /// Resend after a 409 `mixed_channel_warning` once a human agreed.
    pub confirm_mixed_channel_risk: bool,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("name", &self.name)
            .field("notes", &self.notes)
            .field("platform", &self.platform)
            .field("account_type", &self.account_type)
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("model_mapping", &self.model_mapping)
            .field("credential_fields", &self.credential_fields)
            .field("group_ids", &self.group_ids)
            .finish_non_exhaustive()
    }
}

impl NewAccount {
    /// The JSON body, with the key exposed: only ever handed to the HTTP layer.
    pub(crate) fn to_body(&self) -> Value {
        let mut creds = Map::new();
        for (k, v) in &self.credential_fields {
            creds.insert(k.clone(), v.clone());
        }
        creds.insert("api_key".into(), json!(self.api_key.expose_secret()));
        creds.insert("base_url".into(), json!(self.base_url));
        creds.insert("model_mapping".into(), json!(self.model_mapping));
        let mut body = json!({
            "name": self.name,
            "platform": self.platform,
            "type": self.account_type,
            "credentials": creds,
            "extra": self.extra,
            "group_ids": self.group_ids,
        });
        let obj = body.as_object_mut().expect("literal object");
        if let Some(n) = &self.notes {
            obj.insert("notes".into(), json!(n));
        }
        if let Some(c) = self.concurrency {
            obj.insert("concurrency".into(), json!(c));
        }
        if let Some(p) = self.priority {
            obj.insert("priority".into(), json!(p));
        }
        if let Some(p) = self.proxy_id {
            obj.insert("proxy_id".into(), json!(p));
        }
        if self.confirm_mixed_channel_risk {
            obj.insert("confirm_mixed_channel_risk".into(), json!(true));
        }
        body
    }
}

/// Body of `PUT /admin/accounts/:id`; `None` fields are not sent.
///
/// `credentials` replaces the whole object on legacy hosts, so pass the
/// complete credentials (secrets included), not a delta.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub credentials: Option<Credentials>,
    pub extra: Option<BTreeMap<String, Value>>,
    pub group_ids: Option<Vec<i64>>,
    /// `active` | `inactive` (newer hosts also `error`).
    pub status: Option<String>,
    pub concurrency: Option<u32>,
    pub priority: Option<i32>,
}

impl AccountUpdate {
    pub(crate) fn to_body(&self) -> Value {
        let mut obj = Map::new();
        if let Some(v) = &self.name {
            obj.insert("name".into(), json!(v));
        }
        if let Some(v) = &self.notes {
            obj.insert("notes".into(), json!(v));
        }
        if let Some(c) = &self.credentials {
            let mut creds: Map<String, Value> = c
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in &c.secrets {
                creds.insert(k.clone(), json!(v.expose_secret()));
            }
            obj.insert("credentials".into(), Value::Object(creds));
        }
        if let Some(v) = &self.extra {
            obj.insert("extra".into(), json!(v));
        }
        if let Some(v) = &self.group_ids {
            obj.insert("group_ids".into(), json!(v));
        }
        if let Some(v) = &self.status {
            obj.insert("status".into(), json!(v));
        }
        if let Some(v) = self.concurrency {
            obj.insert("concurrency".into(), json!(v));
        }
        if let Some(v) = self.priority {
            obj.insert("priority".into(), json!(v));
        }
        Value::Object(obj)
    }
}

/// Body of `POST /admin/groups` and `PUT /admin/groups/:id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_multiplier: Option<f64>,
    pub is_exclusive: bool,
    /// `standard` (balance billing) or `subscription`.
    pub subscription_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_limit_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly_limit_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_limit_usd: Option<f64>,
    /// Update only: `active` | `inactive`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Body of `POST /admin/channels` and `PUT /admin/channels/:id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub group_ids: Vec<i64>,
    pub model_pricing: Vec<PricingRow>,
    pub model_mapping: BTreeMap<String, BTreeMap<String, String>>,
    /// `requested` | `upstream` | `channel_mapped`.
    pub billing_model_source: String,
    pub restrict_models: bool,
    /// Update only: `active` | `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Body of `POST /admin/users`. `Debug` hides the password.
#[derive(Clone)]
pub struct NewUser {
    pub email: String,
    pub password: SecretString,
    pub username: Option<String>,
    pub notes: Option<String>,
    pub balance: Option<f64>,
    pub concurrency: Option<u32>,
    pub allowed_groups: Vec<i64>,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("username", &self.username)
            .field("notes", &self.notes)
            .field("balance", &self.balance)
            .field("allowed_groups", &self.allowed_groups)
            .finish_non_exhaustive()
    }
}

impl NewUser {
    pub(crate) fn to_body(&self) -> Value {
        let mut body = json!({
            "email": self.email,
            "password": self.password.expose_secret(),
            "allowed_groups": self.allowed_groups,
        });
        let obj = body.as_object_mut().expect("literal object");
        if let Some(v) = &self.username {
            obj.insert("username".into(), json!(v));
        }
        if let Some(v) = &self.notes {
            obj.insert("notes".into(), json!(v));
        }
        if let Some(v) = self.balance {
            obj.insert("balance".into(), json!(v));
        }
        if let Some(v) = self.concurrency {
            obj.insert("concurrency".into(), json!(v));
        }
        body
    }
}

/// Body of `PUT /admin/users/:id`; `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_groups: Option<Vec<i64>>,
    /// `active` | `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// How `POST /admin/users/:id/balance` applies its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BalanceOperation {
    Set,
    Add,
    Subtract,
}

/// Body of `POST /admin/users/:id/balance`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BalanceChange {
    /// Must be positive; `operation` says what to do with it.
    #[serde(rename = "balance")]
    pub amount: f64,
    pub operation: BalanceOperation,
    pub notes: String,
}

/// Body of `POST /admin/subscriptions/assign`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssignSubscription {
    pub user_id: i64,
    pub group_id: i64,
    /// Days of validity; the host treats ≤0 as 30.
    pub validity_days: u32,
    pub notes: String,
}

// ------------------------------------------------------------------ methods

fn admin(path: impl fmt::Display) -> String {
    format!("{ADMIN}{path}")
}

impl Sub2apiClient {
    fn admin_call(&self, method: Method, path: impl fmt::Display) -> Call<'static> {
        Call::new(method, admin(path), Auth::Admin)
    }

    async fn admin_unit(&self, call: Call<'_>) -> Result<()> {
        self.data(call, &[]).await.map(|_| ())
    }

    // accounts

    /// Every account matching `filter`, all pages.
    pub async fn list_accounts(&self, filter: &AccountFilter) -> Result<Vec<Account>> {
        self.list_all(&admin("/accounts"), &filter.query()).await
    }

    /// Accounts bound to `group`. Newer hosts filter with `group=`; legacy
    /// hosts ignore the parameter and list everything, so the result is
    /// filtered on `group_ids` as well.
    pub async fn list_group_accounts(&self, group: i64) -> Result<Vec<Account>> {
        let filter = AccountFilter {
            group: Some(group),
            ..Default::default()
        };
        let mut list = self.list_accounts(&filter).await?;
        list.retain(|a| a.group_ids.contains(&group));
        Ok(list)
    }

    /// `GET /accounts/:id`.
    pub async fn get_account(&self, id: i64) -> Result<Account> {
        self.typed(self.admin_call(Method::GET, format!("/accounts/{id}")), &[])
            .await
    }

    /// Creates an account. Never retried: a lost answer may hide a committed
    /// create. Pass an `idempotency_key` only to hosts that honour it.
    pub async fn create_account(
        &self,
        account: &NewAccount,
        idempotency_key: Option<&str>,
    ) -> Result<Account> {
        let mut call = self
            .admin_call(Method::POST, "/accounts")
            .json(account.to_body());
        call.idempotency_key = idempotency_key;
        self.typed(call, &[&account.api_key]).await
    }

    /// `PUT /accounts/:id`. Never retried.
    pub async fn update_account(&self, id: i64, update: &AccountUpdate) -> Result<Account> {
        let secrets: Vec<&SecretString> = update
            .credentials
            .iter()
            .flat_map(|c| c.secrets.values())
            .collect();
        let call = self
            .admin_call(Method::PUT, format!("/accounts/{id}"))
            .json(update.to_body());
        self.typed(call, &secrets).await
    }

    /// `DELETE /accounts/:id` (retried on transient failures).
    pub async fn delete_account(&self, id: i64) -> Result<()> {
        self.admin_unit(self.admin_call(Method::DELETE, format!("/accounts/{id}")))
            .await
    }

    /// `POST /accounts/:id/schedulable {schedulable}`.
    pub async fn set_account_schedulable(&self, id: i64, schedulable: bool) -> Result<()> {
        let call = self
            .admin_call(Method::POST, format!("/accounts/{id}/schedulable"))
            .json(json!({ "schedulable": schedulable }));
        self.admin_unit(call).await
    }

    /// `POST /accounts/:id/clear-error`: returns an errored account to active.
    pub async fn clear_account_error(&self, id: i64) -> Result<Account> {
        let call = self.admin_call(Method::POST, format!("/accounts/{id}/clear-error"));
        self.typed(call, &[]).await
    }

    // groups

    /// Every group, all pages (inactive ones included).
    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        self.list_all(&admin("/groups"), &[]).await
    }

    /// `GET /groups/all[?platform=]` (plain array).
    pub async fn all_groups(&self, platform: Option<&str>) -> Result<Vec<Group>> {
        let mut call = self.admin_call(Method::GET, "/groups/all");
        if let Some(p) = platform {
            call = call.query("platform", p);
        }
        self.typed(call, &[]).await
    }

    /// `GET /groups/:id`.
    pub async fn get_group(&self, id: i64) -> Result<Group> {
        self.typed(self.admin_call(Method::GET, format!("/groups/{id}")), &[])
            .await
    }

    /// `POST /groups`. Never retried.
    pub async fn create_group(&self, group: &GroupInput) -> Result<Group> {
        let call = self
            .admin_call(Method::POST, "/groups")
            .json(to_value(group));
        self.typed(call, &[]).await
    }

    /// `PUT /groups/:id`. Never retried.
    pub async fn update_group(&self, id: i64, group: &GroupInput) -> Result<Group> {
        let call = self
            .admin_call(Method::PUT, format!("/groups/{id}"))
            .json(to_value(group));
        self.typed(call, &[]).await
    }

    /// `DELETE /groups/:id`.
    pub async fn delete_group(&self, id: i64) -> Result<()> {
        self.admin_unit(self.admin_call(Method::DELETE, format!("/groups/{id}")))
            .await
    }

    /// Keys bound to a group, all pages.
    pub async fn group_api_keys(&self, id: i64) -> Result<Vec<ApiKey>> {
        self.list_all(&admin(format!("/groups/{id}/api-keys")), &[])
            .await
    }

    /// Subscriptions to a group, all pages.
    pub async fn group_subscriptions(&self, id: i64) -> Result<Vec<Subscription>> {
        self.list_all(&admin(format!("/groups/{id}/subscriptions")), &[])
            .await
    }

    // channels (newer hosts; `RouteMissing` on older ones)

    /// Every channel, all pages (`RouteMissing` on hosts without channels).
    pub async fn list_channels(&self) -> Result<Vec<Channel>> {
        self.list_all(&admin("/channels"), &[]).await
    }

    /// `GET /channels/:id`.
    pub async fn get_channel(&self, id: i64) -> Result<Channel> {
        self.typed(self.admin_call(Method::GET, format!("/channels/{id}")), &[])
            .await
    }

    /// `POST /channels`. Never retried.
    pub async fn create_channel(&self, channel: &ChannelInput) -> Result<Channel> {
        let call = self
            .admin_call(Method::POST, "/channels")
            .json(to_value(channel));
        self.typed(call, &[]).await
    }

    /// `PUT /channels/:id`. Never retried.
    pub async fn update_channel(&self, id: i64, channel: &ChannelInput) -> Result<Channel> {
        let call = self
            .admin_call(Method::PUT, format!("/channels/{id}"))
            .json(to_value(channel));
        self.typed(call, &[]).await
    }

    /// `DELETE /channels/:id`.
    pub async fn delete_channel(&self, id: i64) -> Result<()> {
        self.admin_unit(self.admin_call(Method::DELETE, format!("/channels/{id}")))
            .await
    }

    // users

    /// Every user (optionally matching `search`), all pages.
    pub async fn list_users(&self, search: Option<&str>) -> Result<Vec<User>> {
        let filters: Vec<(&'static str, String)> = search
            .map(|s| ("search", s.to_owned()))
            .into_iter()
            .collect();
        self.list_all(&admin("/users"), &filters).await
    }

    /// `GET /users/:id`.
    pub async fn get_user(&self, id: i64) -> Result<User> {
        self.typed(self.admin_call(Method::GET, format!("/users/{id}")), &[])
            .await
    }

    /// `POST /users`. Never retried.
    pub async fn create_user(&self, user: &NewUser) -> Result<User> {
        let call = self.admin_call(Method::POST, "/users").json(user.to_body());
        self.typed(call, &[&user.password]).await
    }

    /// `PUT /users/:id`. Never retried.
    pub async fn update_user(&self, id: i64, update: &UserUpdate) -> Result<User> {
        let call = self
            .admin_call(Method::PUT, format!("/users/{id}"))
            .json(to_value(update));
        self.typed(call, &[]).await
    }

    /// `DELETE /users/:id`.
    pub async fn delete_user(&self, id: i64) -> Result<()> {
        self.admin_unit(self.admin_call(Method::DELETE, format!("/users/{id}")))
            .await
    }

    /// `POST /users/:id/balance`: returns the updated user.
    pub async fn update_balance(&self, id: i64, change: &BalanceChange) -> Result<User> {
        let call = self
            .admin_call(Method::POST, format!("/users/{id}/balance"))
            .json(to_value(change));
        self.typed(call, &[]).await
    }

    /// A user's keys, all pages.
    pub async fn user_api_keys(&self, id: i64) -> Result<Vec<ApiKey>> {
        self.list_all(&admin(format!("/users/{id}/api-keys")), &[])
            .await
    }

    /// A user's subscriptions (the host answers a plain array).
    pub async fn user_subscriptions(&self, id: i64) -> Result<Vec<Subscription>> {
        let call = self.admin_call(Method::GET, format!("/users/{id}/subscriptions"));
        self.typed(call, &[]).await
    }

    // keys

    /// `PUT /admin/api-keys/:id {group_id}` (newer hosts): `Some(0)` unbinds,
    /// `None` leaves the group as it is.
    pub async fn rebind_api_key(&self, key_id: i64, group_id: Option<i64>) -> Result<RebindResult> {
        let call = self
            .admin_call(Method::PUT, format!("/api-keys/{key_id}"))
            .json(json!({ "group_id": group_id }));
        self.typed(call, &[]).await
    }

    // subscriptions

    /// Subscriptions filtered by user and/or group, all pages.
    pub async fn list_subscriptions(
        &self,
        user_id: Option<i64>,
        group_id: Option<i64>,
    ) -> Result<Vec<Subscription>> {
        let mut filters = Vec::new();
        if let Some(u) = user_id {
            filters.push(("user_id", u.to_string()));
        }
        if let Some(g) = group_id {
            filters.push(("group_id", g.to_string()));
        }
        self.list_all(&admin("/subscriptions"), &filters).await
    }

    /// `POST /subscriptions/assign`. Never extends: an existing one is a 409
    /// `SUBSCRIPTION_ALREADY_EXISTS`.
    pub async fn assign_subscription(&self, assign: &AssignSubscription) -> Result<Subscription> {
        let call = self
            .admin_call(Method::POST, "/subscriptions/assign")
            .json(to_value(assign));
        self.typed(call, &[]).await
    }

    /// `DELETE /subscriptions/:id` (revoke).
    pub async fn revoke_subscription(&self, id: i64) -> Result<()> {
        self.admin_unit(self.admin_call(Method::DELETE, format!("/subscriptions/{id}")))
            .await
    }

    // system

    /// `GET /admin/system/version` (checks the admin key too).
    pub async fn system_version(&self) -> Result<SystemVersion> {
        self.typed(self.admin_call(Method::GET, "/system/version"), &[])
            .await
    }

    /// `GET /api/v1/settings/public` (no auth).
    pub async fn public_settings(&self) -> Result<PublicSettings> {
        self.typed(
            Call::new(Method::GET, "/api/v1/settings/public", Auth::None),
            &[],
        )
        .await
    }

    /// `GET /health` (no auth, no envelope).
    pub async fn health(&self) -> Result<Health> {
        let raw = self
            .send(&Call::new(Method::GET, "/health", Auth::None))
            .await?;
        decode(raw.into_json(&[])?)
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_value(v).unwrap_or(Value::Null)
}
