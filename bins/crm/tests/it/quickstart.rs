//! `crm quickstart`: the README's first command, with no network.

use crate::support::*;

#[test]
fn quickstart_applies_both_providers_with_access_ready_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let qs = dir.path().join("qs");
    let qs_arg = qs.display().to_string();
    let started = std::time::Instant::now();
    let run = crm(dir.path(), &["quickstart", "--dir", &qs_arg], &[]).expect(0);
    eprintln!("quickstart took {:?}\n{}", started.elapsed(), run.stdout);
    assert!(qs.join("crm.db").exists());

    let dir_filter = regex::escape(&qs_arg);
    let mut filters = redactions();
    filters.push((dir_filter.as_str(), "[dir]"));
    filters.extend([
        (r"(?m)(in_sync|drifted|unreachable|error)( +)\d+$", "$1$2[ms]"),
        (r"(?m)^(register host|install pack|probe host|preview|import|reconcile host)(.*?) +\d+$", "$1$2 [ms]"),
        (r"total \d+ ms", "total [ms] ms"),
        (r"(?m)^─+$", "───"),
    ]);
    insta::with_settings!({ filters => filters.clone() }, {
        insta::assert_snapshot!("quickstart_table", run.stdout);
    });

    // Same directory again: a fresh database, the same result.
    let again = crm(
        dir.path(),
        &["quickstart", "--dir", &qs_arg, "--output", "json"],
        &[],
    )
    .expect(0);
    let summary = again.json();
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["batch_status"], "applied", "{summary:#}");
        assert!(
            r["access_status"].as_str().unwrap().ends_with("_ready"),
            "{summary:#}"
        );
        assert_eq!(r["reconcile_status"], "in_sync");
    }
    assert_eq!(summary["drift_items"], 0);
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("quickstart_json", again.stdout);
    });

    // The database the next steps point at holds exactly this run.
    let db = qs.join("crm.db").display().to_string();
    let batches = crm(
        dir.path(),
        &["--db", &db, "batch", "list", "--output", "json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(batches.as_array().unwrap().len(), 2, "{batches:#}");
}

#[test]
fn an_unknown_simulator_profile_is_an_error_naming_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run = crm(
        dir.path(),
        &["quickstart", "--dir", "qs", "--profile", "nope"],
        &[],
    )
    .expect(1);
    assert!(
        run.stderr.contains("unknown simulator profile 'nope'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("current"), "{}", run.stderr);
}
