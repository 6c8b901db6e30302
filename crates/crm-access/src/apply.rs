//! Closing access: observe the few host objects a closure involves (list
//! calls only), plan with [`plan_closure`], and apply the plan through
//! crm-provision's write-ahead journal, so that every closure object is a
//! managed resource of the batch. Also the access preview and
//! `assign_subscriptions`.
//!
//! Secrets: the probe user's password is generated here, sealed with the
//! [`SecretSealer`](crm_domain::ports::SecretSealer) before the first intent
//! that needs it is committed, and only the sealed form is journaled (in the
//! `User` and `UserApiKey` resources, so rollback can log in to delete the
//! key). The key string is held in memory ([`HeldKey`]) and never stored.

use crate::closure::{
    ClosureDetail, ClosureFacts, ClosureItem, ClosurePlan, ClosureRequest, UserChoice, natural_key,
    plan_closure, probe_email,
};
use crate::ports::{AccessPorts, HeldKey};
use crate::status::sync_access_status;
use crate::{Error, Result};
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::{Capabilities, SealContext, SealedSecret};
use crm_domain::observed::{
    ApiKeyDraft, BalanceOp, HostApiKey, HostGroup, HostSubscription, HostUser, UserDraft, UserLogin,
};
use crm_domain::ownership::marked_text;
use crm_domain::ports::{HostApi, HostError, HostResult};
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, HostObjectId, JournalOp, PlanAction,
    ResourceKind, ResourceState, SecretString,
};
use crm_provision::{Intent, JournalExecutor, Step};
use serde_json::json;

/// Length of generated probe-user passwords (alphanumeric).
const PASSWORD_LEN: usize = 32;

/// What the host and the batch show for one closure.
#[derive(Debug, Clone)]
struct Gathered {
    recorded: Vec<ManagedResource>,
    group_id: Option<HostObjectId>,
    group: Option<HostGroup>,
    user: Option<HostUser>,
    user_keys: Vec<HostApiKey>,
    user_subscriptions: Vec<HostSubscription>,
}

fn live_group_id(recorded: &[ManagedResource]) -> Option<HostObjectId> {
    recorded
        .iter()
        .find(|r| r.kind == ResourceKind::Group && r.state == ResourceState::Live)
        .map(|r| r.host_object_id)
}

/// The host user with exactly this email (the host's search is fuzzy).
async fn find_user(host: &dyn HostApi, email: &str) -> HostResult<Option<HostUser>> {
    Ok(host
        .list_users(Some(email.to_owned()))
        .await?
        .into_iter()
        .find(|u| u.email.eq_ignore_ascii_case(email)))
}

async fn gather(p: &AccessPorts<'_>, batch: &BatchId, email: &str) -> Result<Gathered> {
    let recorded = p.batches.resources(batch).await?;
    let group_id = live_group_id(&recorded);
    // Independent reads go at once: two round trips, not four.
    let group = async {
        match group_id {
            Some(id) => Ok(p.host.list_groups().await?.into_iter().find(|g| g.id == id)),
            None => Ok(None),
        }
    };
    let (group, user) = futures::try_join!(group, find_user(p.host, email))?;
    let (user_keys, user_subscriptions) = match &user {
        Some(u) => futures::try_join!(
            p.host.list_user_api_keys(u.id),
            p.host.list_user_subscriptions(u.id)
        )?,
        None => (Vec::new(), Vec::new()),
    };
    Ok(Gathered {
        recorded,
        group_id,
        group,
        user,
        user_keys,
        user_subscriptions,
    })
}

fn user_email(batch: &ImportBatch, req: &ClosureRequest) -> String {
    match &req.user {
        UserChoice::Probe => probe_email(&batch.id, &batch.provider),
        UserChoice::Existing { email, .. } => email.clone(),
    }
}

fn facts<'a>(
    batch: &'a ImportBatch,
    provider: &ProviderSpec,
    target_mode: AccessMode,
    email: &'a str,
    req: &'a ClosureRequest,
    g: &'a Gathered,
    caps: &Capabilities,
) -> ClosureFacts<'a> {
    ClosureFacts {
        batch_id: &batch.id,
        provider: &batch.provider,
        target_mode,
        user_email: email,
        probe_user: matches!(req.user, UserChoice::Probe),
        key: &req.key,
        balance: req
            .starting_balance
            .unwrap_or(provider.access.self_service_starting_balance),
        validity_days: req
            .validity_days
            .unwrap_or(provider.access.subscription_validity_days),
        group_id: g.group_id,
        group: g.group.as_ref(),
        user: g.user.as_ref(),
        user_keys: &g.user_keys,
        user_subscriptions: &g.user_subscriptions,
        recorded: &g.recorded,
        host_has_subscriptions: caps.subscriptions,
    }
}

