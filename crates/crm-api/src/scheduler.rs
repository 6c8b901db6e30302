//! The reconcile scheduler task: ticks `crm_reconcile::schedule::SchedulerDriver`
//! on a timer until shutdown (a tick in progress finishes: that is the step
//! boundary), and turns what it reports into logs, metrics and, when a URL
//! is configured, a webhook POST per status change and per funds crossing
//! (a provider going below a threshold or back above: once each way).

use async_trait::async_trait;
use crm_app::App;
use crm_reconcile::schedule::{EventSink, FundsCrossing, Outcome, ScheduleConfig, StatusChange};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the server runs the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often to look for due hosts.
    pub tick: Duration,
    /// Re-check each live batch's access on every run.
    pub recheck_access: bool,
    /// POST each status change and funds crossing here as JSON.
    pub webhook: Option<url::Url>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: Duration::from_secs(5),
            recheck_access: false,
            webhook: None,
        }
    }
}

/// Log + metric + optional webhook.
struct Sink {
    webhook: Option<(reqwest::Client, url::Url)>,
}

impl Sink {
    /// One POST, no retry: a lost event is logged, the next crossing or
    /// status change is posted as usual.
    async fn post(&self, event: &impl serde::Serialize) {
        if let Some((client, url)) = &self.webhook {
            match client.post(url.clone()).json(event).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    "the reconcile webhook refused the event"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "the reconcile webhook is unreachable")
                }
            }
        }
    }
}

#[async_trait]
impl EventSink for Sink {
    async fn status_changed(&self, c: &StatusChange) {
        tracing::warn!(host = %c.host, from = ?c.from.map(|s| s.as_str()), to = %c.to, items = c.items, run = %c.run_id, "reconcile status changed");
        metrics::counter!("crm_reconcile_status_changes_total", "host" => c.host.to_string(), "to" => c.to.as_str()).increment(1);
        self.post(c).await;
    }

    async fn funds_crossed(&self, c: &FundsCrossing) {
        let crossing = match c.crossing {
            crm_domain::funds::Crossing::Below => "below",
            crm_domain::funds::Crossing::Recovered => "recovered",
        };
        tracing::warn!(host = %c.host, provider = %c.provider, crossing, status = %c.funds.status, run = %c.run_id, "upstream funds crossed a threshold");
        metrics::counter!("crm_funds_crossings_total", "host" => c.host.to_string(), "provider" => c.provider.to_string(), "crossing" => crossing).increment(1);
        self.post(c).await;
    }
}

/// Runs until `shutdown` is cancelled.
pub async fn run(app: App, config: SchedulerConfig, shutdown: CancellationToken) {
    let webhook = config.webhook.clone().and_then(|url| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()
            .map(|c| (c, url))
    });
    let driver = app.scheduler_driver(
        Arc::new(Sink { webhook }),
        config.recheck_access,
        ScheduleConfig::default(),
    );
    let mut timer = tokio::time::interval(config.tick);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        tick_secs = config.tick.as_secs_f64(),
        "reconcile scheduler started"
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = timer.tick() => {}
        }
        let now = chrono::Utc::now().timestamp() as f64;
        metrics::gauge!("crm_scheduler_last_tick_timestamp_seconds").set(now);
        if app.store().is_shared() {
            // A replica that died mid-operation left it `running`; once its
            // operation lease expires, say so to whoever polls it.
            match app.interrupt_unfinished_operations().await {
                Ok(ops) => {
                    for op in ops {
                        tracing::warn!(operation = %op.id, kind = %op.kind, target = %op.target, "operation interrupted: its replica stopped");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not check for operations of stopped replicas")
                }
            }
        }
        match driver.tick().await {
            Ok(reports) => {
                for r in reports {
                    let host = match app.host(r.host.as_str()).await {
                        Ok(h) => h.name,
                        Err(_) => r.host.to_string(),
                    };
                    let outcome = match &r.outcome {
                        Outcome::Ran { items, status, .. } => {
                            metrics::gauge!("crm_reconcile_drift_items", "host" => host.clone())
                                .set(*items as f64);
                            status.as_str()
                        }
                        Outcome::Busy { .. } => "busy",
                        Outcome::Failed { error } => {
                            tracing::warn!(host, error, "scheduled reconcile failed");
                            "failed"
                        }
                    };
                    metrics::counter!("crm_scheduler_runs_total", "host" => host.clone(), "outcome" => outcome).increment(1);
                    metrics::gauge!("crm_scheduler_last_run_timestamp_seconds", "host" => host)
                        .set(chrono::Utc::now().timestamp() as f64);
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
        }
    }
    tracing::info!("reconcile scheduler stopped");
}
