//! A small stateful in-memory host for this crate's unit tests: accounts,
//! groups, channels, users, subscriptions and keys that stay consistent
//! across list/create/update/delete, with one injectable fault on the k-th
//! mutating call. (Cross-crate tests use crm-sim through the real client.)

#![allow(dead_code)]

use async_trait::async_trait;
use crm_domain::host::Capabilities;
use crm_domain::observed::*;
use crm_domain::ports::{HostApi, HostError, HostResult};
use crm_domain::{HostObjectId, SecretString};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// What goes wrong on the faulted call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 502 before anything happened.
    Status5xx,
    /// The client gave up before the host acted.
    Timeout,
    /// The connection dropped before the host acted.
    Dropped,
    /// The host committed, then the response was lost.
    CommitThenLost,
    /// Something between crm and the host sent the request twice: two
    /// objects committed, the response lost.
    CommitTwiceThenLost,
}

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::Status5xx,
        Fault::Timeout,
        Fault::Dropped,
        Fault::CommitThenLost,
    ];
    fn error(self) -> HostError {
        match self {
            Fault::Status5xx => HostError::Unavailable {
                status: 502,
                message: "bad gateway".into(),
            },
            Fault::Timeout | Fault::CommitThenLost | Fault::CommitTwiceThenLost => {
                HostError::Timeout {
                    operation: "admin write".into(),
                }
            }
            Fault::Dropped => HostError::Unreachable {
                detail: "connection reset".into(),
            },
        }
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub next: i64,
    pub accounts: Vec<HostAccount>,
    pub groups: Vec<HostGroup>,
    pub channels: Vec<HostChannel>,
    pub users: Vec<HostUser>,
    pub subscriptions: Vec<HostSubscription>,
    pub keys: Vec<HostApiKey>,
    pub monitors: Vec<HostMonitor>,
}

#[derive(Debug)]
pub struct FakeHost {
    pub caps: Capabilities,
    pub state: Mutex<State>,
    requests: AtomicU32,
    mutations: AtomicU32,
    fault: Mutex<Option<(u32, Fault)>>,
}

impl FakeHost {
    pub fn new(caps: Capabilities) -> Self {
        FakeHost {
            caps,
            state: Mutex::new(State {
                next: 1,
                ..State::default()
            }),
            requests: AtomicU32::new(0),
            mutations: AtomicU32::new(0),
            fault: Mutex::new(None),
        }
    }

    /// Fails the `k`-th mutating call from now (1-based) with `fault`.
    pub fn fail_mutation(&self, k: u32, fault: Fault) {
        let base = self.mutations.load(Ordering::SeqCst);
        *self.fault.lock().unwrap() = Some((base + k, fault));
    }

    pub fn clear_fault(&self) {
        *self.fault.lock().unwrap() = None;
    }

    pub fn mutations(&self) -> u32 {
        self.mutations.load(Ordering::SeqCst)
    }

    fn read(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs a mutation under the fault rule.
    fn mutate<T>(&self, f: impl Fn(&mut State) -> HostResult<T>) -> HostResult<T> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = match *self.fault.lock().unwrap() {
            Some((k, f)) if k == n => Some(f),
            _ => None,
        };
        match fault {
            None => f(&mut self.state.lock().unwrap()),
            Some(Fault::CommitThenLost) => {
                let _ = f(&mut self.state.lock().unwrap());
                Err(Fault::CommitThenLost.error())
            }
            Some(Fault::CommitTwiceThenLost) => {
                let _ = f(&mut self.state.lock().unwrap());
                let _ = f(&mut self.state.lock().unwrap());
                Err(Fault::CommitTwiceThenLost.error())
            }
            Some(other) => Err(other.error()),
        }
    }

    fn notes(&self, n: Option<String>) -> Option<String> {
        if self.caps.credential_redaction {
            n
        } else {
            None
        }
    }

