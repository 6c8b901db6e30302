//! Bad input tour: malformed and mistyped packs, wrong JSON types, huge
//! bodies, unicode and SQL-ish names, path traversal (through the API's
//! install-from-path and the CLI), unknown hosts and providers, wrong
//! tokens. (A traversal to a missing file may answer 404 "no pack file in
//! the packs directory"; one to an existing file outside it must be 403.)
//! Each gets a clear 4xx answer (problem+json with a `detail`), no
//! 5xx, and the database stays consistent with no row written by a refused
//! request (SQLite integrity and foreign-key checks, row counts per table).

use crate::served::{Served, TOKEN, cli};
use crm_reliability::{Tally, db};
use serde_json::{Value, json};
use std::time::Duration;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Body,
    token: &'static str,
    expect: &'static [u16],
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn cases(sim_url: &str) -> Vec<Case> {
    let host = |name: Value| {
        Body::Json(json!({"name": name, "base_url": sim_url, "admin_key": "admin-key-xyz"}))
    };
    let toml = |t: &str| Body::Raw("text/plain", t.as_bytes().to_vec());
    let preview = "/api/providers/cn-official/deepseek/preview".to_owned();
    vec![
        Case {
            name: "malformed pack TOML",
            method: "POST",
            path: "/api/packs?file_name=bad.toml".into(),
            body: toml("[pack\nid = "),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "pack with wrong types",
            method: "POST",
            path: "/api/packs?file_name=bad.toml".into(),
            body: toml("schema_version = \"one\"\n[pack]\nid = 7\nversion = []\n"),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "pack provider id with path traversal",
            method: "POST",
            path: "/api/packs?file_name=../../etc/passwd".into(),
            body: toml("schema_version = 1\n[pack]\nid = \"../../x\"\nversion = \"1\"\n"),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "lint of binary garbage",
            method: "POST",
            path: "/api/packs/lint".into(),
            body: Body::Raw("text/plain", vec![0xff, 0xfe, 0, 1, 2]),
            token: TOKEN,
            expect: &[200, 400, 415, 422],
        },
        Case {
            name: "host with wrong JSON types",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(json!({"name": 5, "base_url": true, "admin_key": ["x"]})),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "host body that is not JSON",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Raw("application/json", b"{\"name\":".to_vec()),
            token: TOKEN,
            expect: &[400],
        },
        Case {
            name: "host body with unknown fields",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "h", "base_url": sim_url, "admin_key": "k", "is_admin": true}),
            ),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "huge JSON body",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Raw(
                "application/json",
                // Over the one 4 MiB limit of every route.
                format!("{{\"name\":\"{}\"}}", "a".repeat(5 << 20)).into_bytes(),
            ),
            token: TOKEN,
            expect: &[413],
        },
        Case {
            name: "huge pack body",
            method: "POST",
            path: "/api/packs?file_name=big.toml".into(),
            body: Body::Raw("text/plain", vec![b'#'; 5 << 20]),
            token: TOKEN,
            expect: &[413],
        },
        Case {
            name: "unicode host name",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("主机-\u{202E}😀")),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "SQL-ish host name",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("'; DROP TABLE batches;--")),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "SQL-ish host id in a path",
            method: "GET",
            path: "/api/hosts/'%3B%20DROP%20TABLE%20batches%3B--".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
        },
        Case {
            name: "SQL-ish batch id",
            method: "GET",
            path: "/api/import-batches/1'%20OR%20'1'%3D'1".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
        },
        Case {
            name: "SQL-ish provider",
            method: "GET",
            path: "/api/providers/cn-official/x'%20OR%201%3D1--".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
        },
        Case {
            name: "pack from-path traversal",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "../../etc/passwd"})),
            token: TOKEN,
            expect: &[403, 404],
        },
        // An existing file just outside the packs directory: the database.
        Case {
            name: "pack from-path to the database",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "../crm.db"})),
            token: TOKEN,
            expect: &[403],
        },
        Case {
            name: "pack from-path absolute outside",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "/etc/passwd"})),
            token: TOKEN,
            expect: &[403],
        },
        Case {
            name: "pack from-path dot-dot inside",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "sub/../../crm.db"})),
            token: TOKEN,
            expect: &[403],
        },
        Case {
            name: "unknown host",
            method: "POST",
            path: preview.clone(),
            body: Body::Json(json!({"host": "nope", "mode": "subscription", "upstream_keys": []})),
            token: TOKEN,
            expect: &[404],
        },
        Case {
            name: "unknown provider",
            method: "POST",
            path: "/api/providers/cn-official/nope/preview".into(),
            body: Body::Json(json!({"host": "sim", "mode": "subscription", "upstream_keys": []})),
            token: TOKEN,
            expect: &[404],
        },
        Case {
            name: "unknown mode",
            method: "POST",
            path: preview.clone(),
            body: Body::Json(json!({"host": "sim", "mode": "free", "upstream_keys": []})),
            token: TOKEN,
            expect: &[400, 422],
        },
        Case {
            name: "upstream key of the wrong type",
            method: "POST",
            path: preview,
            body: Body::Json(json!({"host": "sim", "mode": "subscription", "upstream_keys": [42]})),
            token: TOKEN,
            expect: &[400, 422],
        },
        // Issue 19: references to the server's own environment or files.
        Case {
            name: "admin_key_env reference over HTTP",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "ref-env", "base_url": sim_url, "admin_key_env": "CRM_SEAL_KEY"}),
            ),
            token: TOKEN,
            expect: &[422],
        },
        Case {
            name: "admin_key_file reference over HTTP",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "ref-file", "base_url": sim_url, "admin_key_file": "/etc/passwd"}),
            ),
            token: TOKEN,
            expect: &[422],
        },
        Case {
            name: "host URL with user:pass@",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "userinfo", "base_url": "http://u:pw@127.0.0.1:9", "admin_key": "admin-key-xyz"}),
            ),
            token: TOKEN,
            expect: &[422],
        },
        Case {
            name: "wrong token",
            method: "GET",
            path: "/api/hosts".into(),
            body: Body::None,
            token: "wrong-token-0123456789-abcdef",
            expect: &[401],
        },
        Case {
            name: "wrong token on a write",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("h2")),
            token: "wrong-token-0123456789-abcdef",
            expect: &[401],
        },
        Case {
            name: "empty token",
            method: "GET",
            path: "/api/audit".into(),
            body: Body::None,
            token: "",
            expect: &[401],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_clear_error_and_the_database_stays_consistent() {
    let tally = Tally::new("bad_input");
    let s = Served::start(|opts, dir| {
        let packs = dir.path().join("packs");
        std::fs::create_dir_all(packs.join("sub")).expect("packs dir");
        opts.packs_dir = Some(packs);
    })
    .await;
    s.setup().await;
    let before = db::row_counts(&s.db());
    assert!(before.iter().any(|(t, _)| t == "batches"), "{before:?}");

    for c in cases(&s.sim.base_url()) {
        tally.trial();
        // A server that refuses a 3 MiB body early may close the connection
        // while the client still sends it; the client then sees a transport
        // error instead of the 413. Try again a few times before calling it.
        let mut answer = (0u16, String::new(), String::new());
        for attempt in 0..5u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            let mut req = s
                .http
                .request(c.method.parse().expect("method"), s.server.url(&c.path));
            if !c.token.is_empty() {
                req = req.bearer_auth(c.token);
            }
            req = match &c.body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::Raw(ct, bytes) => req.header("content-type", *ct).body(bytes.clone()),
            };
            answer = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let ctype = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    (status, ctype, r.text().await.unwrap_or_default())
                }
                Err(e) => (0, String::new(), e.to_string()),
            };
            if answer.0 != 0 {
                break;
            }
        }
        let (status, ctype, text) = answer;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or("");
        eprintln!(
            "{:<38} {status} {}",
            c.name,
            detail.chars().take(110).collect::<String>()
        );
        if !c.expect.contains(&status) {
            tally.violation(format!(
                "{}: {status} (expected {:?}): {text:.300}",
                c.name, c.expect
            ));
        } else if status >= 400 && (!ctype.contains("problem+json") || detail.is_empty()) {
            tally.violation(format!(
                "{}: {status} without a problem+json detail ({ctype}): {text:.300}",
                c.name
            ));
        }
        if text.contains("root:x:0:0") {
            tally.violation(format!("{}: the answer quotes /etc/passwd", c.name));
        }
    }

    // The CLI installs from any path the operator names, but a file that is
    // not a pack is refused with a clear error and its content is not echoed.
    for path in [
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "/nonexistent/pack.toml",
    ] {
        tally.trial();
        let out = cli(&s.db(), &["pack", "install", path]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "crm pack install {path:<30} exit {:?}: {}",
            out.status.code(),
            all.lines().next().unwrap_or("")
        );
        if out.status.code() != Some(1) || all.trim().is_empty() {
            tally.violation(format!(
                "crm pack install {path}: {:?} {all:.300}",
                out.status
            ));
        }
        if all.contains("root:x:0:0") {
            tally.violation(format!("crm pack install {path} echoes the file's content"));
        }
    }

    // A typo is a usage error: exit 1, never 2 ("changes present").
    for typo in [
        &["provider", "previw"][..],
        &["hots", "list"][..],
        &["host", "list", "--no-such-flag"][..],
    ] {
        tally.trial();
        let out = cli(&s.db(), typo);
        eprintln!("crm {:<32} exit {:?}", typo.join(" "), out.status.code());
        if out.status.code() != Some(1) || out.stderr.is_empty() {
            tally.violation(format!("crm {}: {:?}", typo.join(" "), out.status));
        }
    }

    let after = db::row_counts(&s.db());
    if after != before {
        tally.violation(format!(
            "refused requests wrote rows: before {before:?} after {after:?}"
        ));
    }
    for v in db::consistency(&s.db()) {
        tally.violation(v);
    }
    tally.finish("");
}
