//! The state every handler shares: the host's objects behind one lock, and the
//! profile. Below the handlers, so they need not import the server.

use std::sync::{Mutex, MutexGuard};

use crate::model::State;
use crate::profile::Profile;

/// State shared by every handler.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub profile: Profile,
    pub admin_email: String,
    pub admin_password: String,
}

impl Shared {
    /// Handlers never panic while holding the lock, but a poisoned lock must not
    /// take the whole simulator down either.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
