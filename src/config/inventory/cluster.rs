//! The HA variable schema: which groups are clusters, what each `ha_*` variable means, and every
//! rule an operator can get wrong (addresses, timers, media, auth, names). Produces typed
//! `Cluster`s for rendering and applying, plus diagnostics that point at the exact variable.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics, Origin, did_you_mean};
use super::layout::{Layout, Var, Vars};
use super::net::Ipv4Net;
use super::yaml::Value;
use crate::config::duration::HbDuration;
use crate::config::heartbeat::authkeys::AuthMethod;

/// Keys that describe the cluster as a whole: they may be set at any level but must resolve to
/// the same value on every node of a cluster.
pub const CLUSTER_KEYS: &[&str] = &[
    "ha_vips",
    "ha_resources",
    "ha_preferred_node",
    "ha_auto_failback",
    "ha_keepalive",
    "ha_warntime",
    "ha_deadtime",
    "ha_initdead",
    "ha_udpport",
    "ha_media",
    "ha_heartbeat_interface",
    "ha_heartbeat_private",
    "ha_mcast_group",
    "ha_mcast_ttl",
    "ha_auth",
    "ha_auth_secret_file",
    "ha_auth_secret_env",
    "ha_disable_autostart",
    "ha_resource_check",
    "ha_resource_check_failures",
];

/// Keys that differ per node.
pub const HOST_KEYS: &[&str] = &["ha_heartbeat_address", "ha_service_address", "ha_node_name"];

const DEFAULT_UDPPORT: u16 = 694;
const DEFAULT_AUTOSTART: [&str; 4] = ["nginx", "apache2", "httpd", "haproxy"];

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
}

impl Cluster {
    pub fn node(&self, node_name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.node_name == node_name)
    }
}

/// Builds every cluster of a loaded layout, reporting each problem once at its source.
pub fn build_clusters(layout: &Layout, diags: &mut Diagnostics) -> Vec<Cluster> {
    report_unknown_keys(layout, diags);
    let inventory_dir = layout.file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let cluster_groups: Vec<&str> = layout
        .groups
        .values()
        .filter(|g| g.inline_vars.contains_key("ha_vips") || g.file_vars.contains_key("ha_vips"))
        .map(|g| g.name.as_str())
        .collect();
    let mut membership: HashMap<String, String> = HashMap::new();
    let mut clusters = Vec::new();
    for group in cluster_groups {
        let hosts = layout.group_hosts(group);
        let mut nodes_ok = Vec::new();
        for host in &hosts {
            if let Some(other) = membership.get(host) {
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
                membership.insert(host.clone(), group.to_string());
                nodes_ok.push(host.clone());
            }
        }
        if let Some(cluster) =
            ClusterBuilder::new(layout, group, &inventory_dir, diags).build(&nodes_ok)
        {
            clusters.push(cluster);
        }
    }
    check_across_clusters(&clusters, diags);
    clusters
}

/// Every `ha_*` variable anywhere must be one we know, and `ha_vips` belongs on a group.
fn report_unknown_keys(layout: &Layout, diags: &mut Diagnostics) {
    let known = || CLUSTER_KEYS.iter().chain(HOST_KEYS).copied();
    let mut check = |vars: &Vars, on_host: bool| {
        for (key, var) in vars {
            if !key.starts_with("ha_") {
                continue;
            }
            if !known().any(|k| k == key) {
                let mut d = Diagnostic::error(var.origin.clone(), Some(key), "unknown HA variable");
                d = match did_you_mean(key, known()) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("see the README's HA variables table"),
                };
                diags.push(d);
            } else if on_host && key == "ha_vips" {
                diags.push(
                    Diagnostic::error(
                        var.origin.clone(),
                        Some(key),
                        "VIPs belong to the cluster, not to one host",
                    )
                    .hint("move `ha_vips` to the vars of the cluster's group"),
                );
            }
        }
    };
    for group in layout.groups.values() {
        check(&group.inline_vars, false);
        check(&group.file_vars, false);
    }
    for host in &layout.hosts {
        check(&host.inline_vars, true);
        check(&host.file_vars, true);
    }
}

struct ClusterBuilder<'a> {
    layout: &'a Layout,
    group: &'a str,
    inventory_dir: &'a Path,
    diags: &'a mut Diagnostics,
    /// Errors found while building this cluster; a cluster with any is not returned.
    failed: bool,
}

