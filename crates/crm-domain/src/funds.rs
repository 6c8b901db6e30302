//! Funds and quota readings of upstream keys, the thresholds a pack (or an
//! operator) sets on them, and the pure logic that turns the two into a
//! status, a drift reason and a once-per-crossing alert.
//!
//! A reading never carries a key: it names the host account that holds the
//! key. Amounts keep the currency the provider reported; a provider without
//! a balance API gives an `unsupported` reading, never a zero.

use crate::{
    BatchId, Currency, DriftReason, FailureClass, FundsStatus, HostId, HostObjectId, ProviderRef,
    ReadingKind, ReadingSource, ReadingState,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// An amount of money in the currency the provider reported it in
/// (`CNY`, `USD`, ... upper-cased; open because providers may add more).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Money {
    pub amount: f64,
    pub currency: String,
}

/// One Coding-Plan rolling window (`5h`, `weekly`) as the host reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuotaWindow {
    pub window: String,
    /// 0..100, not clipped: a host may report more than 100.
    pub used_percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<String>,
}

/// What one funds or quota route said about one account's upstream key.
///
/// The value part ([`FundsValue`]) is what a host or provider adapter
/// returns; the reconcile run adds who and when.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FundsValue {
    pub kind: ReadingKind,
    pub state: ReadingState,
    /// Every currency the provider reported, primary first (DeepSeek may
    /// report CNY and USD).
    #[serde(default)]
    pub balances: Vec<Money>,
    /// DeepSeek's `is_available`; `None` where the provider has no such flag.
    #[serde(default)]
    pub available: Option<bool>,
    #[serde(default)]
    pub quota: Vec<QuotaWindow>,
    /// Why the state is `unknown` or `unsupported` (scrubbed: never a key).
    #[serde(default)]
    pub detail: Option<String>,
}

impl FundsValue {
    /// A balance reading.
    pub fn balance(balances: Vec<Money>, available: Option<bool>) -> Self {
        FundsValue {
            kind: ReadingKind::Balance,
            state: ReadingState::Ok,
            balances,
            available,
            quota: vec![],
            detail: None,
        }
    }

    /// A quota reading.
    pub fn quota(quota: Vec<QuotaWindow>) -> Self {
        FundsValue {
            kind: ReadingKind::Quota,
            state: ReadingState::Ok,
            balances: vec![],
            available: None,
            quota,
            detail: None,
        }
    }

    /// A reading that could not be taken (the route failed, the answer had an
    /// unexpected shape).
    pub fn unknown(kind: ReadingKind, detail: impl Into<String>) -> Self {
        FundsValue {
            kind,
            state: ReadingState::Unknown,
            balances: vec![],
            available: None,
            quota: vec![],
            detail: Some(detail.into()),
        }
    }

    /// The provider or account mode offers nothing to read.
    pub fn unsupported(kind: ReadingKind, detail: impl Into<String>) -> Self {
        FundsValue {
            state: ReadingState::Unsupported,
            ..FundsValue::unknown(kind, detail)
        }
    }

    /// The remaining share (0..=1) of the tightest quota window.
    pub fn quota_remaining_ratio(&self) -> Option<f64> {
        self.quota
            .iter()
            .map(|w| ((100.0 - w.used_percent) / 100.0).clamp(0.0, 1.0))
            .reduce(f64::min)
    }
}

/// A stored reading: one account, one kind, one source, one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FundsReading {
    pub host_id: HostId,
    pub batch_id: Option<BatchId>,
    pub provider: ProviderRef,
    /// The host account holding the key (the key itself is never stored).
    pub account_id: HostObjectId,
    pub account_name: String,
    pub source: ReadingSource,
    pub taken_at: DateTime<Utc>,
    #[serde(flatten)]
    pub value: FundsValue,
}

/// Thresholds of one provider. Both are optional; a reading with no
/// threshold of its kind is only `ok` or `cannot_pay`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FundsThreshold {
    /// Below this amount (in this currency) a balance is `low_funds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_balance: Option<Threshold>,
    /// Below this share of a quota window left (0..100) quota is `low_quota`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_quota_percent: Option<f64>,
}

