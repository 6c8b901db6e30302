//! Funds and quota readings taken in a reconcile run.
//!
//! For every live account of an in-scope batch the run asks the host's
//! cn-providers route the account has (balance for kimi/deepseek
//! pay-as-you-go, quota for kimi/zhipu coding; `Capabilities::cn_funds`),
//! and, when the operator supplied that account's upstream key for this run,
//! the provider's own balance API. Requests go out at most
//! `host_concurrency` at once. An account without a route gets an
//! `unsupported` reading and costs no request. A failing route gives an
//! `unknown` reading; it never fails the run.
//!
//! Readings below the provider's thresholds become `unhealthy` drift items
//! with the reason `low_funds` or `low_quota`.

use crate::diff::Recorded;
use chrono::{DateTime, Utc};
use crm_domain::funds::{
    Assessment, FundsReading, FundsThreshold, FundsValue, HostThresholds, ProviderFunds, assess,
    below_state, drift_reason, host_route, per_provider,
};
use crm_domain::host::{Capabilities, HostRecord};
use crm_domain::observed::{HostAccount, HostSnapshot};
use crm_domain::ports::{AccessCheckRepo, BatchRepo, FundsRepo, HostApi, PackRepo, UpstreamFunds};
use crm_domain::reconcile::DriftItem;
use crm_domain::{
    DriftCategory, Fingerprint, KeyFingerprinter, ProviderRef, ReadingKind, ReadingSource,
    ResourceKind, ResourceState, SecretString,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The ports a run needs to take readings.
#[derive(Clone)]
pub struct FundsWatch {
    pub repo: Arc<dyn FundsRepo>,
    /// Batches and their access checks: after storing readings the run
    /// recomputes the access status of the batches it read (a key that
    /// cannot pay makes ready access `degraded`).
    pub batches: Arc<dyn BatchRepo>,
    pub checks: Arc<dyn AccessCheckRepo>,
    /// Where the providers' thresholds come from.
    pub packs: Arc<dyn PackRepo>,
    /// The providers' own balance APIs, for runs given upstream keys.
    pub upstream: Option<Arc<dyn UpstreamFunds>>,
}

impl std::fmt::Debug for FundsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FundsWatch { .. }")
    }
}

/// What one run does about funds.
#[derive(Clone, Default)]
pub struct FundsOptions {
    /// Thresholds that replace the pack's (host config, CLI flags), for
    /// every provider of the run.
    pub overrides: FundsThreshold,
    /// Upstream keys supplied for this run only; matched to accounts by
    /// fingerprint, never stored.
    pub upstream_keys: Vec<SecretString>,
    pub fingerprinter: Option<Arc<KeyFingerprinter>>,
}

impl std::fmt::Debug for FundsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FundsOptions")
            .field("overrides", &self.overrides)
            .field("upstream_keys", &self.upstream_keys.len())
            .finish_non_exhaustive()
    }
}

/// One account whose funds a run reads.
#[derive(Debug, Clone)]
struct Target {
    batch: crm_domain::BatchId,
    provider: ProviderRef,
    account: HostAccount,
    route: Option<ReadingKind>,
    key: Option<SecretString>,
}

fn recorded_key(desired: &serde_json::Value) -> Option<Fingerprint> {
    serde_json::from_value(desired.get("upstream_key")?.clone()).ok()
}

fn targets(recorded: &Recorded, snapshot: &HostSnapshot, opts: &FundsOptions) -> Vec<Target> {
    let keys: BTreeMap<String, SecretString> = match &opts.fingerprinter {
        Some(f) => opts
            .upstream_keys
            .iter()
            .map(|k| (f.fingerprint(k).hmac, k.clone()))
            .collect(),
        None => BTreeMap::new(),
    };
    let by_id: BTreeMap<_, _> = snapshot.accounts.iter().map(|a| (a.id, a)).collect();
    let mut out = Vec::new();
    for rb in recorded.scoped() {
        for r in rb
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Account && r.state == ResourceState::Live)
        {
            // An account missing from the host is already `missing` drift;
            // there is nothing to read.
            let Some(a) = by_id.get(&r.host_object_id) else {
                continue;
            };
            if out.iter().any(|t: &Target| t.account.id == a.id) {
                continue; // one account shared by two batches is read once
            }
            let mode = a
                .credential_fields
                .get("account_mode")
                .and_then(|v| v.as_str());
            out.push(Target {
                batch: rb.batch.id.clone(),
                provider: rb.batch.provider.clone(),
                account: (*a).clone(),
                route: host_route(a.platform.as_str(), mode),
                key: recorded_key(&r.desired).and_then(|fp| keys.get(&fp.hmac).cloned()),
            });
        }
    }
    out
}

