//! The sealing contract and the v1 fixture its upgrade tests write.

use super::fixtures::*;
use crm_domain::host::{CredentialRef, HostRecord, SealContext, SealedSecret};
use crm_domain::ports::{SecretSealer, Storage, StoreError};
use crm_domain::secret::ExposeSecret;
use crm_domain::*;
use serde_json::json;

/// The sealing contract: a sealed value stored through the ports opens only
/// in its own row and field (docs/design.md §5 "Secrets"). Copying a host's
/// sealed admin key into another host row, or a batch's sealed login
/// password into another batch's journal, gives a value that does not open
/// there; each still opens where it was sealed. Run it on an empty store.
pub async fn run_sealing_story<S: Storage + SecretSealer + ?Sized>(s: &S) {
    let secret = "admin-key-of-host-a-0001";
    let ctx_a = SealContext::host_admin_key(&HostId::new("h-seal-a"));
    let sealed = s
        .seal(&ctx_a, &SecretString::from(secret.to_owned()))
        .unwrap();
    for (id, name) in [("h-seal-a", "seal-a"), ("h-seal-b", "seal-b")] {
        let mut h = host(id, name);
        h.admin_credential = CredentialRef::Sealed {
            sealed: sealed.clone(),
        };
        s.add_host(h).await.unwrap();
    }
    let stored = |h: HostRecord| match h.admin_credential {
        CredentialRef::Sealed { sealed } => (h.id, sealed),
        other => panic!("credential kind changed: {other:?}"),
    };
    let (a_id, a_sealed) = stored(s.get_host("seal-a").await.unwrap());
    let (b_id, b_sealed) = stored(s.get_host("seal-b").await.unwrap());
    assert_eq!(
        s.open(&SealContext::host_admin_key(&a_id), &a_sealed)
            .unwrap()
            .expose_secret(),
        secret,
        "a sealed admin key opens in its own host row"
    );
    let moved = s
        .open(&SealContext::host_admin_key(&b_id), &b_sealed)
        .expect_err("host A's ciphertext copied into host B's row must not open there");
    assert!(matches!(moved, StoreError::Sealing { .. }), "{moved}");
    assert!(!moved.to_string().contains(secret), "{moved}");

    // Same ciphertext, same row id, another field: refused.
    let as_password = SealContext::batch_login_password(&BatchId::new("h-seal-a"), "x@y");
    assert!(s.open(&as_password, &a_sealed).is_err());

    // A login password moved between batches (journal and resources).
    let email = "crm-probe-seal@crm.invalid";
    let password = "probe-password-of-batch-1";
    for b in ["b-seal-1", "b-seal-2"] {
        s.create_batch(batch(
            b,
            "h-seal-a",
            "cn-official/deepseek",
            BatchStatus::Applying,
            0,
        ))
        .await
        .unwrap();
    }
    let b1 = BatchId::new("b-seal-1");
    let pw_sealed = s
        .seal(
            &SealContext::batch_login_password(&b1, email),
            &SecretString::from(password.to_owned()),
        )
        .unwrap();
    for b in ["b-seal-1", "b-seal-2"] {
        let mut user = intent(b, "user", JournalOp::Create, ResourceKind::User);
        user.desired = json!({ "email": email, "probe": true, "login_password_sealed": pw_sealed });
        let e = s.record_intent(user).await.unwrap();
        s.resolve_intent(
            &BatchId::new(b),
            e.seq,
            resolved(JournalState::Applied, Some(900)),
        )
        .await
        .unwrap();
    }
    for (b, opens) in [("b-seal-1", true), ("b-seal-2", false)] {
        let batch = BatchId::new(b);
        let entry = &s.journal(&batch).await.unwrap()[0];
        let resource = &s.resources(&batch).await.unwrap()[0];
        for desired in [&entry.desired, &resource.desired] {
            let ctx = SealContext::login_password_in(&batch, desired).expect("names its login");
            let sealed: SealedSecret =
                serde_json::from_value(desired["login_password_sealed"].clone()).unwrap();
            let opened = s.open(&ctx, &sealed);
            assert_eq!(
                opened.is_ok(),
                opens,
                "batch {b}: a login password opens only in the batch it was sealed for"
            );
            if let Ok(pw) = opened {
                assert_eq!(pw.expose_secret(), password);
            }
        }
    }
}

