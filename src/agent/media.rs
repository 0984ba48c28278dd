//! The heartbeat media (docs/protocol.md §1.1): UDP over ucast, bcast and mcast, opened with the same
//! socket options as Heartbeat 3.0.6 — a receive socket bound to the port and pinned to the
//! interface (SO_BINDTODEVICE), and per-medium send sockets with an ephemeral source port and
//! IP_TOS low-delay. Every outgoing datagram goes out on every medium. Inbound datagrams are
//! handed over through a bounded queue, so a flood can cost dropped packets, never memory.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// IPTOS_LOWDELAY, as Heartbeat sets on its send sockets.
const TOS_LOW_DELAY: u32 = 0x10;
/// Largest datagram we read; anything bigger is truncated by the kernel and then fails to
/// decode (Heartbeat's own limit is far below this).
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// Inbound datagrams queued for the protocol loop before new ones are dropped.
const INBOUND_QUEUE: usize = 512;

/// One ha.cf media line (the config model is what the sockets need).
pub use crate::config::ha::Medium;

impl Medium {
    pub fn iface(&self) -> &str {
        match self {
            Medium::Ucast { iface, .. }
            | Medium::Bcast { iface, .. }
            | Medium::Mcast { iface, .. } => iface,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Medium::Ucast { port, .. }
            | Medium::Bcast { port, .. }
            | Medium::Mcast { port, .. } => *port,
        }
    }
}

/// A datagram as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub data: Vec<u8>,
    /// The interface it arrived on: Heartbeat's link name.
    pub link: String,
    pub from: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("interface {iface}: {reason}")]
    Interface { iface: String, reason: String },
    #[error("{what} on {iface} port {port}: {source}")]
    Socket {
        what: &'static str,
        iface: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Counters the status command reports.
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub received: AtomicU64,
    /// Dropped because the protocol loop was behind (a flood).
    pub dropped: AtomicU64,
}

struct Sender {
    socket: UdpSocket,
    dest: SocketAddrV4,
    iface: String,
}

/// The open media: send to all, receive from the queue returned by `open`.
pub struct Media {
    specs: Vec<Medium>,
    senders: Vec<Sender>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
    /// Each interface's index when its sockets were opened: SO_BINDTODEVICE pins a socket to
    /// that index, so an interface that is re-created (a hot-plugged NIC, a container's
    /// network reconnected) needs new sockets.
    indexes: BTreeMap<String, u32>,
    tx: mpsc::Sender<Inbound>,
    pub counters: Arc<MediaCounters>,
}

impl Drop for Media {
    fn drop(&mut self) {
        for task in &self.receivers {
            task.abort();
        }
    }
}

/// An interface's index and first IPv4 address and broadcast address.
struct IfaceInfo {
    index: NonZeroU32,
    addr: Option<Ipv4Addr>,
    broadcast: Option<Ipv4Addr>,
}

fn iface_info(name: &str) -> Result<IfaceInfo, MediaError> {
    let err = |reason: String| MediaError::Interface {
        iface: name.to_string(),
        reason,
    };
    let index =
        nix::net::if_::if_nametoindex(name).map_err(|e| err(format!("no such interface ({e})")))?;
    let index = NonZeroU32::new(index).ok_or_else(|| err("interface index 0".into()))?;
    let mut addr = None;
    let mut broadcast = None;
    for ifa in nix::ifaddrs::getifaddrs().map_err(|e| err(e.to_string()))? {
        if ifa.interface_name != name {
            continue;
        }
        if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            addr.get_or_insert(sin.ip());
            if let Some(b) = ifa.broadcast.as_ref().and_then(|a| a.as_sockaddr_in()) {
                broadcast.get_or_insert(b.ip());
            }
        }
    }
    Ok(IfaceInfo {
        index,
        addr,
        broadcast,
    })
}

fn udp_socket<'a>(
    iface: &'a str,
    port: u16,
    what: &'static str,
) -> impl Fn(std::io::Error) -> MediaError + 'a {
    move |source| MediaError::Socket {
        what,
        iface: iface.to_string(),
        port,
        source,
    }
}

impl Media {
    /// Opens every medium. Returns the media (for sending) and the inbound queue.
    pub fn open(media: &[Medium]) -> Result<(Media, mpsc::Receiver<Inbound>), MediaError> {
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let mut opened = Media {
            specs: media.to_vec(),
            senders: Vec::new(),
            receivers: Vec::new(),
            indexes: BTreeMap::new(),
            tx,
            counters: Arc::new(MediaCounters::default()),
        };
        opened.build()?;
        Ok((opened, rx))
    }

    /// Reopens the sockets when an interface was re-created since they were opened. Returns
    /// the interfaces that changed; an interface that is gone right now keeps the old sockets
    /// (they will fail until it returns).
    pub fn reopen_if_changed(&mut self) -> Result<Vec<String>, MediaError> {
        let mut changed = Vec::new();
        for (iface, index) in &self.indexes {
            match nix::net::if_::if_nametoindex(iface.as_str()) {
                Ok(now) if now != *index => changed.push(iface.clone()),
                _ => {}
            }
        }
        if !changed.is_empty() {
            self.build()?;
        }
        Ok(changed)
    }

