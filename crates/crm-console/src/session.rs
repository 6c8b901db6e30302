//! Login sessions: token check, sessions with expiry kept in the database,
//! the session cookie and the per-session CSRF token.
//!
//! The browser never holds an API token: after a login the cookie carries a
//! random session id whose digest the database keeps, so a stolen cookie
//! dies at expiry or logout, and logging out on any replica really ends it.
//! Tokens are compared in constant time (HMAC verification under a
//! per-process key).

use chrono::{DateTime, TimeDelta, Utc};
use crm_app::{App, AppError};
use crm_domain::ops::{ConsoleSession, SessionRole};
use crm_domain::ports::SessionRepo;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "crm_console_session";

/// How long a session lives after login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    ReadOnly,
}

impl Role {
    /// The principal the audit trail names.
    pub fn actor(self) -> &'static str {
        match self {
            Role::Admin => "console:admin",
            Role::ReadOnly => "console:read-only",
        }
    }
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The random id the cookie carries (the database keeps only its digest).
    pub id: String,
    pub role: Role,
    /// Must come back in the `csrf` field of every POST.
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

impl Session {
    fn from_stored(id: &str, stored: ConsoleSession) -> Session {
        Session {
            id: id.to_owned(),
            role: match stored.role {
                SessionRole::Admin => Role::Admin,
                SessionRole::ReadOnly => Role::ReadOnly,
            },
            csrf: csrf_of(id),
            expires: stored.expires_at,
        }
    }
}

/// What the database keeps for a session id: its SHA-256, so reading the
/// database does not sign anyone in.
pub fn id_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A session's CSRF token, derived from its id (HMAC keyed by the id), so
/// every replica computes the same token without storing it, and the token
/// a page shows does not reveal the id.
pub fn csrf_of(id: &str) -> String {
    hex::encode(mac_of(id.as_bytes(), b"crm-console csrf v1"))
}

/// Random 256-bit value as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

type HmacSha256 = Hmac<Sha256>;

/// Checks presented tokens against the configured ones.
pub struct TokenCheck {
    key: [u8; 32],
    admin: Vec<u8>,
    read_only: Option<Vec<u8>>,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCheck([redacted])")
    }
}

impl TokenCheck {
    pub fn new(admin: &SecretString, read_only: Option<&SecretString>) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mac = |t: &str| mac_of(&key, t.as_bytes());
        TokenCheck {
            admin: mac(admin.expose_secret()),
            read_only: read_only
                .map(|t| t.expose_secret())
                .filter(|t| !t.is_empty())
                .map(mac),
            key,
        }
    }

    /// The role a presented token grants, if any.
    pub fn role_for(&self, presented: &str) -> Option<Role> {
        if presented.is_empty() {
            return None;
        }
        // Both comparisons always run so timing does not tell which token matched.
        let admin = verify(&self.key, presented.as_bytes(), &self.admin);
        let read_only = self
            .read_only
            .as_ref()
            .is_some_and(|expected| verify(&self.key, presented.as_bytes(), expected));
        if admin {
            Some(Role::Admin)
        } else if read_only {
            Some(Role::ReadOnly)
        } else {
            None
        }
    }
}

