//! Heartbeat's timers: reading a duration in Heartbeat's own syntax (seconds, or `ms`), and the
//! ordering the daemon needs between keepalive, warntime, deadtime and initdead.

use crate::config::ha::HbDuration;
use crate::config::inventory::cluster::keys::{
    DEFAULT_DEADTIME, DEFAULT_INITDEAD, DEFAULT_KEEPALIVE, DEFAULT_WARNTIME,
};
use crate::config::inventory::diag::Diagnostic;
use crate::config::inventory::yaml::Value;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    /// keepalive, warntime, deadtime and initdead, checked against each other.
    pub(super) fn timers(&mut self, c: &CVars) -> [HbDuration; 4] {
        let keepalive = self.duration(c, "ha_keepalive", DEFAULT_KEEPALIVE);
        let warntime = self.duration(c, "ha_warntime", DEFAULT_WARNTIME);
        let deadtime = self.duration(c, "ha_deadtime", DEFAULT_DEADTIME);
        let initdead = self.duration(c, "ha_initdead", DEFAULT_INITDEAD);
        self.check_timers(c, keepalive, warntime, deadtime, initdead);
        [keepalive, warntime, deadtime, initdead]
    }

    pub(super) fn duration(&mut self, c: &CVars, key: &str, default: HbDuration) -> HbDuration {
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
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

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
}
