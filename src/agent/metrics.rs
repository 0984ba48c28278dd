//! The agent's state in Prometheus' text exposition format (version 0.0.4), for
//! `hadeploy-agent status --format prometheus` (node_exporter's textfile collector) and the
//! optional `/metrics` listener. Pure: a [`StatusAnswer`] in, text out. Every series exists from
//! start-up (a group not held is 0, a reason never seen counts 0), labels are bounded (nodes,
//! links, groups and reasons come from the configuration, never from packets), and units are
//! in the names.

use std::fmt::Write;

use super::control::StatusAnswer;
use super::membership::GAP_BUCKETS_MS;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const NODE_STATES: [&str; 5] = ["unknown", "init", "up", "active", "dead"];

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", parts.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The whole exposition for one agent.
pub fn render(status: &StatusAnswer, version: &str) -> String {
    let mut e = Exposition(String::new());
    // The cluster is named by its members: every agent of a cluster says the same. `+`, not
    // a comma: some parsers split label values at commas.
    let mut members: Vec<&str> = status.nodes.iter().map(|n| n.name.as_str()).collect();
    members.sort_unstable();
    let cluster = members.join("+");
    e.family(
        "hadeploy_agent_info",
        "gauge",
        "The agent's cluster (its node names), node name and version (always 1).",
    );
    e.sample(
        "hadeploy_agent_info",
        &[
            ("cluster", &cluster),
            ("node", &status.node),
            ("version", version),
        ],
        1,
    );
    e.family(
        "hadeploy_agent_generation",
        "gauge",
        "The agent's generation, bumped at every start.",
    );
    e.sample("hadeploy_agent_generation", &[], status.generation);
    e.family(
        "hadeploy_agent_uptime_seconds",
        "gauge",
        "Seconds since the agent started.",
    );
    e.sample(
        "hadeploy_agent_uptime_seconds",
        &[],
        seconds(status.uptime_ms),
    );
    e.family(
        "hadeploy_config_info",
        "gauge",
        "The digest of the configuration the agent loaded (always 1).",
    );
    e.sample(
        "hadeploy_config_info",
        &[("digest", &status.config_digest)],
        1,
    );
    e.family(
        "hadeploy_shared_config_info",
        "gauge",
        "The digest of the configuration without ha.cf's ucast lines (always 1): the same on every node of a cluster whose files agree.",
    );
    e.sample(
        "hadeploy_shared_config_info",
        &[
            ("cluster", &cluster),
            ("digest", &status.shared_config_digest),
        ],
        1,
    );
    e.family(
        "hadeploy_communication_up",
        "gauge",
        "1 once the first keepalive round is over.",
    );
    e.sample("hadeploy_communication_up", &[], u8::from(status.comm_up));

    e.family(
        "hadeploy_node_state",
        "gauge",
        "Each configured node's state as this agent sees it: 1 for its state, 0 for the others.",
    );
    for node in &status.nodes {
        for state in NODE_STATES {
            e.sample(
                "hadeploy_node_state",
                &[("node", &node.name), ("state", state)],
                u8::from(node.status == state),
            );
        }
    }
    e.family(
        "hadeploy_link_up",
        "gauge",
        "1 while heartbeats from the peer arrive on the link.",
    );
    for link in &status.links {
        e.sample(
            "hadeploy_link_up",
            &[("node", &link.node), ("link", &link.link)],
            u8::from(link.status == "up"),
        );
    }

    e.family(
        "hadeploy_group_held",
        "gauge",
        "1 while this node holds the resource group.",
    );
    let held = |group: &String| status.resources.iter().find(|h| &h.group == group);
    for group in &status.groups {
        e.sample(
            "hadeploy_group_held",
            &[("group", group)],
            u8::from(held(group).is_some()),
        );
    }
    e.family(
        "hadeploy_group_held_since_timestamp_seconds",
        "gauge",
        "When this node started holding the group (0 while it does not).",
    );
    for group in &status.groups {
        let since = held(group)
            .and_then(|h| h.since_unix_ms)
            .map_or(0.0, seconds);
        e.sample(
            "hadeploy_group_held_since_timestamp_seconds",
            &[("group", group)],
            since,
        );
    }

    e.family(
        "hadeploy_vip_present",
        "gauge",
        "1 while the VIP is on one of this node's interfaces (absent until first checked); compare with hadeploy_vip_held.",
    );
    for v in status.vips.iter().filter(|v| v.present.is_some()) {
        e.sample(
            "hadeploy_vip_present",
            &[("vip", &v.address), ("group", &v.group)],
            u8::from(v.present == Some(true)),
        );
    }
    e.family(
        "hadeploy_vip_held",
        "gauge",
        "1 while this node holds the VIP's group.",
    );
    for v in &status.vips {
        e.sample(
            "hadeploy_vip_held",
            &[("vip", &v.address), ("group", &v.group)],
            u8::from(v.held),
        );
    }

    e.family(
        "hadeploy_transitions_total",
        "counter",
        "Hand-offs this node decided since it started, by kind (acquire, release) and reason.",
    );
    for t in &status.transitions {
        e.sample(
            "hadeploy_transitions_total",
            &[("kind", &t.kind), ("reason", &t.reason)],
            t.count,
        );
    }
    e.family(
        "hadeploy_last_transition_timestamp_seconds",
        "gauge",
        "When this node last decided to take or give up groups (0: never since it started).",
    );
    e.sample(
        "hadeploy_last_transition_timestamp_seconds",
        &[],
        status
            .last_transition
            .as_ref()
            .map_or(0.0, |t| seconds(t.at_unix_ms)),
    );

    e.family(
        "hadeploy_heartbeat_interval_seconds",
        "histogram",
        "Intervals between a live peer's heartbeats.",
    );
    for hb in &status.heartbeats {
        let mut cumulative = 0u64;
        for (i, bound) in GAP_BUCKETS_MS.iter().enumerate() {
            cumulative += hb.interval_counts.get(i).copied().unwrap_or(0);
            let le = format!("{}", seconds(*bound));
            e.sample(
                "hadeploy_heartbeat_interval_seconds_bucket",
                &[("peer", &hb.node), ("le", &le)],
                cumulative,
            );
        }
        let count: u64 = hb.interval_counts.iter().sum();
        e.sample(
            "hadeploy_heartbeat_interval_seconds_bucket",
            &[("peer", &hb.node), ("le", "+Inf")],
            count,
        );
        e.sample(
            "hadeploy_heartbeat_interval_seconds_sum",
            &[("peer", &hb.node)],
            seconds(hb.interval_sum_ms),
        );
        e.sample(
            "hadeploy_heartbeat_interval_seconds_count",
            &[("peer", &hb.node)],
            count,
        );
    }
    e.family(
        "hadeploy_heartbeat_late_total",
        "counter",
        "Heartbeats from the peer that came later than warntime.",
    );
    for hb in &status.heartbeats {
        e.sample(
            "hadeploy_heartbeat_late_total",
            &[("peer", &hb.node)],
            hb.late,
        );
    }
    e.family(
        "hadeploy_heartbeat_longest_gap_seconds",
        "gauge",
        "The longest interval between the peer's heartbeats since the agent started.",
    );
    for hb in &status.heartbeats {
        e.sample(
            "hadeploy_heartbeat_longest_gap_seconds",
            &[("peer", &hb.node)],
            seconds(hb.longest_gap_ms),
        );
    }

    let c = &status.counters;
    e.family(
        "hadeploy_packets_received_total",
        "counter",
        "Datagrams received on the heartbeat links.",
    );
    e.sample("hadeploy_packets_received_total", &[], c.packets_in);
    e.family(
        "hadeploy_packets_sent_total",
        "counter",
        "Datagrams sent on the heartbeat links.",
    );
    e.sample("hadeploy_packets_sent_total", &[], c.packets_out);
    e.family(
        "hadeploy_packets_rejected_total",
        "counter",
        "Datagrams dropped, by reason.",
    );
    for (reason, n) in [
        ("malformed", c.bad_packets),
        ("bad_auth", c.bad_auth),
        ("unknown_node", c.unknown_node),
        ("replay", c.replays),
        ("duplicate", c.duplicates),
    ] {
        e.sample("hadeploy_packets_rejected_total", &[("reason", reason)], n);
    }
    e.family(
        "hadeploy_auth_packets_received_total",
        "counter",
        "Authenticated datagrams received, by the authkeys entry that verified them (which key the peers sign with).",
    );
    for k in &status.keys {
        let index = k.index.to_string();
        e.sample(
            "hadeploy_auth_packets_received_total",
            &[("key", &index), ("method", &k.method)],
            k.packets_in,
        );
    }
    e.family(
        "hadeploy_auth_key_signing",
        "gauge",
        "1 for the authkeys entry this agent signs with (auth N), 0 for the others it accepts.",
    );
    for k in &status.keys {
        let index = k.index.to_string();
        e.sample(
            "hadeploy_auth_key_signing",
            &[("key", &index), ("method", &k.method)],
            u8::from(k.signs),
        );
    }
    e.family(
        "hadeploy_retransmissions_total",
        "counter",
        "Retransmissions asked of peers and sent to them.",
    );
    e.sample(
        "hadeploy_retransmissions_total",
        &[("direction", "requested")],
        c.rexmit_requested,
    );
    e.sample(
        "hadeploy_retransmissions_total",
        &[("direction", "sent")],
        c.rexmit_sent,
    );
    e.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::control::{
        Counters, HeartbeatView, HeldGroup, KeyView, LinkView, NodeView, TransitionCount, VipView,
    };

    fn answer() -> StatusAnswer {
        StatusAnswer {
            comm_up: true,
            config_digest: "d1".into(),
            counters: Counters {
                bad_auth: 3,
                packets_in: 10,
                ..Counters::default()
            },
            generation: 42,
            groups: vec!["VIP 10.0.0.10".into(), "web \"two\"".into()],
            heartbeats: vec![HeartbeatView {
                interval_counts: vec![0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 2],
                interval_sum_ms: 61_400,
                late: 2,
                longest_gap_ms: 31_000,
                node: "node2".into(),
            }],
            links: vec![LinkView {
                link: "eth1".into(),
                node: "node2".into(),
                status: "dead".into(),
            }],
            node: "node1".into(),
            nodes: vec![
                NodeView {
                    name: "node1".into(),
                    self_: true,
                    status: "active".into(),
                },
                NodeView {
                    name: "node2".into(),
                    self_: false,
                    status: "dead".into(),
                },
            ],
            resources: vec![HeldGroup {
                group: "VIP 10.0.0.10".into(),
                home: "node1".into(),
                since_unix_ms: Some(1_700_000_000_500),
            }],
            transitions: vec![TransitionCount {
                count: 1,
                kind: "acquire".into(),
                reason: "unheld".into(),
            }],
            uptime_ms: 9_000,
            keys: vec![
                KeyView {
                    index: 1,
                    method: "sha1".into(),
                    packets_in: 7,
                    signs: false,
                },
                KeyView {
                    index: 2,
                    method: "sha1".into(),
                    packets_in: 3,
                    signs: true,
                },
            ],
            vips: vec![
                VipView {
                    address: "10.0.0.10".into(),
                    group: "VIP 10.0.0.10".into(),
                    held: true,
                    present: Some(false),
                },
                VipView {
                    address: "10.0.0.11".into(),
                    group: "web \"two\"".into(),
                    held: false,
                    present: None,
                },
            ],
            ..StatusAnswer::default()
        }
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?}"));
        match &sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name}: {other:?}"),
        }
    }

    /// A real parser reads every line, and the values are the answer's.
    #[test]
    fn the_exposition_parses_and_says_what_the_agent_knows() {
        let text = render(&answer(), "0.1.0");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("parses");
        let v = |name: &str, labels: &[(&str, &str)]| value(&scrape, name, labels);
        assert_eq!(v("hadeploy_agent_info", &[("cluster", "node1+node2")]), 1.0);
        assert_eq!(
            v(
                "hadeploy_node_state",
                &[("node", "node2"), ("state", "dead")]
            ),
            1.0
        );
        assert_eq!(
            v(
                "hadeploy_node_state",
                &[("node", "node2"), ("state", "active")]
            ),
            0.0
        );
        assert_eq!(v("hadeploy_link_up", &[("node", "node2")]), 0.0);
        // Which key the peers sign with, and a held VIP the kernel lost; one not yet checked
        // has no presence series.
        let key = |k: &str| v("hadeploy_auth_packets_received_total", &[("key", k)]);
        assert_eq!((key("1"), key("2")), (7.0, 3.0));
        assert_eq!(v("hadeploy_auth_key_signing", &[("key", "2")]), 1.0);
        assert_eq!(v("hadeploy_vip_held", &[("vip", "10.0.0.10")]), 1.0);
        assert_eq!(v("hadeploy_vip_present", &[("vip", "10.0.0.10")]), 0.0);
        assert!(
            !text.contains("hadeploy_vip_present{vip=\"10.0.0.11\""),
            "{text}"
        );
        // Every configured group is a series, held or not; the odd name survives escaping.
        assert_eq!(v("hadeploy_group_held", &[("group", "VIP 10.0.0.10")]), 1.0);
        // (This parser does not unescape label values: the escaping is checked on the text.)
        assert!(
            text.contains("hadeploy_group_held{group=\"web \\\"two\\\"\"} 0\n"),
            "{text}"
        );
        assert_eq!(
            v(
                "hadeploy_group_held_since_timestamp_seconds",
                &[("group", "VIP 10.0.0.10")]
            ),
            1_700_000_000.5
        );
        assert_eq!(
            v("hadeploy_packets_rejected_total", &[("reason", "bad_auth")]),
            3.0
        );
        assert_eq!(
            v("hadeploy_heartbeat_late_total", &[("peer", "node2")]),
            2.0
        );
        assert_eq!(v("hadeploy_last_transition_timestamp_seconds", &[]), 0.0);
        // The histogram is cumulative and ends with every interval at +Inf.
        let buckets: Vec<(f64, f64)> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "hadeploy_heartbeat_interval_seconds")
            .flat_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(b) => {
                    b.iter().map(|c| (c.less_than, c.count)).collect::<Vec<_>>()
                }
                _ => Vec::new(),
            })
            .collect();
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 8.0)), "{buckets:?}");
        assert_eq!(buckets.iter().find(|(le, _)| *le == 0.2).unwrap().1, 5.0);
    }

    #[test]
    fn families_are_announced_once_each_with_their_samples_together() {
        let text = render(&answer(), "0.1.0");
        let mut seen: Vec<&str> = Vec::new();
        let mut current = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name), "{name} announced twice");
                seen.push(name);
                current = name;
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(current),
                    "`{line}` outside its family {current}"
                );
            }
        }
    }
}
