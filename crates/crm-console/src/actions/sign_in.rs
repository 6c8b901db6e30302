//! Sign-in with a token and sign-out.

use super::CsrfForm;
use crate::session;
use crate::view::bare_page;
use crate::{Console, ConsoleError, Result, Viewer, check_csrf};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use crm_domain::SecretString;
use maud::html;
use secrecy::ExposeSecret;
use std::net::SocketAddr;

/// The login form's body. The token is a secret from the moment it is parsed.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: SecretString,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm([redacted])")
    }
}

pub async fn login(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // A correct token always signs in: strangers' wrong guesses from the
    // same address (or a shared proxy) must not lock the operator out.
    if let Some(role) = c.tokens.role_for(form.token.expose_secret().trim()) {
        let s = match c.sessions.create(role).await {
            Ok(s) => s,
            Err(e) => return ConsoleError::from(e).into_response(),
        };
        tracing::info!(principal = role.actor(), "console sign-in");
        return (
            StatusCode::SEE_OTHER,
            [
                (
                    header::SET_COOKIE,
                    session::set_cookie(&s, c.secure_cookies),
                ),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response();
    }
    let peer = peer
        .map(|Extension(ConnectInfo(addr))| addr.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = c.trusted_proxies.source(peer, forwarded).to_string();
    if c.failures.blocked(&client) {
        tracing::warn!(%client, "console sign-in refused: too many wrong tokens");
        let body = html! {
            p.error role="alert" {
                "Too many wrong tokens from this address; wait a minute and try again."
            }
        };
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            bare_page("Sign in", body),
        )
            .into_response();
    }
    c.failures.record_failure(&client);
    tracing::warn!(%client, "console sign-in refused: unknown token");
    let body = html! {
        p.error role="alert" { "That token was not accepted." }
        p { a href="/login" { "Try again" } }
    };
    (StatusCode::UNAUTHORIZED, bare_page("Sign in", body)).into_response()
}

pub async fn logout(
    State(c): State<Console>,
    Viewer(s): Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    check_csrf(&s, &form.csrf)?;
    c.sessions.remove(&s.id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::clear_cookie(c.secure_cookies)),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response())
}
