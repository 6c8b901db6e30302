//! Rollback (docs/design.md §4 step 7): by batch, or by provider (every live
//! batch of that pack-scoped provider on the host).
//!
//! Closure resources go first (user API key, subscription, balance grant,
//! user), then the reverse of the apply order (monitor, channel, group,
//! accounts).
//! Every delete is journaled (op `delete`); a 404 counts as done; nothing
//! without crm's marker is deleted (on hosts without account notes: crm's
//! name plus the recorded id); every deletion is confirmed by a final
//! observation. A batch ends `rolled_back`, or `rollback_incomplete` with the
//! resources left and why. `rolling_back` acts as a finalizer meanwhile.

use crate::desired::AccountKey;
use crate::error::{ProvisionError, Result};
use crate::journal::{Intent, Step};
use crate::lease::HeldLease;
use crate::lookup::{Leftovers, split_account_nk};
use crate::provisioner::Provisioner;
use crate::snapshot::is_crm_user;
use crm_domain::batch::{ImportBatch, ManagedResource};
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::observed::{AccountPatch, BalanceOp, HostSnapshot, UserLogin};
use crm_domain::ownership;
use crm_domain::ports::HostError;
use crm_domain::{
    AccessMode, BatchId, BatchStatus, HostObjectId, JournalOp, ProviderRef, ResourceKind,
    ResourceState,
};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

/// How a rollback ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RollbackReport {
    pub batch: BatchId,
    pub status: BatchStatus,
    /// `kind name (id)` of each deleted (or already absent) object.
    pub deleted: Vec<String>,
    /// Objects kept on purpose (adopted users, accounts other batches use).
    pub kept: Vec<String>,
    /// Objects left behind, each with why.
    pub left: Vec<String>,
    pub host_requests: u32,
}

enum Fate {
    Deleted,
    Kept(String),
    Left(String),
}

fn label(r: &ManagedResource) -> String {
    format!("{} {} ({})", r.kind, r.name, r.host_object_id)
}

impl Provisioner {
    /// Rolls one batch back under a fresh lease.
    pub async fn rollback(&self, batch: &BatchId) -> Result<RollbackReport> {
        let b = self.batches.get_batch(batch).await?;
        let lease = self.acquire(&b.provider, "rollback").await?;
        let r = self.rollback_holding(&lease, batch).await;
        lease.release_after(r).await
    }

    /// Rolls back every live batch of `provider` (pack-scoped: another pack's
    /// provider with the same id is untouched) on this host.
    pub async fn rollback_provider(&self, provider: &ProviderRef) -> Result<Vec<RollbackReport>> {
        let lease = self.acquire(provider, "rollback").await?;
        let r = async {
            let mut batches = self
                .batches
                .live_batches(&self.host_id, Some(provider))
                .await?;
            batches.sort_by(|a, b| a.id.cmp(&b.id));
            let mut out = Vec::new();
            for b in batches {
                out.push(self.rollback_holding(&lease, &b.id).await?);
            }
            Ok::<_, ProvisionError>(out)
        }
        .await;
        lease.release_after(r).await
    }

