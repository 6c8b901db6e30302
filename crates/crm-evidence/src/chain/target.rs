//! The host a run talks to: a registered URL and key, or an in-process
//! simulator started for the run; and the run's folder name.

use crate::config::Target;
use crate::error::{EvidenceError, Result};
use crm_domain::SecretString;

pub(super) fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '.'
            }
        })
        .collect()
}

/// The host the run talks to, with the simulator kept alive while needed.
pub(super) struct Resolved {
    pub(super) url: String,
    pub(super) admin_key: SecretString,
    pub(super) upstream_via: Option<String>,
    pub(super) profile: Option<String>,
    pub(super) sim: Option<crm_sim::SimHandle>,
}

pub(super) async fn resolve_target(target: Target) -> Result<Resolved> {
    match target {
        Target::Host {
            url,
            admin_key,
            upstream_via,
        } => Ok(Resolved {
            url,
            admin_key,
            upstream_via,
            profile: None,
            sim: None,
        }),
        Target::Sim { profile } => {
            let p = crm_sim::Profile::by_name(&profile).ok_or_else(|| {
                EvidenceError::invalid(format!(
                    "unknown simulator profile {profile:?}; expected one of: {}",
                    crm_sim::Profile::all()
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let sim = crm_sim::SimServer::start(crm_sim::SimConfig::with_profile(p))
                .await
                .map_err(|e| EvidenceError::Sim(e.to_string()))?;
            Ok(Resolved {
                url: sim.base_url(),
                admin_key: SecretString::from(sim.admin_key()),
                upstream_via: Some(sim.upstream_prefix()),
                profile: Some(profile),
                sim: Some(sim),
            })
        }
    }
}
