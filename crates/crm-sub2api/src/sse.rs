//! The account test `POST /admin/accounts/:id/test` (contract §3.1.1).
//!
//! The host answers 200 with `data: <json>` lines (no `event:` field, no
//! `[DONE]`), even when the test fails. When the failure happens before the
//! SSE headers are written, the same lines come without the SSE content
//! type, so the body is parsed whatever the headers say.

use crate::client::{Auth, Call, Sub2apiClient, response_head};
use crate::envelope::{RawResponse, value_as_text};
use crate::error::{Error, Result};
use crate::scrub::{scrub_text, truncate};
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;

/// Longest streamed text kept in a result.
pub const MAX_TEXT: usize = 2000;

/// One event of the test stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TestEvent {
    TestStart {
        #[serde(default)]
        model: Option<String>,
    },
    Content {
        #[serde(default)]
        text: String,
    },
    /// Newer hosts: a progress note.
    Status {
        #[serde(default)]
        text: String,
    },
    /// Newer hosts: an image-model result (the data URL is not kept).
    Image {
        #[serde(default)]
        mime_type: Option<String>,
    },
    TestComplete {
        #[serde(default)]
        success: Option<bool>,
    },
    Error {
        #[serde(default)]
        error: String,
        /// Upstream HTTP status as text (newer hosts), when there was one.
        #[serde(default, deserialize_with = "code_text")]
        code: Option<String>,
    },
    /// An event type this client does not know (forks add some).
    #[serde(other)]
    Unknown,
}

fn code_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .as_ref()
        .and_then(value_as_text))
}

/// What an account test found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountTestResult {
    /// HTTP status of the test response (200 even when the test failed).
    pub http_status: u16,
    /// The stream carried the SSE content type.
    pub sse_content_type: bool,
    pub success: bool,
    /// Upstream model the host used.
    pub model: Option<String>,
    /// Text the upstream streamed back (truncated to [`MAX_TEXT`]).
    pub text: String,
    /// Progress notes (`status` events).
    pub notes: Vec<String>,
    /// The host's error text, verbatim but scrubbed of secrets.
    pub error: Option<String>,
    /// Upstream status the host reported with the error.
    pub error_code: Option<String>,
    /// Number of events parsed.
    pub events: usize,
    pub latency_ms: u64,
}

impl AccountTestResult {
    fn apply(&mut self, ev: TestEvent) {
        self.events += 1;
        match ev {
            TestEvent::TestStart { model } => self.model = model.or(self.model.take()),
            TestEvent::Content { text } => {
                if self.text.chars().count() < MAX_TEXT {
                    self.text.push_str(&text);
                    self.text = truncate(&self.text, MAX_TEXT);
                }
            }
            TestEvent::Status { text } => self.notes.push(text),
            TestEvent::Image { .. } | TestEvent::Unknown => {}
            TestEvent::TestComplete { success } => {
                self.success = success.unwrap_or(true) && self.error.is_none();
                if !self.success && self.error.is_none() {
                    self.error = Some("the host reported test_complete without success".into());
                }
            }
            TestEvent::Error { error, code } => {
                self.success = false;
                self.error = Some(error);
                self.error_code = code;
            }
        }
    }
}

/// Splits an SSE byte stream into the payloads of its `data:` lines, one per
/// event (several `data:` lines of one event are joined with `\n`).
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds bytes; returns the payloads of events completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            self.line(line.trim_end_matches('\r'), &mut out);
        }
        out
    }

    /// Ends the stream; returns the last event if it was not terminated.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.line(rest.trim_end_matches('\r'), &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<String>) {
        if line.is_empty() {
            self.dispatch(out);
        } else if let Some(rest) = line.strip_prefix("data:") {
            self.data
                .push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
        }
        // `event:`, `id:`, `retry:` and comments carry nothing crm needs.
    }

    fn dispatch(&mut self, out: &mut Vec<String>) {
        if !self.data.is_empty() {
            out.push(self.data.join("\n"));
            self.data.clear();
        }
    }
}

