//! Virtual IPs, built in (IPaddr, IPaddr2, bare address): the address is added with a kernel
//! lifetime that the agent keeps refreshing, so an agent that is SIGKILLed cannot leave a stale
//! VIP behind for more than a few seconds; and gratuitous ARP is sent natively over an AF_PACKET
//! socket, every time this node becomes active — also when the address was already there — so
//! switches and clients learn the new owner at once.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::process::Command;

use crate::config::ha::Ipv4Net;

const ETH_P_ARP: u16 = 0x0806;

/// A VIP as configured: what haresources says (`IPaddr2::A.B.C.D/bits/iface/bcast`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipSpec {
    pub address: Ipv4Addr,
    pub prefix: Option<u8>,
    pub interface: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    /// IPaddr: an interface alias label (`eth0:0`), as the classic agent made.
    pub alias: bool,
}

/// A VIP with interface and prefix known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub interface: String,
    pub broadcast: Option<Ipv4Addr>,
    pub alias: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error(
        "VIP {address}: no interface has a subnet containing it; give the interface and prefix in haresources (IPaddr2::{address}/24/eth0)"
    )]
    NoInterface { address: Ipv4Addr },
    #[error("VIP {address}: `{command}` failed: {reason}")]
    Command {
        address: Ipv4Addr,
        command: String,
        reason: String,
    },
    #[error("gratuitous ARP on {interface}: {source}")]
    Arp {
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

async fn ip(args: &[String]) -> Result<String, (String, String)> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| (command.clone(), e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err((
            command,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Every IPv4 address on this host: (interface, address/prefix). `Err` is the `ip` command
/// that failed and why: an empty answer would read as "no such address" and send a VIP
/// looking for an interface that is there.
pub async fn local_addresses() -> Result<Vec<(String, Ipv4Net)>, (String, String)> {
    let show = ["-o".into(), "-4".into(), "addr".into(), "show".into()];
    // A netlink dump that raced an address change (a VIP's lifetime refreshed, an address
    // added elsewhere) fails with "Dump was interrupted and may be inconsistent"; asking again
    // gets a consistent one.
    let mut attempt = ip(&show).await;
    for _ in 0..3 {
        if attempt.is_ok() {
            break;
        }
        attempt = ip(&show).await;
    }
    let text = attempt?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let iface = words.nth(1)?;
            let addr = words.nth(1)?;
            Some((iface.to_string(), Ipv4Net::parse(addr, None).ok()?))
        })
        .collect())
}

impl VipSpec {
    /// Fills interface and prefix from the addresses configured here, as `findif` does: the
    /// interface whose subnet contains the VIP (most specific first).
    pub async fn resolve(&self) -> Result<Vip, VipError> {
        if let (Some(prefix), Some(interface)) = (self.prefix, &self.interface) {
            return Ok(Vip {
                address: self.address,
                prefix,
                interface: interface.clone(),
                broadcast: self.broadcast,
                alias: self.alias,
            });
        }
        let addresses = local_addresses()
            .await
            .map_err(|(command, reason)| VipError::Command {
                address: self.address,
                command,
                reason,
            })?;
        let mut candidates: Vec<(String, Ipv4Net)> = addresses
            .into_iter()
            .filter(|(iface, net)| {
                iface != "lo"
                    && net.addr != self.address
                    && net.contains(self.address)
                    && self.interface.as_deref().is_none_or(|i| i == iface)
            })
            .collect();
        candidates.sort_by_key(|(_, net)| std::cmp::Reverse(net.prefix));
        let (interface, net) = candidates.into_iter().next().ok_or(VipError::NoInterface {
            address: self.address,
        })?;
        Ok(Vip {
            address: self.address,
            prefix: self.prefix.unwrap_or(net.prefix),
            interface,
            broadcast: self.broadcast,
            alias: self.alias,
        })
    }
}

impl Vip {
    fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }

    fn fail(&self, (command, reason): (String, String)) -> VipError {
        VipError::Command {
            address: self.address,
            command,
            reason,
        }
    }

    /// Adds the address, or refreshes its lifetime if present (`ip addr replace` does both).
    pub async fn add_or_refresh(&self, lifetime: Duration) -> Result<(), VipError> {
        let secs = lifetime.as_secs().max(1).to_string();
        let mut args: Vec<String> = vec![
            "addr".into(),
            "replace".into(),
            self.cidr(),
            "dev".into(),
            self.interface.clone(),
        ];
        if let Some(b) = self.broadcast {
            args.extend(["broadcast".into(), b.to_string()]);
        }
        if self.alias {
            args.extend(["label".into(), format!("{}:hd", self.interface)]);
        }
        args.extend([
            "valid_lft".into(),
            secs.clone(),
            "preferred_lft".into(),
            secs,
        ]);
        ip(&args).await.map(|_| ()).map_err(|e| self.fail(e))
    }

    /// Removes the address; absent already is fine.
    pub async fn remove(&self) -> Result<(), VipError> {
        match ip(&[
            "addr".into(),
            "del".into(),
            self.cidr(),
            "dev".into(),
            self.interface.clone(),
        ])
        .await
        {
            Ok(_) => Ok(()),
            Err((_, reason))
                if [
                    "Cannot assign requested address",
                    "Address not found",
                    "does not exist",
                ]
                .iter()
                .any(|m| reason.contains(m)) =>
            {
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Whether this address is on its interface; `false` also when `ip` could not say.
    pub async fn is_present(&self) -> bool {
        local_addresses().await.is_ok_and(|addresses| {
            addresses
                .iter()
                .any(|(iface, net)| iface == &self.interface && net.addr == self.address)
        })
    }

    /// Sends `count` gratuitous ARP request/reply pairs `interval` apart.
    pub async fn announce(&self, count: u32, interval: Duration) -> Result<(), VipError> {
        let arp_error = |source| VipError::Arp {
            interface: self.interface.clone(),
            source,
        };
        let mac = interface_mac(&self.interface).map_err(arp_error)?;
        let index = nix::net::if_::if_nametoindex(self.interface.as_str())
            .map_err(|e| arp_error(std::io::Error::from(e)))?;
        let socket = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
        )
        .map_err(arp_error)?;
        let dest = link_broadcast_address(index).map_err(arp_error)?;
        for round in 0..count {
            for reply in [false, true] {
                socket
                    .send_to(&garp_frame(mac, self.address, reply), &dest)
                    .map_err(arp_error)?;
            }
            if round + 1 < count {
                tokio::time::sleep(interval).await;
            }
        }
        Ok(())
    }
}

fn interface_mac(interface: &str) -> std::io::Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))?;
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("MAC address `{}`", text.trim()),
        ));
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    }
    Ok(mac)
}

