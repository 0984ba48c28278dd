//! The typed cluster model — what render, apply and drill consume: a `Cluster` with its nodes,
//! VIPs, resources, timers, heartbeat media and authkeys source, each already validated.
//! Turning an inventory into these values lives in `build` (with the key tables in `keys` and
//! the checks between clusters in `checks`); this module only defines them and re-exports the
//! paths other code has always used (`inventory::cluster::Media`, `cluster::build_clusters`).

mod build;
mod checks;
mod keys;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::config::ha::{AuthMethod, AutoFailback, HbDuration, Ipv4Net};
use crate::config::inventory::diag::Origin;

pub use build::build_clusters;
pub use keys::{CLUSTER_KEYS, HOST_KEYS, RESERVED_PATHS};

/// How heartbeats travel between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// Each node's ha.cf lists its peers' heartbeat addresses (the guides' usual form).
    Ucast,
    /// Every node's ha.cf lists every node; Heartbeat ignores its own address.
    UcastAll,
    Bcast,
    Mcast,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Ucast => "ucast",
            Media::UcastAll => "ucast_all",
            Media::Bcast => "bcast",
            Media::Mcast => "mcast",
        }
    }

    fn needs_addresses(self) -> bool {
        matches!(self, Media::Ucast | Media::UcastAll)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VipKind {
    IPaddr,
    IPaddr2,
}

impl VipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VipKind::IPaddr => "IPaddr",
            VipKind::IPaddr2 => "IPaddr2",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub address: Ipv4Addr,
    /// Absent: the resource agent takes the netmask from the routing table.
    pub prefix: Option<u8>,
    pub interface: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
    pub kind: VipKind,
}

impl Vip {
    /// The haresources form: `IPaddr2::A.B.C.D/bits/iface/bcast`.
    pub fn resource_spec(&self) -> String {
        let mut spec = format!("{}::{}", self.kind.as_str(), self.address);
        if let Some(prefix) = self.prefix {
            spec.push_str(&format!("/{prefix}"));
            if let Some(iface) = &self.interface {
                spec.push_str(&format!("/{iface}"));
                if let Some(b) = self.broadcast {
                    spec.push_str(&format!("/{b}"));
                }
            }
        }
        spec
    }
}

/// A resource after the VIPs: a script name with `::` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    pub args: Vec<String>,
}

impl ResourceSpec {
    pub fn spec(&self) -> String {
        std::iter::once(self.name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::")
    }
}

/// Where the authkeys secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable named by `ha_auth_secret_env`.
    Env(String),
    /// A file (created from a CSPRNG on first use when it is the default or missing).
    File(PathBuf),
    /// crc needs no secret.
    None,
}

/// How the controller reaches a node (Ansible's connection variables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub become_root: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The inventory host name.
    pub host: String,
    /// The Heartbeat node name (`uname -n`), usually the same as `host`.
    pub node_name: String,
    pub connection: Connection,
    pub heartbeat_address: Option<Ipv4Net>,
    pub service_address: Option<Ipv4Addr>,
    pub origin: Origin,
    /// `ha_files`: the service configuration files this node gets.
    pub files: Vec<ServiceFile>,
    /// Every variable the host resolves to, as the plain data its templates see.
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// An `ha_files` entry: a template rendered for one node and installed at `dest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFile {
    /// The template, already joined to the inventory's directory.
    pub src: PathBuf,
    /// Absolute and normalised, outside what hadeploy manages itself.
    pub dest: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// The role whose config test validates the file and whose reload applies it.
    pub service: Option<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub origin: Origin,
    pub nodes: Vec<ClusterNode>,
    pub vips: Vec<Vip>,
    pub resources: Vec<ResourceSpec>,
    /// Node name (not host name) of the preferred node.
    pub preferred_node: String,
    pub auto_failback: AutoFailback,
    pub keepalive: HbDuration,
    pub warntime: HbDuration,
    pub deadtime: HbDuration,
    pub initdead: HbDuration,
    pub udpport: u16,
    pub media: Media,
    pub heartbeat_interface: String,
    pub heartbeat_private: bool,
    pub mcast_group: Ipv4Addr,
    pub mcast_ttl: u8,
    pub auth: AuthMethod,
    pub secret: SecretSource,
    pub disable_autostart: Vec<String>,
    /// `ha_resource_check`: how often the agent polls held resources' status (off if `None`).
    pub resource_check: Option<HbDuration>,
    /// `ha_resource_check_failures`: failed checks in a row before the group moves.
    pub resource_check_failures: u32,
    /// `ha_metrics_listen`: where each agent serves `/metrics` (off if `None`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `ha_drift_ignore`: findings `diff` leaves out, each with a reason, until a date.
    pub drift_ignore: Vec<DriftIgnore>,
}

/// A known `diff` finding an operator chose to live with for a while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftIgnore {
    pub rule: String,
    /// The host (or, for a cluster-wide finding, the cluster); every place when `None`.
    pub host: Option<String>,
    pub reason: String,
    /// The last day it applies, as (year, month, day), and as days since 1970-01-01.
    pub until: (i32, u32, u32),
    pub until_days: i64,
    pub origin: Origin,
}

impl Cluster {
    pub fn node(&self, node_name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.node_name == node_name)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ha::AuthMethod;
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

    #[test]
    fn base_is_valid() {
        let (_dir, result) = load(BASE);
        let inv = result.unwrap();
        let c = &inv.clusters[0];
        assert_eq!(c.name, "web");
        assert_eq!(c.preferred_node, "node1");
        assert_eq!(
            c.nodes[1].heartbeat_address.unwrap().to_string(),
            "10.0.0.2/24"
        );
        assert_eq!(c.udpport, 694);
        assert_eq!(c.auth, AuthMethod::Sha1);
        assert_eq!(c.vips[0].resource_spec(), "IPaddr2::192.168.1.100/24");
        assert!(inv.warnings.is_empty());
    }

    #[test]
    fn yaml_syntax() {
        rejects(
            "all:\n  children: [oops\n",
            2,
            13,
            "not valid YAML: unclosed bracket",
        );
    }
}
