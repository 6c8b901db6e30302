//! Layered configuration: defaults, then the TOML file (`--config`), then
//! `CRM_*` environment variables and flags (clap merges those two).

use anyhow::Context;
use crm_app::AppConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::GlobalArgs;

/// The optional configuration file.
///
/// ```toml
/// db = "/var/lib/crm/crm.db"
/// upstream_via = "http://127.0.0.1:8080/__upstream"
/// host_timeout_secs = 30
/// host_concurrency = 64
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub db: Option<PathBuf>,
    pub upstream_via: Option<String>,
    pub host_timeout_secs: Option<u64>,
    pub host_concurrency: Option<u16>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }
}

const DEFAULT_DB: &str = "crm.db";
const DEFAULT_HOST_TIMEOUT: u64 = 30;

/// The application configuration the flags, environment and file describe.
pub fn resolve(global: &GlobalArgs) -> anyhow::Result<AppConfig> {
    let file = match &global.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    Ok(merge(global, file))
}

fn merge(global: &GlobalArgs, file: FileConfig) -> AppConfig {
    let db = global
        .db
        .clone()
        .or(file.db)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let mut cfg = AppConfig::new(db);
    cfg.upstream_via = global.upstream_via.clone().or(file.upstream_via);
    cfg.host_timeout = Duration::from_secs(
        global
            .host_timeout
            .or(file.host_timeout_secs)
            .unwrap_or(DEFAULT_HOST_TIMEOUT),
    );
    if let Some(n) = global.host_concurrency.or(file.host_concurrency) {
        cfg.host_concurrency = usize::from(n.max(1));
    }
    cfg.actor = actor();
    cfg
}

/// `cli:<login>` so the audit trail says who ran the command.
fn actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("USERNAME")) {
        Ok(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: FileConfig =
            toml::from_str("db = \"from-file.db\"\nhost_timeout_secs = 5\nhost_concurrency = 4\n")
                .unwrap();
        let cli = Cli::try_parse_from(["crm", "--db", "flag.db", "audit"]).unwrap();
        let cfg = merge(&cli.global, file);
        assert_eq!(cfg.db_path, PathBuf::from("flag.db"));
        assert_eq!(cfg.host_timeout, Duration::from_secs(5));
        assert_eq!(cfg.host_concurrency, 4);
        let cli = Cli::try_parse_from(["crm", "--host-concurrency", "2", "audit"]).unwrap();
        assert_eq!(
            merge(&cli.global, FileConfig::default()).host_concurrency,
            2
        );
        assert!(Cli::try_parse_from(["crm", "--host-concurrency", "0", "audit"]).is_err());
        assert_eq!(cfg.upstream_via, None);

        let cli = Cli::try_parse_from(["crm", "audit"]).unwrap();
        if std::env::var_os("CRM_DB").is_none() {
            let cfg = merge(&cli.global, FileConfig::default());
            assert_eq!(cfg.db_path, PathBuf::from(DEFAULT_DB));
            assert_eq!(cfg.host_timeout, Duration::from_secs(30));
        }
        if std::env::var_os("CRM_HOST_CONCURRENCY").is_none() {
            let cfg = merge(&cli.global, FileConfig::default());
            assert_eq!(
                cfg.host_concurrency,
                crm_provision::Provisioner::DEFAULT_MAX_CONCURRENCY
            );
        }
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }
}
