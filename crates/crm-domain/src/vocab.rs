//! The controlled vocabularies of the docs/design.md §3.
//!
//! Every enum serializes to, displays as and parses from exactly docs/design.md's
//! word, so the store, the API, the CLI and snapshots all agree.

use std::fmt;
use std::str::FromStr;

/// A word that is not part of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} '{value}'; expected one of: {expected}")]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident : $label:literal { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every word of this vocabulary, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word of docs/design.md §3 for this value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownWord {
                        vocabulary: $label,
                        value: s.to_owned(),
                        expected: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Lets other domain modules declare a word list the same way.
pub(crate) use vocabulary;

vocabulary! {
    /// What a plan intends to do with one resource.
    PlanAction: "plan action" {
        Create => "create",
        Update => "update",
        Adopt => "adopt",
        NoOp => "no-op",
        Delete => "delete",
        Blocked => "blocked",
    }
}

vocabulary! {
    /// Lifecycle of an import batch.
    BatchStatus: "batch status" {
        Planned => "planned",
        Applying => "applying",
        Applied => "applied",
        PartiallyApplied => "partially_applied",
        Failed => "failed",
        RollingBack => "rolling_back",
        RolledBack => "rolled_back",
        RollbackIncomplete => "rollback_incomplete",
        NeedsOperator => "needs_operator",
    }
}

impl BatchStatus {
    /// A batch in one of these states still owns live objects on its host
    /// (or may own them), so reconcile treats its resources as desired state.
    pub fn is_live(self) -> bool {
        !matches!(self, BatchStatus::RolledBack | BatchStatus::Planned)
    }

    /// Whether `resume` has work to do for a batch in this state.
    pub fn is_resumable(self) -> bool {
        matches!(
            self,
            BatchStatus::Applying
                | BatchStatus::PartiallyApplied
                | BatchStatus::Failed
                | BatchStatus::NeedsOperator
        )
    }
}

vocabulary! {
    /// Whether ordinary users can call a provider through a batch.
    AccessStatus: "access status" {
        NotConfigured => "not_configured",
        SelfServiceReady => "self_service_ready",
        SubscriptionReady => "subscription_ready",
        FullyReady => "fully_ready",
        Degraded => "degraded",
        Broken => "broken",
    }
}

impl AccessStatus {
    /// Ready in at least one mode (advisories included).
    pub fn is_ready(self) -> bool {
        matches!(
            self,
            AccessStatus::SelfServiceReady
                | AccessStatus::SubscriptionReady
                | AccessStatus::FullyReady
                | AccessStatus::Degraded
        )
    }
}

vocabulary! {
    /// Status of a provider on one host.
    ProviderStatus: "provider status" {
        Active => "active",
        Inactive => "inactive",
        Drifted => "drifted",
        Unknown => "unknown",
    }
}

vocabulary! {
    /// Why an access check failed.
    FailureClass: "failure class" {
        AuthIssue => "auth_issue",
        BillingGate => "billing_gate",
        ModelNotExposed => "model_not_exposed",
        UpstreamKeyQuotaIssue => "upstream_key_quota_issue",
        UpstreamKeyInvalid => "upstream_key_invalid",
        HostCompatibilityGap => "host_compatibility_gap",
        TransientRateLimited => "transient_rate_limited",
        HostUnreachable => "host_unreachable",
        RouteMissing => "route_missing",
        /// The upstream itself fails (5xx, 529, overloaded): a provider
        /// outage, not a rate limit (`transient_rate_limited` is 429 only).
        UpstreamUnavailable => "upstream_unavailable",
    }
}

vocabulary! {
    /// What kind of difference a reconcile run found.
    DriftCategory: "drift category" {
        Missing => "missing",
        Changed => "changed",
        Duplicate => "duplicate",
        UnmanagedLeftover => "unmanaged_leftover",
        Unhealthy => "unhealthy",
        AccessBroken => "access_broken",
        Unknown => "unknown",
    }
}

vocabulary! {
    /// Outcome of one reconcile run.
    ReconcileStatus: "reconcile status" {
        InSync => "in_sync",
        Drifted => "drifted",
        Unreachable => "unreachable",
        Error => "error",
    }
}

vocabulary! {
    /// How ordinary users reach a provider on a host.
    AccessMode: "access mode" {
        SelfService => "self_service",
        Subscription => "subscription",
    }
}

vocabulary! {
    /// Kinds of host objects crm creates or adopts.
    ResourceKind: "resource kind" {
        Account => "account",
        Group => "group",
        Channel => "channel",
        User => "user",
        UserApiKey => "user_api_key",
        Subscription => "subscription",
        BalanceGrant => "balance_grant",
        /// A host-side channel monitor watching the provider's upstream
        /// (newer hosts, `Capabilities::channel_monitors`).
        Monitor => "monitor",
    }
}

impl ResourceKind {
    /// Position in the import order of docs/design.md §4 step 4. Rollback walks
    /// it backwards. Closure objects come last on import and go first on
    /// rollback. The monitor comes after the accounts it watches the
    /// upstream of, and goes before them.
    pub fn apply_rank(self) -> u8 {
        match self {
            ResourceKind::Account => 0,
            ResourceKind::Group => 1,
            ResourceKind::Channel => 2,
            ResourceKind::Monitor => 3,
            ResourceKind::User => 4,
            ResourceKind::BalanceGrant => 5,
            ResourceKind::Subscription => 6,
            ResourceKind::UserApiKey => 7,
        }
    }
}

