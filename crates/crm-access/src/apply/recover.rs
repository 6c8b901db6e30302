//! Crash recovery of closure intents: a `pending` create is looked up by
//! its natural key with fresh list calls.

use super::gather::{
    find_user, key_ids_named, live_subscription_ids, user_ids, user_ids_with_balance,
};
use crate::Result;
use crate::ports::AccessPorts;
use crm_domain::host::Capabilities;
use crm_domain::{BatchId, HostObjectId, ResourceKind};
use crm_provision::JournalExecutor;

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
                Box::pin(async move { user_ids(host, &email).await })
            })),
            (ResourceKind::UserApiKey, Some(email)) => {
                let name = entry.name.clone();
                Some(Box::new(move || {
                    let (email, name) = (email.clone(), name.clone());
                    Box::pin(async move {
                        let Some(u) = find_user(host, &email).await? else {
                            return Ok(Vec::new());
                        };
                        key_ids_named(host, u.id, &name).await
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
                            live_subscription_ids(host, HostObjectId(u), HostObjectId(g)).await
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
                    Box::pin(async move { user_ids_with_balance(host, &email, amount).await })
                }))
            }
            _ => None,
        };
        let resolved = exec.recover_pending(entry, lookup.as_ref()).await?;
        tracing::info!(batch = %batch_id, seq = resolved.seq, kind = %resolved.kind, state = %resolved.state, "pending closure intent resolved");
    }
    Ok(pending.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::natural_key;

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
