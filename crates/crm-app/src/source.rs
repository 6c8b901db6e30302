//! Who is calling, for the limits on failed sign-ins: the socket address,
//! unless it is a reverse proxy the operator named (`--trusted-proxy CIDR`),
//! in which case `X-Forwarded-For` says. The API and the console share this,
//! so one rule decides whose failures are counted together.

use std::net::IpAddr;
use std::str::FromStr;

/// One `ADDRESS/BITS` block (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not ADDRESS/BITS, e.g. 10.0.0.0/8 or 127.0.0.1"))?;
        let net = canonical(net);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { net, bits })
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The address whose failures are counted: `peer`, or, when `peer` is a
    /// trusted proxy, the right-most `X-Forwarded-For` entry that is not
    /// itself a trusted proxy (entries further left are the client's to
    /// forge). A missing or unreadable header leaves `peer`.
    pub fn source(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut last = peer;
        for entry in header.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => last = canonical(ip),
                Ok(ip) => return canonical(ip),
                Err(_) => return last,
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.2.3.4")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.9.9.9")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "ten/8", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(none.source(ip("10.0.0.5"), Some("1.2.3.4")), ip("10.0.0.5"));
        let t = TrustedProxies(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(t.source(ip("10.0.0.5"), Some("1.2.3.4")), ip("1.2.3.4"));
        // The client may prepend anything; the proxy appends the real peer.
        assert_eq!(
            t.source(ip("10.0.0.5"), Some("6.6.6.6, 1.2.3.4, 10.0.0.7")),
            ip("1.2.3.4")
        );
        assert_eq!(t.source(ip("10.0.0.5"), None), ip("10.0.0.5"));
        assert_eq!(t.source(ip("10.0.0.5"), Some("garbage")), ip("10.0.0.5"));
        assert_eq!(t.source(ip("192.0.2.1"), Some("1.2.3.4")), ip("192.0.2.1"));
    }
}
