//! The per-batch access status (docs/design.md §3 "Access status") and the
//! routine that keeps it in sync on the batch records.
//!
//! The status is a function of stored facts: whether the batch has a live
//! closure, its latest access check, and the statuses of the batches of the
//! other mode for the same (host, provider). It is recomputed, never edited
//! by hand, whenever a closure, a subscription or a check changes.

use crate::Result;
use crm_domain::access::AccessCheck;
use crm_domain::batch::{BatchFilter, ImportBatch, ManagedResource};
use crm_domain::funds::{FundsReading, cannot_pay};
use crm_domain::ports::{AccessCheckRepo, BatchRepo, FundsRepo};
use crm_domain::{
    AccessMode, AccessStatus, BatchId, BatchStatus, ResourceKind, ResourceState, Verdict,
};

/// Step name of the check that a rolled-back batch's key is refused. Such
/// checks say nothing about access and are ignored by the status.
pub const REVOKED_KEY_STEP: &str = "revoked_key_refused";

/// Whether a check is an access check (as opposed to a post-rollback check).
pub fn is_access_check(check: &AccessCheck) -> bool {
    !check.steps.iter().any(|s| s.name == REVOKED_KEY_STEP)
}

/// The latest access check of a batch, if any.
pub fn latest_access_check(checks: &[AccessCheck]) -> Option<&AccessCheck> {
    checks
        .iter()
        .filter(|c| is_access_check(c))
        .max_by_key(|c| c.checked_at)
}

/// Whether the batch's closure exists: a live user key is its last object.
pub fn is_closed(resources: &[ManagedResource]) -> bool {
    resources
        .iter()
        .any(|r| r.kind == ResourceKind::UserApiKey && r.state == ResourceState::Live)
}

/// The status of one batch on its own (before `fully_ready` is considered).
pub fn batch_access_status(
    batch_status: BatchStatus,
    mode: AccessMode,
    closed: bool,
    latest: Option<&AccessCheck>,
) -> AccessStatus {
    if !closed || matches!(batch_status, BatchStatus::RolledBack | BatchStatus::Planned) {
        return AccessStatus::NotConfigured;
    }
    match latest.map(|c| c.verdict) {
        None => AccessStatus::NotConfigured,
        Some(Verdict::Pass) => match mode {
            AccessMode::SelfService => AccessStatus::SelfServiceReady,
            AccessMode::Subscription => AccessStatus::SubscriptionReady,
        },
        Some(Verdict::PassWithAdvisories) => AccessStatus::Degraded,
        Some(Verdict::Fail) => AccessStatus::Broken,
    }
}

/// A batch's own status with what its funds readings say: a ready batch
/// whose newest reading says a key cannot pay at all is `degraded` (the
/// advisory `upstream_key_quota_issue`, [`crm_domain::funds::cannot_pay`];
/// issue 20 item 2). A key that is merely below a threshold still pays and
/// leaves access alone; not configured or broken access stays as it is.
pub fn with_funds(status: AccessStatus, cannot_pay: bool) -> AccessStatus {
    match status {
        AccessStatus::SelfServiceReady | AccessStatus::SubscriptionReady if cannot_pay => {
            AccessStatus::Degraded
        }
        other => other,
    }
}

/// One batch's own status, as input to [`combine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeStatus {
    pub batch: BatchId,
    pub mode: AccessMode,
    pub status: AccessStatus,
}

/// Statuses of the batches of one (host, provider): when both modes have a
/// ready batch, every ready batch becomes `fully_ready`.
pub fn combine(statuses: &[ModeStatus]) -> Vec<(BatchId, AccessStatus)> {
    let ready = |mode: AccessMode, want: AccessStatus| {
        statuses.iter().any(|s| s.mode == mode && s.status == want)
    };
    let both = ready(AccessMode::SelfService, AccessStatus::SelfServiceReady)
        && ready(AccessMode::Subscription, AccessStatus::SubscriptionReady);
    statuses
        .iter()
        .map(|s| {
            let status = match s.status {
                AccessStatus::SelfServiceReady | AccessStatus::SubscriptionReady if both => {
                    AccessStatus::FullyReady
                }
                other => other,
            };
            (s.batch.clone(), status)
        })
        .collect()
}

