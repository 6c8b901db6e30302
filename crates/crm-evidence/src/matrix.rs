//! A matrix: several provider x mode cells run one after the other, each
//! into its own evidence folder, plus `matrix-summary.json` and
//! `matrix-summary.md`.
//!
//! The matrix file (TOML, or JSON when it ends in `.json`) lists the cells;
//! the host comes from the command line. Each cell names its upstream keys:
//! a file (relative to the matrix file) or, against the simulator, a
//! simulated behaviour (`ok`, `quota_exhausted`, `invalid_key`, ...).
//!
//! ```toml
//! [[cells]]
//! name = "deepseek-both"
//! provider = "deepseek"
//! mode = "both"
//! upstream_keys_file = "keys/deepseek.txt"
//!
//! [[cells]]
//! name = "kimi-quota"
//! provider = "kimi"
//! mode = "self_service"
//! simulated = "quota_exhausted"
//! profile = "legacy-2025-12"     # simulator only: this cell's host version
//! ```

use crate::chain::{RunOutcome, exit_code_for, run};
use crate::config::{ExistingUser, Modes, PackSource, RunSpec, Target, UpstreamKeys};
use crate::error::{EvidenceError, Result};
use crate::folder::{EvidenceFolder, SecretSet, scan_dir};
use crate::verdict::worst_of;
use chrono::Utc;
use crm_domain::{SecretString, Verdict};
use std::path::{Path, PathBuf};

pub use crate::summary::{CellLine, MATRIX_JSON, MATRIX_MD, MatrixSummary};

/// A matrix file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub cells: Vec<CellSpec>,
}

/// One cell of a matrix file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSpec {
    /// Folder name of the cell; defaults to `provider-mode`.
    #[serde(default)]
    pub name: Option<String>,
    /// `PROVIDER` or `PACK/PROVIDER`.
    pub provider: String,
    pub mode: Modes,
    /// Pack path or bundled id; defaults to the command line's `--pack`.
    #[serde(default)]
    pub pack: Option<String>,
    /// Upstream keys, one per line (relative to the matrix file).
    #[serde(default)]
    pub upstream_keys_file: Option<PathBuf>,
    /// Simulator only: a simulated upstream behaviour for generated keys.
    #[serde(default)]
    pub simulated: Option<String>,
    /// Simulator only: the profile for this cell.
    #[serde(default)]
    pub profile: Option<String>,
    /// Leave this cell's host provisioned.
    #[serde(default)]
    pub keep: Option<bool>,
}

impl CellSpec {
    pub fn display_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{:02}-{}-{}",
                index + 1,
                self.provider.replace('/', "."),
                self.mode.as_str()
            )
        })
    }
}

/// Reads a matrix file: JSON when it ends in `.json`, TOML otherwise.
pub fn load(path: &Path) -> Result<MatrixFile> {
    let text = std::fs::read_to_string(path).map_err(|e| EvidenceError::Read {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    parse(path, &text)
}

/// Parses matrix text (the path picks the format and names errors).
pub fn parse(path: &Path, text: &str) -> Result<MatrixFile> {
    let err = |detail: String| EvidenceError::Matrix {
        path: path.to_owned(),
        detail,
    };
    let file: MatrixFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| err(e.to_string()))?
    } else {
        toml::from_str(text).map_err(|e| err(e.to_string()))?
    };
    if file.cells.is_empty() {
        return Err(err("the matrix lists no [[cells]]".into()));
    }
    let mut names = Vec::new();
    for (i, c) in file.cells.iter().enumerate() {
        let name = c.display_name(i);
        if names.contains(&name) {
            return Err(err(format!("two cells are named {name:?}")));
        }
        names.push(name.clone());
        match (&c.upstream_keys_file, &c.simulated) {
            (Some(_), Some(_)) => {
                return Err(err(format!(
                    "cell {name:?} gives both upstream_keys_file and simulated; choose one"
                )));
            }
            (None, Some(b)) => {
                crate::config::check_behaviour(b).map_err(|e| err(format!("cell {name:?}: {e}")))?
            }
            _ => {}
        }
    }
    Ok(file)
}

/// The host every cell runs against.
#[derive(Debug, Clone)]
pub enum MatrixTarget {
    Host {
        url: String,
        admin_key: SecretString,
        upstream_via: Option<String>,
    },
    /// A fresh in-process simulator per cell (cells stay independent).
    Sim { profile: String },
}

