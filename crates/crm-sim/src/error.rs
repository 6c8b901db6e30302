//! Errors of the simulator's Rust API.

/// Errors of the simulator's Rust API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// No object of that kind has this id.
    #[error("no {kind} with id {id} in the simulator")]
    NotFound { kind: &'static str, id: i64 },
    /// `delete_object` was given a kind it does not know.
    #[error(
        "unknown object kind '{0}'; expected one of: accounts, groups, channels, users, api_keys, subscriptions"
    )]
    UnknownKind(String),
}

/// Result alias of the simulator's Rust API.
pub type Result<T, E = SimError> = std::result::Result<T, E>;
