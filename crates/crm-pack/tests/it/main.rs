//! Integration tests of `crm-pack`: the bundled pack, checksum stability,
//! all-at-once diagnostics, packs side by side, and the committed schema.

mod bundled;
mod checksum;
mod diagnostics;
mod schema;
mod side_by_side;

use std::path::PathBuf;

/// A path relative to the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}