impl<'a> ClusterBuilder<'a> {
    fn new(
        layout: &'a Layout,
        group: &'a str,
        inventory_dir: &'a Path,
        diags: &'a mut Diagnostics,
    ) -> Self {
        Self {
            layout,
            group,
            inventory_dir,
            diags,
            failed: false,
        }
    }

    fn group_origin(&self) -> Origin {
        self.layout
            .groups
            .get(self.group)
            .and_then(|g| g.origin.clone())
            .unwrap_or_else(|| Origin::file(&self.layout.file))
    }

    fn error(&mut self, d: Diagnostic) {
        self.failed = true;
        self.diags.push(d);
    }

    fn build(mut self, hosts: &[String]) -> Option<Cluster> {
        if hosts.len() < 2 {
            let d = Diagnostic::error(
                self.group_origin(),
                Some(self.group),
                format!(
                    "a cluster needs at least 2 nodes, this one has {}",
                    hosts.len()
                ),
            )
            .hint("add the standby node under this group's `hosts:`");
            self.error(d);
            return None;
        }
        let host_vars: Vec<Vars> = hosts.iter().map(|h| self.layout.resolved_vars(h)).collect();
        let cluster_vars = self.consistent_cluster_vars(hosts, &host_vars);
        let nodes: Vec<ClusterNode> = hosts
            .iter()
            .zip(&host_vars)
            .filter_map(|(h, vars)| self.node(h, vars))
            .collect();
        let c = CVars(&cluster_vars);

        let keepalive = self.duration(&c, "ha_keepalive", HbDuration::from_secs(2));
        let warntime = self.duration(&c, "ha_warntime", HbDuration::from_secs(10));
        let deadtime = self.duration(&c, "ha_deadtime", HbDuration::from_secs(30));
        let initdead = self.duration(&c, "ha_initdead", HbDuration::from_secs(120));
        self.check_timers(&c, keepalive, warntime, deadtime, initdead);

        let udpport = match c.get("ha_udpport") {
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
        };
        let media = match self.string(&c, "ha_media").as_deref() {
            None | Some("ucast") => Media::Ucast,
            Some("ucast_all") => Media::UcastAll,
            Some("bcast") => Media::Bcast,
            Some("mcast") => Media::Mcast,
            Some(other) => {
                let var = c.get("ha_media").cloned();
                self.bad_choice(
                    var.as_ref(),
                    "ha_media",
                    other,
                    &["ucast", "ucast_all", "bcast", "mcast"],
                );
                Media::Ucast
            }
        };
        let heartbeat_private = self.boolean(&c, "ha_heartbeat_private").unwrap_or(false);
        if media == Media::Bcast
            && !heartbeat_private
            && let Some(var) = c.get("ha_media")
        {
            self.diags.push(
                Diagnostic::warning(var.origin.clone(), Some("ha_media"), "broadcast heartbeats reach every host on the segment and flood neighbouring clusters' logs")
                    .hint("prefer `ucast` (or `mcast`) unless the heartbeat link is a crossover cable"),
            );
        }
        let heartbeat_interface = match self.string(&c, "ha_heartbeat_interface") {
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
        };
        let mcast_group = self.mcast_group(&c);
        let mcast_ttl = match c.get("ha_mcast_ttl") {
            None => 1,
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
                    1
                }
            },
        };
        let auth = match self.string(&c, "ha_auth").as_deref() {
            None | Some("sha1") => AuthMethod::Sha1,
            Some("md5") => AuthMethod::Md5,
            Some("crc") => AuthMethod::Crc,
            Some(other) => {
                let var = c.get("ha_auth").cloned();
                self.bad_choice(var.as_ref(), "ha_auth", other, &["sha1", "md5", "crc"]);
                AuthMethod::Sha1
            }
        };
        if let Some(var) = c.get("ha_auth").cloned() {
            if auth == AuthMethod::Crc && !heartbeat_private {
                let d = Diagnostic::error(var.origin.clone(), Some("ha_auth"), "crc does not authenticate: anyone on the heartbeat link can take the cluster's resources")
                    .hint("use `sha1`, or set `ha_heartbeat_private: true` if the link is a crossover cable");
                self.error(d);
            } else if auth == AuthMethod::Md5 {
                self.diags.push(
                    Diagnostic::warning(
                        var.origin.clone(),
                        Some("ha_auth"),
                        "md5 is weaker than sha1",
                    )
                    .hint("use `sha1` unless a peer only supports md5"),
                );
            }
        }
        let secret = self.secret_source(&c, auth);
        let vips = self.vips(&c, &nodes);
        let resources = self.resources(&c);
        let preferred_node = self.preferred_node(&c, &nodes);
        let auto_failback = match c.get("ha_auto_failback").map(|v| v.node.value.clone()) {
            None => AutoFailback::On,
            // YAML 1.1 (Ansible) reads a bare `on`/`off` as a boolean.
            Some(Value::Bool(true)) => AutoFailback::On,
            Some(Value::Bool(false)) => AutoFailback::Off,
            Some(Value::Str(s)) if s == "on" => AutoFailback::On,
            Some(Value::Str(s)) if s == "off" => AutoFailback::Off,
            Some(Value::Str(s)) if s == "legacy" => AutoFailback::Legacy,
            Some(other) => {
                let var = c.get("ha_auto_failback").cloned();
                let shown = var
                    .as_ref()
                    .and_then(|v| v.node.scalar_text())
                    .unwrap_or_else(|| other.kind().to_string());
                self.bad_choice(
                    var.as_ref(),
                    "ha_auto_failback",
                    &shown,
                    &["on", "off", "legacy"],
                );
                AutoFailback::On
            }
        };
        let disable_autostart = match c.get("ha_disable_autostart").cloned() {
            None => DEFAULT_AUTOSTART.iter().map(|s| s.to_string()).collect(),
            Some(var) => self.word_list(&var, "ha_disable_autostart"),
        };
        let resource_check = c
            .get("ha_resource_check")
            .is_some()
            .then(|| self.duration(&c, "ha_resource_check", HbDuration::from_secs(2)));
        if let Some(d) = resource_check
            && d.as_millis() < 100
        {
            let var = c.get("ha_resource_check").cloned();
            self.invalid(
                var.as_ref(),
                "ha_resource_check",
                "polls faster than every 100ms",
                "a status check forks the service's script or systemctl; use `1` or `500ms`",
            );
        }
        let resource_check_failures = match c.get("ha_resource_check_failures").cloned() {
            None => 3,
            Some(var) => match &var.node.value {
                Value::Int(n) if (1..=100).contains(n) => *n as u32,
                _ => {
                    self.invalid(
                        Some(&var),
                        "ha_resource_check_failures",
                        "not a count of 1-100",
                        "failed checks in a row before the group moves, e.g. 3",
                    );
                    3
                }
            },
        };
        self.check_nodes(&nodes, media);
        if self.failed {
            return None;
        }
        Some(Cluster {
            name: self.group.to_string(),
            origin: self.group_origin(),
            nodes,
            vips,
            resources,
            preferred_node,
            auto_failback,
            keepalive,
            warntime,
            deadtime,
            initdead,
            udpport,
            media,
            heartbeat_interface,
            heartbeat_private,
            mcast_group,
            mcast_ttl,
            auth,
            secret,
            disable_autostart,
            resource_check,
            resource_check_failures,
        })
    }

    /// Cluster-wide keys must resolve to one value on every node; returns that value per key.
    fn consistent_cluster_vars(&mut self, hosts: &[String], host_vars: &[Vars]) -> Vars {
        let mut result = Vars::new();
        for key in CLUSTER_KEYS {
            let mut first: Option<(&String, &Var)> = None;
            for (host, vars) in hosts.iter().zip(host_vars) {
                let Some(var) = vars.get(*key) else {
                    if let Some((first_host, first_var)) = first {
                        let d = Diagnostic::error(first_var.origin.clone(), Some(key), format!("set for {first_host} but not for {host}; a cluster setting must be the same on every node"))
                            .hint("set it on the cluster's group instead of on single hosts");
                        self.error(d);
                    }
                    continue;
                };
                match first {
                    None => {
                        if host != &hosts[0] {
                            let d = Diagnostic::error(var.origin.clone(), Some(key), format!("set for {host} but not for {}; a cluster setting must be the same on every node", hosts[0]))
                                .hint("set it on the cluster's group instead of on single hosts");
                            self.error(d);
                        }
                        first = Some((host, var));
                        result.insert(key.to_string(), var.clone());
                    }
                    Some((first_host, first_var)) if first_var.node.value != var.node.value => {
                        let d = Diagnostic::error(var.origin.clone(), Some(key), format!("differs between {first_host} (set at {}) and {host}; a cluster setting must be the same on every node", first_var.origin))
                            .hint("set it once on the cluster's group");
                        self.error(d);
                    }
                    Some(_) => {}
                }
            }
        }
        result
    }

    fn node(&mut self, host: &str, vars: &Vars) -> Option<ClusterNode> {
        let origin = self
            .layout
            .host(host)
            .map(|h| h.origin.clone())
            .unwrap_or_else(|| Origin::file(&self.layout.file));
        let v = CVars(vars);
        let node_name = self
            .string(&v, "ha_node_name")
            .unwrap_or_else(|| host.to_string());
        if !valid_node_name(&node_name) {
            let var = vars.get("ha_node_name").cloned();
            let d = Diagnostic::error(
                var.map(|v| v.origin).unwrap_or_else(|| origin.clone()),
                Some("ha_node_name"),
                format!("`{node_name}` cannot be a Heartbeat node name"),
            )
            .hint("node names are `uname -n`: letters, digits, `-` and `.`");
            self.error(d);
        }
        let connection_host = self
            .string(&v, "ansible_host")
            .unwrap_or_else(|| host.to_string());
        let port = match vars.get("ansible_port") {
            None => 22,
            Some(var) => match &var.node.value {
                Value::Int(p) if (1..=65535).contains(p) => *p as u16,
                _ => {
                    let var = var.clone();
                    self.invalid(Some(&var), "ansible_port", "not a TCP port", "use 1-65535");
                    22
                }
            },
        };
        let user = self.string(&v, "ansible_user");
        let private_key = self
            .string(&v, "ansible_ssh_private_key_file")
            .map(PathBuf::from);
        let become_root = self.boolean(&v, "ansible_become").unwrap_or(false);
        let heartbeat_address = match vars.get("ha_heartbeat_address").cloned() {
            None => None,
            Some(var) => match var.node.scalar_text().map(|t| Ipv4Net::parse(&t, Some(24))) {
                Some(Ok(net)) => Some(net),
                Some(Err(message)) => {
                    self.invalid(
                        Some(&var),
                        "ha_heartbeat_address",
                        &message,
                        "write the node's heartbeat-link address, e.g. `10.0.0.1/24`",
                    );
                    None
                }
                None => {
                    self.type_error(
                        &var,
                        "ha_heartbeat_address",
                        "an address",
                        var.node.value.kind(),
                    );
                    None
                }
            },
        };
        let service_address = match vars.get("ha_service_address").cloned() {
            Some(var) => match var.node.scalar_text().map(|t| t.parse::<Ipv4Addr>()) {
                Some(Ok(a)) => Some(a),
                _ => {
                    self.invalid(
                        Some(&var),
                        "ha_service_address",
                        "not an IPv4 address",
                        "write the node's address on the service network, e.g. `192.168.1.11`",
                    );
                    None
                }
            },
            None => connection_host.parse().ok(),
        };
        Some(ClusterNode {
            host: host.to_string(),
            node_name,
            connection: Connection {
                host: connection_host,
                port,
                user,
                private_key,
                become_root,
            },
            heartbeat_address,
            service_address,
            origin,
        })
    }

    fn duration(&mut self, c: &CVars, key: &str, default: HbDuration) -> HbDuration {
        let Some(var) = c.get(key).cloned() else {
            return default;
        };
        let text = match &var.node.value {
            Value::Int(_) | Value::Float(_) | Value::Str(_) => {
                var.node.scalar_text().unwrap_or_default()
            }
            other => {
                self.type_error(&var, key, "a time (`2`, `0.5`, `500ms`)", other.kind());
                return default;
            }
        };
        match HbDuration::parse(&text) {
            Ok(d) if d.as_millis() == 0 => {
                self.invalid(
                    Some(&var),
                    key,
                    "must be more than zero",
                    "Heartbeat timers are seconds or `ms`",
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.invalid(
                    Some(&var),
                    key,
                    &e.to_string(),
                    "write seconds (`2`) or milliseconds (`500ms`)",
                );
                default
            }
        }
    }

    fn check_timers(
        &mut self,
        c: &CVars,
        keepalive: HbDuration,
        warntime: HbDuration,
        deadtime: HbDuration,
        initdead: HbDuration,
    ) {
        let at = |key: &str| c.get(key).map(|v| v.origin.clone());
        let origin = |this: &Self, keys: &[&str]| {
            keys.iter()
                .find_map(|k| at(k))
                .unwrap_or_else(|| this.group_origin())
        };
        // The real daemon refuses deadtime <= 2 × keepalive: one lost packet must not kill a node.
        if deadtime.as_millis() <= 2 * keepalive.as_millis() {
            let d = Diagnostic::error(
                origin(self, &["ha_deadtime", "ha_keepalive"]),
                Some("ha_deadtime"),
                format!("deadtime {deadtime} must be more than twice keepalive {keepalive}"),
            )
            .hint(format!(
                "raise ha_deadtime above {}ms or lower ha_keepalive",
                2 * keepalive.as_millis()
            ));
            self.error(d);
        }
        if warntime >= deadtime {
            let d = Diagnostic::error(origin(self, &["ha_warntime", "ha_deadtime"]), Some("ha_warntime"), format!("warntime {warntime} must be less than deadtime {deadtime}, or the warning comes after the node is already declared dead"))
                .hint("a common choice is warntime = deadtime / 3");
            self.error(d);
        }
        if initdead.as_millis() < 2 * deadtime.as_millis() {
            let d = Diagnostic::error(origin(self, &["ha_initdead", "ha_deadtime"]), Some("ha_initdead"), format!("initdead {initdead} must be at least twice deadtime {deadtime}, so a booting peer's network has time to come up"))
                .hint(format!("set ha_initdead to {}ms or more", 2 * deadtime.as_millis()));
            self.error(d);
        }
    }

    fn mcast_group(&mut self, c: &CVars) -> Ipv4Addr {
        let default = Ipv4Addr::new(225, 0, 0, 1);
        let Some(var) = c.get("ha_mcast_group").cloned() else {
            return default;
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
                default
            }
            None => {
                self.invalid(
                    Some(&var),
                    "ha_mcast_group",
                    "not an IPv4 address",
                    "use a group such as 225.0.0.1",
                );
                default
            }
        }
    }

    fn secret_source(&mut self, c: &CVars, auth: AuthMethod) -> SecretSource {
        if auth == AuthMethod::Crc {
            return SecretSource::None;
        }
        if let Some(name) = self.string(c, "ha_auth_secret_env") {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                let var = c.get("ha_auth_secret_env").cloned();
                self.invalid(
                    var.as_ref(),
                    "ha_auth_secret_env",
                    "not an environment variable name",
                    "letters, digits and `_`",
                );
            }
            return SecretSource::Env(name);
        }
        match self.string(c, "ha_auth_secret_file") {
            Some(path) => {
                let path = PathBuf::from(path);
                SecretSource::File(if path.is_absolute() {
                    path
                } else {
                    self.inventory_dir.join(path)
                })
            }
            None => SecretSource::File(
                self.inventory_dir
                    .join(".hadeploy-secrets")
                    .join(format!("{}.key", self.group)),
            ),
        }
    }

    fn vips(&mut self, c: &CVars, nodes: &[ClusterNode]) -> Vec<Vip> {
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
                                if let Some(s) = did_you_mean(
                                    other,
                                    ["address", "interface", "kind", "broadcast"],
                                ) {
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

    fn resources(&mut self, c: &CVars) -> Vec<ResourceSpec> {
        let Some(var) = c.get("ha_resources").cloned() else {
            return Vec::new();
        };
        let Value::Seq(items) = &var.node.value else {
            self.type_error(
                &var,
                "ha_resources",
                "a list such as `[nginx]`",
                var.node.value.kind(),
            );
            return Vec::new();
        };
        let mut result = Vec::new();
        for item in items {
            let origin = Origin::new(&var.origin.file, item.pos);
            let Some(text) = item.scalar_text() else {
                self.error(Diagnostic::error(
                    origin,
                    Some("ha_resources"),
                    format!("expected a resource name, found {}", item.value.kind()),
                ));
                continue;
            };
            let mut parts = text.split("::");
            let name = parts.next().unwrap_or_default().to_string();
            let args: Vec<String> = parts.map(str::to_string).collect();
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '@'));
            let args_ok = args
                .iter()
                .all(|a| !a.is_empty() && a.chars().all(safe_arg_char));
            if !name_ok || !args_ok {
                self.error(Diagnostic::error(origin, Some("ha_resources"), format!("`{text}` contains characters a resource script name or argument may not have"))
                    .hint("resource names and `::` arguments are passed to shell scripts: use letters, digits and `_-.@/:=,+%` only, no spaces, quotes or shell metacharacters"));
                continue;
            }
            if name.starts_with("IPaddr") {
                self.error(Diagnostic::error(origin, Some("ha_resources"), "VIPs go in `ha_vips`, not in `ha_resources`").hint("move the address to `ha_vips`; hadeploy puts VIPs first in the resource group"));
                continue;
            }
            result.push(ResourceSpec { name, args });
        }
        result
    }

    fn preferred_node(&mut self, c: &CVars, nodes: &[ClusterNode]) -> String {
        let first = nodes
            .first()
            .map(|n| n.node_name.clone())
            .unwrap_or_default();
        let Some(wanted) = self.string(c, "ha_preferred_node") else {
            return first;
        };
        if let Some(node) = nodes
            .iter()
            .find(|n| n.host == wanted || n.node_name == wanted)
        {
            return node.node_name.clone();
        }
        let var = c.get("ha_preferred_node").cloned();
        let mut d = Diagnostic::error(
            var.map(|v| v.origin).unwrap_or_else(|| self.group_origin()),
            Some("ha_preferred_node"),
            format!("`{wanted}` is not a node of cluster `{}`", self.group),
        );
        d = match did_you_mean(&wanted, nodes.iter().map(|n| n.host.as_str())) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint(format!(
                "the nodes are: {}",
                nodes
                    .iter()
                    .map(|n| n.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        self.error(d);
        first
    }

    fn check_nodes(&mut self, nodes: &[ClusterNode], media: Media) {
        let mut names: HashMap<String, &ClusterNode> = HashMap::new();
        let mut hb_addresses: HashMap<Ipv4Addr, &ClusterNode> = HashMap::new();
        for node in nodes {
            // Heartbeat lower-cases `uname -n`, so names differing only in case collide.
            if let Some(other) = names.insert(node.node_name.to_lowercase(), node) {
                self.error(Diagnostic::error(node.origin.clone(), Some(&node.host), format!("node name `{}` is also {}'s node name", node.node_name, other.host)).hint("every node needs its own `uname -n`; set `ha_node_name` if the inventory names differ from it"));
            }
            match node.heartbeat_address {
                None if media.needs_addresses() => {
                    self.error(Diagnostic::error(node.origin.clone(), Some("ha_heartbeat_address"), format!("{} has no heartbeat address, which {} heartbeats need", node.host, media.as_str()))
                        .hint("set `ha_heartbeat_address: <address on the heartbeat link>/24` in this host's vars"));
                }
                Some(addr) => {
                    if let Some(other) = hb_addresses.insert(addr.addr, node) {
                        self.error(Diagnostic::error(
                            node.origin.clone(),
                            Some("ha_heartbeat_address"),
                            format!("{} is also {}'s heartbeat address", addr.addr, other.host),
                        ));
                    }
                }
                None => {}
            }
        }
        // Peers must share the heartbeat subnet, or unicast heartbeats would be routed off the link.
        let with_addr: Vec<&ClusterNode> = nodes
            .iter()
            .filter(|n| n.heartbeat_address.is_some())
            .collect();
        if let Some(first) = with_addr.first() {
            let net = first.heartbeat_address.unwrap_or(Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix: 0,
            });
            for other in &with_addr[1..] {
                let addr = other
                    .heartbeat_address
                    .map(|a| a.addr)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                if !net.contains(addr) {
                    self.error(
                        Diagnostic::error(
                            other.origin.clone(),
                            Some("ha_heartbeat_address"),
                            format!(
                                "{addr} is not on {}'s heartbeat subnet {}/{}",
                                first.host,
                                net.network(),
                                net.prefix
                            ),
                        )
                        .hint("all nodes' heartbeat addresses must be on the same link"),
                    );
                }
            }
        }
    }

    fn string(&mut self, c: &CVars, key: &str) -> Option<String> {
        let var = c.get(key)?.clone();
        match &var.node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) => var.node.scalar_text(),
            other => {
                self.type_error(&var, key, "a string", other.kind());
                None
            }
        }
    }

    fn boolean(&mut self, c: &CVars, key: &str) -> Option<bool> {
        let var = c.get(key)?.clone();
        match &var.node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "yes" | "true" | "on") => {
                Some(true)
            }
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "no" | "false" | "off") => {
                Some(false)
            }
            other => {
                self.type_error(&var, key, "true or false", other.kind());
                None
            }
        }
    }

    fn word_list(&mut self, var: &Var, key: &str) -> Vec<String> {
        let Value::Seq(items) = &var.node.value else {
            self.type_error(var, key, "a list of service names", var.node.value.kind());
            return Vec::new();
        };
        let mut words = Vec::new();
        for item in items {
            match item.scalar_text() {
                Some(w)
                    if !w.is_empty()
                        && w.chars().all(|ch| {
                            ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '@')
                        }) =>
                {
                    words.push(w)
                }
                _ => self.error(
                    Diagnostic::error(
                        Origin::new(&var.origin.file, item.pos),
                        Some(key),
                        "not a service name",
                    )
                    .hint("plain names such as `nginx`"),
                ),
            }
        }
        words
    }

    fn type_error(&mut self, var: &Var, key: &str, expected: &str, found: &str) {
        let d = Diagnostic::error(
            var.origin.clone(),
            Some(key),
            format!("expected {expected}, found {found}"),
        );
        self.error(d);
    }

    fn invalid(&mut self, var: Option<&Var>, key: &str, message: &str, hint: &str) {
        let origin = var
            .map(|v| v.origin.clone())
            .unwrap_or_else(|| self.group_origin());
        self.error(Diagnostic::error(origin, Some(key), message).hint(hint));
    }

    fn bad_choice(&mut self, var: Option<&Var>, key: &str, value: &str, choices: &[&str]) {
        let mut hint = format!("one of: {}", choices.join(", "));
        if let Some(s) = did_you_mean(value, choices.iter().copied()) {
            hint = format!("did you mean `{s}`? ({hint})");
        }
        self.invalid(var, key, &format!("`{value}` is not a valid choice"), &hint);
    }
}

