//! Listings walk every page at the configured page size, never one GET per object.

use crate::support::*;
use crm_sub2api::AccountFilter;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer};

fn account(id: i64) -> serde_json::Value {
    json!({"id": id, "name": format!("acc-{id}"), "platform": "openai", "type": "apikey",
           "credentials": {"base_url": "https://api.deepseek.com"}, "status": "active",
           "schedulable": true, "group_ids": [1]})
}

#[tokio::test]
async fn two_hundred_fifty_accounts_at_page_size_100_take_three_requests() {
    let server = MockServer::start().await;
    for page in 1..=3i64 {
        let start = (page - 1) * 100 + 1;
        let end = (page * 100).min(250);
        let items: Vec<_> = (start..=end).map(account).collect();
        Mock::given(method("GET"))
            .and(path("/api/v1/admin/accounts"))
            .and(query_param("page", page.to_string()))
            .and(query_param("page_size", "100"))
            .respond_with(ok_envelope(json!({
                "items": items, "total": 250, "page": page, "page_size": 100, "pages": 3
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let accounts = c.list_accounts(&AccountFilter::default()).await.unwrap();
    assert_eq!(accounts.len(), 250);
    assert_eq!(accounts.last().unwrap().id, 250);
    let mut reqs = requests(&server).await;
    // Page 1 first (it tells how many there are); the rest go at once, so
    // they may arrive in any order.
    reqs[1..].sort();
    assert_eq!(
        reqs,
        vec![
            (
                "GET".to_owned(),
                "/api/v1/admin/accounts?page=1&page_size=100".to_owned()
            ),
            (
                "GET".to_owned(),
                "/api/v1/admin/accounts?page=2&page_size=100".to_owned()
            ),
            (
                "GET".to_owned(),
                "/api/v1/admin/accounts?page=3&page_size=100".to_owned()
            ),
        ]
    );
    assert_eq!(c.request_count(), 3);
}

#[tokio::test]
async fn a_raised_page_size_is_used_and_short_pages_without_totals_end_the_walk() {
    let server = MockServer::start().await;
    let items: Vec<_> = (1..=250).map(account).collect();
    // No total/pages: a page shorter than page_size is the last one.
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(query_param("page_size", "1000"))
        .respond_with(ok_envelope(json!({"items": items})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    c.set_page_size(1000);
    assert_eq!(
        c.list_accounts(&AccountFilter::default())
            .await
            .unwrap()
            .len(),
        250
    );
}

#[tokio::test]
async fn later_pages_are_fetched_at_once_and_kept_in_order() {
    let server = MockServer::start().await;
    for page in 1..=4i64 {
        let items: Vec<_> = ((page - 1) * 100 + 1..=page * 100).map(account).collect();
        // Each later page takes 1.5 s (page 2 a little longer, so it
        // answers last): one after another the walk would take at least
        // 4.5 s; in flight together, about 1.6 s after page 1.
        let delay = match page {
            1 => 0,
            2 => 1_600,
            _ => 1_500,
        };
        Mock::given(method("GET"))
            .and(path("/api/v1/admin/accounts"))
            .and(query_param("page", page.to_string()))
            .respond_with(
                ok_envelope(json!({
                    "items": items, "total": 400, "page": page, "page_size": 100, "pages": 4
                }))
                .set_delay(std::time::Duration::from_millis(delay)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let t = std::time::Instant::now();
    let accounts = c.list_accounts(&AccountFilter::default()).await.unwrap();
    let took = t.elapsed();
    let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    assert_eq!(ids, (1..=400).collect::<Vec<_>>(), "page order kept");
    // Not a speed target: 4.5 s is the floor of fetching one page at a
    // time, so anything under 4 s proves the pages overlapped.
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn a_host_that_reports_more_pages_than_it_has_ends_at_an_empty_page() {
    let server = MockServer::start().await;
    let items: Vec<_> = (1..=100).map(account).collect();
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(query_param("page", "1"))
        .respond_with(ok_envelope(json!({
            "items": items, "total": 1_000_000_000, "page": 1, "page_size": 100,
            "pages": 10_000_000
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .respond_with(ok_envelope(json!({
            "items": [], "total": 1_000_000_000, "page_size": 100, "pages": 10_000_000
        })))
        .mount(&server)
        .await;
    let c = client(&server);
    let accounts = c.list_accounts(&AccountFilter::default()).await.unwrap();
    assert_eq!(accounts.len(), 100);
    // Page 1, then at most one window of pages in flight.
    let n = requests(&server).await.len();
    assert!(
        (2..=1 + crm_sub2api::client::PAGES_IN_FLIGHT).contains(&n),
        "{n} requests"
    );
    // One page in flight reads page by page: exactly one empty page more.
    // A server of its own: the windowed client above may still have
    // requests in flight after it returned, which a reset would count.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .and(query_param("page", "1"))
        .respond_with(ok_envelope(json!({
            "items": (1..=100).map(account).collect::<Vec<_>>(), "total": 1_000_000_000,
            "page": 1, "page_size": 100, "pages": 10_000_000
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/admin/accounts"))
        .respond_with(ok_envelope(json!({"items": [], "pages": 10_000_000})))
        .mount(&server)
        .await;
    let one_at_a_time = crm_sub2api::Sub2apiClient::builder(
        server.uri(),
        crm_sub2api::AdminKey::new(crm_sub2api::SecretString::from(ADMIN_KEY)),
    )
    .pages_in_flight(1)
    .build()
    .unwrap();
    let accounts = one_at_a_time
        .list_accounts(&AccountFilter::default())
        .await
        .unwrap();
    assert_eq!(accounts.len(), 100);
    assert_eq!(requests(&server).await.len(), 2);
}
