//! Bearer-token authentication: an admin token and an optional read-only
//! token from the configuration, compared in constant time; the read-only
//! token may only call GET. A correct token always passes. Wrong ones are
//! counted per source (the socket address, or `X-Forwarded-For` behind a
//! `--trusted-proxy`) and answered with 429 once a source fails too often,
//! so strangers can slow each other down but never lock the admin out.

use crate::ApiState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crm_domain::SecretString;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 32;
/// Fewest distinct characters a token must have (a hex token of 32 random
/// bytes has 16; `aaaa…` or `abab…` are not secrets).
pub const MIN_TOKEN_VARIETY: usize = 8;
/// A command that prints a token meeting the rules.
pub const TOKEN_HINT: &str = "generate one with `openssl rand -hex 32`";

/// Why a configured token is refused at start, or `None` when it is fine.
pub fn token_weakness(token: &str) -> Option<String> {
    let t = token.trim();
    let len = t.chars().count();
    if len < MIN_TOKEN_LEN {
        return Some(format!(
            "is {len} characters; at least {MIN_TOKEN_LEN} are needed"
        ));
    }
    let distinct = t.chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_TOKEN_VARIETY {
        return Some(format!(
            "has only {distinct} distinct characters; at least {MIN_TOKEN_VARIETY} are needed"
        ));
    }
    None
}

/// Who is calling: the token that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Admin,
    ReadOnly,
}

impl Principal {
    /// The audit actor and idempotency scope of this principal.
    pub fn actor(self) -> &'static str {
        match self {
            Principal::Admin => "token:admin",
            Principal::ReadOnly => "token:read-only",
        }
    }
}

/// Digests of the configured tokens (the tokens themselves are not kept).
pub struct Tokens {
    admin: [u8; 32],
    read_only: Option<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("read_only", &self.read_only.is_some())
            .finish_non_exhaustive()
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Tokens {
    pub fn new(admin: &SecretString, read_only: Option<&SecretString>) -> crate::Result<Tokens> {
        for (what, t) in [("admin", Some(admin)), ("read-only", read_only)] {
            if let Some(why) = t.and_then(|t| token_weakness(t.expose_secret())) {
                return Err(crate::Error::Config(format!(
                    "the {what} token {why}; {TOKEN_HINT}"
                )));
            }
        }
        let admin_d = digest(admin.expose_secret().trim());
        let ro = read_only.map(|t| digest(t.expose_secret().trim()));
        if ro.is_some_and(|r| bool::from(r.ct_eq(&admin_d))) {
            return Err(crate::Error::Config(
                "the read-only token must differ from the admin token".into(),
            ));
        }
        Ok(Tokens {
            admin: admin_d,
            read_only: ro,
        })
    }

    /// Compares digests in constant time, so timing tells nothing about the token.
    pub fn check(&self, presented: &str) -> Option<Principal> {
        let d = digest(presented);
        if bool::from(d.ct_eq(&self.admin)) {
            return Some(Principal::Admin);
        }
        match &self.read_only {
            Some(ro) if bool::from(d.ct_eq(ro)) => Some(Principal::ReadOnly),
            _ => None,
        }
    }
}

/// Failed authentications per client address in a sliding minute.
#[derive(Debug)]
pub struct FailureLimiter {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(per_minute: u32) -> Self {
        FailureLimiter {
            per_minute,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds to wait when this address is over its budget.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let seen = self.lock();
        let (start, n) = seen.get(&ip)?;
        let elapsed = now.duration_since(*start);
        (elapsed < Duration::from_secs(60) && *n >= self.per_minute)
            .then(|| 60u64.saturating_sub(elapsed.as_secs()).max(1))
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.lock();
        if seen.len() > 10_000 {
            // Bound the memory an address-spraying client can take.
            seen.retain(|_, (s, _)| now.duration_since(*s) < Duration::from_secs(60));
        }
        let e = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The source whose failures are counted (see [`crm_app::source`]).
pub(crate) fn source(st: &ApiState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    st.inner.config.trusted_proxies.source(peer, forwarded)
}

/// A 401 with the challenge RFC 6750 asks for.
pub(crate) fn unauthorized() -> Response {
    let mut resp = ApiError::unauthorized().into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"crm\""),
    );
    resp
}

/// Checks the bearer token of a request. A correct token passes whatever
/// the source's failure count; a wrong one from a source over its budget
/// is 429, else 401 (and counted).
pub(crate) fn authenticate(st: &ApiState, req: &Request) -> Result<Principal, Response> {
    if let Some(p) = bearer(req).and_then(|t| st.inner.tokens.check(t)) {
        return Ok(p);
    }
    let ip = source(st, req);
    let now = Instant::now();
    if let Some(wait) = st.inner.limiter.blocked(ip, now) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-auth-failures",
            "Too many failed authentications",
            format!("this address sent too many wrong tokens; wait {wait}s"),
        );
        e.retry_after = Some(wait);
        return Err(e.into_response());
    }
    st.inner.limiter.failed(ip, now);
    metrics::counter!("crm_http_auth_failures_total").increment(1);
    Err(unauthorized())
}

/// Middleware of every `/api` route.
pub async fn require_token(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    let principal = match authenticate(&st, &req) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    if principal == Principal::ReadOnly && !matches!(*req.method(), Method::GET | Method::HEAD) {
        return ApiError::forbidden_read_only().into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_short_ones_refused() {
        let admin = SecretString::from("admin-token-0123456789abcdef012345");
        let ro = SecretString::from("read-only-token-0123456789abcdef");
        let t = Tokens::new(&admin, Some(&ro)).unwrap();
        assert_eq!(
            t.check("admin-token-0123456789abcdef012345"),
            Some(Principal::Admin)
        );
        assert_eq!(
            t.check("read-only-token-0123456789abcdef"),
            Some(Principal::ReadOnly)
        );
        assert_eq!(t.check("admin-token-0123456789abcdef01234"), None);
        assert!(Tokens::new(&SecretString::from("short"), None).is_err());
        assert!(Tokens::new(&admin, Some(&admin)).is_err());
    }

    #[test]
    fn weak_tokens_are_refused_with_a_command_that_makes_a_good_one() {
        // 20-31 characters passed before; so did no variety at all.
        for weak in [
            "admin-token-0123456789",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababab",
        ] {
            let e = Tokens::new(&SecretString::from(weak), None).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("openssl rand -hex 32"), "{text}");
            assert!(!text.contains(weak), "the token is not echoed: {text}");
        }
        let good = "3f9a1c0e7b5d2468ace013579bdf2468ace013579bdf02468ace13579bdf0246";
        assert!(token_weakness(good).is_none());
    }

    #[test]
    fn failures_over_budget_block_the_address_for_the_rest_of_the_minute() {
        let l = FailureLimiter::new(3);
        let ip = IpAddr::from([127, 0, 0, 1]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.blocked(ip, t0), None);
            l.failed(ip, t0);
        }
        assert!(l.blocked(ip, t0).is_some());
        assert_eq!(l.blocked(ip, t0 + Duration::from_secs(61)), None);
        assert_eq!(l.blocked(IpAddr::from([10, 0, 0, 1]), t0), None);
    }
}
