//! One closure run's journaled steps (user, allowed groups, balance grant,
//! subscription, key, rebind), each through crm-provision's write-ahead
//! journal with a lookup by natural key for an unknown outcome.

use super::gather::{
    key_ids_named, live_subscription, live_subscription_ids, user_ids, user_ids_with_balance,
};
use super::guard::bad;
use crate::Result;
use crate::closure::{ClosureDetail, ClosureItem, natural_key};
use crate::ports::{AccessPorts, HeldKey};
use crm_domain::batch::ImportBatch;
use crm_domain::host::SealedSecret;
use crm_domain::observed::{ApiKeyDraft, BalanceOp, UserDraft, UserLogin};
use crm_domain::ownership::marked_text;
use crm_domain::ports::{HostApi, HostError};
use crm_domain::{HostObjectId, JournalOp, ResourceKind};
use crm_provision::{Intent, JournalExecutor, Step};
use serde_json::json;

/// One closure run: the executor and what every step needs.
pub(super) struct Run<'a, 'r> {
    pub(super) p: &'r AccessPorts<'a>,
    pub(super) exec: JournalExecutor<'a>,
    pub(super) batch: &'r ImportBatch,
    pub(super) login: &'r UserLogin,
    pub(super) sealed: &'r SealedSecret,
    pub(super) admin_key_rebind: bool,
}

impl<'a> Run<'a, '_> {
    pub(super) fn intent(
        &self,
        op: JournalOp,
        kind: ResourceKind,
        natural_key: &str,
        name: &str,
        id: Option<HostObjectId>,
        desired: serde_json::Value,
    ) -> Intent {
        Intent {
            batch_id: self.batch.id.clone(),
            op,
            kind,
            natural_key: natural_key.to_owned(),
            name: name.to_owned(),
            host_object_id: id,
            desired,
        }
    }

    pub(super) fn notes(&self, what: &str) -> String {
        marked_text(
            &self.batch.id,
            &format!("{what} for {} ({})", self.batch.provider, self.batch.mode),
        )
    }

    pub(super) fn user_desired(&self, probe: bool) -> serde_json::Value {
        if probe {
            json!({
                "email": self.login.email,
                "probe": true,
                "login_password_sealed": self.sealed.0,
            })
        } else {
            json!({ "email": self.login.email, "probe": false })
        }
    }

    pub(super) fn key_desired(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        name: &str,
    ) -> serde_json::Value {
        json!({
            "name": name,
            "user_id": user,
            "group_id": group,
            "login_email": self.login.email,
            "login_password_sealed": self.sealed.0,
        })
    }

    pub(super) async fn adopt(
        &self,
        kind: ResourceKind,
        natural_key: &str,
        name: &str,
        id: HostObjectId,
        desired: serde_json::Value,
        reason: Option<&str>,
    ) -> Result<()> {
        let intent = self.intent(JournalOp::Adopt, kind, natural_key, name, Some(id), desired);
        self.exec
            .adopt(intent, reason.unwrap_or("adopted by the access closure"))
            .await?;
        Ok(())
    }

    pub(super) async fn create_user(
        &self,
        probe: bool,
        exclusive_group: Option<HostObjectId>,
    ) -> Result<HostObjectId> {
        let host = self.p.host;
        let email = self.login.email.clone();
        let draft = UserDraft {
            email: email.clone(),
            password: self.login.password.clone(),
            username: email.split('@').next().map(str::to_owned),
            notes: Some(self.notes("access probe user")),
            balance: None,
            allowed_groups: exclusive_group.into_iter().collect(),
        };
        let intent = self.intent(
            JournalOp::Create,
            ResourceKind::User,
            &natural_key::user(&email),
            &email,
            None,
            self.user_desired(probe),
        );
        let applied = self
            .exec
            .run(
                Step::new(intent, move |_| {
                    Box::pin(async move { host.create_user(&draft).await })
                })
                .with_lookup(move || {
                    let email = email.clone();
                    Box::pin(async move { user_ids(host, &email).await })
                }),
            )
            .await?;
        applied
            .host_object_id
            .ok_or_else(|| bad(&self.batch.id, "user create returned no id"))
    }

    pub(super) async fn allow_groups(
        &self,
        user: HostObjectId,
        natural_key: &str,
        allowed: Vec<HostObjectId>,
    ) -> Result<()> {
        let host = self.p.host;
        let intent = self.intent(
            JournalOp::Update,
            ResourceKind::User,
            natural_key,
            &self.login.email,
            Some(user),
            json!({ "allowed_groups": allowed }),
        );
        self.exec
            .run(Step::new(intent, move |_| {
                Box::pin(async move { host.update_user_allowed_groups(user, allowed).await })
            }))
            .await?;
        Ok(())
    }

    /// A planned balance grant (`ClosureDetail::Balance`).
    pub(super) async fn grant(&self, user: HostObjectId, ci: &ClosureItem) -> Result<()> {
        match &ci.detail {
            &ClosureDetail::Balance { amount, op } => {
                self.grant_balance(user, &ci.item.natural_key, &ci.item.name, amount, op)
                    .await
            }
            other => Err(bad(
                &self.batch.id,
                &format!("a balance grant was planned as {other:?}"),
            )),
        }
    }

    pub(super) async fn grant_balance(
        &self,
        user: HostObjectId,
        natural_key: &str,
        name: &str,
        amount: f64,
        op: BalanceOp,
    ) -> Result<()> {
        let host = self.p.host;
        let notes = Some(self.notes("starting balance"));
        // Journaled as a `create` of a balance_grant rather than
        // `grant_balance`: the store records a managed resource only for
        // applied creates and adoptions, and rollback needs the resource to
        // take the grant back. Both ops are create-like for the executor.
        let intent = self.intent(
            JournalOp::Create,
            ResourceKind::BalanceGrant,
            natural_key,
            name,
            Some(user),
            json!({ "user_id": user, "amount": amount, "operation": op }),
        );
        let step = Step::new(intent, move |_| {
            Box::pin(async move { host.update_user_balance(user, amount, op, notes).await })
        });
        // Setting a balance can be recognised afterwards (the user has
        // exactly that balance); adding to one cannot, so an unknown outcome
        // of an add goes to an operator instead of being guessed.
        let step = if op == BalanceOp::Set {
            let email = self.login.email.clone();
            step.with_lookup(move || {
                let email = email.clone();
                Box::pin(async move { user_ids_with_balance(host, &email, amount).await })
            })
        } else {
            step
        };
        self.exec.run(step).await?;
        Ok(())
    }

    pub(super) async fn assign(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        days: u32,
        natural_key: &str,
        name: &str,
    ) -> Result<HostObjectId> {
        assign_journaled(
            self.p.host,
            &self.exec,
            self.intent(
                JournalOp::Create,
                ResourceKind::Subscription,
                natural_key,
                name,
                None,
                json!({ "user_id": user, "group_id": group, "validity_days": days }),
            ),
            user,
            group,
            days,
            Some(self.notes("subscription")),
        )
        .await
        .map(|(id, _)| id)
    }

    pub(super) async fn create_key(
        &self,
        user: HostObjectId,
        group: HostObjectId,
        name: &str,
        natural_key: &str,
    ) -> Result<HeldKey> {
        let host = self.p.host;
        let login = self.login.clone();
        let draft = ApiKeyDraft {
            name: name.to_owned(),
            group_id: Some(group),
        };
        let intent = self.intent(
            JournalOp::Create,
            ResourceKind::UserApiKey,
            natural_key,
            name,
            None,
            self.key_desired(user, group, name),
        );
        let key_name = name.to_owned();
        let applied = self
            .exec
            .run(
                Step::new(intent, move |_| {
                    Box::pin(async move { host.create_user_api_key(&login, &draft).await })
                })
                .with_lookup(move || {
                    let key_name = key_name.clone();
                    Box::pin(async move { key_ids_named(host, user, &key_name).await })
                }),
            )
            .await?;
        let id = applied
            .host_object_id
            .ok_or_else(|| bad(&self.batch.id, "key create returned no id"))?;
        let secret = match applied.value {
            Some(created) => created.secret,
            // Adopted after an unknown outcome: read the key back as the user.
            None => {
                self.p
                    .host
                    .reveal_user_api_key(self.login, id)
                    .await?
                    .secret
            }
        };
        Ok(HeldKey { key_id: id, secret })
    }

    pub(super) async fn rebind(
        &self,
        user: HostObjectId,
        key: HostObjectId,
        group: HostObjectId,
        original: Option<HostObjectId>,
        natural_key: &str,
        name: &str,
    ) -> Result<()> {
        let host = self.p.host;
        let login = self.login.clone();
        let admin = self.admin_key_rebind;
        let mut desired = self.key_desired(user, group, name);
        if let Some(orig) = original {
            desired["original_group_id"] = json!(orig);
        }
        let intent = self.intent(
            JournalOp::Bind,
            ResourceKind::UserApiKey,
            natural_key,
            name,
            Some(key),
            desired.clone(),
        );
        self.exec
            .run(Step::new(intent, move |_| {
                Box::pin(async move {
                    if admin {
                        host.rebind_api_key(key, group).await
                    } else {
                        host.rebind_user_api_key(&login, key, group).await
                    }
                })
            }))
            .await?;
        // The binding is part of the key's desired state (reconcile compares it).
        self.p
            .batches
            .update_resource_desired(
                &self.batch.id,
                ResourceKind::UserApiKey,
                key,
                None,
                crm_provision::journal::spec_digest(&desired),
                desired,
            )
            .await?;
        Ok(())
    }
}

