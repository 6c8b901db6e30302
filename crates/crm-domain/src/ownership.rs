//! Ownership markers and deterministic names (docs/design.md §5 "Ownership").
//!
//! Every object crm creates carries a name starting with [`NAME_PREFIX`] and,
//! where the host has a notes or description field, a marker naming the
//! batch. crm never modifies or deletes an object without its marker.

use crate::{BatchId, ProviderRef};

/// Prefix of every name crm gives a host object.
pub const NAME_PREFIX: &str = "crm-";

const MARKER_OPEN: &str = "[crm:batch=";

/// The marker text written into notes/description of objects of `batch`.
pub fn marker(batch: &BatchId) -> String {
    format!("{MARKER_OPEN}{batch}]")
}

/// Notes/description for a crm object: a human sentence plus the marker.
pub fn marked_text(batch: &BatchId, what: &str) -> String {
    format!("{what} — managed by crm {}", marker(batch))
}

/// The batch named by a marker inside `text`, if any.
pub fn parse_marker(text: &str) -> Option<BatchId> {
    let start = text.find(MARKER_OPEN)? + MARKER_OPEN.len();
    let rest = &text[start..];
    let end = rest.find(']')?;
    let id = &rest[..end];
    (!id.is_empty()).then(|| BatchId::new(id))
}

/// Whether a name follows crm's naming scheme (for hosts whose objects have
/// no notes field, the name is the only mark).
pub fn has_crm_name(name: &str) -> bool {
    name.starts_with(NAME_PREFIX)
}

/// A host-safe slug of a provider reference: `cn-official/deepseek` ->
/// `cn-official.deepseek`.
pub fn provider_slug(provider: &ProviderRef) -> String {
    format!("{}.{}", provider.pack, provider.provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_inside_free_text() {
        let b = BatchId::new("b-0193");
        let text = marked_text(&b, "DeepSeek upstream account");
        assert_eq!(parse_marker(&text), Some(b));
        assert_eq!(parse_marker("operator notes"), None);
        assert_eq!(parse_marker("[crm:batch=]"), None);
    }
}