/// What every reading of one run shares.
struct ReadCx<'a> {
    api: &'a dyn HostApi,
    cn_funds: bool,
    upstream: Option<Arc<dyn UpstreamFunds>>,
    host: crm_domain::HostId,
    now: DateTime<Utc>,
}

async fn read_one(cx: &ReadCx<'_>, t: Target, source: ReadingSource) -> FundsReading {
    let mode = t
        .account
        .credential_fields
        .get("account_mode")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let value = match source {
        ReadingSource::Host => match (t.route, cx.cn_funds) {
            (None, _) => FundsValue::unsupported(
                ReadingKind::Balance,
                format!(
                    "the host reads no balance or quota for {} accounts{}",
                    t.account.platform,
                    mode.map(|m| format!(" in mode {m}")).unwrap_or_default()
                ),
            ),
            (Some(kind), false) => FundsValue::unsupported(
                kind,
                "this host has no cn-providers routes (older sub2api); pass --upstream-keys-file to read the provider directly",
            ),
            (Some(ReadingKind::Balance), true) => {
                match cx.api.account_balance(t.account.id).await {
                    Ok(v) => v,
                    Err(e) => FundsValue::unknown(ReadingKind::Balance, e.to_string()),
                }
            }
            (Some(ReadingKind::Quota), true) => match cx.api.account_quota(t.account.id).await {
                Ok(v) => v,
                Err(e) => FundsValue::unknown(ReadingKind::Quota, e.to_string()),
            },
        },
        ReadingSource::Upstream => match (&cx.upstream, &t.key, &t.account.base_url) {
            (Some(u), Some(k), Some(base)) => u.upstream_balance(base.clone(), k).await,
            _ => FundsValue::unknown(
                ReadingKind::Balance,
                "the account has no base URL to read the provider from",
            ),
        },
    };
    FundsReading {
        host_id: cx.host.clone(),
        batch_id: Some(t.batch),
        provider: t.provider,
        account_id: t.account.id,
        account_name: t.account.name,
        source,
        taken_at: cx.now,
        value,
    }
}

