//! Snapshots of what an operator reads: the markdown summary and the JSON
//! summary of a legacy-host run (the honest `fail` with `route_missing`),
//! with ports, ids, times, fingerprints, latencies and the pack checksum
//! redacted.

use crm_domain::SecretString;
use crm_evidence::{Modes, PackSource, RunSpec, Target, UpstreamKeys};

/// Applied by insta's filters to both snapshots.
const FILTERS: &[(&str, &str)] = &[
    (r"127\.0\.0\.1:\d+", "[host]"),
    (r"\bb-[0-9a-f]{32}\b", "[batch]"),
    (r"\brr-[0-9a-f]{32}\b", "[run]"),
    (r"\bh-[0-9a-f]{32}\b", "[host-id]"),
    (r"\bac-[0-9a-f]{32}\b", "[check]"),
    (
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]",
    ),
    (r"[0-9a-f]{8}…[0-9A-Za-z]{4}", "[key]"),
    (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)",
        "[time]",
    ),
    (r"in \d+ ms", "in [n] ms"),
    (r"[0-9a-f]{64}", "[sha256]"),
    (r"checksum [0-9a-f]{12}\)", "checksum [sha256])"),
];

#[tokio::test]
async fn a_legacy_host_run_reads_like_this() {
    let out = tempfile::tempdir().unwrap();
    let o = crm_evidence::run(RunSpec {
        target: Target::Sim {
            profile: "legacy-2025-12".into(),
        },
        pack: PackSource::Bundled("cn-official".into()),
        provider: "kimi".into(),
        modes: Modes::SelfService,
        upstream_keys: UpstreamKeys::Given(vec![SecretString::from(format!(
            "sim-ok-{}",
            uuid::Uuid::new_v4().simple()
        ))]),
        user: None,
        out: out.path().to_owned(),
        keep: false,
        db: None,
        label: None,
    })
    .await
    .unwrap();
    let md = std::fs::read_to_string(o.folder.join("21-summary.md")).unwrap();
    let filters: Vec<(&str, &str)> = FILTERS.to_vec();
    insta::with_settings!({ filters => filters.clone() }, {
        insta::assert_snapshot!("legacy_summary_md", md);
    });

    let mut summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.folder.join("21-summary.json")).unwrap())
            .unwrap();
    // Step bodies are covered by the markdown; keep the JSON to its shape.
    for step in summary["steps"].as_array_mut().unwrap() {
        step["summary"] = serde_json::json!("[summary]");
    }
    let text = serde_json::to_string_pretty(&summary).unwrap();
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("legacy_summary_json", text);
    });
}
