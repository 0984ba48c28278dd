//! The heartbeat link: the UDP port, the media (`ucast`, `ucast_all`, `bcast`, `mcast`) and the
//! warning broadcast earns on a shared segment, the interface that carries the heartbeats, and
//! the multicast group and TTL. It also owns the interface-name rule, which a VIP's interface
//! follows as well.

use std::net::Ipv4Addr;

use crate::config::inventory::cluster::Media;
use crate::config::inventory::cluster::keys::{
    DEFAULT_MCAST_GROUP, DEFAULT_MCAST_TTL, DEFAULT_UDPPORT, MEDIA_CHOICES,
};
use crate::config::inventory::diag::Diagnostic;
use crate::config::inventory::yaml::Value;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    pub(super) fn udpport(&mut self, c: &CVars) -> u16 {
        match c.get("ha_udpport") {
            None => DEFAULT_UDPPORT,
            Some(var) => match &var.node.value {
                Value::Int(p) if (1..=65535).contains(p) => *p as u16,
                Value::Int(p) => {
                    let d = Diagnostic::error(
                        var.origin.clone(),
                        Some("ha_udpport"),
                        format!("{p} is not a UDP port"),
                    )
                    .hint("use 1-65535; Heartbeat's default is 694");
                    self.error(d);
                    DEFAULT_UDPPORT
                }
                other => {
                    self.type_error(var, "ha_udpport", "a port number", other.kind());
                    DEFAULT_UDPPORT
                }
            },
        }
    }

    pub(super) fn media(&mut self, c: &CVars) -> Media {
        match self.string(c, "ha_media").as_deref() {
            None | Some("ucast") => Media::Ucast,
            Some("ucast_all") => Media::UcastAll,
            Some("bcast") => Media::Bcast,
            Some("mcast") => Media::Mcast,
            Some(other) => {
                let var = c.get("ha_media").cloned();
                self.bad_choice(var.as_ref(), "ha_media", other, MEDIA_CHOICES);
                Media::Ucast
            }
        }
    }

    /// Only a warning: broadcast is right on a crossover cable, which `ha_heartbeat_private`
    /// declares.
    pub(super) fn warn_broadcast(&mut self, c: &CVars, media: Media, heartbeat_private: bool) {
        if media == Media::Bcast
            && !heartbeat_private
            && let Some(var) = c.get("ha_media")
        {
            self.diags.push(
                Diagnostic::warning(var.origin.clone(), Some("ha_media"), "broadcast heartbeats reach every host on the segment and flood neighbouring clusters' logs")
                    .hint("prefer `ucast` (or `mcast`) unless the heartbeat link is a crossover cable"),
            );
        }
    }

    pub(super) fn heartbeat_interface(&mut self, c: &CVars) -> String {
        match self.string(c, "ha_heartbeat_interface") {
            Some(iface) if valid_interface(&iface) => iface,
            Some(iface) => {
                let var = c.get("ha_heartbeat_interface").cloned();
                self.invalid(
                    var.as_ref(),
                    "ha_heartbeat_interface",
                    &format!("`{iface}` is not an interface name"),
                    "use the kernel name, e.g. `eth1` (at most 15 characters)",
                );
                String::new()
            }
            None => {
                let d = Diagnostic::error(self.group_origin(), Some("ha_heartbeat_interface"), "missing: which interface carries the heartbeats?")
                    .hint("set e.g. `ha_heartbeat_interface: eth1` (the dedicated heartbeat link) in the cluster's vars");
                self.error(d);
                String::new()
            }
        }
    }

    pub(super) fn mcast_group(&mut self, c: &CVars) -> Ipv4Addr {
        let Some(var) = c.get("ha_mcast_group").cloned() else {
            return DEFAULT_MCAST_GROUP;
        };
        match var
            .node
            .scalar_text()
            .and_then(|t| t.parse::<Ipv4Addr>().ok())
        {
            Some(group) if group.is_multicast() => group,
            Some(group) => {
                self.invalid(
                    Some(&var),
                    "ha_mcast_group",
                    &format!("{group} is not a multicast group (224.0.0.0/4)"),
                    "use a group such as 225.0.0.1 or one from 239.0.0.0/8",
                );
                DEFAULT_MCAST_GROUP
            }
            None => {
                self.invalid(
                    Some(&var),
                    "ha_mcast_group",
                    "not an IPv4 address",
                    "use a group such as 225.0.0.1",
                );
                DEFAULT_MCAST_GROUP
            }
        }
    }

    pub(super) fn mcast_ttl(&mut self, c: &CVars) -> u8 {
        match c.get("ha_mcast_ttl") {
            None => DEFAULT_MCAST_TTL,
            Some(var) => match &var.node.value {
                Value::Int(t) if (1..=255).contains(t) => *t as u8,
                _ => {
                    let var = var.clone();
                    self.invalid(
                        Some(&var),
                        "ha_mcast_ttl",
                        "the multicast TTL must be 1-255",
                        "1 keeps heartbeats on the local segment",
                    );
                    DEFAULT_MCAST_TTL
                }
            },
        }
    }
}

pub(super) fn valid_interface(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'))
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, rejects};

    #[test]
    fn udpport_out_of_range() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_udpport: 70000"),
            9,
            9,
            "70000 is not a UDP port",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_udpport: 0"),
            9,
            9,
            "0 is not a UDP port",
        );
    }

    #[test]
    fn mcast_group_outside_multicast_range() {
        rejects(
            &BASE.replace(
                "ha_resources: [nginx]",
                "ha_media: mcast\n        ha_mcast_group: 10.1.1.1",
            ),
            10,
            9,
            "10.1.1.1 is not a multicast group (224.0.0.0/4)",
        );
    }
}
