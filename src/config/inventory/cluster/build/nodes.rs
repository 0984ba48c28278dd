//! The nodes of a cluster: each host's Heartbeat node name, how the controller reaches it
//! (Ansible's connection variables) and its heartbeat and service addresses; then the rules
//! between the nodes of one cluster — distinct names, distinct heartbeat addresses, one
//! heartbeat subnet, and an address on every node when the media need one.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::config::ha::Ipv4Net;
use crate::config::inventory::cluster::{ClusterNode, Connection, Media};
use crate::config::inventory::diag::{Diagnostic, Origin};
use crate::config::inventory::layout::Vars;
use crate::config::inventory::yaml::Value;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    /// An error at `key` (or the host) unless `value` can reach ssh as one word.
    fn refuse_unless_ssh_word(&mut self, vars: &Vars, origin: &Origin, key: &str, value: &str) {
        if ssh_word(value) {
            return;
        }
        let at = vars
            .get(key)
            .map(|v| v.origin.clone())
            .unwrap_or_else(|| origin.clone());
        let d = Diagnostic::error(
            at,
            Some(key),
            format!("`{value}` cannot be given to ssh as {key}"),
        )
        .hint("a host name, an address or a user name: no leading `-`, no blanks");
        self.error(d);
    }

    pub(super) fn node(&mut self, host: &str, vars: &Vars) -> Option<ClusterNode> {
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
        self.refuse_unless_ssh_word(vars, &origin, "ansible_host", &connection_host);
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
        if let Some(user) = &user {
            self.refuse_unless_ssh_word(vars, &origin, "ansible_user", user);
        }
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
        let files = self.service_files(vars);
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
            files,
            vars: vars
                .iter()
                .map(|(k, v)| (k.clone(), super::files::template_value(&v.node)))
                .collect(),
        })
    }

    pub(super) fn check_nodes(&mut self, nodes: &[ClusterNode], media: Media) {
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
}

/// A host name: it names directories under `render --out` and files on the nodes, so `.`,
/// `..` and anything else that does not start with a letter or digit is refused.
fn valid_node_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Whether `text` can reach ssh as a destination or user name and nothing else: a leading
/// `-` would be read as an option (`-oProxyCommand=…` runs a command on the controller), and
/// blanks or control characters have no place in either.
fn ssh_word(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

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

    #[track_caller]
    fn refused(text: &str, needle: &str) {
        let (_dir, result) = load(text);
        let diags = result.expect_err("inventory should be rejected");
        assert!(
            diags.errors().any(|d| d.message.contains(needle)),
            "no error containing {needle:?}"
        );
    }

    /// Names become paths (`render --out DIR/NAME/etc/ha.d`) and ssh arguments: a name `..`
    /// would write the controller's own /etc/ha.d, an option-like host would run a command.
    #[test]
    fn names_that_escape_their_place_are_refused() {
        let node2 = "node2: {ansible_host: 192.168.1.12, ";
        for (with, needle) in [
            (
                "node2: {ha_node_name: '..', ",
                "`..` cannot be a Heartbeat node name",
            ),
            ("node2: {ha_node_name: .hidden, ", "`.hidden` cannot be"),
            (
                "node2: {ansible_host: '-oProxyCommand=touch /tmp/x', ",
                "cannot be given to ssh as ansible_host",
            ),
            (
                "node2: {ansible_host: 192.168.1.12, ansible_user: '-oX=y', ",
                "cannot be given to ssh as ansible_user",
            ),
        ] {
            refused(&BASE.replace(node2, with), needle);
        }
        refused(
            &BASE.replace("node2: {", "'..': {"),
            "`..` cannot be a Heartbeat node name",
        );
        // A user that is not a string is one error, not one per check that reads it.
        let (_dir, result) = load(&BASE.replace(node2, "node2: {ansible_user: [a], "));
        let diags = result.expect_err("a list is no user name");
        let about_user = diags
            .errors()
            .filter(|d| d.key.as_deref() == Some("ansible_user"))
            .count();
        assert_eq!(about_user, 1);
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
}
