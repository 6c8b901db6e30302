#![doc = include_str!("../README.md")]

pub mod admin;
pub mod client;
pub mod envelope;
pub mod error;
pub mod funds;
pub mod gateway;
pub mod monitors;
pub mod port;
pub mod probe;
pub mod scrub;
pub mod sse;
pub mod user;
pub mod wire;

pub use admin::{
    AccountFilter, AccountUpdate, AssignSubscription, BalanceChange, BalanceOperation,
    ChannelInput, GroupInput, NewAccount, NewUser, UserUpdate,
};
pub use client::{
    AdminKey, ClientBuilder, DEFAULT_MAX_BODY_BYTES, PAGE_ITEM_BYTES, RetryPolicy, Sub2apiClient,
};
pub use envelope::{Code, ErrorBody, Page};
pub use error::{Error, Result};
pub use funds::{BalanceApi, CnBalance, CnQuota, UpstreamFundsClient};
pub use gateway::{UpstreamClient, UpstreamRouting};
pub use monitors::{Monitor, MonitorUpdate, NewMonitor};
pub use port::{HostProfile, SharedHttp, Sub2apiConnector, Sub2apiHost};
pub use secrecy::SecretString;
pub use sse::{AccountTestResult, TestEvent};
pub use user::{KeyUpdate, NewKey, UserSession};
pub use wire::*;
