//! `diff`'s judgement: from what the read-only survey found on every node (the probe and the
//! plan `apply` would run), every way a cluster differs from what it should be, in three kinds.
//! *Desired vs. actual* is the plan itself, step by step, each finding classed by the node's
//! manifest as drift (changed on the node since the last apply) or pending (the inventory
//! changed since). *Node vs. node* compares what is on the nodes, inventory aside: haresources
//! and authkeys byte for byte, ha.cf without its ucast lines, the agent build. *Runtime* is
//! the cluster's state now: each VIP on exactly one member, managed services only where the
//! VIP is, every agent seeing every member active over every link and running the
//! configuration on disk, no second cluster daemon. Pure: the survey is the input, findings
//! and the exit bits are the output. Secrets are never put in a finding, not even as digests.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::apply::{OTHER_CLUSTER_DAEMONS, Outcome, Surveyed};
use super::manifest::{self, Manifest};
use super::plan::{DesiredFile, Step};
use super::probe::{AGENT_PATH, NodeState, RemoteFile};
use crate::agent::control::StatusAnswer;
use crate::agent::setup::digest_over;
use crate::config::heartbeat::hacf::without_ucast;
use crate::config::inventory::{Cluster, DriftIgnore, Inventory};
use crate::error::Status;
use crate::files::sha1_hex;

const HA_CF: &str = "/etc/ha.d/ha.cf";
const HARESOURCES: &str = "/etc/ha.d/haresources";
const AUTHKEYS: &str = "/etc/ha.d/authkeys";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The node against the inventory.
    Desired,
    /// The nodes of a cluster against each other.
    NodeVsNode,
    /// The running cluster.
    Runtime,
}

/// Why a desired-vs-actual finding exists, from the node's manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The node changed since hadeploy last applied.
    Drift,
    /// The inventory (or hadeploy) changed since the last apply; the node did not.
    Pending,
    /// hadeploy has no record of applying this node.
    NeverApplied,
}

impl Cause {
    pub fn word(self) -> &'static str {
        match self {
            Cause::Drift => "drift",
            Cause::Pending => "pending",
            Cause::NeverApplied => "never applied",
        }
    }
}

/// One difference, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub cluster: String,
    /// The host, or `None` for a finding about the whole cluster.
    pub node: Option<String>,
    pub kind: Kind,
    /// The check's name, as `--ignore RULE@HOST` takes it.
    pub rule: &'static str,
    pub subject: String,
    pub expected: String,
    pub actual: String,
    pub cause: Option<Cause>,
    /// Broken in a way that breaks the service or risks a split brain: exit bit 8.
    pub critical: bool,
    /// A unified diff (secrets redacted), or the story behind the finding.
    pub detail: Option<String>,
    /// When the node's copy changed and when hadeploy last applied, for the sentence an
    /// operator needs ("edited at 14:02, after apply at 13:40").
    pub changed_at_unix: Option<i64>,
    pub applied_at_unix: Option<i64>,
    pub fix: String,
}

impl Finding {
    /// Whether `rule` at `place` (a host, the cluster for a cluster-wide finding, or anywhere
    /// when `None`) names this finding.
    fn matches(&self, rule: &str, place: Option<&str>) -> bool {
        rule == self.rule
            && place.is_none_or(|p| {
                self.node.as_deref() == Some(p) || (self.node.is_none() && p == self.cluster)
            })
    }
}

/// A host `diff` could not reach or read; the others are still reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostError {
    pub cluster: String,
    pub host: String,
    pub error: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DriftReport {
    pub findings: Vec<Finding>,
    pub unreachable: Vec<HostError>,
}

impl DriftReport {
    /// Exit bits: 2 for any finding, 8 for a critical one, 4 for a host not inspected.
    pub fn status(&self) -> Status {
        let mut status = Status::OK;
        for f in &self.findings {
            status |= Status::NOT_AS_DESIRED;
            if f.critical {
                status |= Status::CRITICAL;
            }
        }
        if !self.unreachable.is_empty() {
            status |= Status::UNREACHABLE;
        }
        status
    }

    /// Drops the findings `ignore` names (`RULE@HOST`, `RULE` for every host, `RULE@CLUSTER`
    /// for a cluster-wide one); returns how many were dropped.
    pub fn ignore(&mut self, ignore: &[String]) -> usize {
        let before = self.findings.len();
        self.findings.retain(|f| {
            !ignore.iter().any(|rule| {
                let (name, place) = rule.split_once('@').unwrap_or((rule.as_str(), ""));
                f.matches(name, Some(place).filter(|p| !p.is_empty()))
            })
        });
        before - self.findings.len()
    }

