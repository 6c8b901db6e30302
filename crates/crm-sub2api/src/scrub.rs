//! Keeping secrets out of error messages and evidence.
//!
//! Hosts and upstreams echo things back: a legacy host returns raw account
//! credentials, an upstream error may quote the key it rejected. Anything
//! taken from a response body and kept in an error or an outcome goes through
//! [`scrub_text`] (known secrets and key-shaped tokens) and, when it is JSON,
//! [`redact_json`] (values under credential-like field names) first.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Field names whose values are secrets wherever they appear in a body.
pub const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "access_token",
    "refresh_token",
    "id_token",
    "session_key",
    "cookie",
    "aws_secret_access_key",
    "aws_session_token",
    "service_account_json",
    "service_account",
    "private_key",
    "password",
    "key",
    "token",
    "custom_key",
];

/// Longest excerpt of a body kept in an error or an outcome.
pub const EXCERPT_LEN: usize = 300;

const REDACTED: &str = "[redacted]";

/// Replaces every known secret, and every token shaped like a sub2api key
/// (`sk-…`, `admin-…`) or a JWT (`eyJ….….…`), with `[redacted]`.
pub fn scrub_text(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let raw = s.expose_secret();
        if raw.len() >= 4 {
            out = out.replace(raw, REDACTED);
        }
    }
    mask_key_shaped_tokens(&out)
}

/// Replaces values under [`SECRET_FIELDS`] names, at any depth, with `"[redacted]"`.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) && (v.is_string() || v.is_object()) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// A short, scrubbed excerpt of a response body for errors and evidence.
pub fn excerpt(body: &[u8], secrets: &[&SecretString]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_json(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    truncate(&scrub_text(text.trim(), secrets), EXCERPT_LEN)
}

/// Truncates on a character boundary, marking the cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let mut chars = text.char_indices();
    match chars.nth(max_chars) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_owned(),
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn mask_key_shaped_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_token_char(c)) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find(|c: char| !is_token_char(c))
            .unwrap_or(after.len());
        let token = &after[..end];
        out.push_str(&mask_token(token));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn mask_token(token: &str) -> String {
    for prefix in ["sk-", "admin-"] {
        if let Some(tail) = token.strip_prefix(prefix)
            && tail.len() >= 8
        {
            return format!("{prefix}{REDACTED}");
        }
    }
    let jwt_parts = token.split('.').count();
    if token.starts_with("eyJ") && jwt_parts == 3 && token.len() >= 24 {
        return REDACTED.to_owned();
    }
    token.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_secrets_and_key_shaped_tokens() {
        let known = SecretString::from("plain-secret-value");
        let text = "bad key sk-abcdef0123456789 and admin-0011223344556677 and plain-secret-value; keep sk-1";
        let out = scrub_text(text, &[&known]);
        assert_eq!(
            out,
            "bad key sk-[redacted] and admin-[redacted] and [redacted]; keep sk-1"
        );
        let jwt = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl!";
        assert_eq!(scrub_text(jwt, &[]), "Bearer [redacted]!");
    }

    #[test]
    fn excerpts_redact_credential_fields_and_truncate() {
        let body = br#"{"credentials":{"api_key":"raw-upstream-secret","base_url":"https://x"}}"#;
        let e = excerpt(body, &[]);
        assert!(!e.contains("raw-upstream-secret"), "{e}");
        assert!(e.contains("https://x"));
        let long = "x".repeat(1000);
        assert_eq!(
            excerpt(long.as_bytes(), &[]).chars().count(),
            EXCERPT_LEN + 1
        );
        assert_eq!(truncate("héllo", 2), "hé…");
    }
}