    /// Rolls one batch back under a lease the caller holds.
    pub async fn rollback_holding(
        &self,
        lease: &HeldLease,
        batch: &BatchId,
    ) -> Result<RollbackReport> {
        let before = self.host.request_count();
        let b = self.batches.get_batch(batch).await?;
        if b.status == BatchStatus::RolledBack {
            return Ok(RollbackReport {
                batch: b.id,
                status: BatchStatus::RolledBack,
                deleted: vec![],
                kept: vec![],
                left: vec![],
                host_requests: 0,
            });
        }
        if b.status == BatchStatus::Planned {
            return Err(ProvisionError::BatchState {
                batch: b.id,
                status: b.status,
                hint: "nothing was applied".into(),
            });
        }
        self.batches
            .set_batch_status(batch, BatchStatus::RollingBack, None)
            .await?;
        // Crash leftovers: a create that did happen must be found (and deleted).
        let mut left = Vec::new();
        match self.resolve_leftovers(&b).await? {
            Leftovers::Clear { closure } => {
                for seq in closure {
                    left.push(format!(
                        "journal entry {seq} (access closure) is unresolved; resolve it with crm-access, then roll back again"
                    ));
                }
            }
            Leftovers::Stuck(reason) => left.push(reason),
        }
        // Monitors are listed only for a batch that ever journaled one.
        let monitors = self
            .batches
            .journal(batch)
            .await?
            .iter()
            .any(|e| e.kind == ResourceKind::Monitor);
        let mut snapshot = self.observe(monitors).await?;
        // A create whose lookup found nothing may still land later (a host
        // that processes a request after the client gave up). Adopt such
        // late arrivals now so they are deleted like the rest.
        if self.adopt_late_arrivals(&b, &snapshot).await? > 0 {
            snapshot = self.observe(monitors).await?;
        }
        let mut resources: Vec<ManagedResource> = self
            .batches
            .resources(batch)
            .await?
            .into_iter()
            .filter(|r| r.state != ResourceState::Deleted)
            .collect();
        resources.sort_by(|x, y| {
            y.kind
                .apply_rank()
                .cmp(&x.kind.apply_rank())
                .then(y.journal_seq.cmp(&x.journal_seq))
        });
        let others: Vec<ManagedResource> = self
            .batches
            .live_resources_on_host(&self.host_id)
            .await?
            .into_iter()
            .filter(|r| &r.batch_id != batch)
            .collect();
        let group_ids: Vec<HostObjectId> = resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Group)
            .map(|r| r.host_object_id)
            .collect();

        let (mut deleted, mut kept) = (Vec::new(), Vec::new());
        let mut gone: Vec<&ManagedResource> = Vec::new();
        let mut failed: Vec<(&ManagedResource, String)> = Vec::new();
        // Kinds go in order (closure first, then channel, group, accounts);
        // the objects of one kind are independent, so their deletes run
        // concurrently (bounded by `max_concurrency`).
        let mut fates: Vec<Result<Fate>> = Vec::new();
        for wave in resources.chunk_by(|x, y| x.kind.apply_rank() == y.kind.apply_rank()) {
            lease.heartbeat().await?;
            // Futures built first, then polled (at most `limit` at once).
            let calls: Vec<_> = wave
                .iter()
                .enumerate()
                .map(|(n, r)| {
                    let call = self.remove(&b, r, &resources, &others, &group_ids, &snapshot);
                    async move { (n, call.await) }
                })
                .collect();
            let mut done: Vec<(usize, Result<Fate>)> = futures::stream::iter(calls)
                .buffer_unordered(self.limit())
                .collect()
                .await;
            done.sort_by_key(|(n, _)| *n);
            fates.extend(done.into_iter().map(|(_, f)| f));
        }
        for (r, fate) in resources.iter().zip(fates) {
            match fate {
                Ok(Fate::Deleted) => {
                    deleted.push(label(r));
                    gone.push(r);
                }
                Ok(Fate::Kept(why)) => kept.push(format!("{}: {why}", label(r))),
                Ok(Fate::Left(why)) => left.push(format!("{}: {why}", label(r))),
                Err(e) => failed.push((r, left_reason(&b.id, b.mode, r.kind, &e))),
            }
        }

