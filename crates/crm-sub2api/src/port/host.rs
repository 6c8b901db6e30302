//! [`HostApi`] on one sub2api host: each call is the client's call with
//! its body built and its answer observed by the resource's module, and its
//! error mapped by [`host_error`].

use super::accounts::{account_from_wire, new_account, probe_from_result};
use super::channels::{channel_from_wire, channel_input};
use super::error::host_error;
use super::groups::{group_from_wire, group_input};
use super::keys::{api_key_from_wire, created_key};
use super::monitors::{monitor_check_from_wire, monitor_from_wire, monitor_update, new_monitor};
use super::profile::HostProfile;
use super::users::{new_user, subscription_from_wire, user_from_wire};
use crate::admin::{
    AccountFilter, AccountUpdate, AssignSubscription, BalanceChange, BalanceOperation, UserUpdate,
};
use crate::client::Sub2apiClient;
use crate::user::{KeyUpdate, NewKey};
use async_trait::async_trait;
use crm_domain::host::Capabilities;
use crm_domain::observed::*;
use crm_domain::ports::{HostApi, HostResult};
use crm_domain::{HostObjectId, SecretString};
use serde_json::Value;
use std::sync::RwLock;

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
