//! The test environment itself works: both profiles probe as expected.

use crm_testkit::TestEnv;

#[tokio::test]
async fn current_profile_has_the_newer_capabilities() {
    let env = TestEnv::current().await;
    assert!(env.caps.channels);
    assert!(env.caps.chat_completions);
    assert_eq!(env.caps.max_page_size, 1000);
    assert!(
        env.caps
            .native_platforms
            .iter()
            .any(|p| p.as_str() == "deepseek")
    );
    assert_eq!(
        env.provider_ref("deepseek").to_string(),
        "cn-official/deepseek"
    );
}

#[tokio::test]
async fn legacy_profile_lacks_them() {
    let env = TestEnv::legacy().await;
    assert!(!env.caps.channels);
    assert!(!env.caps.chat_completions);
    // d3e73f1 answers a page_size above 100 with its default of 20 (seen on
    // the real host; crates/crm-sim/README.md), and the probe keeps what
    // the host echoes.
    assert_eq!(env.caps.max_page_size, 20);
    assert!(env.caps.native_platforms.is_empty());
}