impl FundsThreshold {
    /// `self` with every threshold `over` sets replaced (host config and
    /// CLI flags override the pack).
    pub fn overridden_by(&self, over: &FundsThreshold) -> FundsThreshold {
        FundsThreshold {
            low_balance: over
                .low_balance
                .clone()
                .or_else(|| self.low_balance.clone()),
            low_quota_percent: over.low_quota_percent.or(self.low_quota_percent),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.low_balance.is_none() && self.low_quota_percent.is_none()
    }
}

/// A host's own thresholds, set by its operator (`crm host set`), stored with
/// the host record: host-wide, and per provider on top. They override the
/// pack's for every reading on that host: reconcile drift, `crm provider
/// funds`, the funds API and page, the gauges, the provider status and the
/// scheduler's crossing alert all go through [`HostThresholds::threshold_for`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostThresholds {
    /// For every provider on the host.
    #[serde(default, skip_serializing_if = "FundsThreshold::is_empty")]
    pub all: FundsThreshold,
    /// For one provider (`pack/provider`), over [`HostThresholds::all`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, FundsThreshold>,
}

impl HostThresholds {
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.providers.values().all(FundsThreshold::is_empty)
    }

    /// The thresholds in force for `provider` on this host: the pack's, then
    /// the host-wide ones, then the host's for that provider, then the ones
    /// given for one run (`crm provider funds --low-balance`); each layer
    /// replaces only what it sets. The one place this order lives.
    pub fn threshold_for(
        &self,
        provider: &ProviderRef,
        pack: &FundsThreshold,
        run: &FundsThreshold,
    ) -> FundsThreshold {
        let own = self
            .providers
            .get(&provider.to_string())
            .cloned()
            .unwrap_or_default();
        pack.overridden_by(&self.all)
            .overridden_by(&own)
            .overridden_by(run)
    }

    /// Sets what `t` sets, for one provider or (`None`) host-wide; with
    /// `clear`, that scope's overrides are dropped first.
    pub fn set(&mut self, provider: Option<&ProviderRef>, t: &FundsThreshold, clear: bool) {
        let slot = match provider {
            Some(p) => self.providers.entry(p.to_string()).or_default(),
            None => &mut self.all,
        };
        if clear {
            *slot = FundsThreshold::default();
        }
        *slot = slot.overridden_by(t);
        self.providers.retain(|_, t| !t.is_empty());
    }
}

/// A balance threshold: an amount in a currency the pack knows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Threshold {
    pub amount: f64,
    pub currency: Currency,
}

/// A reading's status with the reason in words an operator can act on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assessment {
    pub status: FundsStatus,
    pub detail: String,
}

impl Assessment {
    fn new(status: FundsStatus, detail: impl Into<String>) -> Self {
        Assessment {
            status,
            detail: detail.into(),
        }
    }

    /// Below a threshold, or unable to pay.
    pub fn is_below(&self) -> bool {
        matches!(
            self.status,
            FundsStatus::LowFunds | FundsStatus::LowQuota | FundsStatus::CannotPay
        )
    }
}

/// Compares one reading with the provider's thresholds.
pub fn assess(value: &FundsValue, threshold: &FundsThreshold) -> Assessment {
    match value.state {
        ReadingState::Unsupported => {
            return Assessment::new(
                FundsStatus::Unsupported,
                value
                    .detail
                    .clone()
                    .unwrap_or_else(|| "nothing to read".into()),
            );
        }
        ReadingState::Unknown => {
            return Assessment::new(
                FundsStatus::Unknown,
                value.detail.clone().unwrap_or_else(|| "no reading".into()),
            );
        }
        ReadingState::Ok => {}
    }
    match value.kind {
        ReadingKind::Balance => assess_balance(value, threshold),
        ReadingKind::Quota => assess_quota(value, threshold),
    }
}

