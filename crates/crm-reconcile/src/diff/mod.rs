//! The pure diff: recorded desired state against one observation of a host.
//!
//! `diff` is a function from data to data. It never looks at a secret (it has
//! none: observed accounts carry `has_api_key`, not keys) and never reports an
//! object as crm's unless the object carries crm's marker, or, for kinds the
//! host keeps no notes for, crm's deterministic name.
//!
//! Rules, in the words of docs/design.md §3:
//! - `missing`: a live managed resource whose host id is not in the snapshot.
//! - `changed`: a live managed resource whose observed fields differ from the
//!   fields its desired spec states (see [`crate::desired`]); each differing
//!   field is a [`FieldChange`](crm_domain::plan::FieldChange) from the observed value to the desired one.
//! - `duplicate`: an active account with the same natural key (name, platform,
//!   base URL; crm's names embed the key fingerprint) as a recorded account, or
//!   an unrecorded crm account of the same provider bound to a recorded group.
//! - `unmanaged_leftover`: an object whose marker names a batch that is not
//!   live (or, without notes, carries crm's name and is recorded by no live batch).
//! - `unhealthy`: a recorded account with `status=error`, temporarily
//!   unschedulable, or not schedulable.
//! - `access_broken`: a supplied access re-check that failed.
//! - `unknown`: produced only by [`unreachable()`], when the host cannot be read.
//!
//! The checks are split per kind of host object, over one shared context:
//! `recorded` (the inputs and the run's scope), `identity` (whether an
//! observed account counts for duplicates), `platform` (a recorded route this host
//! cannot serve), `cx` (the context every check writes its items into),
//! `fields` (field comparisons), then one module a kind: `accounts`,
//! `groups`, `channels`, `access` (users, gateway keys, subscriptions and
//! access re-checks) and `leftovers` (objects no live batch accounts for).

mod access;
mod accounts;
mod channels;
mod cx;
mod fields;
mod groups;
mod identity;
mod leftovers;
mod monitors;
mod platform;
mod recorded;

pub use fields::pricing_key;
pub use identity::is_active_account;
pub use platform::platform_migration;
pub use recorded::{Recorded, RecordedBatch, scope_contains};

use crm_domain::batch::ManagedResource;
use crm_domain::host::Capabilities;
use crm_domain::observed::HostSnapshot;
use crm_domain::reconcile::DriftItem;
use crm_domain::{DriftCategory, ReconcileStatus, ResourceKind, ResourceState};
use cx::Cx;

/// The status a set of items amounts to.
pub fn status_of(items: &[DriftItem]) -> ReconcileStatus {
    if items.iter().any(|i| i.category == DriftCategory::Unknown) {
        ReconcileStatus::Unreachable
    } else if items.is_empty() {
        ReconcileStatus::InSync
    } else {
        ReconcileStatus::Drifted
    }
}

/// Items for a host that could not be observed: one `unknown` per in-scope
/// live resource, nothing else. Nothing about the host is guessed.
pub fn unreachable(recorded: &Recorded, reason: &str) -> Vec<DriftItem> {
    let mut items: Vec<DriftItem> = recorded
        .scoped()
        .flat_map(|rb| {
            rb.resources
                .iter()
                .filter(|r| r.state == ResourceState::Live)
                .map(|r| DriftItem {
                    category: DriftCategory::Unknown,
                    reason: None,
                    kind: r.kind,
                    name: r.name.clone(),
                    host_object_id: Some(r.host_object_id),
                    batch_id: Some(rb.batch.id.clone()),
                    fields: vec![],
                    detail: format!("state unknown: {reason}"),
                })
        })
        .collect();
    sort_items(&mut items);
    items
}

/// Compares recorded desired state with one observation of the host.
pub fn diff(recorded: &Recorded, observed: &HostSnapshot, caps: &Capabilities) -> Vec<DriftItem> {
    let mut cx = Cx::new(recorded, observed, caps);
    for rb in recorded.scoped() {
        for r in rb
            .resources
            .iter()
            .filter(|r| r.state == ResourceState::Live)
        {
            cx.check_resource(rb, r);
        }
    }
    for rb in recorded.scoped() {
        cx.group_duplicates(rb);
    }
    cx.leftovers();
    cx.access();
    let mut items = cx.items;
    sort_items(&mut items);
    items
}

/// Deterministic order: by category, then import order of kinds, then name.
pub fn sort_items(items: &mut [DriftItem]) {
    items.sort_by(|a, b| {
        (
            a.category,
            a.kind.apply_rank(),
            &a.name,
            a.host_object_id,
            &a.batch_id,
            &a.detail,
        )
            .cmp(&(
                b.category,
                b.kind.apply_rank(),
                &b.name,
                b.host_object_id,
                &b.batch_id,
                &b.detail,
            ))
    });
}

impl Cx<'_> {
    fn check_resource(&mut self, rb: &RecordedBatch, r: &ManagedResource) {
        match r.kind {
            ResourceKind::Account => self.check_account(rb, r),
            ResourceKind::Group => self.check_group(rb, r),
            ResourceKind::Channel => self.check_channel(rb, r),
            ResourceKind::User => self.check_user(r),
            ResourceKind::UserApiKey => self.check_api_key(r),
            ResourceKind::Subscription => self.check_subscription(r),
            ResourceKind::Monitor => self.check_monitor(r),
            // A balance grant is an event, not an object the host lists.
            ResourceKind::BalanceGrant => {}
        }
    }
}

#[cfg(test)]
mod tests;
