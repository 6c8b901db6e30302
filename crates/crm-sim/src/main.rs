//! `crm-sim`: runs a sub2api simulator until Ctrl-C and prints how to reach it.

use anyhow::Context;
use clap::Parser;
use crm_sim::{Profile, SimConfig, SimServer};

/// A stateful sub2api simulator for tests, the quickstart and the acceptance harness.
#[derive(Debug, Parser)]
#[command(name = "crm-sim", version)]
struct Args {
    /// Host version to simulate: `current` or `legacy-2025-12`.
    #[arg(long, default_value = "current", env = "CRM_SIM_PROFILE")]
    profile: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", env = "CRM_SIM_LISTEN")]
    listen: String,
    /// Admin API key to accept (`admin-` + 64 hex); generated when absent.
    #[arg(long, env = "CRM_SIM_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let profile = Profile::by_name(&args.profile).with_context(|| {
        let names: Vec<&str> = Profile::all().iter().map(|p| p.name).collect();
        format!(
            "unknown profile '{}'; expected one of: {}",
            args.profile,
            names.join(", ")
        )
    })?;
    let sim = SimServer::start(SimConfig {
        profile,
        listen: args.listen,
        admin_key: args.admin_key,
        ..SimConfig::default()
    })
    .await
    .context("starting the simulator")?;
    let (email, _) = sim.admin_login();
    println!("listening {}", sim.base_url());
    // Printing the admin key is this binary's purpose: a throwaway key for a throwaway host.
    println!("admin-key {}", sim.admin_key());
    println!("admin-email {email}");
    println!(
        "profile {} (sub2api {})",
        sim.profile().name,
        sim.profile().version
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
