//! `crm-pack`: the pack file format.
//!
//! A pack is a versioned TOML file that declares providers (docs/design.md §2;
//! the format is described in `docs/pack-format.md`). This crate turns pack
//! text into a validated [`crm_domain::spec::PackManifest`] plus its
//! canonical checksum, or into every problem found, each with
//! `file:line:column`. It does no I/O beyond [`load_pack_file`] and knows
//! nothing of hosts or storage.
//!
//! ```
//! let (file, text) = crm_pack::bundled::cn_official();
//! let pack = crm_pack::parse_pack(file, text).expect("the bundled pack is valid");
//! assert_eq!(pack.manifest.pack_id.as_str(), "cn-official");
//! assert_eq!(pack.checksum.len(), 64);
//! ```

pub mod bundled;
mod checksum;
mod diagnostic;
pub mod file;
mod read;
mod set;
mod validate;

pub use checksum::{canonical_json, checksum};
pub use diagnostic::Diagnostic;
pub use file::{SCHEMA_VERSION, json_schema};
pub use set::PackSet;
pub use validate::is_loopback;

use crm_domain::PackId;
use crm_domain::spec::PackManifest;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything that can go wrong with a pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The file was read but is not a valid pack; every problem is listed.
    #[error("{}", invalid_summary(.file, .diagnostics))]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// The file could not be read.
    #[error("cannot read pack file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Two packs with the same `pack_id` were loaded side by side.
    #[error(
        "pack `{pack_id}` is loaded twice; each pack id may appear once (install a new version instead)"
    )]
    DuplicatePack { pack_id: PackId },
}

fn invalid_summary(file: &str, diagnostics: &[Diagnostic]) -> String {
    let n = diagnostics.len();
    let mut s = format!(
        "pack file {file} is invalid ({n} problem{}):",
        if n == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        let _ = write!(s, "\n  {d}");
    }
    s
}

pub type Result<T, E = PackError> = std::result::Result<T, E>;

/// A validated pack and its canonical checksum.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPack {
    pub manifest: PackManifest,
    /// sha256 hex of [`canonical_json`]; see the `checksum` module.
    pub checksum: String,
}

/// Parses and validates pack text. `file_name` only labels diagnostics.
///
/// Returns every problem at once, in file order, as
/// [`PackError::Invalid`].
pub fn parse_pack(file_name: &str, text: &str) -> Result<ParsedPack> {
    let loc = diagnostic::Locator::new(file_name, text);
    let invalid = |mut diagnostics: Vec<Diagnostic>| {
        diagnostic::sort(&mut diagnostics);
        PackError::Invalid {
            file: file_name.to_owned(),
            diagnostics,
        }
    };
    // toml_edit 0.23 panics ("all items have spans") on some malformed
    // input found by fuzzing (fuzz/corpus-regressions/pack/); a pack file is
    // untrusted input, so such a panic becomes a diagnostic, not a crash.
    let parsed = std::panic::catch_unwind(|| toml_edit::Document::parse(text));
    let doc = match parsed {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            let message = format!("TOML syntax error: {}", e.message().trim_end());
            return Err(invalid(vec![loc.at(e.span(), "", message)]));
        }
        Err(_) => {
            let message = "TOML syntax error: the TOML parser failed on this file; \
                           check brackets, quotes and key/value lines"
                .to_owned();
            return Err(invalid(vec![loc.at(None, "", message)]));
        }
    };
    let mut diags = Vec::new();
    let read = read::read(&doc, &loc, &mut diags);
    let manifest = validate::validate(&read.file, &read, &loc, text, &mut diags);
    match manifest {
        Some(manifest) if diags.is_empty() => Ok(ParsedPack {
            checksum: checksum(&manifest),
            manifest,
        }),
        _ => Err(invalid(diags)),
    }
}

/// Reads and parses a pack file; diagnostics name the path as given.
pub fn load_pack_file(path: impl AsRef<Path>) -> Result<ParsedPack> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| PackError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_pack(&path.display().to_string(), &text)
}

/// The JSON Schema as committed in `packs/pack.schema.json`: pretty JSON
/// with a trailing newline.
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