/// Whether a host conflict is sub2api's "assign never extends" answer.
fn is_already_subscribed(e: &HostError) -> bool {
    matches!(e, HostError::Conflict { reason, message }
        if reason.contains("SUBSCRIPTION_ALREADY_EXISTS") || message.to_ascii_lowercase().contains("already"))
}

/// Assigns a subscription through the journal. A 409
/// `SUBSCRIPTION_ALREADY_EXISTS` (assign never extends) reuses the live one.
/// Returns the subscription id and whether it was reused.
pub(super) async fn assign_journaled<'a>(
    host: &'a dyn HostApi,
    exec: &JournalExecutor<'a>,
    intent: Intent,
    user: HostObjectId,
    group: HostObjectId,
    days: u32,
    notes: Option<String>,
) -> Result<(HostObjectId, bool)> {
    let batch = intent.batch_id.clone();
    let reused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = reused.clone();
    let applied = exec
        .run(
            Step::new(intent, move |_| {
                Box::pin(async move {
                    match host.assign_subscription(user, group, days, notes).await {
                        Err(e) if is_already_subscribed(&e) => {
                            match live_subscription(host, user, group).await? {
                                Some(s) => {
                                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                                    Ok(s)
                                }
                                None => Err(e),
                            }
                        }
                        other => other,
                    }
                })
            })
            .with_lookup(move || {
                Box::pin(async move { live_subscription_ids(host, user, group).await })
            }),
        )
        .await?;
    let id = applied
        .host_object_id
        .ok_or_else(|| bad(&batch, "subscription assign returned no id"))?;
    Ok((id, reused.load(std::sync::atomic::Ordering::Relaxed)))
}
