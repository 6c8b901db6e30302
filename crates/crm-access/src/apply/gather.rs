//! What a closure reads first: the batch's recorded resources and the few
//! host objects it involves (list calls only), and the planner's facts
//! built from them.

use crate::Result;
use crate::closure::{ClosureFacts, ClosureRequest, UserChoice, probe_email};
use crate::ports::AccessPorts;
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::Capabilities;
use crm_domain::observed::{HostApiKey, HostGroup, HostSubscription, HostUser};
use crm_domain::ports::{HostApi, HostResult};
use crm_domain::spec::ProviderSpec;
use crm_domain::{AccessMode, BatchId, HostObjectId, ResourceKind, ResourceState};

/// What the host and the batch show for one closure.
#[derive(Debug, Clone)]
pub(super) struct Gathered {
    pub(super) recorded: Vec<ManagedResource>,
    pub(super) group_id: Option<HostObjectId>,
    pub(super) group: Option<HostGroup>,
    pub(super) user: Option<HostUser>,
    pub(super) user_keys: Vec<HostApiKey>,
    pub(super) user_subscriptions: Vec<HostSubscription>,
}

pub(super) fn live_group_id(recorded: &[ManagedResource]) -> Option<HostObjectId> {
    recorded
        .iter()
        .find(|r| r.kind == ResourceKind::Group && r.state == ResourceState::Live)
        .map(|r| r.host_object_id)
}

/// The host user with exactly this email (the host's search is fuzzy).
pub(super) async fn find_user(host: &dyn HostApi, email: &str) -> HostResult<Option<HostUser>> {
    Ok(host
        .list_users(Some(email.to_owned()))
        .await?
        .into_iter()
        .find(|u| u.email.eq_ignore_ascii_case(email)))
}

pub(super) async fn gather(p: &AccessPorts<'_>, batch: &BatchId, email: &str) -> Result<Gathered> {
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

pub(super) fn user_email(batch: &ImportBatch, req: &ClosureRequest) -> String {
    match &req.user {
        UserChoice::Probe => probe_email(&batch.id, &batch.provider),
        UserChoice::Existing { email, .. } => email.clone(),
    }
}

pub(super) fn facts<'a>(
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

pub(super) async fn live_subscription(
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

// The lookups by natural key that a journaled step and crash recovery
// share: the host ids matching one closure object (none: not created; one:
// adopt it; several: an operator decides).

pub(super) async fn user_ids(host: &dyn HostApi, email: &str) -> HostResult<Vec<HostObjectId>> {
    Ok(find_user(host, email)
        .await?
        .map(|u| u.id)
        .into_iter()
        .collect())
}

/// The user, when its balance is exactly `amount`: a balance that was set
/// can be recognised afterwards, one that was added to cannot.
pub(super) async fn user_ids_with_balance(
    host: &dyn HostApi,
    email: &str,
    amount: f64,
) -> HostResult<Vec<HostObjectId>> {
    Ok(find_user(host, email)
        .await?
        .filter(|u| (u.balance - amount).abs() < 1e-9)
        .map(|u| u.id)
        .into_iter()
        .collect())
}

pub(super) async fn key_ids_named(
    host: &dyn HostApi,
    user: HostObjectId,
    name: &str,
) -> HostResult<Vec<HostObjectId>> {
    Ok(host
        .list_user_api_keys(user)
        .await?
        .into_iter()
        .filter(|k| k.name == name)
        .map(|k| k.id)
        .collect())
}

pub(super) async fn live_subscription_ids(
    host: &dyn HostApi,
    user: HostObjectId,
    group: HostObjectId,
) -> HostResult<Vec<HostObjectId>> {
    Ok(live_subscription(host, user, group)
        .await?
        .map(|s| s.id)
        .into_iter()
        .collect())
}
