//! The repair plan: drift items in, plan items and their steps out. Pure
//! and deterministic (docs/design.md §6: repair only on request, never an
//! object without crm's marker).

use super::changed::plan_changed;
use super::op::{
    Op, Planned, RepairOptions, blocked, created_order, disable_changes, find, item, supplied,
    supplied_for,
};
use crate::desired::{self, DesiredAccount};
use crate::diff::{Recorded, is_active_account};
use crm_domain::DriftReason;
use crm_domain::observed::{ChannelDraft, GroupDraft, HostAccount, HostSnapshot};
use crm_domain::ownership::parse_marker;
use crm_domain::plan::{FieldChange, Plan};
use crm_domain::reconcile::DriftItem;
use crm_domain::{BatchId, DriftCategory, HostObjectId, PlanAction, ResourceKind, ResourceState};
use crm_provision::desired::AccountKey;
use serde_json::json;
use std::collections::BTreeSet;

/// Plans the repair of `items` (from [`crate::diff::diff`] of the same inputs).
/// Pure and deterministic.
pub fn plan(
    recorded: &Recorded,
    observed: &HostSnapshot,
    items: &[DriftItem],
    opts: &RepairOptions,
) -> Plan {
    let planned = plan_ops(recorded, observed, items, opts);
    Plan {
        items: planned.into_iter().map(|p| p.item).collect(),
        notes: vec![],
    }
}

