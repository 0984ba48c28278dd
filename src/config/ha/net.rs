//! IPv4 addresses with a prefix length (`192.168.1.100/24`) and the subnet arithmetic the
//! validator needs: containment, overlap, network and broadcast addresses.

use std::fmt;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// `A.B.C.D/bits`, or a bare address with `default_prefix`.
    pub fn parse(text: &str, default_prefix: Option<u8>) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IPv4 address (A.B.C.D or A.B.C.D/bits)"))?;
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= 32)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0-32"))?,
            None => default_prefix
                .ok_or_else(|| format!("`{text}` needs a prefix length, e.g. `{text}/24`"))?,
        };
        Ok(Self { addr, prefix })
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(self, other: Ipv4Addr) -> bool {
        u32::from(other) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(self, other: Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_arithmetic() {
        let n = Ipv4Net::parse("192.168.1.100/24", None).unwrap();
        assert_eq!(n.network(), Ipv4Addr::new(192, 168, 1, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(192, 168, 1, 255));
        assert!(n.contains(Ipv4Addr::new(192, 168, 1, 7)));
        assert!(!n.contains(Ipv4Addr::new(192, 168, 2, 7)));
        assert!(n.overlaps(Ipv4Net::parse("192.168.0.0/16", None).unwrap()));
        assert!(!n.overlaps(Ipv4Net::parse("10.0.0.1/8", None).unwrap()));
        assert_eq!(Ipv4Net::parse("10.0.0.1", Some(24)).unwrap().prefix, 24);
        assert!(Ipv4Net::parse("10.0.0.1", None).is_err());
        assert!(Ipv4Net::parse("10.0.0.1/33", None).is_err());
        assert!(Ipv4Net::parse("10.0.0/24", None).is_err());
        assert_eq!(
            Ipv4Net::parse("0.0.0.0/0", None).unwrap().network(),
            Ipv4Addr::UNSPECIFIED
        );
    }
}
