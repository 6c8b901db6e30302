//! The command-line interface: argument definitions only.
//!
//! Command names and flags are part of crm's interface (scripts and CI use
//! them), so renaming one is a breaking change.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes: 0 success and nothing to change, 2 success with changes or drift present, 1 error.

Secrets (admin keys, upstream keys, passwords) are never accepted as argument
values, because arguments show up in process lists and shell history. Pass them
with --*-env VAR, --*-file PATH, or --*-file - to read standard input.

Examples:
  crm quickstart
  crm host add prod --url https://relay.example.com --admin-key-env SUB2API_ADMIN_KEY
  crm host probe prod
  crm provider preview cn-official/deepseek --host prod --mode self_service \\
      --upstream-keys-file keys.txt
  crm provider import cn-official/deepseek --host prod --mode self_service \\
      --upstream-keys-file keys.txt
  crm batch resume BATCH_ID --upstream-keys-file keys.txt
  crm reconcile --host prod --apply";

/// crm: declarative, verified and reversible provider imports for sub2api hosts.
#[derive(Debug, Parser)]
#[command(name = "crm", version, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// SQLite database file, or a postgres:// URL [default: crm.db, or `db` in the config file].
    #[arg(long, global = true, env = "CRM_DB")]
    pub db: Option<PathBuf>,
    /// Send direct upstream probes through this prefix (`{prefix}/{authority}/{path}`),
    /// e.g. a simulator's `http://127.0.0.1:PORT/__upstream` or an egress relay.
    #[arg(long, global = true, env = "CRM_UPSTREAM_VIA", value_name = "URL")]
    pub upstream_via: Option<String>,
    /// Timeout of one host request, in seconds [default: 30].
    #[arg(long, global = true, env = "CRM_HOST_TIMEOUT", value_name = "SECS")]
    pub host_timeout: Option<u64>,
    /// At most this many requests to one host at once (an import's account
    /// creates, a rollback's deletes, observation reads) [default: 64].
    #[arg(long, global = true, env = "CRM_HOST_CONCURRENCY", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub host_concurrency: Option<u16>,
    /// Output format: human tables, or JSON on stdout (logs and progress go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table, env = "CRM_OUTPUT")]
    pub output: OutputFormat,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Optional TOML configuration file (values below flags and CRM_* environment).
    #[arg(long, global = true, env = "CRM_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole chain against a built-in simulated sub2api host (no network).
    #[command(after_help = "\
Starts crm-sim (profile current) on 127.0.0.1, creates DIR/crm.db (replacing a previous
quickstart database there), registers the host, installs the bundled cn-official pack,
probes, previews, imports cn-official/deepseek (subscription) and cn-official/kimi
(self_service) with simulated upstream keys, verifies access, reconciles and prints a
summary. Exit 0 when every batch is applied, access is ready and the host is in sync.

Examples:
  crm quickstart
  crm quickstart --dir /tmp/crm-demo --output json")]
    Quickstart(QuickstartArgs),
    /// Install, inspect and lint provider packs.
    #[command(subcommand)]
    Pack(PackCommand),
    /// Register and probe sub2api hosts.
    #[command(subcommand)]
    Host(HostCommand),
    /// Preview, import, verify, reconcile and roll back providers on hosts.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Inspect, resume and roll back import batches.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Compare a whole host with crm's records; optionally repair.
    #[command(after_help = "\
Exit 0 in sync, 2 drift found (repaired or not), 1 host unreachable or error.

Examples:
  crm reconcile --host prod
  crm reconcile --host prod --apply --prune
  crm reconcile --host prod --history")]
    Reconcile(ReconcileHostArgs),
    /// Show the audit trail.
    Audit(AuditArgs),
    /// List or release leases (e.g. one left by a killed process).
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Directory for the quickstart database (DIR/crm.db, replaced on each run) and its
    /// keys; --db is not used by the quickstart.
    #[arg(long, default_value = "./crm-quickstart")]
    pub dir: PathBuf,
    /// Simulated host version profile.
    #[arg(long, default_value = "current")]
    pub profile: String,
}

