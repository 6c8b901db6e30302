//! Bad input tour: malformed and mistyped packs, wrong JSON types, huge
//! bodies, unicode and SQL-ish names, path traversal (through the API's
//! install-from-path and the CLI), unknown hosts and providers, wrong
//! tokens; and the hostile inputs of issue 19: a host that redirects or
//! answers an oversized body, a reference to the server's own environment
//! or files, a pack taking a bundled id or a plain-http upstream, a CLI
//! typo. (A traversal to a missing file may answer 404 "no pack file in
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
    /// What the answer's `detail` must show, beyond being there.
    says: Option<Says>,
}

/// A check of an answer's words: `Err` says what is missing.
type Says = fn(&str) -> Result<(), String>;

/// The bundled pack's text with `from` replaced by `to` (once, and it must
/// be there).
fn bundled_with(edits: &[(&str, &str)]) -> String {
    let (_, text) = crm_pack::bundled::all()[0];
    let mut text = text.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "the bundled pack has {from}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// The bundled pack with other content under its own id: taking a bundled
/// id needs `replace_bundled` / `--replace-bundled`.
fn pack_taking_the_bundled_id() -> String {
    bundled_with(&[("version = \"2026.11.1\"", "version = \"2099.1.1\"")])
}

/// A pack of its own id whose upstream is plain http on a non-loopback
/// host: an upstream key would travel there in clear.
fn pack_with_plain_http_upstream() -> String {
    bundled_with(&[
        ("pack_id = \"cn-official\"", "pack_id = \"plain-http\""),
        (
            "openai_base_url = \"https://api.deepseek.com\"",
            "openai_base_url = \"http://api.deepseek.com\"",
        ),
    ])
}

/// `file:line:column: ... plain http ...` for the edited line.
fn names_the_plain_http_line(detail: &str) -> Result<(), String> {
    let (_, text) = crm_pack::bundled::all()[0];
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("openai_base_url = \"https://api.deepseek.com\""))
        .expect("the bundled pack's deepseek line");
    let at = format!("plain-http.toml:{line}:");
    if detail.contains(&at) && detail.contains("plain http") {
        Ok(())
    } else {
        Err(format!("expected {at}<column>: ... plain http"))
    }
}