/// The access preview: for `target_mode`, what is missing and what closing
/// it would create, judged for that mode only. Read-only.
pub async fn preview_access(
    p: &AccessPorts<'_>,
    caps: &Capabilities,
    batch_id: &BatchId,
    provider: &ProviderSpec,
    target_mode: AccessMode,
    req: &ClosureRequest,
) -> Result<ClosurePlan> {
    let batch = p.batches.get_batch(batch_id).await?;
    let email = user_email(&batch, req);
    let g = gather(p, batch_id, &email).await?;
    Ok(plan_closure(&facts(
        &batch,
        provider,
        target_mode,
        &email,
        req,
        &g,
        caps,
    )))
}

/// What closing access did.
#[derive(Debug)]
pub struct ClosureOutcome {
    /// The plan that was applied (actions as planned before applying).
    pub plan: ClosurePlan,
    /// The closure's key, held for the verification that follows.
    pub key: HeldKey,
    /// Access statuses after the change (this batch and its siblings).
    pub statuses: Vec<(BatchId, AccessStatus)>,
}

/// The sealed password of the probe user, from any journal entry of this
/// batch that already carries it (so every attempt uses one password).
async fn journaled_password(
    p: &AccessPorts<'_>,
    batch: &BatchId,
    email: &str,
) -> Result<Option<SealedSecret>> {
    let nk = natural_key::user(email);
    Ok(p.batches
        .journal(batch)
        .await?
        .into_iter()
        .filter(|e| e.kind == ResourceKind::User && e.natural_key == nk)
        .find_map(|e| {
            e.desired
                .get("login_password_sealed")
                .and_then(|v| v.as_str())
                .map(|s| SealedSecret(s.to_owned()))
        }))
}

fn generate_password() -> SecretString {
    use rand::distr::{Alphanumeric, SampleString};
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LEN))
}

/// Closure kinds: the objects this crate journals.
const CLOSURE_KINDS: [ResourceKind; 4] = [
    ResourceKind::User,
    ResourceKind::BalanceGrant,
    ResourceKind::Subscription,
    ResourceKind::UserApiKey,
];

/// The email inside a closure natural key (`<email>`, `balance:<email>`,
/// `subscription:<email>:<group>`, `key:<email>:<name>`).
fn email_in(kind: ResourceKind, natural_key: &str) -> Option<String> {
    let rest = match kind {
        ResourceKind::User => return Some(natural_key.to_owned()),
        ResourceKind::BalanceGrant => natural_key.strip_prefix("balance:")?,
        ResourceKind::Subscription => natural_key.strip_prefix("subscription:")?,
        ResourceKind::UserApiKey => natural_key.strip_prefix("key:")?,
        _ => return None,
    };
    let at = rest.find('@')?;
    let end = rest[at..].find(':').map_or(rest.len(), |i| at + i);
    Some(rest[..end].to_owned())
}

