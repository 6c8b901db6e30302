//! [`HostConnector`]: opens a [`Sub2apiHost`] for a registered host.

use super::error::host_error;
use super::host::Sub2apiHost;
use crate::client::{AdminKey, RetryPolicy, Sub2apiClient};
use async_trait::async_trait;
use crm_domain::SecretString;
use crm_domain::host::HostRecord;
use crm_domain::ports::{HostApi, HostConnector, HostError, HostResult};
use std::sync::Arc;
use std::time::Duration;

/// Opens [`Sub2apiHost`]s for registered hosts, reusing their stored
/// capabilities (page size, notes, idempotency) when a probe was recorded.
///
/// Every host it opens, and every clone of it, sends through one shared
/// HTTP client ([`SharedHttp`]): opening a host is then cheap (no TLS roots
/// to load again) and connections to a host are kept alive between
/// operations.
///
/// ```
/// use crm_sub2api::Sub2apiConnector;
/// use std::time::Duration;
///
/// let connector = Sub2apiConnector {
///     timeout: Duration::from_secs(10),
///     ..Sub2apiConnector::default()
/// };
/// # let _ = connector;
/// ```
#[derive(Debug, Clone)]
pub struct Sub2apiConnector {
    pub timeout: Duration,
    pub sse_timeout: Duration,
    pub retry: RetryPolicy,
    /// The HTTP client the opened hosts share, built on first use.
    pub http: SharedHttp,
    /// Pages of one listing requested at once after the first.
    pub pages_in_flight: usize,
}

impl Default for Sub2apiConnector {
    fn default() -> Self {
        Sub2apiConnector {
            timeout: crate::client::DEFAULT_TIMEOUT,
            sse_timeout: crate::client::DEFAULT_SSE_TIMEOUT,
            retry: RetryPolicy::default(),
            http: SharedHttp::default(),
            pages_in_flight: crate::client::PAGES_IN_FLIGHT,
        }
    }
}

/// One HTTP client shared by clones, built the first time it is needed
/// (so a connector that never connects never loads TLS roots).
#[derive(Debug, Clone, Default)]
pub struct SharedHttp(Arc<std::sync::OnceLock<reqwest::Client>>);

impl SharedHttp {
    /// The shared client, building it on first use.
    pub fn get(&self) -> std::result::Result<reqwest::Client, String> {
        if let Some(c) = self.0.get() {
            return Ok(c.clone());
        }
        let built =
            crate::client::http_client(crate::client::DEFAULT_USER_AGENT, Duration::from_secs(10))?;
        // A racing first use may have won; either client is equivalent.
        Ok(self.0.get_or_init(|| built).clone())
    }
}

impl Sub2apiConnector {
    /// The concrete host (for callers that want more than the port).
    pub fn open(&self, host: &HostRecord, admin_key: SecretString) -> HostResult<Sub2apiHost> {
        let http = self.http.get().map_err(|detail| HostError::Unreachable {
            detail: format!("no HTTP client for {}: {detail}", host.base_url),
        })?;
        let client = Sub2apiClient::builder(host.base_url.clone(), AdminKey::new(admin_key))
            .timeout(self.timeout)
            .sse_timeout(self.sse_timeout)
            .retry(self.retry)
            .pages_in_flight(self.pages_in_flight)
            .http_client(http)
            .build()
            .map_err(|e| host_error(e, "host"))?;
        Ok(match host.capabilities.clone() {
            Some(caps) => Sub2apiHost::with_capabilities(client, caps),
            None => Sub2apiHost::new(client),
        })
    }
}

#[async_trait]
impl HostConnector for Sub2apiConnector {
    async fn connect(
        &self,
        host: &HostRecord,
        admin_key: SecretString,
    ) -> HostResult<Arc<dyn HostApi>> {
        Ok(Arc::new(self.open(host, admin_key)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_clones_share_one_http_client_built_on_first_use() {
        let connector = Sub2apiConnector::default();
        let clone = connector.clone();
        assert!(clone.http.0.get().is_none(), "nothing built before use");
        let host = HostRecord {
            id: crm_domain::HostId::new("h-1"),
            name: "a".into(),
            base_url: "http://127.0.0.1:9".into(),
            admin_credential: crm_domain::host::CredentialRef::Env {
                var: "UNUSED".into(),
            },
            capabilities: None,
            reconcile_every_secs: None,
            funds_thresholds: Default::default(),
            created_at: chrono::Utc::now(),
        };
        connector
            .open(&host, SecretString::from("k".to_owned()))
            .unwrap();
        assert!(clone.http.0.get().is_some(), "the clone sees the client");
        assert!(Arc::ptr_eq(&connector.http.0, &clone.http.0));
    }
}