vocabulary! {
    /// State of one write-ahead journal entry.
    JournalState: "journal state" {
        /// Committed before the host call; the outcome is not known yet.
        Pending => "pending",
        /// The host confirmed the mutation; `host_object_id` is set for creates.
        Applied => "applied",
        /// The host refused the mutation; nothing changed remotely.
        Failed => "failed",
        /// Recovery found several candidate objects, or could not tell; a
        /// human must decide.
        NeedsOperator => "needs_operator",
        /// Recovery proved the intent never took effect and it will not be retried.
        Abandoned => "abandoned",
    }
}

vocabulary! {
    /// The mutation a journal entry records.
    JournalOp: "journal operation" {
        Create => "create",
        Adopt => "adopt",
        Update => "update",
        Bind => "bind",
        Delete => "delete",
        Disable => "disable",
        RotateKey => "rotate_key",
        GrantBalance => "grant_balance",
    }
}

vocabulary! {
    /// Whether a managed resource still exists on its host as far as crm knows.
    ResourceState: "resource state" {
        Live => "live",
        Disabled => "disabled",
        Deleted => "deleted",
    }
}

vocabulary! {
    /// Long-running request kinds.
    OperationKind: "operation kind" {
        Import => "import",
        Resume => "resume",
        Rollback => "rollback",
        Reconcile => "reconcile",
        AccessCheck => "access_check",
        AssignSubscriptions => "assign_subscriptions",
        RotateKey => "rotate_key",
        Probe => "probe",
    }
}

vocabulary! {
    /// Status of an operation.
    OperationStatus: "operation status" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Interrupted => "interrupted",
    }
}

vocabulary! {
    /// Account mode of a provider's upstream keys (sub2api `account_mode`).
    AccountMode: "account mode" {
        Payg => "payg",
        Coding => "coding",
        TokenPlan => "token_plan",
    }
}

vocabulary! {
    /// Currencies a pack may price in.
    Currency: "currency" {
        Cny => "CNY",
        Usd => "USD",
    }
}

vocabulary! {
    /// Units a pack price is quoted in.
    PriceUnit: "price unit" {
        PerMillionTokens => "per_million_tokens",
        PerThousandTokens => "per_thousand_tokens",
        PerToken => "per_token",
    }
}

impl PriceUnit {
    /// How many tokens one quoted unit covers.
    pub fn tokens(self) -> f64 {
        match self {
            PriceUnit::PerMillionTokens => 1_000_000.0,
            PriceUnit::PerThousandTokens => 1_000.0,
            PriceUnit::PerToken => 1.0,
        }
    }
}

vocabulary! {
    /// sub2api group billing type.
    GroupBilling: "group billing type" {
        Standard => "standard",
        Subscription => "subscription",
    }
}

vocabulary! {
    /// Verdict of an access check, an acceptance step or a whole run.
    Verdict: "verdict" {
        Pass => "pass",
        PassWithAdvisories => "pass_with_advisories",
        Fail => "fail",
    }
}

vocabulary! {
    /// Where a funds reading came from: the host's cn-providers routes, or
    /// the provider's own balance API called with the upstream key.
    ReadingSource: "reading source" {
        Host => "host",
        Upstream => "upstream",
    }
}

vocabulary! {
    /// What a funds reading measures.
    ReadingKind: "reading kind" {
        /// Pay-as-you-go money left (Kimi, DeepSeek).
        Balance => "balance",
        /// Coding-Plan rolling windows used (Kimi, Zhipu coding accounts).
        Quota => "quota",
    }
}

vocabulary! {
    /// Whether a reading holds a value.
    ReadingState: "reading state" {
        Ok => "ok",
        /// The provider (or account mode) has no balance or quota API: not zero.
        Unsupported => "unsupported",
        /// The route failed or answered something crm cannot read.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// How a reading compares with its thresholds.
    FundsStatus: "funds status" {
        Ok => "ok",
        LowFunds => "low_funds",
        LowQuota => "low_quota",
        /// The reading says the key cannot pay at all (balance exhausted,
        /// `is_available=false`, or a quota window used up).
        CannotPay => "cannot_pay",
        Unknown => "unknown",
        Unsupported => "unsupported",
    }
}

vocabulary! {
    /// Why a drift item of category `unhealthy` was raised, when the reason
    /// is not the host's own account state.
    DriftReason: "drift reason" {
        LowFunds => "low_funds",
        LowQuota => "low_quota",
        /// The host's own channel monitor says the upstream fails
        /// (its primary model's latest check `failed` or `error`).
        MonitorFailing => "monitor_failing",
    }
}

/// A sub2api platform value. Open, because the accepted set depends on the
/// host version (docs/sub2api-contract.md §6): `openai`, `anthropic`, `gemini` everywhere,
/// `kimi`, `zhipu`, `deepseek`, `minimax` on newer hosts, forks add more.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Platform(pub String);

impl Platform {
    pub const OPENAI: &'static str = "openai";
    pub const ANTHROPIC: &'static str = "anthropic";
    pub const GEMINI: &'static str = "gemini";

    pub fn new(s: impl Into<String>) -> Self {
        Platform(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn openai() -> Self {
        Platform(Self::OPENAI.to_owned())
    }
    /// Platforms every sub2api version accepts.
    pub fn is_baseline(&self) -> bool {
        matches!(
            self.0.as_str(),
            Self::OPENAI | Self::ANTHROPIC | Self::GEMINI
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_serde_and_fromstr() {
        for s in BatchStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<BatchStatus>(&json).unwrap(), *s);
            assert_eq!(s.as_str().parse::<BatchStatus>().unwrap(), *s);
        }
        assert_eq!(PlanAction::NoOp.to_string(), "no-op");
        assert_eq!(Currency::Cny.to_string(), "CNY");
    }

    #[test]
    fn unknown_word_names_the_choices() {
        let err = "sideways".parse::<AccessMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown access mode 'sideways'; expected one of: self_service, subscription"
        );
    }
}
