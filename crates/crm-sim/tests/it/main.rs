//! Integration tests: the simulator driven over real HTTP.

mod binary;
mod chain;
mod client;
mod faults;
mod funds;
mod legacy;
mod profiles;
mod support;
mod upstreams;