/// Resolves the closure intents a crash left `pending` (crm-provision
/// reports them as `closure_pending` and leaves them to this crate): each
/// create is looked up by its natural key with fresh list calls: exactly
/// one match is adopted, none is failed (the next closure run creates it),
/// several need an operator. Idempotent intents are marked safe to re-issue.
/// Returns how many entries were resolved.
pub async fn recover_closure_intents(
    p: &AccessPorts<'_>,
    caps: &Capabilities,
    batch_id: &BatchId,
) -> Result<usize> {
    let pending: Vec<_> = p
        .batches
        .pending_intents(Some(batch_id.clone()))
        .await?
        .into_iter()
        .filter(|e| CLOSURE_KINDS.contains(&e.kind))
        .collect();
    let exec = JournalExecutor::new(p.batches, caps.idempotency_key);
    let host = p.host;
    for entry in &pending {
        let email = email_in(entry.kind, &entry.natural_key);
        let desired = entry.desired.clone();
        let lookup: Option<crm_provision::journal::LookupFn<'_>> = match (entry.kind, email) {
            (ResourceKind::User, Some(email)) => Some(Box::new(move || {
                let email = email.clone();
                Box::pin(async move {
                    Ok(find_user(host, &email)
                        .await?
                        .map(|u| u.id)
                        .into_iter()
                        .collect())
                })
            })),
            (ResourceKind::UserApiKey, Some(email)) => {
                let name = entry.name.clone();
                Some(Box::new(move || {
                    let (email, name) = (email.clone(), name.clone());
                    Box::pin(async move {
                        let Some(u) = find_user(host, &email).await? else {
                            return Ok(Vec::new());
                        };
                        Ok(host
                            .list_user_api_keys(u.id)
                            .await?
                            .into_iter()
                            .filter(|k| k.name == name)
                            .map(|k| k.id)
                            .collect())
                    })
                }))
            }
            (ResourceKind::Subscription, _) => {
                let ids = (
                    desired.get("user_id").and_then(|v| v.as_i64()),
                    desired.get("group_id").and_then(|v| v.as_i64()),
                );
                match ids {
                    (Some(u), Some(g)) => Some(Box::new(move || {
                        Box::pin(async move {
                            Ok(live_subscription(host, HostObjectId(u), HostObjectId(g))
                                .await?
                                .map(|s| s.id)
                                .into_iter()
                                .collect())
                        })
                    })),
                    _ => None,
                }
            }
            // Only a balance that was *set* can be recognised afterwards.
            (ResourceKind::BalanceGrant, Some(email))
                if desired.get("operation").and_then(|v| v.as_str()) == Some("set") =>
            {
                let amount = desired
                    .get("amount")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN);
                Some(Box::new(move || {
                    let email = email.clone();
                    Box::pin(async move {
                        Ok(find_user(host, &email)
                            .await?
                            .filter(|u| (u.balance - amount).abs() < 1e-9)
                            .map(|u| u.id)
                            .into_iter()
                            .collect())
                    })
                }))
            }
            _ => None,
        };
        let resolved = exec.recover_pending(entry, lookup.as_ref()).await?;
        tracing::info!(batch = %batch_id, seq = resolved.seq, kind = %resolved.kind, state = %resolved.state, "pending closure intent resolved");
    }
    Ok(pending.len())
}