/// Cluster vars with a lookup that reads well at call sites.
struct CVars<'a>(&'a Vars);

impl CVars<'_> {
    fn get(&self, key: &str) -> Option<&Var> {
        self.0.get(key)
    }
}

fn valid_interface(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'))
}

fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn safe_arg_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '@' | '/' | ':' | '=' | ',' | '+' | '%')
}

/// Clusters whose heartbeat links overlap must not share a UDP port: each would read the
/// other's packets, fail to authenticate them and flood its log — or worse with the same key.
fn check_across_clusters(clusters: &[Cluster], diags: &mut Diagnostics) {
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
    use super::*;
    use crate::config::inventory::Inventory;

    /// A valid two-node cluster; each test changes one thing.
    const BASE: &str = "all:
  children:
    web:
      hosts:
        node1: {ansible_host: 192.168.1.11, ha_heartbeat_address: 10.0.0.1/24}
        node2: {ansible_host: 192.168.1.12, ha_heartbeat_address: 10.0.0.2/24}
      vars:
        ha_vips: [192.168.1.100/24]
        ha_resources: [nginx]
        ha_heartbeat_interface: eth1
";

    fn load(text: &str) -> (tempfile::TempDir, Result<Inventory, Diagnostics>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inv.yml"), text).unwrap();
        let result = Inventory::load(&dir.path().join("inv.yml"));
        (dir, result)
    }

    /// Asserts loading fails with an error at `line:column` whose text contains `needle`.
    #[track_caller]
    fn rejects(text: &str, line: u32, column: u32, needle: &str) {
        let (_dir, result) = load(text);
        let diags = result.expect_err("inventory should be rejected");
        let found = diags.errors().any(|d| {
            d.origin.pos == Some(crate::config::inventory::yaml::Pos { line, column })
                && d.to_string().contains(needle)
        });
        assert!(
            found,
            "no error at {line}:{column} containing {needle:?}; got:\n{diags}"
        );
    }

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

    #[test]
    fn unknown_key_with_suggestion() {
        rejects(
            &BASE.replace("ha_heartbeat_interface", "ha_heartbeat_interfce"),
            10,
            9,
            "did you mean `ha_heartbeat_interface`?",
        );
    }

    #[test]
    fn wrong_types() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_resources: nginx"),
            9,
            9,
            "ha_resources: expected a list",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_udpport: [694]"),
            9,
            9,
            "ha_udpport: expected a port number, found a list",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_keepalive: {a: 1}"),
            9,
            9,
            "ha_keepalive: expected a time",
        );
    }

    #[test]
    fn duplicate_node_names() {
        rejects(
            &BASE.replace(
                "ha_heartbeat_address: 10.0.0.2/24}",
                "ha_heartbeat_address: 10.0.0.2/24, ha_node_name: NODE1}",
            ),
            6,
            9,
            "node name `NODE1` is also node1's",
        );
        rejects(
            &BASE.replace("node2: {", "node1: {"),
            6,
            9,
            "node1: defined twice",
        );
    }

    #[test]
    fn cluster_needs_two_nodes() {
        let text = BASE.replace(
            "        node2: {ansible_host: 192.168.1.12, ha_heartbeat_address: 10.0.0.2/24}\n",
            "",
        );
        rejects(
            &text,
            4,
            7,
            "a cluster needs at least 2 nodes, this one has 1",
        );
    }

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

    #[test]
    fn missing_heartbeat_address_for_ucast() {
        rejects(
            &BASE.replace(", ha_heartbeat_address: 10.0.0.2/24}", "}"),
            6,
            9,
            "node2 has no heartbeat address, which ucast heartbeats need",
        );
        // bcast needs no addresses.
        let (_dir, result) = load(
            &BASE
                .replace(", ha_heartbeat_address: 10.0.0.2/24}", "}")
                .replace("ha_resources: [nginx]", "ha_media: bcast"),
        );
        let inv = result.unwrap();
        assert_eq!(
            inv.warnings.warnings().count(),
            1,
            "bcast on a shared link warns"
        );
    }

    #[test]
    fn resource_check_is_optional_and_bounded() {
        let (_dir, result) = load(BASE);
        let c = &result.unwrap().clusters[0];
        assert_eq!((c.resource_check, c.resource_check_failures), (None, 3));
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_resource_check: 50ms"),
            9,
            9,
            "faster than every 100ms",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_resource_check_failures: 0"),
            9,
            9,
            "not a count of 1-100",
        );
    }

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

    #[test]
    fn timers_out_of_order() {
        let with = |timers: &str| BASE.replace("ha_resources: [nginx]", timers);
        rejects(
            &with("ha_warntime: 30\n        ha_deadtime: 30"),
            9,
            9,
            "warntime 30 must be less than deadtime 30",
        );
        rejects(
            &with(
                "ha_keepalive: 2\n        ha_deadtime: 4\n        ha_warntime: 3\n        ha_initdead: 60",
            ),
            10,
            9,
            "deadtime 4 must be more than twice keepalive 2",
        );
        rejects(
            &with("ha_deadtime: 30\n        ha_initdead: 45"),
            10,
            9,
            "initdead 45 must be at least twice deadtime 30",
        );
        rejects(
            &with("ha_deadtime: 5s"),
            9,
            9,
            "does not accept an `s` suffix",
        );
        let (_dir, ok) = load(&with(
            "ha_keepalive: 200ms\n        ha_warntime: 600ms\n        ha_deadtime: 1\n        ha_initdead: 2",
        ));
        let c = &ok.unwrap().clusters[0];
        assert_eq!(
            (c.keepalive.as_millis(), c.deadtime.as_millis()),
            (200, 1000)
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

    #[test]
    fn crc_needs_a_private_link() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_auth: crc"),
            9,
            9,
            "crc does not authenticate",
        );
        let (_dir, ok) = load(&BASE.replace(
            "ha_resources: [nginx]",
            "ha_auth: crc\n        ha_heartbeat_private: yes",
        ));
        assert_eq!(ok.unwrap().clusters[0].secret, SecretSource::None);
    }

    #[test]
    fn preferred_node_must_be_a_member() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_preferred_node: nodee2"),
            9,
            9,
            "did you mean `node2`?",
        );
    }

    #[test]
    fn shell_metacharacters_in_resources() {
        for bad in [
            "\"nginx; rm -rf /\"",
            "\"$(reboot)\"",
            "\"apache2::`id`\"",
            "\"web server\"",
        ] {
            rejects(
                &BASE.replace("[nginx]", &format!("[{bad}]")),
                9,
                24,
                "characters a resource script name or argument may not have",
            );
        }
        let (_dir, ok) =
            load(&BASE.replace("[nginx]", "[nginx, \"Filesystem::/dev/sdb1::/data::ext4\"]"));
        assert_eq!(
            ok.unwrap().clusters[0].resources[1].args,
            ["/dev/sdb1", "/data", "ext4"]
        );
    }

    #[test]
    fn cluster_settings_must_agree_across_nodes() {
        let text = BASE.replace("10.0.0.2/24}", "10.0.0.2/24, ha_keepalive: 1}");
        rejects(&text, 6, 80, "set for node2 but not for node1");
    }

    #[test]
    fn auto_failback_accepts_yaml11_booleans() {
        for (value, expected) in [
            ("on", AutoFailback::On),
            ("off", AutoFailback::Off),
            ("legacy", AutoFailback::Legacy),
            ("\"off\"", AutoFailback::Off),
        ] {
            let (_dir, ok) = load(&BASE.replace(
                "ha_resources: [nginx]",
                &format!("ha_auto_failback: {value}"),
            ));
            assert_eq!(ok.unwrap().clusters[0].auto_failback, expected, "{value}");
        }
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_auto_failback: sometimes"),
            9,
            9,
            "`sometimes` is not a valid choice",
        );
    }
}
