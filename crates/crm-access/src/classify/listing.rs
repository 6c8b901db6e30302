//! Static `/v1/models` listings: when not listing the smoke model says
//! nothing.

/// sub2api's built-in `/v1/models` lists (d3e73f1): the gateway's `Models`
/// handler answers these and nothing else, by the key's group platform
/// (`handler/gateway_handler.go` `Models`; the lists are
/// `pkg/openai/constants.go` and `pkg/claude/constants.go`).
pub const STATIC_OPENAI_MODELS: &[&str] = &[
    "gpt-5.2",
    "gpt-5.2-codex",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex",
    "gpt-5.1",
    "gpt-5.1-codex-mini",
    "gpt-5",
];
/// See [`STATIC_OPENAI_MODELS`].
pub const STATIC_CLAUDE_MODELS: &[&str] = &[
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
];

/// What the probe found about the host, as far as the models listing goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingFacts {
    pub version: Option<String>,
    pub channels: bool,
    pub chat_completions: bool,
}

/// Whether the host's `/v1/models` is a static list (so not listing the
/// smoke model says nothing), and the evidence for it. Two kinds of
/// evidence count: the listing holds only one of sub2api's built-in lists,
/// or the probe found the older era (no channels and no chat completions),
/// whose `Models` handler never lists an account's models.
pub fn static_listing(facts: &ListingFacts, model_ids: &[String]) -> Option<String> {
    let only = |defaults: &[&str]| {
        !model_ids.is_empty() && model_ids.iter().all(|m| defaults.contains(&m.as_str()))
    };
    if only(STATIC_OPENAI_MODELS) {
        return Some("the listing holds only sub2api's built-in OpenAI models".into());
    }
    if only(STATIC_CLAUDE_MODELS) {
        return Some("the listing holds only sub2api's built-in Claude models".into());
    }
    if !facts.channels && !facts.chat_completions {
        return Some(format!(
            "the probe found an older-era host (version {}, no channels, no /v1/chat/completions), whose /v1/models is a fixed list per group platform",
            facts.version.as_deref().unwrap_or("unknown")
        ));
    }
    None
}
