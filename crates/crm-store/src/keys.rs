//! Keys kept outside the database: the fingerprint pepper and the seal key.
//!
//! Both are 32 random bytes written once, as hex, to a file only the owner
//! can read (0600, in a 0700 directory when the store creates it). They live
//! beside the database, never inside it, so a copy of the database alone
//! can neither confirm a guessed upstream key nor open a sealed admin key.
//! Losing the pepper makes old fingerprints unmatchable; losing the seal key
//! makes sealed admin credentials unreadable: back them up with the database.

use crate::error::{Error, Result};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use crm_domain::SecretString;
use crm_domain::host::{SealContext, SealedSecret};
use crm_domain::ports::{SecretSealer, StoreError};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Environment variable naming the pepper file.
pub const PEPPER_FILE_ENV: &str = "CRM_PEPPER_FILE";
/// Environment variable holding the seal key itself (hex or base64, 32 bytes).
pub const SEAL_KEY_ENV: &str = "CRM_SEAL_KEY";
/// Environment variable naming the seal key file.
pub const SEAL_KEY_FILE_ENV: &str = "CRM_SEAL_KEY_FILE";

/// 32 secret bytes, zeroized on drop.
pub type KeyBytes = SecretBox<[u8; 32]>;

pub(crate) fn random_key() -> KeyBytes {
    let mut k = Box::new([0u8; 32]);
    rand::rng().fill_bytes(&mut k[..]);
    SecretBox::new(k)
}

/// Parses a key given as 64 hex digits or as base64 of 32 bytes.
pub fn parse_key_text(text: &str) -> Option<KeyBytes> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .ok()?
    };
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(SecretBox::new(Box::new(arr)))
}

/// Reads the key in `path`, creating it with fresh random bytes if absent.
///
/// Creation is atomic even when two processes open a new store at once:
/// the key is written to a private temporary file and hard-linked into
/// place, so a reader sees either no file or the whole key, and the loser of
/// the race reads the winner's key.
pub fn load_or_create_key(path: &Path) -> Result<KeyBytes> {
    let err = |detail: String| Error::KeyFile {
        path: path.to_owned(),
        detail,
    };
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let key = random_key();
        let tmp = tmp_path(path);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(format!("cannot create {}: {e}", tmp.display())))?;
        let written = f
            .write_all(format!("{}\n", hex::encode(key.expose_secret())).as_bytes())
            .and_then(|()| f.sync_all());
        drop(f);
        let linked = written.and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created key file");
                return Ok(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(format!("cannot write: {e}"))),
        }
    }
    read_key(path)
}

/// Reads an existing key file.
pub(crate) fn read_key(path: &Path) -> Result<KeyBytes> {
    let err = |detail: String| Error::KeyFile {
        path: path.to_owned(),
        detail,
    };
    let meta = fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode();
    if mode & 0o044 != 0 {
        // Anyone who reads the key reads every sealed credential: refuse
        // rather than warn into a log nobody reads.
        return Err(err(format!(
            "is readable by group or others (mode {:o}); run `chmod 600 {}` and start again",
            mode & 0o777,
            path.display()
        )));
    }
    if mode & 0o022 != 0 {
        tracing::warn!(
            path = %path.display(),
            "key file is writable by group or others; run chmod 600 on it"
        );
    }
    let text = fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    parse_key_text(&text).ok_or_else(|| err("does not hold a 32-byte key in hex or base64".into()))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    path.with_file_name(name)
}

/// Where the seal key comes from.
#[derive(Debug)]
pub enum SealKeySource {
    /// The key itself (from `CRM_SEAL_KEY`, or random for a throwaway store).
    Key(KeyBytes),
    /// A key file, created with a fresh key the first time something is sealed.
    File(PathBuf),
}

/// Seals secrets with XChaCha20-Poly1305.
///
/// The sealed form is `v2:<24-byte nonce hex>:<ciphertext+tag hex>`:
/// printable, versioned so the scheme can change, and authenticated
/// together with the value's [`SealContext`] (associated data), so a
/// tampered value, a wrong key, or a value moved to another row or field
/// fails to open instead of yielding garbage (docs/design.md §5 "Secrets").
/// The older `v1` form carried no associated data; it opens only in the
/// re-seal step that runs when a store opens ([`crate::reseal`]).
pub struct Sealer {
    source: SealKeySource,
    cipher: Mutex<Option<XChaCha20Poly1305>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            SealKeySource::Key(_) => f.write_str("Sealer(key: [redacted])"),
            SealKeySource::File(p) => write!(f, "Sealer(key file: {})", p.display()),
        }
    }
}

const SEALED_PREFIX: &str = "v2";
/// Values sealed before associated data existed.
pub(crate) const LEGACY_PREFIX: &str = "v1";

