//! Turns the resolved variables of one cluster group into a `Cluster`, reporting every mistake
//! once, at the variable that caused it. This module owns the walk over the cluster groups and
//! the builder's frame: the order in which sections are read (and so the order diagnostics come
//! out in), the rule that cluster-wide keys agree on every node, and the final assembly. Each
//! section of the schema is read in its own room, as more `impl ClusterBuilder` blocks:
//! `nodes` (per-host addresses and connection), `timers`, `media` (the heartbeat link), `auth`,
//! `vips`, `resources` (the resource group and its policy), `files` (`ha_files`, the services'
//! configuration); `read` holds the typed readers and
//! error helpers they all share.

mod auth;
mod files;
mod media;
mod nodes;
mod read;
mod resources;
mod timers;
mod vips;

use std::collections::HashMap;
use std::path::Path;

use crate::config::inventory::diag::{Diagnostic, Diagnostics, Origin};
use crate::config::inventory::layout::{Layout, Var, Vars};

use super::checks::{Membership, check_across_clusters};
use super::keys::{CLUSTER_KEYS, report_unknown_keys};
use super::{Cluster, ClusterNode, ServiceFile};
use crate::config::roles::Roles;

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
    // Roles are read once: `ha_files` entries name them. A broken role file is reported where
    // an entry needs it.
    let roles = Roles::load(&inventory_dir).map_err(|e| e.to_string());
    let mut membership = Membership::default();
    let mut clusters = Vec::new();
    for group in cluster_groups {
        let hosts = layout.group_hosts(group);
        let nodes_ok = membership.claim(layout, group, &hosts, diags);
        if let Some(cluster) =
            ClusterBuilder::new(layout, group, &inventory_dir, &roles, diags).build(&nodes_ok)
        {
            clusters.push(cluster);
        }
    }
    check_across_clusters(&clusters, diags);
    clusters
}

struct ClusterBuilder<'a> {
    layout: &'a Layout,
    group: &'a str,
    inventory_dir: &'a Path,
    roles: &'a Result<Roles, String>,
    diags: &'a mut Diagnostics,
    /// `ha_files` lists already read, by where they were set.
    files_read: HashMap<String, Vec<ServiceFile>>,
    /// Errors found while building this cluster; a cluster with any is not returned.
    failed: bool,
}

impl<'a> ClusterBuilder<'a> {
    fn new(
        layout: &'a Layout,
        group: &'a str,
        inventory_dir: &'a Path,
        roles: &'a Result<Roles, String>,
        diags: &'a mut Diagnostics,
    ) -> Self {
        Self {
            layout,
            group,
            inventory_dir,
            roles,
            diags,
            files_read: HashMap::new(),
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

    /// Reads the sections in a fixed order: an operator sees the diagnostics in that order, so
    /// moving a call here changes the output.
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

        let [keepalive, warntime, deadtime, initdead] = self.timers(&c);
        let udpport = self.udpport(&c);
        let media = self.media(&c);
        let heartbeat_private = self.boolean(&c, "ha_heartbeat_private").unwrap_or(false);
        self.warn_broadcast(&c, media, heartbeat_private);
        let heartbeat_interface = self.heartbeat_interface(&c);
        let mcast_group = self.mcast_group(&c);
        let mcast_ttl = self.mcast_ttl(&c);
        let auth = self.auth(&c, heartbeat_private);
        let secret = self.secret_source(&c, auth);
        let vips = self.vips(&c, &nodes);
        let resources = self.resources(&c);
        let preferred_node = self.preferred_node(&c, &nodes);
        let auto_failback = self.auto_failback(&c);
        let disable_autostart = self.disable_autostart(&c);
        let resource_check = self.resource_check(&c);
        let resource_check_failures = self.resource_check_failures(&c);
        let metrics_listen = self.metrics_listen(&c);
        let drift_ignore = self.drift_ignore(&c);
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
            metrics_listen,
            drift_ignore,
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
                    Some((first_host, first_var)) if !first_var.node.same_value(&var.node) => {
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
}

/// Cluster vars with a lookup that reads well at call sites.
struct CVars<'a>(&'a Vars);

impl CVars<'_> {
    fn get(&self, key: &str) -> Option<&Var> {
        self.0.get(key)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

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
    fn cluster_settings_must_agree_across_nodes() {
        let text = BASE.replace("10.0.0.2/24}", "10.0.0.2/24, ha_keepalive: 1}");
        rejects(&text, 6, 80, "set for node2 but not for node1");
    }

    /// The same list on two host lines agrees, though its items sit at other columns.
    #[test]
    fn equal_lists_on_two_hosts_agree() {
        let text = BASE
            .replace(
                "10.0.0.1/24}",
                "10.0.0.1/24, ha_disable_autostart: [nginx]}",
            )
            .replace(
                "10.0.0.2/24}",
                "10.0.0.2/24, ha_disable_autostart:   [nginx]}",
            );
        let (_dir, result) = load(&text);
        assert!(result.is_ok(), "{:?}", result.err());
    }
}
