//! A host's page says when its URL is plain http outside loopback (the
//! admin key crosses the network in clear), and a loopback host's does not.

use crate::support::*;
use crm_app::hosts::{AdminKeySource, NewHost};
use crm_domain::SecretString;

#[tokio::test]
async fn a_plain_http_hosts_page_warns_and_a_loopback_hosts_does_not() {
    let w = World::start().await;
    w.app
        .add_host(NewHost {
            name: "relay".into(),
            base_url: "http://relay.example.com:8080".into(),
            admin_key: AdminKeySource::Value(SecretString::from("admin-0123456789abcdef")),
            reconcile_every_secs: None,
        })
        .await
        .unwrap();
    let cookie = login(&w.router, VIEWER).await;
    let page = get(&w.router, "/hosts/relay", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("role=\"alert\"")
            && page.body.contains("relay.example.com uses plain http"),
        "{}",
        page.body
    );
    // The simulator listens on 127.0.0.1: nothing leaves the machine.
    let page = get(&w.router, "/hosts/sim", Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("plain http"), "{}", page.body);
}