/// Takes the readings of one run (host routes, and upstream APIs for
/// accounts whose key was supplied), at most `concurrency` requests at once.
// The run's inputs, each from a different owner; bundling them would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub async fn take_readings(
    watch: &FundsWatch,
    host: &HostRecord,
    api: &dyn HostApi,
    caps: &Capabilities,
    recorded: &Recorded,
    snapshot: &HostSnapshot,
    opts: &FundsOptions,
    concurrency: usize,
    now: DateTime<Utc>,
) -> Vec<FundsReading> {
    let targets = targets(recorded, snapshot, opts);
    let mut jobs: Vec<(Target, ReadingSource)> = Vec::new();
    for t in targets {
        if t.key.is_some() && watch.upstream.is_some() {
            jobs.push((t.clone(), ReadingSource::Upstream));
        }
        jobs.push((t, ReadingSource::Host));
    }
    let cx = ReadCx {
        api,
        cn_funds: caps.cn_funds,
        upstream: watch.upstream.clone(),
        host: host.id.clone(),
        now,
    };
    let cx = &cx;
    // Futures collected first: a closure inside the stream's type trips the
    // compiler's Send check of callers' futures (rust-lang/rust#102211).
    let futs: Vec<_> = jobs
        .into_iter()
        .map(|(t, s)| -> BoxFuture<'_, FundsReading> { Box::pin(read_one(cx, t, s)) })
        .collect();
    let mut readings: Vec<FundsReading> = futures::stream::iter(futs)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    readings.sort_by(|a, b| {
        (a.provider.to_string(), a.account_id, a.source).cmp(&(
            b.provider.to_string(),
            b.account_id,
            b.source,
        ))
    });
    readings
}

/// The thresholds of every provider among `providers` (with the pack
/// version its batch came from) on one host: the pack's, under the host's
/// own and a run's `overrides`, in the order of
/// [`HostThresholds::threshold_for`]. Every face reads thresholds through
/// here. A provider whose pack cannot be read has only the overrides.
pub async fn thresholds(
    packs: &dyn PackRepo,
    providers: impl IntoIterator<Item = (ProviderRef, String)>,
    host: &HostThresholds,
    overrides: &FundsThreshold,
) -> BTreeMap<ProviderRef, FundsThreshold> {
    let mut out = BTreeMap::new();
    for (p, version) in providers {
        if out.contains_key(&p) {
            continue;
        }
        let pack = packs.get_pack(&p.pack, Some(version)).await;
        let declared = pack
            .ok()
            .and_then(|ip| {
                ip.manifest
                    .provider(p.provider.as_str())
                    .map(|s| s.funds.threshold.clone())
            })
            .unwrap_or_default();
        let limits = host.threshold_for(&p, &declared, overrides);
        out.insert(p, limits);
    }
    out
}

/// Every reading with its assessment against its provider's thresholds.
pub fn assess_all(
    readings: &[FundsReading],
    thresholds: &BTreeMap<ProviderRef, FundsThreshold>,
) -> Vec<(FundsReading, Assessment)> {
    let none = FundsThreshold::default();
    readings
        .iter()
        .map(|r| {
            let t = thresholds.get(&r.provider).unwrap_or(&none);
            (r.clone(), assess(&r.value, t))
        })
        .collect()
}

/// `unhealthy` items for readings below a threshold (one per account and
/// kind: a host and an upstream reading that agree make one item).
pub fn funds_items(assessed: &[(FundsReading, Assessment)]) -> Vec<DriftItem> {
    let mut items: Vec<DriftItem> = Vec::new();
    for (r, a) in assessed {
        let Some(reason) = drift_reason(r.value.kind, a.status) else {
            continue;
        };
        if items
            .iter()
            .any(|i| i.host_object_id == Some(r.account_id) && i.reason == Some(reason))
        {
            continue;
        }
        items.push(DriftItem {
            category: DriftCategory::Unhealthy,
            reason: Some(reason),
            kind: ResourceKind::Account,
            name: r.account_name.clone(),
            host_object_id: Some(r.account_id),
            batch_id: r.batch_id.clone(),
            fields: vec![],
            detail: format!("{} (read from the {})", a.detail, r.source),
        });
    }
    items
}

/// The funds part of a run: take the readings, store them (a store failure
/// is logged, not fatal: readings never hold up the diff), and return the
/// drift items they amount to.
// The same inputs as `take_readings`.
#[allow(clippy::too_many_arguments)]
pub fn funds_step<'a>(
    watch: &'a FundsWatch,
    host: &'a HostRecord,
    api: &'a dyn HostApi,
    caps: &'a Capabilities,
    recorded: &'a Recorded,
    snapshot: &'a HostSnapshot,
    opts: &'a FundsOptions,
    concurrency: usize,
    now: DateTime<Utc>,
) -> BoxFuture<'a, Vec<DriftItem>> {
    // Boxed so callers' futures stay provably Send (the stream inside
    // otherwise trips rust-lang/rust#102211).
    Box::pin(async move {
        let readings = take_readings(
            watch,
            host,
            api,
            caps,
            recorded,
            snapshot,
            opts,
            concurrency,
            now,
        )
        .await;
        if readings.is_empty() {
            return vec![];
        }
        let providers = recorded
            .scoped()
            .map(|rb| (rb.batch.provider.clone(), rb.batch.pack_version.clone()))
            .collect::<Vec<_>>();
        let limits = thresholds(
            watch.packs.as_ref(),
            providers,
            &host.funds_thresholds,
            &opts.overrides,
        )
        .await;
        let items = funds_items(&assess_all(&readings, &limits));
        let mut read: Vec<crm_domain::BatchId> =
            readings.iter().filter_map(|r| r.batch_id.clone()).collect();
        read.sort();
        read.dedup();
        if let Err(e) = watch.repo.save_readings(readings).await {
            tracing::warn!(host = %host.id, error = %e, "could not store the funds readings");
            return items;
        }
        // A key that cannot pay makes its batch's ready access `degraded`
        // (advisory `upstream_key_quota_issue`), one that pays again restores
        // it: issue 20 item 2. Like the readings, this never fails the run.
        for b in &read {
            if let Err(e) = crm_access::status::sync_access_status(
                watch.batches.as_ref(),
                watch.checks.as_ref(),
                watch.repo.as_ref(),
                b,
            )
            .await
            {
                tracing::warn!(batch = %b, error = %e, "could not update the access status after funds readings");
            }
        }
        items
    })
}

