//! Integration tests: the simulator driven over real HTTP.

mod binary;
mod chain;
mod faults;
mod profiles;
mod support;
mod upstreams;
