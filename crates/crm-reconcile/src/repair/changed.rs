//! The plan for `changed` drift: the recorded fields written back, or why
//! they cannot be (a removed marker, a field the host cannot patch, a
//! platform the host cannot serve).

use super::op::{Op, Planned, blocked, find, item, missing_key, recorded_key};
use crate::desired::{self, DesiredAccount};
use crate::diff::{Recorded, RecordedBatch};
use crm_domain::batch::ManagedResource;
use crm_domain::observed::{ChannelDraft, GroupDraft};
use crm_domain::plan::FieldChange;
use crm_domain::reconcile::DriftItem;
use crm_domain::{HostObjectId, PlanAction, ResourceKind};
use serde_json::json;
use std::collections::BTreeSet;

pub(crate) fn plan_changed(recorded: &Recorded, i: &DriftItem, keys: &BTreeSet<String>) -> Planned {
    let Some((rb, r)) = find(recorded, i) else {
        return blocked(i, "the recorded resource is no longer live");
    };
    // A monitor's marker is in its `group_name` (it has no notes).
    if i.fields
        .iter()
        .any(|f| f.field == "notes" || f.field == "description" || f.field == "group_name")
    {
        return blocked(
            i,
            "crm's marker was removed or replaced; crm will not modify an object without its marker (restore the marker to let repair proceed)",
        );
    }
    let restore = |op: Op| Planned {
        item: item(
            r.kind,
            PlanAction::Update,
            &r.name,
            Some(r.host_object_id),
            i.fields.clone(),
            "restore the recorded fields",
        ),
        op,
    };
    let d_platform = desired::read::<DesiredAccount>(&r.desired).platform;
    let migration = i.fields.iter().find(|f| {
        f.field == "platform" && Some(&f.to) != d_platform.as_ref().map(|p| json!(p)).as_ref()
    });
    if let Some(m) = migration {
        return blocked(i, migration_reason(rb, r, i, m, keys));
    }
    match r.kind {
        ResourceKind::Account => {
            let unpatchable: Vec<&str> = i
                .fields
                .iter()
                .map(|f| f.field.as_str())
                .filter(|f| {
                    matches!(*f, "platform" | "type" | "name")
                        || f.starts_with("credentials.") && *f != "credentials.has_api_key"
                })
                .collect();
            if !unpatchable.is_empty() {
                return blocked(
                    i,
                    format!(
                        "{} cannot be changed on an existing account; delete it on the host and repair recreates it",
                        unpatchable.join(", ")
                    ),
                );
            }
            let d: DesiredAccount = desired::read(&r.desired);
            let has = |name: &str| i.fields.iter().any(|f| f.field == name);
            let key = if has("credentials.has_api_key") {
                let fp = recorded_key(&r.desired);
                match &fp {
                    Some(k) if keys.contains(&k.hmac) => Some(k.hmac.clone()),
                    _ => {
                        return blocked(
                            i,
                            missing_key(fp.as_ref(), "the account lost its key: restoring it"),
                        );
                    }
                }
            } else {
                None
            };
            let groups = i
                .fields
                .iter()
                .find(|f| f.field == "group_ids")
                .and_then(|f| serde_json::from_value::<Vec<HostObjectId>>(f.to.clone()).ok());
            let extra = i
                .fields
                .iter()
                .any(|f| f.field.starts_with("extra."))
                .then(|| d.extra.clone().unwrap_or_default());
            restore(Op::RestoreAccount {
                r: r.clone(),
                base_url: if has("base_url") {
                    d.base_url.clone()
                } else {
                    None
                },
                model_mapping: if has("model_mapping") {
                    d.model_mapping.clone()
                } else {
                    None
                },
                extra,
                groups,
                activate: has("status"),
                key,
            })
        }
        ResourceKind::Group => {
            if i.fields.iter().any(|f| f.field == "status") {
                return blocked(
                    i,
                    "the group was disabled on the host; re-enable it there (the host port cannot set group status)",
                );
            }
            match serde_json::from_value::<GroupDraft>(r.desired.clone()) {
                Ok(draft) => restore(Op::RestoreGroup {
                    r: r.clone(),
                    draft,
                }),
                Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
            }
        }
        ResourceKind::Channel => {
            if i.fields.iter().any(|f| f.field == "status") {
                return blocked(
                    i,
                    "the channel was disabled on the host; re-enable it there (the host port cannot set channel status)",
                );
            }
            match serde_json::from_value::<ChannelDraft>(r.desired.clone()) {
                Ok(mut draft) => {
                    if draft.group_ids.is_empty() {
                        draft.group_ids = rb.groups();
                    }
                    restore(Op::RestoreChannel {
                        r: r.clone(),
                        draft,
                    })
                }
                Err(_) => blocked(i, "the recorded spec is incomplete; re-import the provider"),
            }
        }
        ResourceKind::Monitor => restore(Op::RestoreMonitor { r: r.clone() }),
        _ => blocked(
            i,
            format!(
                "{} drift is repaired by the access setup of batch {}",
                r.kind, r.batch_id
            ),
        ),
    }
}

/// What moving a batch off a route the host cannot serve takes (see
/// [`crate::diff::platform_migration`]): the account is recreated on the
/// new platform and base URL, which needs its upstream key, and the group
/// follows. Repair does not migrate platforms itself; a rollback and a new
/// import do it with the same journal guarantees.
fn migration_reason(
    rb: &RecordedBatch,
    r: &ManagedResource,
    i: &DriftItem,
    platform: &FieldChange,
    keys: &BTreeSet<String>,
) -> String {
    let from = platform.from.as_str().unwrap_or("?");
    let Some(to) = platform.to.as_str() else {
        return format!(
            "{} {} uses '{from}', which this host cannot serve, and no other platform works here for {}: {}",
            r.kind,
            r.name,
            rb.batch.provider,
            if i.detail.is_empty() {
                "see the pack"
            } else {
                &i.detail
            }
        );
    };
    let what = match r.kind {
        ResourceKind::Account => {
            let url = i
                .fields
                .iter()
                .find(|f| f.field == "base_url")
                .and_then(|f| f.to.as_str())
                .unwrap_or("?");
            let key = recorded_key(&r.desired);
            let has_key = key.as_ref().is_some_and(|k| keys.contains(&k.hmac));
            format!(
                "recreate account {} as {to} at {url} (an '{from}' account on a host without /v1/chat/completions speaks the Responses API upstream); that needs its upstream key{}",
                r.name,
                match (&key, has_key) {
                    (_, true) => " (supplied)".to_owned(),
                    (Some(k), false) => format!(" {k}"),
                    (None, false) => String::new(),
                }
            )
        }
        _ => format!("change {} {} from '{from}' to '{to}'", r.kind, r.name),
    };
    format!(
        "{what}. Repair does not change an account's platform: roll the batch back (`crm batch rollback {}`) and import the provider again with its keys (`crm provider import {} --host {} --mode {} --upstream-keys-file FILE`)",
        rb.batch.id, rb.batch.provider, rb.batch.host_id, rb.batch.mode
    )
}
