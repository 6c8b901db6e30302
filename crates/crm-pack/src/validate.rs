//! Semantic checks on a read pack file, and conversion into the domain's
//! `PackManifest`.
//!
//! Reading already reported structural problems; here go the rules that
//! need values: vocabulary words, URLs, dates, versions, numbers, and the
//! references between fields (smoke-test model, model mapping, exchange
//! rates, duplicate ids). Every rule reports and carries on.

use crate::diagnostic::{Diagnostic, Locator, line_column};
use crate::file::{
    AccessFile, ErrorSignalFile, ModelFile, PackFile, PriceFile, ProviderFile, SCHEMA_VERSION,
};
use crate::read::Read;
use crm_domain::spec::{
    AccessDefaults, ErrorSignal, ErrorSignals, FxRate, ModelPrice, ModelSpec, PackManifest,
    PlatformPreference, ProviderSpec,
};
use crm_domain::{AccessMode, AccountMode, Currency, PackId, Platform, PriceUnit, ProviderKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

/// Checks `file` and, when this pass found nothing wrong, returns the
/// manifest. The caller still refuses it if reading reported anything.
pub(crate) fn validate(
    file: &PackFile,
    read: &Read,
    loc: &Locator<'_>,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<PackManifest> {
    let before = diags.len();
    let mut v = Checker {
        read,
        loc,
        text,
        diags,
    };
    let manifest = v.pack(file);
    (diags.len() == before).then_some(manifest).flatten()
}

struct Checker<'a, 'l> {
    read: &'a Read,
    loc: &'a Locator<'l>,
    text: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

/// The id rule shared by packs and providers: they appear in CLI arguments,
/// URLs and host object names.
pub(crate) fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// sub2api platform values are lower-case words, some with `_` (`opencode_go`).
fn is_platform_word(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Strict `YYYY-MM-DD` that is also a real calendar date.
pub(crate) fn check_date(s: &str) -> Result<(), String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(format!(
            "\"{s}\" is not a date; write it as YYYY-MM-DD, e.g. 2026-10-01"
        ));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|e| format!("\"{s}\" is not a calendar date ({e})"))
}

/// An https URL with a host, or plain http to a loopback host only: an
/// account's upstream key travels to this URL (docs/design.md §5,
/// "Secrets"), and over plain http anyone on the path reads it. Loopback
/// stays open for a provider proxy on the same machine and for tests.
pub(crate) fn check_url(s: &str) -> Result<(), String> {
    let url = url::Url::parse(s).map_err(|e| format!("\"{s}\" is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "\"{s}\" must use http or https, not `{}`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{s}\" has no host"));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(format!(
            "\"{s}\" uses plain http, which sends the upstream key in clear; use https (plain http is accepted only for loopback hosts: 127.0.0.0/8, ::1, localhost)"
        ));
    }
    Ok(())
}

/// 127.0.0.0/8, `::1` or `localhost` (the url crate lower-cases host names):
/// the one loopback rule, for pack URLs here and for host URLs in crm-app
/// (plain http there earns no warning on loopback).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

impl Checker<'_, '_> {
    /// Reports a problem, unless reading already reported this value (the
    /// checker then sees a placeholder, not what was written).
    fn report(&mut self, path: &str, message: String) {
        if self.read.poisoned(path) {
            return;
        }
        let d = self.loc.at(self.read.spans.of(path), path, message);
        self.diags.push(d);
    }

    fn line_of(&self, path: &str) -> usize {
        let offset = self.read.spans.of(path).map(|s| s.start).unwrap_or(0);
        line_column(self.text, offset).0
    }

    fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.report(path, format!("`{path}` must not be empty"));
        }
    }

    fn date(&mut self, path: &str, value: &str) {
        if let Err(e) = check_date(value) {
            self.report(path, format!("`{path}`: {e}"));
        }
    }

    fn url(&mut self, path: &str, value: &str) {
        if let Err(e) = check_url(value) {
            self.report(path, format!("`{path}`: {e}"));
        }
    }

    fn word<T: FromStr<Err = crm_domain::UnknownWord>>(
        &mut self,
        path: &str,
        value: &str,
    ) -> Option<T> {
        match value.parse() {
            Ok(t) => Some(t),
            Err(e) => {
                self.report(path, format!("`{path}`: {e}"));
                None
            }
        }
    }

    /// A finite amount; `strict` requires > 0, otherwise ≥ 0.
    fn amount(&mut self, path: &str, value: f64, strict: bool) {
        let ok = value.is_finite() && if strict { value > 0.0 } else { value >= 0.0 };
        if !ok {
            let rule = if strict { "> 0" } else { "≥ 0" };
            self.report(
                path,
                format!("`{path}` must be a finite number {rule}, found {value}"),
            );
        }
    }

    fn pack(&mut self, f: &PackFile) -> Option<PackManifest> {
        if f.schema_version != SCHEMA_VERSION {
            self.report(
                "schema_version",
                format!(
                    "unsupported schema_version {}; this version of crm reads schema_version {SCHEMA_VERSION}",
                    f.schema_version
                ),
            );
        }
        if !is_id(&f.pack_id) {
            self.report(
                "pack_id",
                format!(
                    "`pack_id` \"{}\" is not a valid id: use lower-case letters, digits and `-`, starting with a letter or digit (e.g. `cn-official`)",
                    f.pack_id
                ),
            );
        }
        if let Err(e) = semver::Version::parse(&f.version) {
            self.report(
                "version",
                format!(
                    "`version` \"{}\" is not a semantic version MAJOR.MINOR.PATCH such as 2026.11.1 ({e})",
                    f.version
                ),
            );
        }
        self.non_empty("name", &f.name);

        let fx_rates = self.fx_rates(f);
        // Rates that were declared but unreadable must not turn into
        // "currency has no rate" complaints.
        let fx_complete = !self.read.poisoned_under("fx_rates");
        let rated: BTreeSet<Currency> = fx_rates.iter().map(|r| r.currency).collect();

        if f.providers.is_empty() {
            self.report(
                "providers",
                "the pack declares no providers; add at least one [[providers]] entry".to_owned(),
            );
        }
        let mut seen: HashMap<&str, String> = HashMap::new();
        let mut providers = Vec::new();
        for (i, p) in f.providers.iter().enumerate() {
            let path = format!("providers[{i}]");
            if let Some(first) = seen.get(p.id.as_str()) {
                let line = self.line_of(first);
                self.report(
                    &format!("{path}.id"),
                    format!(
                        "duplicate provider id `{}`; it is already declared on line {line}; provider ids must be unique within a pack",
                        p.id
                    ),
                );
            } else if !self.read.poisoned(&format!("{path}.id")) {
                seen.insert(&p.id, format!("{path}.id"));
            }
            providers.push(self.provider(&path, p, &rated, fx_complete));
        }

        Some(PackManifest {
            schema_version: f.schema_version,
            pack_id: PackId::new(f.pack_id.clone()),
            version: f.version.clone(),
            name: f.name.clone(),
            description: f.description.clone(),
            fx_rates,
            providers: providers.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn fx_rates(&mut self, f: &PackFile) -> Vec<FxRate> {
        let mut out = Vec::new();
        let mut seen: HashMap<Currency, String> = HashMap::new();
        for (i, r) in f.fx_rates.iter().enumerate() {
            let path = format!("fx_rates[{i}]");
            let cpath = format!("{path}.currency");
            let currency = self.word::<Currency>(&cpath, &r.currency);
            self.amount(&format!("{path}.usd_per_unit"), r.usd_per_unit, true);
            self.non_empty(&format!("{path}.source"), &r.source);
            self.date(&format!("{path}.as_of"), &r.as_of);
            let Some(currency) = currency else { continue };
            if currency == Currency::Usd {
                self.report(
                    &cpath,
                    "USD is the base currency and needs no exchange rate; remove this entry"
                        .to_owned(),
                );
                continue;
            }
            if let Some(first) = seen.get(&currency) {
                let line = self.line_of(first);
                self.report(
                    &cpath,
                    format!("duplicate exchange rate for {currency}; it is already declared on line {line}"),
                );
                continue;
            }
            seen.insert(currency, cpath);
            out.push(FxRate {
                currency,
                usd_per_unit: r.usd_per_unit,
                source: r.source.clone(),
                as_of: r.as_of.clone(),
            });
        }
        out
    }

    fn provider(
        &mut self,
        path: &str,
        p: &ProviderFile,
        rated: &BTreeSet<Currency>,
        fx_complete: bool,
    ) -> Option<ProviderSpec> {
        let at = |field: &str| format!("{path}.{field}");
        if !is_id(&p.id) {
            self.report(
                &at("id"),
                format!(
                    "provider id \"{}\" is not a valid id: use lower-case letters, digits and `-`, starting with a letter or digit (e.g. `deepseek`)",
                    p.id
                ),
            );
        }
        self.non_empty(&at("display_name"), &p.display_name);
        self.url(&at("openai_base_url"), &p.openai_base_url);
        if let Some(u) = &p.anthropic_base_url {
            self.url(&at("anthropic_base_url"), u);
        }
        if !is_platform_word(&p.platform.native) {
            self.report(
                &at("platform.native"),
                format!(
                    "`{path}.platform.native` \"{}\" is not a sub2api platform value (lower-case letters, digits and `_`, e.g. `deepseek`)",
                    p.platform.native
                ),
            );
        }
        let fallback = Platform::new(p.platform.fallback.clone());
        if !fallback.is_baseline() {
            self.report(
                &at("platform.fallback"),
                format!(
                    "`{path}.platform.fallback` \"{}\" is not a platform every sub2api accepts; use `openai`, `anthropic` or `gemini`",
                    p.platform.fallback
                ),
            );
        }
        let account_mode = self.word::<AccountMode>(&at("account_mode"), &p.account_mode);

        // Reference checks need every model's names; a placeholder name
        // would make a declared model look missing.
        let models_complete = !self.read.poisoned(&at("models"))
            && (0..p.models.len()).all(|j| {
                let m = format!("{path}.models[{j}]");
                !self.read.poisoned(&format!("{m}.name"))
                    && !self.read.poisoned(&format!("{m}.upstream_name"))
            });
        if p.models.is_empty() {
            self.report(
                &at("models"),
                format!(
                    "provider `{}` declares no models; add at least one [[providers.models]] entry",
                    p.id
                ),
            );
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        let mut models = Vec::new();
        for (j, m) in p.models.iter().enumerate() {
            let mpath = format!("{path}.models[{j}]");
            let npath = format!("{mpath}.name");
            self.non_empty(&npath, &m.name);
            if let Some(first) = names.get(m.name.as_str()) {
                let line = self.line_of(first);
                self.report(
                    &npath,
                    format!(
                        "duplicate model name `{}` in provider `{}`; it is already declared on line {line}",
                        m.name, p.id
                    ),
                );
            } else if !self.read.poisoned(&npath) {
                names.insert(&m.name, npath);
            }
            models.push(self.model(&mpath, m, rated, fx_complete));
        }
        let upstreams: BTreeSet<&str> = p
            .models
            .iter()
            .map(|m| m.upstream_name.as_deref().unwrap_or(&m.name))
            .collect();

        // Reference checks only make sense when every model was readable;
        // otherwise a model that failed to read would look "missing".
        if models_complete && !p.models.is_empty() {
            if !names.contains_key(p.smoke_test_model.as_str()) {
                self.report(
                    &at("smoke_test_model"),
                    format!(
                        "smoke_test_model `{}` is not one of provider `{}`'s models ({})",
                        p.smoke_test_model,
                        p.id,
                        quoted(p.models.iter().map(|m| m.name.as_str()))
                    ),
                );
            } else if let Some(map) = &p.model_mapping
                && !map.contains_key(&p.smoke_test_model)
            {
                self.report(
                    &at("smoke_test_model"),
                    format!(
                        "smoke_test_model `{}` is not a key of `{path}.model_mapping`, so the host would not list it on /v1/models; add it to the mapping",
                        p.smoke_test_model
                    ),
                );
            }
            if let Some(map) = &p.model_mapping {
                for (client, upstream) in map {
                    let kpath = format!("{path}.model_mapping.\"{client}\"");
                    if !names.contains_key(client.as_str()) {
                        self.report(
                            &kpath,
                            format!(
                                "model_mapping key `{client}` is not one of provider `{}`'s models ({})",
                                p.id,
                                quoted(p.models.iter().map(|m| m.name.as_str()))
                            ),
                        );
                    }
                    if !upstreams.contains(upstream.as_str()) {
                        self.report(
                            &kpath,
                            format!(
                                "model_mapping `{client}` maps to `{upstream}`, which is no model's upstream_name ({})",
                                quoted(upstreams.iter().copied())
                            ),
                        );
                    }
                }
            }
        }

        let access = self.access(&at("access"), &p.access);
        self.signals(
            &at("error_signals.invalid_key"),
            &p.error_signals.invalid_key,
        );
        self.signals(&at("error_signals.quota"), &p.error_signals.quota);

        let models = models.into_iter().collect::<Option<Vec<_>>>()?;
        let model_mapping = p.model_mapping.clone().unwrap_or_else(|| {
            models
                .iter()
                .map(|m| (m.name.clone(), m.upstream_name.clone()))
                .collect::<BTreeMap<_, _>>()
        });
        let low_balance = match &p.low_balance {
            None => Some(None),
            Some(b) => {
                let bpath = at("low_balance");
                self.amount(&format!("{bpath}.amount"), b.amount, false);
                self.word::<Currency>(&format!("{bpath}.currency"), &b.currency)
                    .map(|currency| {
                        Some(crm_domain::funds::Threshold {
                            amount: b.amount,
                            currency,
                        })
                    })
            }
        };
        if let Some(q) = p.low_quota_percent
            && !(q.is_finite() && (0.0..=100.0).contains(&q))
        {
            self.report(
                &at("low_quota_percent"),
                format!(
                    "`{}` must be a percentage from 0 to 100, found {q}",
                    at("low_quota_percent")
                ),
            );
        }
        Some(ProviderSpec {
            id: ProviderKey::new(p.id.clone()),
            display_name: p.display_name.clone(),
            openai_base_url: p.openai_base_url.clone(),
            anthropic_base_url: p.anthropic_base_url.clone(),
            platform: PlatformPreference {
                native: Platform::new(p.platform.native.clone()),
                fallback,
            },
            account_mode: account_mode?,
            models,
            model_mapping,
            smoke_test_model: p.smoke_test_model.clone(),
            access: access?,
            quota_limited: p.quota_limited,
            error_signals: ErrorSignals {
                invalid_key: p.error_signals.invalid_key.iter().map(signal).collect(),
                quota: p.error_signals.quota.iter().map(signal).collect(),
            },
            funds: crm_domain::funds::FundsPolicy {
                threshold: crm_domain::funds::FundsThreshold {
                    low_balance: low_balance?,
                    low_quota_percent: p.low_quota_percent,
                },
                monitor: p.monitor,
            },
        })
    }

    fn model(
        &mut self,
        path: &str,
        m: &ModelFile,
        rated: &BTreeSet<Currency>,
        fx_complete: bool,
    ) -> Option<ModelSpec> {
        if let Some(u) = &m.upstream_name {
            self.non_empty(&format!("{path}.upstream_name"), u);
        }
        let price = self.price(&format!("{path}.price"), &m.price, rated, fx_complete);
        Some(ModelSpec {
            name: m.name.clone(),
            upstream_name: m.upstream_name.clone().unwrap_or_else(|| m.name.clone()),
            price: price?,
        })
    }

    fn price(
        &mut self,
        path: &str,
        p: &PriceFile,
        rated: &BTreeSet<Currency>,
        fx_complete: bool,
    ) -> Option<ModelPrice> {
        let cpath = format!("{path}.currency");
        let currency = self.word::<Currency>(&cpath, &p.currency);
        if let Some(c) = currency
            && c != Currency::Usd
            && !rated.contains(&c)
            && fx_complete
        {
            self.report(
                &cpath,
                format!(
                    "price currency {c} has no exchange rate; add a [[fx_rates]] entry with currency = \"{c}\""
                ),
            );
        }
        let unit = self.word::<PriceUnit>(&format!("{path}.unit"), &p.unit);
        self.amount(&format!("{path}.input"), p.input, false);
        self.amount(&format!("{path}.output"), p.output, false);
        if let Some(v) = p.cache_read {
            self.amount(&format!("{path}.cache_read"), v, false);
        }
        if let Some(v) = p.cache_write {
            self.amount(&format!("{path}.cache_write"), v, false);
        }
        self.non_empty(&format!("{path}.source"), &p.source);
        self.date(&format!("{path}.as_of"), &p.as_of);
        Some(ModelPrice {
            currency: currency?,
            unit: unit?,
            input: p.input,
            output: p.output,
            cache_read: p.cache_read,
            cache_write: p.cache_write,
            source: p.source.clone(),
            as_of: p.as_of.clone(),
        })
    }

    fn access(&mut self, path: &str, a: &AccessFile) -> Option<AccessDefaults> {
        let mpath = format!("{path}.modes");
        if a.modes.is_empty() {
            self.report(
                &mpath,
                format!("`{mpath}` is empty; list at least one of `self_service`, `subscription`"),
            );
        }
        let mut modes = Vec::new();
        let mut all_known = true;
        for (i, word) in a.modes.iter().enumerate() {
            let wpath = format!("{mpath}[{i}]");
            match self.word::<AccessMode>(&wpath, word) {
                Some(m) if modes.contains(&m) => {
                    self.report(&wpath, format!("access mode `{m}` is listed twice"));
                }
                Some(m) => modes.push(m),
                None => all_known = false,
            }
        }
        let rpath = format!("{path}.group_rate_multiplier");
        self.amount(&rpath, a.group_rate_multiplier, true);
        for (name, v) in [
            ("daily_limit_usd", a.daily_limit_usd),
            ("weekly_limit_usd", a.weekly_limit_usd),
            ("monthly_limit_usd", a.monthly_limit_usd),
        ] {
            if let Some(v) = v {
                self.amount(&format!("{path}.{name}"), v, true);
            }
        }
        self.amount(
            &format!("{path}.self_service_starting_balance"),
            a.self_service_starting_balance,
            false,
        );
        all_known.then_some(AccessDefaults {
            modes,
            group_rate_multiplier: a.group_rate_multiplier,
            daily_limit_usd: a.daily_limit_usd,
            weekly_limit_usd: a.weekly_limit_usd,
            monthly_limit_usd: a.monthly_limit_usd,
            subscription_validity_days: a.subscription_validity_days,
            self_service_starting_balance: a.self_service_starting_balance,
        })
    }

    fn signals(&mut self, path: &str, list: &[ErrorSignalFile]) {
        for (i, s) in list.iter().enumerate() {
            let spath = format!("{path}[{i}]");
            if self.read.poisoned_under(&spath) {
                continue;
            }
            match (&s.status, &s.body_contains) {
                (None, None) => self.report(
                    &spath,
                    format!("`{spath}` matches nothing; give a `status`, a `body_contains` text, or both"),
                ),
                (_, Some(b)) if b.is_empty() => {
                    self.report(&format!("{spath}.body_contains"), format!("`{spath}.body_contains` must not be empty"));
                }
                _ => {}
            }
        }
    }
}

fn signal(s: &ErrorSignalFile) -> ErrorSignal {
    ErrorSignal {
        status: s.status,
        body_contains: s.body_contains.clone(),
    }
}

/// `a`, `b`, ... in first-seen order, each once.
fn quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut seen = BTreeSet::new();
    let list: Vec<String> = items
        .filter(|s| seen.insert(*s))
        .map(|s| format!("`{s}`"))
        .collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}