    /// Drops the findings of `cluster` that the inventory's `ha_drift_ignore` accepts today
    /// (`today` in days since 1970-01-01, an entry's `until` day included); returns how many.
    pub fn ignore_accepted(&mut self, cluster: &Cluster, today: i64) -> usize {
        let before = self.findings.len();
        let live: Vec<&DriftIgnore> = cluster
            .drift_ignore
            .iter()
            .filter(|e| e.until_days >= today)
            .collect();
        self.findings.retain(|f| {
            f.cluster != cluster.name || !live.iter().any(|e| f.matches(&e.rule, e.host.as_deref()))
        });
        before - self.findings.len()
    }
}

/// Everything that differs, cluster by cluster in inventory order.
pub fn judge(inventory: &Inventory, hosts: &[Surveyed]) -> DriftReport {
    let mut report = DriftReport::default();
    for (index, cluster) in inventory.clusters.iter().enumerate() {
        let members: Vec<&Surveyed> = hosts.iter().filter(|h| h.cluster == index).collect();
        if members.is_empty() {
            continue;
        }
        for host in &members {
            match (&host.outcome, &host.state) {
                // `survey` leaves a probed host Ok or Failed; Changed is apply's.
                (Outcome::Ok | Outcome::Changed, _) => {}
                (Outcome::Unreachable(e), _) | (Outcome::Failed(e), None) => {
                    report.unreachable.push(HostError {
                        cluster: cluster.name.clone(),
                        host: host.node.host.clone(),
                        error: e.clone(),
                    })
                }
                // Probed, but refused by the preflight: the node contradicts the inventory.
                (Outcome::Failed(e), Some(_)) => {
                    let mut f = finding(
                        &cluster.name,
                        Some(&host.node.host),
                        Kind::Desired,
                        "preflight",
                    );
                    f.subject = "node facts".into();
                    f.expected = "as the inventory describes the node".into();
                    f.actual = e.clone();
                    f.fix = "correct the node or the inventory as the message says".into();
                    report.findings.push(f);
                }
            }
            if let (Some(state), Outcome::Ok) = (&host.state, &host.outcome) {
                desired_vs_actual(cluster, host, state, &mut report.findings);
            }
        }
        let probed: Vec<(&Surveyed, &NodeState)> = members
            .iter()
            .filter_map(|h| h.state.as_ref().map(|s| (*h, s)))
            .collect();
        node_vs_node(cluster, &probed, &mut report.findings);
        let everyone_probed = probed.len() == members.len() && members.len() == cluster.nodes.len();
        runtime(cluster, &probed, everyone_probed, &mut report.findings);
    }
    report
}

fn finding(cluster: &str, node: Option<&str>, kind: Kind, rule: &'static str) -> Finding {
    Finding {
        cluster: cluster.to_string(),
        node: node.map(str::to_string),
        kind,
        rule,
        subject: String::new(),
        expected: String::new(),
        actual: String::new(),
        cause: None,
        critical: false,
        detail: None,
        changed_at_unix: None,
        applied_at_unix: None,
        fix: String::new(),
    }
}

fn file_summary(file: Option<&RemoteFile>) -> String {
    match file {
        None => "absent".into(),
        Some(f) => format!(
            "{} bytes, mode {:o}, owner {}:{}",
            f.content.len(),
            f.mode,
            f.uid,
            f.gid
        ),
    }
}

fn desired_summary(file: &DesiredFile) -> String {
    let owner = match &file.service {
        Some(m) => format!("{}:{}", m.owner, m.group),
        None => "0:0".into(),
    };
    format!(
        "{} bytes, mode {:o}, owner {owner}",
        file.content.len(),
        file.mode
    )
}

