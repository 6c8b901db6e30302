//! Packs shipped inside the binary, so a fresh install has providers to
//! import without downloading anything.
//!
//! Their pack ids are reserved (docs/design.md §2): another pack may take
//! one only when the operator says so, because its base URLs receive the
//! upstream keys of every provider an operator imports from it.

use crate::ParsedPack;

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

/// The bundled pack with this id, parsed; `None` when the id is not
/// reserved. A bundled pack that does not parse is a build defect the
/// `bundled` tests catch, so it counts as absent here.
pub fn find(pack_id: &str) -> Option<ParsedPack> {
    all()
        .into_iter()
        .filter_map(|(file, text)| crate::parse_pack(file, text).ok())
        .find(|p| p.manifest.pack_id.as_str() == pack_id)
}

/// Whether `pack` takes a bundled pack's id without being that pack (same
/// id, other content): installing it replaces the pack crm ships.
pub fn replaces_bundled(pack: &ParsedPack) -> bool {
    find(pack.manifest.pack_id.as_str()).is_some_and(|b| b.checksum != pack.checksum)
}