fn assess_balance(value: &FundsValue, threshold: &FundsThreshold) -> Assessment {
    if value.available == Some(false) {
        return Assessment::new(
            FundsStatus::CannotPay,
            "the provider reports the key cannot pay (is_available=false); top up the upstream account",
        );
    }
    if value.balances.is_empty() {
        return Assessment::new(FundsStatus::Unknown, "the reading holds no balance");
    }
    if value.balances.iter().all(|m| m.amount <= 0.0) {
        return Assessment::new(
            FundsStatus::CannotPay,
            format!(
                "balance exhausted ({}); top up the upstream account",
                show(&value.balances)
            ),
        );
    }
    let Some(t) = &threshold.low_balance else {
        return Assessment::new(FundsStatus::Ok, show(&value.balances));
    };
    let same: Vec<&Money> = value
        .balances
        .iter()
        .filter(|m| m.currency.eq_ignore_ascii_case(t.currency.as_str()))
        .collect();
    if same.is_empty() {
        // A CNY threshold says nothing about a USD balance; no conversion is
        // guessed.
        return Assessment::new(
            FundsStatus::Unknown,
            format!(
                "no {} balance to compare with the threshold (reported {})",
                t.currency,
                show(&value.balances)
            ),
        );
    }
    let amount: f64 = same.iter().map(|m| m.amount).sum();
    if amount < t.amount {
        Assessment::new(
            FundsStatus::LowFunds,
            format!(
                "balance {} {} is below the threshold {} {}",
                fmt_amount(amount),
                t.currency,
                fmt_amount(t.amount),
                t.currency
            ),
        )
    } else {
        Assessment::new(FundsStatus::Ok, show(&value.balances))
    }
}

fn assess_quota(value: &FundsValue, threshold: &FundsThreshold) -> Assessment {
    let Some(ratio) = value.quota_remaining_ratio() else {
        return Assessment::new(FundsStatus::Unknown, "the reading holds no quota window");
    };
    let tightest = value
        .quota
        .iter()
        .max_by(|a, b| a.used_percent.total_cmp(&b.used_percent))
        .map(|w| w.window.clone())
        .unwrap_or_default();
    let left = ratio * 100.0;
    if ratio <= 0.0 {
        return Assessment::new(
            FundsStatus::CannotPay,
            format!("quota window {tightest} is used up; it resets by itself"),
        );
    }
    match threshold.low_quota_percent {
        Some(p) if left < p => Assessment::new(
            FundsStatus::LowQuota,
            format!(
                "{}% of quota window {tightest} left, below the threshold {}%",
                fmt_amount(left),
                fmt_amount(p)
            ),
        ),
        _ => Assessment::new(
            FundsStatus::Ok,
            format!("{}% of quota window {tightest} left", fmt_amount(left)),
        ),
    }
}

/// Which funds route, if any, a host account has. sub2api reads pay-as-you-go
/// balance for kimi and deepseek accounts and Coding-Plan quota for kimi and
/// zhipu coding accounts (`service/cn_provider_balance_service.go`,
/// `cn_provider_quota_service.go`); any other account has neither.
pub fn host_route(platform: &str, account_mode: Option<&str>) -> Option<ReadingKind> {
    let coding = account_mode == Some(crate::AccountMode::Coding.as_str());
    match (platform, coding) {
        ("kimi" | "deepseek", false) => Some(ReadingKind::Balance),
        ("kimi" | "zhipu", true) => Some(ReadingKind::Quota),
        _ => None,
    }
}

/// What a pack declares about watching one provider's upstream funds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FundsPolicy {
    #[serde(default, flatten)]
    pub threshold: FundsThreshold,
    /// Create a host-side channel monitor per import by default.
    #[serde(default)]
    pub monitor: bool,
}

impl FundsPolicy {
    pub fn is_unset(&self) -> bool {
        self.threshold.is_empty() && !self.monitor
    }
}

/// The drift reason a status amounts to, if any.
pub fn drift_reason(kind: ReadingKind, status: FundsStatus) -> Option<DriftReason> {
    match (kind, status) {
        (ReadingKind::Balance, FundsStatus::LowFunds | FundsStatus::CannotPay) => {
            Some(DriftReason::LowFunds)
        }
        (ReadingKind::Quota, FundsStatus::LowQuota | FundsStatus::CannotPay) => {
            Some(DriftReason::LowQuota)
        }
        _ => None,
    }
}

/// How serious a status is, for picking a provider's worst one.
fn rank(s: FundsStatus) -> u8 {
    match s {
        FundsStatus::Unsupported => 0,
        FundsStatus::Ok => 1,
        FundsStatus::Unknown => 2,
        FundsStatus::LowQuota => 3,
        FundsStatus::LowFunds => 4,
        FundsStatus::CannotPay => 5,
    }
}