/// The plan's steps as findings, each with its cause.
fn desired_vs_actual(
    cluster: &Cluster,
    host: &Surveyed,
    state: &NodeState,
    out: &mut Vec<Finding>,
) {
    let name = host.node.host.as_str();
    let record = Manifest::on(state);
    let manifest = record.as_ref().ok().and_then(|m| m.as_ref());
    if let Err(e) = &record {
        let mut f = finding(&cluster.name, Some(name), Kind::Desired, "manifest");
        f.subject = manifest::PATH.into();
        f.expected = "the record hadeploy apply writes".into();
        f.actual = e.clone();
        f.cause = Some(Cause::Drift);
        f.fix = "hadeploy apply (writes a new record)".into();
        out.push(f);
    }
    let applied_at = manifest.map(|m| m.applied_at_unix);
    // Without a record nothing can be told apart; with one, state that is not a file was
    // right when it was written.
    let unrecorded_cause = if manifest.is_some() {
        Cause::Drift
    } else {
        Cause::NeverApplied
    };
    for (path, size) in &state.oversized {
        let mut f = finding(&cluster.name, Some(name), Kind::Desired, "file");
        f.subject = path.clone();
        f.expected = "a file hadeploy rendered (a few kilobytes)".into();
        f.actual = format!(
            "{size} bytes, more than {} bytes: not read",
            super::probe::MAX_FILE_BYTES
        );
        f.cause = Some(unrecorded_cause);
        f.fix = "hadeploy apply (replaces it)".into();
        out.push(f);
    }
    let only_manifest = host
        .steps
        .iter()
        .all(|s| matches!(s, Step::WriteManifest(_)));
    for step in &host.steps {
        let mut f = finding(&cluster.name, Some(name), Kind::Desired, "");
        f.applied_at_unix = applied_at;
        f.fix = "hadeploy apply".into();
        match step {
            Step::PutFile { file, .. } => {
                let current = state.files.get(&file.path).and_then(|f| f.as_ref());
                f.rule = "file";
                f.subject = file.path.clone();
                f.expected = desired_summary(file);
                f.actual = file_summary(current);
                if let Some(c) = current
                    && *c.content != **file.content
                {
                    f.actual.push_str(if file.secret {
                        ", the secret differs (not shown)"
                    } else {
                        ", content differs"
                    });
                }
                f.detail = step.diff(state);
                f.changed_at_unix = current.map(|c| c.mtime_unix);
                f.cause = Some(file_cause(manifest, file, current));
            }
            Step::PutAgent => {
                f.rule = "agent-binary";
                f.subject = AGENT_PATH.into();
                f.expected = format!(
                    "hadeploy-agent {} (sha1 {})",
                    env!("CARGO_PKG_VERSION"),
                    host.desired.as_ref().map_or("", |d| d.agent_sha1.as_str())
                );
                f.actual = match (&state.agent_sha1, &state.agent_version) {
                    (None, _) => "absent".into(),
                    (Some(sha1), version) => format!(
                        "{} (sha1 {sha1})",
                        version.as_deref().unwrap_or("unknown version")
                    ),
                };
                f.cause = Some(match manifest {
                    None => Cause::NeverApplied,
                    Some(m) if state.agent_sha1.as_deref() == Some(m.agent_sha1.as_str()) => {
                        Cause::Pending
                    }
                    Some(_) => Cause::Drift,
                });
            }
            Step::SysctlLive => {
                f.rule = "sysctl";
                f.subject = "net.ipv4.ip_nonlocal_bind (live)".into();
                f.expected = "1".into();
                f.actual = state
                    .nonlocal_bind_live
                    .map_or("unreadable".into(), |on| if on { "1" } else { "0" }.into());
                f.cause = Some(unrecorded_cause);
                f.fix = "hadeploy apply (sets it live; the drop-in keeps it over reboots)".into();
            }
            Step::DisableAutostart { service, .. } => {
                f.rule = "boot";
                f.subject = format!("{service} at boot");
                f.expected = "not started at boot: only the cluster starts it".into();
                f.actual =
                    "enabled at boot: after a reboot it would run beside the VIP's holder".into();
                f.cause = Some(unrecorded_cause);
            }
            Step::EnableAgent { .. } => {
                let agent = state.services.get("hadeploy-agent");
                f.rule = "agent-service";
                f.subject = "hadeploy-agent".into();
                f.expected = "enabled at boot and running".into();
                f.actual = match agent {
                    None => "not installed".into(),
                    Some(s) => format!(
                        "{}, {}",
                        if s.enabled_at_boot {
                            "enabled at boot"
                        } else {
                            "not enabled at boot"
                        },
                        if s.running { "running" } else { "not running" }
                    ),
                };
                f.cause = Some(unrecorded_cause);
            }
            Step::WriteManifest(_) if only_manifest => {
                f.rule = "manifest";
                f.subject = manifest::PATH.into();
                f.expected = "a record of the state in place".into();
                f.actual = match manifest {
                    None => "absent".into(),
                    Some(_) => "records another state".into(),
                };
                f.cause = Some(if manifest.is_some() {
                    Cause::Pending
                } else {
                    Cause::NeverApplied
                });
                f.fix = "hadeploy apply (writes the record; nothing else changes)".into();
            }
            // A consequence of another step, or written along with the others.
            Step::WriteManifest(_) | Step::DaemonReload => continue,
        }
        out.push(f);
    }
}