impl Sub2apiClient {
    /// Runs the host's account test and parses its event stream.
    ///
    /// A failed test is an `Ok` result with `success: false` and the host's
    /// error text; `Err` means the test could not be run or read (auth,
    /// unknown route, timeout, ...).
    pub async fn test_account(&self, id: i64, model: Option<&str>) -> Result<AccountTestResult> {
        let mut call = Call::new(
            Method::POST,
            format!("{}/accounts/{id}/test", crate::admin::ADMIN),
            Auth::Admin,
        );
        call.body = Some(match model {
            Some(m) => json!({ "model_id": m }),
            None => json!({}),
        });
        call.timeout = Some(self.inner.sse_timeout);
        let rb = self.request(&call)?;
        let started = Instant::now();
        self.inner
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = rb
            .send()
            .await
            .map_err(|e| self.transport_error(e, &call, started))?;
        let (status, content_type, retry_after) = response_head(&resp);
        let secrets = [self.admin_secret()];
        let mut result = AccountTestResult {
            http_status: status,
            sse_content_type: content_type.starts_with("text/event-stream"),
            ..Default::default()
        };
        let mut parser = SseParser::default();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        let mut ended = false;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.transport_error(e, &call, started))?;
            if body.len() < 64 * 1024 {
                body.extend_from_slice(&chunk);
            }
            for payload in parser.push(&chunk) {
                ended |= feed(&mut result, &payload);
            }
        }
        for payload in parser.finish() {
            ended |= feed(&mut result, &payload);
        }
        result.latency_ms = started.elapsed().as_millis() as u64;
        let raw = RawResponse {
            method: call.method.to_string(),
            path: call.path.clone(),
            status,
            content_type,
            retry_after,
            body: body.into(),
        };
        if result.events == 0 {
            // No test events: an ordinary error answer (auth, missing route,
            // HTML from the frontend) or garbage.
            if !raw.is_success() || raw.is_html() {
                return Err(raw.into_error(&secrets));
            }
            return Err(Error::Decode {
                status,
                detail: "the account test answered without any `data:` event".into(),
                body_excerpt: crate::scrub::excerpt(&raw.body, &secrets),
            });
        }
        if let Some(e) = result.error.take() {
            result.error = Some(scrub_text(&e, &secrets));
        }
        if !ended && result.error.is_none() {
            result.success = false;
            result.error = Some("the test stream ended without test_complete or error".into());
        }
        Ok(result)
    }
}

/// Applies one payload; true when it was a terminal event.
fn feed(result: &mut AccountTestResult, payload: &str) -> bool {
    match serde_json::from_str::<TestEvent>(payload) {
        Ok(ev) => {
            let terminal = matches!(ev, TestEvent::TestComplete { .. } | TestEvent::Error { .. });
            result.apply(ev);
            terminal
        }
        // A payload that is not an event (e.g. a bare `[DONE]`) is skipped.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_handles_split_chunks_and_crlf() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: {\"type\":\"test_st").is_empty());
        let out = p.push(
            b"art\",\"model\":\"m\"}\r\n\r\ndata: {\"type\":\"content\",\"text\":\"hi\"}\n\n",
        );
        assert_eq!(
            out,
            vec![
                r#"{"type":"test_start","model":"m"}"#.to_owned(),
                r#"{"type":"content","text":"hi"}"#.to_owned()
            ]
        );
        assert_eq!(
            p.push(b"data: {\"type\":\"test_complete\"}"),
            Vec::<String>::new()
        );
        assert_eq!(p.finish(), vec![r#"{"type":"test_complete"}"#.to_owned()]);
    }

    #[test]
    fn events_build_a_result() {
        let mut r = AccountTestResult::default();
        for p in [
            r#"{"type":"test_start","model":"deepseek-chat"}"#,
            r#"{"type":"content","text":"Hel"}"#,
            r#"{"type":"content","text":"lo"}"#,
            r#"{"type":"mystery","x":1}"#,
            r#"{"type":"error","error":"API returned 401: bad key","code":401}"#,
        ] {
            feed(&mut r, p);
        }
        assert!(!r.success);
        assert_eq!(r.model.as_deref(), Some("deepseek-chat"));
        assert_eq!(r.text, "Hello");
        assert_eq!(r.error_code.as_deref(), Some("401"));
        assert_eq!(r.events, 5);
    }
}
