//! `hadeploy status`: the fleet-wide `cl_status`. One read-only survey (the probe `diff` uses,
//! which asks every agent for its own view) becomes, per cluster: each group's holder and since
//! when, each node's state as every agent sees it, links, agent versions, the last hand-off and
//! why, the longest heartbeat gap and late heartbeats, and the counters that mean trouble.
//! Health is `diff`'s runtime judgement: healthy (0), degraded (2), a host unreachable (4), a
//! critical invariant broken (8). `--watch` redraws until Ctrl-C.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::inventory::Inventory;
use crate::controller::apply::{self, Outcome, Surveyed};
use crate::controller::drift::{self, DriftReport, Kind};
use crate::error::{Error, Status, describe};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// Only this cluster (the inventory group that sets ha_vips).
    #[arg(long)]
    pub cluster: Option<String>,
    /// One machine-readable JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Redraw every SECS seconds (default 2) until Ctrl-C.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
    /// An ssh_config file to use instead of ~/.ssh/config.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// Trust a host key seen for the first time (StrictHostKeyChecking=accept-new).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let inv = super::diff::load_selected(&args.inventory, args.cluster.as_deref())?;
    let options = super::diff::survey_options(
        &args.inventory,
        &inv,
        args.ssh_config.clone(),
        args.accept_new_host_keys,
        args.json,
    )?;
    let runtime = super::runtime()?;
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let interval = match args.watch {
        None => None,
        Some(secs) if secs.is_finite() && secs >= 0.2 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            return Err(Error::input(format!(
                "--watch {secs}: give an interval of at least 0.2 seconds"
            )));
        }
    };
    runtime.block_on(async {
        // Registered before the first round, so a Ctrl-C that arrives while a round is being
        // gathered is not lost; a one-shot run keeps SIGINT's default.
        let mut interrupt = match interval {
            Some(_) => Some(
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    .map_err(|e| Error::input(format!("cannot catch Ctrl-C: {e}")))?,
            ),
            None => None,
        };
        let mut last = Status::OK;
        loop {
            let surveyed = tokio::select! {
                surveyed = apply::survey(&inv, &options) => surveyed,
                () = interrupted(&mut interrupt) => return Ok(last),
            };
            let hosts = surveyed.map_err(|e| Error::input(describe(&e)))?;
            let report = drift::judge(&inv, &hosts);
            let now_ms = unix_ms_now();
            let view = FleetView::of(&inv, &hosts, &report);
            let mut text = if args.json {
                serde_json::to_string(&view).expect("the view serializes") + "\n"
            } else {
                view.text(now_ms)
            };
            last = view.status();
            if interval.is_some() && on_terminal && !args.json {
                // Home and clear: the screen is redrawn in place.
                text = format!("\x1b[H\x1b[2J{text}");
            }
            super::print(text.as_bytes())?;
            let Some(every) = interval else {
                return Ok(last);
            };
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                () = interrupted(&mut interrupt) => return Ok(last),
            }
        }
    })
}

