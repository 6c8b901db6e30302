//! The evidence folder: numbered files written through one gate that
//! scrubs every secret the run knows about, and the scan that proves the
//! finished folder holds none of them.
//!
//! Two layers on purpose. Steps build their evidence from redacted types
//! (fingerprints, scrubbed outcomes), but hosts and providers echo keys in
//! error bodies, so [`EvidenceFolder::write_json`] replaces any known secret
//! before the bytes reach the disk and counts each replacement (a count
//! above zero means some evidence tried to carry a secret and is reported).
//! [`scan_dir`] then reads the files back, raw, and counts occurrences.

use crate::error::{EvidenceError, Result};
use crm_domain::SecretString;
use crm_domain::secret::ExposeSecret;
use std::path::{Path, PathBuf};

/// What a secret is, for reports (never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    AdminKey,
    UpstreamKey,
    UserPassword,
    UserKey,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::AdminKey => "admin_key",
            SecretKind::UpstreamKey => "upstream_key",
            SecretKind::UserPassword => "user_password",
            SecretKind::UserKey => "user_key",
        }
    }
}

/// Secrets shorter than this are neither scrubbed nor scanned for: they
/// would match ordinary words (the same floor as `crm_domain::secret::scrub`).
pub const MIN_SECRET_LEN: usize = 4;

/// The secrets of one run, held in memory only.
#[derive(Debug, Default)]
pub struct SecretSet {
    items: Vec<(SecretKind, SecretString)>,
}

