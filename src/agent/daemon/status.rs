//! What `hadeploy-agent status` shows: the daemon's state as one [`StatusAnswer`] (the control
//! socket's answer, read by the drill and the tests too) and as the table an operator reads,
//! like `cl_status`.

use std::time::Instant;

use super::Agent;
use crate::agent::control::{
    HeartbeatView, HeldGroup, KeyView, LinkView, NodeView, StatusAnswer, TimersView,
    TransitionCount, TransitionView, VipView,
};
use crate::agent::membership::NodeStatus;

impl Agent {
    /// The status answer: the core's view of the cluster, and the media only the shell knows.
    pub(super) fn status_answer(&self, now: Instant) -> StatusAnswer {
        let node = &self.node;
        let config = node.config();
        let nodes = config
            .nodes
            .iter()
            .map(|n| {
                let me = *n == config.node;
                let status = if me {
                    node.own_status()
                } else {
                    node.membership().status(n).unwrap_or(NodeStatus::Unknown)
                };
                NodeView {
                    name: n.clone(),
                    self_: me,
                    status: status.as_str().to_string(),
                }
            })
            .collect();
        let links = node
            .membership()
            .links()
            .map(|(node, link, up)| LinkView {
                link: link.to_string(),
                node: node.to_string(),
                status: if up { "up" } else { "dead" }.to_string(),
            })
            .collect();
        let groups = node.resources().groups();
        let resources = node
            .resources()
            .held()
            .iter()
            .map(|&g| HeldGroup {
                group: groups[g].name.clone(),
                home: groups[g].home.clone(),
                since_unix_ms: node.held_since_unix_ms(g),
            })
            .collect();
        let draining = self
            .draining
            .lock()
            .map(|d| d.iter().map(|&g| groups[g].name.clone()).collect())
            .unwrap_or_default();
        let heartbeats = node
            .membership()
            .gaps()
            .map(|(peer, gaps)| HeartbeatView {
                node: peer.to_string(),
                longest_gap_ms: gaps.longest_ms,
                late: gaps.late,
                interval_counts: gaps.counts.to_vec(),
                interval_sum_ms: gaps.sum_ms,
            })
            .collect();
        let last_transition = node.last_transition().map(|t| TransitionView {
            groups: t.groups.clone(),
            kind: transition_kind(t.acquired).into(),
            reason: t.reason.into(),
            detail: t.detail.clone(),
            at_unix_ms: t.at_unix_ms,
        });
        let transitions = [true, false]
            .into_iter()
            .flat_map(|acquired| {
                node.transitions(acquired)
                    .map(move |(reason, count)| TransitionCount {
                        kind: transition_kind(acquired).into(),
                        reason: reason.into(),
                        count,
                    })
            })
            .collect();
        StatusAnswer {
            comm_up: node.membership().comm_up(),
            heartbeats,
            last_transition,
            transitions,
            config_digest: self.settings.config_digest.clone(),
            config_loaded_unix_ms: self.config_loaded_unix_ms,
            keys: config
                .keys
                .keys
                .values()
                .map(|k| KeyView {
                    index: k.index,
                    method: k.method.name().to_string(),
                    packets_in: node.packets_by_key(k.index),
                    signs: k.index == config.keys.active,
                })
                .collect(),
            timers: TimersView {
                deadtime_ms: config.timers.deadtime.as_millis() as u64,
                initdead_ms: config.timers.initdead.as_millis() as u64,
                keepalive_ms: config.timers.keepalive.as_millis() as u64,
                warntime_ms: config.timers.warntime.as_millis() as u64,
            },
            counters: node.counters().clone(),
            draining,
            generation: node.generation(),
            groups: groups.iter().map(|g| g.name.clone()).collect(),
            links,
            media: self.media.links(),
            node: config.node.clone(),
            nodes,
            resources,
            rscstatus: node.resources().status_word().to_string(),
            shared_config_digest: self.settings.shared_config_digest.clone(),
            uptime_ms: node.uptime(now).as_millis() as u64,
            vips: self.vip_views(),
        }
    }
}

impl Agent {
    /// Every configured VIP, by group, held or not, and whether the kernel has it.
    fn vip_views(&self) -> Vec<VipView> {
        let groups = self.node.resources().groups();
        let held = self.node.resources().held();
        let present = self
            .vips_present
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        self.settings
            .steps
            .iter()
            .enumerate()
            .flat_map(|(g, steps)| {
                let (group, held) = (groups[g].name.clone(), held.contains(&g));
                let present = &present;
                steps.iter().filter_map(move |s| match s {
                    crate::agent::executor::Step::Vip(v) => Some(VipView {
                        address: v.address.to_string(),
                        group: group.clone(),
                        held,
                        present: present.get(&v.address).copied(),
                    }),
                    _ => None,
                })
            })
            .collect()
    }
}

