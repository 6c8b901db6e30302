//! The stateful side of the simulated upstreams: which behaviour an upstream
//! key has, what it has left to spend, and one entry point ([`call`]) that the
//! direct `/__upstream/…` endpoint, the host's forwarding, the account test and
//! the host's balance probe all go through, so they cannot disagree.

use crate::model::State;
use crate::upstream::{self, Behaviour, Funds, Op, Provider, Reply};

/// What an upstream key has to spend until the control API says otherwise.
pub(crate) const DEFAULT_BALANCE: f64 = 100.0;
/// What one successful completion costs the upstream key (any model, any size):
/// a flat price keeps tests that watch a balance fall exact.
pub(crate) const COMPLETION_COST: f64 = 0.01;

/// The behaviour of an upstream key: set with the control API, else by the
/// `sim-<behaviour>-…` convention, else `ok`.
pub(crate) fn behaviour_for(st: &State, key: &str) -> Behaviour {
    st.upstream_keys
        .get(key)
        .copied()
        .or_else(|| Behaviour::from_key_convention(key))
        .unwrap_or(Behaviour::Ok)
}

/// The key's funds at `authority` (the default balance in the provider's
/// currency until something was spent or set).
pub(crate) fn funds(st: &State, key: &str, authority: &str) -> Funds {
    st.upstream_funds
        .get(key)
        .cloned()
        .unwrap_or_else(|| Funds {
            amount: DEFAULT_BALANCE,
            currency: upstream::default_currency(authority).to_owned(),
        })
}

/// The authority and path a URL reaches at the simulated providers: a real
/// provider URL (`https://api.deepseek.com/anthropic/v1/messages`) and the
/// simulator's own stand-in (`http://127.0.0.1:P/__upstream/api.deepseek.com/anthropic/v1/messages`)
/// reach the same place.
pub(crate) fn target(url: &str) -> Option<(String, String)> {
    let (authority, path) = upstream::split_base_url(url)?;
    match path.strip_prefix("/__upstream/") {
        Some(rest) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (!authority.is_empty()).then(|| (authority.to_owned(), format!("/{path}")))
        }
        None => Some((authority, path)),
    }
}

/// One request to a simulated provider: the endpoint its path reaches, answered
/// for the key's behaviour and funds; a successful completion is charged.
pub(crate) fn call(
    st: &mut State,
    authority: &str,
    path: &str,
    method: &str,
    key: Option<&str>,
    body: &[u8],
) -> Reply {
    match upstream::op_for(authority, path, method, body) {
        Ok(op) => call_op(st, authority, key, op),
        Err(reply) => reply,
    }
}

/// [`call`] for an already decoded request.
pub(crate) fn call_op(st: &mut State, authority: &str, key: Option<&str>, op: Op) -> Reply {
    let slow = st.slow_delay;
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return upstream::simulate(authority, Behaviour::InvalidKey, &op, slow);
    };
    let mut behaviour = behaviour_for(st, key);
    let funds = funds(st, key, authority);
    let op = match op {
        Op::Balance { .. } => Op::Balance {
            balance: funds.amount,
            currency: funds.currency.clone(),
        },
        other => other,
    };
    // A key that has spent everything answers like one out of money.
    if op.is_completion()
        && funds.amount <= 0.0
        && matches!(
            behaviour,
            Behaviour::Ok | Behaviour::Slow | Behaviour::HostIncompatible
        )
    {
        behaviour = match Provider::from_authority(authority) {
            Provider::DeepSeek => Behaviour::InsufficientBalance,
            _ => Behaviour::QuotaExhausted,
        };
    }
    let reply = upstream::simulate(authority, behaviour, &op, slow);
    if reply.status == 200 && op.is_completion() {
        st.upstream_funds.insert(
            key.to_owned(),
            Funds {
                amount: funds.amount - COMPLETION_COST,
                currency: funds.currency,
            },
        );
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_urls_and_real_urls_reach_the_same_provider_path() {
        assert_eq!(
            target("https://api.deepseek.com/anthropic/v1/messages"),
            Some(("api.deepseek.com".into(), "/anthropic/v1/messages".into()))
        );
        assert_eq!(
            target("http://127.0.0.1:9/__upstream/api.moonshot.cn/anthropic/v1/messages"),
            Some(("api.moonshot.cn".into(), "/anthropic/v1/messages".into()))
        );
        assert_eq!(
            target("http://127.0.0.1:9/__upstream/api.deepseek.com"),
            Some(("api.deepseek.com".into(), "/".into()))
        );
    }
}
