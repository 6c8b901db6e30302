//! What one acceptance run is asked to do: which host (real or simulated),
//! which pack and provider, which access modes, which upstream keys.
//!
//! Secrets arrive here already read (the binary reads environment variables
//! and files) and stay [`SecretString`]s.

use crate::error::{EvidenceError, Result};
use crm_domain::{AccessMode, SecretString};
use std::path::PathBuf;

/// The host under test.
#[derive(Debug)]
pub enum Target {
    /// A real sub2api host.
    Host {
        url: String,
        admin_key: SecretString,
        /// Route direct upstream probes through this prefix (an egress relay).
        upstream_via: Option<String>,
    },
    /// An in-process crm-sim with this profile (`current`, `legacy-2025-12`).
    Sim { profile: String },
}

/// Where the pack comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSource {
    File(PathBuf),
    /// A pack shipped inside crm, by id (`cn-official`).
    Bundled(String),
}

impl PackSource {
    /// A path when the text names an existing file or looks like one
    /// (contains a `/` or ends in `.toml`/`.yaml`/`.yml`/`.json`), else a
    /// bundled pack id.
    pub fn parse(text: &str) -> PackSource {
        let p = PathBuf::from(text);
        let looks_like_file = text.contains('/')
            || text.contains('\\')
            || [".toml", ".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| text.ends_with(ext));
        if p.is_file() || looks_like_file {
            PackSource::File(p)
        } else {
            PackSource::Bundled(text.to_owned())
        }
    }
}

impl std::fmt::Display for PackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackSource::File(p) => write!(f, "{}", p.display()),
            PackSource::Bundled(id) => write!(f, "bundled:{id}"),
        }
    }
}

/// `self_service`, `subscription` or `both`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modes {
    SelfService,
    Subscription,
    Both,
}

impl Modes {
    pub fn parse(text: &str) -> Result<Modes> {
        match text {
            "self_service" => Ok(Modes::SelfService),
            "subscription" => Ok(Modes::Subscription),
            "both" => Ok(Modes::Both),
            other => Err(EvidenceError::invalid(format!(
                "unknown mode {other:?}; expected self_service, subscription or both"
            ))),
        }
    }

    pub fn list(self) -> Vec<AccessMode> {
        match self {
            Modes::SelfService => vec![AccessMode::SelfService],
            Modes::Subscription => vec![AccessMode::Subscription],
            Modes::Both => vec![AccessMode::SelfService, AccessMode::Subscription],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Modes::SelfService => "self_service",
            Modes::Subscription => "subscription",
            Modes::Both => "both",
        }
    }
}

/// The upstream keys of a run.
#[derive(Debug)]
pub enum UpstreamKeys {
    /// Keys read from a file (one per line).
    Given(Vec<SecretString>),
    /// Only with a simulator: one fresh key per mode following the
    /// simulator's convention `sim-<behaviour>-<uuid>` (e.g. `ok`,
    /// `quota_exhausted`, `invalid_key`).
    Simulated { behaviour: String },
}

/// An existing host user to close access for, instead of a probe user crm creates.
#[derive(Debug)]
pub struct ExistingUser {
    pub email: String,
    pub password: SecretString,
}

/// One acceptance run.
#[derive(Debug)]
pub struct RunSpec {
    pub target: Target,
    pub pack: PackSource,
    /// `PROVIDER` (in the pack) or `PACK/PROVIDER`.
    pub provider: String,
    pub modes: Modes,
    pub upstream_keys: UpstreamKeys,
    pub user: Option<ExistingUser>,
    /// Parent of the timestamped evidence folder.
    pub out: PathBuf,
    /// Skip the rollback and leave the host provisioned.
    pub keep: bool,
    /// crm's database for the run. `None`: a temporary one, deleted after
    /// the run. Give one with `keep` to manage the kept batches with `crm`
    /// afterwards (`crm --db PATH batch list`).
    pub db: Option<PathBuf>,
    /// The folder's exact name (matrix cells); by default
    /// `<UTC timestamp>-[sim-<profile>-]<provider>-<modes>`.
    pub label: Option<String>,
}

/// The simulator's key convention for a behaviour: `sim-<behaviour>-<uuid>`.
pub fn simulated_key(behaviour: &str) -> SecretString {
    SecretString::from(format!("sim-{behaviour}-{}", uuid::Uuid::new_v4().simple()))
}

/// Behaviours the simulator understands, for validating matrix files.
pub fn check_behaviour(behaviour: &str) -> Result<()> {
    let probe = format!("sim-{behaviour}-x");
    match crm_sim::Behaviour::from_key_convention(&probe) {
        Some(_) => Ok(()),
        None => Err(EvidenceError::invalid(format!(
            "unknown simulated behaviour {behaviour:?}; expected one of: {}",
            crm_sim::Behaviour::ALL
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_are_paths_or_bundled_ids() {
        assert_eq!(
            PackSource::parse("cn-official"),
            PackSource::Bundled("cn-official".into())
        );
        assert_eq!(
            PackSource::parse("packs/my.toml"),
            PackSource::File("packs/my.toml".into())
        );
        assert_eq!(
            PackSource::parse("my.toml"),
            PackSource::File("my.toml".into())
        );
    }

    #[test]
    fn modes_and_behaviours_are_checked() {
        assert_eq!(Modes::parse("both").unwrap().list().len(), 2);
        assert!(
            Modes::parse("all")
                .unwrap_err()
                .to_string()
                .contains("both")
        );
        assert!(check_behaviour("quota_exhausted").is_ok());
        assert!(
            check_behaviour("broke")
                .unwrap_err()
                .to_string()
                .contains("invalid_key")
        );
    }
}