fn names_replace_bundled(detail: &str) -> Result<(), String> {
    if detail.contains("replace_bundled") || detail.contains("--replace-bundled") {
        Ok(())
    } else {
        Err("expected the way to say so (replace_bundled)".into())
    }
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// `sim_url` is the simulator; `listener` a listener that counts every
/// connection (no refused request may reach it).
fn cases(sim_url: &str, listener: &str) -> Vec<Case> {
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
            says: None,
        },
        Case {
            name: "pack with wrong types",
            method: "POST",
            path: "/api/packs?file_name=bad.toml".into(),
            body: toml("schema_version = \"one\"\n[pack]\nid = 7\nversion = []\n"),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "pack provider id with path traversal",
            method: "POST",
            path: "/api/packs?file_name=../../etc/passwd".into(),
            body: toml("schema_version = 1\n[pack]\nid = \"../../x\"\nversion = \"1\"\n"),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "lint of binary garbage",
            method: "POST",
            path: "/api/packs/lint".into(),
            body: Body::Raw("text/plain", vec![0xff, 0xfe, 0, 1, 2]),
            token: TOKEN,
            expect: &[200, 400, 415, 422],
            says: None,
        },
        Case {
            name: "host with wrong JSON types",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(json!({"name": 5, "base_url": true, "admin_key": ["x"]})),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "host body that is not JSON",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Raw("application/json", b"{\"name\":".to_vec()),
            token: TOKEN,
            expect: &[400],
            says: None,
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
            says: None,
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
            says: None,
        },
        Case {
            name: "huge pack body",
            method: "POST",
            path: "/api/packs?file_name=big.toml".into(),
            body: Body::Raw("text/plain", vec![b'#'; 5 << 20]),
            token: TOKEN,
            expect: &[413],
            says: None,
        },
        Case {
            name: "unicode host name",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("主机-\u{202E}😀")),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "SQL-ish host name",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("'; DROP TABLE batches;--")),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "SQL-ish host id in a path",
            method: "GET",
            path: "/api/hosts/'%3B%20DROP%20TABLE%20batches%3B--".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
            says: None,
        },
        Case {
            name: "SQL-ish batch id",
            method: "GET",
            path: "/api/import-batches/1'%20OR%20'1'%3D'1".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
            says: None,
        },
        Case {
            name: "SQL-ish provider",
            method: "GET",
            path: "/api/providers/cn-official/x'%20OR%201%3D1--".into(),
            body: Body::None,
            token: TOKEN,
            expect: &[404],
            says: None,
        },
        Case {
            name: "pack from-path traversal",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "../../etc/passwd"})),
            token: TOKEN,
            expect: &[403, 404],
            says: None,
        },
        // An existing file just outside the packs directory: the database.
        Case {
            name: "pack from-path to the database",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "../crm.db"})),
            token: TOKEN,
            expect: &[403],
            says: None,
        },
        Case {
            name: "pack from-path absolute outside",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "/etc/passwd"})),
            token: TOKEN,
            expect: &[403],
            says: None,
        },
        Case {
            name: "pack from-path dot-dot inside",
            method: "POST",
            path: "/api/packs/from-path".into(),
            body: Body::Json(json!({"path": "sub/../../crm.db"})),
            token: TOKEN,
            expect: &[403],
            says: None,
        },
        Case {
            name: "unknown host",
            method: "POST",
            path: preview.clone(),
            body: Body::Json(json!({"host": "nope", "mode": "subscription", "upstream_keys": []})),
            token: TOKEN,
            expect: &[404],
            says: None,
        },
        Case {
            name: "unknown provider",
            method: "POST",
            path: "/api/providers/cn-official/nope/preview".into(),
            body: Body::Json(json!({"host": "sim", "mode": "subscription", "upstream_keys": []})),
            token: TOKEN,
            expect: &[404],
            says: None,
        },
        Case {
            name: "unknown mode",
            method: "POST",
            path: preview.clone(),
            body: Body::Json(json!({"host": "sim", "mode": "free", "upstream_keys": []})),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        Case {
            name: "upstream key of the wrong type",
            method: "POST",
            path: preview,
            body: Body::Json(json!({"host": "sim", "mode": "subscription", "upstream_keys": [42]})),
            token: TOKEN,
            expect: &[400, 422],
            says: None,
        },
        // Issue 19: references to the server's own environment or files.
        Case {
            name: "admin_key_env reference over HTTP",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "ref-env", "base_url": listener, "admin_key_env": "CRM_SEAL_KEY"}),
            ),
            token: TOKEN,
            expect: &[422],
            says: None,
        },
        Case {
            name: "admin_key_file reference over HTTP",
            method: "POST",
            path: "/api/hosts".into(),
            body: Body::Json(
                json!({"name": "ref-file", "base_url": listener, "admin_key_file": "/etc/passwd"}),
            ),
            token: TOKEN,
            expect: &[422],
            says: None,
        },
        Case {
            name: "pack taking the bundled id",
            method: "POST",
            path: "/api/packs?file_name=cn-official.toml".into(),
            body: Body::Raw("text/plain", pack_taking_the_bundled_id().into_bytes()),
            token: TOKEN,
            expect: &[409],
            says: Some(names_replace_bundled),
        },
        Case {
            name: "pack with a plain-http upstream",
            method: "POST",
            path: "/api/packs?file_name=plain-http.toml".into(),
            body: Body::Raw("text/plain", pack_with_plain_http_upstream().into_bytes()),
            token: TOKEN,
            expect: &[422],
            says: Some(names_the_plain_http_line),
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
            says: None,
        },
        Case {
            name: "wrong token",
            method: "GET",
            path: "/api/hosts".into(),
            body: Body::None,
            token: "wrong-token-0123456789-abcdef",
            expect: &[401],
            says: None,
        },
        Case {
            name: "wrong token on a write",
            method: "POST",
            path: "/api/hosts".into(),
            body: host(json!("h2")),
            token: "wrong-token-0123456789-abcdef",
            expect: &[401],
            says: None,
        },
        Case {
            name: "empty token",
            method: "GET",
            path: "/api/audit".into(),
            body: Body::None,
            token: "",
            expect: &[401],
            says: None,
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
    let (listener, reached) = listener::counting().await;

    for c in cases(&s.sim.base_url(), &listener) {
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
        } else if let Some(Err(want)) = c.says.map(|says| says(detail)) {
            tally.violation(format!("{}: {want}, got: {detail:.300}", c.name));
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

    // Issue 19: a refused reference to the server's own environment or
    // files sends nothing anywhere.
    tally.trial();
    let n = reached.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "{:<38} {n} connections",
        "refused references reached a listener"
    );
    if n != 0 {
        tally.violation(format!(
            "a refused admin_key_env/admin_key_file request reached the listener ({n} connections)"
        ));
    }

    // The CLI refuses the same packs, exit 1, with the same words.
    for (file, text, says) in [
        (
            "cn-official.toml",
            pack_taking_the_bundled_id(),
            names_replace_bundled as Says,
        ),
        (
            "plain-http.toml",
            pack_with_plain_http_upstream(),
            names_the_plain_http_line,
        ),
    ] {
        tally.trial();
        let path = s.dir.path().join(file);
        std::fs::write(&path, text).expect("write the pack");
        let out = cli(&s.db(), &["pack", "install", path.to_str().expect("utf-8")]);
        let all = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "crm pack install {file:<26} exit {:?}: {}",
            out.status.code(),
            all.lines().next().unwrap_or("")
        );
        if out.status.code() != Some(1) {
            tally.violation(format!(
                "crm pack install {file}: {:?} {all:.300}",
                out.status
            ));
        } else if let Err(want) = says(&all) {
            tally.violation(format!("crm pack install {file}: {want}, got: {all:.300}"));
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

    hostile_hosts(&s, &tally).await;
    for v in db::consistency(&s.db()) {
        tally.violation(v);
    }
    tally.finish("");
}

/// Issue 19: hosts that redirect (the admin key must not follow) or send
/// more than crm reads. Each probe is refused with an error that names what
/// happened, the other address gets nothing, and the server and its
/// records carry on: the next request is answered, the simulator host's
/// record is as it was, and the hostile host's record stays.
async fn hostile_hosts(s: &Served, tally: &Tally) {
    let (elsewhere, stolen) = listener::counting().await;
    let port = elsewhere.rsplit(':').next().expect("a port");
    // `localhost`, not the 127.0.0.1 of the host itself, so the answer
    // shows which host the redirect names.
    let location = format!("http://localhost:{port}/steal?token=SECRETQUERY");
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let huge = format!(
        "{{\"code\":0,\"message\":\"ok\",\"data\":{{\"name\":\"{}\"}}}}",
        "x".repeat(5 << 20)
    );
    let oversized = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{huge}",
        huge.len()
    )
    .into_bytes();
    let sim_before = s.call("GET", "/api/hosts/sim", None).await;

    for (name, answer, says) in [
        ("redirecting", redirect, &["302", "localhost"][..]),
        ("oversized", oversized, &["larger than", "bytes"][..]),
    ] {
        tally.trial();
        let url = listener::answering(answer).await;
        let (st, b) = s
            .call(
                "POST",
                "/api/hosts",
                Some(json!({"name": name, "base_url": url, "admin_key": "admin-key-hostile-0123"})),
            )
            .await;
        if st != 201 {
            tally.violation(format!("register {name}: {st} {b}"));
            continue;
        }
        let (st, b) = s
            .call("POST", &format!("/api/hosts/{name}/probe"), None)
            .await;
        let detail = b["detail"].as_str().unwrap_or("");
        eprintln!(
            "{:<38} {st} {}",
            format!("probe of a host {name}"),
            detail.chars().take(110).collect::<String>()
        );
        if !(400..600).contains(&st) || st == 500 {
            tally.violation(format!("probe {name}: {st} (expected a refusal): {b}"));
        }
        for word in says {
            if !detail.contains(word) {
                tally.violation(format!(
                    "probe {name}: the error does not say {word:?}: {b}"
                ));
            }
        }
        if b.to_string().contains("SECRETQUERY") {
            tally.violation(format!(
                "probe {name}: the answer quotes the Location query"
            ));
        }
        let (st, b) = s.call("GET", &format!("/api/hosts/{name}"), None).await;
        if st != 200 {
            tally.violation(format!(
                "{name}: its record is gone after the probe: {st} {b}"
            ));
        }
    }

    tally.trial();
    let n = stolen.load(std::sync::atomic::Ordering::SeqCst);
    if n != 0 {
        tally.violation(format!(
            "the redirect was followed: {n} connections reached its Location"
        ));
    }
    if s.call("GET", "/api/hosts/sim", None).await != sim_before {
        tally.violation("the simulator host's record changed");
    }
}

/// Loopback listeners for the hostile-host cases.
mod listener {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A listener that counts connections and answers none.
    pub async fn counting() -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("address"));
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        (url, n)
    }

    /// A listener answering every request with `answer` (raw HTTP bytes).
    pub async fn answering(answer: Vec<u8>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("address"));
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    // The client may stop reading (a bound): that ends the
                    // write with an error, which is the point.
                    let _ = sock.write_all(&answer).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        url
    }
}