/// Plans and applies the batch's access closure (in the batch's own mode).
///
/// Re-running is a no-op; a run interrupted at any point resumes where the
/// journal says it stopped. Returns the key (created now, or read back from
/// the host) for the verification that should follow.
pub async fn close_access(
    p: &AccessPorts<'_>,
    caps: &Capabilities,
    batch_id: &BatchId,
    provider: &ProviderSpec,
    req: &ClosureRequest,
) -> Result<ClosureOutcome> {
    let batch = p.batches.get_batch(batch_id).await?;
    ensure_open(&batch)?;
    recover_closure_intents(p, caps, batch_id).await?;
    let email = user_email(&batch, req);
    let g = gather(p, batch_id, &email).await?;
    let plan = plan_closure(&facts(&batch, provider, batch.mode, &email, req, &g, caps));
    let blocked = plan.blocked_reasons();
    if !blocked.is_empty() {
        return Err(Error::Blocked {
            batch: batch.id.clone(),
            reason: blocked.join("; "),
        });
    }

    // One password per batch and login, bound to both (docs/design.md §5).
    let ctx = SealContext::batch_login_password(batch_id, &email);
    let (password, sealed) = match &req.user {
        UserChoice::Existing { password, .. } => (password.clone(), p.sealer.seal(&ctx, password)?),
        UserChoice::Probe => match journaled_password(p, batch_id, &email).await? {
            Some(sealed) => (p.sealer.open(&ctx, &sealed)?, sealed),
            None if g.user.is_some() => {
                return Err(Error::Blocked {
                    batch: batch.id.clone(),
                    reason: format!(
                        "probe user {email} exists but this batch holds no password for it; delete the user on the host or roll the batch back"
                    ),
                });
            }
            None => {
                let pw = generate_password();
                let sealed = p.sealer.seal(&ctx, &pw)?;
                (pw, sealed)
            }
        },
    };
    let login = UserLogin {
        email: email.clone(),
        password,
    };
    let exclusive_group = g.group.as_ref().filter(|g| g.is_exclusive).map(|g| g.id);

    let run = Run {
        p,
        exec: JournalExecutor::new(p.batches, caps.idempotency_key),
        batch: &batch,
        login: &login,
        sealed: &sealed,
        admin_key_rebind: caps.admin_key_rebind,
    };
    let mut user_id = g.user.as_ref().map(|u| u.id);
    let mut held: Option<HeldKey> = None;
    let mut key_id: Option<HostObjectId> = None;
    // The starting balance and the key are independent (a key is minted
    // whatever the balance; the gateway checks balance per request), so a
    // balance grant waits for the key's create and both go at once. Any
    // other step runs after a pending grant, in plan order.
    let mut balance: Option<(HostObjectId, &ClosureItem)> = None;
    for ci in &plan.items {
        let it = &ci.item;
        let overlaps_balance = matches!(
            (&ci.detail, it.action),
            (ClosureDetail::Key { .. }, PlanAction::Create)
        );
        if !overlaps_balance && let Some((uid, grant)) = balance.take() {
            run.grant(uid, grant).await?;
        }
        match (&ci.detail, it.action) {
            (ClosureDetail::Group, _) => {}
            (ClosureDetail::User { .. }, PlanAction::NoOp) => {}
            (ClosureDetail::User { probe, .. }, PlanAction::Create) => {
                user_id = Some(run.create_user(*probe, exclusive_group).await?);
            }
            (ClosureDetail::User { probe, .. }, PlanAction::Adopt) => {
                let id = it
                    .host_object_id
                    .ok_or_else(|| bad(&batch.id, "adopted user without id"))?;
                run.adopt(
                    ResourceKind::User,
                    &it.natural_key,
                    &it.name,
                    id,
                    run.user_desired(*probe),
                    it.reason.as_deref(),
                )
                .await?;
                user_id = Some(id);
            }
            (ClosureDetail::AllowGroup { allowed, .. }, PlanAction::Update) => {
                let uid = need(user_id, &batch.id)?;
                run.allow_groups(uid, &it.natural_key, allowed.clone())
                    .await?;
            }
            (ClosureDetail::Balance { .. }, PlanAction::NoOp) => {}
            (ClosureDetail::Balance { .. }, PlanAction::Create) => {
                balance = Some((need(user_id, &batch.id)?, ci));
            }
            (ClosureDetail::Subscription { .. }, PlanAction::NoOp) => {}
            (
                ClosureDetail::Subscription {
                    group_id,
                    validity_days,
                },
                PlanAction::Create,
            ) => {
                let uid = need(user_id, &batch.id)?;
                run.assign(uid, *group_id, *validity_days, &it.natural_key, &it.name)
                    .await?;
            }
            (
                ClosureDetail::Subscription {
                    group_id,
                    validity_days,
                },
                PlanAction::Adopt,
            ) => {
                let uid = need(user_id, &batch.id)?;
                let id = it
                    .host_object_id
                    .ok_or_else(|| bad(&batch.id, "adopted subscription without id"))?;
                let desired = json!({"user_id": uid, "group_id": group_id, "validity_days": validity_days, "reused": true});
                run.adopt(
                    ResourceKind::Subscription,
                    &it.natural_key,
                    &it.name,
                    id,
                    desired,
                    it.reason.as_deref(),
                )
                .await?;
            }
            (ClosureDetail::Key { existing, .. }, PlanAction::NoOp) => key_id = *existing,
            (ClosureDetail::Key { group_id, name, .. }, PlanAction::Create) => {
                let uid = need(user_id, &batch.id)?;
                let grant = async {
                    match balance.take() {
                        Some((uid, grant)) => run.grant(uid, grant).await,
                        None => Ok(()),
                    }
                };
                // Both settle (no call is abandoned mid-flight), then the
                // first error wins.
                let (granted, k) =
                    futures::join!(grant, run.create_key(uid, *group_id, name, &it.natural_key));
                granted?;
                let k = k?;
                key_id = Some(k.key_id);
                held = Some(k);
            }
            (
                ClosureDetail::Key {
                    group_id, existing, ..
                },
                PlanAction::Adopt,
            ) => {
                let uid = need(user_id, &batch.id)?;
                let id = existing.ok_or_else(|| bad(&batch.id, "adopted key without id"))?;
                let mut desired = run.key_desired(uid, *group_id, &it.name);
                if let Some(orig) = original_group(&g, id, *group_id) {
                    desired["original_group_id"] = json!(orig);
                }
                run.adopt(
                    ResourceKind::UserApiKey,
                    &it.natural_key,
                    &it.name,
                    id,
                    desired,
                    it.reason.as_deref(),
                )
                .await?;
                key_id = Some(id);
            }
            (
                ClosureDetail::Key {
                    group_id, existing, ..
                },
                PlanAction::Update,
            ) => {
                let uid = need(user_id, &batch.id)?;
                let id = existing.ok_or_else(|| bad(&batch.id, "rebind without a key id"))?;
                let original = original_group(&g, id, *group_id);
                run.rebind(uid, id, *group_id, original, &it.natural_key, &it.name)
                    .await?;
                key_id = Some(id);
            }
            (detail, action) => {
                return Err(bad(
                    &batch.id,
                    &format!("closure planner produced {action} for {detail:?}"),
                ));
            }
        }
    }
    if let Some((uid, grant)) = balance.take() {
        run.grant(uid, grant).await?;
    }
    let key = match held {
        Some(k) => k,
        None => {
            let id = key_id.ok_or_else(|| bad(&batch.id, "closure plan has no key"))?;
            let revealed = p.host.reveal_user_api_key(&login, id).await?;
            HeldKey {
                key_id: id,
                secret: revealed.secret,
            }
        }
    };
    let statuses = sync_access_status(p.batches, p.checks, p.funds, &batch.id).await?;
    tracing::info!(batch = %batch.id, mode = %batch.mode, key = %key.key_id, "access closure applied");
    Ok(ClosureOutcome {
        plan,
        key,
        statuses,
    })
}

