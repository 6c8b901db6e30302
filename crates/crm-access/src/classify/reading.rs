//! The readings and the diagnosis: what one gateway step, one upstream
//! call or one whole check concluded.

use crm_domain::{FailureClass, Verdict};

/// What a check concluded: the verdict, the class of the failure (or of the
/// advisory) and an operator-facing sentence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub failure_class: Option<FailureClass>,
    pub summary: String,
}

impl Diagnosis {
    pub fn pass(summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::Pass,
            failure_class: None,
            summary: summary.into(),
        }
    }
    pub fn advisory(class: FailureClass, summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::PassWithAdvisories,
            failure_class: Some(class),
            summary: summary.into(),
        }
    }
    pub fn fail(class: FailureClass, summary: impl Into<String>) -> Self {
        Diagnosis {
            verdict: Verdict::Fail,
            failure_class: Some(class),
            summary: summary.into(),
        }
    }
}

/// Which gateway call an outcome belongs to (for the wording of summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayStep {
    Models,
    Chat,
    /// `POST /v1/messages`, the completion route of hosts without chat completions.
    Messages,
}

impl GatewayStep {
    pub(super) fn route(self) -> &'static str {
        match self {
            GatewayStep::Models => "GET /v1/models",
            GatewayStep::Chat => "POST /v1/chat/completions",
            GatewayStep::Messages => "POST /v1/messages",
        }
    }
}

/// Why the host's answer sends us to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamSuspicion {
    /// `upstream_error` (502/503): the host's failover ran out of accounts.
    UpstreamError,
    /// A handler `rate_limit_error` 429: a rate limit, or a quota that an
    /// upstream reports as a 429.
    RateLimit,
    /// `api_error` "No available accounts": every account of the group is
    /// unschedulable (errored, cooling down or missing).
    NoAvailableAccounts,
    /// An error the host produced for our minimal request (a 400, an error
    /// object inside a 200, an unknown 5xx).
    Unexplained,
}

/// The reading of one gateway step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "reading", rename_all = "snake_case")]
pub enum GatewayReading {
    Ok,
    /// Final, no upstream probe needed.
    Final(Diagnosis),
    /// Probe the upstream directly before deciding.
    AskUpstream {
        suspicion: UpstreamSuspicion,
        /// What the host said, for the summary.
        host_said: String,
    },
}

/// What a direct upstream call (or an account probe) says about the upstream key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "reading", rename_all = "snake_case")]
pub enum UpstreamReading {
    // Declared from least to most telling: `worst` keeps the later one.
    /// No answer at all (crm may not reach the provider even if the host can).
    Unreachable {
        detail: String,
    },
    /// The provider answered and the call worked.
    Answers,
    /// An error that says nothing about the key.
    Other {
        status: u16,
        said: String,
    },
    RateLimited {
        said: String,
    },
    ServerError {
        status: u16,
        said: String,
    },
    ModelUnknown {
        said: String,
    },
    Quota {
        said: String,
    },
    KeyInvalid {
        said: String,
    },
}

impl UpstreamReading {
    /// The more telling of two readings of the same key.
    pub fn worst(self, other: UpstreamReading) -> UpstreamReading {
        self.max(other)
    }

    pub(super) fn is_conclusive(&self) -> bool {
        !matches!(
            self,
            UpstreamReading::Unreachable { .. } | UpstreamReading::Other { .. }
        )
    }
}

/// The hint every "look again later" ends with.
pub(super) const RECHECK: &str = "re-check with `crm provider access <provider> --host <host>`";
