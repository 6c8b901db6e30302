//! Host use cases: register, list, show, probe, remove, and connecting to a
//! registered host for the other use cases.

use crate::App;
use crate::credentials;
use crate::error::{AppError, Result};
use crm_domain::SecretString;
use crm_domain::host::{AdminAuth, Capabilities, CredentialRef, HostRecord, SealContext};
use crm_domain::ops::Target;
use crm_domain::ports::SecretSealer;
use crm_domain::ports::{HostApi, HostConnector, HostRepo};
use crm_domain::{HostId, ProviderRef};
use std::sync::Arc;

/// A host as shown to operators: no credential value, ever.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostView {
    pub id: String,
    pub name: String,
    pub base_url: String,
    /// `env:VAR`, `file:PATH` or `sealed`.
    pub admin_credential: String,
    pub version: Option<String>,
    pub probed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reconcile_every_secs: Option<u64>,
    /// The host's own funds thresholds over the packs' (`crm host set`);
    /// `{}` when it sets none.
    pub funds_thresholds: crm_domain::funds::HostThresholds,
    pub capabilities: Option<Capabilities>,
    /// What the operator should know about this registration
    /// ([`plain_http_warning`]); left out when there is nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<&HostRecord> for HostView {
    fn from(h: &HostRecord) -> Self {
        HostView {
            id: h.id.to_string(),
            name: h.name.clone(),
            base_url: h.base_url.clone(),
            admin_credential: describe_credential(&h.admin_credential),
            version: h.capabilities.as_ref().and_then(|c| c.version.clone()),
            probed_at: h.capabilities.as_ref().map(|c| c.probed_at),
            reconcile_every_secs: h.reconcile_every_secs,
            funds_thresholds: h.funds_thresholds.clone(),
            capabilities: h.capabilities.clone(),
            warnings: plain_http_warning(&h.base_url).into_iter().collect(),
        }
    }
}

/// The warning a host URL in plain `http` earns: crm sends the host's admin
/// key (`x-api-key`) and, on account creates, upstream keys to it, readable
/// by anyone on the path (docs/design.md §5 "Secrets"). Accepted, because
/// operators run relays on private networks, but said in `crm host add`,
/// `crm host show`, the API's host view and the console's host page.
/// Loopback (the same rule as pack URLs, [`crm_pack::is_loopback`]) earns
/// none: nothing leaves the machine, and the quickstart and tests live there.
pub fn plain_http_warning(base_url: &str) -> Option<String> {
    let url = url::Url::parse(base_url).ok()?;
    if url.scheme() != "http" || crm_pack::is_loopback(&url) {
        return None;
    }
    Some(format!(
        "{} uses plain http: the admin key and upstream keys cross the network in clear; use https unless this network is trusted",
        url.host_str().unwrap_or("the host")
    ))
}

fn describe_credential(c: &CredentialRef) -> String {
    match c {
        CredentialRef::Env { var } => format!("env:{var}"),
        CredentialRef::File { path } => format!("file:{path}"),
        CredentialRef::Sealed { .. } => "sealed".into(),
    }
}

/// Where a new host's admin key comes from.
#[derive(Debug)]
pub enum AdminKeySource {
    /// Keep a reference to an environment variable.
    Env(String),
    /// Keep a reference to a file.
    File(String),
    /// Seal this value into the database (e.g. read from stdin once).
    Value(SecretString),
}

/// Checks an admin-key source that arrived over HTTP (API or console).
///
/// A reference names an environment variable or a file *of the server
/// process*; a caller with an admin token is not the operator at the
/// server's shell, and a probe would send the value to the URL the caller
/// chose. So over HTTP the key travels in the request body (stored sealed),
/// and references are refused, except file references under
/// `credential_dir` when the server was started with one
/// (`crm-server --credential-dir DIR`). Environment references have no
/// allowlist; `CRM_*` variables (the server's own configuration and seal
/// key) are named in the refusal.
pub fn check_remote_source(
    source: &AdminKeySource,
    credential_dir: Option<&std::path::Path>,
) -> Result<()> {
    const USE_BODY: &str = "send the key itself as admin_key (it is stored sealed), or register the host with `crm host add` at the server";
    match source {
        AdminKeySource::Value(_) => Ok(()),
        AdminKeySource::Env(var) => {
            let own = if var.starts_with("CRM_") {
                " (CRM_* variables are crm's own configuration)"
            } else {
                ""
            };
            Err(AppError::invalid(format!(
                "admin_key_env is refused over HTTP: it would read the server's environment{own}; {USE_BODY}"
            )))
        }
        AdminKeySource::File(path) => {
            let Some(dir) = credential_dir else {
                return Err(AppError::invalid(format!(
                    "admin_key_file is refused over HTTP: this server allows no credential directory (crm-server --credential-dir DIR); {USE_BODY}"
                )));
            };
            // Canonical paths, so `..` and symlinks cannot leave the directory.
            let under = match (std::fs::canonicalize(dir), std::fs::canonicalize(path)) {
                (Ok(d), Ok(p)) => p.starts_with(&d) && p != d,
                _ => false,
            };
            if under {
                Ok(())
            } else {
                Err(AppError::invalid(format!(
                    "admin_key_file must name an existing file under the server's credential directory {}; {USE_BODY}",
                    dir.display()
                )))
            }
        }
    }
}

