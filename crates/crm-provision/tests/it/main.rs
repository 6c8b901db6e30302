//! crm-provision against crm-sim through the real crm-sub2api adapter and a
//! temporary crm-store, on both host profiles.

mod concurrency;
mod crash;
mod faults;
mod import;
mod lifecycle;
mod monitors;
mod preview;
mod rollback;
mod rollback_faults;
mod secrets;
mod support;
mod tombstones;
mod url_change;
