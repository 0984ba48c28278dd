//! The Heartbeat vocabulary both families speak — the inventory's validator and renderer on
//! the controller side, the ha.cf/authkeys parsers and the agent on the node side: failback
//! modes, digests, message formats, heartbeat media, addresses with prefixes and Heartbeat's
//! time syntax. Nothing here knows about files or inventories, so every layer may import it and
//! it imports none of them (docs/architecture.md, "layers").

pub mod duration;
pub mod net;

use std::net::Ipv4Addr;

pub use duration::HbDuration;
pub use net::Ipv4Net;

/// `auto_failback` (ha.cf) / `ha_auto_failback` (inventory). `Legacy` is Heartbeat's default;
/// the agent runs it with the same negotiation as `Off` and says so at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoFailback {
    On,
    Off,
    Legacy,
}

impl AutoFailback {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoFailback::On => "on",
            AutoFailback::Off => "off",
            AutoFailback::Legacy => "legacy",
        }
    }
}

/// Digest used by one authkeys entry (a Heartbeat "HBauth" plugin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Unkeyed CRC-32; only for physically private links.
    Crc,
    /// HMAC-MD5.
    Md5,
    /// HMAC-SHA1.
    Sha1,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Crc => "crc",
            AuthMethod::Md5 => "md5",
            AuthMethod::Sha1 => "sha1",
        }
    }
}

/// `msgfmt`: whether messages also carry the classic `auth` field inside the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MsgFormat {
    /// The default: inner `auth` field plus the netstring trailer (two signatures a datagram).
    #[default]
    Classic,
    /// Trailer only.
    Netstring,
}

/// One heartbeat medium.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Medium {
    Ucast {
        iface: String,
        peer: Ipv4Addr,
        port: u16,
    },
    Bcast {
        iface: String,
        port: u16,
    },
    Mcast {
        iface: String,
        group: Ipv4Addr,
        port: u16,
        ttl: u8,
        loopback: bool,
    },
}
