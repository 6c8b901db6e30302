//! The arithmetic of the bench: percentiles, medians, page bounds and
//! resident memory read from `/proc`.

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples` by nearest rank; `None` when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

/// The median of `samples` (nearest rank); `None` when empty.
pub fn median(samples: &[Duration]) -> Option<Duration> {
    percentile(samples, 50.0)
}

/// Pages needed to list `items` at `page_size` per page: a listing always
/// costs at least one request, even when empty.
pub fn pages(items: u64, page_size: u64) -> u64 {
    items.div_ceil(page_size.max(1)).max(1)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `a / b`, or 0 when `b` is 0 (a bound of zero means nothing to compare).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median cost of one durable 4 KiB write (`write` + `fdatasync`) in
/// `dir`: what each SQLite commit at `synchronous=FULL` pays at least once.
pub fn fsync_cost(dir: &std::path::Path, samples: usize) -> std::io::Result<Duration> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = std::time::Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        times.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(median(&times).unwrap_or_default())
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
pub fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_from_stat(&stat, 100)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, at `hz` ticks a second.
fn cpu_from_stat(stat: &str, hz: u64) -> Option<Duration> {
    // The command name (field 2) may contain spaces; fields resume after its ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / hz.max(1)))
}

/// A `kB` field (`VmRSS`, `VmHWM`) of `/proc/<pid>/status`, in KiB.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, field)
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = ms_list(&[5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
        assert_eq!(median(&s), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&s, 99.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&s, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&ms_list(&[7])), Some(Duration::from_millis(7)));
    }

    #[test]
    fn a_listing_costs_at_least_one_page() {
        assert_eq!(pages(0, 1000), 1);
        assert_eq!(pages(1000, 1000), 1);
        assert_eq!(pages(1001, 1000), 2);
        assert_eq!(pages(7_500, 1000), 8);
        assert_eq!(pages(5, 0), 5);
    }

    #[test]
    fn the_fsync_probe_cleans_up_after_itself() {
        let dir = tempfile::tempdir().unwrap();
        fsync_cost(dir.path(), 3).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn ratios_and_proc_fields() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(ratio(3.0, 0.0), 0.0);
        let status = "Name:\tcrm\nVmHWM:\t   12345 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let stat = "42 (crm bench) S 1 42 42 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 1 0";
        assert_eq!(cpu_from_stat(stat, 100), Some(Duration::from_millis(1750)));
        assert!(own_cpu().is_some());
    }
}
