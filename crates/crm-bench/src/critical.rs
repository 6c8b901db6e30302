//! The critical path of an import: the longest chain of host requests that
//! each need the answer (or the effect) of the one before.
//!
//! Every request an import makes belongs to one stage; a stage depends on
//! the stages whose answers it needs. Requests inside one stage are
//! independent (the K account creates), so with unbounded
//! overlap a stage costs one round trip and the import costs
//! `depth × latency`. The table below is the derivation that
//! `docs/PERFORMANCE.md` explains; a request no stage claims is reported
//! and counted as one more level, so an unexpected request can only make
//! the bound looser, never hide.

/// One stage of an import and the stages it needs.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    pub name: &'static str,
    pub deps: &'static [&'static str],
}

/// The stages of `import` (provision + self-service closure), in the order
/// crm issues them.
pub const STAGES: &[Stage] = &[
    // Observation lists of accounts, groups, channels and users: independent reads.
    Stage {
        name: "observe",
        deps: &[],
    },
    // Needs only the observation (an existing group is adopted instead).
    Stage {
        name: "create group",
        deps: &["observe"],
    },
    // Needs the observation (no duplicate by natural key); independent of
    // each other. An account serves only once it is bound to the group, so
    // an import that creates the group binds its accounts no earlier than
    // the level after it: either created unbound next to the group and
    // bound by a second request, or created already bound once the group
    // exists (crm's way: one request per account). Both reach "bound" at the
    // same depth, which is what this dependency records.
    Stage {
        name: "create accounts",
        deps: &["observe", "create group"],
    },
    // Adopted accounts not yet in the group: each account's id (observed)
    // and the group's id.
    Stage {
        name: "bind accounts",
        deps: &["observe", "create group"],
    },
    // Needs the group's id.
    Stage {
        name: "create channel",
        deps: &["create group"],
    },
    // Access is closed only on an applied batch, so after every provisioning write.
    Stage {
        name: "closure observe",
        deps: &["create accounts", "bind accounts", "create channel"],
    },
    Stage {
        name: "create user",
        deps: &["closure observe"],
    },
    // Both need the user's id; neither needs the other.
    Stage {
        name: "grant balance",
        deps: &["create user"],
    },
    Stage {
        name: "user login",
        deps: &["create user"],
    },
    // Needs the user's token and the group's id.
    Stage {
        name: "create key",
        deps: &["user login", "create group"],
    },
];

/// The stage of one request (`METHOD /route/{template}`); `after_write` says
/// whether a mutating request was seen before it (reads before the first
/// write are the import's observation, reads after it the closure's).
pub fn stage_of(route: &str, after_write: bool) -> Option<&'static str> {
    let (method, path) = route.split_once(' ')?;
    let path = path.trim_start_matches("/api/v1");
    Some(match (method, path) {
        ("GET", _) if !after_write => "observe",
        ("GET", "/admin/groups" | "/admin/users") => "closure observe",
        ("POST", "/admin/accounts") => "create accounts",
        ("POST", "/admin/groups") => "create group",
        ("PUT", "/admin/accounts/{id}") => "bind accounts",
        ("POST", "/admin/channels") => "create channel",
        ("POST", "/admin/users") => "create user",
        ("POST", "/admin/users/{id}/balance") => "grant balance",
        ("POST", "/auth/login") => "user login",
        ("POST", "/keys") => "create key",
        _ => return None,
    })
}

/// The critical path of a request log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CriticalPath {
    /// Levels of dependent round trips.
    pub depth: u32,
    /// The stages on the longest chain, first to last.
    pub chain: Vec<&'static str>,
    /// Requests per stage, in `STAGES` order (stages the import skipped are left out).
    pub requests_per_stage: Vec<(&'static str, u32)>,
    /// Requests no stage claims (each counted as one extra level).
    pub unclassified: Vec<String>,
}

