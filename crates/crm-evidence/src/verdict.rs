//! Verdict rules: how each step's outcome becomes a step verdict, and how
//! the steps become the run's verdict and failure class.
//!
//! Pure functions over data, so the rules in `docs/acceptance.md` are
//! tested here without a host:
//!
//! - A run's verdict is the worst verdict of the steps that ran
//!   (`fail` > `pass_with_advisories` > `pass`); skipped steps do not count,
//!   but a run where no step ran is a `fail`.
//! - On `fail`, the failure class is the access check's (07) when it failed
//!   with one, else the class of the first failing step in chain order.
//! - A host error maps to a class where docs/design.md §3 has one (unreachable,
//!   authentication, missing route, rate limiting).

use crm_domain::ports::HostError;
use crm_domain::{FailureClass, Verdict};

/// A step's verdict: a [`Verdict`], or `skipped` when the step did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    Pass,
    PassWithAdvisories,
    Fail,
    Skipped,
}

impl StepVerdict {
    pub fn ran(self) -> Option<Verdict> {
        match self {
            StepVerdict::Pass => Some(Verdict::Pass),
            StepVerdict::PassWithAdvisories => Some(Verdict::PassWithAdvisories),
            StepVerdict::Fail => Some(Verdict::Fail),
            StepVerdict::Skipped => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepVerdict::Skipped => "skipped",
            other => other.ran().map(Verdict::as_str).unwrap_or("skipped"),
        }
    }
}

impl From<Verdict> for StepVerdict {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass => StepVerdict::Pass,
            Verdict::PassWithAdvisories => StepVerdict::PassWithAdvisories,
            Verdict::Fail => StepVerdict::Fail,
        }
    }
}

impl std::fmt::Display for StepVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::PassWithAdvisories => 1,
        Verdict::Fail => 2,
    }
}

/// The worse of two verdicts.
pub fn worst(a: Verdict, b: Verdict) -> Verdict {
    if rank(b) > rank(a) { b } else { a }
}

/// The worst of several verdicts; `None` for none.
pub fn worst_of(vs: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
    vs.into_iter().reduce(worst)
}

/// What the overall rule needs to know about one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The evidence file number (01, 02, ...), i.e. chain order.
    pub number: u8,
    pub verdict: StepVerdict,
    pub failure_class: Option<FailureClass>,
    /// Whether this is the access check, whose class is the run's class.
    pub is_access_check: bool,
}

/// The run's verdict and failure class.
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    pub verdict: Verdict,
    /// Set when the verdict is `fail` and a step named a class.
    pub failure_class: Option<FailureClass>,
    /// Numbers of the failing steps, in chain order.
    pub failing_steps: Vec<u8>,
    /// Classes of advisories (steps that passed with advisories), deduplicated.
    pub advisories: Vec<FailureClass>,
}

/// Combines step outcomes into the run's verdict (see the module doc).
pub fn overall(steps: &[StepOutcome]) -> Overall {
    let mut ordered: Vec<&StepOutcome> = steps.iter().collect();
    ordered.sort_by_key(|s| s.number);
    let verdict = worst_of(ordered.iter().filter_map(|s| s.verdict.ran())).unwrap_or(Verdict::Fail);
    let failing: Vec<&StepOutcome> = ordered
        .iter()
        .copied()
        .filter(|s| s.verdict == StepVerdict::Fail)
        .collect();
    let failure_class = if verdict == Verdict::Fail {
        failing
            .iter()
            .find(|s| s.is_access_check && s.failure_class.is_some())
            .or_else(|| failing.iter().find(|s| s.failure_class.is_some()))
            .and_then(|s| s.failure_class)
    } else {
        None
    };
    let mut advisories = Vec::new();
    for s in &ordered {
        if s.verdict == StepVerdict::PassWithAdvisories
            && let Some(c) = s.failure_class
            && !advisories.contains(&c)
        {
            advisories.push(c);
        }
    }
    Overall {
        verdict,
        failure_class,
        failing_steps: failing.iter().map(|s| s.number).collect(),
        advisories,
    }
}

/// The failure class a host error points to, where docs/design.md §3 has one.
pub fn class_of_host_error(e: &HostError) -> Option<FailureClass> {
    match e {
        HostError::Unreachable { .. } | HostError::Timeout { .. } => {
            Some(FailureClass::HostUnreachable)
        }
        HostError::Unauthorized { .. }
        | HostError::Forbidden { .. }
        | HostError::ComplianceGate { .. } => Some(FailureClass::AuthIssue),
        HostError::RouteMissing { .. } => Some(FailureClass::RouteMissing),
        HostError::RateLimited { .. } => Some(FailureClass::TransientRateLimited),
        HostError::NotFound { .. }
        | HostError::Conflict { .. }
        | HostError::Validation { .. }
        | HostError::Unavailable { .. }
        | HostError::Decode { .. } => None,
    }
}

/// The failure class behind an application error, if a host caused it.
pub fn class_of_error(e: &crm_app::AppError) -> Option<FailureClass> {
    e.host_error().and_then(class_of_host_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(number: u8, verdict: StepVerdict, class: Option<FailureClass>) -> StepOutcome {
        StepOutcome {
            number,
            verdict,
            failure_class: class,
            is_access_check: number == 7,
        }
    }

    #[test]
    fn the_worst_step_decides_and_skipped_steps_do_not_count() {
        let o = overall(&[
            step(1, StepVerdict::Pass, None),
            step(
                7,
                StepVerdict::PassWithAdvisories,
                Some(FailureClass::TransientRateLimited),
            ),
            step(11, StepVerdict::Skipped, None),
        ]);
        assert_eq!(o.verdict, Verdict::PassWithAdvisories);
        assert_eq!(o.failure_class, None);
        assert_eq!(o.advisories, vec![FailureClass::TransientRateLimited]);
        assert_eq!(
            overall(&[step(1, StepVerdict::Skipped, None)]).verdict,
            Verdict::Fail
        );
        assert_eq!(overall(&[]).verdict, Verdict::Fail);
    }

    #[test]
    fn the_access_checks_class_wins_over_earlier_failures() {
        let o = overall(&[
            step(
                19,
                StepVerdict::Fail,
                Some(FailureClass::UpstreamKeyQuotaIssue),
            ),
            step(3, StepVerdict::Fail, None),
            step(7, StepVerdict::Fail, Some(FailureClass::RouteMissing)),
        ]);
        assert_eq!(o.verdict, Verdict::Fail);
        assert_eq!(o.failure_class, Some(FailureClass::RouteMissing));
        assert_eq!(o.failing_steps, vec![3, 7, 19]);

        let o = overall(&[
            step(1, StepVerdict::Fail, Some(FailureClass::HostUnreachable)),
            step(
                19,
                StepVerdict::Fail,
                Some(FailureClass::UpstreamKeyInvalid),
            ),
        ]);
        assert_eq!(o.failure_class, Some(FailureClass::HostUnreachable));
    }

    #[test]
    fn host_errors_map_to_the_briefs_classes() {
        let unreachable = HostError::Unreachable {
            detail: "refused".into(),
        };
        assert_eq!(
            class_of_error(&crm_app::AppError::Host(unreachable)),
            Some(FailureClass::HostUnreachable)
        );
        assert_eq!(
            class_of_host_error(&HostError::ComplianceGate { document_url: None }),
            Some(FailureClass::AuthIssue)
        );
        assert_eq!(
            class_of_host_error(&HostError::Validation {
                message: "x".into()
            }),
            None
        );
    }
}