    fn build(&mut self) -> Result<(), MediaError> {
        // One receive socket per (interface, port): several ucast lines share it, and a second
        // socket with SO_REUSEPORT would split the traffic between them.
        let mut receive: BTreeMap<(String, u16), Vec<Ipv4Addr>> = BTreeMap::new();
        let mut senders = Vec::new();
        let mut indexes = BTreeMap::new();
        for medium in &self.specs {
            let iface = medium.iface();
            let port = medium.port();
            let info = iface_info(iface)?;
            indexes.insert(iface.to_string(), info.index.get());
            let groups = receive.entry((iface.to_string(), port)).or_default();
            let fail = udp_socket(iface, port, "send socket");
            let socket =
                Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(&fail)?;
            socket.bind_device(Some(iface.as_bytes())).map_err(&fail)?;
            socket.set_tos_v4(TOS_LOW_DELAY).map_err(&fail)?;
            let dest = match medium {
                Medium::Ucast { peer, .. } => SocketAddrV4::new(*peer, port),
                Medium::Bcast { .. } => {
                    socket.set_broadcast(true).map_err(&fail)?;
                    let b = info.broadcast.ok_or_else(|| MediaError::Interface {
                        iface: iface.to_string(),
                        reason: "has no IPv4 broadcast address (bcast needs one)".into(),
                    })?;
                    SocketAddrV4::new(b, port)
                }
                Medium::Mcast {
                    group,
                    ttl,
                    loopback,
                    ..
                } => {
                    socket
                        .set_multicast_if_v4(&info.addr.unwrap_or(Ipv4Addr::UNSPECIFIED))
                        .map_err(&fail)?;
                    socket
                        .set_multicast_ttl_v4(u32::from(*ttl))
                        .map_err(&fail)?;
                    socket.set_multicast_loop_v4(*loopback).map_err(&fail)?;
                    groups.push(*group);
                    SocketAddrV4::new(*group, port)
                }
            };
            socket.set_nonblocking(true).map_err(&fail)?;
            let socket = UdpSocket::from_std(socket.into()).map_err(&fail)?;
            senders.push(Sender {
                socket,
                dest,
                iface: iface.to_string(),
            });
        }
        // Old receive sockets go first: the new ones bind the same port.
        for task in self.receivers.drain(..) {
            task.abort();
        }
        let mut receivers = Vec::new();
        for ((iface, port), groups) in receive {
            let socket = Self::receive_socket(&iface, port, &groups)?;
            receivers.push(tokio::spawn(receive_loop(
                socket,
                iface,
                self.tx.clone(),
                self.counters.clone(),
            )));
        }
        self.senders = senders;
        self.receivers = receivers;
        self.indexes = indexes;
        Ok(())
    }

    fn receive_socket(
        iface: &str,
        port: u16,
        groups: &[Ipv4Addr],
    ) -> Result<UdpSocket, MediaError> {
        let fail = udp_socket(iface, port, "receive socket");
        let info = iface_info(iface)?;
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(&fail)?;
        socket.set_reuse_address(true).map_err(&fail)?;
        socket.bind_device(Some(iface.as_bytes())).map_err(&fail)?;
        socket.set_broadcast(true).map_err(&fail)?;
        socket
            .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())
            .map_err(&fail)?;
        for group in groups {
            socket
                .join_multicast_v4_n(group, &InterfaceIndexOrAddress::Index(info.index.get()))
                .map_err(&fail)?;
        }
        socket.set_nonblocking(true).map_err(&fail)?;
        UdpSocket::from_std(socket.into()).map_err(&fail)
    }

    /// Sends one datagram on every medium. A medium that fails does not stop the others: a
    /// dead NIC must not silence the healthy link.
    pub async fn send_all(&self, datagram: &[u8]) -> usize {
        let mut delivered = 0;
        for sender in &self.senders {
            match sender.socket.send_to(datagram, sender.dest).await {
                Ok(_) => {
                    delivered += 1;
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        delivered
    }

    /// The media's links (interface names), in configuration order without repeats.
    pub fn links(&self) -> Vec<String> {
        let mut links: Vec<String> = Vec::new();
        for s in &self.senders {
            if !links.contains(&s.iface) {
                links.push(s.iface.clone());
            }
        }
        links
    }
}

async fn receive_loop(
    socket: UdpSocket,
    link: String,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<MediaCounters>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            // Transient errors (ICMP port unreachable reflected on a UDP socket): keep reading,
            // but a vanished interface fails every call — never spin on it.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let inbound = Inbound {
            data: buf[..len].to_vec(),
            link: link.clone(),
            from,
        };
        match tx.try_send(inbound) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Real sockets on the loopback interface: what goes out on a ucast medium comes back in,
    /// tagged with its link. Needs root (SO_BINDTODEVICE), as the agent itself does.
    #[tokio::test]
    async fn ucast_on_loopback_round_trip() {
        let port = free_port();
        let (media, mut rx) = Media::open(&[Medium::Ucast {
            iface: "lo".into(),
            peer: Ipv4Addr::LOCALHOST,
            port,
        }])
        .unwrap();
        assert_eq!(media.links(), ["lo"]);
        assert_eq!(media.send_all(b"###\nhello\n%%%\n").await, 1);
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.data, b"###\nhello\n%%%\n");
        assert_eq!(got.link, "lo");
        assert_ne!(
            got.from.port(),
            port,
            "the send socket uses an ephemeral source port, like Heartbeat"
        );
    }

    #[tokio::test]
    async fn multicast_with_loopback_delivers_to_ourselves() {
        let port = free_port();
        let medium = Medium::Mcast {
            iface: "lo".into(),
            group: Ipv4Addr::new(239, 255, 77, 1),
            port,
            ttl: 1,
            loopback: true,
        };
        let (media, mut rx) = Media::open(&[medium]).unwrap();
        media.send_all(b"mcast").await;
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("multicast looped back")
            .unwrap();
        assert_eq!(got.data, b"mcast");
    }

    #[tokio::test]
    async fn unknown_interface_is_a_clear_error() {
        let err = Media::open(&[Medium::Bcast {
            iface: "nosuchif0".into(),
            port: 694,
        }])
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with("interface nosuchif0: no such interface"),
            "{err}"
        );
    }
}
