//! The handles access use cases run against, and the one secret they hold
//! in memory: a user key.

use crm_domain::ports::{
    AccessCheckRepo, BatchRepo, Clock, FundsRepo, HostApi, IdSource, SecretSealer, UpstreamProbe,
};
use crm_domain::{HostObjectId, SecretString};

/// crm-domain ports an access use case needs, borrowed from the caller.
#[derive(Clone, Copy)]
pub struct AccessPorts<'a> {
    pub host: &'a dyn HostApi,
    pub upstream: &'a dyn UpstreamProbe,
    pub batches: &'a dyn BatchRepo,
    pub checks: &'a dyn AccessCheckRepo,
    /// Funds readings: a key that cannot pay makes ready access `degraded`.
    pub funds: &'a dyn FundsRepo,
    pub clock: &'a dyn Clock,
    pub ids: &'a dyn IdSource,
    pub sealer: &'a dyn SecretSealer,
}

impl std::fmt::Debug for AccessPorts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessPorts(..)")
    }
}

/// A user key held in memory for a check. Never stored: crm reads it back
/// from the host (logging in as the user) when it needs it again.
#[derive(Debug, Clone)]
pub struct HeldKey {
    pub key_id: HostObjectId,
    /// `Debug` prints `[REDACTED]`.
    pub secret: SecretString,
}
