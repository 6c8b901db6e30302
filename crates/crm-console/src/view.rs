//! The page layout and the widgets every page shares, as maud templates:
//! every `(value)` in `html!` is escaped unless it is already [`Markup`], so
//! a page cannot insert raw text by accident. The console has no other way
//! to write HTML: no `format!` markup, no hand-written escape, no
//! `PreEscaped`.
//!
//! Why maud rather than askama: the pages are Rust code full of branches over
//! domain types (statuses, optional fields, per-role controls); maud keeps
//! them in Rust, checked at compile time, escaping by default, with no
//! template files to ship or keep in step with context structs, and one
//! small dependency.

use crate::html::{PageOpts, seg};
use crate::session::{Role, Session};
use chrono::{DateTime, Utc};
use crm_domain::ProviderRef;
use maud::{DOCTYPE, Markup, html};

/// A timestamp as operators read it.
pub fn time(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// A status word of docs/design.md §3, styled by its tone. The word itself is
/// always the vocabulary's `Display`, so the console says what the CLI says.
pub fn badge(word: &str) -> Markup {
    html! { span class={ "badge " (crate::html::tone(word)) } { (word) } }
}

pub fn link(href: &str, text: &str) -> Markup {
    html! { a href=(href) { (text) } }
}

/// A provider's page; its actions are below it (`/preview`, `/import`, `/verify`).
pub fn provider_path(p: &ProviderRef) -> String {
    format!(
        "/providers/{}/{}",
        seg(p.pack.as_str()),
        seg(p.provider.as_str())
    )
}

/// The page of one installed version of a pack.
pub fn pack_version_path(pack_id: &str, version: &str) -> String {
    format!("/packs/{}?version={}", seg(pack_id), seg(version))
}

pub fn provider_link(p: &ProviderRef) -> Markup {
    link(&provider_path(p), &p.to_string())
}

pub fn host_link(name: &str) -> Markup {
    link(&format!("/hosts/{}", seg(name)), name)
}

pub fn batch_link(id: &str) -> Markup {
    link(&format!("/batches/{}", seg(id)), id)
}

pub fn run_link(run: &crm_domain::reconcile::ReconcileRun) -> Markup {
    link(
        &format!("/reconcile-runs/{}", seg(run.id.as_str())),
        &run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

pub fn opt_time(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "never" } },
    }
}

/// A table; `rows` are rendered cells, `empty` is shown when there is none.
pub fn table(headers: &[&str], rows: &[Vec<Markup>], empty: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { (empty) }
        } @else {
            div.scroll { table {
                thead { tr { @for h in headers { th scope="col" { (h) } } } }
                tbody { @for row in rows { tr { @for cell in row { td { (cell) } } } } }
            } }
        }
    }
}

/// A definition list of label/value pairs.
pub fn facts(pairs: &[(&str, Markup)]) -> Markup {
    html! { dl.facts { @for (k, v) in pairs { dt { (k) } dd { (v) } } } }
}

pub fn code(text: &str) -> Markup {
    html! { code { (text) } }
}

pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button form that POSTs to `action` (only rendered for admins).
pub fn action_button(session: &Session, action: &str, label: &str, extra_fields: Markup) -> Markup {
    html! {
        form method="post" action=(action) class="inline" {
            (csrf_field(session)) (extra_fields)
            button type="submit" class="action" { (label) }
        }
    }
}

/// A link styled as an action (to a confirmation page; only for admins).
pub fn action_link(href: &str, label: &str) -> Markup {
    html! { a class="button action" href=(href) { (label) } }
}

/// The whole document around a page body.
pub fn layout(session: Option<&Session>, title: &str, body: Markup, opts: PageOpts) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = opts.refresh_secs { meta http-equiv="refresh" content=(s); }
                title { (title) " · crm console" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/" { "crm" }
                    @if let Some(s) = session {
                        @let role = match s.role { Role::Admin => "admin", Role::ReadOnly => "read-only" };
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Overview" } }
                                li { a href="/batches" { "Batches" } }
                                li { a href="/packs" { "Packs" } }
                                li { a href="/audit" { "Audit log" } }
                            }
                            div.who {
                                span.role data-role=(role) { "signed in: " (role) }
                                form method="post" action="/logout" class="inline" {
                                    (csrf_field(s))
                                    button type="submit" id="logout" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { h1 { (title) } (body) }
            }
        }
    }
}

/// A signed-in page as a response.
pub fn page(session: &Session, title: &str, body: Markup) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::response::Html(layout(Some(session), title, body, PageOpts::default()).into_string())
        .into_response()
}

/// A page for a visitor who is not signed in (sign-in, error pages): no
/// navigation, no form but what `body` holds.
pub fn bare_page(title: &str, body: Markup) -> axum::response::Html<String> {
    axum::response::Html(layout(None, title, body, PageOpts::default()).into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_markup_is_not_escaped_twice() {
        let hostile = "<script>alert('x')</script>";
        let cell = badge(hostile).into_string();
        assert!(!cell.contains("<script>"), "{cell}");
        assert!(cell.contains("&lt;script&gt;"), "{cell}");
        let t = table(&["h"], &[vec![badge("applied")]], "none").into_string();
        assert!(
            t.contains("<td><span class=\"badge good\">applied</span></td>"),
            "{t}"
        );
        let l = link("/x?a=\"b\"", hostile).into_string();
        assert!(l.contains("href=\"/x?a=&quot;b&quot;\""), "{l}");
    }

    #[test]
    fn badges_show_the_vocabulary_word_itself() {
        let b = badge(crm_domain::BatchStatus::RollbackIncomplete.as_str()).into_string();
        assert_eq!(b, "<span class=\"badge bad\">rollback_incomplete</span>");
    }

    #[test]
    fn the_layout_escapes_the_title_and_keeps_the_body() {
        let body = html! { p { "hello" } };
        let doc = layout(None, "Sign <in>", body, PageOpts::default()).into_string();
        assert!(
            doc.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{doc}"
        );
        assert!(
            doc.contains("<title>Sign &lt;in&gt; · crm console</title>"),
            "{doc}"
        );
        assert!(
            doc.contains("<h1>Sign &lt;in&gt;</h1><p>hello</p></main>"),
            "{doc}"
        );
        assert!(
            !doc.contains("<nav"),
            "no navigation without a session: {doc}"
        );
    }
}
