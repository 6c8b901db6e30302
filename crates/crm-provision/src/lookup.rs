//! Lookups by natural key (docs/design.md §6 "No duplicates" and "Crash
//! safety"): a fresh listing of the host answers which objects a pending
//! journal intent may have created, and crash leftovers are resolved with it.

use crate::desired::AccountKey;
use crate::error::Result;
use crate::journal::LookupFn;
use crate::provisioner::Provisioner;
use crm_domain::batch::{ImportBatch, JournalEntry};
use crm_domain::ownership::parse_marker;
use crm_domain::ports::HostApi;
use crm_domain::{BatchId, Fingerprint, HostObjectId, JournalOp, JournalState, ResourceKind};
use futures::FutureExt;

impl Provisioner {
    /// Fresh natural-key lookup of accounts: `platform|base_url|hmac`.
    pub(crate) fn account_lookup(&self, natural_key: &str) -> LookupFn<'_> {
        let nk = natural_key.to_owned();
        let host = &*self.host;
        Box::new(move || {
            let nk = nk.clone();
            async move {
                let Some((platform, base, key)) = split_account_nk(&nk) else {
                    return Ok(vec![]);
                };
                let want = AccountKey::new(&platform, &base, &key);
                Ok(host
                    .list_accounts()
                    .await?
                    .into_iter()
                    .filter(|a| want.matches(a))
                    .map(|a| a.id)
                    .collect())
            }
            .boxed()
        })
    }

    /// A fresh natural-key lookup for a journal entry of a provisioning kind.
    pub(crate) fn lookup_for(&self, e: &JournalEntry) -> Option<LookupFn<'_>> {
        let host = &*self.host;
        let name = e.name.clone();
        match e.kind {
            ResourceKind::Account => Some(self.account_lookup(&e.natural_key)),
            ResourceKind::Group => Some(Box::new(move || {
                let name = name.clone();
                async move { group_ids_named(host, &name, None).await }.boxed()
            })),
            ResourceKind::Channel => Some(Box::new(move || {
                let name = name.clone();
                async move { channel_ids_named(host, &name).await }.boxed()
            })),
            ResourceKind::Monitor => Some(Box::new(move || {
                let name = name.clone();
                async move { monitor_ids_named(host, &name).await }.boxed()
            })),
            _ => None,
        }
    }

    /// Resolves `pending` entries left by a crash (and re-checks
    /// `needs_operator` creates an operator may have fixed).
    pub(crate) async fn resolve_leftovers(&self, b: &ImportBatch) -> Result<Leftovers> {
        let exec = self.exec();
        let mut closure = Vec::new();
        for e in self.batches.journal(&b.id).await? {
            let stuck_create =
                e.state == JournalState::NeedsOperator && matches!(e.op, JournalOp::Create);
            if e.state != JournalState::Pending && !stuck_create {
                continue;
            }
            let Some(lookup) = self.lookup_for(&e) else {
                if e.state == JournalState::Pending {
                    closure.push(e.seq);
                }
                continue;
            };
            let resolved = exec.recover_pending(&e, Some(&lookup)).await?;
            if resolved.state == JournalState::NeedsOperator {
                return Ok(Leftovers::Stuck(format!(
                    "journal entry {} ({} {}): {}",
                    resolved.seq,
                    resolved.kind,
                    resolved.name,
                    resolved.detail.unwrap_or_default()
                )));
            }
        }
        Ok(Leftovers::Clear { closure })
    }
}

/// What crash recovery left: the closure intents still pending (for
/// crm-access), or why the batch needs an operator.
pub(crate) enum Leftovers {
    Clear { closure: Vec<u32> },
    Stuck(String),
}

/// The hmac part of an account natural key.
pub(crate) fn hmac_of_nk(nk: &str) -> &str {
    crate::journal::base_natural_key(nk)
        .rsplit('|')
        .next()
        .unwrap_or("")
}

/// `platform|base_url|hmac` back into its parts.
pub(crate) fn split_account_nk(nk: &str) -> Option<(crm_domain::Platform, String, Fingerprint)> {
    let nk = crate::journal::base_natural_key(nk);
    let (rest, hmac) = nk.rsplit_once('|')?;
    let (platform, base) = rest.split_once('|')?;
    Some((
        crm_domain::Platform::new(platform),
        base.to_owned(),
        Fingerprint {
            hmac: hmac.to_owned(),
            last4: String::new(),
        },
    ))
}

/// Ids of the groups named `name`, from a fresh listing; with `marked_by`,
/// only those whose description carries that batch's marker (a group
/// repair recreates is its batch's, not a same-named one of another batch).
pub async fn group_ids_named(
    host: &dyn HostApi,
    name: &str,
    marked_by: Option<&BatchId>,
) -> crm_domain::ports::HostResult<Vec<HostObjectId>> {
    Ok(host
        .list_groups()
        .await?
        .into_iter()
        .filter(|g| {
            g.name == name
                && marked_by.is_none_or(|b| {
                    g.description.as_deref().and_then(parse_marker).as_ref() == Some(b)
                })
        })
        .map(|g| g.id)
        .collect())
}

/// Ids of the channels named `name`, from a fresh listing.
pub async fn channel_ids_named(
    host: &dyn HostApi,
    name: &str,
) -> crm_domain::ports::HostResult<Vec<HostObjectId>> {
    Ok(host
        .list_channels()
        .await?
        .into_iter()
        .filter(|c| c.name == name)
        .map(|c| c.id)
        .collect())
}

/// Ids of the channel monitors named `name`, from a fresh listing.
pub async fn monitor_ids_named(
    host: &dyn HostApi,
    name: &str,
) -> crm_domain::ports::HostResult<Vec<HostObjectId>> {
    Ok(host
        .list_monitors()
        .await?
        .into_iter()
        .filter(|m| m.name == name)
        .map(|m| m.id)
        .collect())
}
