//! What the control surface stores: injected faults and the request log's
//! records. Plain data at the bottom of the crate, so the state can hold them
//! without depending on the control handlers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which requests a fault applies to and what it does to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// HTTP method to match (any when absent), case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// A route template (`/api/v1/admin/accounts/{id}`) or a concrete path where
    /// `*` matches one segment (`/api/v1/admin/accounts/*`).
    pub path: String,
    /// The first matching request (1-based, counted from installation) to hit.
    #[serde(default = "one")]
    pub nth: u32,
    /// How many consecutive matching requests to hit from the `nth` on.
    #[serde(default = "one")]
    pub times: u32,
    /// What happens to a hit request.
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and body without running the handler. A JSON
    /// string body is sent as plain text; `null` sends `{"code":status,"message":"injected fault"}`.
    Status {
        status: u16,
        #[serde(default)]
        body: Value,
    },
    /// Wait, then handle normally. The handler runs even if the client gave up
    /// meanwhile: the request is processed late, and its mutation lands after the timeout.
    Delay { ms: u64 },
    /// Close the connection without handling the request or answering.
    Drop,
    /// Handle the request (commit its mutation), then close the connection without answering.
    CommitThenDrop,
    /// Handle the request (commit its mutation), then hold the answer back for `ms`.
    CommitThenDelay { ms: u64 },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Fault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    pub seen: u32,
    pub fired: u32,
}

/// One host request as the simulator saw it (control requests are not logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    /// The matched route template, or `<unmatched>` for gin-404 paths.
    pub route: String,
    /// The status written; `None` when the connection was dropped before any answer.
    pub status: Option<u16>,
    /// `answered`, `fault_status`, `delayed`, `dropped`, `committed_then_dropped`, `committed_then_delayed`.
    pub outcome: String,
}

impl RequestRecord {
    /// The counter key: `METHOD route`.
    pub fn counter_key(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}