/// One provider's readings on one host, aggregated: what metrics and the
/// crossing alert see. Never per key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderFunds {
    pub provider: ProviderRef,
    /// Sum of the accounts' balances per currency.
    pub balances: BTreeMap<String, f64>,
    /// The tightest remaining quota share (0..=1) over the accounts.
    pub quota_remaining_ratio: Option<f64>,
    /// The worst status of any account.
    pub status: FundsStatus,
    /// Accounts whose reading is below a threshold or cannot pay.
    pub accounts_below: usize,
    pub accounts: usize,
}

impl ProviderFunds {
    pub fn is_below(&self) -> bool {
        self.accounts_below > 0
    }
}

/// Aggregates assessed readings per provider (sorted by provider).
///
/// An account may hold a host and an upstream reading of one kind (from
/// different runs, of different ages): its money counts once, from its
/// newest reading of that kind (the upstream's on a tie: the provider's own
/// word), so a stale reading neither doubles a balance nor keeps a topped-up
/// key below.
pub fn per_provider(assessed: &[(FundsReading, Assessment)]) -> Vec<ProviderFunds> {
    let newest = newest_per_account(assessed, |(r, _)| r);
    let mut out: BTreeMap<String, ProviderFunds> = BTreeMap::new();
    let mut below: BTreeMap<(String, i64), bool> = BTreeMap::new();
    for ((provider, account, _), (r, a)) in newest {
        let p = out
            .entry(provider.clone())
            .or_insert_with(|| ProviderFunds {
                provider: r.provider.clone(),
                balances: BTreeMap::new(),
                quota_remaining_ratio: None,
                status: FundsStatus::Unsupported,
                accounts_below: 0,
                accounts: 0,
            });
        let seen = below.entry((provider, account)).or_insert_with(|| {
            p.accounts += 1;
            false
        });
        if a.is_below() && !*seen {
            *seen = true;
            p.accounts_below += 1;
        }
        if rank(a.status) > rank(p.status) {
            p.status = a.status;
        }
        if r.value.state == ReadingState::Ok {
            for m in &r.value.balances {
                *p.balances.entry(m.currency.clone()).or_insert(0.0) += m.amount;
            }
            if let Some(q) = r.value.quota_remaining_ratio() {
                p.quota_remaining_ratio = Some(p.quota_remaining_ratio.map_or(q, |x| x.min(q)));
            }
        }
    }
    out.into_values().collect()
}

/// The newest item of each (provider, account, kind), keyed by it: an
/// account's word on its money is its newest reading of that kind, the
/// upstream's on a tie (the provider's own word). The one place that rule
/// lives ([`per_provider`], [`cannot_pay`]).
fn newest_per_account<T>(
    items: &[T],
    reading: impl Fn(&T) -> &FundsReading,
) -> BTreeMap<(String, i64, ReadingKind), &T> {
    let mut newest: BTreeMap<(String, i64, ReadingKind), &T> = BTreeMap::new();
    for item in items {
        let r = reading(item);
        let key = (r.provider.to_string(), r.account_id.0, r.value.kind);
        let newer = newest.get(&key).is_none_or(|o| {
            let o = reading(o);
            (r.taken_at, r.source == ReadingSource::Upstream)
                > (o.taken_at, o.source == ReadingSource::Upstream)
        });
        if newer {
            newest.insert(key, item);
        }
    }
    newest
}

/// An advisory on a batch from a reading that says a key cannot pay at all
/// (balance at or below zero, `is_available=false`, a quota window used
/// up): the batch's access is `degraded` with `upstream_key_quota_issue`
/// (issue 20 item 2), whatever the thresholds say.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FundsAdvisory {
    pub account_id: HostObjectId,
    pub account_name: String,
    pub kind: ReadingKind,
    pub source: ReadingSource,
    pub taken_at: DateTime<Utc>,
    pub class: FailureClass,
    pub detail: String,
}

