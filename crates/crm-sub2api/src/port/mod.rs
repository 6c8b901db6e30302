//! crm's host ports ([`HostApi`], [`UpstreamProbe`], [`HostConnector`])
//! implemented on the client.
//!
//! This is the border: wire structs become `crm_domain::observed` types here
//! (raw credential secrets are dropped on the spot, only `has_api_key`
//! survives), drafts become wire bodies, and [`Error`] becomes [`HostError`].
//! The few version-dependent choices (send `notes`? send `Idempotency-Key`?
//! which page size?) come from the host's probed [`Capabilities`].
//!
//! One module per resource converts in both directions (`accounts`,
//! `groups`, `channels`, `users`, `keys`, `monitors`); `host` implements
//! [`HostApi`] with them, `upstream` [`UpstreamProbe`], `connector`
//! [`HostConnector`]; `error` maps [`Error`] to [`HostError`] and `profile`
//! holds the capability-dependent write choices. The resource modules import
//! nothing of the port's own but `profile`, so the imports run one way:
//! `connector` -> `host` -> resources -> `profile`.
//!
//! [`Error`]: crate::error::Error
//! [`HostError`]: crm_domain::ports::HostError
//! [`Capabilities`]: crm_domain::host::Capabilities
//! [`HostApi`]: crm_domain::ports::HostApi
//! [`UpstreamProbe`]: crm_domain::ports::UpstreamProbe
//! [`HostConnector`]: crm_domain::ports::HostConnector

mod accounts;
mod channels;
mod connector;
mod error;
mod groups;
mod host;
mod keys;
mod monitors;
mod profile;
mod upstream;
mod users;

pub use accounts::{account_from_wire, new_account, probe_from_result};
pub use channels::{channel_from_wire, channel_input};
pub use connector::{SharedHttp, Sub2apiConnector};
pub use error::host_error;
pub use groups::{group_from_wire, group_input};
pub use host::Sub2apiHost;
pub use keys::api_key_from_wire;
pub use monitors::{monitor_check_from_wire, monitor_from_wire, monitor_update, new_monitor};
pub use profile::HostProfile;
pub use upstream::upstream_probe;
pub use users::{new_user, subscription_from_wire, user_from_wire};
