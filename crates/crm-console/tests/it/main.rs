//! Integration tests of the console: the router in-process (status codes,
//! sessions, CSRF, read-only refusal, secrets), and the whole console in a
//! real headless Chromium (`e2e`, gated by `CRM_CONSOLE_E2E=1`).

mod e2e;
mod escaping;
mod funds;
mod hosts;
mod replicas;
mod router;
mod status;
mod support;
mod webdriver;
