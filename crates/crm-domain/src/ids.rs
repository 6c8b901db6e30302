//! Identifiers. Each is a newtype so a batch id can never be passed where a
//! host id is expected.

use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self { $name(s.into()) }
            pub fn as_str(&self) -> &str { &self.0 }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self { $name(s.to_owned()) }
        }
    };
}

string_id!(
    /// A pack's identity, e.g. `cn-official`.
    PackId
);
string_id!(
    /// A provider id local to its pack, e.g. `deepseek`.
    ProviderKey
);
string_id!(
    /// A registered host (crm-side id).
    HostId
);
string_id!(
    /// An import batch.
    BatchId
);
string_id!(
    /// A long-running operation.
    OperationId
);
string_id!(
    /// A reconcile run.
    ReconcileRunId
);
string_id!(
    /// A lease on a (host) or (host, provider) scope.
    LeaseId
);
string_id!(
    /// One stored access check.
    AccessCheckId
);

/// The id a sub2api host gave an object (int64 in sub2api).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct HostObjectId(pub i64);

impl fmt::Display for HostObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A pack-scoped provider identity: `pack_id/provider_id`.
///
/// The same `provider_id` in two packs never collides because every lookup,
/// batch and lease is keyed by the pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderRef {
    pub pack: PackId,
    pub provider: ProviderKey,
}

impl ProviderRef {
    pub fn new(pack: impl Into<String>, provider: impl Into<String>) -> Self {
        ProviderRef {
            pack: PackId(pack.into()),
            provider: ProviderKey(provider.into()),
        }
    }

    /// Parses `pack/provider`. Both halves must be non-empty and the text may
    /// contain exactly one `/`.
    pub fn parse(s: &str) -> Result<Self, InvalidProviderRef> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(p), Some(k), None) if !p.is_empty() && !k.is_empty() => Ok(Self::new(p, k)),
            _ => Err(InvalidProviderRef(s.to_owned())),
        }
    }
}

impl fmt::Display for ProviderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pack, self.provider)
    }
}

impl serde::Serialize for ProviderRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ProviderRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ProviderRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A provider reference that is not `pack/provider`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a provider reference; write it as PACK/PROVIDER, e.g. cn-official/deepseek")]
pub struct InvalidProviderRef(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_refs_are_pack_scoped() {
        let a = ProviderRef::parse("cn-official/deepseek").unwrap();
        let b = ProviderRef::parse("my-pack/deepseek").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "cn-official/deepseek");
        assert!(ProviderRef::parse("deepseek").is_err());
        assert!(ProviderRef::parse("a/b/c").is_err());
        assert!(ProviderRef::parse("/b").is_err());
    }
}
