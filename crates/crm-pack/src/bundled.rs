//! Packs shipped inside the binary, so a fresh install has providers to
//! import without downloading anything.

/// The `cn-official` pack: file name (for diagnostics) and TOML text.
pub fn cn_official() -> (&'static str, &'static str) {
    (
        "packs/cn-official/pack.toml",
        include_str!("../../../packs/cn-official/pack.toml"),
    )
}

/// Every bundled pack, as (file name, text).
pub fn all() -> Vec<(&'static str, &'static str)> {
    vec![cn_official()]
}