impl SecretSet {
    pub fn add(&mut self, kind: SecretKind, secret: SecretString) {
        let raw = secret.expose_secret();
        let known = self.items.iter().any(|(_, s)| s.expose_secret() == raw);
        if raw.len() >= MIN_SECRET_LEN && !known {
            self.items.push((kind, secret));
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The secrets of one kind, in the order they were added.
    pub fn of_kind(&self, kind: SecretKind) -> Vec<SecretString> {
        self.items
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// How many secrets of each kind are held.
    pub fn kinds(&self) -> Vec<(SecretKind, usize)> {
        let mut out: Vec<(SecretKind, usize)> = Vec::new();
        for (k, _) in &self.items {
            match out.iter_mut().find(|(kind, _)| kind == k) {
                Some((_, n)) => *n += 1,
                None => out.push((*k, 1)),
            }
        }
        out
    }

    /// Replaces every known secret in `text`; returns the text and how many
    /// replacements were made.
    pub fn scrub(&self, text: &str) -> (String, usize) {
        let mut out = text.to_owned();
        let mut hits = 0;
        for (_, s) in &self.items {
            let raw = s.expose_secret();
            let n = out.matches(raw).count();
            if n > 0 {
                hits += n;
                out = out.replace(raw, "[redacted]");
            }
        }
        (out, hits)
    }

    fn occurrences(&self, text: &str) -> Vec<(SecretKind, usize)> {
        self.items
            .iter()
            .map(|(k, s)| (*k, text.matches(s.expose_secret()).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// One secret found in one file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LeakHit {
    pub file: String,
    pub kind: SecretKind,
    pub count: usize,
}

/// What a scan of a folder found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LeakScan {
    pub files_scanned: usize,
    pub secrets_checked: usize,
    pub hits: Vec<LeakHit>,
}

impl LeakScan {
    pub fn total_hits(&self) -> usize {
        self.hits.iter().map(|h| h.count).sum()
    }

    /// An error naming the leak, or `Ok` when the scan is clean.
    pub fn into_result(self, folder: &Path) -> Result<LeakScan> {
        if self.hits.is_empty() {
            return Ok(self);
        }
        let mut kinds: Vec<&str> = self.hits.iter().map(|h| h.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut files: Vec<&str> = self.hits.iter().map(|h| h.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        Err(EvidenceError::SecretLeak {
            hits: self.total_hits(),
            kinds: kinds.join(", "),
            files: files.join(", "),
            folder: folder.to_owned(),
        })
    }
}

/// Reads every file under `dir` (recursively) and counts occurrences of
/// each secret in its raw bytes.
pub fn scan_dir(dir: &Path, secrets: &SecretSet) -> Result<LeakScan> {
    let mut scan = LeakScan {
        files_scanned: 0,
        secrets_checked: secrets.len(),
        hits: Vec::new(),
    };
    scan_into(dir, dir, secrets, &mut scan)?;
    scan.hits.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(scan)
}

fn scan_into(root: &Path, dir: &Path, secrets: &SecretSet, scan: &mut LeakScan) -> Result<()> {
    let read_err = |path: &Path, e: std::io::Error| EvidenceError::Read {
        path: path.to_owned(),
        detail: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read_err(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| read_err(dir, e)))
        .collect::<Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scan_into(root, &path, secrets, scan)?;
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| read_err(&path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        scan.files_scanned += 1;
        let file = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (kind, count) in secrets.occurrences(&text) {
            scan.hits.push(LeakHit {
                file: file.clone(),
                kind,
                count,
            });
        }
    }
    Ok(())
}

/// A folder of evidence files for one run (or one matrix).
#[derive(Debug)]
pub struct EvidenceFolder {
    dir: PathBuf,
    files: Vec<String>,
    redactions: usize,
}

impl EvidenceFolder {
    /// Creates `parent/name`, or `parent/name-2`, `-3`... if it exists.
    pub fn create(parent: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(parent).map_err(|e| EvidenceError::Write {
            path: parent.to_owned(),
            detail: e.to_string(),
        })?;
        let mut n = 1;
        loop {
            let dir = if n == 1 {
                parent.join(name)
            } else {
                parent.join(format!("{name}-{n}"))
            };
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(EvidenceFolder {
                        dir,
                        files: Vec::new(),
                        redactions: 0,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => {
                    return Err(EvidenceError::Write {
                        path: dir,
                        detail: e.to_string(),
                    });
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// File names written so far, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Secrets replaced on the way to the disk so far.
    pub fn redactions(&self) -> usize {
        self.redactions
    }

    /// Writes pretty JSON, scrubbed of every secret in `secrets`.
    pub fn write_json(
        &mut self,
        file: &str,
        value: &serde_json::Value,
        secrets: &SecretSet,
    ) -> Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(|e| EvidenceError::Write {
            path: self.dir.join(file),
            detail: e.to_string(),
        })?;
        self.write_text(file, &(text + "\n"), secrets)
    }

    /// Writes text, scrubbed of every secret in `secrets`.
    pub fn write_text(&mut self, file: &str, text: &str, secrets: &SecretSet) -> Result<()> {
        let (clean, hits) = secrets.scrub(text);
        if hits > 0 {
            tracing::warn!(
                file,
                hits,
                "evidence carried a secret; it was redacted before writing"
            );
        }
        self.redactions += hits;
        let path = self.dir.join(file);
        std::fs::write(&path, clean).map_err(|e| EvidenceError::Write {
            path,
            detail: e.to_string(),
        })?;
        if !self.files.iter().any(|f| f == file) {
            self.files.push(file.to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_scrubbed_and_scans_find_what_slipped_past() {
        let dir = tempfile::tempdir().unwrap();
        let mut secrets = SecretSet::default();
        secrets.add(
            SecretKind::UpstreamKey,
            SecretString::from("sk-CANARY-123456"),
        );
        secrets.add(SecretKind::UserPassword, SecretString::from("abc"));
        assert_eq!(secrets.len(), 1, "too-short secrets are not tracked");

        let mut f = EvidenceFolder::create(dir.path(), "run").unwrap();
        f.write_json(
            "01-x.json",
            &serde_json::json!({"echo": "bad key sk-CANARY-123456"}),
            &secrets,
        )
        .unwrap();
        assert_eq!(f.redactions(), 1);
        let scan = scan_dir(f.path(), &secrets).unwrap();
        assert_eq!(scan.files_scanned, 1);
        assert_eq!(scan.total_hits(), 0);

        // A file written around the gate is caught by the scan.
        std::fs::write(
            f.path().join("stray.txt"),
            "sk-CANARY-123456 twice sk-CANARY-123456",
        )
        .unwrap();
        let scan = scan_dir(f.path(), &secrets).unwrap();
        assert_eq!(scan.total_hits(), 2);
        let err = scan.into_result(f.path()).unwrap_err().to_string();
        assert!(
            err.contains("upstream_key") && err.contains("stray.txt"),
            "{err}"
        );
        assert!(!err.contains("CANARY"), "{err}");
    }

    #[test]
    fn folders_never_overwrite_an_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = EvidenceFolder::create(dir.path(), "run").unwrap();
        let b = EvidenceFolder::create(dir.path(), "run").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(b.path().ends_with("run-2"));
    }
}
