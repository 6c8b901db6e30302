//! `GET /v1/models`: the static lists of a d3e73f1 host, or the models the
//! key's group's accounts map.

use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::{App, authenticate};
use crate::model::claude_item;

/// d3e73f1 `backend/internal/pkg/openai/constants.go` `DefaultModels`.
const OPENAI_DEFAULT_MODELS: &[(&str, i64, &str)] = &[
    ("gpt-5.2", 1_733_875_200, "GPT-5.2"),
    ("gpt-5.2-codex", 1_733_011_200, "GPT-5.2 Codex"),
    ("gpt-5.1-codex-max", 1_730_419_200, "GPT-5.1 Codex Max"),
    ("gpt-5.1-codex", 1_730_419_200, "GPT-5.1 Codex"),
    ("gpt-5.1", 1_731_456_000, "GPT-5.1"),
    ("gpt-5.1-codex-mini", 1_730_419_200, "GPT-5.1 Codex Mini"),
    ("gpt-5", 1_722_988_800, "GPT-5"),
];

/// d3e73f1 `backend/internal/pkg/claude/constants.go` `DefaultModels`.
const CLAUDE_DEFAULT_MODELS: &[(&str, &str, &str)] = &[
    (
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        "2025-11-01T00:00:00Z",
    ),
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        "2025-10-01T00:00:00Z",
    ),
];

/// The static `/v1/models` list of a d3e73f1 host: OpenAI defaults for
/// `openai` groups, Claude defaults for every other group and for keys
/// without one (`gateway_handler.go` `Models`).
pub(crate) fn static_models(platform: Option<&str>) -> Vec<Value> {
    if platform == Some("openai") {
        OPENAI_DEFAULT_MODELS
            .iter()
            .map(|(id, created, name)| json!({"id": id, "object": "model", "created": created, "owned_by": "openai", "type": "model", "display_name": name}))
            .collect()
    } else {
        CLAUDE_DEFAULT_MODELS
            .iter()
            .map(|(id, name, at)| json!({"id": id, "type": "model", "display_name": name, "created_at": at}))
            .collect()
    }
}

fn openai_item(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_704_067_200, "owned_by": "openai", "type": "model", "display_name": id})
}

fn platform_defaults(platform: &str) -> &'static [&'static str] {
    match platform {
        "anthropic" => &["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"],
        "openai" => &["gpt-5.1", "gpt-5.1-codex"],
        "gemini" => &["gemini-2.5-pro", "gemini-2.5-flash"],
        // CN platforms have no built-in fallback list.
        _ => &[],
    }
}

pub(super) async fn models(AxState(app): App, headers: HeaderMap) -> Result<Response, Response> {
    let st = app.lock();
    let caller = authenticate(&st, &headers)?;
    if st.profile.static_models {
        let data = static_models(caller.group.as_ref().map(|g| g.platform.as_str()));
        return Ok(axum::Json(json!({"object": "list", "data": data})).into_response());
    }
    let Some(group) = caller.group else {
        return Ok(axum::Json(json!({"object": "list", "data": []})).into_response());
    };
    let mut ids: Vec<String> = Vec::new();
    for a in st.accounts_in_group(group.id) {
        for k in a.model_mapping().into_iter().flat_map(|m| m.keys()) {
            if !ids.contains(k) {
                ids.push(k.clone());
            }
        }
    }
    if ids.is_empty() {
        ids = platform_defaults(&group.platform)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    let openai = st.profile.openai_shaped_models && group.platform == "openai";
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            if openai {
                openai_item(id)
            } else {
                claude_item(id)
            }
        })
        .collect();
    Ok(axum::Json(json!({"object": "list", "data": data})).into_response())
}
