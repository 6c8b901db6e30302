//! Pack use cases: install, list, show, lint, schema.

use crate::{App, Result};
use crm_domain::PackId;
use crm_domain::ports::PackRepo;
use crm_domain::spec::InstalledPack;
use std::path::Path;

/// Result of linting one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LintReport {
    pub file: String,
    pub valid: bool,
    pub pack_id: Option<String>,
    pub version: Option<String>,
    pub checksum: Option<String>,
    pub providers: usize,
    /// `file:line:column: message`, one per problem.
    pub diagnostics: Vec<String>,
}

/// Lints pack files without touching the database.
pub fn lint(paths: &[impl AsRef<Path>]) -> Vec<LintReport> {
    paths
        .iter()
        .map(|p| {
            let file = p.as_ref().display().to_string();
            match crm_pack::load_pack_file(p) {
                Ok(parsed) => LintReport {
                    file,
                    valid: true,
                    pack_id: Some(parsed.manifest.pack_id.to_string()),
                    version: Some(parsed.manifest.version.clone()),
                    providers: parsed.manifest.providers.len(),
                    checksum: Some(parsed.checksum),
                    diagnostics: vec![],
                },
                Err(crm_pack::PackError::Invalid { diagnostics, .. }) => LintReport {
                    file,
                    valid: false,
                    pack_id: None,
                    version: None,
                    checksum: None,
                    providers: 0,
                    diagnostics: diagnostics.iter().map(|d| d.to_string()).collect(),
                },
                Err(other) => LintReport {
                    file,
                    valid: false,
                    pack_id: None,
                    version: None,
                    checksum: None,
                    providers: 0,
                    diagnostics: vec![other.to_string()],
                },
            }
        })
        .collect()
}

/// The JSON Schema of the pack format.
pub fn schema() -> serde_json::Value {
    crm_pack::json_schema()
}

impl App {
    /// Installs a pack file and makes it current. A pack taking a bundled
    /// pack's id (`cn-official`) with other content is refused unless
    /// `replace_bundled` says the operator means it.
    pub async fn install_pack_file(
        &self,
        path: &Path,
        replace_bundled: bool,
    ) -> Result<InstalledPack> {
        let parsed = crm_pack::load_pack_file(path)?;
        self.install_parsed(parsed, path.display().to_string(), replace_bundled)
            .await
    }

    /// Installs pack text (an upload) and makes it current; the bundled ids
    /// are reserved as for [`App::install_pack_file`].
    pub async fn install_pack_text(
        &self,
        file_name: &str,
        text: &str,
        replace_bundled: bool,
    ) -> Result<InstalledPack> {
        let parsed = crm_pack::parse_pack(file_name, text)?;
        self.install_parsed(parsed, "upload".into(), replace_bundled)
            .await
    }

    /// Installs a pack shipped inside crm (`cn-official`).
    pub async fn install_bundled_pack(&self, pack_id: &str) -> Result<InstalledPack> {
        let mut known = Vec::new();
        for (file, text) in crm_pack::bundled::all() {
            let parsed = crm_pack::parse_pack(file, text)?;
            if parsed.manifest.pack_id.as_str() == pack_id {
                return self.install_parsed(parsed, "bundled".into(), false).await;
            }
            known.push(parsed.manifest.pack_id.to_string());
        }
        Err(crate::AppError::NotFound {
            what: format!("bundled pack {pack_id}"),
            hint: Some(format!("bundled packs: {}", known.join(", "))),
        })
    }

    async fn install_parsed(
        &self,
        parsed: crm_pack::ParsedPack,
        origin: String,
        replace_bundled: bool,
    ) -> Result<InstalledPack> {
        let target = format!(
            "pack:{}@{}",
            parsed.manifest.pack_id, parsed.manifest.version
        );
        // Bundled ids are reserved (docs/design.md §2): the pack's base URLs
        // receive the upstream keys of every import from it.
        let replaces = crm_pack::bundled::replaces_bundled(&parsed);
        if replaces && !replace_bundled {
            let e = crate::AppError::ReservedPack {
                pack_id: parsed.manifest.pack_id.to_string(),
            };
            self.audit("pack.install", &target, "error", Some(e.to_string()))
                .await;
            return Err(e);
        }
        let result = self
            .store
            .install_pack(InstalledPack {
                manifest: parsed.manifest,
                checksum: parsed.checksum,
                installed_at: self.clock.now(),
                origin,
                current: true,
            })
            .await;
        let replaced = if replaces { "; replace_bundled" } else { "" };
        match &result {
            Ok(p) => {
                self.audit(
                    "pack.install",
                    &target,
                    "ok",
                    Some(format!("checksum {}{replaced}", p.checksum)),
                )
                .await
            }
            Err(e) => {
                self.audit(
                    "pack.install",
                    &target,
                    "error",
                    Some(format!("{e}{replaced}")),
                )
                .await
            }
        }
        Ok(result?)
    }

    pub async fn list_packs(&self) -> Result<Vec<InstalledPack>> {
        Ok(self.store.list_packs().await?)
    }

    pub async fn get_pack(&self, pack: &str, version: Option<String>) -> Result<InstalledPack> {
        Ok(self.store.get_pack(&PackId::new(pack), version).await?)
    }
}
