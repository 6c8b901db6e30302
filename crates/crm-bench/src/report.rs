//! The report: every figure of a run, the targets it is judged against, a
//! plain-text table for people and the same data as JSON for machines.

use crate::api::ApiSample;
use crate::critical::{self, CriticalPath};
use crate::fanout::FanoutSample;
use crate::fleet::FleetSample;
use crate::import::ImportSample;
use crate::reconcile::ReconcileSample;
use crate::stats;
use std::fmt::Write as _;
use std::time::Duration;

/// Import K=50 may take at most this many times its critical-path bound.
pub const IMPORT_MAX_VS_BOUND: f64 = 1.5;
/// Requests a reconcile may make beyond its page bound.
pub const RECONCILE_MAX_EXTRA: i64 = 3;
/// 20 hosts at once may take at most this many times one host.
pub const FANOUT_MAX_RATIO: f64 = 2.0;
/// The fleet's hosts all at once may take at most this many times one host.
pub const FLEET_MAX_RATIO: f64 = 1.5;
/// The fleet's import K=50 may take at most this many times its critical path.
pub const FLEET_IMPORT_MAX_VS_BOUND: f64 = 1.3;
/// The whole run must finish within this many seconds.
pub const RUN_MAX_SECS: f64 = 600.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportRow {
    pub keys: usize,
    pub wall_ms: f64,
    pub host_requests: u64,
    pub critical_path: CriticalPath,
    /// `depth × latency`.
    pub bound_ms: f64,
    /// `host requests × latency`.
    pub sequential_ms: f64,
    pub vs_bound: f64,
    pub vs_sequential: f64,
}

/// The fleet's figures, its import judged like the import scenario's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetReport {
    #[serde(flatten)]
    pub sample: FleetSample,
    pub import_row: ImportRow,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub pass: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub command: String,
    /// Where the scenarios' databases were (`sqlite`, or the PostgreSQL
    /// URL without password or options).
    pub database: String,
    pub latency_ms: u64,
    pub quick: bool,
    /// Host calls in flight per import.
    pub host_concurrency: usize,
    /// Median durable 4 KiB write in the bench's temporary directory.
    pub fsync_ms: f64,
    pub import: Vec<ImportRow>,
    pub reconcile: Vec<ReconcileSample>,
    pub fanout: Option<FanoutSample>,
    pub api: Option<ApiSample>,
    pub fleet: Option<FleetReport>,
    pub total_secs: f64,
    pub targets: Vec<Target>,
}

/// The command as run, with `--db`'s value in its printable form (the
/// report is shared; a URL's `${VAR}` or options are nobody's business).
/// The per-route load table of the API and fleet scenarios.
fn route_table(s: &mut String, routes: &[crate::api::RouteLoad]) {
    let _ = writeln!(
        s,
        "{:<70} {:>8} {:>9} {:>7} {:>8} {:>8} {:>9}",
        "route", "req/s", "x healthz", "errors", "p50 ms", "p99 ms", "bytes"
    );
    for r in routes {
        let _ = writeln!(
            s,
            "{:<70} {:>8.0} {:>9.3} {:>7} {:>8.2} {:>8.2} {:>9}",
            r.route, r.per_sec, r.vs_healthz, r.errors, r.p50_ms, r.p99_ms, r.response_bytes
        );
    }
}

fn command_line(args: impl Iterator<Item = String>, database: &str) -> String {
    let mut out = Vec::new();
    let mut next_is_db = false;
    for a in args {
        if next_is_db {
            out.push(database.to_owned());
            next_is_db = false;
        } else if a == "--db" {
            out.push(a);
            next_is_db = true;
        } else if a.starts_with("--db=") {
            out.push(format!("--db={database}"));
        } else {
            out.push(a);
        }
    }
    out.join(" ")
}

impl Report {
    pub fn new(latency_ms: u64, quick: bool, host_concurrency: usize) -> Report {
        let database = crate::env::backend().to_string();
        Report {
            command: command_line(std::env::args(), &database),
            database,
            latency_ms,
            quick,
            host_concurrency,
            fsync_ms: 0.0,
            import: vec![],
            reconcile: vec![],
            fanout: None,
            api: None,
            fleet: None,
            total_secs: 0.0,
            targets: vec![],
        }
    }

    fn import_row(&self, s: &ImportSample) -> ImportRow {
        let cp = critical::critical_path(&s.routes);
        let lat = self.latency_ms as f64;
        let bound_ms = f64::from(cp.depth) * lat;
        let sequential_ms = s.host_requests as f64 * lat;
        ImportRow {
            keys: s.keys,
            wall_ms: s.wall_ms,
            host_requests: s.host_requests,
            vs_bound: stats::ratio(s.wall_ms, bound_ms),
            vs_sequential: stats::ratio(s.wall_ms, sequential_ms),
            critical_path: cp,
            bound_ms,
            sequential_ms,
        }
    }

    pub fn add_import(&mut self, s: ImportSample) {
        let row = self.import_row(&s);
        self.import.push(row);
    }

