//! One body limit for every route and a request timeout (issue 19, item 7).

use super::{ADMIN, spawn_server, spawn_server_with};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Before, axum's extractors stopped at 2 MiB while the idempotency layer
/// allowed 4 MiB, so the same body passed with an `Idempotency-Key` and
/// was refused without one.
#[tokio::test]
async fn the_same_body_limit_holds_with_and_without_an_idempotency_key() {
    let srv = spawn_server().await;
    let three_mib = format!("# {}\n", "x".repeat(3 * 1024 * 1024));
    let five_mib = format!("# {}\n", "x".repeat(5 * 1024 * 1024));
    for key in [None, Some("limit-1")] {
        for (body, too_large) in [(&three_mib, false), (&five_mib, true)] {
            let mut rb = srv
                .http
                .post(srv.url("/api/packs?file_name=big.toml"))
                .bearer_auth(ADMIN)
                .header("content-type", "text/plain")
                .body(body.clone());
            if let Some(k) = key {
                rb = rb.header("idempotency-key", format!("{k}-{}", body.len()));
            }
            let status = rb.send().await.unwrap().status().as_u16();
            if too_large {
                assert_eq!(status, 413, "key {key:?}: {} bytes", body.len());
            } else {
                assert_ne!(status, 413, "key {key:?}: {} bytes", body.len());
                assert!((400..500).contains(&status), "{status}");
            }
        }
    }
}

/// A client that sends headers and then nothing holds no connection for
/// ever.
#[tokio::test]
async fn a_request_that_never_finishes_its_body_times_out() {
    let srv = spawn_server_with(|c| c.request_timeout = Duration::from_millis(300)).await;
    let addr = srv.base.trim_start_matches("http://").to_owned();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        format!(
            "POST /api/hosts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"na"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
        .await
        .expect("the server answers within its timeout")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}
