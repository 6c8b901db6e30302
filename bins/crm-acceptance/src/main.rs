//! `crm-acceptance`: the evidence harness's command line. Parses arguments,
//! reads the secrets they name, sets up logging on stderr, runs the chain
//! (or a matrix) from `crm-evidence`, prints where the evidence is, and
//! exits with the verdict: 0 for `pass` or `pass_with_advisories`, 1 for
//! `fail` or when no evidence could be written.

mod args;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A usage error exits 1 (clap's default 2 is no verdict of ours); help 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(&e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let Command::Run(args) = cli.command;
    if let Some(matrix) = &args.matrix {
        let outcome = crm_evidence::matrix::run_matrix(matrix, args.matrix_run()?).await?;
        for cell in &outcome.summary.cells {
            println!(
                "{}: {}{}",
                cell.name,
                cell.verdict.map(|v| v.as_str()).unwrap_or("error"),
                cell.failure_class
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            );
        }
        println!("matrix: {}", outcome.summary.verdict);
        println!("evidence: {}", outcome.folder.display());
        return Ok(exit(outcome.summary.exit_code));
    }
    let outcome = crm_evidence::run(args.run_spec()?).await?;
    let s = &outcome.summary;
    println!(
        "verdict: {}{}",
        s.verdict,
        s.failure_class
            .map(|c| format!(" ({c})"))
            .unwrap_or_default()
    );
    println!("evidence: {}", outcome.folder.display());
    Ok(exit(outcome.exit_code()))
}

fn exit(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

/// Logs go to stderr; `RUST_LOG` overrides the default (progress at info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,crm_evidence=info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
}

fn report(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
