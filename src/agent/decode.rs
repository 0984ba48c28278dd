//! The library half of `hadeploy-agent decode --authkeys FILE [PCAP|-]`: turns a capture (or
//! one raw datagram) into decoded messages with the verdict of each signature, and renders
//! them for people. A datagram that does not decode is reported in place, so one bad packet
//! never hides the rest of a capture.

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Duration;

use crate::agent::auth::{self, Verification};
use crate::agent::pcap::{self, PcapError};
use crate::agent::wire::{self, Datagram, Encoding, WireError};
use crate::config::heartbeat::authkeys::AuthKeys;

/// Where a datagram came from, when it came from a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub timestamp: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

/// A datagram that decoded, with both signature verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub datagram: Datagram,
    /// What a 3.0.6 receiver holding these keys decides (trailer for netstring, inner field
    /// for classic).
    pub verdict: Verification,
    /// The inner `auth` field checked by the classic rule, when the message has one. For
    /// netstring datagrams receivers ignore it; shown because the real daemon writes it.
    pub inner: Option<Verification>,
}

/// One UDP payload and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedDatagram {
    pub origin: Option<Origin>,
    pub len: usize,
    pub result: Result<Decoded, WireError>,
}

/// Everything `decode` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedCapture {
    pub datagrams: Vec<DecodedDatagram>,
    /// From the pcap reader: packets that could not be used (see `pcap::Capture`).
    pub fragments: usize,
    pub truncated: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("reading the capture: {0}")]
    Pcap(#[from] PcapError),
}

/// Decodes and verifies `bytes`: a pcap file if it starts with a pcap magic number (every
/// IPv4 UDP datagram in it), otherwise one raw datagram.
pub fn decode_capture(bytes: &[u8], keys: &AuthKeys) -> Result<DecodedCapture, DecodeError> {
    if !pcap::is_pcap(bytes) {
        return Ok(DecodedCapture {
            datagrams: vec![decode_one(None, bytes, keys)],
            ..DecodedCapture::default()
        });
    }
    let capture = pcap::read_udp(bytes)?;
    Ok(DecodedCapture {
        datagrams: capture
            .datagrams
            .iter()
            .map(|d| {
                let origin = Origin {
                    timestamp: d.timestamp,
                    src: d.src,
                    dst: d.dst,
                };
                decode_one(Some(origin), &d.payload, keys)
            })
            .collect(),
        fragments: capture.fragments,
        truncated: capture.truncated,
    })
}

/// Decodes and verifies one UDP payload.
pub fn decode_one(origin: Option<Origin>, payload: &[u8], keys: &AuthKeys) -> DecodedDatagram {
    let result = wire::decode(payload).map(|datagram| Decoded {
        verdict: auth::verify(&datagram, keys),
        inner: datagram
            .message
            .get("auth")
            .map(|_| auth::verify_inner(&datagram.message, keys)),
        datagram,
    });
    DecodedDatagram {
        origin,
        len: payload.len(),
        result,
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Ok { index } => write!(f, "ok (key {index})"),
            Verification::BadSignature { index } => write!(f, "BAD SIGNATURE (key {index})"),
            Verification::UnknownKeyIndex { index } => {
                write!(f, "UNKNOWN KEY INDEX {index} (not in authkeys)")
            }
            Verification::Missing => write!(f, "MISSING"),
            Verification::Malformed => write!(f, "MALFORMED"),
        }
    }
}

impl fmt::Display for DecodedDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.origin {
            write!(
                f,
                "{}.{:06} {} -> {} ",
                o.timestamp.as_secs(),
                o.timestamp.subsec_micros(),
                o.src,
                o.dst
            )?;
        }
        match &self.result {
            Err(e) => writeln!(f, "{} bytes: NOT A HEARTBEAT MESSAGE: {e}", self.len),
            Ok(d) => {
                let form = match d.datagram.encoding {
                    Encoding::Netstring => "netstring",
                    Encoding::Classic => "classic",
                };
                writeln!(f, "{} bytes, {form}", self.len)?;
                for line in d.datagram.message.to_string().lines() {
                    writeln!(f, "  {line}")?;
                }
                match d.datagram.encoding {
                    Encoding::Netstring => {
                        if let Some(trailer) = &d.datagram.trailer {
                            writeln!(f, "  trailer = {}", wire::escape(trailer))?;
                        }
                        writeln!(
                            f,
                            "  signature (trailer, checked by receivers): {}",
                            d.verdict
                        )?;
                        if let Some(inner) = d.inner {
                            writeln!(f, "  signature (auth field, ignored by receivers): {inner}")?;
                        }
                    }
                    Encoding::Classic => writeln!(
                        f,
                        "  signature (auth field, checked by receivers): {}",
                        d.verdict
                    )?,
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for DecodedCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, datagram) in self.datagrams.iter().enumerate() {
            write!(f, "#{n} {datagram}")?;
        }
        let verified = self
            .datagrams
            .iter()
            .filter(|d| d.result.as_ref().is_ok_and(|d| d.verdict.is_ok()))
            .count();
        let undecodable = self.datagrams.iter().filter(|d| d.result.is_err()).count();
        write!(
            f,
            "{} datagrams: {verified} verified, {} failed verification, {undecodable} not heartbeat",
            self.datagrams.len(),
            self.datagrams.len() - verified - undecodable
        )?;
        if self.fragments + self.truncated > 0 {
            write!(
                f,
                "; skipped {} IP fragments, {} truncated packets",
                self.fragments, self.truncated
            )?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::auth::sign;
    use crate::agent::wire::{Message, Value};
    use crate::config::ha::{AuthMethod, MsgFormat};
    use crate::config::heartbeat::authkeys::AuthKey;

    fn keys() -> AuthKeys {
        let key = AuthKey {
            index: 1,
            method: AuthMethod::Sha1,
            secret: "testkey".into(),
        };
        AuthKeys {
            active: 1,
            keys: [(1, key)].into_iter().collect(),
        }
    }

    #[test]
    fn raw_datagram_is_decoded_and_rendered() {
        let mut m = Message::new();
        m.push_str("t", "status");
        m.push("srcuuid", Value::Binary(vec![0xab; 16]));
        let bytes = sign(&m, &keys(), MsgFormat::Classic).unwrap();
        let out = decode_capture(&bytes, &keys()).unwrap();
        assert_eq!(out.datagrams.len(), 1);
        let text = out.to_string();
        assert!(text.starts_with("#0 "), "{text}");
        assert!(text.contains("\n  t = status\n"), "{text}");
        assert!(
            text.contains("  srcuuid = (binary, 16 bytes) abab"),
            "{text}"
        );
        assert!(
            text.contains("signature (trailer, checked by receivers): ok (key 1)"),
            "{text}"
        );
        assert!(
            text.contains("signature (auth field, ignored by receivers): ok (key 1)"),
            "{text}"
        );
        assert!(
            text.ends_with("1 datagrams: 1 verified, 0 failed verification, 0 not heartbeat\n")
        );
    }

    #[test]
    fn garbage_is_reported_not_fatal() {
        let out = decode_capture(b"GET / HTTP/1.0\r\n", &keys()).unwrap();
        assert!(out.to_string().contains("NOT A HEARTBEAT MESSAGE"));
        assert!(decode_capture(b"\xd4\xc3\xb2\xa1\x02", &keys()).is_err());
    }
}