/// Recomputes the access status of `batch` and of every other batch of the
/// same (host, provider), and stores the ones that changed. Returns the
/// statuses of all of them. Called whenever a closure or a check changes,
/// and after a reconcile run stores funds readings.
pub async fn sync_access_status(
    batches: &dyn BatchRepo,
    checks: &dyn AccessCheckRepo,
    funds: &dyn FundsRepo,
    batch: &BatchId,
) -> Result<Vec<(BatchId, AccessStatus)>> {
    let this = batches.get_batch(batch).await?;
    let readings = funds.latest_readings(&this.host_id).await?;
    let siblings = batches
        .list_batches(BatchFilter {
            host_id: Some(this.host_id.clone()),
            provider: Some(this.provider.clone()),
            status: None,
            limit: None,
        })
        .await?;
    let mut all: Vec<ImportBatch> = siblings;
    if !all.iter().any(|b| b.id == this.id) {
        all.push(this);
    }
    let mut own = Vec::with_capacity(all.len());
    for b in &all {
        let resources = batches.resources(&b.id).await?;
        let stored = checks.access_checks(&b.id).await?;
        own.push(ModeStatus {
            batch: b.id.clone(),
            mode: b.mode,
            status: with_funds(
                batch_access_status(
                    b.status,
                    b.mode,
                    is_closed(&resources),
                    latest_access_check(&stored),
                ),
                !cannot_pay(&batch_readings(&readings, &b.id)).is_empty(),
            ),
        });
    }
    let combined = combine(&own);
    for (id, status) in &combined {
        let before = all.iter().find(|b| &b.id == id).map(|b| b.access_status);
        if before != Some(*status) {
            tracing::info!(batch = %id, from = ?before.map(|s| s.as_str()), to = %status, "access status changed");
            batches.set_access_status(id, *status).await?;
        }
    }
    Ok(combined)
}

