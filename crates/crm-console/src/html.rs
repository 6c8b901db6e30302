//! HTML building blocks: escaping, the page layout, and the small widgets
//! every page shares (status badges, times, tables, forms).
//!
//! Pages are plain `format!`/`write!` strings. Every value that did not come
//! from this crate's own literals goes through [`esc`], so the only way to put
//! markup on a page is to write it here.

use crate::session::{Role, Session};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// The stylesheet, embedded so the console works with no network at all.
pub const CSS: &str = include_str!("../assets/console.css");

/// Escapes text for use in element content and in double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

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

/// A timestamp as operators read it.
pub fn time(t: &DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.to_rfc3339(),
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

pub fn opt_time(t: Option<&DateTime<Utc>>) -> String {
    t.map(time)
        .unwrap_or_else(|| "<span class=\"muted\">never</span>".into())
}

/// A status word of docs/design.md, styled by its tone. The word itself is
/// always the vocabulary's `Display`, so the console says what the CLI says.
pub fn badge(word: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", tone(word), esc(word))
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

/// A link to a console path built from already-escaped segments.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A table with a caption-like heading row; `rows` are pre-rendered cells.
pub fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>", esc(empty));
    }
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A definition list of label/value pairs (values pre-rendered).
pub fn facts(pairs: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in pairs {
        let _ = write!(out, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    }
    out.push_str("</dl>");
    out
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// A one-button form that POSTs to `action` (only rendered for admins).
pub fn action_button(session: &Session, action: &str, label: &str, extra_fields: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}{extra_fields}<button type=\"submit\" class=\"action\">{}</button></form>",
        esc(action),
        csrf_field(session),
        esc(label)
    )
}

/// A link styled as an action (to a confirmation page; only for admins).
pub fn action_link(href: &str, label: &str) -> String {
    format!(
        "<a class=\"button action\" href=\"{}\">{}</a>",
        esc(href),
        esc(label)
    )
}

/// Options of a page's layout.
#[derive(Debug, Default)]
pub struct PageOpts {
    /// Reload the page after this many seconds (live progress of operations).
    pub refresh_secs: Option<u32>,
}

/// The whole document around a page body.
pub fn layout(session: Option<&Session>, title: &str, body: &str, opts: PageOpts) -> String {
    let refresh = opts
        .refresh_secs
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let nav = match session {
        Some(s) => {
            let role = match s.role {
                Role::Admin => "admin",
                Role::ReadOnly => "read-only",
            };
            format!(
                "<nav aria-label=\"Main\"><ul>\
                 <li><a href=\"/\">Overview</a></li>\
                 <li><a href=\"/batches\">Batches</a></li>\
                 <li><a href=\"/packs\">Packs</a></li>\
                 <li><a href=\"/audit\">Audit log</a></li>\
                 </ul>\
                 <div class=\"who\"><span class=\"role\" data-role=\"{role}\">signed in: {role}</span>\
                 <form method=\"post\" action=\"/logout\" class=\"inline\">{}<button type=\"submit\" id=\"logout\">Sign out</button></form></div>\
                 </nav>",
                csrf_field(s)
            )
        }
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{} · crm console</title><link rel=\"stylesheet\" href=\"/assets/console.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><a class=\"brand\" href=\"/\">crm</a>{nav}</header>\
         <main id=\"main\" tabindex=\"-1\"><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_attribute_breakouts() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("h-1.prod_x"), "h-1.prod_x");
    }

    #[test]
    fn badges_show_the_vocabulary_word_itself() {
        let b = badge(crm_domain::BatchStatus::RollbackIncomplete.as_str());
        assert!(b.contains(">rollback_incomplete<"));
        assert!(b.contains("bad"));
    }
}
