//! Version profiles: which sub2api release the simulator pretends to be.
//!
//! A profile is plain data (flags and lists) read by the route builder and the
//! handlers, so adding a third host version is one more constructor, not a fork
//! of the handlers.

/// The behaviour switches of one simulated sub2api release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Profile name used on the command line (`legacy-2025-12`, `current`).
    pub name: &'static str,
    /// Version string reported by `/api/v1/settings/public` and `/admin/system/version`.
    pub version: &'static str,
    /// `/admin/channels` exists.
    pub channels: bool,
    /// `/v1/chat/completions` (and the bare `/chat/completions` alias) exist.
    pub chat_completions: bool,
    /// `/admin/cn-providers/*` exists.
    pub cn_providers: bool,
    /// `/admin/channel-monitors` exists.
    pub channel_monitors: bool,
    /// `PUT /admin/api-keys/:id` exists.
    pub admin_key_rebind: bool,
    /// `/admin/payment/plans` exists.
    pub payment_plans: bool,
    /// Platforms accepted by group create/update (enum binding).
    pub group_platforms: &'static [&'static str],
    /// Account types accepted by account create.
    pub account_types: &'static [&'static str],
    /// Account statuses accepted by account update.
    pub account_statuses: &'static [&'static str],
    /// Secrets are stripped from account credentials and reported as `credentials_status.has_*`.
    pub credential_redaction: bool,
    /// Accounts carry `notes`, `rate_multiplier`, `temp_unschedulable_*`, `expires_at`.
    pub account_extended_fields: bool,
    /// `GET /admin/accounts?group=` is honoured (ignored otherwise).
    pub account_group_filter: bool,
    /// `Idempotency-Key` is honoured on account create and balance updates.
    pub idempotency: bool,
    /// Largest accepted `page_size`; a larger one is ignored (the default 20 applies and is echoed).
    pub max_page_size: u64,
    /// Keys of a deleted group are refused with 403 `GROUP_DELETED` (else they still
    /// authenticate and find no account).
    pub group_deleted_code: bool,
    /// `/v1/models` answers OpenAI-shaped items for openai-platform groups.
    pub openai_shaped_models: bool,
    /// `/v1/models` is a static list chosen by the key's group platform (the
    /// OpenAI defaults for `openai` groups, the Claude defaults otherwise),
    /// never the accounts' mapped models (d3e73f1 `gateway_handler.go` `Models`).
    pub static_models: bool,
    /// Upstream endpoints follow the account platform as in d3e73f1: `/v1/messages`
    /// serves only `anthropic` accounts and sends `base_url + "/v1/messages"` with
    /// `x-api-key`; `/v1/responses` serves only `openai` accounts and sends
    /// `base_url + "/v1/responses"`; the account test calls the same endpoints.
    /// Off: every account is sent OpenAI chat completions (newer CN platforms).
    pub platform_upstreams: bool,
    /// `/v1/responses` (and the bare `/responses` alias) exist.
    pub responses_route: bool,
    /// The account test marks the account `error` on an upstream 401.
    pub test_marks_auth_error: bool,
    /// Gateway forwarding marks the account `error` on an upstream 401/403
    /// (d3e73f1 `ratelimit_service.go` `HandleUpstreamError`).
    pub gateway_marks_auth_error: bool,
    /// Account-test `error` events carry the upstream status as `code`.
    pub test_error_code: bool,
    /// Admin routes answer 423 `ADMIN_COMPLIANCE_ACK_REQUIRED` until an admin
    /// accepts the compliance notice (seen only in some newer builds; off in the
    /// built-in profiles, on via `Profile { compliance_gate: true, ..Profile::current() }`).
    pub compliance_gate: bool,
}

const LEGACY_PLATFORMS: &[&str] = &["anthropic", "openai", "gemini"];
const CURRENT_PLATFORMS: &[&str] = &[
    "anthropic",
    "openai",
    "gemini",
    "antigravity",
    "grok",
    "kimi",
    "zhipu",
    "deepseek",
    "minimax",
    "opencode_go",
];

impl Profile {
    /// A December-2025 host (sub2api source `d3e73f1`, which reports version `0.1.1`:
    /// `backend/cmd/server/VERSION`, observed on a real host).
    pub fn legacy_2025_12() -> Self {
        Self {
            name: "legacy-2025-12",
            version: "0.1.1",
            channels: false,
            chat_completions: false,
            cn_providers: false,
            channel_monitors: false,
            admin_key_rebind: false,
            payment_plans: false,
            group_platforms: LEGACY_PLATFORMS,
            account_types: &["oauth", "setup-token", "apikey"],
            account_statuses: &["active", "inactive"],
            credential_redaction: false,
            account_extended_fields: false,
            account_group_filter: false,
            idempotency: false,
            max_page_size: 100,
            group_deleted_code: false,
            openai_shaped_models: true,
            static_models: true,
            platform_upstreams: true,
            responses_route: true,
            test_marks_auth_error: false,
            gateway_marks_auth_error: true,
            test_error_code: false,
            compliance_gate: false,
        }
    }

    /// A current host (sub2api v0.2.7, September 2026).
    pub fn current() -> Self {
        Self {
            name: "current",
            version: "0.2.7",
            channels: true,
            chat_completions: true,
            cn_providers: true,
            channel_monitors: true,
            admin_key_rebind: true,
            payment_plans: true,
            group_platforms: CURRENT_PLATFORMS,
            account_types: &[
                "oauth",
                "setup-token",
                "apikey",
                "upstream",
                "bedrock",
                "service_account",
            ],
            account_statuses: &["active", "inactive", "error"],
            credential_redaction: true,
            account_extended_fields: true,
            account_group_filter: true,
            idempotency: true,
            max_page_size: 1000,
            group_deleted_code: true,
            openai_shaped_models: true,
            static_models: false,
            platform_upstreams: false,
            responses_route: false,
            test_marks_auth_error: true,
            gateway_marks_auth_error: false,
            test_error_code: true,
            compliance_gate: false,
        }
    }

    /// Every built-in profile.
    pub fn all() -> Vec<Profile> {
        vec![Self::legacy_2025_12(), Self::current()]
    }

    /// The built-in profile with this name.
    pub fn by_name(name: &str) -> Option<Profile> {
        Self::all().into_iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_found_by_name() {
        assert_eq!(Profile::by_name("current"), Some(Profile::current()));
        assert_eq!(
            Profile::by_name("legacy-2025-12").map(|p| p.max_page_size),
            Some(100)
        );
        assert_eq!(Profile::by_name("nope"), None);
    }
}