    pub fn add_fleet(&mut self, s: FleetSample) {
        let import_row = self.import_row(&s.import);
        self.fleet = Some(FleetReport {
            sample: s,
            import_row,
        });
    }

    /// Judges the run against the targets.
    pub fn finish(&mut self, elapsed: Duration) {
        self.total_secs = elapsed.as_secs_f64();
        let mut t = Vec::new();
        if let Some(r) = self.import.iter().find(|r| r.keys == 50) {
            t.push(Target {
                name: format!("import K=50 within {IMPORT_MAX_VS_BOUND}x of its critical path"),
                measured: format!(
                    "{:.2}x ({:.0} ms vs {:.0} ms)",
                    r.vs_bound, r.wall_ms, r.bound_ms
                ),
                pass: r.vs_bound <= IMPORT_MAX_VS_BOUND,
            });
        }
        for r in &self.reconcile {
            t.push(Target {
                name: format!(
                    "reconcile N={}: requests = page bound + at most {RECONCILE_MAX_EXTRA}",
                    r.objects
                ),
                measured: format!(
                    "{} = {} {:+}",
                    r.host_requests, r.page_bound, r.extra_requests
                ),
                pass: (0..=RECONCILE_MAX_EXTRA).contains(&r.extra_requests),
            });
        }
        if let Some(f) = &self.fanout {
            t.push(Target {
                name: format!(
                    "fan-out: {} hosts within {FANOUT_MAX_RATIO}x of one",
                    f.hosts
                ),
                measured: format!("{:.2}x", f.ratio),
                pass: f.ratio <= FANOUT_MAX_RATIO,
            });
        }
        if let Some(a) = &self.api {
            let errors: u64 = a.routes.iter().map(|r| r.errors).sum();
            t.push(Target {
                name: "API: every request under load answered 2xx".into(),
                measured: format!("{errors} errors"),
                pass: errors == 0,
            });
        }
        if let Some(f) = &self.fleet {
            let s = &f.sample;
            t.push(Target {
                name: format!(
                    "fleet: {} hosts on {} replica(s) within {FLEET_MAX_RATIO}x of one",
                    s.hosts, s.replicas
                ),
                measured: format!(
                    "{:.2}x ({:.0} ms vs {:.0} ms)",
                    s.ratio, s.all_hosts_ms, s.one_host_ms
                ),
                pass: s.ratio <= FLEET_MAX_RATIO,
            });
            let r = &f.import_row;
            t.push(Target {
                name: format!(
                    "fleet: import K={} within {FLEET_IMPORT_MAX_VS_BOUND}x of its critical path",
                    r.keys
                ),
                measured: format!(
                    "{:.2}x ({:.0} ms vs {:.0} ms)",
                    r.vs_bound, r.wall_ms, r.bound_ms
                ),
                pass: r.vs_bound <= FLEET_IMPORT_MAX_VS_BOUND,
            });
            let errors: u64 = s.routes.iter().map(|r| r.errors).sum();
            t.push(Target {
                name: format!("fleet: list route over {} batches answered 2xx", s.batches),
                measured: format!("{errors} errors"),
                pass: errors == 0,
            });
        }
        t.push(Target {
            name: format!("whole run under {RUN_MAX_SECS:.0} s"),
            measured: format!("{:.0} s", self.total_secs),
            pass: self.total_secs < RUN_MAX_SECS,
        });
        self.targets = t;
    }

