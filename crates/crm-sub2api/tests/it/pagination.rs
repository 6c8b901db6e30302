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
    let reqs = requests(&server).await;
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