fn mac_of(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Constant-time check that `data` has the MAC `expected`.
fn verify(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.verify_slice(expected).is_ok()
}

/// Constant-time equality of two short strings (CSRF tokens).
pub fn same_secret(a: &str, b: &str) -> bool {
    let key = [0x5au8; 32];
    verify(&key, a.as_bytes(), &mac_of(&key, b.as_bytes()))
}

/// The live sessions, kept in the database (`SessionRepo`) rather than in
/// this process, so that with several replicas on one PostgreSQL database a
/// browser stays signed in whichever replica answers, and a logout on one
/// ends the session on all (issue 22). Why a table rather than a signed
/// cookie: a logout must end the session server-side, which a signed cookie
/// can only do through a revocation list in the database anyway; a table
/// is that list and the session in one, needs no shared signing key, and
/// keeps the cookie a bare random id.
#[derive(Debug, Clone)]
pub struct Sessions {
    app: App,
}

impl Sessions {
    pub fn new(app: App) -> Self {
        Sessions { app }
    }

    /// Starts a session for `role` (the store forgets expired ones).
    pub async fn create(&self, role: Role) -> Result<Session, AppError> {
        let id = random_token();
        let now = self.app.now();
        let ttl = TimeDelta::from_std(SESSION_TTL).expect("eight hours fit a TimeDelta");
        let stored = ConsoleSession {
            id_digest: id_digest(&id),
            role: match role {
                Role::Admin => SessionRole::Admin,
                Role::ReadOnly => SessionRole::ReadOnly,
            },
            created_at: now,
            expires_at: now + ttl,
        };
        self.app.store().create_session(stored.clone()).await?;
        Ok(Session::from_stored(&id, stored))
    }

    /// The live session with this id, on whichever replica it began.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, AppError> {
        Ok(self
            .app
            .store()
            .get_session(&id_digest(id))
            .await?
            .map(|stored| Session::from_stored(id, stored)))
    }

    /// Ends the session everywhere.
    pub async fn remove(&self, id: &str) -> Result<(), AppError> {
        Ok(self.app.store().delete_session(&id_digest(id)).await?)
    }
}

/// Wrong tokens one client may send per minute before sign-in answers 429.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// Counts wrong sign-in tokens per client address, so a token cannot be
/// guessed at network speed.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    map: Mutex<HashMap<String, (Instant, u32)>>,
}

impl FailureLimiter {
    const WINDOW: Duration = Duration::from_secs(60);

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `client` used up its wrong attempts for this minute.
    pub fn blocked(&self, client: &str) -> bool {
        let map = self.lock();
        map.get(client)
            .is_some_and(|(start, n)| start.elapsed() < Self::WINDOW && *n >= FAILURES_PER_MINUTE)
    }

    pub fn record_failure(&self, client: &str) {
        let mut map = self.lock();
        map.retain(|_, (start, _)| start.elapsed() < Self::WINDOW);
        let entry = map.entry(client.to_owned()).or_insert((Instant::now(), 0));
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The session id from a `Cookie` header value.
pub fn session_id_from_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` value that stores the session id.
pub fn set_cookie(session: &Session, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session.id,
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_roles_and_nothing_else_passes() {
        let check = TokenCheck::new(
            &SecretString::from("admin-token-1"),
            Some(&SecretString::from("viewer-token-2")),
        );
        assert_eq!(check.role_for("admin-token-1"), Some(Role::Admin));
        assert_eq!(check.role_for("viewer-token-2"), Some(Role::ReadOnly));
        assert_eq!(check.role_for("admin-token-"), None);
        assert_eq!(check.role_for(""), None);
        let no_viewer = TokenCheck::new(&SecretString::from("a"), Some(&SecretString::from("")));
        assert_eq!(no_viewer.role_for(""), None);
    }

    #[test]
    fn cookie_parsing_finds_only_our_cookie() {
        assert_eq!(
            session_id_from_cookie("a=1; crm_console_session=abc; b=2"),
            Some("abc")
        );
        assert_eq!(session_id_from_cookie("crm_console_session_x=abc"), None);
        assert_eq!(session_id_from_cookie("crm_console_session="), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_csrf_tokens_follow_the_id() {
        let s = Session {
            id: random_token(),
            role: Role::ReadOnly,
            csrf: String::new(),
            expires: Utc::now(),
        };
        let cookie = set_cookie(&s, false);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let csrf = csrf_of(&s.id);
        assert_eq!(csrf, csrf_of(&s.id), "every replica derives the same token");
        assert_ne!(csrf, csrf_of(&random_token()));
        assert!(!csrf.contains(&s.id) && id_digest(&s.id) != s.id);
        assert!(same_secret(&csrf, &csrf.clone()));
        assert!(!same_secret(&csrf, "x"));
    }
}