/// The group an operator's key was in before crm bound it to `crm_group`,
/// so rollback can bind it back: what an earlier adoption recorded, else the
/// group the key is in now. `None` for keys crm created (rollback deletes
/// those) and for keys already in the crm group when first seen.
fn original_group(
    g: &Gathered,
    key: HostObjectId,
    crm_group: HostObjectId,
) -> Option<HostObjectId> {
    let recorded = g
        .recorded
        .iter()
        .find(|r| r.kind == ResourceKind::UserApiKey && r.host_object_id == key);
    match recorded {
        Some(r) if r.origin == JournalOp::Create => None,
        Some(r) => r
            .desired
            .get("original_group_id")
            .and_then(serde_json::Value::as_i64)
            .map(HostObjectId),
        None => g
            .user_keys
            .iter()
            .find(|k| k.id == key)
            .and_then(|k| k.group_id)
            .filter(|orig| *orig != crm_group),
    }
}

/// Closures are added only to batches that own live objects and are not
/// being (or have been) rolled back.
fn ensure_open(batch: &ImportBatch) -> Result<()> {
    match batch.status {
        BatchStatus::Planned
        | BatchStatus::RollingBack
        | BatchStatus::RolledBack
        | BatchStatus::RollbackIncomplete => Err(Error::Blocked {
            batch: batch.id.clone(),
            reason: format!(
                "the batch is {}; import (or resume) the provider to get a live batch",
                batch.status
            ),
        }),
        _ => Ok(()),
    }
}

fn bad(batch: &BatchId, detail: &str) -> Error {
    Error::BadRecord {
        batch: batch.clone(),
        detail: detail.to_owned(),
    }
}

fn need(user: Option<HostObjectId>, batch: &BatchId) -> Result<HostObjectId> {
    user.ok_or_else(|| bad(batch, "closure user has no host id"))
}

/// One closure run: the executor and what every step needs.
struct Run<'a, 'r> {
    p: &'r AccessPorts<'a>,
    exec: JournalExecutor<'a>,
    batch: &'r ImportBatch,
    login: &'r UserLogin,
    sealed: &'r SealedSecret,
    admin_key_rebind: bool,
}

