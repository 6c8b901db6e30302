//! `crm`: the command-line face of crm. Parses arguments and configuration,
//! sets up logging on stderr, opens the application core, runs one command
//! and turns its outcome into an exit code (0 nothing to change, 2 changes or
//! drift present, 1 error).

mod cli;
mod commands;
mod config;
mod errors;
mod render;
mod secrets;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

use cli::{Cli, Command};
use commands::{Ctx, Outcome};

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which is crm's "changes present": a
    // typo must be an error (1). Help and version stay 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e),
    };
    init_tracing(&cli.global);
    if let Err(e) = secrets::refuse_literals(&cli.command) {
        return errors::report(&anyhow::Error::new(e));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return errors::report(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Unchanged) => ExitCode::SUCCESS,
        Ok(Outcome::Changed) => ExitCode::from(2),
        Ok(Outcome::Failed { message, hint }) => {
            eprintln!("error: {message}");
            if let Some(h) = hint {
                eprintln!("hint: {h}");
            }
            ExitCode::FAILURE
        }
        Err(e) => errors::report(&e),
    }
}

/// Prints clap's message and maps its outcome: help/version 0, a usage error 1.
fn usage_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "crm", &mut script);
            render::out(String::from_utf8_lossy(&script).trim_end());
            Ok(Outcome::Unchanged)
        }
        Command::Quickstart(args) => commands::quickstart::run(args, &cli.global).await,
        command => {
            let config = config::resolve(&cli.global)?;
            tracing::debug!(db = %config.db_path.display(), "opening the database");
            let ctx = Ctx {
                app: crm_app::App::open(config).await?,
                output: cli.global.output,
                quiet: cli.global.quiet,
            };
            commands::run(&ctx, command).await
        }
    }
}

/// Logs go to stderr: warnings by default, `-v` info, `-vv` debug, `-vvv`
/// trace for crm's own crates, `-q` errors only; `RUST_LOG` overrides all.
fn init_tracing(g: &cli::GlobalArgs) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        let crates = [
            "crm",
            "crm_app",
            "crm_access",
            "crm_domain",
            "crm_pack",
            "crm_provision",
            "crm_reconcile",
            "crm_sim",
            "crm_store",
            "crm_sub2api",
        ];
        let base = if g.verbose >= 3 { "info" } else { level };
        std::iter::once(base.to_owned())
            .chain(crates.iter().map(|c| format!("{c}={level}")))
            .collect::<Vec<_>>()
            .join(",")
    });
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(render::stderr_is_tty())
        .with_env_filter(filter)
        .init();
}
