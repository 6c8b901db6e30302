//! Provider status per host and provider (design brief §3), decided by one
//! pure function from the latest batch, access check and reconcile run.
//!
//! Every face (CLI, API, console, metrics) shows what [`provider_status`]
//! returns; none re-derives it. The inputs carry drift items by category so a
//! new kind of unhealthy evidence (e.g. a low balance reported as `unhealthy`
//! drift) changes the status without changing this function's signature.

use crate::UnknownWord;
use crate::{
    AccessStatus, BatchStatus, DriftCategory, FailureClass, ProviderStatus, ReconcileStatus,
    Verdict,
};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// The provider's latest live batch on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFacts {
    pub status: BatchStatus,
    pub access: AccessStatus,
    pub created_at: DateTime<Utc>,
}

/// The latest access check of that batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckFacts {
    pub checked_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub failure_class: Option<FailureClass>,
}

/// The latest reconcile run that covered that batch (batch, provider or
/// whole-host scope), with only the drift items that concern the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileFacts {
    pub started_at: DateTime<Utc>,
    pub status: ReconcileStatus,
    /// Categories of the drift items of this batch (one per item).
    pub drift: Vec<DriftCategory>,
    /// The host's channel monitor of the batch reported its upstream
    /// failing in this run (a drift item with reason `monitor_failing`).
    pub monitor_failing: bool,
}

/// What the newest funds readings of that batch's accounts say, against the
/// provider's thresholds ([`crate::funds::per_provider`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundsFacts {
    /// Accounts whose newest reading is below a threshold or cannot pay.
    pub accounts_below: usize,
    pub accounts: usize,
}

/// Everything the status is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusEvidence {
    /// `None` when no live batch of the provider exists on the host.
    pub batch: Option<BatchFacts>,
    pub check: Option<CheckFacts>,
    pub reconcile: Option<ReconcileFacts>,
    /// `None` when no reading of the batch's accounts is stored.
    pub funds: Option<FundsFacts>,
}

crate::vocab::vocabulary! {
    /// Why a provider has its status (one word per rule of [`provider_status`]).
    StatusReason: "status reason" {
        NoLiveBatch => "no_live_batch",
        HostUnreachable => "host_unreachable",
        NeverChecked => "never_checked",
        NotReconciled => "not_reconciled",
        ReconcileError => "reconcile_error",
        BatchNotApplied => "batch_not_applied",
        AccessNotConfigured => "access_not_configured",
        AccessBroken => "access_broken",
        FundsLow => "funds_low",
        MonitorFailing => "monitor_failing",
        DriftFound => "drift_found",
        ReadyInSync => "ready_in_sync",
    }
}

impl StatusReason {
    /// One sentence an operator reads next to the status.
    pub fn explain(self) -> &'static str {
        match self {
            StatusReason::NoLiveBatch => "no live batch of this provider on the host",
            StatusReason::HostUnreachable => "the host did not answer the latest check",
            StatusReason::NeverChecked => "access was never checked",
            StatusReason::NotReconciled => "not reconciled since the batch was made",
            StatusReason::ReconcileError => "the latest reconcile run ended in an error",
            StatusReason::BatchNotApplied => "the latest batch is not applied",
            StatusReason::AccessNotConfigured => "access is not configured",
            StatusReason::AccessBroken => "access is broken",
            StatusReason::FundsLow => {
                "an upstream key of the batch is below its funds or quota threshold, or cannot pay"
            }
            StatusReason::MonitorFailing => {
                "the host's own channel monitor reports the upstream failing"
            }
            StatusReason::DriftFound => "the latest reconcile run found drift",
            StatusReason::ReadyInSync => "applied, access ready, last reconcile in sync",
        }
    }
}