/// Each provider's funds on a host as the stored readings of its live
/// batches' accounts say (pack thresholds), with whether it is below
/// ([`crm_domain::funds::below_state`]): what the scheduler's crossing alert
/// compares run to run. Derived from the store, so a restarted scheduler (or
/// another replica) sees what the last run saw.
pub async fn provider_states(
    watch: &FundsWatch,
    batches: &dyn crm_domain::ports::BatchRepo,
    record: &HostRecord,
) -> crate::Result<Vec<(ProviderFunds, Option<bool>)>> {
    let host = &record.id;
    let live = batches.live_batches(host, None).await?;
    let readings: Vec<FundsReading> = watch
        .repo
        .latest_readings(host)
        .await?
        .into_iter()
        // A rolled-back batch's last readings say nothing about the provider now.
        .filter(|r| {
            r.batch_id
                .as_ref()
                .is_some_and(|b| live.iter().any(|l| l.id == *b))
        })
        .collect();
    // Collected, not a lazy iterator: a closure held across the await trips
    // the compiler's Send check of callers' futures (rust-lang/rust#102211).
    let providers: Vec<(ProviderRef, String)> = live
        .iter()
        .map(|b| (b.provider.clone(), b.pack_version.clone()))
        .collect();
    let limits = thresholds(
        watch.packs.as_ref(),
        providers,
        &record.funds_thresholds,
        &FundsThreshold::default(),
    )
    .await;
    Ok(per_provider(&assess_all(&readings, &limits))
        .into_iter()
        .map(|p| {
            let below = below_state(&p);
            (p, below)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::funds::{Money, Threshold};
    use crm_domain::{Currency, DriftReason, HostId, HostObjectId, ReadingState};

    fn reading(id: i64, source: ReadingSource, value: FundsValue) -> FundsReading {
        FundsReading {
            host_id: HostId::new("h1"),
            batch_id: None,
            provider: ProviderRef::parse("cn-official/deepseek").unwrap(),
            account_id: HostObjectId(id),
            account_name: format!("crm-deepseek-{id}"),
            source,
            taken_at: crate::fixtures::t0(),
            value,
        }
    }

    #[test]
    fn below_threshold_readings_are_unhealthy_once_per_account() {
        let p = ProviderRef::parse("cn-official/deepseek").unwrap();
        let t = BTreeMap::from([(
            p,
            FundsThreshold {
                low_balance: Some(Threshold {
                    amount: 10.0,
                    currency: Currency::Cny,
                }),
                low_quota_percent: None,
            },
        )]);
        let cny = |a| {
            vec![Money {
                amount: a,
                currency: "CNY".into(),
            }]
        };
        let rs = vec![
            reading(
                1,
                ReadingSource::Host,
                FundsValue::balance(cny(3.0), Some(true)),
            ),
            reading(
                1,
                ReadingSource::Upstream,
                FundsValue::balance(cny(3.0), None),
            ),
            reading(
                2,
                ReadingSource::Host,
                FundsValue::balance(cny(30.0), Some(true)),
            ),
            reading(
                3,
                ReadingSource::Host,
                FundsValue::unknown(ReadingKind::Balance, "502"),
            ),
            reading(
                4,
                ReadingSource::Host,
                FundsValue::balance(cny(50.0), Some(false)),
            ),
        ];
        let items = funds_items(&assess_all(&rs, &t));
        let got: Vec<_> = items
            .iter()
            .map(|i| (i.host_object_id.unwrap().0, i.reason, i.category))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some(DriftReason::LowFunds), DriftCategory::Unhealthy),
                (4, Some(DriftReason::LowFunds), DriftCategory::Unhealthy),
            ]
        );
        assert!(items[0].detail.contains("below the threshold 10 CNY"));
        assert_eq!(rs[3].value.state, ReadingState::Unknown);
    }
}
