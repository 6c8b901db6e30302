//! `POST /admin/accounts/:id/test`: the SSE account test, per profile
//! (d3e73f1 `service/account_test_service.go` on `legacy-2025-12`).

use super::*;

#[derive(Deserialize, Default)]
pub(super) struct TestBody {
    model_id: Option<String>,
}

pub(super) fn default_test_model(platform: &str) -> Option<&'static str> {
    match platform {
        "anthropic" => Some("claude-sonnet-4-5"),
        "openai" => Some("gpt-5.1-codex"),
        "gemini" => Some("gemini-2.5-flash"),
        _ => None,
    }
}

pub(super) fn sse_line(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// An error written before the SSE headers: a plain body, no event-stream
/// content type (`sendErrorAndEnd` before `c.Writer.Header().Set`).
pub(super) fn early_test_error(message: &str) -> Response {
    let line = sse_line(&json!({"type": "error", "error": message}));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        line,
    )
        .into_response()
}

/// What the account test sends upstream on a d3e73f1 host
/// (`account_test_service.go`): `openai` accounts the Responses API at
/// `base_url + "/v1/responses"` (default model `gpt-5.1-codex`), every other
/// apikey account an Anthropic message at `base_url + "/v1/messages"` (default
/// model `claude-sonnet-4-5-20250929`), the model looked up in the mapping.
pub(super) fn legacy_test_target(
    a: &Account,
    requested: Option<String>,
) -> Result<(String, String, String, Vec<u8>), String> {
    if a.kind != "apikey" {
        // OAuth and setup-token accounts call the vendors' own APIs, which the
        // simulator does not play.
        return Err(format!("Unsupported account type: {}", a.kind));
    }
    if a.platform == "gemini" {
        return Err("Request failed: gemini accounts are not simulated".into());
    }
    let openai = a.platform == "openai";
    let default = if openai {
        "gpt-5.1-codex"
    } else {
        "claude-sonnet-4-5-20250929"
    };
    let asked = requested.unwrap_or_else(|| default.to_owned());
    let model = a
        .model_mapping()
        .and_then(|m| m.get(&asked))
        .and_then(Value::as_str)
        .map_or(asked.clone(), str::to_owned);
    let key = a
        .api_key()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "No API key available".to_owned())?
        .to_owned();
    let base = a
        .base_url()
        .filter(|b| !b.is_empty())
        .unwrap_or(if openai {
            "https://api.openai.com"
        } else {
            "https://api.anthropic.com"
        })
        .trim_end_matches('/')
        .to_owned();
    let (url, body) = if openai {
        (
            format!("{base}/v1/responses"),
            json!({"model": model, "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "stream": true}),
        )
    } else {
        (
            format!("{base}/v1/messages"),
            json!({"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "stream": true}),
        )
    };
    Ok((model, key, url, body.to_string().into_bytes()))
}

/// `POST /accounts/:id/test`: SSE `data:` lines, HTTP 200 even on failure (§3.1.1).
pub(super) async fn test_account(
    AxState(app): App,
    Path(id): Path<String>,
    body: Bytes,
) -> HResult {
    let id = path_id(&id, "account")?;
    let req: TestBody = parse_or_default(&body).unwrap_or_default();
    let mut st = app.lock();
    let Some(a) = st.accounts.get(&id).cloned() else {
        return Ok(early_test_error("Account not found"));
    };
    let requested = req.model_id.clone().filter(|m| !m.is_empty());
    let with_code = st.profile.test_error_code;
    let error = |msg: String, code: Option<u16>| {
        let mut e = json!({"type": "error", "error": msg});
        if let (true, Some(c), Some(o)) = (with_code, code, e.as_object_mut()) {
            o.insert("code".into(), json!(c.to_string()));
        }
        e
    };
    // (model sent upstream, key, URL, body)
    let target = if st.profile.platform_upstreams {
        match legacy_test_target(&a, requested) {
            Ok(t) => t,
            Err(message) => return Ok(early_test_error(&message)),
        }
    } else {
        let requested = requested
            .or_else(|| a.model_mapping().and_then(|m| m.keys().next().cloned()))
            .or_else(|| default_test_model(&a.platform).map(str::to_owned));
        let Some(model) = requested else {
            return Ok(early_test_error(
                "No test model configured for this account",
            ));
        };
        let Some(key) = a.api_key().map(str::to_owned) else {
            return Ok(early_test_error("No API key available"));
        };
        let Some(base) = a.base_url().filter(|b| !b.is_empty()) else {
            return Ok(early_test_error(
                "Request failed: account has no usable base_url",
            ));
        };
        let model = a.map_model(&model);
        let body = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
        (
            model,
            key,
            format!("{}/chat/completions", base.trim_end_matches('/')),
            body.to_string().into_bytes(),
        )
    };
    let (model, key, url, upstream_body) = target;
    let mut events: Vec<(Duration, Value)> = vec![(
        Duration::ZERO,
        json!({"type": "test_start", "model": model}),
    )];
    let behaviour = providers::behaviour_for(&st, &key);
    if behaviour == Behaviour::HostIncompatible {
        events.push((
            Duration::ZERO,
            error(
                "Request failed: upstream response could not be handled by this host".into(),
                None,
            ),
        ));
    } else if let Some((authority, path)) = providers::target(&url) {
        let reply = providers::call(
            &mut st,
            &authority,
            &path,
            "POST",
            Some(&key),
            &upstream_body,
        );
        if reply.status == 200 {
            events.push((
                reply.delay,
                json!({"type": "content", "text": "pong (simulated)"}),
            ));
            events.push((
                Duration::ZERO,
                json!({"type": "test_complete", "success": true}),
            ));
            if st.profile.account_extended_fields
                && let Some(acc) = st.accounts.get_mut(&id)
                && acc.status == "error"
            {
                acc.status = "active".into();
                acc.error_message.clear();
            }
        } else {
            let text = format!("API returned {}: {}", reply.status, reply.body);
            if reply.status == 401
                && st.profile.test_marks_auth_error
                && let Some(acc) = st.accounts.get_mut(&id)
            {
                acc.status = "error".into();
                acc.error_message = format!("Authentication failed (401): {}", reply.body);
                acc.updated_at = now();
            }
            events.push((reply.delay, error(text, Some(reply.status))));
        }
    } else {
        events.push((
            Duration::ZERO,
            error(format!("Request failed: invalid URL {url}"), None),
        ));
    }
    drop(st);
    let stream = futures::stream::iter(events).then(|(delay, ev)| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(sse_line(&ev)))
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
