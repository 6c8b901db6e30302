//! Closing access: observe the few host objects a closure involves (list
//! calls only), plan with [`plan_closure`](crate::closure::plan_closure), and apply the plan through
//! crm-provision's write-ahead journal, so that every closure object is a
//! managed resource of the batch. Also the access preview and
//! `assign_subscriptions`.
//!
//! Secrets: the probe user's password is generated here, sealed with the
//! [`SecretSealer`](crm_domain::ports::SecretSealer) before the first intent
//! that needs it is committed, and only the sealed form is journaled (in the
//! `User` and `UserApiKey` resources, so rollback can log in to delete the
//! key). The key string is held in memory ([`HeldKey`](crate::ports::HeldKey)) and never stored.
//!
//! One module per seam, imports running one way: `guard` and `gather`
//! (leaves), `steps` (the journaled steps), `recover`, then the entry points
//! `close` (preview and closure), `subscriptions` and `key`.

mod close;
mod gather;
mod guard;
mod key;
mod recover;
mod steps;
mod subscriptions;

pub use close::{ClosureOutcome, close_access, preview_access};
pub use key::reveal_batch_key;
pub use recover::recover_closure_intents;
pub use subscriptions::{AssignHow, Assigned, UserRef, assign_subscriptions};