/// Drift when the node's copy is not what the last apply wrote; pending when it is, and the
/// inventory now wants something else.
fn file_cause(
    manifest: Option<&Manifest>,
    desired: &DesiredFile,
    current: Option<&RemoteFile>,
) -> Cause {
    let Some(m) = manifest else {
        return Cause::NeverApplied;
    };
    let Some(written) = m.files.get(&desired.path) else {
        // A file this version manages that the last apply did not write.
        return Cause::Pending;
    };
    match current {
        None => Cause::Drift,
        Some(c) if sha1_hex(&c.content) != *written => Cause::Drift,
        // Untouched content: the inventory moved on, or only mode or owner were changed.
        Some(_) if sha1_hex(&desired.content) == *written => Cause::Drift,
        Some(_) => Cause::Pending,
    }
}

/// The nodes grouped by what they have, in first-seen order: "node1, node2 | node3".
fn partition<'a>(values: &[(&'a str, Option<Vec<u8>>)]) -> Vec<Vec<&'a str>> {
    let mut groups: Vec<(Option<&Vec<u8>>, Vec<&'a str>)> = Vec::new();
    for (node, value) in values {
        match groups.iter_mut().find(|(v, _)| *v == value.as_ref()) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((value.as_ref(), vec![node])),
        }
    }
    groups.into_iter().map(|(_, nodes)| nodes).collect()
}