fn transition_kind(acquired: bool) -> &'static str {
    if acquired { "acquire" } else { "release" }
}

/// The `status` answer as an operator reads it: nodes, links, resources, counters.
pub fn status_table(status: &StatusAnswer) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} (generation {}), communication {}, resources: {}",
        status.node,
        status.generation,
        if status.comm_up { "up" } else { "not up yet" },
        status.rscstatus,
    );
    let t = &status.timers;
    if t.keepalive_ms > 0 {
        let keys: Vec<String> = status
            .keys
            .iter()
            .map(|k| {
                let signs = if k.signs { ", signs" } else { "" };
                format!("{} ({}{signs})", k.index, k.method)
            })
            .collect();
        let _ = writeln!(
            out,
            "timers keepalive {} ms, warntime {} ms, deadtime {} ms, initdead {} ms; keys {}",
            t.keepalive_ms,
            t.warntime_ms,
            t.deadtime_ms,
            t.initdead_ms,
            keys.join(", ")
        );
    }
    let _ = writeln!(out, "\nNODE             STATUS");
    for node in &status.nodes {
        let me = if node.self_ { " (this node)" } else { "" };
        let _ = writeln!(out, "{:<16} {}{me}", node.name, node.status);
    }
    let _ = writeln!(out, "\nLINK                         STATUS");
    for link in &status.links {
        let _ = writeln!(
            out,
            "{:<28} {}",
            format!("{}:{}", link.node, link.link),
            link.status
        );
    }
    let _ = writeln!(out, "\nHELD GROUP                   SINCE (unix ms)");
    for group in &status.resources {
        let since = group
            .since_unix_ms
            .map_or_else(|| "null".to_string(), |ms| ms.to_string());
        let _ = writeln!(out, "{:<28} {since}", group.group);
    }
    for group in &status.draining {
        let _ = writeln!(
            out,
            "{group:<28} released: its listeners are still stopping"
        );
    }
    let _ = writeln!(out, "\nCOUNTERS");
    // Through the JSON, so every counter is listed by its wire name, in the answer's order.
    if let Ok(serde_json::Value::Object(counters)) = serde_json::to_value(&status.counters) {
        for (name, value) in counters {
            let _ = writeln!(out, "  {name:<20} {value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is what it was when it was read from a `serde_json::Value`.
    #[test]
    fn status_table_from_the_typed_answer() {
        let status = StatusAnswer::from_json(
            r#"{"comm_up":true,"counters":{"bad_auth":2,"packets_in":9},"generation":4,
            "links":[{"link":"eth1","node":"node2","status":"dead"}],"media":["eth1"],
            "node":"node1","nodes":[{"name":"node1","self":true,"status":"active"},
            {"name":"node2","self":false,"status":"dead"}],
            "resources":[{"group":"nginx","home":"node1","since_unix_ms":1700000000000},
            {"group":"192.168.1.10","home":"node1","since_unix_ms":null}],
            "rscstatus":"all","uptime_ms":12,"draining":["10.0.0.9"],
            "keys":[{"index":1,"method":"sha1","signs":false},{"index":2,"method":"sha1","signs":true}],
            "timers":{"deadtime_ms":1000,"initdead_ms":3000,"keepalive_ms":200,"warntime_ms":500}}"#,
        )
        .unwrap();
        let table = status_table(&status);
        let expected = "\
node node1 (generation 4), communication up, resources: all
timers keepalive 200 ms, warntime 500 ms, deadtime 1000 ms, initdead 3000 ms; keys 1 (sha1), 2 (sha1, signs)

NODE             STATUS
node1            active (this node)
node2            dead

LINK                         STATUS
node2:eth1                   dead

HELD GROUP                   SINCE (unix ms)
nginx                        1700000000000
192.168.1.10                 null
10.0.0.9                     released: its listeners are still stopping

COUNTERS
  bad_auth             2
  bad_packets          0
  duplicates           0
  packets_in           9
  packets_out          0
  replays              0
  rexmit_requested     0
  rexmit_sent          0
  unknown_node         0
";
        assert_eq!(table, expected);
    }
}
