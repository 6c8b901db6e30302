//! Observability: request ids (accepted or generated, echoed, and handed to
//! the audit trail through `crm_app::REQUEST_ID`), one structured access-log
//! line per API request, and the Prometheus metrics the server exports.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request id header (accepted from the client when present).
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Generates request ids for requests that arrive without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuid;

impl MakeRequestId for MakeUuid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// The id of the request being served, if any.
pub fn current_request_id() -> Option<String> {
    crm_app::REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Runs the rest of the stack inside `crm_app::REQUEST_ID`, so audit events
/// and problem bodies name the request.
pub async fn scope_request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect::<String>())
        .unwrap_or_default();
    crm_app::REQUEST_ID.scope(id, next.run(req)).await
}

/// One INFO line per API request (request id, route, status, latency) and
/// the request counters and latency histogram.
pub async fn access_log(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let latency = started.elapsed();
    let status = resp.status().as_u16();
    tracing::info!(
        request_id = current_request_id().unwrap_or_default(),
        method,
        route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    metrics::counter!("crm_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("crm_http_request_duration_seconds", "method" => method, "route" => route)
        .record(latency.as_secs_f64());
    resp
}

/// Host requests a use case made (from its report) and host failures,
/// by host: `crm_host_requests_total{host}`, `crm_host_errors_total{host,kind}`.
pub fn host_call<T>(host: &str, result: &crm_app::Result<T>, requests: impl Fn(&T) -> u32) {
    match result {
        Ok(r) => {
            metrics::counter!("crm_host_requests_total", "host" => host.to_owned())
                .increment(u64::from(requests(r)));
        }
        Err(e) => {
            if let Some(kind) = host_error_kind(e) {
                metrics::counter!("crm_host_errors_total", "host" => host.to_owned(), "kind" => kind)
                    .increment(1);
            }
        }
    }
}

/// Drift gauge of a host after a host-scope run (from the API or the scheduler).
pub async fn record_run_metrics(app: &crm_app::App, run: &crm_domain::reconcile::ReconcileRun) {
    if run.scope.batch_id.is_some() || run.scope.provider.is_some() {
        return;
    }
    let host = match app.host(run.scope.host_id.as_str()).await {
        Ok(h) => h.name,
        Err(_) => run.scope.host_id.to_string(),
    };
    metrics::gauge!("crm_reconcile_drift_items", "host" => host).set(run.items.len() as f64);
}

/// The problem kind of an error that came from a sub2api host, if it did:
/// the `kind` label of `crm_host_errors_total`.
pub fn host_error_kind(e: &crm_app::AppError) -> Option<&'static str> {
    e.host_error()
        .map(|h| crm_app::AppError::Host(h.clone()).code())
}

/// `crm_provider_status{host,provider,status}`: 1 for each provider's current
/// status on each host, 0 for the other words, so a dashboard can graph or
/// alert on any one word. Refreshed on every scrape from the same use case
/// the CLI, API and console show.
pub async fn provider_status_gauges(app: &crm_app::App) {
    match app.provider_statuses(None).await {
        Ok(list) => {
            for v in list {
                for word in crm_domain::ProviderStatus::ALL {
                    metrics::gauge!(
                        "crm_provider_status",
                        "host" => v.host.clone(),
                        "provider" => v.provider.to_string(),
                        "status" => word.as_str()
                    )
                    .set(if *word == v.status { 1.0 } else { 0.0 });
                }
            }
        }
        // The scrape still answers with every other metric.
        Err(e) => tracing::warn!(error = %e, "provider status for /metrics could not be read"),
    }
}

/// `crm_upstream_balance{host,provider,currency}` (the provider's accounts'
/// balances summed per currency) and
/// `crm_upstream_quota_remaining_ratio{host,provider}` (the tightest quota
/// window left, 0..1) from the stored readings, refreshed on every scrape
/// through the use case `crm provider funds --stored` shows. Aggregated per
/// provider: no label names an account or a key fingerprint.
pub async fn funds_gauges(app: &crm_app::App) {
    let req = crm_app::funds::FundsRequest {
        refresh: false,
        ..Default::default()
    };
    match app.funds(req, vec![]).await {
        Ok(report) => {
            for h in report.hosts {
                for p in h.providers {
                    let provider = p.provider.to_string();
                    for (currency, amount) in &p.balances {
                        metrics::gauge!(
                            "crm_upstream_balance",
                            "host" => h.host.clone(),
                            "provider" => provider.clone(),
                            "currency" => currency.clone()
                        )
                        .set(*amount);
                    }
                    if let Some(r) = p.quota_remaining_ratio {
                        metrics::gauge!(
                            "crm_upstream_quota_remaining_ratio",
                            "host" => h.host.clone(),
                            "provider" => provider
                        )
                        .set(r);
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "funds readings for /metrics could not be read"),
    }
}

/// `# HELP` lines of every metric the server exports.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "crm_http_requests_total",
        "API requests by method, route template and status"
    );
    describe_histogram!(
        "crm_http_request_duration_seconds",
        Unit::Seconds,
        "API request latency by method and route template"
    );
    describe_counter!(
        "crm_http_auth_failures_total",
        "Requests refused for a missing or wrong token"
    );
    describe_counter!(
        "crm_operations_total",
        "Finished operations by kind and outcome"
    );
    describe_histogram!(
        "crm_operation_duration_seconds",
        Unit::Seconds,
        "Operation duration by kind"
    );
    describe_counter!(
        "crm_host_requests_total",
        "Requests made to a sub2api host by the use cases, by host"
    );
    describe_counter!(
        "crm_host_errors_total",
        "Use cases that failed because of the host, by host and problem kind"
    );
    describe_gauge!(
        "crm_provider_status",
        "1 for the current provider status on a host (active, drifted, inactive, unknown), 0 for the others"
    );
    describe_gauge!(
        "crm_upstream_balance",
        "Balance of a provider's upstream keys on a host, summed over its accounts' newest readings, per currency"
    );
    describe_gauge!(
        "crm_upstream_quota_remaining_ratio",
        "Share (0..1) of the tightest Coding-Plan quota window left over a provider's accounts on a host"
    );
    describe_gauge!(
        "crm_reconcile_drift_items",
        "Drift items found by the last host-scope reconcile, by host"
    );
    describe_counter!(
        "crm_reconcile_status_changes_total",
        "Reconcile status changes seen by the scheduler, by host and new status"
    );
    describe_counter!(
        "crm_funds_crossings_total",
        "Providers whose upstream funds went below a threshold or recovered, seen by the scheduler, by host, provider and crossing"
    );
    describe_counter!(
        "crm_scheduler_runs_total",
        "Scheduled reconcile attempts by host and outcome"
    );
    describe_gauge!(
        "crm_scheduler_last_run_timestamp_seconds",
        "Unix time of the last scheduled reconcile of a host"
    );
    describe_gauge!(
        "crm_scheduler_last_tick_timestamp_seconds",
        "Unix time of the scheduler's last tick"
    );
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; the
/// `metrics` facade has one global recorder, so every server in a process
/// shares it). Histograms get explicit buckets so they render as
/// aggregatable Prometheus histograms, not summaries.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only this one's metrics");
            }
            describe();
            handle
        })
        .clone()
}
