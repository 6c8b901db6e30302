//! Integration tests: the simulator driven over real HTTP.

mod binary;
mod chain;
mod client;
mod faults;
mod profiles;
mod support;
mod upstreams;
