//! `crm-server`: reads the configuration (defaults < `--config` file <
//! `CRM_*` environment < flags), opens the application core, and runs the
//! HTTP API and the reconcile scheduler until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use crm_domain::SecretString;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TOKENS_HELP: &str = "Tokens are never flag values: set CRM_ADMIN_TOKEN (at least 32 characters \
of some variety; `openssl rand -hex 32` makes one) or --admin-token-file, and optionally CRM_READ_ONLY_TOKEN or --read-only-token-file (GET only). \
Logs are JSON on stderr; RUST_LOG sets the level (default info).";

#[derive(Debug, Parser)]
#[command(version, about = "crm HTTP API, web console and reconcile scheduler", after_help = TOKENS_HELP)]
struct Flags {
    /// TOML file with any of the settings below (snake_case keys); the
    /// environment and flags override it.
    #[arg(long, env = "CRM_CONFIG")]
    config: Option<PathBuf>,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    print_openapi: bool,
    #[command(flatten)]
    settings: Settings,
}

/// One layer of settings: the flags (with their `CRM_*` environment
/// fallbacks), or the `--config` file.
#[derive(Debug, Default, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CRM_LISTEN")]
    listen: Option<String>,
    /// SQLite database file, or a postgres:// URL shared by replicas [default: crm.db].
    #[arg(long, env = "CRM_DB")]
    db: Option<PathBuf>,
    /// File holding the admin token (instead of CRM_ADMIN_TOKEN).
    #[arg(long, env = "CRM_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<String>,
    /// File holding the read-only token (instead of CRM_READ_ONLY_TOKEN).
    #[arg(long, env = "CRM_READ_ONLY_TOKEN_FILE")]
    read_only_token_file: Option<String>,
    /// Directory that POST /api/packs/from-path may read pack files from.
    #[arg(long, env = "CRM_PACKS_DIR")]
    packs_dir: Option<PathBuf>,
    /// Send direct upstream probes through this prefix (simulator, egress relay).
    #[arg(long, env = "CRM_UPSTREAM_VIA")]
    upstream_via: Option<String>,
    /// Run the reconcile scheduler for hosts with an interval [default: true].
    #[arg(long, env = "CRM_SCHEDULER")]
    scheduler: Option<bool>,
    /// POST reconcile status changes to this URL as JSON.
    #[arg(long, env = "CRM_WEBHOOK_URL")]
    webhook_url: Option<url::Url>,
    /// Longest wait for running operations at shutdown, in seconds [default: 30].
    #[arg(long, env = "CRM_DRAIN_SECS")]
    drain_secs: Option<u64>,
    /// Serve the web console at / [default: true].
    #[arg(long, env = "CRM_CONSOLE")]
    console: Option<bool>,
    /// Mark the console's session cookie Secure [default: true].
    #[arg(long, env = "CRM_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    secure_cookies: Option<bool>,
    /// Send the session cookie without Secure; only with a loopback --listen.
    #[arg(long, env = "CRM_INSECURE_COOKIES", num_args = 0..=1, default_missing_value = "true")]
    insecure_cookies: Option<bool>,
    /// Directory whose files POST /api/hosts may name in admin_key_file
    /// (without it, a host's admin key must come in the request body).
    #[arg(long, env = "CRM_CREDENTIAL_DIR")]
    credential_dir: Option<PathBuf>,
    /// Reverse proxy address or CIDR whose X-Forwarded-For names the client
    /// for the wrong-token limits (repeatable, or comma-separated).
    #[arg(long, env = "CRM_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Option<Vec<String>>,
    /// Serve /metrics without a token [default: false; it needs the admin or
    /// read-only token].
    #[arg(long, env = "CRM_PUBLIC_METRICS", num_args = 0..=1, default_missing_value = "true")]
    public_metrics: Option<bool>,
    /// Longest one HTTP request may take, in seconds [default: 330].
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_secs: Option<u64>,
    /// Wrong tokens one client address may send per minute before 429 [default: 20].
    #[arg(long, env = "CRM_AUTH_FAILURES_PER_MINUTE")]
    auth_failures_per_minute: Option<u32>,
    /// At most this many requests to one host at once [default: 64].
    #[arg(long, env = "CRM_HOST_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=1024))]
    host_concurrency: Option<u16>,
    /// How long an import, resume or rollback lease lives without a
    /// heartbeat, in seconds: after a crash, another replica may take the
    /// lease over and resume this long after the last heartbeat [default: 600].
    #[arg(long, env = "CRM_LEASE_TTL_SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease_ttl_secs: Option<u64>,
    /// How often the scheduler looks for hosts due a reconcile, in seconds [default: 5].
    #[arg(long, env = "CRM_SCHEDULER_TICK_SECS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    scheduler_tick_secs: Option<u64>,
}

