//! Printing errors for operators: `error: what happened`, then a `hint:`
//! line when crm knows what to try next.

use std::process::ExitCode;

/// Prints an error as `error: what happened` plus a `hint:` line when crm
/// knows what to try; returns exit code 1.
pub fn report(e: &anyhow::Error) -> ExitCode {
    // Some errors repeat their source in their own message: print each
    // cause only when it adds something.
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !message.contains(&c) {
            message.push_str(": ");
            message.push_str(&c);
        }
    }
    eprintln!("error: {message}");
    if let Some(h) = hint(e) {
        eprintln!("hint: {h}");
    }
    ExitCode::FAILURE
}

fn hint(e: &anyhow::Error) -> Option<String> {
    use crm_app::AppError;
    use crm_domain::ports::{HostError, StoreError};
    let app = e.downcast_ref::<AppError>()?;
    // Host and store errors reach here directly or wrapped by a use case.
    Some(match (app, app.host_error(), app.store_error()) {
        (_, Some(HostError::Unreachable { .. } | HostError::Timeout { .. }), _) => {
            "check the host's URL with `crm host show HOST` and that it is running; \
             --host-timeout raises the per-request timeout"
                .into()
        }
        (_, Some(HostError::Unauthorized { .. }), _) => {
            "the admin key crm read is not accepted; `crm host show HOST` says where it comes from"
                .into()
        }
        (_, Some(HostError::ComplianceGate { .. }), _) => {
            "log in to the host's admin console, accept the notice, then `crm host probe HOST`"
                .into()
        }
        (_, _, Some(StoreError::LeaseHeld { .. })) => {
            "if that process is gone (killed, crashed), release its lease with \
             `crm lease release LEASE_ID`, then `crm batch resume BATCH_ID` or `crm batch rollback BATCH_ID`"
                .into()
        }
        (AppError::Open(_), _, _) => "check --db (or CRM_DB): a SQLite file's directory permissions, or a postgres:// URL's server, password and keys".into(),
        _ => return None,
    })
}
