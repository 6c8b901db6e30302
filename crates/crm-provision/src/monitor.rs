//! What a host-side channel monitor of a batch is (issue 20 item 4): the
//! host itself calls the provider's upstream with one of the batch's
//! upstream keys on a schedule and keeps the results, so an upstream that
//! stops answering shows on the host before users report it.
//!
//! Pure: names, the endpoint rule, the draft and the desired spec. The
//! plan item is in `planner::monitor`, the journaled step in `steps`.
//!
//! Monitors have no notes or description field; crm's ownership marker
//! (docs/design.md §5 "Ownership") goes into `group_name`, a free display
//! label of at most 100 characters that the host keeps as given.

use crate::desired::{PackProvider, group_name, normalize_url};
use crm_domain::observed::{HostMonitor, MonitorDraft, MonitorPatch};
use crm_domain::ownership;
use crm_domain::{AccessMode, BatchId, Fingerprint, SecretString};
use serde_json::{Value, json};

/// How often the host checks, in seconds. sub2api accepts 15..=3600
/// (`channelMonitorCreateRequest` binding); five minutes is a check cheap
/// enough for a metered key (about 16 output tokens each) and still finds
/// a dead upstream within the hour a scheduled reconcile runs.
pub const MONITOR_INTERVAL_SECS: u32 = 300;

/// The monitor's protocol family: the OpenAI-compatible API every pack
/// provider declares (`openai_base_url`).
pub const MONITOR_PROVIDER: &str = "openai";
/// `chat_completions`: the CN providers serve no Responses API.
pub const MONITOR_API_MODE: &str = "chat_completions";

/// The longest `group_name` the host accepts.
const GROUP_NAME_MAX: usize = 100;

/// `crm-<pack>.<provider>-<mode>`, the batch group's name: one monitor per
/// batch, found again by it.
pub fn monitor_name(pp: &PackProvider, mode: AccessMode) -> String {
    group_name(&pp.provider, mode)
}

/// Where the host's monitor sends its checks. The host appends
/// `/v1/chat/completions` to the endpoint (sub2api
/// `service/channel_monitor_checker.go`, `joinURL(endpoint,
/// providerOpenAIPath)`), so the endpoint is the OpenAI base URL without its
/// trailing `/v1`, or the base URL itself when it has no path. A base URL
/// with another version path (Zhipu's `/api/paas/v4`, Volcengine's
/// `/api/v3`) has no such form: `None`.
pub fn monitor_endpoint(openai_base_url: &str) -> Option<String> {
    let base = normalize_url(openai_base_url);
    if let Some(origin) = base.strip_suffix("/v1") {
        return Some(origin.to_owned());
    }
    let after_scheme = base.split_once("://").map_or(base.as_str(), |(_, r)| r);
    (!after_scheme.contains('/')).then_some(base)
}

/// The marker text a monitor of `batch` carries in `group_name`: the
/// display name and crm's marker, or the marker alone when both would pass
/// the host's limit.
pub fn monitor_group_name(batch: &BatchId, display: &str) -> String {
    let text = ownership::marked_text(batch, display);
    if text.chars().count() <= GROUP_NAME_MAX {
        text
    } else {
        ownership::marker(batch)
    }
}

/// One batch's monitor as crm wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    pub name: String,
    pub endpoint: String,
    /// The upstream name of the pack's smoke-test model: the monitor calls
    /// the upstream directly, past the host's model mapping.
    pub primary_model: String,
    pub interval_seconds: u32,
    /// The upstream key the monitor checks with (its fingerprint; the key
    /// itself reaches the host in the create only).
    pub key: Fingerprint,
}