/// The readings of one batch's accounts.
fn batch_readings(readings: &[FundsReading], batch: &BatchId) -> Vec<FundsReading> {
    readings
        .iter()
        .filter(|r| r.batch_id.as_ref() == Some(batch))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::AccessCheckId;
    use crm_domain::access::CheckStep;

    fn check(verdict: Verdict, at: i64, step: &str) -> AccessCheck {
        AccessCheck {
            id: AccessCheckId::new(format!("ac-{at}")),
            batch_id: BatchId::new("b-1"),
            mode: AccessMode::SelfService,
            checked_at: chrono::DateTime::from_timestamp(at, 0).unwrap(),
            verdict,
            failure_class: None,
            summary: String::new(),
            steps: vec![CheckStep {
                name: step.to_owned(),
                verdict,
                status: None,
                latency_ms: 0,
                detail: serde_json::Value::Null,
            }],
        }
    }

    #[test]
    fn own_status_follows_the_latest_access_check() {
        use AccessStatus::*;
        let pass = check(Verdict::Pass, 1, "gateway_chat");
        let adv = check(Verdict::PassWithAdvisories, 1, "gateway_chat");
        let fail = check(Verdict::Fail, 1, "gateway_chat");
        let rows: &[(
            BatchStatus,
            AccessMode,
            bool,
            Option<&AccessCheck>,
            AccessStatus,
        )] = &[
            (
                BatchStatus::Applied,
                AccessMode::SelfService,
                false,
                None,
                NotConfigured,
            ),
            (
                BatchStatus::Applied,
                AccessMode::SelfService,
                false,
                Some(&pass),
                NotConfigured,
            ),
            (
                BatchStatus::Applied,
                AccessMode::SelfService,
                true,
                None,
                NotConfigured,
            ),
            (
                BatchStatus::Applied,
                AccessMode::SelfService,
                true,
                Some(&pass),
                SelfServiceReady,
            ),
            (
                BatchStatus::Applied,
                AccessMode::Subscription,
                true,
                Some(&pass),
                SubscriptionReady,
            ),
            (
                BatchStatus::Applied,
                AccessMode::Subscription,
                true,
                Some(&adv),
                Degraded,
            ),
            (
                BatchStatus::PartiallyApplied,
                AccessMode::SelfService,
                true,
                Some(&fail),
                Broken,
            ),
            (
                BatchStatus::RolledBack,
                AccessMode::SelfService,
                true,
                Some(&pass),
                NotConfigured,
            ),
            (
                BatchStatus::Planned,
                AccessMode::SelfService,
                true,
                Some(&pass),
                NotConfigured,
            ),
        ];
        for (bs, mode, closed, latest, want) in rows {
            assert_eq!(
                batch_access_status(*bs, *mode, *closed, *latest),
                *want,
                "{bs} {mode} closed={closed} latest={:?}",
                latest.map(|c| c.verdict)
            );
        }
    }

    #[test]
    fn latest_ignores_revoked_key_checks() {
        let checks = vec![
            check(Verdict::Pass, 1, "gateway_chat"),
            check(Verdict::Fail, 3, REVOKED_KEY_STEP),
            check(Verdict::Fail, 2, "gateway_models"),
        ];
        assert_eq!(latest_access_check(&checks).unwrap().id.as_str(), "ac-2");
        assert!(latest_access_check(&checks[1..2]).is_none());
    }

    #[test]
    fn fully_ready_needs_both_modes_ready() {
        use AccessStatus::*;
        let ms = |b: &str, mode, status| ModeStatus {
            batch: BatchId::new(b),
            mode,
            status,
        };
        let both = combine(&[
            ms("a", AccessMode::SelfService, SelfServiceReady),
            ms("b", AccessMode::Subscription, SubscriptionReady),
        ]);
        assert_eq!(
            both,
            vec![
                (BatchId::new("a"), FullyReady),
                (BatchId::new("b"), FullyReady)
            ]
        );
        let one_degraded = combine(&[
            ms("a", AccessMode::SelfService, SelfServiceReady),
            ms("b", AccessMode::Subscription, Degraded),
        ]);
        assert_eq!(one_degraded[0].1, SelfServiceReady);
        assert_eq!(one_degraded[1].1, Degraded);
        let same_mode = combine(&[
            ms("a", AccessMode::SelfService, SelfServiceReady),
            ms("c", AccessMode::SelfService, SelfServiceReady),
        ]);
        assert!(same_mode.iter().all(|(_, s)| *s == SelfServiceReady));
        let with_broken_third = combine(&[
            ms("a", AccessMode::SelfService, SelfServiceReady),
            ms("b", AccessMode::Subscription, SubscriptionReady),
            ms("c", AccessMode::SelfService, Broken),
        ]);
        assert_eq!(with_broken_third[2].1, Broken);
        assert_eq!(with_broken_third[0].1, FullyReady);
    }

    #[test]
    fn a_key_that_cannot_pay_degrades_only_ready_access() {
        use AccessStatus::*;
        for (status, cannot_pay, want) in [
            (SelfServiceReady, true, Degraded),
            (SubscriptionReady, true, Degraded),
            (SelfServiceReady, false, SelfServiceReady),
            (SubscriptionReady, false, SubscriptionReady),
            (Degraded, true, Degraded),
            (Degraded, false, Degraded),
            (Broken, true, Broken),
            (NotConfigured, true, NotConfigured),
        ] {
            assert_eq!(
                with_funds(status, cannot_pay),
                want,
                "{status} {cannot_pay}"
            );
        }
        // A degraded batch is not ready, so it makes no one fully ready.
        let ms = |b: &str, mode, status| ModeStatus {
            batch: BatchId::new(b),
            mode,
            status,
        };
        let mixed = combine(&[
            ms(
                "a",
                AccessMode::SelfService,
                with_funds(SelfServiceReady, true),
            ),
            ms("b", AccessMode::Subscription, SubscriptionReady),
        ]);
        assert_eq!(mixed[0].1, Degraded);
        assert_eq!(mixed[1].1, SubscriptionReady);
    }
}