/// What is on the nodes, compared among themselves.
fn node_vs_node(cluster: &Cluster, probed: &[(&Surveyed, &NodeState)], out: &mut Vec<Finding>) {
    if probed.len() < 2 {
        return;
    }
    let checks: [(&'static str, &str, &str); 4] = [
        (
            "same-haresources",
            HARESOURCES,
            "byte-identical on every node: a node reads only its own copy when it takes over",
        ),
        (
            "same-authkeys",
            AUTHKEYS,
            "byte-identical on every node: nodes with different keys drop each other's heartbeats",
        ),
        (
            "same-ha-cf",
            HA_CF,
            "identical on every node but for its ucast lines",
        ),
        (
            "same-agent",
            AGENT_PATH,
            "the same agent build on every node",
        ),
    ];
    // What each check compares: the file (ha.cf without its ucast lines), or the agent's sha1.
    let extract = |rule: &str, subject: &str, s: &NodeState| -> Option<Vec<u8>> {
        if rule == "same-agent" {
            return s.agent_sha1.as_ref().map(|sha1| sha1.as_bytes().to_vec());
        }
        let content = &s.files.get(subject)?.as_ref()?.content;
        Some(if rule == "same-ha-cf" {
            without_ucast(content)
        } else {
            content.clone()
        })
    };
    for (rule, subject, expected) in checks {
        let values: Vec<(&str, Option<Vec<u8>>)> = probed
            .iter()
            .map(|(h, s)| (h.node.host.as_str(), extract(rule, subject, s)))
            .collect();
        let groups = partition(&values);
        if groups.len() < 2 {
            continue;
        }
        let mut f = finding(&cluster.name, None, Kind::NodeVsNode, rule);
        f.subject = subject.into();
        f.expected = expected.into();
        let described: Vec<String> = groups.iter().map(|nodes| nodes.join(", ")).collect();
        f.actual = format!(
            "the nodes disagree: {} each have a different version",
            described.join(" | ")
        );
        // Only lines of files without secrets are worth showing side by side.
        if rule != "same-authkeys" && rule != "same-agent" {
            let first = &values[0];
            if let Some(other) = values.iter().find(|(_, v)| *v != first.1) {
                f.detail = Some(side_by_side(subject, first, other));
            }
        }
        f.fix = "hadeploy apply makes every node what the inventory says; if the edit on one node was intended, put it in the inventory first".into();
        out.push(f);
    }
}

fn side_by_side(path: &str, a: &(&str, Option<Vec<u8>>), b: &(&str, Option<Vec<u8>>)) -> String {
    let text = |v: &Option<Vec<u8>>| {
        v.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let (left, right) = (text(&a.1), text(&b.1));
    similar::TextDiff::from_lines(left.as_str(), right.as_str())
        .unified_diff()
        .header(&format!("{path} on {}", a.0), &format!("{path} on {}", b.0))
        .to_string()
}

/// The cluster as it runs now.
fn runtime(
    cluster: &Cluster,
    probed: &[(&Surveyed, &NodeState)],
    everyone_probed: bool,
    out: &mut Vec<Finding>,
) {
    let host = |h: &Surveyed| h.node.host.clone();
    // Who holds each VIP, from the addresses on the nodes' interfaces.
    let mut holders: Vec<&str> = Vec::new();
    for vip in &cluster.vips {
        let with: Vec<&str> = probed
            .iter()
            .filter(|(_, s)| s.has_address(vip.address).is_some())
            .map(|(h, _)| h.node.host.as_str())
            .collect();
        for h in &with {
            if !holders.contains(h) {
                holders.push(h);
            }
        }
        let mut f = finding(&cluster.name, None, Kind::Runtime, "vip-holder");
        f.subject = format!("VIP {}", vip.address);
        f.expected = "held by exactly one node".into();
        match with.len() {
            1 => {
                not_answering(cluster, vip.address, with[0], probed, out);
                continue;
            }
            0 if !everyone_probed => continue,
            0 => {
                f.actual = "held by no node: the service is down".into();
                f.fix = "look at `hadeploy-agent status` on the nodes; a drill or `hadeploy-agent takeover` on the preferred node brings it back".into();
            }
            _ => {
                f.actual = format!(
                    "held by {}: two hosts answer ARP for one address",
                    with.join(" and ")
                );
                f.fix = "remove the address by hand from every node but the one the agents agree holds the group (`ip addr del`), then find out how it got there".into();
            }
        }
        f.critical = true;
        out.push(f);
    }
    services_only_on_holder(cluster, probed, &holders, out);
    for (h, s) in probed {
        for daemon in OTHER_CLUSTER_DAEMONS {
            if let Some(service) = s.services.get(daemon)
                && service.present
                && (service.running || service.enabled_at_boot)
            {
                let mut f = finding(&cluster.name, Some(&host(h)), Kind::Runtime, "other-daemon");
                f.subject = daemon.into();
                f.expected = "not running and not enabled: the agent manages the VIPs alone".into();
                f.actual = match (service.running, service.enabled_at_boot) {
                    (true, true) => "running and enabled at boot",
                    (true, false) => "running",
                    _ => "enabled at boot",
                }
                .into();
                f.fix = format!(
                    "stop and disable it (systemctl disable --now {daemon}); two cluster managers fight over the VIPs"
                );
                out.push(f);
            }
        }
    }
    agents_agree(cluster, probed, out);
}

/// A VIP its holder has but a peer on the same network cannot reach.
fn not_answering(
    cluster: &Cluster,
    vip: Ipv4Addr,
    holder: &str,
    probed: &[(&Surveyed, &NodeState)],
    out: &mut Vec<Finding>,
) {
    let silent: Vec<&str> = probed
        .iter()
        .filter(|(h, s)| h.node.host != holder && s.answering.get(&vip) == Some(&false))
        .map(|(h, _)| h.node.host.as_str())
        .collect();
    if silent.is_empty() {
        return;
    }
    let mut f = finding(&cluster.name, Some(holder), Kind::Runtime, "vip-answers");
    f.subject = format!("VIP {vip}");
    f.expected = "answers ping from the other nodes".into();
    f.actual = format!("held by {holder}, but no answer from {}", silent.join(", "));
    f.fix =
        "check the holder's interface and ARP (`ip neigh` on the peers), and any firewall".into();
    out.push(f);
}

/// The services the cluster starts run only on the node holding the VIPs, and do run there.
fn services_only_on_holder(
    cluster: &Cluster,
    probed: &[(&Surveyed, &NodeState)],
    holders: &[&str],
    out: &mut Vec<Finding>,
) {
    for (h, s) in probed {
        let holds = holders.contains(&h.node.host.as_str());
        for service in &h.group_services {
            let Some(state) = s.services.get(service).filter(|st| st.present) else {
                continue;
            };
            let mut f = finding(
                &cluster.name,
                Some(&h.node.host),
                Kind::Runtime,
                "service-placement",
            );
            f.subject = service.clone();
            if state.running && !holds && !holders.is_empty() {
                f.expected = format!("stopped: {} holds the VIP", holders.join(", "));
                f.actual = "running".into();
                f.fix = format!(
                    "stop it (systemctl stop {service}); only the cluster starts it, on the holder"
                );
                out.push(f);
            } else if !state.running && holds {
                f.expected = "running: this node holds the VIP".into();
                f.actual = "not running: the VIP answers, the service does not".into();
                f.fix = "look at `hadeploy-agent status` and the service's log; `hadeploy-agent standby` hands the group to the peer".into();
                out.push(f);
            }
        }
    }
}

/// Every agent's own view: the configuration it runs, the members and links it sees, the
/// groups it holds. Members that disagree about who is alive are a split brain in the making.
fn agents_agree(cluster: &Cluster, probed: &[(&Surveyed, &NodeState)], out: &mut Vec<Finding>) {
    let mut views: Vec<(&str, StatusAnswer)> = Vec::new();
    for (h, s) in probed {
        let name = h.node.host.as_str();
        let running = s.services.get("hadeploy-agent").is_some_and(|a| a.running);
        match s.agent_view() {
            Some(Ok(status)) => {
                restart_pending(cluster, name, s, &status, out);
                views.push((name, status));
            }
            Some(Err(e)) => {
                let mut f = finding(&cluster.name, Some(name), Kind::Runtime, "agent-status");
                f.subject = "hadeploy-agent status".into();
                f.expected = "the agent's status".into();
                f.actual = format!("an answer that is not one: {e}");
                f.fix = "restart the agent (systemctl restart hadeploy-agent)".into();
                out.push(f);
            }
            None if running => {
                let mut f = finding(&cluster.name, Some(name), Kind::Runtime, "agent-status");
                f.subject = "hadeploy-agent status".into();
                f.expected = "an answer on the control socket".into();
                f.actual = "the agent runs but did not answer".into();
                f.fix = "look at the agent's log (journalctl -u hadeploy-agent)".into();
                out.push(f);
            }
            // A stopped agent is the plan's finding already.
            None => {}
        }
    }
    // Each member as every agent sees it, node names lower-case as the agents use them.
    let mut seen: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for (observer, status) in &views {
        for view in &status.nodes {
            seen.entry(view.name.clone())
                .or_default()
                .push((observer, view.status.clone()));
        }
        for link in status.links.iter().filter(|l| l.status != "up") {
            let mut f = finding(&cluster.name, Some(observer), Kind::Runtime, "link");
            f.subject = format!("link {} to {}", link.link, link.node);
            f.expected = "up".into();
            f.actual = format!("{}: no heartbeats arrive on it", link.status);
            f.fix = "check the interface and the cable or switch port on both nodes".into();
            out.push(f);
        }
    }
    for (member, observed) in &seen {
        let alive = |st: &str| st == "active" || st == "up";
        let not_alive: Vec<String> = observed
            .iter()
            .filter(|(_, st)| !alive(st))
            .map(|(o, st)| format!("{o} sees it {st}"))
            .collect();
        if not_alive.is_empty() {
            continue;
        }
        let some_alive = observed.iter().any(|(_, st)| alive(st));
        let mut f = finding(&cluster.name, None, Kind::Runtime, "membership");
        f.subject = format!("member {member}");
        f.expected = "active, as every member sees it".into();
        f.actual = not_alive.join("; ");
        if some_alive {
            f.actual
                .push_str(" — while others see it alive: the members disagree");
            f.critical = true;
            f.fix = "the heartbeat links disagree: check every link between the nodes before anything else; a failover now may leave the VIP on two nodes".into();
        } else {
            f.fix = format!(
                "start the agent on {member} (or bring the node back); until then the cluster has no standby"
            );
        }
        out.push(f);
    }
    // A group two agents both claim.
    let mut claims: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (observer, status) in &views {
        for held in &status.resources {
            claims.entry(&held.group).or_default().push(observer);
        }
    }
    for (group, by) in claims.into_iter().filter(|(_, by)| by.len() > 1) {
        let mut f = finding(&cluster.name, None, Kind::Runtime, "group-holder");
        f.subject = format!("resource group {group}");
        f.expected = "held by one agent".into();
        f.actual = format!("held by {}", by.join(" and "));
        f.critical = true;
        f.fix = "run `hadeploy-agent standby` on the node that should not hold it".into();
        out.push(f);
    }
}

/// The agent runs the configuration on disk, or a restart is pending.
fn restart_pending(
    cluster: &Cluster,
    name: &str,
    state: &NodeState,
    status: &StatusAnswer,
    out: &mut Vec<Finding>,
) {
    if status.config_digest.is_empty() {
        return;
    }
    let digest = digest_over(false, |file| {
        let probed = state.files.get(&format!("/etc/ha.d/{file}"))?.as_ref()?;
        Some(probed.content.clone())
    });
    if digest == status.config_digest {
        return;
    }
    let mut f = finding(&cluster.name, Some(name), Kind::Runtime, "restart-pending");
    f.subject = "hadeploy-agent configuration".into();
    f.expected = "the agent runs the configuration in /etc/ha.d".into();
    f.actual = "the files changed since the agent loaded them: it still runs the old ones".into();
    f.fix = "hadeploy apply reloads it in place (a restart only where the change needs one), one node at a time, after checking the new configuration"
        .into();
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_names_a_rule_at_a_host_a_cluster_or_anywhere() {
        let f = |node: Option<&str>, rule: &'static str| finding("web", node, Kind::Runtime, rule);
        let report = || DriftReport {
            findings: vec![
                f(Some("node1"), "link"),
                f(Some("node2"), "link"),
                f(None, "membership"),
            ],
            unreachable: Vec::new(),
        };
        let mut r = report();
        assert_eq!(r.ignore(&["link@node2".into()]), 1);
        assert_eq!(r.findings[0].node.as_deref(), Some("node1"));
        let mut r = report();
        assert_eq!(r.ignore(&["link".into()]), 2);
        let mut r = report();
        assert_eq!(
            r.ignore(&["membership@web".into(), "membership@node1".into()]),
            1
        );
        let mut r = report();
        assert_eq!(r.ignore(&["link@web".into(), "sysctl".into()]), 0);
        assert_eq!(r.status(), Status::NOT_AS_DESIRED);
    }

    #[test]
    fn nodes_are_grouped_by_what_they_have() {
        let v = |s: &str| Some(s.as_bytes().to_vec());
        let values = [("n1", v("a")), ("n2", v("b")), ("n3", v("a")), ("n4", None)];
        assert_eq!(
            partition(&values),
            vec![vec!["n1", "n3"], vec!["n2"], vec!["n4"]]
        );
    }

    fn desired_file(content: &str) -> DesiredFile {
        DesiredFile {
            path: HARESOURCES.into(),
            content: std::sync::Arc::new(content.as_bytes().to_vec()),
            mode: 0o644,
            secret: false,
            notifies_agent: true,
            service: None,
        }
    }

    fn remote(content: &str) -> RemoteFile {
        RemoteFile {
            content: content.as_bytes().to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: "root:root".into(),
            mtime_unix: 2,
        }
    }

    #[test]
    fn a_file_is_drift_when_the_node_changed_it_and_pending_when_the_inventory_did() {
        let mut m = Manifest {
            version: "0".into(),
            applied_at_unix: 1,
            inventory_sha1: String::new(),
            agent_sha1: String::new(),
            files: BTreeMap::new(),
        };
        m.files.insert(HARESOURCES.into(), sha1_hex(b"old\n"));
        // Untouched since apply, the inventory wants something new.
        assert_eq!(
            file_cause(Some(&m), &desired_file("new\n"), Some(&remote("old\n"))),
            Cause::Pending
        );
        // Edited on the node.
        assert_eq!(
            file_cause(Some(&m), &desired_file("old\n"), Some(&remote("hand\n"))),
            Cause::Drift
        );
        // Deleted on the node.
        assert_eq!(
            file_cause(Some(&m), &desired_file("old\n"), None),
            Cause::Drift
        );
        // Same content as written, so only mode or owner changed.
        assert_eq!(
            file_cause(Some(&m), &desired_file("old\n"), Some(&remote("old\n"))),
            Cause::Drift
        );
        assert_eq!(
            file_cause(None, &desired_file("old\n"), Some(&remote("x\n"))),
            Cause::NeverApplied
        );
    }
}
