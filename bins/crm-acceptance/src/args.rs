//! Command-line arguments and their translation into a run or a matrix of
//! runs. Secrets are read here, from environment variables and files named
//! on the command line, never from the command line itself.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use crm_domain::SecretString;
use crm_evidence::matrix::{MatrixRun, MatrixTarget};
use crm_evidence::{ExistingUser, Modes, PackSource, RunSpec, Target, UpstreamKeys};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "crm-acceptance",
    version,
    about = "Evidence that a sub2api host really serves a provider: numbered JSON files, a verdict and an exit code (0 pass, 1 fail)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the chain (probe, pack, preview, import, access check, reconcile,
    /// rollback, post-rollback check, direct upstream probes) once, or once
    /// per cell of a matrix.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sub2api host under test, e.g. `https://relay.example.com`.
    #[arg(long, required_unless_present = "sim", conflicts_with = "sim")]
    pub host_url: Option<String>,
    /// Environment variable holding the host's admin API key.
    #[arg(long, requires = "host_url")]
    pub admin_key_env: Option<String>,
    /// Run against an in-process crm-sim instead of a real host.
    #[arg(long)]
    pub sim: bool,
    /// Simulator profile (the sub2api version it pretends to be).
    #[arg(long, default_value = "current", requires = "sim")]
    pub profile: String,
    /// Pack file path or bundled pack id.
    #[arg(long, default_value = "cn-official")]
    pub pack: String,
    /// Provider id in the pack (or PACK/PROVIDER).
    #[arg(long, required_unless_present = "matrix")]
    pub provider: Option<String>,
    /// self_service, subscription or both.
    #[arg(long, required_unless_present = "matrix", value_parser = parse_modes)]
    pub mode: Option<Modes>,
    /// Upstream keys, one per line (`-` for stdin). Default with --sim:
    /// a fresh simulated key per mode.
    #[arg(long)]
    pub upstream_keys_file: Option<String>,
    /// With --sim and no keys file: the simulated upstream behaviour
    /// (ok, quota_exhausted, invalid_key, rate_limited, ...).
    #[arg(long, default_value = "ok", requires = "sim")]
    pub sim_behaviour: String,
    /// An existing host user to close access for (else crm creates a probe user).
    #[arg(long, requires = "user_password_env")]
    pub user_email: Option<String>,
    /// Environment variable holding that user's password.
    #[arg(long, requires = "user_email")]
    pub user_password_env: Option<String>,
    /// Route direct upstream probes through this prefix (an egress relay).
    #[arg(long, conflicts_with = "sim")]
    pub upstream_via: Option<String>,
    /// Parent folder of the timestamped evidence folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the rollback: leave the host provisioned after acceptance.
    #[arg(long)]
    pub keep: bool,
    /// crm's database for the run (default: a temporary one, deleted after
    /// the run). With --keep, lets `crm --db PATH` manage the kept batches.
    #[arg(long, conflicts_with = "matrix")]
    pub db: Option<PathBuf>,
    /// A TOML or JSON file of provider x mode cells to run one after the other.
    #[arg(long)]
    pub matrix: Option<PathBuf>,
}

fn parse_modes(s: &str) -> Result<Modes, String> {
    Modes::parse(s).map_err(|e| e.to_string())
}

fn secret_env(var: &str, what: &str) -> anyhow::Result<SecretString> {
    crm_app::credentials::from_env(var, what).map_err(anyhow::Error::new)
}

impl RunArgs {
    fn admin_key(&self) -> anyhow::Result<SecretString> {
        let Some(var) = &self.admin_key_env else {
            bail!(
                "--host-url needs --admin-key-env VAR naming the variable that holds the admin key"
            );
        };
        secret_env(var, "admin key")
    }

    fn user(&self) -> anyhow::Result<Option<ExistingUser>> {
        match (&self.user_email, &self.user_password_env) {
            (Some(email), Some(var)) => Ok(Some(ExistingUser {
                email: email.clone(),
                password: secret_env(var, "user password")?,
            })),
            _ => Ok(None),
        }
    }

    /// One run.
    pub fn run_spec(&self) -> anyhow::Result<RunSpec> {
        let target = if self.sim {
            Target::Sim {
                profile: self.profile.clone(),
            }
        } else {
            Target::Host {
                url: self
                    .host_url
                    .clone()
                    .context("--host-url or --sim is required")?,
                admin_key: self.admin_key()?,
                upstream_via: self.upstream_via.clone(),
            }
        };
        let upstream_keys = match &self.upstream_keys_file {
            Some(f) => {
                UpstreamKeys::Given(crm_app::credentials::lines_from_file(f, "upstream keys")?)
            }
            None if self.sim => UpstreamKeys::Simulated {
                behaviour: self.sim_behaviour.clone(),
            },
            None => bail!("a real host needs --upstream-keys-file (one upstream key per line)"),
        };
        Ok(RunSpec {
            target,
            pack: PackSource::parse(&self.pack),
            provider: self.provider.clone().context("--provider is required")?,
            modes: self.mode.context("--mode is required")?,
            upstream_keys,
            user: self.user()?,
            out: self.out.clone(),
            keep: self.keep,
            db: self.db.clone(),
            label: None,
        })
    }

    /// A matrix of runs.
    pub fn matrix_run(&self) -> anyhow::Result<MatrixRun> {
        let target = if self.sim {
            MatrixTarget::Sim {
                profile: self.profile.clone(),
            }
        } else {
            MatrixTarget::Host {
                url: self
                    .host_url
                    .clone()
                    .context("--host-url or --sim is required")?,
                admin_key: self.admin_key()?,
                upstream_via: self.upstream_via.clone(),
            }
        };
        Ok(MatrixRun {
            target,
            pack: Some(self.pack.clone()),
            out: self.out.clone(),
            keep: self.keep,
            user: self.user()?,
        })
    }
}