#[derive(Debug, Subcommand)]
pub enum PackCommand {
    /// Install a pack file (or the bundled pack) and make it current.
    Install {
        /// Path of a pack TOML file.
        #[arg(required_unless_present = "bundled")]
        path: Option<PathBuf>,
        /// Install a pack shipped inside crm (e.g. cn-official).
        #[arg(long, conflicts_with = "path")]
        bundled: Option<String>,
        /// Let a pack file take a bundled pack's id (cn-official) with other
        /// content, replacing the bundled pack on purpose (audited).
        #[arg(long, conflicts_with = "bundled")]
        replace_bundled: bool,
    },
    /// List installed packs.
    List,
    /// Show a pack's providers, models and prices.
    Show {
        pack: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Validate pack files and print every problem with file:line:column.
    Lint {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the pack format.
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Register a host. The admin key is referenced, never stored in clear.
    #[command(after_help = "\
Examples:
  crm host add prod --url https://relay.example.com --admin-key-env SUB2API_ADMIN_KEY
  crm host add prod --url https://relay.example.com --admin-key-file /etc/crm/prod.key
  pass show sub2api/prod | crm host add prod --url https://relay.example.com \\
      --admin-key-file -")]
    Add {
        name: String,
        /// Base URL, e.g. `https://relay.example.com`
        #[arg(long)]
        url: String,
        #[command(flatten)]
        admin_key: AdminKeyArgs,
        /// Reconcile this host on a schedule (seconds) when crm-server runs.
        #[arg(long)]
        reconcile_every: Option<u64>,
    },
    /// Registered hosts, their version and where their admin key comes from.
    List,
    /// One host with its probed capabilities.
    Show { host: String },
    /// Detect version and capabilities.
    Probe { host: String },
    /// Forget a host (refused while batches on it are recorded).
    Remove { host: String },
    /// Set the host's own funds thresholds, over the packs' (reconcile, the
    /// scheduler's alerts, `crm provider funds`, the API and console use them).
    #[command(after_help = "\
Examples:
  crm host set prod --low-balance 50CNY
  crm host set prod --provider cn-official/kimi --low-quota-percent 15
  crm host set prod --provider cn-official/kimi --clear")]
    Set {
        host: String,
        /// Only this provider, as PACK/PROVIDER (default: every provider on the host).
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        thresholds: ThresholdArgs,
        /// Drop this scope's thresholds first (alone: back to the pack's).
        #[arg(long)]
        clear: bool,
    },
}

/// Where the host admin key comes from.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AdminKeyArgs {
    /// Environment variable holding the admin key (kept as a reference).
    #[arg(long, value_name = "VAR")]
    pub admin_key_env: Option<String>,
    /// File holding the admin key (kept as a reference; `-` reads stdin and stores it sealed).
    #[arg(long, value_name = "PATH")]
    pub admin_key_file: Option<String>,
    /// Refused: secrets are never accepted as argument values.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub admin_key: Option<String>,
}

/// Funds thresholds given on the command line (`crm host set`, `crm
/// provider funds`).
#[derive(Debug, Args, Default)]
pub struct ThresholdArgs {
    /// Below this balance a key is low on funds, e.g. `20CNY` or `5USD`.
    #[arg(long, value_name = "AMOUNT")]
    pub low_balance: Option<String>,
    /// Below this share of a quota window left (0 to 100) quota is low.
    #[arg(long, value_name = "PERCENT")]
    pub low_quota_percent: Option<f64>,
}

/// Whether an import creates a host-side channel monitor.
#[derive(Debug, Args, Default)]
pub struct MonitorArgs {
    /// Create a host-side channel monitor for the batch: the host checks the
    /// provider's upstream with one of the batch's keys every 5 minutes
    /// (hosts with channel monitors only; elsewhere the plan says why not).
    /// Without it or --no-monitor, the pack's `monitor` default applies.
    #[arg(long, conflicts_with = "no_monitor")]
    pub monitor: bool,
    /// Create no monitor although the pack's default asks for one (a
    /// monitor the batch has already is kept).
    #[arg(long)]
    pub no_monitor: bool,
}

impl MonitorArgs {
    /// `Some(true)`, `Some(false)`, or `None` for the pack's default.
    pub fn choice(&self) -> Option<bool> {
        match (self.monitor, self.no_monitor) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Upstream keys for an import.
#[derive(Debug, Args, Default)]
pub struct UpstreamKeyArgs {
    /// File with one upstream key per line (`-` reads stdin).
    #[arg(long, value_name = "PATH")]
    pub upstream_keys_file: Option<String>,
    /// Environment variable holding one upstream key (repeatable).
    #[arg(long, value_name = "VAR")]
    pub upstream_key_env: Vec<String>,
    /// Refused: secrets are never accepted as argument values.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub upstream_key: Vec<String>,
}

/// An existing host user for the access closure (else crm creates a probe user).
#[derive(Debug, Args, Default)]
pub struct UserLoginArgs {
    #[arg(long)]
    pub user_email: Option<String>,
    /// Environment variable holding the user's password.
    #[arg(long, value_name = "VAR", requires = "user_email")]
    pub user_password_env: Option<String>,
    /// File holding the user's password (`-` reads stdin).
    #[arg(long, value_name = "PATH", requires = "user_email")]
    pub user_password_file: Option<String>,
    /// Refused: secrets are never accepted as argument values.
    #[arg(long, hide = true, value_name = "SECRET")]
    pub user_password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A user with a balance and a key bound to a standard group.
    #[value(name = "self_service")]
    SelfService,
    /// A subscription-type group, an active subscription and a key bound to it.
    Subscription,
}

#[derive(Debug, Args)]
pub struct Target {
    /// Pack-scoped provider, e.g. cn-official/deepseek.
    pub provider: String,
    #[arg(long)]
    pub host: String,
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Funds and quota of the upstream keys behind imported providers: takes
    /// readings in a read-only reconcile run (host cn-providers routes, and
    /// the providers' own balance APIs for keys given here), then shows
    /// them with their thresholds. Exit 0 when all is above the thresholds,
    /// 2 when something is below (or cannot pay).
    #[command(after_help = "\
Examples:
  crm provider funds --host prod
  crm provider funds --host prod --provider cn-official/deepseek --low-balance 20CNY
  crm provider funds --host prod --upstream-keys-file keys.txt --output json")]
    Funds {
        /// One host (default: every registered host).
        #[arg(long)]
        host: Option<String>,
        /// One provider, as PACK/PROVIDER.
        #[arg(long)]
        provider: Option<String>,
        /// Thresholds for this run, over the pack's and the host's.
        #[command(flatten)]
        thresholds: ThresholdArgs,
        /// Show the stored readings only (no host request).
        #[arg(long)]
        stored: bool,
        /// Upstream keys to read the providers' own balance APIs with (used
        /// for this run only, never stored).
        #[command(flatten)]
        keys: UpstreamKeyArgs,
    },
    /// List providers of installed packs; with --host, with their status there.
    #[command(after_help = "\
With --host, each provider's status on that host (active, drifted, inactive, unknown) and why.

Examples:
  crm provider list
  crm provider list --host prod --output json")]
    List {
        #[arg(long)]
        pack: Option<String>,
        /// Also show each provider's status on this host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Provider status per host: active, drifted, inactive or unknown, and why.
    #[command(after_help = "\
Computed from the latest live batch, its latest access check and the latest reconcile run.

Examples:
  crm provider status
  crm provider status cn-official/deepseek --host prod --output json")]
    Status {
        /// Only this pack-scoped provider, e.g. cn-official/deepseek.
        provider: Option<String>,
        /// Only this host (default: every registered host).
        #[arg(long)]
        host: Option<String>,
    },
    /// A provider's URLs, platform, access defaults, models and prices.
    Show { provider: String },
    /// Show what an import would do. Exit 0 when nothing would change, 2 otherwise.
    #[command(after_help = "\
Examples:
  crm provider preview cn-official/deepseek --host prod --mode self_service \\
      --upstream-keys-file keys.txt
  crm provider preview cn-official/kimi --host prod --mode subscription \\
      --upstream-key-env KIMI_KEY && echo unchanged")]
    Preview {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        mode: ModeArg,
        #[command(flatten)]
        keys: UpstreamKeyArgs,
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// Import a provider onto a host, close access and verify it.
    #[command(after_help = "\
Exit 0 when nothing changed (already imported), 2 when the host changed, 1 when the batch
stopped partially_applied, failed or needs_operator, or access is broken.

Examples:
  crm provider import cn-official/deepseek --host prod --mode self_service \\
      --upstream-keys-file keys.txt
  crm provider import cn-official/kimi --host prod --mode subscription \\
      --upstream-keys-file - < keys.txt
  crm provider import cn-official/kimi --host prod --mode self_service \\
      --upstream-keys-file keys.txt \\
      --user-email alice@example.com --user-password-env ALICE_PASSWORD
  crm provider import cn-official/deepseek --host prod --mode self_service \\
      --upstream-keys-file keys.txt --monitor")]
    Import {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        mode: ModeArg,
        #[command(flatten)]
        keys: UpstreamKeyArgs,
        #[command(flatten)]
        user: UserLoginArgs,
        /// Starting balance (USD) for a self-service user, instead of the pack's.
        #[arg(long)]
        balance: Option<f64>,
        /// Skip the access verification after the import.
        #[arg(long)]
        no_verify: bool,
        /// Apply although the current pack version moves accounts to another
        /// base URL, so their upstream keys go there (`crm provider preview`
        /// lists these URL changes); refused without it.
        #[arg(long)]
        accept_url_change: bool,
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// Verify access of a provider's batches on a host.
    #[command(after_help = "\
Examples:
  crm provider access cn-official/deepseek --host prod
  crm provider access cn-official/deepseek --host prod --upstream-keys-file keys.txt")]
    Access {
        #[command(flatten)]
        target: Target,
        /// Only list models; skip the completion smoke.
        #[arg(long)]
        skip_completion: bool,
        /// Upstream keys of the batch's accounts, for a direct upstream probe
        /// (matched to accounts by fingerprint; used for this check only,
        /// never stored).
        #[command(flatten)]
        keys: UpstreamKeyArgs,
    },
    /// Reconcile one provider on a host.
    Reconcile {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        apply: bool,
        #[arg(long)]
        prune: bool,
        /// With --apply: upstream keys for accounts that must be recreated
        /// (crm keeps only their fingerprints).
        #[command(flatten)]
        keys: UpstreamKeyArgs,
    },
    /// Roll back every live batch of a provider on a host.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
    /// Replace one upstream key in place (no downtime).
    RotateKey {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// At least 8 hex digits of the fingerprint of the key to replace (as `crm batch show`
        /// prints it before the `…`).
        #[arg(long)]
        old: String,
        #[arg(long, value_name = "VAR")]
        new_key_env: Option<String>,
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<String>,
        /// Refused: secrets are never accepted as argument values.
        #[arg(long, hide = true, value_name = "SECRET")]
        new_key: Option<String>,
    },
    /// Give more host users a subscription to the provider's subscription group.
    AssignSubscriptions {
        #[command(flatten)]
        target: Target,
        /// Host user ids or emails.
        #[arg(long = "user", required = true)]
        users: Vec<String>,
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Import batches, newest first, one table per host.
    List {
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// A batch with its resources, journal and access checks.
    Show { batch: String },
    /// Finish a partially applied or interrupted batch, access closure included.
    ///
    /// Pending journal intents are resolved by looking the object up on the
    /// host (one match is adopted, none is created, several stop the batch as
    /// needs_operator). crm keeps only fingerprints of upstream keys, so
    /// accounts still to be created need their keys again: give the same
    /// --upstream-keys-file the import used.
    #[command(
        after_help = "Examples:\n  crm batch resume b-0193... --upstream-keys-file keys.txt\n  \
        crm lease list    # a killed import still holds its lease\n  crm lease release l-..."
    )]
    Resume {
        batch: String,
        #[command(flatten)]
        keys: UpstreamKeyArgs,
        #[command(flatten)]
        user: UserLoginArgs,
        /// Skip the access verification after closing access.
        #[arg(long)]
        no_verify: bool,
    },
    /// Roll a batch back: closure first, then every object in reverse order.
    Rollback { batch: String },
}

#[derive(Debug, Args)]
pub struct ReconcileHostArgs {
    #[arg(long)]
    pub host: String,
    /// Repair what drifted.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: also delete crm-marked leftovers of dead batches.
    #[arg(long, requires = "apply")]
    pub prune: bool,
    /// With --apply: also clear error states of crm accounts.
    #[arg(long, requires = "apply")]
    pub clear_unhealthy: bool,
    /// Show the host's past runs instead of running one.
    #[arg(long, conflicts_with_all = ["apply", "run"])]
    pub history: bool,
    /// Show one past run by id instead of running one.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "apply")]
    pub run: Option<String>,
    /// With --apply: upstream keys for accounts that must be recreated
    /// (crm keeps only their fingerprints).
    #[command(flatten)]
    pub keys: UpstreamKeyArgs,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Active leases (scope, holder, operation, expiry).
    List {
        #[arg(long)]
        host: Option<String>,
    },
    /// Release one lease by id, when its holder is known to be gone.
    Release { lease: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}
