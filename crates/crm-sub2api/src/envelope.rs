//! sub2api's response envelope, its error shapes and its page shape
//! (docs/sub2api-contract.md §2), and the rules that turn a raw answer into data or an [`Error`].

use crate::error::Error;
use crate::scrub::{excerpt, scrub_text};
use bytes::Bytes;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::time::Duration;

/// An envelope `code`: an integer from handlers (`0` = success, else the
/// HTTP status), a string from the auth middlewares (`"INVALID_API_KEY"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Int(i) => Code::Int(i),
            Raw::Float(f) => Code::Int(f as i64),
            Raw::Text(s) => Code::Text(s),
        })
    }
}

/// The parts of an error body crm reads, across all the shapes sub2api uses:
/// handler errors `{code:int, message, reason?, metadata?}`, middleware errors
/// `{code:"STRING", message}`, the 409 `{error:"mixed_channel_warning", message}`
/// and OpenAI/Anthropic style `{error:{type, message, code?}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub code: Option<Code>,
    pub message: Option<String>,
    pub reason: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub error: Option<Value>,
}

impl ErrorBody {
    /// The best machine code in the body: `reason`, a string `code`, a string
    /// `error`, or `error.type`/`error.code`.
    pub fn machine_code(&self) -> Option<String> {
        if let Some(r) = self.reason.as_ref().filter(|r| !r.is_empty()) {
            return Some(r.clone());
        }
        if let Some(Code::Text(c)) = &self.code {
            return Some(c.clone());
        }
        match &self.error {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o
                .get("code")
                .and_then(value_as_text)
                .or_else(|| o.get("type").and_then(value_as_text)),
            _ => None,
        }
    }

    /// The human message: `message`, else `error.message`.
    pub fn text(&self) -> Option<String> {
        self.message.clone().filter(|m| !m.is_empty()).or_else(|| {
            self.error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(value_as_text)
        })
    }
}