impl Settings {
    /// This layer, falling back to `lower` for what it does not set.
    fn over(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            db: self.db.or(lower.db),
            admin_token_file: self.admin_token_file.or(lower.admin_token_file),
            read_only_token_file: self.read_only_token_file.or(lower.read_only_token_file),
            packs_dir: self.packs_dir.or(lower.packs_dir),
            upstream_via: self.upstream_via.or(lower.upstream_via),
            scheduler: self.scheduler.or(lower.scheduler),
            webhook_url: self.webhook_url.or(lower.webhook_url),
            drain_secs: self.drain_secs.or(lower.drain_secs),
            console: self.console.or(lower.console),
            secure_cookies: self.secure_cookies.or(lower.secure_cookies),
            insecure_cookies: self.insecure_cookies.or(lower.insecure_cookies),
            credential_dir: self.credential_dir.or(lower.credential_dir),
            trusted_proxy: self.trusted_proxy.or(lower.trusted_proxy),
            public_metrics: self.public_metrics.or(lower.public_metrics),
            request_timeout_secs: self.request_timeout_secs.or(lower.request_timeout_secs),
            auth_failures_per_minute: self
                .auth_failures_per_minute
                .or(lower.auth_failures_per_minute),
            host_concurrency: self.host_concurrency.or(lower.host_concurrency),
            lease_ttl_secs: self.lease_ttl_secs.or(lower.lease_ttl_secs),
            scheduler_tick_secs: self.scheduler_tick_secs.or(lower.scheduler_tick_secs),
        }
    }
}

/// The Secure flag of the console cookie: on, unless turned off for a
/// loopback listener (a browser on another machine would send the cookie
/// in clear).
fn secure_cookies(s: &Settings, listen: &str) -> anyhow::Result<bool> {
    let off = s.insecure_cookies == Some(true) || s.secure_cookies == Some(false);
    if off && !is_loopback(listen) {
        anyhow::bail!(
            "--insecure-cookies needs a loopback listener (--listen 127.0.0.1:PORT), not {listen}; \
             serve the console over HTTPS (a TLS reverse proxy) and keep the cookie Secure"
        );
    }
    Ok(!off)
}

fn is_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

fn trusted_proxies(list: &[String]) -> anyhow::Result<crm_app::source::TrustedProxies> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e: String| anyhow::anyhow!("--trusted-proxy {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(crm_app::source::TrustedProxies)
}

/// The application core's settings from the merged layers.
fn app_config(s: &Settings) -> crm_app::AppConfig {
    let mut cfg = crm_app::AppConfig::new(s.db.clone().unwrap_or_else(|| "crm.db".into()));
    cfg.upstream_via = s.upstream_via.clone();
    if let Some(n) = s.host_concurrency {
        cfg.host_concurrency = usize::from(n.max(1));
    }
    if let Some(n) = s.lease_ttl_secs {
        cfg.lease_ttl = Duration::from_secs(n);
    }
    cfg.actor = "crm-server".into();
    cfg
}

/// The scheduler's settings from the merged layers.
fn scheduler_config(s: &Settings) -> crm_api::scheduler::SchedulerConfig {
    let mut cfg = crm_api::scheduler::SchedulerConfig {
        webhook: s.webhook_url.clone(),
        ..Default::default()
    };
    if let Some(n) = s.scheduler_tick_secs {
        cfg.tick = Duration::from_secs(n);
    }
    cfg
}

