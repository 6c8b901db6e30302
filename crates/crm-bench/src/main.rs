//! `crm-bench`: measures crm against the physical limits of its work, which
//! is dominated by host round trips. Every scenario runs against `crm-sim`
//! with a fixed injected latency per host request and reports how close crm
//! comes to the bound (critical path, page count, one host's time), then a
//! PASS/FAIL line per target. See `docs/PERFORMANCE.md`.

mod api;
mod critical;
mod env;
mod fanout;
mod fleet;
mod import;
mod reconcile;
mod report;
mod seed;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Benchmarks crm against crm-sim with injected host latency"
)]
struct Args {
    #[command(subcommand)]
    child: Option<Child>,
    /// Smaller run (reconcile up to 1,000 objects, shorter load, fewer rounds).
    #[arg(long)]
    quick: bool,
    /// Injected latency of every host request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// What stdout gets.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Exit 1 when a target fails.
    #[arg(long)]
    strict: bool,
    /// Run only these scenarios (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// Fan-out rounds, median reported [default: 3, 1 with --quick]; more
    /// rounds steady the figure and give a profiler something to sample.
    #[arg(long)]
    rounds: Option<usize>,
    /// Host calls in flight per import (crm's `host_concurrency`; default: crm's own default).
    #[arg(long)]
    host_concurrency: Option<usize>,
    /// Concurrent connections of the API load generator.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Where each scenario's database goes: a postgres:// URL (a schema per
    /// scenario, dropped after; password from CRM_DB_PASSWORD_FILE or a
    /// ${VAR} in its place), or a directory for SQLite files [default: a
    /// SQLite file in the system's temporary directory].
    // A String, not a clap value parser: clap's error would repeat the value,
    // and a mistyped URL may hold a password.
    #[arg(long, value_name = "URL|DIR")]
    db: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Child {
    /// (internal) Reconcile host `bench` of a database and report wall time and memory.
    #[command(hide = true)]
    ReconcileChild {
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Scenario {
    Import,
    Reconcile,
    Fanout,
    Api,
    Fleet,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Child::ReconcileChild { db }) = &args.child {
        return reconcile::child(db).await;
    }
    if let Some(db) = &args.db {
        let file =
            std::env::var_os(crm_store_postgres::PASSWORD_FILE_ENV).filter(|v| !v.is_empty());
        env::set_backend(env::parse_db(
            db,
            file.as_deref().map(std::path::Path::new),
        )?);
    }
    let started = Instant::now();
    env::set_host_concurrency(args.host_concurrency.unwrap_or(0));
    let latency = Duration::from_millis(args.latency_ms);
    let on = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    let progress = |what: &str| {
        if args.output == Output::Table {
            eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
        }
    };
    let mut rep = report::Report::new(
        args.latency_ms,
        args.quick,
        env::config("unused.db".into()).host_concurrency,
    );
    let scratch = env::scratch_dir()?;
    rep.fsync_ms = stats::ms(stats::fsync_cost(scratch.path(), 20)?);

    if on(Scenario::Import) {
        for k in [1, 10, 50] {
            progress(&format!("import with {k} upstream keys"));
            rep.add_import(import::run(k, latency).await?);
        }
    }
    if on(Scenario::Reconcile) {
        let sizes: &[u64] = if args.quick {
            &[100, 1_000]
        } else {
            &[100, 1_000, 10_000]
        };
        for &n in sizes {
            progress(&format!("reconcile a host with {n} objects"));
            rep.reconcile.push(reconcile::run(n, latency).await?);
        }
    }
    if on(Scenario::Fanout) {
        progress("reconcile 20 hosts at once vs one");
        let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
        rep.fanout = Some(fanout::run(20, latency, rounds).await?);
    }
    if on(Scenario::Api) {
        progress("API load and footprint");
        let (per_route, cli_runs) = if args.quick {
            (Duration::from_secs(1), 5)
        } else {
            (Duration::from_secs(3), 11)
        };
        rep.api = Some(api::run(1_000, args.connections, per_route, cli_runs).await?);
    }
    if on(Scenario::Fleet) {
        let plan = if args.quick {
            fleet::FleetPlan {
                hosts: 50,
                latency,
                rounds: 1,
                import_keys: 50,
                batches: 2_000,
                connections: args.connections,
                per_route: Duration::from_secs(1),
            }
        } else {
            fleet::FleetPlan {
                hosts: 200,
                latency,
                rounds: args.rounds.unwrap_or(3).max(1),
                import_keys: 50,
                batches: 10_000,
                connections: args.connections,
                per_route: Duration::from_secs(3),
            }
        };
        progress(&format!(
            "fleet: {} hosts, an import, the list route over {} batches",
            plan.hosts, plan.batches
        ));
        rep.add_fleet(fleet::run(plan).await?);
    }
    rep.finish(started.elapsed());

    let json = serde_json::to_string_pretty(&rep)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &json)?;
    }
    match args.output {
        Output::Json => println!("{json}"),
        Output::Table => print!("{}", rep.table()),
    }
    if args.strict && !rep.all_pass() {
        std::process::exit(1);
    }
    Ok(())
}
