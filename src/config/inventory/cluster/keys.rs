//! The HA variable tables: which `ha_*` keys exist, which describe the whole cluster and which
//! one node, the value each takes when unset, and the fixed choices a typo is matched against
//! for "did you mean". Also the first pass over a layout, which rejects any `ha_*` key not in
//! these tables before any cluster is built.

use std::net::Ipv4Addr;

use crate::config::ha::HbDuration;
use crate::config::inventory::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::config::inventory::layout::{Layout, Vars};

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
    "ha_metrics_listen",
    "ha_drift_ignore",
];

/// Keys that differ per node.
pub const HOST_KEYS: &[&str] = &[
    "ha_heartbeat_address",
    "ha_service_address",
    "ha_node_name",
    "ha_files",
];

/// Paths `apply` writes itself (and the directories it owns): no `ha_files` entry may land in
/// one, or two sources of truth would fight over a file. `controller::apply`'s tests hold
/// every path it installs to this list.
pub const RESERVED_PATHS: &[&str] = &[
    "/etc/ha.d",
    "/var/lib/hadeploy",
    "/usr/local/sbin/hadeploy-agent",
    "/etc/sysctl.d/90-hadeploy.conf",
    "/etc/systemd/system/hadeploy-agent.service",
    "/etc/init.d/hadeploy-agent",
    "/usr/local/share/man/man8/hadeploy-agent.8",
];

/// The fields of an `ha_files` entry.
pub(super) const FILE_FIELDS: &[&str] = &["src", "dest", "mode", "owner", "group", "service"];

pub(super) const DEFAULT_UDPPORT: u16 = 694;
pub(super) const DEFAULT_AUTOSTART: [&str; 4] = ["nginx", "apache2", "httpd", "haproxy"];
// Heartbeat's own defaults for the four timers (seconds).
pub(super) const DEFAULT_KEEPALIVE: HbDuration = HbDuration::from_secs(2);
pub(super) const DEFAULT_WARNTIME: HbDuration = HbDuration::from_secs(10);
pub(super) const DEFAULT_DEADTIME: HbDuration = HbDuration::from_secs(30);
pub(super) const DEFAULT_INITDEAD: HbDuration = HbDuration::from_secs(120);
pub(super) const DEFAULT_MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(225, 0, 0, 1);
/// 1 keeps multicast heartbeats on the local segment.
pub(super) const DEFAULT_MCAST_TTL: u8 = 1;
/// Only a fallback once `ha_resource_check` is set but unreadable; unset means no checks.
pub(super) const DEFAULT_RESOURCE_CHECK: HbDuration = HbDuration::from_secs(2);
pub(super) const DEFAULT_RESOURCE_CHECK_FAILURES: u32 = 3;

// The closed sets of values, in the order hints list them.
pub(super) const MEDIA_CHOICES: &[&str] = &["ucast", "ucast_all", "bcast", "mcast"];
pub(super) const AUTH_CHOICES: &[&str] = &["sha1", "md5", "crc"];
pub(super) const AUTO_FAILBACK_CHOICES: &[&str] = &["on", "off", "legacy"];
/// The fields of a VIP written as a mapping.
pub(super) const VIP_FIELDS: &[&str] = &["address", "interface", "kind", "broadcast"];

/// Every `ha_*` variable anywhere must be one we know, and `ha_vips` belongs on a group.
pub(super) fn report_unknown_keys(layout: &Layout, diags: &mut Diagnostics) {
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

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, rejects};

    #[test]
    fn unknown_key_with_suggestion() {
        rejects(
            &BASE.replace("ha_heartbeat_interface", "ha_heartbeat_interfce"),
            10,
            9,
            "did you mean `ha_heartbeat_interface`?",
        );
    }
}
