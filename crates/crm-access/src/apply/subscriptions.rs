//! `assign_subscriptions`: more host users subscribed to the batch group,
//! each a journaled `Subscription` resource of the batch.

use super::gather::{find_user, live_group_id, live_subscription};
use super::guard::ensure_open;
use super::steps::assign_journaled;
use crate::ports::AccessPorts;
use crate::status::sync_access_status;
use crate::{Error, Result};
use crm_domain::host::Capabilities;
use crm_domain::ownership::marked_text;
use crm_domain::spec::ProviderSpec;
use crm_domain::{AccessMode, BatchId, HostObjectId, JournalOp, ResourceKind, ResourceState};
use crm_provision::{Intent, JournalExecutor};
use serde_json::json;

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