/// The status of one provider on one host, and the rule that decided it.
///
/// Rules, first match wins:
/// 1. no live batch → `inactive` (crm's own records settle it, reachable or not);
/// 2. the newest observation (check or reconcile run) found the host
///    unreachable → `unknown`;
/// 3. no access check, no reconcile run since the batch was made (or only
///    one that could not reach the host), or a reconcile run that ended in
///    `error` → `unknown` (never checked);
/// 4. the batch is not `applied`, or access is `not_configured` or `broken`
///    → `inactive` (users cannot rely on it, whatever else is true);
/// 5. the newest reading of an account of the batch is below its provider's
///    threshold or says the key cannot pay → `drifted` (`funds_low`: the
///    readings decide, so the reason names the money, not drift in general);
/// 6. the latest reconcile run saw the host's channel monitor of the batch
///    report its upstream failing → `drifted` (`monitor_failing`: the host's
///    own checks say users fail, whatever the objects look like);
/// 7. the latest reconcile run found drift in the batch → `drifted`;
/// 8. otherwise (applied, ready or degraded, in sync) → `active`.
pub fn provider_status(e: &StatusEvidence) -> (ProviderStatus, StatusReason) {
    use ProviderStatus as S;
    use StatusReason as R;
    let Some(batch) = e.batch else {
        return (S::Inactive, R::NoLiveBatch);
    };
    // A reconcile run older than the batch describes an earlier batch.
    let reconcile = e
        .reconcile
        .as_ref()
        .filter(|r| r.started_at >= batch.created_at);
    let check_unreachable = e.check.map(|c| {
        (
            c.checked_at,
            c.failure_class == Some(FailureClass::HostUnreachable),
        )
    });
    let run_unreachable = reconcile.map(|r| {
        (
            r.started_at,
            r.status == ReconcileStatus::Unreachable || r.drift.contains(&DriftCategory::Unknown),
        )
    });
    let newest_unreachable = match (check_unreachable, run_unreachable) {
        (Some(c), Some(r)) => {
            if c.0 >= r.0 {
                c.1
            } else {
                r.1
            }
        }
        (Some(c), None) => c.1,
        (None, Some(r)) => r.1,
        (None, None) => false,
    };
    if newest_unreachable {
        return (S::Unknown, R::HostUnreachable);
    }
    if e.check.is_none() {
        return (S::Unknown, R::NeverChecked);
    }
    let Some(run) = reconcile else {
        return (S::Unknown, R::NotReconciled);
    };
    match run.status {
        ReconcileStatus::Error => return (S::Unknown, R::ReconcileError),
        // Older than a check that reached the host: that run compared nothing.
        ReconcileStatus::Unreachable => return (S::Unknown, R::NotReconciled),
        ReconcileStatus::InSync | ReconcileStatus::Drifted => {}
    }
    if batch.status != BatchStatus::Applied {
        return (S::Inactive, R::BatchNotApplied);
    }
    match batch.access {
        AccessStatus::NotConfigured => return (S::Inactive, R::AccessNotConfigured),
        AccessStatus::Broken => return (S::Inactive, R::AccessBroken),
        _ => {}
    }
    if e.funds.is_some_and(|f| f.accounts_below > 0) {
        return (S::Drifted, R::FundsLow);
    }
    if run.monitor_failing {
        return (S::Drifted, R::MonitorFailing);
    }
    if !run.drift.is_empty() {
        return (S::Drifted, R::DriftFound);
    }
    (S::Active, R::ReadyInSync)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn batch(status: BatchStatus, access: AccessStatus) -> Option<BatchFacts> {
        Some(BatchFacts {
            status,
            access,
            created_at: at(0),
        })
    }

    fn check(secs: i64, verdict: Verdict, class: Option<FailureClass>) -> Option<CheckFacts> {
        Some(CheckFacts {
            checked_at: at(secs),
            verdict,
            failure_class: class,
        })
    }

    fn run(secs: i64, status: ReconcileStatus, drift: &[DriftCategory]) -> Option<ReconcileFacts> {
        Some(ReconcileFacts {
            started_at: at(secs),
            status,
            drift: drift.to_vec(),
            monitor_failing: false,
        })
    }

    /// An in-sync-but-for-the-monitor run after the check.
    fn failing_monitor(drift: &[DriftCategory]) -> Option<ReconcileFacts> {
        run(50, ReconcileStatus::Drifted, drift).map(|r| ReconcileFacts {
            monitor_failing: true,
            ..r
        })
    }

    fn below(accounts_below: usize, accounts: usize) -> Option<FundsFacts> {
        Some(FundsFacts {
            accounts_below,
            accounts,
        })
    }

    fn pass() -> Option<CheckFacts> {
        check(10, Verdict::Pass, None)
    }

    fn in_sync() -> Option<ReconcileFacts> {
        run(20, ReconcileStatus::InSync, &[])
    }

    use AccessStatus as A;
    use BatchStatus as B;
    use DriftCategory as D;
    use ProviderStatus as S;
    use ReconcileStatus as RS;
    use StatusReason as R;

    #[test]
    fn the_table_of_rules_and_their_precedence() {
        let applied = || batch(B::Applied, A::SelfServiceReady);
        let unreachable_check = check(30, Verdict::Fail, Some(FailureClass::HostUnreachable));
        let cases: Vec<(&str, StatusEvidence, S, R)> = vec![
            (
                "nothing at all",
                StatusEvidence::default(),
                S::Inactive,
                R::NoLiveBatch,
            ),
            (
                "no live batch beats an unreachable host",
                StatusEvidence {
                    batch: None,
                    check: unreachable_check,
                    reconcile: run(40, RS::Unreachable, &[D::Unknown]),
                    ..Default::default()
                },
                S::Inactive,
                R::NoLiveBatch,
            ),
            (
                "the newest check found the host unreachable",
                StatusEvidence {
                    batch: applied(),
                    check: unreachable_check,
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Unknown,
                R::HostUnreachable,
            ),
            (
                "the newest run found the host unreachable, over drift and broken access",
                StatusEvidence {
                    batch: batch(B::Applied, A::Broken),
                    check: pass(),
                    reconcile: run(20, RS::Unreachable, &[D::Unknown]),
                    ..Default::default()
                },
                S::Unknown,
                R::HostUnreachable,
            ),
            (
                "an unknown drift item means the host was not reachable",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[D::Unknown]),
                    ..Default::default()
                },
                S::Unknown,
                R::HostUnreachable,
            ),
            (
                "a later good check outranks an older unreachable run",
                StatusEvidence {
                    batch: applied(),
                    check: check(50, Verdict::Pass, None),
                    reconcile: run(20, RS::Unreachable, &[]),
                    ..Default::default()
                },
                // Reachable again, but that run compared nothing.
                S::Unknown,
                R::NotReconciled,
            ),
            (
                "a later in-sync run outranks an older unreachable check",
                StatusEvidence {
                    batch: applied(),
                    check: check(10, Verdict::Fail, Some(FailureClass::HostUnreachable)),
                    reconcile: run(20, RS::InSync, &[]),
                    ..Default::default()
                },
                S::Active,
                R::ReadyInSync,
            ),
            (
                "never checked",
                StatusEvidence {
                    batch: applied(),
                    check: None,
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Unknown,
                R::NeverChecked,
            ),
            (
                "never reconciled",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: None,
                    ..Default::default()
                },
                S::Unknown,
                R::NotReconciled,
            ),
            (
                "a run older than the batch describes an earlier batch",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(-5, RS::InSync, &[]),
                    ..Default::default()
                },
                S::Unknown,
                R::NotReconciled,
            ),
            (
                "a reconcile error tells nothing",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Error, &[]),
                    ..Default::default()
                },
                S::Unknown,
                R::ReconcileError,
            ),
            (
                "a partially applied batch",
                StatusEvidence {
                    batch: batch(B::PartiallyApplied, A::NotConfigured),
                    check: pass(),
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Inactive,
                R::BatchNotApplied,
            ),
            (
                "a batch that needs an operator, even with drift",
                StatusEvidence {
                    batch: batch(B::NeedsOperator, A::SelfServiceReady),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[D::Missing]),
                    ..Default::default()
                },
                S::Inactive,
                R::BatchNotApplied,
            ),
            (
                "access not configured",
                StatusEvidence {
                    batch: batch(B::Applied, A::NotConfigured),
                    check: pass(),
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Inactive,
                R::AccessNotConfigured,
            ),
            (
                "broken access outranks drift",
                StatusEvidence {
                    batch: batch(B::Applied, A::Broken),
                    check: check(10, Verdict::Fail, Some(FailureClass::UpstreamKeyInvalid)),
                    reconcile: run(20, RS::Drifted, &[D::AccessBroken]),
                    ..Default::default()
                },
                S::Inactive,
                R::AccessBroken,
            ),
            (
                "drift of the batch",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[D::Changed]),
                    ..Default::default()
                },
                S::Drifted,
                R::DriftFound,
            ),
            (
                "unhealthy drift (e.g. a low balance) counts as drift",
                StatusEvidence {
                    batch: batch(B::Applied, A::FullyReady),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[D::Unhealthy]),
                    ..Default::default()
                },
                S::Drifted,
                R::DriftFound,
            ),
            (
                "a key below its threshold, by the readings, while the run is in sync",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: in_sync(),
                    funds: below(1, 3),
                },
                S::Drifted,
                R::FundsLow,
            ),
            (
                "the money is named before other drift",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[D::Unhealthy, D::Changed]),
                    funds: below(1, 1),
                },
                S::Drifted,
                R::FundsLow,
            ),
            (
                "readings above every threshold leave it active",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: in_sync(),
                    funds: below(0, 2),
                },
                S::Active,
                R::ReadyInSync,
            ),
            (
                "a degraded batch whose key cannot pay is not active",
                StatusEvidence {
                    batch: batch(B::Applied, A::Degraded),
                    check: pass(),
                    reconcile: in_sync(),
                    funds: below(1, 1),
                },
                S::Drifted,
                R::FundsLow,
            ),
            (
                "the host's monitor failing in the latest run: drifted, even in sync",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: failing_monitor(&[D::Unhealthy]),
                    ..Default::default()
                },
                S::Drifted,
                R::MonitorFailing,
            ),
            (
                "low funds outrank a failing monitor (the money is the likelier cause)",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: failing_monitor(&[D::Unhealthy, D::Unhealthy]),
                    funds: below(1, 1),
                },
                S::Drifted,
                R::FundsLow,
            ),
            (
                "broken access outranks a failing monitor",
                StatusEvidence {
                    batch: batch(B::Applied, A::Broken),
                    check: pass(),
                    reconcile: failing_monitor(&[D::Unhealthy]),
                    ..Default::default()
                },
                S::Inactive,
                R::AccessBroken,
            ),
            (
                "broken access outranks low funds",
                StatusEvidence {
                    batch: batch(B::Applied, A::Broken),
                    check: pass(),
                    reconcile: in_sync(),
                    funds: below(1, 1),
                },
                S::Inactive,
                R::AccessBroken,
            ),
            (
                "an unreachable host outranks stored readings",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Unreachable, &[D::Unknown]),
                    funds: below(1, 1),
                },
                S::Unknown,
                R::HostUnreachable,
            ),
            (
                "a host-wide run that drifted elsewhere leaves this batch in sync",
                StatusEvidence {
                    batch: applied(),
                    check: pass(),
                    reconcile: run(20, RS::Drifted, &[]),
                    ..Default::default()
                },
                S::Active,
                R::ReadyInSync,
            ),
            (
                "degraded access is still active",
                StatusEvidence {
                    batch: batch(B::Applied, A::Degraded),
                    check: check(
                        10,
                        Verdict::PassWithAdvisories,
                        Some(FailureClass::TransientRateLimited),
                    ),
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Active,
                R::ReadyInSync,
            ),
            (
                "subscription ready, in sync",
                StatusEvidence {
                    batch: batch(B::Applied, A::SubscriptionReady),
                    check: pass(),
                    reconcile: in_sync(),
                    ..Default::default()
                },
                S::Active,
                R::ReadyInSync,
            ),
        ];
        for (name, evidence, status, reason) in cases {
            assert_eq!(provider_status(&evidence), (status, reason), "{name}");
        }
    }

    #[test]
    fn every_reason_has_a_sentence_and_its_word_round_trips() {
        for r in StatusReason::ALL {
            assert!(!r.explain().is_empty());
            assert_eq!(r.as_str().parse::<StatusReason>().unwrap(), *r);
        }
    }
}