fn token(env: &str, file: Option<String>, what: &str) -> anyhow::Result<Option<SecretString>> {
    Ok(match file {
        Some(path) => Some(crm_app::credentials::from_file(&path, what)?),
        None if std::env::var_os(env).is_some() => Some(crm_app::credentials::from_env(env, what)?),
        None => None,
    })
}

fn main() -> std::process::ExitCode {
    // A usage error exits 1 like every other refusal (clap's default is 2);
    // help and version exit 0.
    let f = match Flags::try_parse() {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(f)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(f: Flags) -> anyhow::Result<()> {
    if f.print_openapi {
        print!("{}", crm_api::openapi::document_json());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let file: Settings = match &f.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => Settings::default(),
    };
    let s = f.settings.over(file);
    let app_cfg = app_config(&s);
    let sched_cfg = scheduler_config(&s);
    let listen = s.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".into());
    let secure = secure_cookies(&s, &listen)?;
    let proxies = trusted_proxies(s.trusted_proxy.as_deref().unwrap_or_default())?;
    if let Some(dir) = &s.credential_dir
        && !dir.is_dir()
    {
        anyhow::bail!("--credential-dir {} is not a directory", dir.display());
    }
    let admin = token("CRM_ADMIN_TOKEN", s.admin_token_file, "admin token")?
        .context("no admin token: set CRM_ADMIN_TOKEN or --admin-token-file")?;
    let read_only = token(
        "CRM_READ_ONLY_TOKEN",
        s.read_only_token_file,
        "read-only token",
    )?;
    let app = crm_app::App::open(app_cfg).await?;
    let console = match s.console.unwrap_or(true) {
        true => {
            let mut c =
                crm_console::ConsoleState::new(app.clone(), admin.clone(), read_only.clone());
            c.secure_cookies = secure;
            c.trusted_proxies = proxies.clone();
            crm_console::router(c)
        }
        false => axum::Router::new(),
    };
    let mut api_cfg = crm_api::ApiConfig::new(admin);
    api_cfg.read_only_token = read_only;
    api_cfg.packs_dir = s.packs_dir;
    api_cfg.credential_dir = s.credential_dir;
    api_cfg.trusted_proxies = proxies;
    api_cfg.public_metrics = s.public_metrics.unwrap_or(false);
    if let Some(n) = s.request_timeout_secs {
        api_cfg.request_timeout = Duration::from_secs(n);
    }
    if let Some(n) = s.auth_failures_per_minute {
        api_cfg.auth_failures_per_minute = n;
    }
    let state = crm_api::ApiState::new(app.clone(), api_cfg).await?;

    let listener = crm_api::bind(&listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "crm-server listening");
    let shutdown = CancellationToken::new();
    let scheduler = s.scheduler.unwrap_or(true).then(|| {
        tokio::spawn(crm_api::scheduler::run(
            app.with_actor("scheduler"),
            sched_cfg,
            shutdown.clone(),
        ))
    });
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new requests, finishing running work");
        signals.cancel();
    });
    let drain = Duration::from_secs(s.drain_secs.unwrap_or(30));
    crm_api::serve_with(listener, state, console, shutdown.clone(), drain).await?;
    shutdown.cancel();
    // The API and the console share the app's one operation runner, which
    // `serve_with` drained already.
    if let Some(task) = scheduler {
        let _ = tokio::time::timeout(drain, task).await;
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_fills_the_rest() {
        let file: Settings = toml::from_str(
            "listen = \"0.0.0.0:9000\"\ndb = \"/var/lib/crm.db\"\nscheduler = false\n",
        )
        .unwrap();
        let flags = Flags::try_parse_from(["crm-server", "--listen", "127.0.0.1:1"]).unwrap();
        let s = flags.settings.over(file);
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(s.db, Some(PathBuf::from("/var/lib/crm.db")));
        assert_eq!(s.scheduler, Some(false));
        assert!(
            toml::from_str::<Settings>("admin_token = \"x\"").is_err(),
            "tokens are not settings"
        );
    }

    #[test]
    fn insecure_cookies_only_on_loopback_and_proxies_parse() {
        let flags = |args: &[&str]| {
            let mut v = vec!["crm-server"];
            v.extend_from_slice(args);
            Flags::try_parse_from(v).unwrap().settings
        };
        assert!(secure_cookies(&flags(&[]), "0.0.0.0:8080").unwrap());
        let insecure = flags(&["--insecure-cookies"]);
        assert!(!secure_cookies(&insecure, "127.0.0.1:8080").unwrap());
        assert!(!secure_cookies(&insecure, "localhost:8080").unwrap());
        let e = secure_cookies(&insecure, "0.0.0.0:8080").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(secure_cookies(&flags(&["--secure-cookies", "false"]), "[::]:80").is_err());
        let t = flags(&[
            "--trusted-proxy",
            "10.0.0.0/8,127.0.0.1",
            "--trusted-proxy",
            "fd00::/8",
        ]);
        assert_eq!(
            trusted_proxies(&t.trusted_proxy.unwrap()).unwrap().0.len(),
            3
        );
        assert!(trusted_proxies(&["10.0.0.0/99".into()]).is_err());
        assert_eq!(flags(&["--public-metrics"]).public_metrics, Some(true));
    }

    #[test]
    fn lease_ttl_and_scheduler_tick_reach_the_configs() {
        let flags = Flags::try_parse_from([
            "crm-server",
            "--lease-ttl-secs",
            "3",
            "--scheduler-tick-secs",
            "1",
        ])
        .unwrap();
        let s = flags.settings.over(Settings::default());
        assert_eq!(app_config(&s).lease_ttl, Duration::from_secs(3));
        assert_eq!(scheduler_config(&s).tick, Duration::from_secs(1));
        // The file layer sets them too, and unset they keep the defaults.
        let file: Settings =
            toml::from_str("lease_ttl_secs = 30\nscheduler_tick_secs = 2\n").unwrap();
        let s = Flags::try_parse_from(["crm-server"])
            .unwrap()
            .settings
            .over(file);
        assert_eq!(app_config(&s).lease_ttl, Duration::from_secs(30));
        assert_eq!(scheduler_config(&s).tick, Duration::from_secs(2));
        let s = Settings::default();
        assert_eq!(app_config(&s).lease_ttl, crm_app::DEFAULT_LEASE_TTL);
        assert_eq!(scheduler_config(&s).tick, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_lease_ttl_or_tick_is_refused_by_name() {
        for flag in ["--lease-ttl-secs", "--scheduler-tick-secs"] {
            for bad in ["0", "-5", "ten", ""] {
                let arg = format!("{flag}={bad}");
                let e = Flags::try_parse_from(["crm-server", arg.as_str()]).unwrap_err();
                let text = e.to_string();
                assert!(e.use_stderr(), "{flag} {bad}: {text}");
                assert!(text.contains(flag), "{flag} {bad}: {text}");
                assert!(text.contains("invalid value"), "{flag} {bad}: {text}");
            }
        }
    }

    /// The console and the API share one router: a route both define would
    /// panic at startup, so build the merged app here.
    #[tokio::test]
    async fn the_console_mounts_beside_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let app = crm_app::App::open_with(
            crm_app::AppConfig::new(dir.path().join("crm.db")),
            Default::default(),
            std::sync::Arc::new(crm_app::ids::UuidIds),
        )
        .await
        .unwrap();
        let token = SecretString::from("admin-token-0123456789abcdef012345");
        let console = crm_console::router(crm_console::ConsoleState::new(
            app.clone(),
            token.clone(),
            None,
        ));
        let state = crm_api::ApiState::new(app, crm_api::ApiConfig::new(token))
            .await
            .unwrap();
        let _ = crm_api::router_with(state, console);
    }
}