        // Confirm: every deleted object is absent now.
        match self.observe(monitors).await {
            Ok(after) => {
                for r in &gone {
                    if present(&after, r) {
                        left.push(format!(
                            "{}: still present after its delete was accepted",
                            label(r)
                        ));
                        self.batches
                            .set_resource_state(
                                batch,
                                r.kind,
                                r.host_object_id,
                                ResourceState::Live,
                            )
                            .await?;
                    }
                }
                // A delete whose answer was lost may still have happened.
                for (r, why) in failed {
                    if present(&after, r) {
                        left.push(format!("{}: {why}", label(r)));
                    } else {
                        self.batches
                            .set_resource_state(
                                batch,
                                r.kind,
                                r.host_object_id,
                                ResourceState::Deleted,
                            )
                            .await?;
                        deleted.push(format!("{} (confirmed absent after: {why})", label(r)));
                    }
                }
            }
            Err(e) => {
                left.push(format!("deletions could not be confirmed: {e}"));
                for (r, why) in failed {
                    left.push(format!("{}: {why}", label(r)));
                }
            }
        }
        let (status, reason) = if left.is_empty() {
            (BatchStatus::RolledBack, None)
        } else {
            (
                BatchStatus::RollbackIncomplete,
                Some(format!("left on the host: {}", left.join("; "))),
            )
        };
        self.batches.set_batch_status(batch, status, reason).await?;
        Ok(RollbackReport {
            batch: batch.clone(),
            status,
            deleted,
            kept,
            left,
            host_requests: self.host.request_count().saturating_sub(before),
        })
    }

    /// Deletes (or releases) one managed resource.
    async fn remove(
        &self,
        b: &ImportBatch,
        r: &ManagedResource,
        all: &[ManagedResource],
        others: &[ManagedResource],
        our_groups: &[HostObjectId],
        snap: &HostSnapshot,
    ) -> Result<Fate> {
        let host = &*self.host;
        let id = r.host_object_id;
        let intent = Intent {
            batch_id: b.id.clone(),
            op: JournalOp::Delete,
            kind: r.kind,
            natural_key: r.natural_key.clone(),
            name: r.name.clone(),
            host_object_id: Some(id),
            desired: json!({ "rollback_of": r.journal_seq }),
        };
        let exec = self.exec_for_rollback();
        let done = |fate| async move {
            self.batches
                .set_resource_state(&b.id, r.kind, id, ResourceState::Deleted)
                .await?;
            Ok::<_, ProvisionError>(fate)
        };
        match r.kind {
            ResourceKind::Account => {
                let observed = snap.accounts.iter().find(|a| a.id == id);
                if let Some(a) = observed {
                    let marked = a
                        .notes
                        .as_deref()
                        .and_then(ownership::parse_marker)
                        .is_some()
                        || (a.notes.is_none() && ownership::has_crm_name(&a.name));
                    if !marked {
                        return Ok(Fate::Left(
                            "carries no crm marker (edited by someone?); not deleted".into(),
                        ));
                    }
                }
                if let Some(user) = others
                    .iter()
                    .find(|o| o.kind == ResourceKind::Account && o.host_object_id == id)
                {
                    // Shared with another live batch (same upstream key): unbind ours only.
                    if let Some(a) = observed {
                        let keep: Vec<HostObjectId> = a
                            .group_ids
                            .iter()
                            .copied()
                            .filter(|g| !our_groups.contains(g))
                            .collect();
                        if keep != a.group_ids {
                            let patch = AccountPatch {
                                group_ids: Some(keep),
                                ..AccountPatch::default()
                            };
                            let p = &patch;
                            let mut i = intent.clone();
                            i.op = JournalOp::Update;
                            exec.run(Step::new(i, move |_| host.update_account(id, p)))
                                .await?;
                        }
                    }
                    self.batches
                        .set_resource_state(&b.id, r.kind, id, ResourceState::Deleted)
                        .await?;
                    return Ok(Fate::Kept(format!(
                        "still used by batch {}; unbound from this batch's group",
                        user.batch_id
                    )));
                }
                exec.run(Step::new(intent, move |_| host.delete_account(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::Group => {
                if let Some(g) = snap.groups.iter().find(|g| g.id == id)
                    && g.description
                        .as_deref()
                        .and_then(ownership::parse_marker)
                        .is_none()
                {
                    return Ok(Fate::Left("carries no crm marker; not deleted".into()));
                }
                exec.run(Step::new(intent, move |_| host.delete_group(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::Channel => {
                if let Some(c) = snap
                    .channels
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .find(|c| c.id == id)
                    && c.description
                        .as_deref()
                        .and_then(ownership::parse_marker)
                        .is_none()
                {
                    return Ok(Fate::Left("carries no crm marker; not deleted".into()));
                }
                exec.run(Step::new(intent, move |_| host.delete_channel(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::Monitor => {
                if let Some(m) = snap
                    .monitors
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .find(|m| m.id == id)
                    && !crate::monitor::is_marked(m)
                {
                    return Ok(Fate::Left("carries no crm marker; not deleted".into()));
                }
                exec.run(Step::new(intent, move |_| host.delete_monitor(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::User => {
                if r.origin != JournalOp::Create {
                    self.batches
                        .set_resource_state(&b.id, r.kind, id, ResourceState::Deleted)
                        .await?;
                    return Ok(Fate::Kept("adopted, not created by crm; kept".into()));
                }
                if let Some(u) = snap.users.iter().find(|u| u.id == id)
                    && !is_crm_user(u)
                {
                    return Ok(Fate::Left(
                        "carries no crm name or marker; not deleted".into(),
                    ));
                }
                exec.run(Step::new(intent, move |_| host.delete_user(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::UserApiKey if r.origin == JournalOp::Adopt => {
                self.release_adopted_key(b, r, snap).await
            }
            ResourceKind::Subscription if r.origin == JournalOp::Adopt => {
                self.batches
                    .set_resource_state(&b.id, r.kind, id, ResourceState::Deleted)
                    .await?;
                Ok(Fate::Kept(
                    "adopted (the user already had it), not created by crm; kept".into(),
                ))
            }
            ResourceKind::UserApiKey => {
                let email = r.desired.get("login_email").and_then(Value::as_str);
                let sealed = r
                    .desired
                    .get("login_password_sealed")
                    .and_then(|v| serde_json::from_value::<SealedSecret>(v.clone()).ok());
                let (Some(email), Some(sealed)) = (email, sealed) else {
                    return Ok(Fate::Left(
                        "no user login recorded (login_email, login_password_sealed); delete the key by hand".into(),
                    ));
                };
                let ctx = SealContext::batch_login_password(&b.id, email);
                let login = UserLogin {
                    email: email.to_owned(),
                    password: self.sealer.open(&ctx, &sealed)?,
                };
                let l = &login;
                exec.run(Step::new(intent, move |_| host.delete_user_api_key(l, id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::Subscription => {
                exec.run(Step::new(intent, move |_| host.revoke_subscription(id)))
                    .await?;
                done(Fate::Deleted).await
            }
            ResourceKind::BalanceGrant => {
                let user = r
                    .desired
                    .get("user_id")
                    .and_then(Value::as_i64)
                    .map(HostObjectId);
                let amount = r.desired.get("amount").and_then(Value::as_f64);
                let user_goes = all.iter().any(|u| {
                    u.kind == ResourceKind::User
                        && Some(u.host_object_id) == user
                        && u.origin == JournalOp::Create
                });
                if user_goes {
                    // Deleting the user crm created takes its balance with it.
                    exec.run(Step::new(intent, |_| async { Ok(()) }.boxed()))
                        .await?;
                    return done(Fate::Deleted).await;
                }
                let (Some(user), Some(amount)) = (user, amount) else {
                    return Ok(Fate::Left(
                        "grant records no user_id/amount; adjust the balance by hand".into(),
                    ));
                };
                let note = Some(format!("crm rollback of batch {}", b.id));
                exec.run(Step::new(intent, move |_| {
                    async move {
                        host.update_user_balance(user, amount, BalanceOp::Subtract, note)
                            .await
                            .map(|_| ())
                    }
                    .boxed()
                }))
                .await?;
                done(Fate::Deleted).await
            }
        }
    }

    /// An operator's key the access closure adopted is never deleted. If it
    /// was rebound from another group and its desired spec records that
    /// group (`original_group_id`), it is bound back to it; otherwise it is
    /// left as it is and the report says so.
    async fn release_adopted_key(
        &self,
        b: &ImportBatch,
        r: &ManagedResource,
        snap: &HostSnapshot,
    ) -> Result<Fate> {
        let host = &*self.host;
        let id = r.host_object_id;
        let original = r
            .desired
            .get("original_group_id")
            .and_then(Value::as_i64)
            .map(HostObjectId);
        let current = snap
            .api_keys
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| k.group_id);
        let why = match original {
            Some(g) if current == Some(g) => {
                format!(
                    "adopted operator key, not created by crm; kept (already in its original group {g})"
                )
            }
            Some(g) if !self.caps.admin_key_rebind && self.adopted_key_login(r)?.is_none() => {
                format!(
                    "adopted operator key, not created by crm; kept, but not rebound to its original group {g}: this host rebinds keys only as the user and no login is recorded (rebind it by hand)"
                )
            }
            Some(g) => {
                let login = self.adopted_key_login(r)?;
                let admin = self.caps.admin_key_rebind;
                let intent = Intent {
                    batch_id: b.id.clone(),
                    op: JournalOp::Bind,
                    kind: r.kind,
                    natural_key: r.natural_key.clone(),
                    name: r.name.clone(),
                    host_object_id: Some(id),
                    desired: json!({ "rollback_of": r.journal_seq, "group_id": g }),
                };
                let l = &login;
                self.exec_for_rollback()
                    .run(Step::new(intent, move |_| {
                        async move {
                            match l {
                                Some(l) if !admin => host.rebind_user_api_key(l, id, g).await,
                                _ => host.rebind_api_key(id, g).await,
                            }
                        }
                        .boxed()
                    }))
                    .await?;
                format!(
                    "adopted operator key, not created by crm; kept and rebound to its original group {g}"
                )
            }
            None => format!(
                "adopted operator key, not created by crm; kept and left bound to group {} (its original group is not recorded: rebind it by hand if needed)",
                current.map_or_else(|| "none".to_owned(), |g| g.to_string())
            ),
        };
        self.batches
            .set_resource_state(&b.id, r.kind, id, ResourceState::Deleted)
            .await?;
        Ok(Fate::Kept(why))
    }

    /// The user login recorded with an adopted key, if any (hosts without
    /// admin rebinding need it).
    fn adopted_key_login(&self, r: &ManagedResource) -> Result<Option<UserLogin>> {
        let email = r.desired.get("login_email").and_then(Value::as_str);
        let sealed = r
            .desired
            .get("login_password_sealed")
            .and_then(|v| serde_json::from_value::<SealedSecret>(v.clone()).ok());
        Ok(match (email, sealed) {
            (Some(email), Some(sealed)) => Some(UserLogin {
                email: email.to_owned(),
                password: self.sealer.open(
                    &SealContext::batch_login_password(&r.batch_id, email),
                    &sealed,
                )?,
            }),
            _ => None,
        })
    }

    /// Adopts objects that match a `failed` create of this batch by natural
    /// key, carry this batch's marker (or, for accounts on hosts without
    /// notes, crm's name) and belong to no live batch. Returns how many.
    async fn adopt_late_arrivals(&self, b: &ImportBatch, snap: &HostSnapshot) -> Result<usize> {
        let managed: Vec<(ResourceKind, HostObjectId)> = self
            .batches
            .resources(&b.id)
            .await?
            .into_iter()
            .chain(self.batches.live_resources_on_host(&self.host_id).await?)
            .filter(|r| r.state != ResourceState::Deleted)
            .map(|r| (r.kind, r.host_object_id))
            .collect();
        let ours =
            |text: Option<&str>| text.and_then(ownership::parse_marker).as_ref() == Some(&b.id);
        let mut adopted = 0;
        for e in self.batches.journal(&b.id).await? {
            if e.op != JournalOp::Create || e.state != crm_domain::JournalState::Failed {
                continue;
            }
            let found: Vec<HostObjectId> = match e.kind {
                ResourceKind::Account => {
                    let Some((platform, base, key)) = split_account_nk(&e.natural_key) else {
                        continue;
                    };
                    let want = AccountKey::new(&platform, &base, &key);
                    snap.accounts
                        .iter()
                        .filter(|a| want.matches(a))
                        .filter(|a| ours(a.notes.as_deref()) || a.notes.is_none())
                        .map(|a| a.id)
                        .collect()
                }
                ResourceKind::Group => snap
                    .groups
                    .iter()
                    .filter(|g| g.name == e.name && ours(g.description.as_deref()))
                    .map(|g| g.id)
                    .collect(),
                ResourceKind::Channel => snap
                    .channels
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .filter(|c| c.name == e.name && ours(c.description.as_deref()))
                    .map(|c| c.id)
                    .collect(),
                ResourceKind::Monitor => snap
                    .monitors
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .filter(|m| m.name == e.name && ours(Some(m.group_name.as_str())))
                    .map(|m| m.id)
                    .collect(),
                _ => continue,
            };
            for id in found {
                if managed.contains(&(e.kind, id)) {
                    continue;
                }
                self.exec_for_rollback()
                    .adopt(
                        Intent {
                            batch_id: b.id.clone(),
                            op: JournalOp::Adopt,
                            kind: e.kind,
                            natural_key: e.natural_key.clone(),
                            name: e.name.clone(),
                            host_object_id: Some(id),
                            desired: e.desired.clone(),
                        },
                        &format!(
                            "found by natural key after journal entry {} failed: the create landed late",
                            e.seq
                        ),
                    )
                    .await?;
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    fn exec_for_rollback(&self) -> crate::journal::JournalExecutor<'_> {
        // Deletes never carry an idempotency key; the flag only affects creates.
        crate::journal::JournalExecutor::new(&*self.batches, false)
    }
}

/// Why an object whose delete failed is still there, and what to do: a
/// rollback's own words, not the "run resume" of a failed import step.
///
/// sub2api d3e73f1 cannot delete a subscription that has usage records, nor
/// the group holding it: `usage_logs.subscription_id` is a foreign key
/// without cascade, so the delete (and the group's `DeleteCascade`) fails in
/// the database and the host answers 500 `internal error`; no admin route
/// removes usage or expires a subscription (`subscription_handler.go`
/// `Revoke` deletes, `Extend` needs `days >= 1`). A check's completion
/// through the subscription is enough to get there.
fn left_reason(
    batch: &BatchId,
    mode: AccessMode,
    kind: ResourceKind,
    e: &ProvisionError,
) -> String {
    let again = format!("then run `crm batch rollback {batch}` again");
    let ProvisionError::StepFailed { source, .. } = e else {
        return format!("{e}; {again}");
    };
    let subscription_usage = matches!(source, HostError::Unavailable { status: 500, .. })
        && (kind == ResourceKind::Subscription
            || (kind == ResourceKind::Group && mode == AccessMode::Subscription));
    if subscription_usage {
        format!(
            "the host refused the delete ({source}); sub2api 0.1.x answers this when the subscription has usage records (a completion went through it), which no admin route removes: the object stays on the host while the batch's other objects are deleted as usual (any that are not are listed too); remove it on the host's side if it must go, {again}"
        )
    } else {
        format!("the host refused the delete ({source}); fix that, {again}")
    }
}

/// Whether a managed resource's object is still on the host.
fn present(s: &HostSnapshot, r: &ManagedResource) -> bool {
    let id = r.host_object_id;
    match r.kind {
        ResourceKind::Account => s.accounts.iter().any(|a| a.id == id),
        ResourceKind::Group => s.groups.iter().any(|g| g.id == id),
        ResourceKind::Channel => s
            .channels
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|c| c.id == id),
        ResourceKind::User => s.users.iter().any(|u| u.id == id),
        ResourceKind::UserApiKey => s.api_keys.iter().any(|k| k.id == id),
        ResourceKind::Subscription => s.subscriptions.iter().any(|x| x.id == id && x.is_active()),
        ResourceKind::BalanceGrant => false,
        ResourceKind::Monitor => s
            .monitors
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|m| m.id == id),
    }
}

#[cfg(test)]
mod left_reason_tests {
    use super::*;
    use crm_domain::JournalState;

    fn step_failed(kind: ResourceKind, status: u16) -> ProvisionError {
        ProvisionError::StepFailed {
            seq: 9,
            kind,
            name: "x".into(),
            state: JournalState::Failed,
            source: HostError::Unavailable {
                status,
                message: "internal error".into(),
            },
        }
    }

    #[test]
    fn a_subscription_the_host_cannot_delete_is_explained_without_resume() {
        let b = BatchId::new("b-7");
        for kind in [ResourceKind::Subscription, ResourceKind::Group] {
            let why = left_reason(&b, AccessMode::Subscription, kind, &step_failed(kind, 500));
            assert!(why.contains("usage records"), "{why}");
            assert!(why.contains("crm batch rollback b-7"), "{why}");
            assert!(!why.contains("resume"), "{why}");
        }
        // Other failures get no guess at the cause.
        for (mode, kind, status) in [
            (AccessMode::SelfService, ResourceKind::Group, 500),
            (AccessMode::Subscription, ResourceKind::Subscription, 502),
            (AccessMode::Subscription, ResourceKind::Account, 500),
        ] {
            let why = left_reason(&b, mode, kind, &step_failed(kind, status));
            assert!(!why.contains("usage records"), "{why}");
            assert!(why.contains("crm batch rollback b-7"), "{why}");
        }
    }
}
