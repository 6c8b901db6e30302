//! Filling a simulator with objects crm does not own, through the host's own
//! admin API (at zero latency, many requests in flight), the way an
//! operator's existing host looks.

use anyhow::{Context, Result, bail};
use crm_sim::SimHandle;
use futures::{StreamExt, stream};
use serde_json::{Value, json};

/// What to create: counts per kind.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Unmanaged {
    pub accounts: u64,
    pub groups: u64,
    pub users: u64,
}

impl Unmanaged {
    /// `n` objects: 70% accounts, 15% groups, the rest users.
    pub fn split(n: u64) -> Unmanaged {
        let accounts = n * 70 / 100;
        let groups = n * 15 / 100;
        Unmanaged {
            accounts,
            groups,
            users: n - accounts - groups,
        }
    }

    pub fn total(&self) -> u64 {
        self.accounts + self.groups + self.users
    }
}

fn bodies(u: Unmanaged) -> Vec<(&'static str, Value)> {
    let mut out = Vec::with_capacity(usize::try_from(u.total()).unwrap_or(0));
    for i in 0..u.accounts {
        out.push((
            "accounts",
            json!({
                "name": format!("ops-account-{i:06}"),
                "platform": "openai",
                "type": "apikey",
                "credentials": {"api_key": format!("sk-ops-{i:06}"), "base_url": "https://api.openai.com/v1"},
            }),
        ));
    }
    for i in 0..u.groups {
        out.push((
            "groups",
            json!({"name": format!("ops-group-{i:06}"), "platform": "openai"}),
        ));
    }
    for i in 0..u.users {
        out.push((
            "users",
            json!({"email": format!("ops-user-{i:06}@example.com"), "password": "ops-password"}),
        ));
    }
    out
}

/// Creates the objects, 32 requests in flight.
pub async fn unmanaged(sim: &SimHandle, u: Unmanaged) -> Result<()> {
    let client = reqwest::Client::new();
    let base = sim.base_url();
    let key = sim.admin_key();
    let results: Vec<Result<()>> = stream::iter(bodies(u))
        .map(|(kind, body)| {
            let req = client
                .post(format!("{base}/api/v1/admin/{kind}"))
                .header("x-api-key", key.as_str())
                .json(&body);
            async move {
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("seeding {kind}"))?;
                if !resp.status().is_success() {
                    bail!("seeding {kind}: host answered {}", resp.status());
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_adds_up() {
        for n in [0, 1, 75, 750, 7_500] {
            let u = Unmanaged::split(n);
            assert_eq!(u.total(), n);
            assert_eq!(bodies(u).len() as u64, n);
        }
        assert_eq!(Unmanaged::split(7_500).accounts, 5_250);
    }
}
