//! What every page shares that is not markup: the embedded stylesheet, the
//! escaping of a URL path segment, the tone of a status word and the page
//! options. The markup itself is written only as maud templates
//! ([`crate::view`] and the pages), which escape every value by default.

use std::fmt::Write as _;

/// The stylesheet, embedded so the console works with no network at all.
pub const CSS: &str = include_str!("../assets/console.css");

/// Escapes one path segment of a console link (ids and names are plain
/// words, but a host name or id chosen elsewhere must not break the URL).
pub fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The style class of a status word.
pub fn tone(word: &str) -> &'static str {
    match word {
        "applied" | "in_sync" | "self_service_ready" | "subscription_ready" | "fully_ready"
        | "active" | "pass" | "succeeded" | "rolled_back" | "ok" | "live" | "create"
        | "refused" | "current" => "good",
        "applying"
        | "rolling_back"
        | "running"
        | "queued"
        | "planned"
        | "pass_with_advisories"
        | "degraded"
        | "drifted"
        | "update"
        | "adopt"
        | "pending"
        | "not_configured"
        | "inactive"
        | "inconclusive"
        | "low_funds"
        | "low_quota" => "warn",
        "failed"
        | "broken"
        | "fail"
        | "error"
        | "unreachable"
        | "partially_applied"
        | "rollback_incomplete"
        | "needs_operator"
        | "interrupted"
        | "blocked"
        | "delete"
        | "still_served"
        | "cannot_pay" => "bad",
        _ => "neutral",
    }
}

pub fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

/// Options of a page's layout.
#[derive(Debug, Default)]
pub struct PageOpts {
    /// Reload the page after this many seconds (live progress of operations).
    pub refresh_secs: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_everything_but_unreserved_characters() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("<x>?#"), "%3Cx%3E%3F%23");
        assert_eq!(seg("h-1.prod_x"), "h-1.prod_x");
    }
}