/// Input of [`App::add_host`].
#[derive(Debug)]
pub struct NewHost {
    pub name: String,
    pub base_url: String,
    pub admin_key: AdminKeySource,
    pub reconcile_every_secs: Option<u64>,
}

/// A threshold an operator can mean: a balance of at least zero, a share
/// of a quota window from 0 to 100.
pub fn validate_threshold(t: &crm_domain::funds::FundsThreshold) -> Result<()> {
    if let Some(b) = &t.low_balance
        && !(b.amount.is_finite() && b.amount >= 0.0)
    {
        return Err(AppError::invalid(format!(
            "low balance {}: expected an amount of at least 0, e.g. 20CNY",
            b.amount
        )));
    }
    if let Some(p) = t.low_quota_percent
        && !(0.0..=100.0).contains(&p)
    {
        return Err(AppError::invalid(format!(
            "low quota percent {p}: expected a percentage from 0 to 100"
        )));
    }
    Ok(())
}

fn validate_base_url(raw: &str) -> Result<String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| AppError::invalid(format!("host URL {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AppError::invalid(format!(
            "host URL {raw:?} must be http(s)://HOST[:PORT], e.g. https://relay.example.com"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // A key in the URL would be stored, shown and logged in clear.
        return Err(AppError::invalid(format!(
            "host URL of {} must not carry a user or password (user:pass@); give the admin key separately",
            url.host_str().unwrap_or("the host")
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(format!(
            "host name {name:?} must be 1-64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

impl App {
    /// Registers a host. The admin key is checked to be readable now, but
    /// only its reference (or its sealed form) is stored.
    pub async fn add_host(&self, new: NewHost) -> Result<HostView> {
        validate_name(&new.name)?;
        let base_url = validate_base_url(&new.base_url)?;
        let id = HostId::new(self.ids.new_id("h"));
        let credential = match new.admin_key {
            AdminKeySource::Env(var) => {
                credentials::from_env(&var, "admin key")?;
                CredentialRef::Env { var }
            }
            AdminKeySource::File(path) => {
                credentials::from_file(&path, "admin key")?;
                CredentialRef::File { path }
            }
            AdminKeySource::Value(secret) => CredentialRef::Sealed {
                sealed: self
                    .store
                    .sealer()
                    .seal(&SealContext::host_admin_key(&id), &secret)?,
            },
        };
        let record = HostRecord {
            id,
            name: new.name,
            base_url,
            admin_credential: credential,
            capabilities: None,
            reconcile_every_secs: new.reconcile_every_secs,
            funds_thresholds: Default::default(),
            created_at: self.clock.now(),
        };
        let target = Target::host(&record.name).to_string();
        let stored = self.store.add_host(record).await;
        self.audit(
            "host.add",
            &target,
            if stored.is_ok() { "ok" } else { "error" },
            None,
        )
        .await;
        Ok(HostView::from(&stored?))
    }

    pub async fn list_hosts(&self) -> Result<Vec<HostView>> {
        Ok(self
            .store
            .list_hosts()
            .await?
            .iter()
            .map(HostView::from)
            .collect())
    }

    pub async fn host(&self, id_or_name: &str) -> Result<HostRecord> {
        self.store.get_host(id_or_name).await.map_err(|e| match e {
            crm_domain::ports::StoreError::NotFound { .. } => AppError::NotFound {
                what: format!("host {id_or_name:?}"),
                hint: Some(
                    "list hosts with `crm host list`, register one with `crm host add`".into(),
                ),
            },
            other => other.into(),
        })
    }

    /// Sets the host's own funds thresholds, host-wide or for one provider
    /// (`clear` drops that scope's first); reconcile, `crm provider funds`,
    /// the funds API and page, the gauges, the provider status and the
    /// scheduler's webhook all use them from then on.
    pub async fn set_host_thresholds(
        &self,
        id_or_name: &str,
        provider: Option<&ProviderRef>,
        thresholds: &crm_domain::funds::FundsThreshold,
        clear: bool,
    ) -> Result<HostView> {
        validate_threshold(thresholds)?;
        if !clear && thresholds.is_empty() {
            return Err(AppError::invalid(
                "nothing to set: give a low balance, a low quota percent or clear \
                 (`crm host set HOST --low-balance 20CNY`)",
            ));
        }
        let mut host = self.host(id_or_name).await?;
        if let Some(p) = provider {
            // A typo would otherwise be stored and never match a reading.
            self.provider_spec(p, None).await?;
        }
        host.funds_thresholds.set(provider, thresholds, clear);
        let result = self
            .store
            .set_funds_thresholds(&host.id, host.funds_thresholds.clone())
            .await;
        self.audit(
            "host.funds_thresholds",
            &Target::host(&host.name).to_string(),
            if result.is_ok() { "ok" } else { "error" },
            Some(match &result {
                Ok(()) => format!(
                    "{}: {}",
                    provider.map_or("every provider".to_owned(), |p| p.to_string()),
                    serde_json::to_string(&host.funds_thresholds).unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            }),
        )
        .await;
        result?;
        Ok(HostView::from(&host))
    }

    pub async fn show_host(&self, id_or_name: &str) -> Result<HostView> {
        Ok(HostView::from(&self.host(id_or_name).await?))
    }

    pub async fn remove_host(&self, id_or_name: &str) -> Result<()> {
        let host = self.host(id_or_name).await?;
        let result = self.store.remove_host(&host.id).await;
        self.audit(
            "host.remove",
            &Target::host(&host.name).to_string(),
            if result.is_ok() { "ok" } else { "error" },
            result.as_ref().err().map(|e| e.to_string()),
        )
        .await;
        Ok(result?)
    }

    /// Reads a host's admin key from wherever its reference points.
    pub(crate) fn admin_key(&self, host: &HostRecord) -> Result<SecretString> {
        credentials::resolve(
            &host.admin_credential,
            &SealContext::host_admin_key(&host.id),
            self.store.sealer().as_ref(),
            &format!("admin key of host {}", host.name),
        )
    }

    /// A connected host handle (with the stored capabilities).
    pub async fn connect(&self, host: &HostRecord) -> Result<Arc<dyn HostApi>> {
        let key = self.admin_key(host)?;
        Ok(self.connector.connect(host, key).await?)
    }

    /// Probes a host and stores what it found.
    pub async fn probe_host(&self, id_or_name: &str) -> Result<HostView> {
        let mut host = self.host(id_or_name).await?;
        let api = self.connect(&host).await?;
        let target = Target::host(&host.name).to_string();
        let caps = match api.probe().await {
            Ok(c) => c,
            Err(e) => {
                self.audit("host.probe", &target, "error", Some(e.to_string()))
                    .await;
                return Err(e.into());
            }
        };
        self.store.save_capabilities(&host.id, caps.clone()).await?;
        let outcome = match &caps.admin_auth {
            AdminAuth::Ok => "ok",
            AdminAuth::ComplianceGate { .. } => "compliance_gate",
            AdminAuth::Rejected { .. } => "auth_rejected",
        };
        self.audit("host.probe", &target, outcome, caps.version.clone())
            .await;
        host.capabilities = Some(caps);
        Ok(HostView::from(&host))
    }

    /// Capabilities of a host, probing first if it was never probed.
    pub(crate) async fn capabilities(&self, host: &mut HostRecord) -> Result<Capabilities> {
        if let Some(c) = &host.capabilities {
            return Ok(c.clone());
        }
        let view = self.probe_host(host.id.as_str()).await?;
        let caps = view
            .capabilities
            .ok_or_else(|| AppError::invalid("probe stored nothing"))?;
        host.capabilities = Some(caps.clone());
        Ok(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_checked_with_actionable_messages() {
        assert_eq!(
            validate_base_url("https://relay.example.com/").unwrap(),
            "https://relay.example.com"
        );
        assert!(
            validate_base_url("ftp://x")
                .unwrap_err()
                .to_string()
                .contains("http(s)")
        );
        assert!(validate_name("prod-1").is_ok());
        assert!(validate_name("../etc").is_err());
    }
}

#[cfg(test)]
mod url_tests {
    use super::validate_base_url;

    #[test]
    fn host_urls_with_userinfo_are_refused_without_echoing_it() {
        for raw in [
            "https://admin:SECRETPW@relay.example.com",
            "https://SECRETUSER@relay.example.com",
        ] {
            let e = validate_base_url(raw).unwrap_err().to_string();
            assert!(e.contains("user or password"), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
        assert_eq!(
            validate_base_url("https://relay.example.com/").unwrap(),
            "https://relay.example.com"
        );
    }
}

#[cfg(test)]
mod plain_http_tests {
    use super::plain_http_warning;

    #[test]
    fn plain_http_hosts_are_warned_about_except_on_loopback() {
        let w = plain_http_warning("http://relay.example.com:8080").unwrap();
        assert!(
            w.contains("relay.example.com") && w.contains("plain http"),
            "{w}"
        );
        for quiet in [
            "https://relay.example.com",
            "http://127.0.0.1:8080",
            "http://127.8.0.1",
            "http://[::1]:3000",
            "http://localhost:3000",
        ] {
            assert_eq!(plain_http_warning(quiet), None, "{quiet}");
        }
        // A name that only starts like loopback is not loopback.
        assert!(plain_http_warning("http://localhost.example.com").is_some());
    }
}
