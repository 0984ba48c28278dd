//! The resource group and how it is held: the resources after the VIPs (script names with `::`
//! arguments, safe to hand to a shell), the node the group prefers and whether it fails back
//! there, the services hadeploy stops from starting at boot, and how often the agent checks the
//! held resources and how many failed checks move the group.

use crate::config::ha::{AutoFailback, HbDuration};
use crate::config::inventory::cluster::keys::{
    AUTO_FAILBACK_CHOICES, DEFAULT_AUTOSTART, DEFAULT_RESOURCE_CHECK,
    DEFAULT_RESOURCE_CHECK_FAILURES,
};
use crate::config::inventory::cluster::{ClusterNode, ResourceSpec};
use crate::config::inventory::diag::{Diagnostic, Origin, did_you_mean};
use crate::config::inventory::yaml::Value;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    pub(super) fn resources(&mut self, c: &CVars) -> Vec<ResourceSpec> {
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
            // The name is a file under /etc/ha.d/resource.d or /etc/init.d: `.` and `..`
            // would name the directory itself or its parent.
            let name_ok = name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
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

    pub(super) fn preferred_node(&mut self, c: &CVars, nodes: &[ClusterNode]) -> String {
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

    pub(super) fn auto_failback(&mut self, c: &CVars) -> AutoFailback {
        match c.get("ha_auto_failback").map(|v| v.node.value.clone()) {
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
                    AUTO_FAILBACK_CHOICES,
                );
                AutoFailback::On
            }
        }
    }

    pub(super) fn disable_autostart(&mut self, c: &CVars) -> Vec<String> {
        match c.get("ha_disable_autostart").cloned() {
            None => DEFAULT_AUTOSTART.iter().map(|s| s.to_string()).collect(),
            Some(var) => self.word_list(&var, "ha_disable_autostart"),
        }
    }

    /// Off unless `ha_resource_check` is set.
    pub(super) fn resource_check(&mut self, c: &CVars) -> Option<HbDuration> {
        let resource_check = c
            .get("ha_resource_check")
            .is_some()
            .then(|| self.duration(c, "ha_resource_check", DEFAULT_RESOURCE_CHECK));
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
        resource_check
    }

    /// Off unless `ha_metrics_listen` is set: an ADDRESS:PORT every agent of the cluster binds.
    pub(super) fn metrics_listen(&mut self, c: &CVars) -> Option<std::net::SocketAddr> {
        let text = self.string(c, "ha_metrics_listen")?;
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let var = c.get("ha_metrics_listen").cloned();
                self.invalid(
                    var.as_ref(),
                    "ha_metrics_listen",
                    &format!("`{text}` is not an ADDRESS:PORT"),
                    "e.g. `127.0.0.1:9717` (node_exporter on the node) or `0.0.0.0:9717`",
                );
                None
            }
        }
    }

    pub(super) fn resource_check_failures(&mut self, c: &CVars) -> u32 {
        match c.get("ha_resource_check_failures").cloned() {
            None => DEFAULT_RESOURCE_CHECK_FAILURES,
            Some(var) => match &var.node.value {
                Value::Int(n) if (1..=100).contains(n) => *n as u32,
                _ => {
                    self.invalid(
                        Some(&var),
                        "ha_resource_check_failures",
                        "not a count of 1-100",
                        "failed checks in a row before the group moves, e.g. 3",
                    );
                    DEFAULT_RESOURCE_CHECK_FAILURES
                }
            },
        }
    }
}

fn safe_arg_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '@' | '/' | ':' | '=' | ',' | '+' | '%')
}

#[cfg(test)]
mod tests {
    use crate::config::ha::AutoFailback;
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

    /// A resource name is a script's file name: `.`, `..` and names that start with
    /// neither a letter nor a digit are refused.
    #[test]
    fn resource_names_that_name_directories_are_refused() {
        for name in ["'..'", "'.'", ".nginx", "-x"] {
            let (_dir, result) =
                load(&BASE.replace("ha_resources: [nginx]", &format!("ha_resources: [{name}]")));
            let diags = result.expect_err(name);
            assert!(
                diags
                    .errors()
                    .any(|d| d.message.contains("characters a resource script name")),
                "{name}"
            );
        }
    }

    #[test]
    fn metrics_listen_is_an_address_and_port() {
        let listen = "ha_resources: [nginx]\n        ha_metrics_listen: 127.0.0.1:9717";
        let (_dir, result) = load(&BASE.replace("ha_resources: [nginx]", listen));
        assert_eq!(
            result.unwrap().clusters[0].metrics_listen,
            Some("127.0.0.1:9717".parse().unwrap())
        );
        let (_dir, result) = load(BASE);
        assert_eq!(result.unwrap().clusters[0].metrics_listen, None);
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_metrics_listen: localhost"),
            9,
            9,
            "`localhost` is not an ADDRESS:PORT",
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
