//! The decoder entry points shared by the cargo-fuzz targets (`fuzz/`,
//! which `include!`s this file so it builds without the rest of this crate)
//! and the seeded pseudo-fuzz and corpus regression tests here.
//!
//! Each takes arbitrary bytes and must return without panicking, whatever
//! they are. It uses only `crm_pack`, `crm_sub2api` and `serde_json`.

/// The pack parser: TOML text of any shape, under a file name that may
/// itself be odd.
pub fn pack(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = crm_pack::parse_pack("fuzz.toml", &text) {
        // A pack that parses has a stable canonical checksum.
        let again = crm_pack::parse_pack("fuzz.toml", &text).map(|p| p.checksum);
        assert_eq!(
            again.ok(),
            Some(parsed.checksum),
            "checksum is deterministic"
        );
    }
}

/// sub2api response decoding: the error envelope, pages and the wire types
/// of every object crm reads, from the same JSON body.
pub fn envelope(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(body) = serde_json::from_value::<crm_sub2api::ErrorBody>(value.clone()) {
        let _ = body.machine_code();
        let _ = body.text();
    }
    let data_field = value.get("data").cloned().unwrap_or(value.clone());
    macro_rules! decode {
        ($($t:ty),*) => {$(
            let _ = serde_json::from_value::<$t>(data_field.clone());
            if let Ok(page) = serde_json::from_value::<crm_sub2api::Page<$t>>(data_field.clone()) {
                let _ = page.page_count();
            }
        )*};
    }
    decode!(
        crm_sub2api::Account,
        crm_sub2api::Group,
        crm_sub2api::Channel,
        crm_sub2api::User,
        crm_sub2api::ApiKey,
        crm_sub2api::Subscription,
        crm_sub2api::SystemVersion,
        crm_sub2api::PublicSettings,
        crm_sub2api::Health
    );
}

/// The account-test SSE stream: split into chunks at the positions the
/// first byte chooses, each payload decoded as a test event.
pub fn sse(data: &[u8]) {
    let (step, body) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 17) + 1, rest),
        None => (1, data),
    };
    let mut parser = crm_sub2api::sse::SseParser::default();
    let mut payloads = Vec::new();
    for chunk in body.chunks(step) {
        payloads.extend(parser.push(chunk));
    }
    payloads.extend(parser.finish());
    // The same bytes in one piece give the same events.
    let mut whole = crm_sub2api::sse::SseParser::default();
    let mut once = whole.push(body);
    once.extend(whole.finish());
    assert_eq!(payloads, once, "chunking does not change the events");
    for p in payloads {
        let _ = serde_json::from_str::<crm_sub2api::TestEvent>(&p);
    }
}
