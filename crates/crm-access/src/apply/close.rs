//! The access preview and `close_access`: gather, plan with
//! [`plan_closure`], apply the plan item by item through the steps.

use super::gather::{Gathered, facts, gather, user_email};
use super::guard::{bad, ensure_open, need};
use super::recover::recover_closure_intents;
use super::steps::Run;
use crate::closure::{
    ClosureDetail, ClosureItem, ClosurePlan, ClosureRequest, UserChoice, natural_key, plan_closure,
};
use crate::ports::{AccessPorts, HeldKey};
use crate::status::sync_access_status;
use crate::{Error, Result};
use crm_domain::host::{Capabilities, SealContext, SealedSecret};
use crm_domain::observed::UserLogin;
use crm_domain::spec::ProviderSpec;
use crm_domain::{
    AccessMode, AccessStatus, BatchId, HostObjectId, JournalOp, PlanAction, ResourceKind,
    SecretString,
};
use crm_provision::JournalExecutor;
use serde_json::json;

/// Length of generated probe-user passwords (alphanumeric).
const PASSWORD_LEN: usize = 32;

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
