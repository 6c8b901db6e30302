//! The actions, one module per resource mirroring `crm-api/src/routes/`:
//! sign-in and sign-out, a host's probe and drift check or repair, a
//! provider's import preview, import and access check, a batch's rollback and
//! resume.
//!
//! Each action is a confirmation step (a page, or the preview itself)
//! followed by a POST that checks the session's CSRF token, refuses
//! read-only sessions ([`crate::Admin`] extractor: 403) and starts a recorded
//! operation whose page shows live progress. This module holds what the
//! actions share; the resource modules use it and never each other.

pub mod batches;
pub mod hosts;
pub mod providers;
pub mod sign_in;

use crate::html::seg;
use crate::session::Session;
use crate::view::{csrf_field, page};
use axum::response::{IntoResponse, Redirect, Response};
use crm_domain::SecretString;
use crm_domain::ops::Operation;
use maud::{Markup, html};
use secrecy::ExposeSecret;

/// The operation page of a started action.
fn to_operation(op: &Operation) -> Response {
    Redirect::to(&format!("/operations/{}", seg(op.id.as_str()))).into_response()
}

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A confirmation page: what will happen, and one button that does it.
fn confirm_page(
    s: &Session,
    title: &str,
    explain: Markup,
    action: &str,
    fields: Markup,
    button: &str,
    cancel: &str,
) -> Response {
    let body = html! {
        (explain)
        form method="post" action=(action) class="confirm" {
            (csrf_field(s)) (fields)
            button type="submit" class="action" id="confirm" { (button) }
            " "
            a href=(cancel) class="button" { "Cancel" }
        }
    };
    page(s, title, body)
}

/// Pasted upstream keys, one per line; each is a secret from here on.
fn split_keys(text: &SecretString) -> Vec<SecretString> {
    text.expose_secret()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| SecretString::from(l.to_owned()))
        .collect()
}

fn last4(key: &SecretString) -> String {
    let chars: Vec<char> = key.expose_secret().chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// The default of an optional key field: no key.
fn no_keys() -> SecretString {
    SecretString::from(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_keys_split_by_line_and_show_only_their_last_four() {
        let keys = split_keys(&SecretString::from("  sk-aaaa1111 \n\n sk-bbbb2222\n"));
        assert_eq!(keys.len(), 2);
        assert_eq!(last4(&keys[1]), "2222");
        assert_eq!(last4(&SecretString::from("ab")), "ab");
    }
}