impl<'a> Run<'a, '_> {
    fn intent(
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

    fn notes(&self, what: &str) -> String {
        marked_text(
            &self.batch.id,
            &format!("{what} for {} ({})", self.batch.provider, self.batch.mode),
        )
    }

    fn user_desired(&self, probe: bool) -> serde_json::Value {
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

    fn key_desired(
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

    async fn adopt(
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

    async fn create_user(
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
                    Box::pin(async move {
                        Ok(find_user(host, &email)
                            .await?
                            .map(|u| u.id)
                            .into_iter()
                            .collect())
                    })
                }),
            )
            .await?;
        applied
            .host_object_id
            .ok_or_else(|| bad(&self.batch.id, "user create returned no id"))
    }

    async fn allow_groups(
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
    async fn grant(&self, user: HostObjectId, ci: &ClosureItem) -> Result<()> {
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

    async fn grant_balance(
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
                Box::pin(async move {
                    Ok(find_user(host, &email)
                        .await?
                        .filter(|u| (u.balance - amount).abs() < 1e-9)
                        .map(|u| u.id)
                        .into_iter()
                        .collect())
                })
            })
        } else {
            step
        };
        self.exec.run(step).await?;
        Ok(())
    }

    async fn assign(
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

    async fn create_key(
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
                    Box::pin(async move {
                        Ok(host
                            .list_user_api_keys(user)
                            .await?
                            .into_iter()
                            .filter(|k| k.name == key_name)
                            .map(|k| k.id)
                            .collect())
                    })
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

    async fn rebind(
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

async fn live_subscription(
    host: &dyn HostApi,
    user: HostObjectId,
    group: HostObjectId,
) -> HostResult<Option<HostSubscription>> {
    Ok(host
        .list_user_subscriptions(user)
        .await?
        .into_iter()
        .filter(|s| s.group_id == group && s.is_active())
        .max_by_key(|s| s.id))
}

/// Assigns a subscription through the journal. A 409
/// `SUBSCRIPTION_ALREADY_EXISTS` (assign never extends) reuses the live one.
/// Returns the subscription id and whether it was reused.
async fn assign_journaled<'a>(
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
                Box::pin(async move {
                    Ok(live_subscription(host, user, group)
                        .await?
                        .map(|s| s.id)
                        .into_iter()
                        .collect())
                })
            }),
        )
        .await?;
    let id = applied
        .host_object_id
        .ok_or_else(|| bad(&batch, "subscription assign returned no id"))?;
    Ok((id, reused.load(std::sync::atomic::Ordering::Relaxed)))
}

/// A host user named by id or by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(HostObjectId),
    Email(String),
}

impl std::fmt::Display for UserRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserRef::Id(id) => write!(f, "user {id}"),
            UserRef::Email(e) => f.write_str(e),
        }
    }
}

/// How one assignment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignHow {
    /// A new subscription was assigned.
    Created,
    /// An active subscription existed (assign never extends): reused.
    Reused,
    /// This batch already recorded it.
    AlreadyRecorded,
}

/// One user's subscription to the batch group.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Assigned {
    pub user_id: HostObjectId,
    pub subscription_id: HostObjectId,
    pub how: AssignHow,
}

