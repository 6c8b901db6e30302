//! The account test `POST /admin/accounts/:id/test` (docs/sub2api-contract.md §3.1.1).
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
/// Longest SSE line read; a longer one ends the read ([`SseParser::overflow`]).
pub const MAX_LINE: usize = 256 * 1024;
/// Most data held for one event (its `data:` lines together).
pub const MAX_EVENT: usize = 512 * 1024;
/// Progress notes kept in a result; later ones are counted as events only.
pub const MAX_NOTES: usize = 100;

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
            TestEvent::Status { text } => {
                if self.notes.len() < MAX_NOTES {
                    self.notes.push(truncate(&text, MAX_TEXT));
                }
            }
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
///
/// Memory is bounded: a line longer than [`MAX_LINE`] or an event longer
/// than [`MAX_EVENT`] stops the parser, which then drops all further input
/// and reports the limit in [`SseParser::overflow`].
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Vec<String>,
    data_len: usize,
    overflow: Option<SseOverflow>,
}

/// Which bound of [`SseParser`] a stream crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseOverflow {
    /// A line longer than [`MAX_LINE`].
    Line,
    /// An event's data longer than [`MAX_EVENT`].
    Event,
}

impl SseOverflow {
    /// What crossed the limit, and the limit, for an error.
    pub fn describe(self) -> (&'static str, usize) {
        match self {
            SseOverflow::Line => ("test stream line", MAX_LINE),
            SseOverflow::Event => ("test stream event", MAX_EVENT),
        }
    }
}

impl SseParser {
    /// Feeds bytes; returns the payloads of events completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        if self.overflow.is_some() {
            return out;
        }
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(rel) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + rel;
            if end - start > MAX_LINE {
                return self.stop(SseOverflow::Line, out);
            }
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            start = end + 1;
            self.line(line.trim_end_matches('\r'), &mut out);
            if self.overflow.is_some() {
                return out;
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return self.stop(SseOverflow::Line, out);
        }
        out
    }

    /// The bound the stream crossed, if any; nothing after it was parsed.
    pub fn overflow(&self) -> Option<SseOverflow> {
        self.overflow
    }

    fn stop(&mut self, why: SseOverflow, out: Vec<String>) -> Vec<String> {
        self.overflow = Some(why);
        self.buf = Vec::new();
        self.data = Vec::new();
        self.data_len = 0;
        out
    }

    /// Ends the stream; returns the last event if it was not terminated.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if self.overflow.is_some() {
            return out;
        }
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
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            self.data_len += rest.len() + 1;
            if self.data_len > MAX_EVENT {
                let _ = self.stop(SseOverflow::Event, Vec::new());
                return;
            }
            self.data.push(rest.to_owned());
        }
        // `event:`, `id:`, `retry:` and comments carry nothing crm needs.
    }

    fn dispatch(&mut self, out: &mut Vec<String>) {
        if !self.data.is_empty() {
            out.push(self.data.join("\n"));
            self.data.clear();
        }
        self.data_len = 0;
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
        self.refuse_redirect(&resp)?;
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
            if let Some(over) = parser.overflow() {
                let (what, limit) = over.describe();
                return Err(self.too_large(what, limit));
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
    fn parser_stops_at_its_bounds_in_any_chunking() {
        let long = format!("data: {}", "a".repeat(MAX_LINE + 1));
        for step in [1usize << 20, 4096, 7] {
            let mut p = SseParser::default();
            let mut out = p.push(b"data: {\"type\":\"test_start\"}\n\n");
            for c in long.as_bytes().chunks(step) {
                out.extend(p.push(c));
            }
            out.extend(p.push(b"\n\ndata: {\"type\":\"test_complete\"}\n\n"));
            out.extend(p.finish());
            assert_eq!(out, vec![r#"{"type":"test_start"}"#.to_owned()], "{step}");
            assert_eq!(p.overflow(), Some(SseOverflow::Line));
            assert!(p.buf.capacity() == 0 && p.data.is_empty());
        }
        // Many short data lines of one event.
        let mut p = SseParser::default();
        let line = format!("data: {}\n", "b".repeat(1000));
        for _ in 0..(MAX_EVENT / 1000 + 2) {
            p.push(line.as_bytes());
        }
        assert_eq!(p.overflow(), Some(SseOverflow::Event));
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