/// Command-line side of a matrix run.
#[derive(Debug)]
pub struct MatrixRun {
    pub target: MatrixTarget,
    /// Default pack for cells that name none.
    pub pack: Option<String>,
    pub out: PathBuf,
    pub keep: bool,
    pub user: Option<ExistingUser>,
}

/// What [`run_matrix`] hands back.
#[derive(Debug)]
pub struct MatrixOutcome {
    pub folder: PathBuf,
    pub summary: MatrixSummary,
    pub cells: Vec<RunOutcome>,
}

fn keys_from_file(path: &Path) -> Result<Vec<SecretString>> {
    let text = path
        .to_str()
        .ok_or_else(|| EvidenceError::invalid(format!("{} is not a UTF-8 path", path.display())))?;
    crm_app::credentials::lines_from_file(text, "upstream keys")
        .map_err(|e| EvidenceError::invalid(e.to_string()))
}

/// Runs every cell of the matrix file under `<out>/<timestamp>-matrix/`.
pub async fn run_matrix(matrix_path: &Path, m: MatrixRun) -> Result<MatrixOutcome> {
    let file = load(matrix_path)?;
    let base = matrix_path.parent().unwrap_or(Path::new("."));
    let started_at = Utc::now();
    let mut folder = EvidenceFolder::create(
        &m.out,
        &format!("{}-matrix", started_at.format("%Y%m%dT%H%M%SZ")),
    )?;
    let mut lines = Vec::new();
    let mut outcomes = Vec::new();
    let mut secrets = SecretSet::default();
    if let MatrixTarget::Host { admin_key, .. } = &m.target {
        secrets.add(crate::folder::SecretKind::AdminKey, admin_key.clone());
    }
    for (i, cell) in file.cells.iter().enumerate() {
        let name = cell.display_name(i);
        let (target, host) = match (&m.target, &cell.profile) {
            (MatrixTarget::Host { .. }, Some(_)) => {
                lines.push(error_line(
                    &name,
                    cell,
                    "-",
                    "a cell profile needs --sim".into(),
                ));
                continue;
            }
            (
                MatrixTarget::Host {
                    url,
                    admin_key,
                    upstream_via,
                },
                None,
            ) => (
                Target::Host {
                    url: url.clone(),
                    admin_key: admin_key.clone(),
                    upstream_via: upstream_via.clone(),
                },
                url.clone(),
            ),
            (MatrixTarget::Sim { profile }, cell_profile) => {
                let p = cell_profile.clone().unwrap_or_else(|| profile.clone());
                (Target::Sim { profile: p.clone() }, format!("sim:{p}"))
            }
        };
        let keys = match (&cell.upstream_keys_file, &cell.simulated) {
            (Some(f), _) => match keys_from_file(&base.join(f)) {
                Ok(k) => UpstreamKeys::Given(k),
                Err(e) => {
                    lines.push(error_line(&name, cell, &host, e.to_string()));
                    continue;
                }
            },
            (None, Some(b)) => UpstreamKeys::Simulated {
                behaviour: b.clone(),
            },
            (None, None) if matches!(m.target, MatrixTarget::Sim { .. }) => {
                UpstreamKeys::Simulated {
                    behaviour: "ok".into(),
                }
            }
            (None, None) => {
                lines.push(error_line(
                    &name,
                    cell,
                    &host,
                    "the cell names no upstream_keys_file".into(),
                ));
                continue;
            }
        };
        let Some(pack) = cell.pack.clone().or_else(|| m.pack.clone()) else {
            lines.push(error_line(
                &name,
                cell,
                &host,
                "no pack: give the cell a pack or pass --pack".into(),
            ));
            continue;
        };
        let spec = RunSpec {
            target,
            pack: PackSource::parse(&pack),
            provider: cell.provider.clone(),
            modes: cell.mode,
            upstream_keys: keys,
            user: m.user.as_ref().map(|u| ExistingUser {
                email: u.email.clone(),
                password: u.password.clone(),
            }),
            out: folder.path().to_owned(),
            keep: cell.keep.unwrap_or(m.keep),
            // Cells never share a database: each is its own evidence.
            db: None,
            label: Some(name.clone()),
        };
        tracing::info!(cell = %name, "matrix cell");
        match run(spec).await {
            Ok(o) => {
                lines.push(CellLine {
                    name: name.clone(),
                    provider: cell.provider.clone(),
                    mode: cell.mode,
                    host,
                    verdict: Some(o.summary.verdict),
                    failure_class: o.summary.failure_class,
                    exit_code: o.exit_code(),
                    folder: o
                        .folder
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned()),
                    error: None,
                });
                for kind in [
                    crate::folder::SecretKind::AdminKey,
                    crate::folder::SecretKind::UpstreamKey,
                    crate::folder::SecretKind::UserPassword,
                    crate::folder::SecretKind::UserKey,
                ] {
                    for s in o.secrets.of_kind(kind) {
                        secrets.add(kind, s);
                    }
                }
                outcomes.push(o);
            }
            Err(e) => lines.push(error_line(&name, cell, &host, e.to_string())),
        }
    }
    let failed_cells = lines
        .iter()
        .filter(|l| l.verdict.is_none_or(|v| v == Verdict::Fail))
        .count();
    let verdict = if lines.iter().any(|l| l.verdict.is_none()) {
        Verdict::Fail
    } else {
        worst_of(lines.iter().filter_map(|l| l.verdict)).unwrap_or(Verdict::Fail)
    };
    let summary = MatrixSummary {
        file: MATRIX_JSON.into(),
        harness: format!("crm-acceptance {}", env!("CARGO_PKG_VERSION")),
        matrix_file: matrix_path.display().to_string(),
        started_at,
        finished_at: Utc::now(),
        verdict,
        failed_cells,
        exit_code: exit_code_for(verdict),
        cells: lines,
    };
    let value = serde_json::to_value(&summary).map_err(|e| EvidenceError::Write {
        path: folder.path().join(MATRIX_JSON),
        detail: e.to_string(),
    })?;
    folder.write_json(MATRIX_JSON, &value, &secrets)?;
    folder.write_text(
        MATRIX_MD,
        &crate::render::matrix_markdown(&summary),
        &secrets,
    )?;
    scan_dir(folder.path(), &secrets)?.into_result(folder.path())?;
    Ok(MatrixOutcome {
        folder: folder.path().to_owned(),
        summary,
        cells: outcomes,
    })
}

