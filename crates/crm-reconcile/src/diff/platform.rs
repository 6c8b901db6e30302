//! A recorded route this host cannot serve (see the platform rules of
//! docs/ARCHITECTURE.md, "Where an import decides the platform").

use super::recorded::RecordedBatch;
use crm_domain::Platform;
use crm_domain::host::Capabilities;
use crm_provision::desired::{PlatformChoice, choose_platform};

/// Where an account of `rb` should send its requests on this host, when the
/// recorded route cannot work here: an `openai` account on a host without
/// `/v1/chat/completions` speaks the Responses API upstream, which the CN
/// providers do not serve (batches imported before crm chose `anthropic`
/// there). `Ok(None)`: the recorded route is fine; `Err`: no route works.
pub fn platform_migration(
    rb: &RecordedBatch,
    platform: &Platform,
    caps: &Capabilities,
) -> Option<std::result::Result<PlatformChoice, String>> {
    if caps.chat_completions || platform.as_str() != Platform::OPENAI {
        return None;
    }
    Some(match &rb.provider_spec {
        Some(spec) => choose_platform(spec, caps).map_err(|b| b.reason),
        None => Err(format!(
            "the host has no /v1/chat/completions, so this openai account speaks the Responses API upstream; pack {} {} is not installed, so crm cannot say where it should point",
            rb.batch.provider.pack, rb.batch.pack_version
        )),
    })
    .filter(|c| c.as_ref().map_or(true, |c| c.platform != *platform))
}