/// A sealed value split into its version, nonce and ciphertext.
fn parse_sealed(sealed: &SealedSecret) -> Result<(&str, Vec<u8>, Vec<u8>), StoreError> {
    let bad = |what: &str| StoreError::Sealing {
        detail: format!("sealed value is not a sealed secret ({what})"),
    };
    let mut parts = sealed.0.split(':');
    let (Some(version), Some(nonce), Some(ct), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected v2:<nonce>:<ciphertext>"));
    };
    if version != SEALED_PREFIX && version != LEGACY_PREFIX {
        return Err(bad("unknown version"));
    }
    let nonce = hex::decode(nonce).map_err(|_| bad("nonce is not hex"))?;
    if nonce.len() != 24 {
        return Err(bad("nonce is not 24 bytes"));
    }
    let ct = hex::decode(ct).map_err(|_| bad("ciphertext is not hex"))?;
    Ok((version, nonce, ct))
}

impl Sealer {
    pub fn new(source: SealKeySource) -> Self {
        Sealer {
            source,
            cipher: Mutex::new(None),
        }
    }

    /// The cipher, loading (and for sealing, creating) the key file on first use.
    fn with_cipher<T>(
        &self,
        create: bool,
        f: impl FnOnce(&XChaCha20Poly1305) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.cipher.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let key = match &self.source {
                SealKeySource::Key(k) => SecretBox::new(Box::new(*k.expose_secret())),
                SealKeySource::File(path) if create => load_or_create_key(path)?,
                SealKeySource::File(path) if path.exists() => read_key(path)?,
                SealKeySource::File(path) => {
                    return Err(StoreError::Sealing {
                        detail: format!(
                            "seal key file {} does not exist, so nothing sealed before can be opened; restore it from backup or set {SEAL_KEY_ENV}",
                            path.display()
                        ),
                    });
                }
            };
            *guard = Some(XChaCha20Poly1305::new(key.expose_secret().into()));
        }
        match guard.as_ref() {
            Some(c) => f(c),
            None => Err(StoreError::Sealing {
                detail: "seal key not loaded".into(),
            }),
        }
    }

    fn decrypt(
        &self,
        nonce: &[u8],
        ct: &[u8],
        aad: &[u8],
        what: &str,
    ) -> Result<SecretString, StoreError> {
        self.with_cipher(false, |c| {
            let plain = c
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
                .map_err(|_| StoreError::Sealing {
                    detail: format!(
                        "the sealed {what} does not open with this seal key (wrong key, the value was altered, or it was sealed for another row or field)"
                    ),
                })?;
            let text = String::from_utf8(plain).map_err(|_| StoreError::Sealing {
                detail: "opened value is not UTF-8".into(),
            })?;
            Ok(SecretString::from(text))
        })
    }

    /// Opens a `v1` value (sealed without associated data). Only the
    /// re-seal step calls this: anywhere else a v1 value is refused, so an
    /// old ciphertext cannot be moved to another row either.
    pub(crate) fn open_legacy(&self, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        let (version, nonce, ct) = parse_sealed(sealed)?;
        if version != LEGACY_PREFIX {
            return Err(StoreError::Sealing {
                detail: "not a v1 sealed value".into(),
            });
        }
        self.decrypt(&nonce, &ct, b"", "v1 value")
    }
}

