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
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use crm_domain::SecretString;
use crm_domain::host::SealedSecret;
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
/// The sealed form is `v1:<24-byte nonce hex>:<ciphertext+tag hex>`: printable,
/// versioned so the scheme can change, and authenticated, so a tampered or
/// wrong-key value fails to open instead of yielding garbage.
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

const SEALED_PREFIX: &str = "v1";

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
}

impl SecretSealer for Sealer {
    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, StoreError> {
        self.with_cipher(true, |c| {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let ct = c
                .encrypt(&nonce, secret.expose_secret().as_bytes())
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

    fn open(&self, sealed: &SealedSecret) -> Result<SecretString, StoreError> {
        let bad = |what: &str| StoreError::Sealing {
            detail: format!("sealed value is not a v1 sealed secret ({what})"),
        };
        let mut parts = sealed.0.split(':');
        let (Some(SEALED_PREFIX), Some(nonce), Some(ct), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected v1:<nonce>:<ciphertext>"));
        };
        let nonce = hex::decode(nonce).map_err(|_| bad("nonce is not hex"))?;
        if nonce.len() != 24 {
            return Err(bad("nonce is not 24 bytes"));
        }
        let ct = hex::decode(ct).map_err(|_| bad("ciphertext is not hex"))?;
        self.with_cipher(false, |c| {
            let plain = c
                .decrypt(XNonce::from_slice(&nonce), ct.as_slice())
                .map_err(|_| StoreError::Sealing {
                    detail: "sealed value does not open with this seal key (wrong key, or the value was altered)".into(),
                })?;
            let text = String::from_utf8(plain).map_err(|_| StoreError::Sealing {
                detail: "opened value is not UTF-8".into(),
            })?;
            Ok(SecretString::from(text))
        })
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

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(SealKeySource::File(dir.path().join("seal.key")));
        let secret = SecretString::from("sk-CANARY-sealing-test");
        let sealed = sealer.seal(&secret).unwrap();
        assert!(sealed.0.starts_with("v1:"));
        assert!(!sealed.0.contains("CANARY"));
        assert_ne!(
            sealer.seal(&secret).unwrap(),
            sealed,
            "fresh nonce each time"
        );
        let opened = sealer.open(&sealed).unwrap();
        assert_eq!(opened.expose_secret(), "sk-CANARY-sealing-test");

        let other = Sealer::new(SealKeySource::Key(random_key()));
        let err = other.open(&sealed).unwrap_err();
        assert!(matches!(err, StoreError::Sealing { .. }));
        assert!(!err.to_string().contains("CANARY"));

        let mut tampered = sealed.0.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(sealer.open(&SealedSecret(tampered)).is_err());
        assert!(sealer.open(&SealedSecret("plaintext".into())).is_err());
    }

    #[test]
    fn opening_without_the_key_file_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(SealKeySource::File(dir.path().join("absent.key")));
        let sealed = SealedSecret(format!("v1:{}:{}", "00".repeat(24), "00".repeat(20)));
        let err = sealer.open(&sealed).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(
            !dir.path().join("absent.key").exists(),
            "open never creates a key"
        );
    }
}
