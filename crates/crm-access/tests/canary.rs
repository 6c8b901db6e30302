//! Canary: user passwords, user keys and upstream keys never appear in
//! stored checks, the journal, managed resources, batch records or logs,
//! even when the upstream echoes the key back in its error body.
//!
//! Its own test binary (not a module of `it`): capturing logs needs a
//! subscriber, and tracing caches per-callsite interest process-wide, so
//! tests running in parallel threads of one process can make the capture miss
//! events.

#[path = "it/support.rs"]
mod support;

use crm_access::{
    ClosureRequest, KeyChoice, UserChoice, VerifyOptions, check_key_refused, close_access,
    verify_access,
};
use crm_domain::host::SealedSecret;
use crm_domain::observed::{CallOutcome, ModelListing, UserDraft};
use crm_domain::ports::{AccessCheckRepo, BatchRepo, HostApi, SecretSealer, UpstreamProbe};
use crm_domain::secret::ExposeSecret;
use crm_domain::{AccessMode, ResourceKind, SecretString};
use crm_testkit::sim_key;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use support::World;

/// A provider that echoes the key it was given in its error bodies (real
/// providers do: "Incorrect API key provided: sk-...").
struct EchoingUpstream<'a> {
    inner: &'a dyn UpstreamProbe,
    echoed: AtomicU32,
}

impl EchoingUpstream<'_> {
    fn echo(&self, mut o: CallOutcome, key: &SecretString) -> CallOutcome {
        if !o.ok {
            self.echoed.fetch_add(1, Ordering::Relaxed);
            let k = key.expose_secret();
            o.message = Some(format!("Incorrect API key provided: {k}"));
            o.body_excerpt =
                format!("{{\"error\":{{\"message\":\"Incorrect API key provided: {k}\"}}}}");
        }
        o
    }
}

#[async_trait::async_trait]
impl UpstreamProbe for EchoingUpstream<'_> {
    async fn models(&self, base_url: String, key: &SecretString) -> ModelListing {
        let mut l = self.inner.models(base_url, key).await;
        l.outcome = self.echo(l.outcome, key);
        l
    }
    async fn chat(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        let o = self.inner.chat(base_url, key, model).await;
        self.echo(o, key)
    }
    async fn messages(&self, base_url: String, key: &SecretString, model: String) -> CallOutcome {
        let o = self.inner.messages(base_url, key, model).await;
        self.echo(o, key)
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_evidence_journal_or_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let w = World::new().await;
    let upstream_key = sim_key("invalid_key", "CANARYUPSTREAM");
    let echo = EchoingUpstream {
        inner: &*w.env.upstream,
        echoed: AtomicU32::new(0),
    };
    let mut ports = w.ports();
    ports.upstream = &echo;
    let provider = w.provider("deepseek");

    // Batch 1: a probe user crm creates (generated password).
    let ss = w
        .import("deepseek", AccessMode::SelfService, &upstream_key)
        .await;
    let probe = close_access(&ports, w.caps(), &ss, &provider, &ClosureRequest::probe())
        .await
        .unwrap();
    // Batch 2: an operator's user with a known password.
    let operator_password = SecretString::from("CANARY-operator-password-42");
    w.env
        .host
        .create_user(&UserDraft {
            email: "operator@example.com".into(),
            password: operator_password.clone(),
            username: None,
            notes: None,
            balance: None,
            allowed_groups: vec![],
        })
        .await
        .unwrap();
    let sub = w
        .import("deepseek", AccessMode::Subscription, &upstream_key)
        .await;
    let operator = close_access(
        &ports,
        w.caps(),
        &sub,
        &provider,
        &ClosureRequest {
            user: UserChoice::Existing {
                email: "operator@example.com".into(),
                password: operator_password.clone(),
            },
            key: KeyChoice::Create,
            starting_balance: None,
            validity_days: None,
        },
    )
    .await
    .unwrap();

    let opts = VerifyOptions {
        skip_completion: false,
        upstream_keys: vec![upstream_key.clone()],
        ..w.verify_options()
    };
    let c1 = verify_access(&ports, &ss, &provider, &probe.key, &opts)
        .await
        .unwrap();
    let c2 = verify_access(&ports, &sub, &provider, &operator.key, &opts)
        .await
        .unwrap();
    assert!(
        echo.echoed.load(Ordering::Relaxed) > 0,
        "the upstream echoed the key"
    );
    w.rollback(&ss).await;
    check_key_refused(&ports, &ss, &probe.key).await.unwrap();

    // The probe user's password, as crm sealed it.
    let user_entry = w
        .env
        .store
        .journal(&ss)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == ResourceKind::User)
        .unwrap();
    let sealed: SealedSecret =
        serde_json::from_value(user_entry.desired["login_password_sealed"].clone()).unwrap();
    let ctx = crm_domain::host::SealContext::login_password_in(&ss, &user_entry.desired).unwrap();
    let probe_password = w.env.store.open(&ctx, &sealed).unwrap();

    let mut haystack = String::new();
    for b in [&ss, &sub] {
        haystack += &serde_json::to_string(&w.env.store.access_checks(b).await.unwrap()).unwrap();
        haystack += &serde_json::to_string(&w.env.store.journal(b).await.unwrap()).unwrap();
        haystack += &serde_json::to_string(&w.env.store.resources(b).await.unwrap()).unwrap();
        haystack += &serde_json::to_string(&w.env.store.get_batch(b).await.unwrap()).unwrap();
    }
    haystack += &format!("{probe:?}{operator:?}{c1:?}{c2:?}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("access check recorded"),
        "logs were captured"
    );
    haystack += &logged;

    assert!(
        haystack.contains("[redacted]"),
        "echoed keys were scrubbed, not absent"
    );
    let secrets = [
        ("upstream key", upstream_key.expose_secret()),
        ("probe user key", probe.key.secret.expose_secret()),
        ("operator user key", operator.key.secret.expose_secret()),
        ("probe password", probe_password.expose_secret()),
        ("operator password", operator_password.expose_secret()),
    ];
    for (what, secret) in secrets {
        assert!(secret.len() >= 16, "{what} is a real canary");
        assert!(!haystack.contains(secret), "{what} leaked");
    }
    assert!(!haystack.contains("CANARY"), "no canary text at all");
}