impl SecretSealer for Sealer {
    fn seal(&self, ctx: &SealContext, secret: &SecretString) -> Result<SealedSecret, StoreError> {
        let aad = ctx.associated_data();
        self.with_cipher(true, |c| {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let ct = c
                .encrypt(
                    &nonce,
                    Payload {
                        msg: secret.expose_secret().as_bytes(),
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::Sealing {
                    detail: "encryption failed".into(),
                })?;
            Ok(SealedSecret(format!(
                "{SEALED_PREFIX}:{}:{}",
                hex::encode(nonce),
                hex::encode(ct)
            )))
        })
    }

    fn open(&self, ctx: &SealContext, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        let (version, nonce, ct) = parse_sealed(sealed)?;
        if version == LEGACY_PREFIX {
            return Err(StoreError::Sealing {
                detail: format!(
                    "the sealed {ctx} is in the old v1 form, bound to no row, and did not open when the database was opened (the warning at start names it and says why); start crm once with the seal key that sealed it ({SEAL_KEY_ENV} or {SEAL_KEY_FILE_ENV}) and it is re-sealed then. If that key is lost, so is the value: register it again (`crm host remove` and `crm host add` for a host's admin key)"
                ),
            });
        }
        self.decrypt(&nonce, &ct, &ctx.associated_data(), &ctx.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_accepts_hex_and_base64_of_32_bytes_only() {
        let hexkey = "ab".repeat(32);
        assert_eq!(
            parse_key_text(&hexkey).unwrap().expose_secret(),
            &[0xab; 32]
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(parse_key_text(&b64).unwrap().expose_secret(), &[7; 32]);
        assert!(parse_key_text("short").is_none());
        assert!(parse_key_text(&"ab".repeat(31)).is_none());
    }

    #[test]
    fn key_file_is_created_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("pepper");
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A key others can read is refused (it was only warned about).
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_key(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create_key(&path).is_ok());
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }

    fn host(id: &str) -> SealContext {
        SealContext::host_admin_key(&crm_domain::HostId::new(id))
    }

    /// A v1 value as crm sealed it before associated data existed.
    pub(crate) fn seal_v1(key: &[u8; 32], secret: &str) -> SealedSecret {
        let c = XChaCha20Poly1305::new(key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = c.encrypt(&nonce, secret.as_bytes()).unwrap();
        SealedSecret(format!("v1:{}:{}", hex::encode(nonce), hex::encode(ct)))
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(SealKeySource::File(dir.path().join("seal.key")));
        let secret = SecretString::from("sk-CANARY-sealing-test");
        let sealed = sealer.seal(&host("h-1"), &secret).unwrap();
        assert!(sealed.0.starts_with("v2:"));
        assert!(!sealed.0.contains("CANARY"));
        assert_ne!(
            sealer.seal(&host("h-1"), &secret).unwrap(),
            sealed,
            "fresh nonce each time"
        );
        let opened = sealer.open(&host("h-1"), &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "sk-CANARY-sealing-test");

        let other = Sealer::new(SealKeySource::Key(random_key()));
        let err = other.open(&host("h-1"), &sealed).unwrap_err();
        assert!(matches!(err, StoreError::Sealing { .. }));
        assert!(!err.to_string().contains("CANARY"));

        let mut tampered = sealed.0.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(sealer.open(&host("h-1"), &SealedSecret(tampered)).is_err());
        assert!(
            sealer
                .open(&host("h-1"), &SealedSecret("plaintext".into()))
                .is_err()
        );
    }

    /// Before v2 a ciphertext carried no associated data, so it opened in
    /// any row: these failed then (the context did not exist).
    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_and_field() {
        let sealer = Sealer::new(SealKeySource::Key(random_key()));
        let secret = SecretString::from("admin-key-of-a".to_owned());
        let sealed = sealer.seal(&host("h-a"), &secret).unwrap();
        let moved = sealer.open(&host("h-b"), &sealed).unwrap_err().to_string();
        assert!(moved.contains("another row or field"), "{moved}");
        assert!(moved.contains("h-b"), "names where it was opened: {moved}");
        let batch = crm_domain::BatchId::new("b-1");
        let pw = SealContext::batch_login_password(&batch, "u@crm.invalid");
        let sealed_pw = sealer.seal(&pw, &secret).unwrap();
        // The same row id under another table and field.
        let as_host = host("b-1/u@crm.invalid");
        assert!(sealer.open(&as_host, &sealed_pw).is_err());
        let other_login = SealContext::batch_login_password(&batch, "v@crm.invalid");
        assert!(sealer.open(&other_login, &sealed_pw).is_err());
        let other_batch =
            SealContext::batch_login_password(&crm_domain::BatchId::new("b-2"), "u@crm.invalid");
        assert!(sealer.open(&other_batch, &sealed_pw).is_err());
        assert_eq!(
            sealer.open(&pw, &sealed_pw).unwrap().expose_secret(),
            "admin-key-of-a"
        );
    }

    #[test]
    fn a_v1_value_opens_only_through_the_reseal_step() {
        let key = [9u8; 32];
        let sealer = Sealer::new(SealKeySource::Key(SecretBox::new(Box::new(key))));
        let v1 = seal_v1(&key, "old-admin-key");
        let err = sealer.open(&host("h-1"), &v1).unwrap_err().to_string();
        assert!(err.contains("v1"), "{err}");
        assert_eq!(
            sealer.open_legacy(&v1).unwrap().expose_secret(),
            "old-admin-key"
        );
        let v2 = sealer
            .seal(&host("h-1"), &SecretString::from("x".to_owned()))
            .unwrap();
        assert!(sealer.open_legacy(&v2).is_err(), "v2 is not v1");
    }

    #[test]
    fn opening_without_the_key_file_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(SealKeySource::File(dir.path().join("absent.key")));
        let sealed = SealedSecret(format!("v2:{}:{}", "00".repeat(24), "00".repeat(20)));
        let err = sealer.open(&host("h-1"), &sealed).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(
            !dir.path().join("absent.key").exists(),
            "open never creates a key"
        );
    }
}
