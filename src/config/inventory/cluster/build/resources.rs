//! The resource group and how it is held: the resources after the VIPs (script names with `::`
//! arguments, safe to hand to a shell), the node the group prefers and whether it fails back
//! there, the services hadeploy stops from starting at boot, and how often the agent checks the
//! held resources and how many failed checks move the group.

use crate::config::ha::{AutoFailback, HbDuration};
use crate::config::inventory::cluster::keys::{
    AUTO_FAILBACK_CHOICES, DEFAULT_AUTOSTART, DEFAULT_RESOURCE_CHECK,
    DEFAULT_RESOURCE_CHECK_FAILURES,
};
use crate::config::inventory::cluster::{ClusterNode, DriftIgnore, ResourceSpec};
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

    /// `ha_drift_ignore: [{rule: R, host: H, reason: "…", until: YYYY-MM-DD}]`; `host` may be
    /// left out (every place). A reason and an end date are required: an ignore nobody can
    /// explain or that never ends is a finding hidden for good.
    pub(super) fn drift_ignore(&mut self, c: &CVars) -> Vec<DriftIgnore> {
        const KEY: &str = "ha_drift_ignore";
        let Some(var) = c.get(KEY).cloned() else {
            return Vec::new();
        };
        let Value::Seq(items) = &var.node.value else {
            self.type_error(
                &var,
                KEY,
                "a list of {rule, host, reason, until}",
                var.node.value.kind(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let origin = Origin::new(&var.origin.file, item.pos);
            let Value::Map(entries) = &item.value else {
                self.error(
                    Diagnostic::error(origin, Some(KEY), "an entry is not a map")
                        .hint("{rule: restart-pending, host: node2, reason: \"kernel update tonight\", until: 2026-12-31}"),
                );
                continue;
            };
            let field = |name: &str| {
                entries
                    .iter()
                    .find(|(k, _)| k.scalar_text().as_deref() == Some(name))
                    .and_then(|(_, v)| v.scalar_text())
            };
            if let Some((k, _)) = entries.iter().find(|(k, _)| {
                !matches!(
                    k.scalar_text().as_deref(),
                    Some("rule" | "host" | "reason" | "until")
                )
            }) {
                self.error(
                    Diagnostic::error(
                        Origin::new(&var.origin.file, k.pos),
                        Some(KEY),
                        format!("unknown field `{}`", k.scalar_text().unwrap_or_default()),
                    )
                    .hint("the fields are rule, host, reason and until"),
                );
                continue;
            }
            let (Some(rule), Some(reason), Some(until)) =
                (field("rule"), field("reason"), field("until"))
            else {
                self.error(
                    Diagnostic::error(origin, Some(KEY), "an entry needs rule, reason and until")
                        .hint("say why the finding is accepted and until when, e.g. until: 2026-12-31"),
                );
                continue;
            };
            let Some((date, days)) = parse_date(&until) else {
                self.error(
                    Diagnostic::error(origin, Some(KEY), format!("until `{until}` is not a date"))
                        .hint("YYYY-MM-DD, the last day the finding is ignored"),
                );
                continue;
            };
            out.push(DriftIgnore {
                rule,
                host: field("host"),
                reason,
                until: date,
                until_days: days,
                origin,
            });
        }
        out
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

/// `YYYY-MM-DD` → the date and its days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn parse_date(text: &str) -> Option<((i32, u32, u32), i64)> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let (yy, mm) = if m <= 2 {
        (i64::from(y) - 1, m + 9)
    } else {
        (i64::from(y), m - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * i64::from(mm) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(((y, m, d), era * 146_097 + doe - 719_468))
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
    fn dates_count_days_from_the_epoch() {
        assert_eq!(super::parse_date("1970-01-01"), Some(((1970, 1, 1), 0)));
        assert_eq!(super::parse_date("2000-03-01").unwrap().1, 11_017);
        assert_eq!(super::parse_date("2026-12-02").unwrap().1, 20_789);
        assert_eq!(super::parse_date("2024-02-29").unwrap().0, (2024, 2, 29));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "yesterday",
            "2026-12-32",
        ] {
            assert_eq!(super::parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn drift_ignore_needs_a_reason_and_an_end() {
        let entry = "ha_resources: [nginx]\n        ha_drift_ignore: [{rule: restart-pending, host: node2, reason: kernel tonight, until: 2026-12-31}]";
        let (_dir, result) = load(&BASE.replace("ha_resources: [nginx]", entry));
        let ignore = &result.unwrap().clusters[0].drift_ignore;
        assert_eq!(ignore.len(), 1);
        assert_eq!(
            (
                ignore[0].rule.as_str(),
                ignore[0].host.as_deref(),
                ignore[0].until
            ),
            ("restart-pending", Some("node2"), (2026, 12, 31))
        );
        rejects(
            &BASE.replace(
                "ha_resources: [nginx]",
                "ha_drift_ignore: [{rule: link, until: 2026-12-31}]",
            ),
            9,
            27,
            "needs rule, reason and until",
        );
        rejects(
            &BASE.replace(
                "ha_resources: [nginx]",
                "ha_drift_ignore: [{rule: link, reason: x, until: soon}]",
            ),
            9,
            27,
            "is not a date",
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
