//! Command handlers: turn parsed arguments into one `crm-app` call each,
//! render the result, and say which exit code it deserves.

mod batch;
mod funds;
mod host;
mod misc;
mod pack;
mod provider;
pub mod quickstart;
mod reports;

use crm_app::App;

use crate::cli::{Command, ModeArg, OutputFormat};

/// How a command ended, for the exit code (docs/design.md §3).
#[derive(Debug)]
pub enum Outcome {
    /// Success, nothing to change: exit 0.
    Unchanged,
    /// Success with changes made or drift present: exit 2.
    Changed,
    /// The command ran but its result is a failure (an import that stopped
    /// part-way, broken access, an incomplete rollback): exit 1.
    Failed {
        message: String,
        hint: Option<String>,
    },
}

impl Outcome {
    pub fn changed_if(changed: bool) -> Outcome {
        if changed {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}

/// What every handler needs.
#[derive(Debug)]
pub struct Ctx {
    pub app: App,
    pub output: OutputFormat,
    pub quiet: bool,
}

impl Ctx {
    pub fn progress(&self, msg: &str) -> indicatif::ProgressBar {
        crate::render::progress(self.output, self.quiet, msg)
    }
}

pub fn mode(m: ModeArg) -> crm_domain::AccessMode {
    match m {
        ModeArg::SelfService => crm_domain::AccessMode::SelfService,
        ModeArg::Subscription => crm_domain::AccessMode::Subscription,
    }
}

pub fn provider_ref(s: &str) -> crm_app::Result<crm_domain::ProviderRef> {
    // The parse error already says how to write one.
    crm_domain::ProviderRef::parse(s).map_err(|e| crm_app::AppError::invalid(e.to_string()))
}

/// Runs every command that works on the database (all but quickstart and completions).
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Pack(c) => pack::run(ctx, c).await,
        Command::Host(c) => host::run(ctx, c).await,
        Command::Provider(c) => provider::run(ctx, c).await,
        Command::Batch(c) => batch::run(ctx, c).await,
        Command::Reconcile(a) => misc::reconcile(ctx, a).await,
        Command::Audit(a) => misc::audit(ctx, a).await,
        Command::Lease(c) => misc::lease(ctx, c).await,
        Command::Quickstart(_) | Command::Completions { .. } => {
            anyhow::bail!("internal: this command does not use the database")
        }
    }
}