/// The advisories of `readings` (give it one batch's): one per account and
/// kind whose newest reading says the key cannot pay.
pub fn cannot_pay(readings: &[FundsReading]) -> Vec<FundsAdvisory> {
    let none = FundsThreshold::default();
    newest_per_account(readings, |r| r)
        .into_values()
        .filter_map(|r| {
            let a = assess(&r.value, &none);
            (a.status == FundsStatus::CannotPay).then(|| FundsAdvisory {
                account_id: r.account_id,
                account_name: r.account_name.clone(),
                kind: r.value.kind,
                source: r.source,
                taken_at: r.taken_at,
                class: FailureClass::UpstreamKeyQuotaIssue,
                detail: format!("{}: {}", r.account_name, a.detail),
            })
        })
        .collect()
}

/// A change of a provider's funds state worth telling someone about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crossing {
    /// The provider went below a threshold (or cannot pay).
    Below,
    /// It is above every threshold again.
    Recovered,
}

/// Whether a provider crossed a threshold between two runs. `before` is
/// `None` when nothing was known before (first run): going below then is a
/// crossing, staying fine is not. Unknown readings never cross (a failing
/// route says nothing about the money).
pub fn crossing(before: Option<bool>, now: Option<bool>) -> Option<Crossing> {
    match (before, now) {
        (Some(false) | None, Some(true)) => Some(Crossing::Below),
        (Some(true), Some(false)) => Some(Crossing::Recovered),
        _ => None,
    }
}

/// Whether a provider is below, or `None` when none of its readings could
/// be judged (all unknown or unsupported).
pub fn below_state(p: &ProviderFunds) -> Option<bool> {
    if p.is_below() {
        Some(true)
    } else if p.status == FundsStatus::Ok {
        Some(false)
    } else {
        None
    }
}

