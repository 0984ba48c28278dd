//! A minimal reader of classic libpcap files (either byte order, micro- or nanosecond
//! timestamps) that pulls out IPv4 UDP datagrams with their addresses and capture times, so
//! operators can decode heartbeat traffic captured with tcpdump without other tools. Link
//! types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked SLL and SLL2, and raw IPv4. A cut
//! file is an error; packets it cannot use (fragments, snaplen-truncated) are counted, not
//! guessed at.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_LINUX_SLL2: u32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    #[error("not a pcap file (unknown magic number)")]
    NotPcap,
    #[error("pcap file header is cut short")]
    ShortHeader,
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    #[error("packet {index} at byte {offset} is cut short")]
    Truncated { index: usize, offset: usize },
}

/// One UDP datagram as captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpDatagram {
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// Every IPv4 UDP datagram of a capture, plus what had to be passed over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    pub datagrams: Vec<UdpDatagram>,
    /// UDP fragments: reassembly is out of scope (heartbeat v1 messages are a few hundred bytes).
    pub fragments: usize,
    /// UDP datagrams whose bytes were cut by the capture's snaplen.
    pub truncated: usize,
}

/// Whether `bytes` starts like a classic pcap file.
pub fn is_pcap(bytes: &[u8]) -> bool {
    header_format(bytes).is_some()
}

/// (big-endian, nanosecond timestamps)
fn header_format(bytes: &[u8]) -> Option<(bool, bool)> {
    let magic: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    [false, true].into_iter().find_map(|big| {
        let value = if big {
            u32::from_be_bytes(magic)
        } else {
            u32::from_le_bytes(magic)
        };
        match value {
            MAGIC_MICROS => Some((big, false)),
            MAGIC_NANOS => Some((big, true)),
            _ => None,
        }
    })
}

/// Reads every IPv4 UDP datagram from a pcap file.
pub fn read_udp(bytes: &[u8]) -> Result<Capture, PcapError> {
    let (big, nanos) = header_format(bytes).ok_or(PcapError::NotPcap)?;
    if bytes.len() < FILE_HEADER {
        return Err(PcapError::ShortHeader);
    }
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().expect("four bytes");
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // The upper bits of the link-type word carry FCS information, not the type.
    let linktype = u32_at(20) & 0xffff;
    if !matches!(
        linktype,
        LINKTYPE_ETHERNET | LINKTYPE_RAW | LINKTYPE_LINUX_SLL | LINKTYPE_IPV4 | LINKTYPE_LINUX_SLL2
    ) {
        return Err(PcapError::UnsupportedLinkType(linktype));
    }
    let mut capture = Capture::default();
    let mut offset = FILE_HEADER;
    let mut index = 0;
    while offset < bytes.len() {
        let truncated = PcapError::Truncated { index, offset };
        if bytes.len() - offset < RECORD_HEADER {
            return Err(truncated);
        }
        let seconds = u32_at(offset);
        let fraction = u32_at(offset + 4);
        let caplen = u32_at(offset + 8) as usize;
        let data_start = offset + RECORD_HEADER;
        // Checked against what is left before slicing, so a lying caplen costs nothing.
        if caplen > bytes.len() - data_start {
            return Err(truncated);
        }
        let frame = &bytes[data_start..data_start + caplen];
        let nanos_part = if nanos {
            fraction
        } else {
            fraction.saturating_mul(1000)
        };
        // Duration::new carries nanoseconds above one second into the seconds.
        let timestamp = Duration::new(u64::from(seconds), nanos_part);
        if let Some(ip) = ipv4_of(linktype, frame) {
            match udp_of(ip) {
                Udp::Datagram { src, dst, payload } => capture.datagrams.push(UdpDatagram {
                    timestamp,
                    src,
                    dst,
                    payload: payload.to_vec(),
                }),
                Udp::Fragment => capture.fragments += 1,
                Udp::Cut => capture.truncated += 1,
                Udp::Other => {}
            }
        }
        offset = data_start + caplen;
        index += 1;
    }
    Ok(capture)
}

/// The IPv4 packet inside a link-layer frame, if it carries one.
fn ipv4_of(linktype: u32, frame: &[u8]) -> Option<&[u8]> {
    let ethertype = |at: usize| Some(u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
    match linktype {
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut kind = ethertype(at)?;
            // At most two VLAN tags (802.1ad outer, 802.1Q inner).
            for _ in 0..2 {
                if kind == ETHERTYPE_VLAN || kind == ETHERTYPE_QINQ {
                    at += 4;
                    kind = ethertype(at)?;
                }
            }
            (kind == ETHERTYPE_IPV4)
                .then(|| frame.get(at + 2..))
                .flatten()
        }
        LINKTYPE_LINUX_SLL => (ethertype(14)? == ETHERTYPE_IPV4)
            .then(|| frame.get(16..))
            .flatten(),
        LINKTYPE_LINUX_SLL2 => (ethertype(0)? == ETHERTYPE_IPV4)
            .then(|| frame.get(20..))
            .flatten(),
        // Raw IP may hold IPv6 too; the version nibble tells.
        _ => (frame.first()? >> 4 == 4).then_some(frame),
    }
}

