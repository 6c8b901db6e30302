//! The version-dependent choices (send `notes`? send `Idempotency-Key`?
//! which page size?) the adapter makes when writing, from the host's
//! probed [`Capabilities`].

use crate::client::DEFAULT_PAGE_SIZE;
use crm_domain::host::Capabilities;

/// The version-dependent choices the adapter makes when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostProfile {
    /// Send account `notes`. Newer hosts store them; December-2025 hosts have
    /// no such field. Unknown hosts get them (Go's JSON binding ignores
    /// unknown fields, so this is harmless there).
    pub send_notes: bool,
    /// Send `Idempotency-Key` on account creates.
    pub idempotency_key: bool,
    pub page_size: u32,
}

impl HostProfile {
    /// Before any probe.
    pub fn unknown() -> Self {
        HostProfile {
            send_notes: true,
            idempotency_key: false,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// From a probe. Account `notes` arrived with the newer account DTO, as
    /// did credential redaction and channels, so either one observed
    /// implies `notes` (an inference).
    pub fn from_capabilities(caps: &Capabilities) -> Self {
        HostProfile {
            send_notes: caps.credential_redaction || caps.channels,
            idempotency_key: caps.idempotency_key,
            page_size: caps.max_page_size.max(1),
        }
    }
}