fn error_line(name: &str, cell: &CellSpec, host: &str, error: String) -> CellLine {
    tracing::error!(cell = %name, "{error}");
    CellLine {
        name: name.to_owned(),
        provider: cell.provider.clone(),
        mode: cell.mode,
        host: host.to_owned(),
        verdict: None,
        failure_class: None,
        exit_code: 1,
        folder: None,
        error: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_matrices_parse_and_are_checked() {
        let toml = r#"
[[cells]]
provider = "deepseek"
mode = "both"
upstream_keys_file = "keys.txt"

[[cells]]
name = "kimi-quota"
provider = "cn-official/kimi"
mode = "self_service"
simulated = "quota_exhausted"
profile = "legacy-2025-12"
"#;
        let m = parse(Path::new("m.toml"), toml).unwrap();
        assert_eq!(m.cells.len(), 2);
        assert_eq!(m.cells[0].display_name(0), "01-deepseek-both");
        assert_eq!(m.cells[1].display_name(1), "kimi-quota");

        let json = r#"{"cells":[{"provider":"kimi","mode":"subscription","simulated":"ok"}]}"#;
        assert_eq!(
            parse(Path::new("m.json"), json).unwrap().cells[0].mode,
            Modes::Subscription
        );

        let both = r#"[[cells]]
provider = "kimi"
mode = "both"
simulated = "ok"
upstream_keys_file = "k"
"#;
        let e = parse(Path::new("m.toml"), both).unwrap_err().to_string();
        assert!(e.contains("choose one"), "{e}");
        let bad = "[[cells]]\nprovider = \"kimi\"\nmode = \"all\"\n";
        assert!(parse(Path::new("m.toml"), bad).is_err());
        let typo = "[[cells]]\nprovider = \"kimi\"\nmode = \"both\"\nsimulated = \"brokke\"\n";
        let e = parse(Path::new("m.toml"), typo).unwrap_err().to_string();
        assert!(e.contains("quota_exhausted"), "{e}");
        assert!(parse(Path::new("m.toml"), "cells = []").is_err());
    }
}