enum Udp<'a> {
    Datagram {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &'a [u8],
    },
    Fragment,
    Cut,
    Other,
}

fn udp_of(ip: &[u8]) -> Udp<'_> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != IPPROTO_UDP {
        return Udp::Other;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if header < 20 || total < header {
        return Udp::Other;
    }
    let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
    // More-fragments set or a non-zero offset: only part of a datagram.
    if flags_offset & 0x3fff != 0 {
        return Udp::Fragment;
    }
    if ip.len() < total {
        return Udp::Cut;
    }
    let udp = &ip[header..total];
    if udp.len() < 8 {
        return Udp::Other;
    }
    let length = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if length < 8 || length > udp.len() {
        return Udp::Other;
    }
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
    Udp::Datagram {
        src: SocketAddrV4::new(addr(12), port(0)),
        dst: SocketAddrV4::new(addr(16), port(2)),
        payload: &udp[8..length],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_udp(payload: &[u8], flags_offset: u16) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&flags_offset.to_be_bytes());
        ip.extend_from_slice(&[64, IPPROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        ip.extend_from_slice(&33290u16.to_be_bytes());
        ip.extend_from_slice(&694u16.to_be_bytes());
        ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(payload);
        ip
    }

    fn file(big: bool, nanos: bool, linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = w32(if nanos { MAGIC_NANOS } else { MAGIC_MICROS }).to_vec();
        out.extend_from_slice(&w16(2));
        out.extend_from_slice(&w16(4));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w32(65535));
        out.extend_from_slice(&w32(linktype));
        for frame in frames {
            out.extend_from_slice(&w32(1_700_000_000));
            out.extend_from_slice(&w32(500));
            out.extend_from_slice(&w32(frame.len() as u32));
            out.extend_from_slice(&w32(frame.len() as u32));
            out.extend_from_slice(frame);
        }
        out
    }

    fn framed(linktype: u32, ip: &[u8]) -> Vec<u8> {
        let mut frame = match linktype {
            LINKTYPE_ETHERNET => {
                let mut f = vec![0xff; 12];
                f.extend_from_slice(&[0x81, 0x00, 0, 7, 0x08, 0x00]);
                f
            }
            LINKTYPE_LINUX_SLL => {
                let mut f = vec![0; 14];
                f.extend_from_slice(&[0x08, 0x00]);
                f
            }
            LINKTYPE_LINUX_SLL2 => {
                let mut f = vec![0x08, 0x00];
                f.extend_from_slice(&[0; 18]);
                f
            }
            _ => Vec::new(),
        };
        frame.extend_from_slice(ip);
        frame
    }

    #[test]
    fn every_link_type_and_byte_order() {
        for linktype in [
            LINKTYPE_ETHERNET,
            LINKTYPE_LINUX_SLL,
            LINKTYPE_LINUX_SLL2,
            LINKTYPE_RAW,
            LINKTYPE_IPV4,
        ] {
            for (big, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
                let bytes = file(
                    big,
                    nanos,
                    linktype,
                    &[framed(linktype, &ipv4_udp(b"hi", 0))],
                );
                assert!(is_pcap(&bytes));
                let capture = read_udp(&bytes).unwrap();
                assert_eq!(capture.datagrams.len(), 1, "linktype {linktype} big {big}");
                let d = &capture.datagrams[0];
                assert_eq!(d.payload, b"hi");
                assert_eq!(d.src, "10.0.0.1:33290".parse().unwrap());
                assert_eq!(d.dst, "10.0.0.2:694".parse().unwrap());
                let micros = if nanos { 0 } else { 500 };
                assert_eq!(
                    d.timestamp.subsec_nanos(),
                    if nanos { 500 } else { micros * 1000 }
                );
            }
        }
    }

    #[test]
    fn fragments_and_cut_packets_are_counted() {
        let whole = ipv4_udp(b"hello", 0);
        let fragment = ipv4_udp(b"hello", 0x2000);
        let mut cut = whole.clone();
        cut.truncate(whole.len() - 2);
        let bytes = file(false, false, LINKTYPE_RAW, &[whole, fragment, cut]);
        let capture = read_udp(&bytes).unwrap();
        assert_eq!(
            (
                capture.datagrams.len(),
                capture.fragments,
                capture.truncated
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        assert_eq!(read_udp(b"nope"), Err(PcapError::NotPcap));
        let bytes = file(false, false, LINKTYPE_RAW, &[ipv4_udp(b"x", 0)]);
        assert_eq!(read_udp(&bytes[..10]), Err(PcapError::ShortHeader));
        for cut in [FILE_HEADER + 3, bytes.len() - 1] {
            assert_eq!(
                read_udp(&bytes[..cut]),
                Err(PcapError::Truncated {
                    index: 0,
                    offset: FILE_HEADER
                })
            );
        }
        let mut other = bytes.clone();
        other[20] = 9;
        assert_eq!(read_udp(&other), Err(PcapError::UnsupportedLinkType(9)));
        // Every prefix of a good file is either read or refused, never a panic.
        for end in 0..bytes.len() {
            let _ = read_udp(&bytes[..end]);
        }
    }
}