/// Depth of the longest dependency chain among the stages present in `routes`.
pub fn critical_path(routes: &[String]) -> CriticalPath {
    let mut present = std::collections::BTreeMap::<&str, u32>::new();
    let mut unclassified = Vec::new();
    let mut after_write = false;
    for r in routes {
        match stage_of(r, after_write) {
            Some(s) => {
                *present.entry(s).or_default() += 1;
            }
            None => unclassified.push(r.clone()),
        }
        after_write |= !r.starts_with("GET ");
    }
    // STAGES lists every stage after its dependencies, so one pass computes
    // the longest chain ending at each stage.
    let mut best: Vec<(u32, Vec<&'static str>)> = Vec::with_capacity(STAGES.len());
    for (i, st) in STAGES.iter().enumerate() {
        let (mut d, mut chain) = (0u32, Vec::new());
        for dep in st.deps {
            if let Some(j) = STAGES[..i].iter().position(|s| s.name == *dep)
                && best[j].0 > d
            {
                (d, chain) = best[j].clone();
            }
        }
        if present.contains_key(st.name) {
            d += 1;
            chain.push(st.name);
        }
        best.push((d, chain));
    }
    let (depth, chain) = best.into_iter().max_by_key(|(d, _)| *d).unwrap_or_default();
    CriticalPath {
        depth: depth + u32::try_from(unclassified.len()).unwrap_or(u32::MAX),
        chain,
        requests_per_stage: STAGES
            .iter()
            .filter_map(|s| present.get(s.name).map(|n| (s.name, *n)))
            .collect(),
        unclassified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(routes: &[&str]) -> Vec<String> {
        routes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn stages_come_after_their_dependencies() {
        for (i, st) in STAGES.iter().enumerate() {
            for dep in st.deps {
                assert!(
                    STAGES[..i].iter().any(|s| s.name == *dep),
                    "{} needs {dep}, which is not listed before it",
                    st.name
                );
            }
        }
    }

    #[test]
    fn independent_creates_count_as_one_level_and_the_closure_chain_is_longest() {
        let mut routes = log(&[
            "GET /api/v1/admin/accounts",
            "GET /api/v1/admin/groups",
            "GET /api/v1/admin/channels",
            "GET /api/v1/admin/users",
            "POST /api/v1/admin/groups",
            "POST /api/v1/admin/channels",
        ]);
        routes.extend(std::iter::repeat_n(
            "POST /api/v1/admin/accounts".to_owned(),
            50,
        ));
        routes.extend(log(&[
            "GET /api/v1/admin/groups",
            "GET /api/v1/admin/users",
            "POST /api/v1/admin/users",
            "POST /api/v1/admin/users/{id}/balance",
            "POST /api/v1/auth/login",
            "POST /api/v1/keys",
        ]));
        let cp = critical_path(&routes);
        assert_eq!(cp.depth, 7, "{cp:?}");
        assert_eq!(
            cp.chain,
            [
                "observe",
                "create group",
                "create accounts",
                "closure observe",
                "create user",
                "user login",
                "create key"
            ]
        );
        assert!(cp.unclassified.is_empty());
        assert_eq!(cp.requests_per_stage[0], ("observe", 4));
        assert_eq!(cp.requests_per_stage[2], ("create accounts", 50));
        assert_eq!(cp.requests_per_stage.len(), STAGES.len() - 1, "no binds");
    }

    #[test]
    fn accounts_created_unbound_then_bound_reach_the_same_depth() {
        // Adopted accounts bound to an existing group: observe, bind, then
        // the closure. Creating unbound next to a new group and binding
        // after would be observe, create, bind: the bound-create depth.
        let bind_only = critical_path(&log(&[
            "GET /api/v1/admin/accounts",
            "PUT /api/v1/admin/accounts/{id}",
            "GET /api/v1/admin/groups",
        ]));
        assert_eq!(bind_only.depth, 3, "{bind_only:?}");
        let new_group = critical_path(&log(&[
            "GET /api/v1/admin/accounts",
            "POST /api/v1/admin/groups",
            "POST /api/v1/admin/accounts",
            "GET /api/v1/admin/groups",
        ]));
        assert_eq!(new_group.depth, 4, "{new_group:?}");
    }

    #[test]
    fn a_request_no_stage_claims_adds_a_level_and_is_reported() {
        let cp = critical_path(&log(&[
            "GET /api/v1/admin/accounts",
            "POST /api/v1/admin/accounts",
            "DELETE /api/v1/admin/accounts/{id}",
        ]));
        assert_eq!(cp.depth, 3);
        assert_eq!(cp.unclassified, ["DELETE /api/v1/admin/accounts/{id}"]);
    }
}