/// The link-layer broadcast destination on one interface, as a `sockaddr_ll`.
fn link_broadcast_address(ifindex: u32) -> std::io::Result<SockAddr> {
    let index = i32::try_from(ifindex)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: we fill a zeroed sockaddr_storage with a sockaddr_ll, which fits inside it, and
    // report exactly its length.
    let ((), address) = unsafe {
        SockAddr::try_init(|storage, len| {
            let mut ll: libc::sockaddr_ll = std::mem::zeroed();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = ETH_P_ARP.to_be();
            ll.sll_ifindex = index;
            ll.sll_halen = 6;
            ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
            storage.cast::<libc::sockaddr_ll>().write(ll);
            *len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })?
    };
    Ok(address)
}

/// A gratuitous ARP frame: Ethernet broadcast, sender and target IP both the VIP, sender MAC
/// ours — a request, or a reply (send_arp alternates both, as some switches heed only one).
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr, reply: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&(if reply { 2u16 } else { 1u16 }).to_be_bytes());
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&if reply { mac } else { [0; 6] });
    f.extend_from_slice(&vip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout() {
        let mac = [2, 0, 0, 0, 0, 1];
        let f = garp_frame(mac, Ipv4Addr::new(10, 0, 0, 100), false);
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[28..32], &[10, 0, 0, 100], "sender IP = VIP");
        assert_eq!(&f[38..42], &[10, 0, 0, 100], "target IP = VIP");
        assert_eq!(
            &garp_frame(mac, Ipv4Addr::new(10, 0, 0, 100), true)[20..22],
            &[0, 2],
            "reply"
        );
    }

    /// A veth pair made for the test (deleted on drop): real addresses, real ARP frames.
    struct Veth(String);

    impl Veth {
        fn new(tag: &str) -> (Veth, String) {
            let a = format!("hd{tag}{}", std::process::id() % 100_000);
            let b = format!("{a}p");
            let run = |args: &[&str]| {
                assert!(
                    std::process::Command::new("ip")
                        .args(args)
                        .status()
                        .unwrap()
                        .success(),
                    "ip {args:?}"
                )
            };
            run(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
            run(&["link", "set", &a, "up"]);
            run(&["link", "set", &b, "up"]);
            (Veth(a), b)
        }
    }

    impl Drop for Veth {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.0])
                .status();
        }
    }

    #[tokio::test]
    async fn vip_lifecycle_and_gratuitous_arp_on_a_real_link() {
        let (veth, peer) = Veth::new("v");
        let iface = veth.0.clone();
        let base = Ipv4Net::parse("198.18.77.1/24", None).unwrap();
        assert!(
            std::process::Command::new("ip")
                .args(["addr", "add", &base.to_string(), "dev", &iface])
                .status()
                .unwrap()
                .success()
        );
        // Interface and prefix come from the routing table when haresources omits them.
        let spec = VipSpec {
            address: Ipv4Addr::new(198, 18, 77, 100),
            prefix: None,
            interface: None,
            broadcast: None,
            alias: false,
        };
        let vip = spec.resolve().await.unwrap();
        assert_eq!((vip.interface.as_str(), vip.prefix), (iface.as_str(), 24));

        vip.add_or_refresh(Duration::from_secs(30)).await.unwrap();
        assert!(vip.is_present().await);
        let show = std::process::Command::new("ip")
            .args(["-o", "-4", "addr", "show", "dev", &iface])
            .output()
            .unwrap();
        let show = String::from_utf8_lossy(&show.stdout).into_owned();
        assert!(
            show.contains("198.18.77.100/24") && show.contains("valid_lft 30sec"),
            "{show}"
        );
        vip.add_or_refresh(Duration::from_secs(30)).await.unwrap();

        // Capture on the peer end while announcing.
        let capture = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
        )
        .unwrap();
        capture
            .bind(
                &link_broadcast_address(nix::net::if_::if_nametoindex(peer.as_str()).unwrap())
                    .unwrap(),
            )
            .unwrap();
        capture
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        vip.announce(2, Duration::from_millis(10)).await.unwrap();
        let mac = interface_mac(&iface).unwrap();
        let mut seen = Vec::new();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 128];
        while seen.len() < 4 {
            let n = capture
                .recv(&mut buf)
                .expect("ARP frames arrive on the peer");
            // SAFETY: recv initialised the first n bytes.
            let frame: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            if frame.len() >= 42 && frame[28..32] == [198, 18, 77, 100] {
                seen.push(frame);
            }
        }
        assert!(seen.iter().all(|f| f[6..12] == mac && f[22..28] == mac));
        assert_eq!(
            seen.iter().filter(|f| f[21] == 1).count(),
            2,
            "two requests"
        );
        assert_eq!(seen.iter().filter(|f| f[21] == 2).count(), 2, "two replies");

        vip.remove().await.unwrap();
        assert!(!vip.is_present().await);
        vip.remove().await.unwrap();
    }

    #[tokio::test]
    async fn an_unrefreshed_vip_expires_by_itself() {
        let (veth, _peer) = Veth::new("e");
        let vip = Vip {
            address: Ipv4Addr::new(198, 18, 78, 100),
            prefix: 24,
            interface: veth.0.clone(),
            broadcast: None,
            alias: false,
        };
        vip.add_or_refresh(Duration::from_secs(1)).await.unwrap();
        assert!(vip.is_present().await);
        // The kernel removes an expired address; its sweep is not instant, so allow a margin.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while vip.is_present().await {
            assert!(
                std::time::Instant::now() < deadline,
                "the VIP outlived its lifetime"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