impl MonitorSpec {
    /// The monitor of a batch of `pp` in `mode` checking with `key`, or why
    /// there can be none.
    pub fn new(
        pp: &PackProvider,
        mode: AccessMode,
        key: &Fingerprint,
    ) -> std::result::Result<Self, String> {
        let endpoint = monitor_endpoint(&pp.spec.openai_base_url).ok_or_else(|| {
            format!(
                "the host's monitor calls <endpoint>/v1/chat/completions and {}'s OpenAI base URL {} has another version path, so no monitor can check it",
                pp.provider, pp.spec.openai_base_url
            )
        })?;
        let smoke = &pp.spec.smoke_test_model;
        let primary_model = pp
            .spec
            .model(smoke)
            .map_or_else(|| smoke.clone(), |m| m.upstream_name.clone());
        Ok(MonitorSpec {
            name: monitor_name(pp, mode),
            endpoint,
            primary_model,
            interval_seconds: MONITOR_INTERVAL_SECS,
            key: key.clone(),
        })
    }

    /// The create body; `key` is the upstream key of [`MonitorSpec::key`].
    pub fn draft(&self, batch: &BatchId, display: &str, key: SecretString) -> MonitorDraft {
        MonitorDraft {
            name: self.name.clone(),
            provider: MONITOR_PROVIDER.into(),
            api_mode: MONITOR_API_MODE.into(),
            endpoint: self.endpoint.clone(),
            api_key: key,
            primary_model: self.primary_model.clone(),
            extra_models: vec![],
            group_name: monitor_group_name(batch, display),
            enabled: true,
            interval_seconds: self.interval_seconds,
        }
    }

    /// The update that brings an observed monitor to the spec and marks it
    /// (no key: the host keeps the one it has).
    pub fn patch(&self, batch: &BatchId, display: &str) -> MonitorPatch {
        MonitorPatch {
            name: Some(self.name.clone()),
            endpoint: Some(self.endpoint.clone()),
            api_key: None,
            primary_model: Some(self.primary_model.clone()),
            group_name: Some(monitor_group_name(batch, display)),
            enabled: Some(true),
            interval_seconds: Some(self.interval_seconds),
        }
    }

    /// The desired spec recorded for the monitor (reconcile compares with
    /// it): everything of the draft but the key, which is recorded as its
    /// fingerprint.
    pub fn desired(&self, batch: &BatchId, display: &str) -> Value {
        json!({
            "name": self.name,
            "provider": MONITOR_PROVIDER,
            "api_mode": MONITOR_API_MODE,
            "endpoint": self.endpoint,
            "primary_model": self.primary_model,
            "group_name": monitor_group_name(batch, display),
            "enabled": true,
            "interval_seconds": self.interval_seconds,
            "upstream_key": self.key,
        })
    }
}

/// Whether a monitor carries crm's marker.
pub fn is_marked(m: &HostMonitor) -> bool {
    ownership::parse_marker(&m.group_name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_base_url_the_host_can_append_v1_chat_completions_to() {
        for (base, want) in [
            ("https://api.deepseek.com", Some("https://api.deepseek.com")),
            (
                "https://api.moonshot.cn/v1",
                Some("https://api.moonshot.cn"),
            ),
            (
                "https://api.moonshot.cn/v1/",
                Some("https://api.moonshot.cn"),
            ),
            (
                "https://dashscope.aliyuncs.com/compatible-mode/v1",
                Some("https://dashscope.aliyuncs.com/compatible-mode"),
            ),
            ("https://open.bigmodel.cn/api/paas/v4", None),
            ("https://ark.cn-beijing.volces.com/api/v3", None),
            ("http://127.0.0.1:9/x", None),
        ] {
            assert_eq!(monitor_endpoint(base).as_deref(), want, "{base}");
        }
    }

    #[test]
    fn the_group_name_holds_the_marker_within_the_hosts_limit() {
        let b = BatchId::new("b-0193");
        let short = monitor_group_name(&b, "DeepSeek");
        assert_eq!(ownership::parse_marker(&short), Some(b.clone()));
        assert!(short.starts_with("DeepSeek"));
        let long = monitor_group_name(&b, &"x".repeat(120));
        assert_eq!(long, ownership::marker(&b));
        assert!(long.chars().count() <= GROUP_NAME_MAX);
    }
}