/// A JSON scalar as text (`"x"` → `x`, `1113` → `1113`).
pub(crate) fn value_as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One page of a paginated listing: `{items,total,page,page_size,pages}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "crate::wire::null_default")]
    pub items: Vec<T>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub page: i64,
    #[serde(default)]
    pub page_size: i64,
    #[serde(default)]
    pub pages: i64,
}

impl<T> Page<T> {
    /// Number of pages, computed from `total` when the host leaves `pages` out.
    pub fn page_count(&self) -> Option<i64> {
        if self.pages > 0 {
            Some(self.pages)
        } else if self.page_size > 0 && self.total >= 0 {
            Some((self.total + self.page_size - 1) / self.page_size)
        } else {
            None
        }
    }
}

/// A response as it came off the wire.
#[derive(Clone)]
pub(crate) struct RawResponse {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Lower-cased `Content-Type`, empty when absent.
    pub content_type: String,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn is_json(&self) -> bool {
        self.content_type.contains("json")
    }

    pub fn is_html(&self) -> bool {
        if self.content_type.contains("text/html") {
            return true;
        }
        let head = String::from_utf8_lossy(&self.body[..self.body.len().min(64)]).to_lowercase();
        let head = head.trim_start();
        head.starts_with("<!doctype html") || head.starts_with("<html")
    }

    /// gin's answer for an unknown route: plain text `404 page not found`.
    pub fn is_plain_route_404(&self) -> bool {
        self.status == 404
            && !self.is_json()
            && !self.is_html()
            && String::from_utf8_lossy(&self.body)
                .trim()
                .eq_ignore_ascii_case("404 page not found")
    }

    /// A JSON body parsed as a sub2api error, if it is one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        if self.body.is_empty() {
            return None;
        }
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        if !v.is_object() {
            return None;
        }
        serde_json::from_value(v).ok()
    }

    /// The whole JSON body of a successful answer, or the error the answer
    /// stands for. Success statuses with HTML or without a JSON content type
    /// are errors: the embedded frontend answers unknown paths with HTML.
    pub fn into_json(self, secrets: &[&SecretString]) -> Result<Value, Error> {
        if !self.is_success() {
            return Err(self.into_error(secrets));
        }
        if self.is_html() {
            return Err(Error::UnexpectedHtml {
                status: self.status,
                path: self.path,
            });
        }
        if !self.is_json() {
            return Err(Error::Decode {
                status: self.status,
                detail: format!(
                    "expected application/json, got {:?}",
                    if self.content_type.is_empty() {
                        "no content type"
                    } else {
                        &self.content_type
                    }
                ),
                body_excerpt: excerpt(&self.body, secrets),
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            status: self.status,
            detail: format!("invalid JSON: {e}"),
            body_excerpt: excerpt(&self.body, secrets),
        })
    }

    /// The `data` of a successful envelope, or the error the answer stands for.
    pub fn into_data(self, secrets: &[&SecretString]) -> Result<Value, Error> {
        let copy = self.clone();
        let mut v = self.into_json(secrets)?;
        match v
            .get("code")
            .map(|c| serde_json::from_value::<Code>(c.clone()))
        {
            None | Some(Ok(Code::Int(0))) => {}
            Some(_) => return Err(copy.into_error(secrets)),
        }
        Ok(v.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// The error a non-success answer stands for (docs/sub2api-contract.md §2.1, §2.2).
    pub fn into_error(self, secrets: &[&SecretString]) -> Error {
        if self.is_plain_route_404() {
            return Error::RouteMissing {
                method: self.method,
                path: self.path,
            };
        }
        if self.is_success() && self.is_html() {
            return Error::UnexpectedHtml {
                status: self.status,
                path: self.path,
            };
        }
        let body = self.error_body();
        let code = body.as_ref().and_then(ErrorBody::machine_code);
        let message = body
            .as_ref()
            .and_then(ErrorBody::text)
            .map(|m| scrub_text(&m, secrets))
            .unwrap_or_else(|| excerpt(&self.body, secrets));
        match self.status {
            401 => Error::Unauthorized {
                code: code.unwrap_or_else(|| "UNAUTHORIZED".into()),
                message,
            },
            403 => Error::Forbidden {
                code: code.unwrap_or_else(|| "FORBIDDEN".into()),
                message,
            },
            404 if body.is_some() => Error::NotFound {
                reason: code,
                message,
            },
            404 if self.is_html() => Error::UnexpectedHtml {
                status: self.status,
                path: self.path,
            },
            404 => Error::RouteMissing {
                method: self.method,
                path: self.path,
            },
            409 => Error::Conflict {
                reason: code.unwrap_or_else(|| "CONFLICT".into()),
                message,
            },
            400 | 422 => Error::Validation {
                reason: code,
                message,
            },
            423 => Error::ComplianceGate {
                document_url: body.as_ref().and_then(compliance_url),
                message,
            },
            429 => Error::RateLimited {
                retry_after: self.retry_after,
                message,
            },
            500..=599 => Error::HostUnavailable {
                status: self.status,
                message,
            },
            200..=299 => Error::UnexpectedStatus {
                status: self.status,
                reason: code,
                message: format!("error envelope with a success status: {message}"),
            },
            status => Error::UnexpectedStatus {
                status,
                reason: code,
                message,
            },
        }
    }
}

/// The compliance document from a 423's `metadata`, English first.
pub(crate) fn compliance_url(body: &ErrorBody) -> Option<String> {
    let meta = body.metadata.as_ref()?;
    [
        "document_url_en",
        "document_url",
        "document_url_zh",
        "document_path_en",
        "document_path_zh",
    ]
    .iter()
    .find_map(|k| meta.get(*k).and_then(value_as_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, ct: &str, body: &str) -> RawResponse {
        RawResponse {
            method: "GET".into(),
            path: "/api/v1/admin/x".into(),
            status,
            content_type: ct.into(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn code_is_int_or_string() {
        let b: ErrorBody =
            serde_json::from_str(r#"{"code":"INVALID_API_KEY","message":"Invalid API key"}"#)
                .unwrap();
        assert_eq!(b.code, Some(Code::Text("INVALID_API_KEY".into())));
        assert_eq!(b.machine_code().as_deref(), Some("INVALID_API_KEY"));
        let b: ErrorBody =
            serde_json::from_str(r#"{"code":404,"message":"x","reason":"R"}"#).unwrap();
        assert_eq!(b.code, Some(Code::Int(404)));
        assert_eq!(b.machine_code().as_deref(), Some("R"));
    }

    #[test]
    fn plain_404_is_route_missing_and_enveloped_404_is_not_found() {
        let e = raw(404, "text/plain", "404 page not found").into_error(&[]);
        assert!(matches!(e, Error::RouteMissing { .. }), "{e:?}");
        let e = raw(
            404,
            "application/json; charset=utf-8",
            r#"{"code":404,"message":"account not found","reason":"ACCOUNT_NOT_FOUND"}"#,
        )
        .into_error(&[]);
        assert_eq!(
            e,
            Error::NotFound {
                reason: Some("ACCOUNT_NOT_FOUND".into()),
                message: "account not found".into()
            }
        );
    }

    #[test]
    fn html_200_is_never_data() {
        let e = raw(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html></html>",
        )
        .into_data(&[])
        .unwrap_err();
        assert!(matches!(e, Error::UnexpectedHtml { status: 200, .. }));
        let e = raw(200, "", "<html><body>spa</body></html>")
            .into_data(&[])
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedHtml { .. }));
    }

    #[test]
    fn nonzero_code_in_a_200_is_an_error() {
        let e = raw(
            200,
            "application/json",
            r#"{"code":"INVALID_API_KEY","message":"no"}"#,
        )
        .into_data(&[])
        .unwrap_err();
        assert!(matches!(e, Error::UnexpectedStatus { .. }), "{e:?}");
    }

    #[test]
    fn page_count_falls_back_to_total() {
        let p: Page<i64> =
            serde_json::from_str(r#"{"items":[1],"total":250,"page":1,"page_size":100}"#).unwrap();
        assert_eq!(p.page_count(), Some(3));
        let p: Page<i64> = serde_json::from_str(r#"{"items":null}"#).unwrap();
        assert!(p.items.is_empty());
    }
}
