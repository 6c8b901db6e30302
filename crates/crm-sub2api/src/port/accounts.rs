//! Accounts across the border. An observed account keeps only whether it
//! has a key: the raw credential secrets a legacy host sends are dropped
//! here, on the spot (docs/design.md, "Secrets").

use super::profile::HostProfile;
use crate::admin::NewAccount;
use crate::sse::AccountTestResult;
use crate::wire;
use crm_domain::observed::{AccountDraft, AccountProbe, HostAccount};
use crm_domain::{HostObjectId, Platform};

/// An observed account. The wire struct (and any raw secret a legacy host
/// sent) is consumed and dropped here.
pub fn account_from_wire(a: wire::Account) -> HostAccount {
    let has_api_key = a.has_api_key();
    let base_url = a.credentials.base_url().map(str::to_owned);
    let model_mapping = a.credentials.model_mapping();
    let credential_fields = a
        .credentials
        .fields
        .into_iter()
        .filter(|(k, _)| k != "base_url" && k != "model_mapping")
        .collect();
    HostAccount {
        id: HostObjectId(a.id),
        name: a.name,
        notes: a.notes,
        platform: Platform::new(a.platform),
        account_type: a.account_type,
        base_url,
        model_mapping,
        credential_fields,
        has_api_key,
        extra: a.extra,
        status: a.status,
        error_message: a.error_message,
        schedulable: a.schedulable,
        temp_unschedulable_reason: a.temp_unschedulable_reason,
        group_ids: a.group_ids.into_iter().map(HostObjectId).collect(),
        created_at: a.created_at,
    }
}

/// The create body for a draft; `notes` only where the host keeps them.
pub fn new_account(draft: &AccountDraft, profile: HostProfile) -> NewAccount {
    NewAccount {
        name: draft.name.clone(),
        notes: draft.notes.clone().filter(|_| profile.send_notes),
        platform: draft.platform.as_str().to_owned(),
        account_type: draft.account_type.clone(),
        api_key: draft.api_key.clone(),
        base_url: draft.base_url.clone(),
        model_mapping: draft.model_mapping.clone(),
        credential_fields: draft.credential_fields.clone(),
        extra: draft.extra.clone(),
        group_ids: draft.group_ids.iter().map(|g| g.0).collect(),
        concurrency: Some(draft.concurrency),
        priority: Some(draft.priority),
        proxy_id: None,
        confirm_mixed_channel_risk: false,
    }
}

/// The port's view of an account test.
pub fn probe_from_result(r: AccountTestResult) -> AccountProbe {
    AccountProbe {
        success: r.success,
        model: r.model,
        text: r.text,
        error: r.error,
        error_code: r.error_code,
    }
}