/// A database as an older crm left it: sealed values in the `v1` form (no
/// associated data). Each adapter's upgrade test writes these rows with
/// raw SQL at its schema version before the re-seal step existed, then
/// opens the store and calls [`check_v1_fixture_resealed`].
pub mod v1_fixture {
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};

    pub const HOST_ID: &str = "h-v1";
    pub const HOST_NAME: &str = "relay-v1";
    pub const ADMIN_KEY: &str = "admin-key-sealed-by-v1";
    pub const BATCH_ID: &str = "b-v1";
    pub const EMAIL: &str = "crm-probe-v1@crm.invalid";
    pub const PASSWORD: &str = "probe-password-sealed-by-v1";

    /// `secret` sealed as crm sealed before v2: `v1:<nonce>:<ct>` without
    /// associated data. Written out here because the sealer no longer
    /// produces it.
    pub fn seal_v1(key: &[u8; 32], secret: &str) -> String {
        let cipher = XChaCha20Poly1305::new(key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(&nonce, secret.as_bytes())
            .expect("encryption of a short value");
        format!("v1:{}:{}", hex::encode(nonce), hex::encode(ct))
    }

    /// The host's `admin_credential` column.
    pub fn admin_credential(key: &[u8; 32]) -> String {
        serde_json::json!({ "kind": "sealed", "sealed": seal_v1(key, ADMIN_KEY) }).to_string()
    }

    /// The `desired` columns of the closure user's journal entry and of the
    /// key's managed resource (each sealed separately, as copies were).
    pub fn user_desired(key: &[u8; 32]) -> String {
        serde_json::json!({
            "email": EMAIL, "probe": true, "login_password_sealed": seal_v1(key, PASSWORD)
        })
        .to_string()
    }

    pub fn key_desired(key: &[u8; 32]) -> String {
        serde_json::json!({
            "name": "crm-key", "user_id": 7, "group_id": 3,
            "login_email": EMAIL, "login_password_sealed": seal_v1(key, PASSWORD)
        })
        .to_string()
    }
}

/// After the re-seal step: every sealed value of [`v1_fixture`] is `v2`
/// and opens in its own row to the value sealed in `v1`.
pub async fn check_v1_fixture_resealed<S: Storage + SecretSealer + ?Sized>(s: &S) {
    use v1_fixture::*;
    let host = s.get_host(HOST_NAME).await.unwrap();
    let CredentialRef::Sealed { sealed } = &host.admin_credential else {
        panic!("the admin credential is still sealed");
    };
    assert!(sealed.0.starts_with("v2:"), "admin key re-sealed as v2");
    assert_eq!(
        s.open(&SealContext::host_admin_key(&host.id), sealed)
            .unwrap()
            .expose_secret(),
        ADMIN_KEY
    );
    let batch = BatchId::new(BATCH_ID);
    let mut specs: Vec<serde_json::Value> = s
        .journal(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.desired)
        .collect();
    specs.extend(
        s.resources(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.desired),
    );
    let with_password: Vec<_> = specs
        .iter()
        .filter(|d| d.get("login_password_sealed").is_some())
        .collect();
    assert!(
        with_password.len() >= 2,
        "the fixture's specs are all there"
    );
    for desired in with_password {
        let sealed: SealedSecret =
            serde_json::from_value(desired["login_password_sealed"].clone()).unwrap();
        assert!(
            sealed.0.starts_with("v2:"),
            "login password re-sealed as v2"
        );
        let ctx = SealContext::login_password_in(&batch, desired).unwrap();
        assert_eq!(s.open(&ctx, &sealed).unwrap().expose_secret(), PASSWORD);
    }
}
