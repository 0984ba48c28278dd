//! The VIPs: each written as `A.B.C.D/bits` or as a mapping with interface, kind and broadcast,
//! and checked against the nodes — inside their service subnet, not the subnet's network or
//! broadcast address, not listed twice, and never a node's own fixed address.

use std::net::Ipv4Addr;

use crate::config::ha::Ipv4Net;
use crate::config::inventory::cluster::keys::VIP_FIELDS;
use crate::config::inventory::cluster::{ClusterNode, Vip, VipKind};
use crate::config::inventory::diag::{Diagnostic, Origin, did_you_mean};
use crate::config::inventory::yaml::Value;

use super::media::valid_interface;
use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    pub(super) fn vips(&mut self, c: &CVars, nodes: &[ClusterNode]) -> Vec<Vip> {
        let Some(var) = c.get("ha_vips").cloned() else {
            return Vec::new();
        };
        let Value::Seq(items) = &var.node.value else {
            self.type_error(
                &var,
                "ha_vips",
                "a list of addresses",
                var.node.value.kind(),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.invalid(
                Some(&var),
                "ha_vips",
                "the list is empty",
                "list at least one VIP, e.g. `[192.168.1.100/24]`",
            );
        }
        let file = var.origin.file.clone();
        let mut vips = Vec::new();
        for item in items {
            let origin = Origin::new(&file, item.pos);
            let (address, fields) = match &item.value {
                Value::Str(s) => (s.clone(), Vec::new()),
                Value::Map(entries) => {
                    let mut address = None;
                    let mut fields = Vec::new();
                    for (k, v) in entries {
                        let key = k.scalar_text().unwrap_or_default();
                        match key.as_str() {
                            "address" => address = v.scalar_text(),
                            "interface" | "kind" | "broadcast" => fields.push((
                                key,
                                v.scalar_text().unwrap_or_default(),
                                Origin::new(&file, v.pos),
                            )),
                            other => {
                                let mut d = Diagnostic::error(
                                    Origin::new(&file, k.pos),
                                    Some(other),
                                    "unknown VIP field; a VIP has address, interface, kind and broadcast",
                                );
                                if let Some(s) = did_you_mean(other, VIP_FIELDS.iter().copied()) {
                                    d = d.hint(format!("did you mean `{s}`?"));
                                }
                                self.error(d);
                            }
                        }
                    }
                    let Some(address) = address else {
                        self.error(
                            Diagnostic::error(
                                origin,
                                Some("ha_vips"),
                                "a VIP mapping needs `address`",
                            )
                            .hint("e.g. `{address: 192.168.1.100/24, interface: eth0}`"),
                        );
                        continue;
                    };
                    (address, fields)
                }
                other => {
                    self.error(Diagnostic::error(
                        origin,
                        Some("ha_vips"),
                        format!("expected an address or a mapping, found {}", other.kind()),
                    ));
                    continue;
                }
            };
            let net = match Ipv4Net::parse(&address, Some(32)) {
                Ok(net) => net,
                Err(message) => {
                    self.error(
                        Diagnostic::error(origin, Some("ha_vips"), message)
                            .hint("write the VIP as A.B.C.D/bits, e.g. 192.168.1.100/24"),
                    );
                    continue;
                }
            };
            let prefix = address.contains('/').then_some(net.prefix);
            let mut vip = Vip {
                address: net.addr,
                prefix,
                interface: None,
                broadcast: None,
                kind: VipKind::IPaddr2,
            };
            for (key, value, at) in fields {
                match key.as_str() {
                    "interface" if valid_interface(&value) => vip.interface = Some(value),
                    "interface" => self.error(Diagnostic::error(at, Some("interface"), format!("`{value}` is not an interface name"))),
                    "kind" if value == "IPaddr" => vip.kind = VipKind::IPaddr,
                    "kind" if value == "IPaddr2" => vip.kind = VipKind::IPaddr2,
                    "kind" => self.error(Diagnostic::error(at, Some("kind"), format!("`{value}` is not a VIP kind")).hint("use `IPaddr2` (ip addr, the default) or `IPaddr` (interface alias)")),
                    _ => match value.parse::<Ipv4Addr>() {
                        Ok(b) => vip.broadcast = Some(b),
                        Err(_) => self.error(Diagnostic::error(at, Some("broadcast"), format!("`{value}` is not an IPv4 address"))),
                    },
                }
            }
            if vip.broadcast.is_some() && (vip.prefix.is_none() || vip.interface.is_none()) {
                self.error(Diagnostic::error(origin.clone(), Some("ha_vips"), "a broadcast address needs the prefix and the interface too (IPaddr's A.B.C.D/bits/iface/bcast)"));
            }
            if let Some(p) = vip.prefix {
                let subnet = Ipv4Net {
                    addr: vip.address,
                    prefix: p,
                };
                if p < 31 && (vip.address == subnet.network() || vip.address == subnet.broadcast())
                {
                    self.error(
                        Diagnostic::error(
                            origin.clone(),
                            Some("ha_vips"),
                            format!("{} is the network or broadcast address of its subnet", net),
                        )
                        .hint("pick a host address inside the subnet"),
                    );
                }
                for node in nodes {
                    if let Some(sa) = node.service_address
                        && !subnet.contains(sa)
                    {
                        self.error(Diagnostic::error(origin.clone(), Some("ha_vips"), format!("VIP {net} is outside {}'s service subnet (its address is {sa})", node.host))
                            .hint("use a free address of the nodes' service network, or set `ha_service_address` if the VIP lives on another interface"));
                    }
                }
            }
            if vips.iter().any(|v: &Vip| v.address == vip.address) {
                self.error(Diagnostic::error(
                    origin.clone(),
                    Some("ha_vips"),
                    format!("{} is listed twice", vip.address),
                ));
            }
            for node in nodes {
                let taken = node.service_address == Some(vip.address)
                    || node.heartbeat_address.map(|h| h.addr) == Some(vip.address)
                    || node.connection.host.parse::<Ipv4Addr>().ok() == Some(vip.address);
                if taken {
                    self.error(Diagnostic::error(origin.clone(), Some("ha_vips"), format!("VIP {} is {}'s own address", vip.address, node.host))
                        .hint("the VIP must be a free address that moves between nodes, not a node's fixed address"));
                }
            }
            vips.push(vip);
        }
        vips
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, rejects};

    #[test]
    fn malformed_and_out_of_subnet_vips() {
        rejects(
            &BASE.replace("[192.168.1.100/24]", "[192.168.1.300/24]"),
            8,
            19,
            "not an IPv4 address",
        );
        rejects(
            &BASE.replace("[192.168.1.100/24]", "[192.168.1.100/40]"),
            8,
            19,
            "prefix length must be 0-32",
        );
        rejects(
            &BASE.replace("[192.168.1.100/24]", "[192.168.2.100/24]"),
            8,
            19,
            "outside node1's service subnet",
        );
        rejects(
            &BASE.replace("[192.168.1.100/24]", "[192.168.1.255/24]"),
            8,
            19,
            "network or broadcast address",
        );
    }

    #[test]
    fn vip_equal_to_a_node_address() {
        rejects(
            &BASE.replace("[192.168.1.100/24]", "[192.168.1.12/24]"),
            8,
            19,
            "VIP 192.168.1.12 is node2's own address",
        );
    }
}
