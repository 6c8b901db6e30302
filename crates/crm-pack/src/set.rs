//! Several packs side by side, addressed by pack-scoped provider refs.
//!
//! A provider's identity is `pack_id/provider_id` (docs/design.md §2), so two
//! packs may both declare `deepseek` without colliding; only a bare
//! provider id can be ambiguous, and [`PackSet::refs_for`] says so.

use crate::{PackError, ParsedPack};
use crm_domain::spec::{PackManifest, ProviderSpec};
use crm_domain::{PackId, ProviderRef};
use std::collections::BTreeMap;

/// Loaded packs, one per pack id.
#[derive(Debug, Clone, Default)]
pub struct PackSet {
    packs: BTreeMap<PackId, ParsedPack>,
}

impl PackSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pack; a second pack with the same `pack_id` is refused.
    pub fn insert(&mut self, pack: ParsedPack) -> Result<(), PackError> {
        let id = pack.manifest.pack_id.clone();
        if self.packs.contains_key(&id) {
            return Err(PackError::DuplicatePack { pack_id: id });
        }
        self.packs.insert(id, pack);
        Ok(())
    }

    pub fn get(&self, pack_id: &PackId) -> Option<&ParsedPack> {
        self.packs.get(pack_id)
    }

    /// The manifest and provider a ref names.
    pub fn resolve(&self, r: &ProviderRef) -> Option<(&PackManifest, &ProviderSpec)> {
        let pack = self.packs.get(&r.pack)?;
        let spec = pack.manifest.provider(r.provider.as_str())?;
        Some((&pack.manifest, spec))
    }

    /// Every provider of every pack, in pack then declaration order.
    pub fn provider_refs(&self) -> Vec<ProviderRef> {
        self.packs
            .values()
            .flat_map(|p| {
                p.manifest
                    .providers
                    .iter()
                    .map(|s| p.manifest.provider_ref(s))
            })
            .collect()
    }

    /// Every ref whose provider id is `provider_id`, across packs. More than
    /// one means a bare id is ambiguous and the caller must ask for
    /// `pack/provider`.
    pub fn refs_for(&self, provider_id: &str) -> Vec<ProviderRef> {
        self.provider_refs()
            .into_iter()
            .filter(|r| r.provider.as_str() == provider_id)
            .collect()
    }
}
