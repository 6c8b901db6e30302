//! `crm pack install|list|show|lint|schema`.

use crm_domain::spec::InstalledPack;

use super::{Ctx, Outcome};
use crate::cli::{OutputFormat, PackCommand};
use crate::render::{emit, fields, table, yes_no};

pub async fn run(ctx: &Ctx, cmd: PackCommand) -> anyhow::Result<Outcome> {
    match cmd {
        PackCommand::Install {
            path,
            bundled,
            replace_bundled,
        } => {
            let pack = match (bundled, path) {
                (Some(id), _) => ctx.app.install_bundled_pack(&id).await?,
                (None, Some(p)) => ctx.app.install_pack_file(&p, replace_bundled).await?,
                (None, None) => anyhow::bail!("give a pack file path or --bundled PACK_ID"),
            };
            emit(ctx.output, &pack, pack_fields);
        }
        PackCommand::List => {
            let packs = ctx.app.list_packs().await?;
            emit(ctx.output, &packs, |ps| {
                table(
                    &[
                        "Pack",
                        "Version",
                        "Current",
                        "Providers",
                        "Origin",
                        "Installed",
                        "Checksum",
                    ],
                    ps.iter()
                        .map(|p| {
                            vec![
                                p.manifest.pack_id.to_string(),
                                p.manifest.version.clone(),
                                yes_no(p.current),
                                p.manifest.providers.len().to_string(),
                                p.origin.clone(),
                                p.installed_at.format("%Y-%m-%d %H:%M").to_string(),
                                short(&p.checksum),
                            ]
                        })
                        .collect(),
                )
            });
        }
        PackCommand::Show { pack, version } => {
            let p = ctx.app.get_pack(&pack, version).await?;
            emit(ctx.output, &p, |p| {
                let providers = table(
                    &[
                        "Provider",
                        "Name",
                        "Platform",
                        "Account mode",
                        "Models",
                        "Access modes",
                    ],
                    p.manifest
                        .providers
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.to_string(),
                                s.display_name.clone(),
                                format!("{} (else {})", s.platform.native, s.platform.fallback),
                                s.account_mode.to_string(),
                                s.models.len().to_string(),
                                s.access
                                    .modes
                                    .iter()
                                    .map(|m| m.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            ]
                        })
                        .collect(),
                );
                format!("{}\n\n{providers}", pack_fields(p))
            });
        }
        PackCommand::Lint { paths } => {
            let reports = crm_app::packs::lint(&paths);
            let invalid = reports.iter().filter(|r| !r.valid).count();
            emit(ctx.output, &reports, |rs| {
                rs.iter()
                    .map(|r| {
                        if r.valid {
                            format!(
                                "{}: ok ({} {}, {} providers)",
                                r.file,
                                r.pack_id.as_deref().unwrap_or("-"),
                                r.version.as_deref().unwrap_or("-"),
                                r.providers
                            )
                        } else {
                            r.diagnostics.join("\n")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            if invalid > 0 {
                return Ok(Outcome::Failed {
                    message: format!("{invalid} of {} pack files are invalid", reports.len()),
                    hint: None,
                });
            }
        }
        PackCommand::Schema => {
            // The schema is JSON whatever the output format.
            emit(OutputFormat::Json, &crm_app::packs::schema(), |_| {
                String::new()
            });
        }
    }
    Ok(Outcome::Unchanged)
}

fn pack_fields(p: &InstalledPack) -> String {
    fields(&[
        ("pack", p.manifest.pack_id.to_string()),
        ("name", p.manifest.name.clone()),
        ("version", p.manifest.version.clone()),
        ("current", yes_no(p.current)),
        ("providers", p.manifest.providers.len().to_string()),
        ("origin", p.origin.clone()),
        ("installed", p.installed_at.to_rfc3339()),
        ("checksum", p.checksum.clone()),
    ])
}

/// The first 12 characters of a checksum, enough to tell versions apart.
fn short(s: &str) -> String {
    s.chars().take(12).collect()
}