fn fmt_amount(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn show(ms: &[Money]) -> String {
    ms.iter()
        .map(|m| format!("{} {}", fmt_amount(m.amount), m.currency))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny(a: f64) -> Money {
        Money {
            amount: a,
            currency: "CNY".into(),
        }
    }
    fn usd(a: f64) -> Money {
        Money {
            amount: a,
            currency: "USD".into(),
        }
    }
    fn window(w: &str, used: f64) -> QuotaWindow {
        QuotaWindow {
            window: w.into(),
            used_percent: used,
            reset_at: None,
        }
    }
    fn limits(bal: Option<(f64, Currency)>, pct: Option<f64>) -> FundsThreshold {
        FundsThreshold {
            low_balance: bal.map(|(amount, currency)| Threshold { amount, currency }),
            low_quota_percent: pct,
        }
    }

    #[test]
    fn assessment_table() {
        use FundsStatus::*;
        let t = limits(Some((10.0, Currency::Cny)), Some(20.0));
        let none = FundsThreshold::default();
        let cases: Vec<(&str, FundsValue, &FundsThreshold, FundsStatus)> = vec![
            (
                "above",
                FundsValue::balance(vec![cny(50.0)], Some(true)),
                &t,
                Ok,
            ),
            (
                "below",
                FundsValue::balance(vec![cny(9.99)], Some(true)),
                &t,
                LowFunds,
            ),
            (
                "at the threshold is not below",
                FundsValue::balance(vec![cny(10.0)], None),
                &t,
                Ok,
            ),
            (
                "no threshold",
                FundsValue::balance(vec![cny(0.5)], None),
                &none,
                Ok,
            ),
            (
                "zero cannot pay",
                FundsValue::balance(vec![cny(0.0)], None),
                &none,
                CannotPay,
            ),
            (
                "negative cannot pay",
                FundsValue::balance(vec![cny(-3.0)], None),
                &t,
                CannotPay,
            ),
            (
                "is_available=false cannot pay",
                FundsValue::balance(vec![cny(100.0)], Some(false)),
                &t,
                CannotPay,
            ),
            (
                "only the threshold's currency counts",
                FundsValue::balance(vec![usd(1.0), cny(20.0)], Some(true)),
                &t,
                Ok,
            ),
            (
                "no balance in the threshold's currency",
                FundsValue::balance(vec![usd(1.0)], Some(true)),
                &t,
                Unknown,
            ),
            (
                "empty balance",
                FundsValue::balance(vec![], None),
                &t,
                Unknown,
            ),
            (
                "quota fine",
                FundsValue::quota(vec![window("5h", 10.0), window("weekly", 50.0)]),
                &t,
                Ok,
            ),
            (
                "quota low",
                FundsValue::quota(vec![window("5h", 85.0), window("weekly", 50.0)]),
                &t,
                LowQuota,
            ),
            (
                "quota used up",
                FundsValue::quota(vec![window("5h", 100.0)]),
                &none,
                CannotPay,
            ),
            (
                "quota over 100",
                FundsValue::quota(vec![window("weekly", 130.0)]),
                &t,
                CannotPay,
            ),
            (
                "quota without threshold",
                FundsValue::quota(vec![window("5h", 95.0)]),
                &none,
                Ok,
            ),
            ("no quota window", FundsValue::quota(vec![]), &t, Unknown),
            (
                "failed route",
                FundsValue::unknown(ReadingKind::Balance, "host answered 502"),
                &t,
                Unknown,
            ),
            (
                "no balance api",
                FundsValue::unsupported(ReadingKind::Balance, "zhipu has no balance API"),
                &t,
                Unsupported,
            ),
        ];
        for (name, value, th, want) in cases {
            let got = assess(&value, th);
            assert_eq!(got.status, want, "{name}: {}", got.detail);
        }
    }

    #[test]
    fn detail_names_amount_and_threshold() {
        let a = assess(
            &FundsValue::balance(vec![cny(4.5)], None),
            &limits(Some((10.0, Currency::Cny)), None),
        );
        assert_eq!(a.detail, "balance 4.5 CNY is below the threshold 10 CNY");
    }

    #[test]
    fn drift_reasons() {
        use FundsStatus::*;
        for (kind, status, want) in [
            (ReadingKind::Balance, LowFunds, Some(DriftReason::LowFunds)),
            (ReadingKind::Balance, CannotPay, Some(DriftReason::LowFunds)),
            (ReadingKind::Quota, LowQuota, Some(DriftReason::LowQuota)),
            (ReadingKind::Quota, CannotPay, Some(DriftReason::LowQuota)),
            (ReadingKind::Balance, Ok, None),
            (ReadingKind::Balance, Unknown, None),
            (ReadingKind::Quota, Unsupported, None),
        ] {
            assert_eq!(drift_reason(kind, status), want, "{kind} {status}");
        }
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let pack = limits(Some((10.0, Currency::Cny)), Some(20.0));
        let host = limits(None, Some(5.0));
        let got = pack.overridden_by(&host);
        assert_eq!(got, limits(Some((10.0, Currency::Cny)), Some(5.0)));
        assert_eq!(FundsThreshold::default().overridden_by(&pack), pack);
    }

    #[test]
    fn host_thresholds_layer_over_the_pack_and_under_a_run() {
        let ds = ProviderRef::parse("cn-official/deepseek").unwrap();
        let kimi = ProviderRef::parse("cn-official/kimi").unwrap();
        let pack = limits(Some((10.0, Currency::Cny)), Some(20.0));
        let none = FundsThreshold::default();
        let mut host = HostThresholds::default();
        assert!(host.is_empty());
        assert_eq!(host.threshold_for(&ds, &pack, &none), pack, "no overrides");

        host.set(None, &limits(Some((50.0, Currency::Cny)), None), false);
        host.set(Some(&ds), &limits(None, Some(5.0)), false);
        // (name, provider, run flags, want)
        let cases: Vec<(&str, &ProviderRef, FundsThreshold, FundsThreshold)> = vec![
            (
                "host-wide balance, the provider's own quota",
                &ds,
                none.clone(),
                limits(Some((50.0, Currency::Cny)), Some(5.0)),
            ),
            (
                "another provider: host-wide over the pack",
                &kimi,
                none.clone(),
                limits(Some((50.0, Currency::Cny)), Some(20.0)),
            ),
            (
                "a run's flag wins over the host",
                &ds,
                limits(Some((1.0, Currency::Usd)), None),
                limits(Some((1.0, Currency::Usd)), Some(5.0)),
            ),
        ];
        for (name, p, run, want) in cases {
            assert_eq!(host.threshold_for(p, &pack, &run), want, "{name}");
        }

        // Setting merges; clearing drops the scope; an empty scope is gone.
        host.set(Some(&ds), &limits(Some((7.0, Currency::Cny)), None), false);
        assert_eq!(
            host.providers["cn-official/deepseek"],
            limits(Some((7.0, Currency::Cny)), Some(5.0))
        );
        host.set(Some(&ds), &none, true);
        assert!(host.providers.is_empty());
        host.set(None, &none, true);
        assert!(host.is_empty());
        assert_eq!(
            serde_json::to_value(&host).unwrap(),
            serde_json::json!({}),
            "an empty set stores as {{}}"
        );
    }

    #[test]
    fn crossing_table() {
        use Crossing::*;
        for (before, now, want) in [
            (None, Some(true), Some(Below)),
            (None, Some(false), None),
            (Some(false), Some(true), Some(Below)),
            (Some(true), Some(true), None),
            (Some(true), Some(false), Some(Recovered)),
            (Some(false), Some(false), None),
            (Some(true), None, None),
            (Some(false), None, None),
            (None, None, None),
        ] {
            assert_eq!(crossing(before, now), want, "{before:?} -> {now:?}");
        }
    }

    #[test]
    fn providers_aggregate_without_keys() {
        let p = ProviderRef::parse("cn-official/deepseek").unwrap();
        let reading = |id: i64, v: FundsValue| FundsReading {
            host_id: HostId("h".into()),
            batch_id: None,
            provider: p.clone(),
            account_id: HostObjectId(id),
            account_name: format!("a{id}"),
            source: ReadingSource::Host,
            taken_at: DateTime::<Utc>::UNIX_EPOCH,
            value: v,
        };
        let t = limits(Some((10.0, Currency::Cny)), None);
        let rs = [
            reading(
                1,
                FundsValue::balance(vec![cny(30.0), usd(2.0)], Some(true)),
            ),
            reading(2, FundsValue::balance(vec![cny(5.0)], Some(true))),
            reading(3, FundsValue::unknown(ReadingKind::Balance, "502")),
        ];
        let assessed: Vec<_> = rs
            .iter()
            .map(|r| (r.clone(), assess(&r.value, &t)))
            .collect();
        let agg = per_provider(&assessed);
        assert_eq!(agg.len(), 1);
        assert_eq!(agg[0].balances.get("CNY"), Some(&35.0));
        assert_eq!(agg[0].balances.get("USD"), Some(&2.0));
        assert_eq!(agg[0].status, FundsStatus::LowFunds);
        assert_eq!((agg[0].accounts_below, agg[0].accounts), (1, 3));
        assert_eq!(below_state(&agg[0]), Some(true));
    }

    #[test]
    fn an_account_counts_once_from_its_newest_reading() {
        let p = ProviderRef::parse("cn-official/deepseek").unwrap();
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let reading = |id: i64, source, t: i64, v: FundsValue| FundsReading {
            host_id: HostId("h".into()),
            batch_id: None,
            provider: p.clone(),
            account_id: HostObjectId(id),
            account_name: format!("a{id}"),
            source,
            taken_at: at(t),
            value: v,
        };
        let t = limits(Some((10.0, Currency::Cny)), None);
        let bal = |a| FundsValue::balance(vec![cny(a)], Some(true));
        // (name, readings, CNY total, accounts below, accounts, status)
        type Case = (
            &'static str,
            Vec<FundsReading>,
            f64,
            usize,
            usize,
            FundsStatus,
        );
        let cases: Vec<Case> = vec![
            (
                "host and upstream of one run: the upstream's, once",
                vec![
                    reading(1, ReadingSource::Host, 5, bal(3.0)),
                    reading(1, ReadingSource::Upstream, 5, bal(3.5)),
                ],
                3.5,
                1,
                1,
                FundsStatus::LowFunds,
            ),
            (
                "an old low upstream reading does not outlive a top-up",
                vec![
                    reading(1, ReadingSource::Upstream, 5, bal(3.0)),
                    reading(1, ReadingSource::Host, 50, bal(40.0)),
                ],
                40.0,
                0,
                1,
                FundsStatus::Ok,
            ),
            (
                "two accounts add up",
                vec![
                    reading(1, ReadingSource::Host, 5, bal(30.0)),
                    reading(2, ReadingSource::Host, 5, bal(3.0)),
                    reading(2, ReadingSource::Upstream, 1, bal(99.0)),
                ],
                33.0,
                1,
                2,
                FundsStatus::LowFunds,
            ),
        ];
        for (name, rs, cny_sum, below, accounts, status) in cases {
            let assessed: Vec<_> = rs
                .iter()
                .map(|r| (r.clone(), assess(&r.value, &t)))
                .collect();
            let agg = per_provider(&assessed);
            assert_eq!(agg.len(), 1, "{name}");
            assert_eq!(agg[0].balances.get("CNY"), Some(&cny_sum), "{name}");
            assert_eq!(
                (agg[0].accounts_below, agg[0].accounts, agg[0].status),
                (below, accounts, status),
                "{name}"
            );
        }
    }

    #[test]
    fn a_key_that_cannot_pay_is_an_advisory_from_its_newest_reading() {
        let p = ProviderRef::parse("cn-official/deepseek").unwrap();
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let reading = |id: i64, source, t: i64, v: FundsValue| FundsReading {
            host_id: HostId("h".into()),
            batch_id: None,
            provider: p.clone(),
            account_id: HostObjectId(id),
            account_name: format!("a{id}"),
            source,
            taken_at: at(t),
            value: v,
        };
        let bal = |a, avail| FundsValue::balance(vec![cny(a)], avail);
        use ReadingSource::{Host, Upstream};
        // (name, readings, accounts with an advisory)
        let cases: Vec<(&str, Vec<FundsReading>, Vec<i64>)> = vec![
            ("no readings", vec![], vec![]),
            (
                "low is not cannot pay",
                vec![reading(1, Host, 5, bal(0.5, Some(true)))],
                vec![],
            ),
            ("zero", vec![reading(1, Host, 5, bal(0.0, None))], vec![1]),
            (
                "negative",
                vec![reading(1, Host, 5, bal(-2.0, None))],
                vec![1],
            ),
            (
                "is_available=false",
                vec![reading(1, Host, 5, bal(80.0, Some(false)))],
                vec![1],
            ),
            (
                "quota used up",
                vec![reading(
                    2,
                    Host,
                    5,
                    FundsValue::quota(vec![window("5h", 100.0)]),
                )],
                vec![2],
            ),
            (
                "quota nearly used up still pays",
                vec![reading(
                    2,
                    Host,
                    5,
                    FundsValue::quota(vec![window("5h", 99.0)]),
                )],
                vec![],
            ),
            (
                "a failing route says nothing",
                vec![reading(
                    1,
                    Host,
                    5,
                    FundsValue::unknown(ReadingKind::Balance, "502"),
                )],
                vec![],
            ),
            (
                "a top-up read later clears it",
                vec![
                    reading(1, Upstream, 5, bal(0.0, None)),
                    reading(1, Host, 9, bal(40.0, None)),
                ],
                vec![],
            ),
            (
                "on a tie the upstream's word counts",
                vec![
                    reading(1, Host, 5, bal(10.0, None)),
                    reading(1, Upstream, 5, bal(0.0, None)),
                ],
                vec![1],
            ),
            (
                "one advisory per account, others unaffected",
                vec![
                    reading(1, Host, 5, bal(0.0, None)),
                    reading(1, Upstream, 3, bal(0.0, None)),
                    reading(3, Host, 5, bal(20.0, None)),
                ],
                vec![1],
            ),
        ];
        for (name, rs, want) in cases {
            let got = cannot_pay(&rs);
            let ids: Vec<i64> = got.iter().map(|a| a.account_id.0).collect();
            assert_eq!(ids, want, "{name}");
            for a in &got {
                assert_eq!(a.class, FailureClass::UpstreamKeyQuotaIssue, "{name}");
                assert!(
                    a.detail.starts_with(&a.account_name),
                    "{name}: {}",
                    a.detail
                );
            }
        }
    }

    #[test]
    fn quota_ratio_is_the_tightest_window() {
        let v = FundsValue::quota(vec![window("5h", 40.0), window("weekly", 75.0)]);
        assert_eq!(v.quota_remaining_ratio(), Some(0.25));
        assert_eq!(FundsValue::quota(vec![]).quota_remaining_ratio(), None);
    }
}
