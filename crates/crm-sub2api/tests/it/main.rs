//! Integration tests of crm-sub2api against wiremock hosts, using the
//! response fixtures under `fixtures/sub2api/` (legacy and current shapes).

mod support;

mod decoding;
mod endpoints;
mod funds;
mod gateway;
mod hostile;
mod monitors;
mod pagination;
mod port;
mod probe;
mod retries;
mod secrets;
mod sse;