/// Assigns the batch's subscription group to more host users, each a
/// journaled `Subscription` resource of the batch. Idempotent: an active
/// subscription is reused (assign never extends it).
pub async fn assign_subscriptions(
    p: &AccessPorts<'_>,
    caps: &Capabilities,
    batch_id: &BatchId,
    provider: &ProviderSpec,
    users: &[UserRef],
    validity_days: Option<u32>,
) -> Result<Vec<Assigned>> {
    let batch = p.batches.get_batch(batch_id).await?;
    ensure_open(&batch)?;
    if batch.mode != AccessMode::Subscription {
        return Err(Error::ModeMismatch {
            batch: batch.id.clone(),
            mode: batch.mode,
            what: "subscriptions can only be assigned on a subscription-mode batch".into(),
        });
    }
    let recorded = p.batches.resources(batch_id).await?;
    let group = live_group_id(&recorded).ok_or_else(|| Error::MissingResource {
        batch: batch.id.clone(),
        kind: ResourceKind::Group,
    })?;
    let days = validity_days.unwrap_or(provider.access.subscription_validity_days);
    let exec = JournalExecutor::new(p.batches, caps.idempotency_key);
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let uid = match user {
            UserRef::Id(id) => *id,
            UserRef::Email(e) => {
                find_user(p.host, e)
                    .await?
                    .ok_or_else(|| Error::UnknownUser { user: e.clone() })?
                    .id
            }
        };
        let nk = format!("subscription:user#{uid}:{group}");
        let name = format!("subscription of user {uid} to group {group}");
        let desired = json!({ "user_id": uid, "group_id": group, "validity_days": days });
        let live = live_subscription(p.host, uid, group).await?;
        let assigned = match live {
            Some(s)
                if recorded.iter().any(|r| {
                    r.kind == ResourceKind::Subscription
                        && r.host_object_id == s.id
                        && r.state == ResourceState::Live
                }) =>
            {
                Assigned {
                    user_id: uid,
                    subscription_id: s.id,
                    how: AssignHow::AlreadyRecorded,
                }
            }
            Some(s) => {
                let mut desired = desired;
                desired["reused"] = json!(true);
                exec.adopt(
                    Intent {
                        batch_id: batch.id.clone(),
                        op: JournalOp::Adopt,
                        kind: ResourceKind::Subscription,
                        natural_key: nk,
                        name,
                        host_object_id: Some(s.id),
                        desired,
                    },
                    "an active subscription exists; assigning never extends, so crm reuses it",
                )
                .await?;
                Assigned {
                    user_id: uid,
                    subscription_id: s.id,
                    how: AssignHow::Reused,
                }
            }
            None => {
                let intent = Intent {
                    batch_id: batch.id.clone(),
                    op: JournalOp::Create,
                    kind: ResourceKind::Subscription,
                    natural_key: nk,
                    name,
                    host_object_id: None,
                    desired,
                };
                let notes = Some(marked_text(
                    &batch.id,
                    &format!("subscription for {}", batch.provider),
                ));
                let (id, reused) =
                    assign_journaled(p.host, &exec, intent, uid, group, days, notes).await?;
                Assigned {
                    user_id: uid,
                    subscription_id: id,
                    how: if reused {
                        AssignHow::Reused
                    } else {
                        AssignHow::Created
                    },
                }
            }
        };
        tracing::info!(batch = %batch.id, user = %uid, subscription = %assigned.subscription_id, how = ?assigned.how, "subscription assigned");
        out.push(assigned);
    }
    sync_access_status(p.batches, p.checks, p.funds, &batch.id).await?;
    Ok(out)
}

/// Reads the batch's closure key back from the host, logging in as the
/// closure user with the sealed password recorded in the key's resource.
pub async fn reveal_batch_key(p: &AccessPorts<'_>, batch_id: &BatchId) -> Result<HeldKey> {
    let recorded = p.batches.resources(batch_id).await?;
    let key = recorded
        .iter()
        .find(|r| r.kind == ResourceKind::UserApiKey && r.state == ResourceState::Live)
        .ok_or_else(|| Error::MissingResource {
            batch: batch_id.clone(),
            kind: ResourceKind::UserApiKey,
        })?;
    let login = login_of(p, batch_id, &key.desired)?;
    let revealed = p
        .host
        .reveal_user_api_key(&login, key.host_object_id)
        .await?;
    Ok(HeldKey {
        key_id: key.host_object_id,
        secret: revealed.secret,
    })
}

/// The login recorded in a `UserApiKey` resource's desired spec.
pub(crate) fn login_of(
    p: &AccessPorts<'_>,
    batch: &BatchId,
    desired: &serde_json::Value,
) -> Result<UserLogin> {
    let field = |name: &str| {
        desired
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| bad(batch, &format!("the key resource has no {name}")))
    };
    let email = field("login_email")?;
    let sealed = SealedSecret(field("login_password_sealed")?);
    let ctx = SealContext::batch_login_password(batch, &email);
    Ok(UserLogin {
        password: p.sealer.open(&ctx, &sealed)?,
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_natural_keys_give_back_their_email() {
        let e = "crm-probe-cn-official.deepseek-abc@crm.invalid";
        assert_eq!(email_in(ResourceKind::User, e).as_deref(), Some(e));
        assert_eq!(
            email_in(ResourceKind::BalanceGrant, &natural_key::balance(e)).as_deref(),
            Some(e)
        );
        assert_eq!(
            email_in(
                ResourceKind::Subscription,
                &natural_key::subscription(e, HostObjectId(7))
            )
            .as_deref(),
            Some(e)
        );
        assert_eq!(
            email_in(ResourceKind::UserApiKey, &natural_key::key(e, "crm-x-abc")).as_deref(),
            Some(e)
        );
        assert_eq!(
            email_in(ResourceKind::Subscription, "subscription:user#4:7"),
            None
        );
        assert_eq!(email_in(ResourceKind::Account, "x@y"), None);
    }
}
