//! crm-access against the simulator: closures, checks and classification
//! through the real host adapter, the real store and the real journal.

mod lifecycle;
mod recorded_url;
mod scenarios;
mod support;
