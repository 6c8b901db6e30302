//! Provider status on the host and provider pages: the same answer as
//! crm-app's `provider_statuses`, through not reconciled, active and drifted.

use crate::support::*;

/// The status word shown for `provider` in the host page's status table.
fn status_on_host_page(body: &str, provider: &str) -> String {
    let row = body
        .split("<tr>")
        .find(|r| r.contains(&format!(">{provider}</a>")) && r.contains("provider-status"))
        .unwrap_or_else(|| panic!("no status row for {provider} in\n{body}"));
    let marker = "data-status=\"";
    let start = row.find(marker).unwrap() + marker.len();
    row[start..start + row[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn host_and_provider_pages_show_each_providers_status() {
    let w = World::start().await;
    let cookie = login(&w.router, ADMIN).await;
    let c = Some(cookie.as_str());
    let host = get(&w.router, "/hosts/sim", c).await;
    assert_eq!(
        status_on_host_page(&host.body, "cn-official/kimi"),
        "inactive"
    );
    assert!(host.body.contains("no_live_batch"), "{}", host.body);

    let csrf = host.csrf();
    let preview = post(
        &w.router,
        "/providers/cn-official/kimi/preview",
        c,
        &[
            ("csrf", &csrf),
            ("host", "sim"),
            ("mode", "self_service"),
            ("keys", "sim-ok-kimi-status-0123456789"),
        ],
    )
    .await;
    post(
        &w.router,
        "/providers/cn-official/kimi/import",
        c,
        &[("csrf", &csrf), ("pending", &preview.hidden("pending"))],
    )
    .await;
    w.launcher.wait_idle().await;
    let host = get(&w.router, "/hosts/sim", c).await;
    assert_eq!(
        status_on_host_page(&host.body, "cn-official/kimi"),
        "unknown"
    );
    assert!(host.body.contains("not_reconciled"), "{}", host.body);

    post(&w.router, "/hosts/sim/reconcile", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let host = get(&w.router, "/hosts/sim", c).await;
    assert_eq!(
        status_on_host_page(&host.body, "cn-official/kimi"),
        "active"
    );
    assert_eq!(
        status_on_host_page(&host.body, "cn-official/deepseek"),
        "inactive"
    );
    let provider = get(&w.router, "/providers/cn-official/kimi", c).await;
    assert!(
        provider.body.contains("Status per host")
            && provider.body.contains("data-status=\"active\""),
        "{}",
        provider.body
    );

    // The host loses the batch's channel: the next check shows drift.
    let batch = w
        .app
        .list_batches(Default::default())
        .await
        .unwrap()
        .remove(0);
    let detail = w.app.batch_detail(batch.id.as_str()).await.unwrap();
    let channel = detail
        .resources
        .iter()
        .find(|r| r.kind == crm_domain::ResourceKind::Channel)
        .expect("the batch made a channel");
    w.sim
        .delete_object("channels", channel.host_object_id.0)
        .unwrap();
    post(&w.router, "/hosts/sim/reconcile", c, &[("csrf", &csrf)]).await;
    w.launcher.wait_idle().await;
    let host = get(&w.router, "/hosts/sim", c).await;
    assert_eq!(
        status_on_host_page(&host.body, "cn-official/kimi"),
        "drifted"
    );
    let expected = w.app.provider_status("sim", &batch.provider).await.unwrap();
    assert_eq!(
        expected.status.as_str(),
        "drifted",
        "the page shows crm-app's answer"
    );
}