    pub fn all_pass(&self) -> bool {
        self.targets.iter().all(|t| t.pass)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "crm-bench on {}: {} ms injected per host request{}; host_concurrency {}; a durable 4 KiB write (fdatasync) costs {:.1} ms here\n",
            self.database,
            self.latency_ms,
            if self.quick { " (quick)" } else { "" },
            self.host_concurrency,
            self.fsync_ms
        );
        if !self.import.is_empty() {
            let _ = writeln!(
                s,
                "Import one provider with K upstream keys (provision + self-service closure)"
            );
            let _ = writeln!(
                s,
                "{:>4} {:>9} {:>9} {:>6} {:>9} {:>11} {:>9} {:>8}",
                "K", "wall ms", "requests", "depth", "bound ms", "sequential", "x bound", "x seq"
            );
            for r in &self.import {
                let _ = writeln!(
                    s,
                    "{:>4} {:>9.0} {:>9} {:>6} {:>9.0} {:>11.0} {:>9.2} {:>8.2}",
                    r.keys,
                    r.wall_ms,
                    r.host_requests,
                    r.critical_path.depth,
                    r.bound_ms,
                    r.sequential_ms,
                    r.vs_bound,
                    r.vs_sequential
                );
            }
            if let Some(r) = self.import.last() {
                let _ = writeln!(s, "critical path: {}", r.critical_path.chain.join(" -> "));
                let per_stage: Vec<String> = r
                    .critical_path
                    .requests_per_stage
                    .iter()
                    .map(|(st, n)| format!("{st} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "requests per stage (K={}): {}",
                    r.keys,
                    per_stage.join(", ")
                );
                if !r.critical_path.unclassified.is_empty() {
                    let _ = writeln!(
                        s,
                        "unclassified requests (one level each): {:?}",
                        r.critical_path.unclassified
                    );
                }
            }
            s.push('\n');
        }
        if !self.reconcile.is_empty() {
            let _ = writeln!(
                s,
                "Reconcile a host with N objects (25% crm-managed), read-only"
            );
            let _ = writeln!(
                s,
                "{:>7} {:>6} {:>9} {:>6} {:>6} {:>9} {:>6} {:>8} {:>8} {:>9} {:>9} {:>8}",
                "N",
                "page",
                "requests",
                "bound",
                "extra",
                "wall ms",
                "trips",
                "x trips",
                "cpu ms",
                "RSS0 MiB",
                "peak MiB",
                "status"
            );
            for r in &self.reconcile {
                let _ = writeln!(
                    s,
                    "{:>7} {:>6} {:>9} {:>6} {:>+6} {:>9.0} {:>6} {:>8.2} {:>8.0} {:>9.1} {:>9.1} {:>8}",
                    r.objects,
                    r.page_size,
                    r.host_requests,
                    r.page_bound,
                    r.extra_requests,
                    r.wall_ms,
                    r.round_trips,
                    r.wall_vs_bound,
                    r.crm_cpu_ms,
                    r.rss_before_kib as f64 / 1024.0,
                    r.peak_rss_kib as f64 / 1024.0,
                    r.status
                );
            }
            s.push('\n');
        }
        if let Some(f) = &self.fanout {
            let _ = writeln!(
                s,
                "Fan-out: reconcile {} hosts at once {:.0} ms vs one host {:.0} ms: {:.2}x ({} requests per host)",
                f.hosts, f.all_hosts_ms, f.one_host_ms, f.ratio, f.requests_per_host
            );
            let _ = writeln!(
                s,
                "  one host waits {} round trips and spends {:.0} ms outside them; that work serialized across {} hosts would give {:.0} ms\n",
                f.host_levels, f.one_host_local_ms, f.hosts, f.serialized_local_estimate_ms
            );
        }
        if let Some(a) = &self.api {
            let _ = writeln!(
                s,
                "API: crm-server over {} batches, {} connections, {:.0} s per route",
                a.batches, a.connections, a.seconds_per_route
            );
            route_table(&mut s, &a.routes);
            let _ = writeln!(
                s,
                "Footprint: server RSS idle {:.1} MiB, after load {:.1} MiB (peak {:.1} MiB); \
                 CLI cold start (median of {}): `crm --version` {:.1} ms, `crm batch list` {:.1} ms\n",
                a.server_rss_idle_kib as f64 / 1024.0,
                a.server_rss_after_kib as f64 / 1024.0,
                a.server_peak_rss_kib as f64 / 1024.0,
                a.cli_runs,
                a.cli_version_ms,
                a.cli_batch_list_ms
            );
        }
        if let Some(f) = &self.fleet {
            let fl = &f.sample;
            let r = &f.import_row;
            let _ = writeln!(
                s,
                "Fleet: {} hosts on {} replica(s) of one store (set up in {:.0} s)",
                fl.hosts, fl.replicas, fl.setup_secs
            );
            let _ = writeln!(
                s,
                "  reconcile every host at once {:.0} ms vs one host {:.0} ms: {:.2}x ({} requests per host, median of {})",
                fl.all_hosts_ms, fl.one_host_ms, fl.ratio, fl.requests_per_host, fl.rounds
            );
            let _ = writeln!(
                s,
                "  import K={}{}: {:.0} ms, {} requests, depth {}, bound {:.0} ms: {:.2}x",
                r.keys,
                if fl.replicas > 1 {
                    " through the replica that did not register its host"
                } else {
                    ""
                },
                r.wall_ms,
                r.host_requests,
                r.critical_path.depth,
                r.bound_ms,
                r.vs_bound
            );
            let _ = writeln!(
                s,
                "  crm-server on the same store, {} batches of one host:",
                fl.batches
            );
            route_table(&mut s, &fl.routes);
            s.push('\n');
        }
        let _ = writeln!(s, "Targets");
        for t in &self.targets {
            let _ = writeln!(
                s,
                "  {} {:<62} {}",
                if t.pass { "PASS" } else { "FAIL" },
                t.name,
                t.measured
            );
        }
        let _ = writeln!(s, "total {:.0} s", self.total_secs);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_command_shows_db_in_its_printable_form() {
        let args = [
            "crm-bench",
            "--db",
            "postgres://crm:${PW}@db/crm",
            "--quick",
        ];
        let line = command_line(
            args.iter().map(|s| s.to_string()),
            "postgres://crm@db:5432/crm",
        );
        assert_eq!(line, "crm-bench --db postgres://crm@db:5432/crm --quick");
        let args = ["crm-bench", "--db=postgres://crm:${PW}@db/crm"];
        let line = command_line(
            args.iter().map(|s| s.to_string()),
            "postgres://crm@db:5432/crm",
        );
        assert_eq!(line, "crm-bench --db=postgres://crm@db:5432/crm");
    }
}