/// Resolves at the next SIGINT, never without a listener.
async fn interrupted(interrupt: &mut Option<tokio::signal::unix::Signal>) {
    match interrupt {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// "3h12m", "4m05s", "12s": how long, as an operator says it.
pub fn for_how_long(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[derive(Serialize)]
struct GroupView {
    group: String,
    /// The hosts whose agent says it holds the group (one when healthy).
    holders: Vec<String>,
    since_unix_ms: Option<u64>,
}

#[derive(Default, Serialize)]
struct NodeView {
    host: String,
    /// Its Heartbeat name (`ha_node_name`, else the host's), which the agents' views use.
    node_name: String,
    reachable: bool,
    error: Option<String>,
    agent_version: Option<String>,
    generation: Option<u64>,
    uptime_ms: Option<u64>,
    /// Every configured node as this node's agent sees it.
    sees: BTreeMap<String, String>,
    /// `peer:interface` → up or dead.
    links: BTreeMap<String, String>,
    /// The longest interval between a peer's heartbeats since the agent started, and how many
    /// were later than warntime.
    longest_gap_ms: BTreeMap<String, u64>,
    late_heartbeats: u64,
    bad_auth: u64,
    replays: u64,
    unknown_node: u64,
}

#[derive(Serialize)]
struct HandOff {
    host: String,
    kind: String,
    reason: String,
    detail: String,
    groups: Vec<String>,
    at_unix_ms: u64,
}

#[derive(Serialize)]
struct ClusterView {
    name: String,
    healthy: bool,
    /// Something at run time is wrong (bit 2); an unreachable host alone is bit 4.
    degraded: bool,
    problems: Vec<String>,
    critical: bool,
    groups: Vec<GroupView>,
    nodes: Vec<NodeView>,
    last_hand_off: Option<HandOff>,
}

#[derive(Serialize)]
struct FleetView {
    clusters: Vec<ClusterView>,
    exit_code: u8,
}

impl FleetView {
    fn of(inv: &Inventory, hosts: &[Surveyed], report: &DriftReport) -> FleetView {
        let mut clusters = Vec::new();
        for (index, cluster) in inv.clusters.iter().enumerate() {
            let members: Vec<&Surveyed> = hosts.iter().filter(|h| h.cluster == index).collect();
            if members.is_empty() {
                continue;
            }
            let mut groups: BTreeMap<String, GroupView> = BTreeMap::new();
            let mut nodes = Vec::new();
            let mut last_hand_off: Option<HandOff> = None;
            for host in &members {
                let status = host.state.as_ref().and_then(|s| s.agent_view()?.ok());
                let error = match &host.outcome {
                    Outcome::Unreachable(e) | Outcome::Failed(e) => Some(e.clone()),
                    Outcome::Ok | Outcome::Changed => None,
                };
                if let Some(s) = &status {
                    for held in &s.resources {
                        let g = groups.entry(held.group.clone()).or_insert(GroupView {
                            group: held.group.clone(),
                            holders: Vec::new(),
                            since_unix_ms: None,
                        });
                        g.holders.push(host.node.host.clone());
                        g.since_unix_ms = g.since_unix_ms.max(held.since_unix_ms);
                    }
                    if let Some(t) = &s.last_transition
                        && last_hand_off
                            .as_ref()
                            .is_none_or(|h| h.at_unix_ms < t.at_unix_ms)
                    {
                        last_hand_off = Some(HandOff {
                            host: host.node.host.clone(),
                            kind: t.kind.clone(),
                            reason: t.reason.clone(),
                            detail: t.detail.clone(),
                            groups: t.groups.clone(),
                            at_unix_ms: t.at_unix_ms,
                        });
                    }
                }
                let mut view = NodeView {
                    host: host.node.host.clone(),
                    node_name: host.node.node_name.clone(),
                    reachable: host.state.is_some(),
                    error,
                    agent_version: host.state.as_ref().and_then(|s| s.agent_version.clone()),
                    ..NodeView::default()
                };
                if let Some(s) = &status {
                    view.generation = Some(s.generation);
                    view.uptime_ms = Some(s.uptime_ms);
                    view.sees = s
                        .nodes
                        .iter()
                        .map(|n| (n.name.clone(), n.status.clone()))
                        .collect();
                    view.links = s
                        .links
                        .iter()
                        .map(|l| (format!("{}:{}", l.node, l.link), l.status.clone()))
                        .collect();
                    view.longest_gap_ms = s
                        .heartbeats
                        .iter()
                        .map(|h| (h.node.clone(), h.longest_gap_ms))
                        .collect();
                    view.late_heartbeats = s.heartbeats.iter().map(|h| h.late).sum();
                    view.bad_auth = s.counters.bad_auth;
                    view.replays = s.counters.replays;
                    view.unknown_node = s.counters.unknown_node;
                }
                nodes.push(view);
            }
            // A group nobody holds is still a row: that is the outage.
            for vip in &cluster.vips {
                let name = format!("VIP {}", vip.address);
                if !groups.keys().any(|g| g.contains(&vip.address.to_string())) {
                    groups.insert(
                        name.clone(),
                        GroupView {
                            group: name,
                            holders: Vec::new(),
                            since_unix_ms: None,
                        },
                    );
                }
            }
            let runtime: Vec<&drift::Finding> = report
                .findings
                .iter()
                .filter(|f| f.cluster == cluster.name && f.kind == Kind::Runtime)
                .collect();
            let mut problems: Vec<String> = runtime
                .iter()
                .map(|f| {
                    let place = f.node.as_deref().unwrap_or("cluster");
                    format!("{place}: {}: {}", f.subject, f.actual)
                })
                .collect();
            problems.extend(
                report
                    .unreachable
                    .iter()
                    .filter(|u| u.cluster == cluster.name)
                    .map(|u| format!("{}: not reached: {}", u.host, u.error.trim())),
            );
            clusters.push(ClusterView {
                name: cluster.name.clone(),
                healthy: problems.is_empty(),
                degraded: !runtime.is_empty(),
                critical: runtime.iter().any(|f| f.critical),
                problems,
                groups: groups.into_values().collect(),
                nodes,
                last_hand_off,
            });
        }
        let mut view = FleetView {
            clusters,
            exit_code: 0,
        };
        view.exit_code = view.status().code();
        view
    }

    /// 0 healthy, 2 degraded, 4 a host unreachable, 8 a critical invariant broken.
    fn status(&self) -> Status {
        let mut status = Status::OK;
        for c in &self.clusters {
            status |= Status::not_as_desired_if(c.degraded);
            if c.critical {
                status |= Status::CRITICAL;
            }
            if c.nodes.iter().any(|n| !n.reachable) {
                status |= Status::UNREACHABLE;
            }
        }
        status
    }

    fn text(&self, now_ms: u64) -> String {
        let mut out = String::new();
        let when = |ms: u64| {
            format!(
                "{} (for {})",
                super::diff::local_time((ms / 1000) as i64),
                for_how_long(now_ms.saturating_sub(ms))
            )
        };
        for c in &self.clusters {
            let verdict = if c.healthy {
                "healthy".to_string()
            } else if c.critical {
                "CRITICAL".to_string()
            } else {
                "DEGRADED".to_string()
            };
            let _ = writeln!(out, "cluster {}: {verdict}", c.name);
            for p in &c.problems {
                let _ = writeln!(out, "  ! {p}");
            }
            let _ = writeln!(out, "  {:<32} {:<16} SINCE", "GROUP", "HOLDER");
            for g in &c.groups {
                let holder = if g.holders.is_empty() {
                    "(nobody)".to_string()
                } else {
                    g.holders.join(" + ")
                };
                let since = g.since_unix_ms.map(when).unwrap_or_default();
                let _ = writeln!(out, "  {:<32} {:<16} {since}", g.group, holder);
            }
            let names: Vec<&str> = c.nodes.iter().map(|n| n.host.as_str()).collect();
            let mut header = format!("  {:<12} {:<22}", "NODE", "AGENT");
            for n in &names {
                let _ = write!(header, " {:<12}", format!("{n} sees"));
            }
            let _ = writeln!(out, "{header} LINKS");
            for n in &c.nodes {
                let agent = match (&n.agent_version, n.generation) {
                    _ if !n.reachable => "unreachable".to_string(),
                    (Some(v), Some(g)) => {
                        format!("{} gen {g}", v.trim_start_matches("hadeploy-agent "))
                    }
                    (Some(v), None) => {
                        format!("{} (no answer)", v.trim_start_matches("hadeploy-agent "))
                    }
                    (None, _) => "not installed".to_string(),
                };
                let mut line = format!("  {:<12} {:<22}", n.host, agent);
                // Column: what the column's node sees this row's node as.
                for observer in &c.nodes {
                    let seen = observer
                        .sees
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(&n.node_name))
                        .map_or("-", |(_, st)| st.as_str());
                    let _ = write!(line, " {seen:<12}");
                }
                let links: Vec<String> = n.links.iter().map(|(l, s)| format!("{l} {s}")).collect();
                let _ = writeln!(out, "{line} {}", links.join(", "));
            }
            if let Some(h) = &c.last_hand_off {
                let verb = if h.kind == "acquire" {
                    "took"
                } else {
                    "gave up"
                };
                let _ = writeln!(
                    out,
                    "  last hand-off: {} {verb} {} at {} ({})",
                    h.host,
                    h.groups.join(", "),
                    when(h.at_unix_ms),
                    h.detail
                );
            }
            for n in c.nodes.iter().filter(|n| n.reachable) {
                let gaps: Vec<String> = n
                    .longest_gap_ms
                    .iter()
                    .map(|(peer, ms)| format!("from {peer} {ms} ms"))
                    .collect();
                if gaps.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {}: longest heartbeat gap {}; {} late; bad_auth {}, replays {}, unknown_node {}",
                    n.host,
                    gaps.join(", "),
                    n.late_heartbeats,
                    n.bad_auth,
                    n.replays,
                    n.unknown_node
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix matches each agent's view by the Heartbeat node name, which need not be the
    /// inventory's host name (`ha_node_name`).
    #[test]
    fn the_matrix_reads_the_agents_views_by_node_name() {
        let node = |host: &str, node_name: &str, sees: &[(&str, &str)]| NodeView {
            host: host.into(),
            node_name: node_name.into(),
            reachable: true,
            agent_version: Some("hadeploy-agent 0.1.0".into()),
            generation: Some(3),
            sees: sees
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
            ..NodeView::default()
        };
        let fleet = FleetView {
            clusters: vec![ClusterView {
                name: "web".into(),
                healthy: true,
                degraded: false,
                problems: vec![],
                critical: false,
                groups: vec![],
                nodes: vec![
                    node("web1", "lb-a", &[("lb-a", "active"), ("lb-b", "active")]),
                    node("web2", "lb-b", &[("lb-a", "dead"), ("lb-b", "active")]),
                ],
                last_hand_off: None,
            }],
            exit_code: 0,
        };
        let text = fleet.text(0);
        let row = |host: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(host))
                .unwrap_or_else(|| panic!("no row for {host}:\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        // Row web1 (lb-a): web1 sees it active, web2 sees it dead.
        assert_eq!(row("web1")[4..6], ["active", "dead"], "{text}");
        assert_eq!(row("web2")[4..6], ["active", "active"], "{text}");
    }

    #[test]
    fn durations_read_as_an_operator_says_them() {
        assert_eq!(for_how_long(12_400), "12s");
        assert_eq!(for_how_long(245_000), "4m05s");
        assert_eq!(for_how_long(3 * 3_600_000 + 12 * 60_000 + 5_000), "3h12m");
        assert_eq!(for_how_long(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
    }
}