    /// Objects whose name/description/notes carry crm's marker or name.
    pub fn crm_objects(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut out = Vec::new();
        for a in &s.accounts {
            out.push(format!("account {} {}", a.name, a.id));
        }
        for g in &s.groups {
            out.push(format!("group {} {}", g.name, g.id));
        }
        for c in &s.channels {
            out.push(format!("channel {} {}", c.name, c.id));
        }
        for m in &s.monitors {
            out.push(format!("monitor {} {}", m.name, m.id));
        }
        out.retain(|o| o.contains(" crm-"));
        out
    }
}

fn nf(what: &str, id: HostObjectId) -> HostError {
    HostError::NotFound {
        what: format!("{what} {id}"),
    }
}

#[async_trait]
impl HostApi for FakeHost {
    async fn probe(&self) -> HostResult<Capabilities> {
        self.read();
        Ok(self.caps.clone())
    }
    fn request_count(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
    async fn list_accounts(&self) -> HostResult<Vec<HostAccount>> {
        self.read();
        Ok(self.state.lock().unwrap().accounts.clone())
    }
    async fn get_account(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.read();
        let s = self.state.lock().unwrap();
        s.accounts
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| nf("account", id))
    }
    async fn create_account(
        &self,
        d: &AccountDraft,
        _key: Option<String>,
    ) -> HostResult<HostAccount> {
        let notes = self.notes(d.notes.clone());
        self.mutate(|s| {
            let a = HostAccount {
                id: HostObjectId(s.next),
                name: d.name.clone(),
                notes: notes.clone(),
                platform: d.platform.clone(),
                account_type: d.account_type.clone(),
                base_url: Some(d.base_url.clone()),
                model_mapping: d.model_mapping.clone(),
                credential_fields: d.credential_fields.clone(),
                has_api_key: true,
                extra: d.extra.clone(),
                status: "active".into(),
                error_message: None,
                schedulable: true,
                temp_unschedulable_reason: None,
                group_ids: d.group_ids.clone(),
                created_at: None,
            };
            s.next += 1;
            s.accounts.push(a.clone());
            Ok(a)
        })
    }
    async fn update_account(&self, id: HostObjectId, p: &AccountPatch) -> HostResult<HostAccount> {
        self.mutate(|s| {
            let a = s
                .accounts
                .iter_mut()
                .find(|a| a.id == id)
                .ok_or_else(|| nf("account", id))?;
            if let Some(v) = &p.name {
                a.name = v.clone();
            }
            if let Some(v) = &p.base_url {
                a.base_url = Some(v.clone());
            }
            if let Some(v) = &p.model_mapping {
                a.model_mapping = v.clone();
            }
            if let Some(v) = &p.extra {
                a.extra = v.clone();
            }
            if let Some(v) = &p.group_ids {
                a.group_ids = v.clone();
            }
            if let Some(v) = &p.status {
                a.status = v.clone();
            }
            Ok(a.clone())
        })
    }
    async fn set_account_schedulable(&self, _id: HostObjectId, _s: bool) -> HostResult<()> {
        self.mutate(|_| Ok(()))
    }
    async fn delete_account(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.accounts.len();
            s.accounts.retain(|a| a.id != id);
            if s.accounts.len() == n {
                return Err(nf("account", id));
            }
            Ok(())
        })
    }
    async fn clear_account_error(&self, id: HostObjectId) -> HostResult<HostAccount> {
        self.get_account(id).await
    }
    async fn test_account(
        &self,
        _id: HostObjectId,
        _m: Option<String>,
    ) -> HostResult<AccountProbe> {
        Err(HostError::RouteMissing {
            route: "test".into(),
        })
    }
    async fn list_groups(&self) -> HostResult<Vec<HostGroup>> {
        self.read();
        Ok(self.state.lock().unwrap().groups.clone())
    }
    async fn create_group(&self, d: &GroupDraft) -> HostResult<HostGroup> {
        if !self.caps.accepts_platform(&d.platform) {
            self.read();
            return Err(HostError::Validation {
                message: format!("platform {}", d.platform),
            });
        }
        self.mutate(|s| {
            let g = crate::fixtures::group_from(d, s.next);
            s.next += 1;
            s.groups.push(g.clone());
            Ok(g)
        })
    }
    async fn update_group(&self, id: HostObjectId, d: &GroupDraft) -> HostResult<HostGroup> {
        self.mutate(|s| {
            let g = s
                .groups
                .iter_mut()
                .find(|g| g.id == id)
                .ok_or_else(|| nf("group", id))?;
            *g = crate::fixtures::group_from(d, id.0);
            Ok(g.clone())
        })
    }
    async fn delete_group(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.groups.len();
            s.groups.retain(|g| g.id != id);
            if s.groups.len() == n {
                return Err(nf("group", id));
            }
            for a in &mut s.accounts {
                a.group_ids.retain(|g| *g != id);
            }
            Ok(())
        })
    }
    async fn list_channels(&self) -> HostResult<Vec<HostChannel>> {
        self.read();
        if !self.caps.channels {
            return Err(HostError::RouteMissing {
                route: "/admin/channels".into(),
            });
        }
        Ok(self.state.lock().unwrap().channels.clone())
    }
    async fn create_channel(&self, d: &ChannelDraft) -> HostResult<HostChannel> {
        self.mutate(|s| {
            let c = crate::fixtures::channel_from(d, s.next);
            s.next += 1;
            s.channels.push(c.clone());
            Ok(c)
        })
    }
    async fn update_channel(&self, id: HostObjectId, d: &ChannelDraft) -> HostResult<HostChannel> {
        self.mutate(|s| {
            let c = s
                .channels
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| nf("channel", id))?;
            *c = crate::fixtures::channel_from(d, id.0);
            Ok(c.clone())
        })
    }
    async fn delete_channel(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.channels.len();
            s.channels.retain(|c| c.id != id);
            if s.channels.len() == n {
                return Err(nf("channel", id));
            }
            Ok(())
        })
    }
    async fn list_users(&self, search: Option<String>) -> HostResult<Vec<HostUser>> {
        self.read();
        let s = self.state.lock().unwrap();
        Ok(s.users
            .iter()
            .filter(|u| search.as_deref().is_none_or(|q| u.email.contains(q)))
            .cloned()
            .collect())
    }
    async fn create_user(&self, d: &UserDraft) -> HostResult<HostUser> {
        self.mutate(|s| {
            let u = HostUser {
                id: HostObjectId(s.next),
                email: d.email.clone(),
                username: d.username.clone(),
                notes: d.notes.clone(),
                role: "user".into(),
                balance: d.balance.unwrap_or(0.0),
                status: "active".into(),
                allowed_groups: d.allowed_groups.clone(),
            };
            s.next += 1;
            s.users.push(u.clone());
            Ok(u)
        })
    }
    async fn update_user_balance(
        &self,
        id: HostObjectId,
        amount: f64,
        op: BalanceOp,
        _notes: Option<String>,
    ) -> HostResult<HostUser> {
        self.mutate(|s| {
            let u = s
                .users
                .iter_mut()
                .find(|u| u.id == id)
                .ok_or_else(|| nf("user", id))?;
            u.balance = match op {
                BalanceOp::Set => amount,
                BalanceOp::Add => u.balance + amount,
                BalanceOp::Subtract => u.balance - amount,
            };
            Ok(u.clone())
        })
    }
    async fn update_user_allowed_groups(
        &self,
        id: HostObjectId,
        groups: Vec<HostObjectId>,
    ) -> HostResult<HostUser> {
        self.mutate(|s| {
            let u = s
                .users
                .iter_mut()
                .find(|u| u.id == id)
                .ok_or_else(|| nf("user", id))?;
            u.allowed_groups = groups.clone();
            Ok(u.clone())
        })
    }
    async fn delete_user(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.users.len();
            s.users.retain(|u| u.id != id);
            if s.users.len() == n {
                return Err(nf("user", id));
            }
            s.keys.retain(|k| k.user_id != id);
            s.subscriptions.retain(|x| x.user_id != id);
            Ok(())
        })
    }
    async fn list_user_api_keys(&self, user: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        self.read();
        let s = self.state.lock().unwrap();
        Ok(s.keys
            .iter()
            .filter(|k| k.user_id == user)
            .cloned()
            .collect())
    }
    async fn list_group_api_keys(&self, group: HostObjectId) -> HostResult<Vec<HostApiKey>> {
        self.read();
        let s = self.state.lock().unwrap();
        Ok(s.keys
            .iter()
            .filter(|k| k.group_id == Some(group))
            .cloned()
            .collect())
    }
    async fn create_user_api_key(
        &self,
        login: &UserLogin,
        d: &ApiKeyDraft,
    ) -> HostResult<CreatedApiKey> {
        let email = login.email.clone();
        self.mutate(|s| {
            let user = s
                .users
                .iter()
                .find(|u| u.email == email)
                .map(|u| u.id)
                .ok_or(HostError::Unauthorized {
                    reason: "login".into(),
                })?;
            let k = HostApiKey {
                id: HostObjectId(s.next),
                user_id: user,
                name: d.name.clone(),
                group_id: d.group_id,
                status: "active".into(),
                key_last4: format!("{:04}", s.next),
            };
            s.next += 1;
            s.keys.push(k.clone());
            Ok(CreatedApiKey {
                secret: SecretString::from(format!("sk-user-{}", k.id)),
                key: k,
            })
        })
    }
    async fn reveal_user_api_key(
        &self,
        _login: &UserLogin,
        key: HostObjectId,
    ) -> HostResult<CreatedApiKey> {
        self.read();
        let s = self.state.lock().unwrap();
        let k = s
            .keys
            .iter()
            .find(|k| k.id == key)
            .cloned()
            .ok_or_else(|| nf("key", key))?;
        Ok(CreatedApiKey {
            secret: SecretString::from(format!("sk-user-{}", k.id)),
            key: k,
        })
    }
    async fn rebind_user_api_key(
        &self,
        _login: &UserLogin,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey> {
        self.rebind_api_key(key, group).await
    }
    async fn delete_user_api_key(&self, login: &UserLogin, key: HostObjectId) -> HostResult<()> {
        let email = login.email.clone();
        self.mutate(|s| {
            let user = s
                .users
                .iter()
                .find(|u| u.email == email)
                .map(|u| u.id)
                .ok_or(HostError::Unauthorized {
                    reason: "login".into(),
                })?;
            let n = s.keys.len();
            s.keys.retain(|k| !(k.id == key && k.user_id == user));
            if s.keys.len() == n {
                return Err(nf("key", key));
            }
            Ok(())
        })
    }
    async fn rebind_api_key(
        &self,
        key: HostObjectId,
        group: HostObjectId,
    ) -> HostResult<HostApiKey> {
        self.mutate(|s| {
            let k = s
                .keys
                .iter_mut()
                .find(|k| k.id == key)
                .ok_or_else(|| nf("key", key))?;
            k.group_id = Some(group);
            Ok(k.clone())
        })
    }
    async fn list_group_subscriptions(
        &self,
        group: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>> {
        self.read();
        let s = self.state.lock().unwrap();
        Ok(s.subscriptions
            .iter()
            .filter(|x| x.group_id == group)
            .cloned()
            .collect())
    }
    async fn list_user_subscriptions(
        &self,
        user: HostObjectId,
    ) -> HostResult<Vec<HostSubscription>> {
        self.read();
        let s = self.state.lock().unwrap();
        Ok(s.subscriptions
            .iter()
            .filter(|x| x.user_id == user)
            .cloned()
            .collect())
    }
    async fn assign_subscription(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        _days: u32,
        notes: Option<String>,
    ) -> HostResult<HostSubscription> {
        self.mutate(|s| {
            let x = HostSubscription {
                id: HostObjectId(s.next),
                user_id: user,
                group_id: group,
                status: "active".into(),
                starts_at: None,
                expires_at: None,
                notes: notes.clone(),
            };
            s.next += 1;
            s.subscriptions.push(x.clone());
            Ok(x)
        })
    }
    async fn revoke_subscription(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.subscriptions.len();
            s.subscriptions.retain(|x| x.id != id);
            if s.subscriptions.len() == n {
                return Err(nf("subscription", id));
            }
            Ok(())
        })
    }
    async fn gateway_models(&self, _key: &SecretString) -> HostResult<ModelListing> {
        Err(HostError::RouteMissing {
            route: "/v1/models".into(),
        })
    }
    async fn gateway_chat(&self, _key: &SecretString, _model: String) -> HostResult<CallOutcome> {
        Err(HostError::RouteMissing {
            route: "/v1/chat/completions".into(),
        })
    }
    async fn gateway_messages(
        &self,
        _key: &SecretString,
        _model: String,
    ) -> HostResult<CallOutcome> {
        Err(HostError::RouteMissing {
            route: "/v1/messages".into(),
        })
    }

    async fn list_monitors(&self) -> HostResult<Vec<HostMonitor>> {
        self.read();
        if !self.caps.channel_monitors {
            return Err(HostError::RouteMissing {
                route: "/admin/channel-monitors".into(),
            });
        }
        Ok(self.state.lock().unwrap().monitors.clone())
    }
    async fn create_monitor(&self, d: &MonitorDraft) -> HostResult<HostMonitor> {
        self.mutate(|s| {
            let m = monitor_from(d, s.next);
            s.next += 1;
            s.monitors.push(m.clone());
            Ok(m)
        })
    }
    async fn update_monitor(&self, id: HostObjectId, p: &MonitorPatch) -> HostResult<HostMonitor> {
        self.mutate(|s| {
            let m = s
                .monitors
                .iter_mut()
                .find(|m| m.id == id)
                .ok_or_else(|| nf("channel monitor", id))?;
            if let Some(v) = &p.name {
                m.name = v.clone();
            }
            if let Some(v) = &p.endpoint {
                m.endpoint = v.clone();
            }
            if let Some(v) = &p.primary_model {
                m.primary_model = v.clone();
            }
            if let Some(v) = &p.group_name {
                m.group_name = v.clone();
            }
            if let Some(v) = p.enabled {
                m.enabled = v;
            }
            if let Some(v) = p.interval_seconds {
                m.interval_seconds = v;
            }
            Ok(m.clone())
        })
    }
    async fn delete_monitor(&self, id: HostObjectId) -> HostResult<()> {
        self.mutate(|s| {
            let n = s.monitors.len();
            s.monitors.retain(|m| m.id != id);
            if s.monitors.len() == n {
                return Err(nf("channel monitor", id));
            }
            Ok(())
        })
    }
}

/// The monitor a host makes of a draft (never keeping the key in view).
pub fn monitor_from(d: &MonitorDraft, id: i64) -> HostMonitor {
    HostMonitor {
        id: HostObjectId(id),
        name: d.name.clone(),
        provider: d.provider.clone(),
        api_mode: d.api_mode.clone(),
        endpoint: d.endpoint.clone(),
        primary_model: d.primary_model.clone(),
        extra_models: d.extra_models.clone(),
        group_name: d.group_name.clone(),
        enabled: d.enabled,
        interval_seconds: d.interval_seconds,
        has_api_key: true,
        last_checked_at: None,
        primary_status: None,
        availability_7d: None,
    }
}
