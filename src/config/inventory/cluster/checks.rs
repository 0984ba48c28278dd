//! The rules no single cluster can check on its own: a host may be a node of only one cluster,
//! a VIP may belong to only one cluster, and clusters whose heartbeat links overlap must use
//! different UDP ports.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use crate::config::inventory::cluster::Cluster;
use crate::config::inventory::diag::{Diagnostic, Diagnostics, Origin};
use crate::config::inventory::layout::Layout;

/// Which cluster each host was first claimed by, as the cluster groups are built in turn.
/// Claiming happens group by group (not all up front) so the "two clusters" error lands right
/// before that group's own diagnostics, in the order the operator reads the inventory.
#[derive(Default)]
pub(super) struct Membership(HashMap<String, String>);

impl Membership {
    /// Claims `hosts` for `group` and returns those still free; a host an earlier group already
    /// holds is reported and left out, so the second cluster is judged without it.
    pub(super) fn claim(
        &mut self,
        layout: &Layout,
        group: &str,
        hosts: &[String],
        diags: &mut Diagnostics,
    ) -> Vec<String> {
        let mut nodes_ok = Vec::new();
        for host in hosts {
            if let Some(other) = self.0.get(host) {
                diags.push(
                    Diagnostic::error(
                        layout
                            .host(host)
                            .map(|h| h.origin.clone())
                            .unwrap_or_else(|| Origin::file(&layout.file)),
                        Some(host),
                        format!("host is a node of two clusters, `{other}` and `{group}`"),
                    )
                    .hint("a node runs one Heartbeat instance: move the host to one cluster group"),
                );
            } else {
                self.0.insert(host.clone(), group.to_string());
                nodes_ok.push(host.clone());
            }
        }
        nodes_ok
    }
}

/// Clusters whose heartbeat links overlap must not share a UDP port: each would read the
/// other's packets, fail to authenticate them and flood its log — or worse with the same key.
pub(super) fn check_across_clusters(clusters: &[Cluster], diags: &mut Diagnostics) {
    let mut vip_owner: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for (i, a) in clusters.iter().enumerate() {
        for vip in &a.vips {
            if let Some(other) = vip_owner.insert(vip.address, &a.name) {
                diags.push(Diagnostic::error(
                    a.origin.clone(),
                    Some("ha_vips"),
                    format!("VIP {} is also a VIP of cluster `{other}`", vip.address),
                ));
            }
        }
        for b in &clusters[i + 1..] {
            if a.udpport != b.udpport {
                continue;
            }
            let nets = |c: &Cluster| {
                c.nodes
                    .iter()
                    .filter_map(|n| n.heartbeat_address)
                    .collect::<Vec<_>>()
            };
            let shared = nets(a)
                .iter()
                .any(|x| nets(b).iter().any(|y| x.overlaps(*y)));
            if shared {
                diags.push(
                    Diagnostic::error(
                        b.origin.clone(),
                        Some("ha_udpport"),
                        format!(
                            "clusters `{}` and `{}` share a heartbeat segment and UDP port {}",
                            a.name, b.name, a.udpport
                        ),
                    )
                    .hint(format!(
                        "give `{}` another `ha_udpport` (e.g. {}) or its own heartbeat link",
                        b.name,
                        a.udpport.saturating_add(1)
                    )),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

    #[test]
    fn node_in_two_clusters() {
        let text = format!(
            "{BASE}    db:\n      hosts:\n        node2:\n        node3: {{ansible_host: 192.168.1.13, ha_heartbeat_address: 10.1.0.3/24}}\n      vars:\n        ha_vips: [192.168.1.200/24]\n        ha_heartbeat_interface: eth1\n        ha_udpport: 695\n"
        );
        let (_dir, result) = load(&text);
        let diags = result.unwrap_err();
        assert!(
            diags
                .to_string()
                .contains("node2: host is a node of two clusters, `db` and `web`"),
            "{diags}"
        );
    }

    #[test]
    fn clusters_sharing_a_heartbeat_segment_and_port() {
        let second = "    db:\n      hosts:\n        db1: {ansible_host: 192.168.1.21, ha_heartbeat_address: 10.0.0.21/24}\n        db2: {ansible_host: 192.168.1.22, ha_heartbeat_address: 10.0.0.22/24}\n      vars:\n        ha_vips: [192.168.1.200/24]\n        ha_heartbeat_interface: eth1\n";
        rejects(
            &format!("{BASE}{second}"),
            4,
            7,
            "clusters `db` and `web` share a heartbeat segment and UDP port 694",
        );
        // Another port on the same segment is fine.
        let (_dir, result) = load(&format!("{BASE}{second}        ha_udpport: 695\n"));
        assert_eq!(result.unwrap().clusters.len(), 2);
    }
}