pub(crate) fn plan_ops(
    recorded: &Recorded,
    observed: &HostSnapshot,
    items: &[DriftItem],
    opts: &RepairOptions,
) -> Vec<Planned> {
    let keys: BTreeSet<String> = opts.keys().into_keys().collect();
    let mut out: Vec<Planned> = Vec::new();
    // Groups being recreated, per batch: their dependents need rebinding.
    let mut recreated_groups: Vec<(BatchId, HostObjectId)> = Vec::new();
    for i in items {
        let p = match i.category {
            DriftCategory::Missing => plan_missing(recorded, observed, i, &keys),
            DriftCategory::Changed => plan_changed(recorded, i, &keys),
            DriftCategory::Duplicate => {
                out.extend(plan_duplicate(recorded, observed, i, opts));
                continue;
            }
            DriftCategory::Unhealthy => plan_unhealthy(recorded, i, opts),
            DriftCategory::UnmanagedLeftover => plan_leftover(i, opts),
            DriftCategory::AccessBroken => Planned {
                item: item(
                    i.kind,
                    PlanAction::NoOp,
                    &i.name,
                    i.host_object_id,
                    vec![],
                    "access is repaired by the access setup (crm access check / setup), not by reconcile",
                ),
                op: Op::Nothing,
            },
            DriftCategory::Unknown => continue,
        };
        if let Op::RecreateGroup { old, .. } = &p.op {
            recreated_groups.push((old.batch_id.clone(), old.host_object_id));
        }
        out.push(p);
    }
    // An account being disabled is not also cleared (a later clear-error
    // would switch it back on).
    let disabled: Vec<HostObjectId> = out
        .iter()
        .filter_map(|p| match &p.op {
            Op::Disable { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    out.retain(|p| !matches!(&p.op, Op::Clear { r, .. } if disabled.contains(&r.host_object_id)));
    // Accounts and channels of a batch whose group is recreated must be bound
    // to the new group; their restore steps carry the old id, remapped when run.
    for (batch, old_group) in &recreated_groups {
        let Some(rb) = recorded.batches.iter().find(|b| b.batch.id == *batch) else {
            continue;
        };
        for r in rb
            .resources
            .iter()
            .filter(|r| r.state == ResourceState::Live)
        {
            let already = out.iter().any(|p| match &p.op {
                Op::RestoreAccount { r: x, .. }
                | Op::RestoreChannel { r: x, .. }
                | Op::RecreateAccount { old: x, .. }
                | Op::RecreateChannel { old: x, .. }
                | Op::AdoptAccount { old: x, .. } => {
                    x.kind == r.kind && x.host_object_id == r.host_object_id
                }
                _ => false,
            });
            if already {
                continue;
            }
            match r.kind {
                ResourceKind::Account => {
                    let Some(a) = observed.accounts.iter().find(|a| a.id == r.host_object_id)
                    else {
                        continue;
                    };
                    let mut groups = a.group_ids.clone();
                    groups.retain(|g| g != old_group);
                    groups.push(*old_group);
                    out.push(Planned {
                        item: item(
                            ResourceKind::Account,
                            PlanAction::Update,
                            &r.name,
                            Some(r.host_object_id),
                            vec![FieldChange {
                                field: "group_ids".into(),
                                from: json!(a.group_ids),
                                to: json!("bound to the recreated group"),
                            }],
                            "bind to the recreated batch group",
                        ),
                        op: Op::RestoreAccount {
                            r: r.clone(),
                            base_url: None,
                            model_mapping: None,
                            extra: None,
                            groups: Some(groups),
                            activate: false,
                            key: None,
                        },
                    });
                }
                ResourceKind::Channel => {
                    let Ok(draft) = serde_json::from_value::<ChannelDraft>(r.desired.clone())
                    else {
                        continue;
                    };
                    out.push(Planned {
                        item: item(
                            ResourceKind::Channel,
                            PlanAction::Update,
                            &r.name,
                            Some(r.host_object_id),
                            vec![],
                            "bind to the recreated batch group",
                        ),
                        op: Op::RestoreChannel {
                            r: r.clone(),
                            draft,
                        },
                    });
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| {
        (
            a.op.rank(),
            a.item.kind.apply_rank(),
            &a.item.name,
            a.item.host_object_id,
        )
            .cmp(&(
                b.op.rank(),
                b.item.kind.apply_rank(),
                &b.item.name,
                b.item.host_object_id,
            ))
    });
    out
}

fn plan_missing(
    recorded: &Recorded,
    observed: &HostSnapshot,
    i: &DriftItem,
    keys: &BTreeSet<String>,
) -> Planned {
    let Some((rb, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    match r.kind {
        ResourceKind::Group => match serde_json::from_value::<GroupDraft>(r.desired.clone()) {
            Ok(draft) => Planned {
                item: item(
                    r.kind,
                    PlanAction::Create,
                    &r.name,
                    None,
                    vec![],
                    "recreate the missing group from its recorded spec",
                ),
                op: Op::RecreateGroup {
                    old: r.clone(),
                    draft,
                },
            },
            Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
        },
        ResourceKind::Channel => match serde_json::from_value::<ChannelDraft>(r.desired.clone()) {
            Ok(draft) => Planned {
                item: item(
                    r.kind,
                    PlanAction::Create,
                    &r.name,
                    None,
                    vec![],
                    "recreate the missing channel from its recorded spec",
                ),
                op: Op::RecreateChannel {
                    old: r.clone(),
                    draft,
                },
            },
            Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
        },
        ResourceKind::Account => {
            let d: DesiredAccount = desired::read(&r.desired);
            let key = d.platform.as_ref().and_then(|p| {
                AccountKey::of_name(
                    d.name.as_deref().unwrap_or(&r.name),
                    p,
                    d.base_url.as_deref(),
                )
            });
            let candidates: Vec<_> = observed
                .accounts
                .iter()
                .filter(|a| is_active_account(a) && key.as_ref().is_some_and(|k| k.matches(a)))
                .collect();
            match candidates.as_slice() {
                [] => match supplied(&r.desired, keys) {
                    Ok(key) => Planned {
                        item: item(
                            r.kind,
                            PlanAction::Create,
                            &r.name,
                            None,
                            vec![],
                            "recreate the missing account with the supplied upstream key",
                        ),
                        op: Op::RecreateAccount {
                            old: r.clone(),
                            key,
                            desired: r.desired.clone(),
                            groups: d
                                .group_ids
                                .clone()
                                .filter(|g| !g.is_empty())
                                .unwrap_or_else(|| rb.groups()),
                        },
                    },
                    Err(reason) => blocked(i, reason),
                },
                [a] if a.notes.as_deref().and_then(parse_marker) == Some(r.batch_id.clone()) => {
                    Planned {
                        item: item(
                            r.kind,
                            PlanAction::Adopt,
                            &r.name,
                            Some(a.id),
                            vec![],
                            format!(
                                "account #{} has the same natural key and this batch's marker",
                                a.id
                            ),
                        ),
                        op: Op::AdoptAccount {
                            old: r.clone(),
                            found: a.id,
                        },
                    }
                }
                [a] => blocked(
                    i,
                    format!(
                        "account #{} has the same natural key but not this batch's marker; crm will not take it over",
                        a.id
                    ),
                ),
                many => blocked(
                    i,
                    format!(
                        "{} accounts share the natural key; resolve the duplicates first",
                        many.len()
                    ),
                ),
            }
        }
        ResourceKind::Monitor => match supplied_for(&r.desired, keys, "recreating this monitor") {
            Ok(key) => Planned {
                item: item(
                    r.kind,
                    PlanAction::Create,
                    &r.name,
                    None,
                    vec![],
                    "recreate the missing monitor from its recorded spec with the supplied upstream key",
                ),
                op: Op::RecreateMonitor {
                    old: r.clone(),
                    key,
                },
            },
            Err(reason) => blocked(i, reason),
        },
        _ => blocked(
            i,
            format!(
                "a missing {} is recreated by the access setup of batch {}, not by reconcile",
                r.kind, r.batch_id
            ),
        ),
    }
}

fn plan_duplicate(
    recorded: &Recorded,
    observed: &HostSnapshot,
    i: &DriftItem,
    opts: &RepairOptions,
) -> Vec<Planned> {
    let (Some(id), Some(owner)) = (i.host_object_id, i.batch_id.clone()) else {
        return vec![Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                i.host_object_id,
                vec![],
                "not crm-marked: reported only, never touched",
            ),
            op: Op::Nothing,
        }];
    };
    let Some(dup) = observed.accounts.iter().find(|a| a.id == id) else {
        return vec![blocked(i, "the duplicate is gone from the host")];
    };
    let key = AccountKey::of(dup);
    let same = |a: &HostAccount| key.as_ref().is_some_and(|k| k.matches(a));
    // The recorded account this one duplicates, if the duplicate shares its key.
    let twin = recorded
        .batches
        .iter()
        .flat_map(|b| &b.resources)
        .filter(|r| r.kind == ResourceKind::Account && r.state == ResourceState::Live)
        .find_map(|r| {
            observed
                .accounts
                .iter()
                .find(|a| a.id == r.host_object_id && same(a))
                .map(|a| (r, a))
        });
    let disable_dup = |reason: String| Planned {
        item: item(
            ResourceKind::Account,
            PlanAction::Update,
            &i.name,
            Some(id),
            disable_changes(dup),
            reason,
        ),
        op: Op::Disable {
            batch: owner.clone(),
            id,
            name: i.name.clone(),
        },
    };
    let Some((twin_r, twin)) = twin else {
        return vec![disable_dup(
            "disable the unrecorded crm account (the batch's recorded accounts are kept)".into(),
        )];
    };
    // Keep the oldest healthy account of the set; an error the operator asked
    // to clear does not count against the recorded one.
    let healthy = |a: &HostAccount| {
        a.is_healthy()
            || (opts.clear_unhealthy
                && a.id == twin.id
                && matches!(a.status.as_str(), "active" | "error")
                && a.temp_unschedulable_reason
                    .as_deref()
                    .is_none_or(str::is_empty))
    };
    let set: Vec<&HostAccount> = observed
        .accounts
        .iter()
        .filter(|a| {
            is_active_account(a)
                && same(a)
                && (a.id == twin.id || a.notes.as_deref().and_then(parse_marker).is_some())
        })
        .collect();
    let keep = set
        .iter()
        .filter(|a| healthy(a))
        .min_by_key(|a| created_order(a))
        .map_or(twin.id, |a| a.id);
    if keep != id {
        return vec![disable_dup(format!(
            "disable the duplicate, keeping #{keep} (the oldest healthy account with this key)"
        ))];
    }
    // This duplicate is the one to keep: the batch takes it over and the
    // recorded account is switched off instead.
    vec![
        Planned {
            item: item(
                ResourceKind::Account,
                PlanAction::Adopt,
                &twin_r.name,
                Some(id),
                vec![],
                format!(
                    "#{id} is the oldest healthy account with this key; batch {} takes it over from #{}",
                    twin_r.batch_id, twin.id
                ),
            ),
            op: Op::AdoptAccount {
                old: twin_r.clone(),
                found: id,
            },
        },
        Planned {
            item: item(
                ResourceKind::Account,
                PlanAction::Update,
                &twin_r.name,
                Some(twin.id),
                disable_changes(twin),
                format!("disable the recorded account, keeping #{id}"),
            ),
            op: Op::Disable {
                batch: twin_r.batch_id.clone(),
                id: twin.id,
                name: twin_r.name.clone(),
            },
        },
    ]
}

fn plan_unhealthy(recorded: &Recorded, i: &DriftItem, opts: &RepairOptions) -> Planned {
    let Some((_, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    if let Some(reason) = i.reason {
        // Funds, and what the host's monitor sees of the upstream, are the
        // provider account's, not the host's: nothing on the host can
        // repair them.
        let why = match reason {
            DriftReason::LowFunds | DriftReason::LowQuota => {
                "top up the upstream account (or raise its plan); reconcile cannot repair funds"
            }
            DriftReason::MonitorFailing => {
                "the upstream fails the host's own monitor; check the key and its funds (reconcile cannot repair an upstream)"
            }
        };
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                vec![],
                why,
            ),
            op: Op::Nothing,
        };
    }
    let error = i.fields.iter().any(|f| f.field == "status");
    let schedulable = i.fields.iter().any(|f| f.field == "schedulable");
    if !opts.clear_unhealthy {
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                i.fields.clone(),
                "reported only; ask to clear unhealthy accounts to clear it",
            ),
            op: Op::Nothing,
        };
    }
    if !error && !schedulable {
        return Planned {
            item: item(
                r.kind,
                PlanAction::NoOp,
                &r.name,
                Some(r.host_object_id),
                i.fields.clone(),
                "temporarily unschedulable: the host lifts it by itself",
            ),
            op: Op::Nothing,
        };
    }
    Planned {
        item: item(
            r.kind,
            PlanAction::Update,
            &r.name,
            Some(r.host_object_id),
            i.fields.clone(),
            "clear the account's error state",
        ),
        op: Op::Clear {
            r: r.clone(),
            error,
            schedulable,
        },
    }
}

fn plan_leftover(i: &DriftItem, opts: &RepairOptions) -> Planned {
    let Some(id) = i.host_object_id else {
        return blocked(i, "no host id");
    };
    let Some(batch) = i.batch_id.clone() else {
        // Found by crm's name only (a host without notes): the name is the
        // only mark, which is enough to report but not to delete.
        return Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                Some(id),
                vec![],
                "carries crm's name but no marker; delete it on the host if it is residue",
            ),
            op: Op::Nothing,
        };
    };
    if !opts.prune {
        return Planned {
            item: item(
                i.kind,
                PlanAction::NoOp,
                &i.name,
                Some(id),
                vec![],
                "reported only; ask to prune leftovers to delete it",
            ),
            op: Op::Nothing,
        };
    }
    if i.kind == ResourceKind::UserApiKey {
        return blocked(
            i,
            "gateway keys are deleted as their user; prune the user or delete the key on the host",
        );
    }
    Planned {
        item: item(
            i.kind,
            PlanAction::Delete,
            &i.name,
            Some(id),
            vec![],
            format!("delete residue of batch {batch}"),
        ),
        op: Op::Prune {
            batch,
            kind: i.kind,
            id,
            name: i.name.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::exec::provider_from_name;
    use super::*;
    use crate::diff::diff;
    use crate::fixtures::*;
    use crm_domain::observed::HostGroup;
    use crm_domain::ownership::marked_text;

    fn planned(
        opts: &RepairOptions,
        mutate: impl FnOnce(&mut HostSnapshot),
    ) -> (Vec<DriftItem>, Vec<Planned>) {
        let rec = recorded();
        let mut obs = in_sync();
        mutate(&mut obs);
        let items = diff(&rec, &obs, &caps());
        let p = plan_ops(&rec, &obs, &items, &keyed(opts));
        (items, p)
    }

    /// `opts` with the upstream keys of every fixture account supplied.
    fn keyed(opts: &RepairOptions) -> RepairOptions {
        RepairOptions {
            upstream_keys: [1, 2, 3, 4, 5].map(upstream_key).to_vec(),
            fingerprinter: Some(fingerprinter()),
            ..opts.clone()
        }
    }

    fn lines(p: &[Planned]) -> Vec<String> {
        p.iter()
            .map(|p| {
                format!(
                    "{} {} #{}",
                    p.item.action,
                    p.item.kind,
                    p.item.host_object_id.map_or(0, |h| h.0)
                )
            })
            .collect()
    }

    fn five(o: &mut HostSnapshot) {
        o.accounts.retain(|a| a.id.0 != 2);
        o.channels.as_mut().unwrap()[0].model_pricing[0].output_price = Some(2.2e-6);
        let mut dup = DEEPSEEK.account();
        dup.id = HostObjectId(30);
        dup.created_at = Some("2026-11-22T09:30:00Z".into());
        o.accounts.push(dup);
        o.groups.push(HostGroup {
            id: HostObjectId(50),
            name: "crm-cn-official.glm-self_service".into(),
            description: Some(marked_text(&BatchId::new("b-old"), "old group")),
            ..DEEPSEEK.group()
        });
        o.accounts[0].status = "error".into();
    }

    #[test]
    fn without_flags_only_missing_changed_and_duplicates_are_acted_on() {
        // The recorded account is in error and nobody asked to clear it, so
        // the healthy duplicate is the oldest healthy one: it is kept.
        let (_, p) = planned(&RepairOptions::default(), five);
        assert_eq!(
            lines(&p),
            [
                "adopt account #30",
                "create account #0",
                "update channel #20",
                "update account #1",
                "no-op account #1",
                "no-op group #50",
            ]
        );
    }

    #[test]
    fn a_missing_monitor_is_recreated_with_its_key_and_a_changed_one_restored() {
        let run = |opts: &RepairOptions, mutate: fn(&mut HostSnapshot)| {
            let mut rec = recorded();
            let mut obs = in_sync();
            let (r, m) = deepseek_monitor();
            rec.batches[0].resources.push(r);
            obs.monitors = Some(vec![m]);
            mutate(&mut obs);
            let items = diff(&rec, &obs, &caps());
            plan_ops(&rec, &obs, &items, opts)
        };
        let gone: fn(&mut HostSnapshot) = |o| o.monitors = Some(vec![]);
        let p = run(&keyed(&RepairOptions::default()), gone);
        assert_eq!(lines(&p), ["create monitor #0"]);
        assert!(matches!(p[0].op, Op::RecreateMonitor { .. }));
        // Without the key it names the key to supply.
        let p = run(&RepairOptions::default(), gone);
        assert_eq!(lines(&p), ["blocked monitor #40"]);
        let why = p[0].item.reason.as_deref().unwrap();
        assert!(why.contains("--upstream-keys-file"), "{why}");
        let slower: fn(&mut HostSnapshot) =
            |o| o.monitors.as_mut().unwrap()[0].interval_seconds = 900;
        let p = run(&RepairOptions::default(), slower);
        assert_eq!(lines(&p), ["update monitor #40"]);
        assert!(matches!(p[0].op, Op::RestoreMonitor { .. }));
        // Without crm's marker it is never touched.
        let unmarked: fn(&mut HostSnapshot) =
            |o| o.monitors.as_mut().unwrap()[0].group_name = "ops".into();
        assert_eq!(
            lines(&run(&RepairOptions::default(), unmarked)),
            ["blocked monitor #40"]
        );
    }

    #[test]
    fn repair_plan_snapshot_with_prune_and_clear() {
        let opts = RepairOptions {
            prune: true,
            clear_unhealthy: true,
            ..RepairOptions::default()
        };
        let (_, p) = planned(&opts, five);
        let plan = Plan {
            items: p.iter().map(|p| p.item.clone()).collect(),
            notes: vec![],
        };
        insta::assert_json_snapshot!(plan);
    }

    #[test]
    fn the_oldest_healthy_account_is_kept() {
        // The recorded account is in error and not asked to be cleared: the
        // healthy duplicate is kept and the batch takes it over.
        let (_, p) = planned(&RepairOptions::default(), |o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            o.accounts.push(dup);
            o.accounts[0].status = "error".into();
        });
        assert_eq!(
            lines(&p),
            ["adopt account #30", "update account #1", "no-op account #1"]
        );
        // Asked to clear it, the older recorded account stays.
        let opts = RepairOptions {
            clear_unhealthy: true,
            ..RepairOptions::default()
        };
        let (_, p) = planned(&opts, |o| {
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(30);
            o.accounts.push(dup);
            o.accounts[0].status = "error".into();
        });
        assert_eq!(lines(&p), ["update account #30", "update account #1"]);
        assert!(matches!(p[1].op, Op::Clear { .. }));
    }

    #[test]
    fn crm_never_modifies_objects_without_its_marker() {
        let (_, p) = planned(&RepairOptions::default(), |o| {
            o.groups[0].description = Some("operator's now".into());
            o.groups[0].rate_multiplier = 3.0;
            let mut dup = DEEPSEEK.account();
            dup.id = HostObjectId(31);
            dup.notes = Some("operator's copy".into());
            o.accounts.push(dup);
        });
        assert_eq!(lines(&p), ["no-op account #31", "blocked group #10"]);
    }

    #[test]
    fn missing_group_is_recreated_and_dependents_rebound() {
        let (_, p) = planned(&RepairOptions::default(), |o| {
            o.groups.retain(|g| g.id.0 != 10);
        });
        assert_eq!(
            lines(&p),
            ["create group #0", "update account #1", "update channel #20"]
        );
    }

    #[test]
    fn closure_objects_and_accounts_without_a_supplied_key_are_blocked() {
        let mut rec = recorded();
        rec.batches[0].resources.push(crate::fixtures::resource(
            "b-ds",
            ResourceKind::User,
            70,
            "crm-user",
            json!({}),
        ));
        let mut obs = in_sync();
        obs.accounts.retain(|a| a.id.0 != 1);
        let items = diff(&rec, &obs, &caps());
        let p = plan_ops(&rec, &obs, &items, &RepairOptions::default());
        assert_eq!(lines(&p), ["blocked account #1", "blocked user #70"]);
        let fp = fingerprinter().fingerprint(&upstream_key(1));
        let reason = p[0].item.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&format!(
                "supply the upstream key {fp} with --upstream-keys-file"
            )),
            "{reason}"
        );
        // Given the key, the account is recreated.
        let p = plan_ops(&rec, &obs, &items, &keyed(&RepairOptions::default()));
        assert_eq!(lines(&p), ["create account #0", "blocked user #70"]);
    }

    /// A missing account is not created again beside an account that
    /// holds its key under another pack's name (one natural key,
    /// docs/design.md §5): that account is not this batch's, so the repair
    /// stops for the operator, as an import would adopt rather than copy.
    #[test]
    fn a_missing_account_is_not_recreated_beside_its_key_under_another_name() {
        let (_, p) = planned(&RepairOptions::default(), |o| {
            o.accounts.retain(|a| a.id.0 != 1);
            o.accounts.push(same_key_other_pack());
        });
        assert_eq!(lines(&p), ["blocked account #1"]);
    }

    #[test]
    fn an_in_sync_host_plans_nothing() {
        let (items, p) = planned(&RepairOptions::default(), |_| {});
        assert!(items.is_empty() && p.is_empty());
    }

    #[test]
    fn residue_names_give_their_provider() {
        assert_eq!(
            provider_from_name("crm-cn-official.glm-self_service").to_string(),
            "cn-official/glm"
        );
        assert_eq!(
            provider_from_name("operator").to_string(),
            "unknown/unknown"
        );
    }
}
