//! The running agent: one task owns all protocol state — sequence tracking, membership, the
//! resource manager — and reacts to datagrams, timers, control requests and finished resource
//! actions. Resource actions run in their own tasks, so heartbeats keep flowing while nginx
//! takes its time to start. `run` takes already-opened media, control listener and a shutdown
//! future, so tests can drive a daemon without touching /etc or the real network.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::auth::{self, MsgFmt};
use super::control::{self, Request};
use super::executor::{self, Executor, Step};
use super::media::{Inbound, Media};
use super::membership::{Change, Membership, NodeStatus, Reason, Timers};
use super::resources::{Failback, Group, GroupSet, Hold, Output, ResourceManager, Why};
use super::seqtrack::{SeqTracker, Verdict};
use super::vip::VipSpec;
use super::wire::{self, Message, Value};
use crate::config::heartbeat::authkeys::AuthKeys;

/// One haresources group as the daemon runs it.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub home: String,
    pub steps: Vec<Step>,
}

/// Everything the daemon needs, already validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This node's name, lower-case.
    pub node: String,
    /// Every configured node, this one included, lower-case.
    pub nodes: Vec<String>,
    pub timers: Timers,
    pub keys: AuthKeys,
    /// `msgfmt`: whether the classic `auth` field travels inside the body too.
    pub msgfmt: MsgFmt,
    pub hopfudge: u32,
    /// ha.cf `realtime`: the binary raises the daemon to SCHED_RR before it starts.
    pub realtime: bool,
    /// Status polling of held resources (hadeploy-agent.cf), off when `None`.
    pub resource_check: Option<ResourceCheck>,
    pub groups: Vec<GroupSpec>,
    pub failback: Failback,
    pub executor: Executor,
    pub state_dir: PathBuf,
}

/// `resource_check`: every `interval`, the status of each held group's scripts; after
/// `failures` failed checks in a row the group moves (see `ResourceManager::resource_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceCheck {
    pub interval: Duration,
    pub failures: u32,
}

/// Messages kept for retransmission (MAXMSGHIST).
const HISTORY: usize = 500;
/// A retransmission request is repeated this often until the gap closes (max_rexmit_delay).
const REXMIT_DELAY: Duration = Duration::from_millis(250);
/// After a shutdown notice went out, keep answering retransmission requests this long.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(1000);
/// One log line per kind of bad packet per this interval; the rest are counted.
const BAD_PACKET_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counters `status` reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bad_packets: u64,
    pub bad_auth: u64,
    pub unknown_node: u64,
    pub replays: u64,
    pub duplicates: u64,
    pub rexmit_requested: u64,
    pub rexmit_sent: u64,
}

/// Logs to stderr with a syslog priority prefix (`<3>` error … `<6>` info), which journald
/// and the init script's logger both understand.
fn log(priority: u8, text: &str) {
    eprintln!("<{priority}>{text}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "0.00 0.00 0.00 1/1 1".into())
}

/// What a finished resource action reports back to the loop.
enum Finished {
    Acquired(GroupSet),
    Released(GroupSet),
    Prestarted,
    /// Status checks of held groups: (group, every script running).
    Checked(Vec<(usize, bool)>),
}

struct ControlCall {
    request: Request,
    reply: oneshot::Sender<serde_json::Value>,
}

struct Agent {
    settings: Settings,
    media: Media,
    uuid: [u8; 16],
    generation: u64,
    seq: u64,
    history: VecDeque<(u64, Vec<u8>)>,
    peers_uuid: BTreeMap<String, [u8; 16]>,
    trackers: BTreeMap<String, SeqTracker>,
    /// Gaps we asked peers to fill: (peer, seq) → when to ask again.
    rexmit_due: BTreeMap<(String, u64), Instant>,
    membership: Membership,
    resources: ResourceManager,
    held_since: BTreeMap<usize, SystemTime>,
    ack_trigger: u64,
    started: Instant,
    counters: Counters,
    bad_log: BTreeMap<&'static str, (Instant, u64)>,
    finished_tx: mpsc::Sender<Finished>,
    /// Set once `shutdone` went out: the loop ends at this instant.
    exit_at: Option<Instant>,
    shutdown_started: Option<Instant>,
    /// Held by every task that starts or stops resources, so they never overlap: a giver's
    /// listeners still stopping after its VIPs went must be down before it starts them again.
    resource_work: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Failed status checks in a row, per held group.
    check_failures: BTreeMap<usize, u32>,
    checking: bool,
}

impl Agent {
    fn peers(&self) -> impl Iterator<Item = &String> {
        self.settings
            .nodes
            .iter()
            .filter(move |n| **n != self.settings.node)
    }

    /// Builds, signs, records and sends one message. `creator` are the fields the message's
    /// author puts first; the standard fields follow in the order 3.0.6 writes them.
    async fn send(&mut self, creator: Vec<(String, String)>) {
        let mut message = Message::new();
        for (name, value) in &creator {
            message.push_str(name, value);
        }
        let kind = message.msg_type().unwrap_or_default().to_string();
        let control = kind.starts_with("NS_");
        if let Some(uuid) = message.dest().and_then(|d| self.peers_uuid.get(d).copied()) {
            message.push("destuuid", Value::Binary(uuid.to_vec()));
        }
        message.push_str("src", &self.settings.node);
        message.push("srcuuid", Value::Binary(self.uuid.to_vec()));
        if !control {
            self.seq += 1;
            message.push_str("seq", &format!("{:x}", self.seq));
        }
        message.push_str("hg", &format!("{:x}", self.generation));
        message.push_str("ts", &format!("{:x}", unix_now()));
        if !control {
            message.push_str("ld", &loadavg());
        }
        let ttl = self.settings.hopfudge as usize + self.settings.nodes.len();
        message.push_str("ttl", &ttl.to_string());
        let datagram = match auth::sign(&message, &self.settings.keys, self.settings.msgfmt) {
            Ok(d) => d,
            Err(e) => {
                log(3, &format!("cannot encode a {kind} message: {e}"));
                return;
            }
        };
        if !control {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back((self.seq, datagram.clone()));
        }
        self.counters.packets_out += 1;
        self.media.send_all(&datagram).await;
    }

    async fn send_status(&mut self, status: NodeStatus, now: Instant) {
        let dt = self.membership.advertised_deadtime(now).as_millis();
        self.send(vec![
            ("t".into(), "status".into()),
            ("st".into(), status.as_str().into()),
            ("dt".into(), format!("{dt:x}")),
            ("protocol".into(), "1".into()),
        ])
        .await;
    }

    fn own_status(&self) -> NodeStatus {
        if self.membership.comm_up() {
            NodeStatus::Active
        } else {
            NodeStatus::Up
        }
    }

    fn bad_packet(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        let now = Instant::now();
        let entry = self.bad_log.entry(kind).or_insert((now, 0));
        if entry.1 == 0 || now.duration_since(entry.0) >= BAD_PACKET_LOG_INTERVAL {
            let suppressed = entry.1.saturating_sub(1);
            let extra = if suppressed > 0 {
                format!(" ({suppressed} more since the last report)")
            } else {
                String::new()
            };
            log(
                4,
                &format!("dropped a datagram: {kind}: {}{extra}", detail()),
            );
            *entry = (now, 1);
        } else {
            entry.1 += 1;
        }
    }

    async fn on_datagram(&mut self, inbound: Inbound, now: Instant) {
        self.counters.packets_in += 1;
        let datagram = match wire::decode(&inbound.data) {
            Ok(d) => d,
            Err(e) => {
                self.counters.bad_packets += 1;
                let from = inbound.from;
                self.bad_packet("malformed", || format!("from {from}: {e}"));
                return;
            }
        };
        if !auth::verify(&datagram, &self.settings.keys).is_ok() {
            self.counters.bad_auth += 1;
            let from = inbound.from;
            self.bad_packet("authentication failed", || format!("from {from}"));
            return;
        }
        let message = datagram.message;
        let (Some(kind), Some(src)) = (message.msg_type(), message.src()) else {
            self.counters.bad_packets += 1;
            self.bad_packet("missing t or src", || format!("from {}", inbound.from));
            return;
        };
        let kind = kind.to_string();
        let src = src.to_ascii_lowercase();
        if message.ts().is_none_or(|ts| ts == 0) {
            self.counters.bad_packets += 1;
            self.bad_packet("missing ts", || format!("from {src}"));
            return;
        }
        if src == self.settings.node {
            // Our own datagram looped back (own address in the ucast list): harmless.
            return;
        }
        if !self.settings.nodes.contains(&src) {
            self.counters.unknown_node += 1;
            self.bad_packet("unknown node", || format!("`{src}` from {}", inbound.from));
            return;
        }
        if let Some(uuid) = message.srcuuid() {
            self.peers_uuid.insert(src.clone(), uuid);
        }
        let generation = message.hg().unwrap_or(0);
        let control = kind.starts_with("NS_");
        let is_status = kind == "status";
        let mut deliver = true;
        if !control {
            let Some(seq) = message.seq().filter(|s| *s > 0) else {
                self.counters.bad_packets += 1;
                self.bad_packet("missing seq", || format!("{kind} from {src}"));
                return;
            };
            let verdict = self
                .trackers
                .entry(src.clone())
                .or_default()
                .observe(generation, seq, is_status);
            match &verdict {
                Verdict::Replay => {
                    self.counters.replays += 1;
                    self.bad_packet("replay of an older generation", || format!("from {src}"));
                    return;
                }
                Verdict::Duplicate => self.counters.duplicates += 1,
                Verdict::AcceptWithGap { missing } => {
                    for m in missing {
                        self.rexmit_due
                            .insert((src.clone(), *m), now + random_rexmit_delay());
                    }
                }
                Verdict::Recovered => {
                    self.rexmit_due.remove(&(src.clone(), seq));
                }
                Verdict::Restarted => {
                    self.rexmit_due.retain(|(peer, _), _| *peer != src);
                }
                _ => {}
            }
            deliver = verdict.delivers();
            if deliver
                && seq % 10 == self.ack_trigger
                && self.trackers[&src].missing().next().is_none()
            {
                self.send(vec![
                    ("t".into(), "NS_ackmsg".into()),
                    ("dest".into(), src.clone()),
                    ("ackseq".into(), format!("{seq:x}")),
                ])
                .await;
            }
        }
        // Status words and deadtime count for membership; any packet proves the link.
        let status = if is_status && deliver {
            message
                .get_str("st")
                .and_then(NodeStatus::from_wire)
                .map(|st| (st, message.dt().map(Duration::from_millis)))
        } else {
            None
        };
        let changes = self
            .membership
            .heard(&src, &inbound.link, generation, status, now);
        self.on_membership(changes, now).await;
        if !deliver {
            return;
        }
        if let Some(dest) = message.dest()
            && !dest.eq_ignore_ascii_case(&self.settings.node)
        {
            return;
        }
        self.dispatch(&kind, &src, generation, &message, now).await;
    }

    async fn dispatch(
        &mut self,
        kind: &str,
        src: &str,
        generation: u64,
        message: &Message,
        now: Instant,
    ) {
        let hold = message.get_str("rsc_hold").and_then(Hold::parse);
        let outputs = match kind {
            "shutdone" => {
                log(6, &format!("received shutdown notice from {src}"));
                let changes = self.membership.shutdown_notice(src, generation);
                self.on_membership(changes, now).await;
                Vec::new()
            }
            "starting" => self.resources.peer_starting(src),
            "resource" => {
                let Some(hold) = hold else { return };
                let isstable = message.get_str("isstable").map(|v| v == "1");
                self.resources
                    .peer_resource(src, hold, isstable, message.get_str("info"), now)
            }
            "ask_resources" => {
                let (Some(hold), Some(info)) = (hold, message.get_str("info")) else {
                    return;
                };
                self.resources.peer_ask(src, hold, info, now)
            }
            "hb_takeover" => {
                let Some(hold) = hold else { return };
                self.resources.peer_takeover(src, hold, now)
            }
            "reqnodes" => {
                let mut nodelist = String::new();
                for n in &self.settings.nodes {
                    nodelist.push_str(n);
                    nodelist.push(' ');
                }
                self.send(vec![
                    ("dest".into(), src.into()),
                    ("t".into(), "repnodes".into()),
                    ("nodelist".into(), nodelist),
                    ("delnodelist".into(), " ".into()),
                ])
                .await;
                Vec::new()
            }
            "NS_rexmit" => {
                self.answer_rexmit(src, message).await;
                Vec::new()
            }
            "NS_nak_rexmit" => {
                if let Some(seq) = message
                    .get_str("firstseq")
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                {
                    log(4, &format!("irretrievably lost packet {seq} from {src}"));
                    if let Some(t) = self.trackers.get_mut(src) {
                        t.forget(seq);
                    }
                    self.rexmit_due.remove(&(src.to_string(), seq));
                }
                Vec::new()
            }
            "stonith" => {
                if let (Some(node), Some(result)) =
                    (message.get_str("node"), message.get_str("result"))
                {
                    log(6, &format!("{src} reports fencing of {node}: {result}"));
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        self.apply(outputs, now).await;
    }

    async fn answer_rexmit(&mut self, src: &str, message: &Message) {
        let range = |name| message.get_str(name).and_then(|s| s.parse::<u64>().ok());
        let (Some(first), Some(last)) = (range("firstseq"), range("lastseq")) else {
            return;
        };
        // At most 50 per request, as the real daemon.
        for seq in first..=last.min(first.saturating_add(49)) {
            let stored = self
                .history
                .iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, d)| d.clone());
            match stored {
                Some(datagram) => {
                    self.counters.rexmit_sent += 1;
                    self.counters.packets_out += 1;
                    self.media.send_all(&datagram).await;
                }
                None => {
                    self.send(vec![
                        ("t".into(), "NS_nak_rexmit".into()),
                        ("firstseq".into(), format!("{seq:x}")),
                        ("dest".into(), src.into()),
                        ("info".into(), "not in history".into()),
                    ])
                    .await;
                }
            }
        }
    }

    async fn request_rexmits(&mut self, now: Instant) {
        let due: Vec<(String, u64)> = self
            .rexmit_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (peer, seq) in due {
            let alive = self
                .membership
                .status(&peer)
                .is_some_and(NodeStatus::is_alive);
            let still_missing = self
                .trackers
                .get(&peer)
                .is_some_and(|t| t.missing().any(|m| m == seq));
            if !alive || !still_missing {
                self.rexmit_due.remove(&(peer, seq));
                continue;
            }
            self.counters.rexmit_requested += 1;
            self.send(vec![
                ("t".into(), "NS_rexmit".into()),
                ("dest".into(), peer.clone()),
                ("firstseq".into(), seq.to_string()),
                ("lastseq".into(), seq.to_string()),
            ])
            .await;
            self.rexmit_due.insert((peer, seq), now + REXMIT_DELAY);
        }
    }

    async fn on_membership(&mut self, changes: Vec<Change>, now: Instant) {
        for change in changes {
            let outputs = match change {
                Change::Node {
                    node,
                    from,
                    to,
                    reason,
                } => {
                    let why = match reason {
                        Reason::Heard => String::new(),
                        Reason::Silent { window } => {
                            format!(" (silent for more than {} ms)", window.as_millis())
                        }
                        Reason::Shutdown => " (shutdown notice)".into(),
                        Reason::Restarted => " (restarted: new generation)".into(),
                    };
                    log(
                        if to == NodeStatus::Dead { 4 } else { 6 },
                        &format!("node {node}: {} → {}{why}", from.as_str(), to.as_str()),
                    );
                    if to == NodeStatus::Dead {
                        self.rexmit_due.retain(|(p, _), _| *p != node);
                        self.resources
                            .peer_gone(&node, reason == Reason::Shutdown, now)
                    } else if !from.is_alive() || reason == Reason::Restarted {
                        self.resources.peer_alive(&node)
                    } else {
                        Vec::new()
                    }
                }
                Change::Link { node, link, up } => {
                    log(
                        if up { 6 } else { 4 },
                        &format!("link {node}:{link} {}", if up { "up" } else { "dead" }),
                    );
                    Vec::new()
                }
                Change::LateHeartbeat { node, gap } => {
                    log(
                        4,
                        &format!("late heartbeat from {node}: {} ms", gap.as_millis()),
                    );
                    Vec::new()
                }
                Change::CommUp => {
                    log(6, "communication with the cluster is up");
                    let live_peer = self
                        .peers()
                        .find(|p| self.membership.status(p).is_some_and(NodeStatus::is_alive))
                        .cloned();
                    if let Some(peer) = live_peer {
                        self.send(vec![("t".into(), "reqnodes".into()), ("dest".into(), peer)])
                            .await;
                    }
                    self.resources.comm_up(now)
                }
            };
            self.apply(outputs, now).await;
        }
    }

    fn steps_of(&self, groups: &GroupSet) -> Vec<(usize, Vec<Step>)> {
        groups
            .iter()
            .map(|&g| (g, self.settings.groups[g].steps.clone()))
            .collect()
    }

    fn group_names(&self, groups: &GroupSet) -> String {
        groups
            .iter()
            .map(|&g| self.resources.groups()[g].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The VIPs of these groups.
    fn vips_of(&self, groups: &GroupSet) -> Vec<VipSpec> {
        groups
            .iter()
            .flat_map(|&g| self.settings.groups[g].steps.iter())
            .filter_map(|s| match s {
                Step::Vip(spec) => Some(spec.clone()),
                Step::Script { .. } => None,
            })
            .collect()
    }

    async fn apply(&mut self, outputs: Vec<Output>, now: Instant) {
        for output in outputs {
            match output {
                Output::Send(fields) => self.send(fields).await,
                Output::Acquire(groups, why) => {
                    log(
                        6,
                        &format!(
                            "acquiring {} ({})",
                            self.group_names(&groups),
                            why_text(&why)
                        ),
                    );
                    let work = self.steps_of(&groups);
                    let executor = self.settings.executor.clone();
                    let tx = self.finished_tx.clone();
                    let lock = self.resource_work.clone();
                    tokio::spawn(async move {
                        let _working = lock.lock().await;
                        let mut started = GroupSet::new();
                        for (g, steps) in work {
                            let began = Instant::now();
                            let mut events = Vec::new();
                            let ok = if executor::make_before_break(&steps) {
                                executor.start_at_once(&steps, &mut events).await
                            } else {
                                executor.start_group(&steps, &mut events).await
                            };
                            log_events(&events);
                            log(
                                if ok { 6 } else { 3 },
                                &format!(
                                    "group {g} {} in {} ms",
                                    if ok { "started" } else { "failed to start" },
                                    began.elapsed().as_millis()
                                ),
                            );
                            if ok {
                                started.insert(g);
                            }
                        }
                        let _ = tx.send(Finished::Acquired(started)).await;
                    });
                }
                Output::Release(groups, why) => {
                    log(
                        6,
                        &format!(
                            "releasing {} ({})",
                            self.group_names(&groups),
                            why_text(&why)
                        ),
                    );
                    let work = self.steps_of(&groups);
                    let executor = self.settings.executor.clone();
                    let tx = self.finished_tx.clone();
                    let lock = self.resource_work.clone();
                    tokio::spawn(async move {
                        let _working = lock.lock().await;
                        let mut stopped = GroupSet::new();
                        let mut draining = Vec::new();
                        for (g, steps) in work.into_iter().rev() {
                            let mut events = Vec::new();
                            if executor::make_before_break(&steps) {
                                // The VIPs go first and the group counts as released: the taker
                                // may add them at once. The listeners stop after, unseen.
                                if executor.stop_vips(&steps, &mut events).await {
                                    stopped.insert(g);
                                    draining.push((g, steps));
                                } else {
                                    log(
                                        3,
                                        &format!("group {g}: a VIP did not go: it stays held here"),
                                    );
                                }
                            } else if executor.stop_group(&steps, &mut events).await {
                                stopped.insert(g);
                            } else {
                                log(3, &format!("group {g} did not stop: it stays held here"));
                            }
                            log_events(&events);
                        }
                        let _ = tx.send(Finished::Released(stopped)).await;
                        for (g, steps) in draining {
                            let began = Instant::now();
                            let mut events = Vec::new();
                            let ok = executor.stop_listeners(&steps, &mut events).await;
                            log_events(&events);
                            log(
                                if ok { 6 } else { 3 },
                                &format!(
                                    "group {g}: listeners {} {} ms after its VIPs went",
                                    if ok { "stopped" } else { "failed to stop" },
                                    began.elapsed().as_millis()
                                ),
                            );
                        }
                    });
                }
                Output::Prestart(groups) => {
                    let work: Vec<(usize, Vec<Step>)> = self
                        .steps_of(&groups)
                        .into_iter()
                        .filter(|(_, steps)| executor::make_before_break(steps))
                        .collect();
                    let executor = self.settings.executor.clone();
                    let tx = self.finished_tx.clone();
                    let lock = self.resource_work.clone();
                    if !work.is_empty() {
                        log(
                            6,
                            &format!(
                                "starting {} ahead of the hand-off (make-before-break)",
                                self.group_names(&groups)
                            ),
                        );
                    }
                    tokio::spawn(async move {
                        let _working = lock.lock().await;
                        for (g, steps) in work {
                            let began = Instant::now();
                            let mut events = Vec::new();
                            // A failure here only loses the head start: the acquire tries again.
                            let ok = executor.prestart(&steps, &mut events).await;
                            log_events(&events);
                            log(
                                if ok { 6 } else { 4 },
                                &format!(
                                    "group {g}: {} in {} ms, while the giver still serves",
                                    if ok {
                                        "listeners and VIPs up"
                                    } else {
                                        "head start failed"
                                    },
                                    began.elapsed().as_millis()
                                ),
                            );
                        }
                        let _ = tx.send(Finished::Prestarted).await;
                    });
                }
                Output::Reannounce(groups) => {
                    log(
                        6,
                        &format!(
                            "keeping {} after a partition healed; announcing again",
                            self.group_names(&groups)
                        ),
                    );
                    let vips = self.vips_of(&groups);
                    tokio::spawn(async move {
                        for e in executor::refresh_vips(&vips, true).await {
                            log(3, &e);
                        }
                    });
                }
                Output::ShutdownComplete => {
                    let began = self.shutdown_started.unwrap_or(now);
                    log(
                        6,
                        &format!(
                            "resources released in {} ms; leaving the cluster",
                            now.duration_since(began).as_millis()
                        ),
                    );
                    self.exit_at = Some(now + SHUTDOWN_LINGER);
                }
            }
        }
        self.stop_stale_prestarts();
    }

    /// `resource_check` is due: the status of every script of every held group, in the
    /// background, when nothing is moving (a check during a start or stop means nothing).
    fn check_resources(&mut self) {
        if self.checking || !self.resources.is_settled() {
            return;
        }
        let groups = self.resources.kept();
        if groups.is_empty() {
            return;
        }
        self.checking = true;
        let work = self.steps_of(&groups);
        let executor = self.settings.executor.clone();
        let tx = self.finished_tx.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for (g, steps) in work {
                let mut running = true;
                for step in steps.iter().filter(|s| matches!(s, Step::Script { .. })) {
                    match executor.is_running(step).await {
                        Ok(true) => {}
                        Ok(false) => {
                            log(4, &format!("group {g}: {} is not running", step.describe()));
                            running = false;
                        }
                        // Not "stopped", but no healthy answer either: a failed check.
                        Err(why) => {
                            log(3, &format!("group {g}: status check could not run: {why}"));
                            running = false;
                        }
                    }
                }
                results.push((g, running));
            }
            let _ = tx.send(Finished::Checked(results)).await;
        });
    }

    fn on_checked(&mut self, results: Vec<(usize, bool)>, now: Instant) -> Vec<Output> {
        let Some(check) = self.settings.resource_check else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (g, running) in results {
            // Only what is still held and settled counts: it may have moved meanwhile.
            if !self.resources.held().contains(&g) || !self.resources.is_settled() {
                self.check_failures.remove(&g);
                continue;
            }
            if running {
                self.check_failures.remove(&g);
                continue;
            }
            let failures = self.check_failures.entry(g).or_default();
            *failures += 1;
            if *failures < check.failures {
                log(
                    4,
                    &format!(
                        "group {g}: status check failed ({failures} of {})",
                        check.failures
                    ),
                );
                continue;
            }
            self.check_failures.remove(&g);
            log(
                3,
                &format!(
                    "group {g}: status check failed {} times in a row: moving it",
                    check.failures
                ),
            );
            out.extend(self.resources.resource_failed(g, now));
        }
        out
    }

    /// Stops the listeners started for a hand-off that did not happen.
    fn stop_stale_prestarts(&mut self) {
        let stale = self.resources.take_stale_prestarts();
        if stale.is_empty() {
            return;
        }
        log(
            5,
            &format!(
                "the hand-off of {} did not happen: stopping what was started for it",
                self.group_names(&stale)
            ),
        );
        let work = self.steps_of(&stale);
        let executor = self.settings.executor.clone();
        let lock = self.resource_work.clone();
        tokio::spawn(async move {
            let _working = lock.lock().await;
            for (_, steps) in work.into_iter().rev() {
                let mut events = Vec::new();
                executor.stop_vips(&steps, &mut events).await;
                executor.stop_listeners(&steps, &mut events).await;
                log_events(&events);
            }
        });
    }

    async fn on_finished(&mut self, finished: Finished, now: Instant) {
        let outputs = match finished {
            Finished::Acquired(groups) => {
                let when = SystemTime::now();
                for g in &groups {
                    self.check_failures.remove(g);
                }
                for &g in &groups {
                    self.held_since.insert(g, when);
                }
                self.resources.acquired(&groups, now)
            }
            Finished::Released(groups) => {
                for g in &groups {
                    self.held_since.remove(g);
                }
                self.resources.released(&groups, now)
            }
            Finished::Prestarted => self.resources.prestarted(),
            Finished::Checked(results) => {
                self.checking = false;
                self.on_checked(results, now)
            }
        };
        self.apply(outputs, now).await;
    }

    async fn on_control(&mut self, call: ControlCall, now: Instant) {
        let answer = match call.request {
            Request::Status => self.status_json(),
            Request::Standby => match self.resources.standby_refusal(Hold::All) {
                Some(why) => json!({"ok": false, "error": why}),
                None => {
                    let out = self.resources.request_standby(Hold::All, now);
                    self.apply(out, now).await;
                    json!({"ok": true})
                }
            },
            Request::Takeover => {
                let out = self.resources.request_takeover(Hold::All);
                self.apply(out, now).await;
                json!({"ok": true})
            }
        };
        let _ = call.reply.send(answer);
    }

    fn status_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .settings
            .nodes
            .iter()
            .map(|n| {
                if *n == self.settings.node {
                    json!({"name": n, "status": self.own_status().as_str(), "self": true})
                } else {
                    let status = self.membership.status(n).unwrap_or(NodeStatus::Unknown);
                    json!({"name": n, "status": status.as_str(), "self": false})
                }
            })
            .collect();
        let links: Vec<serde_json::Value> = self
            .membership
            .links()
            .map(|(node, link, up)| {
                json!({"node": node, "link": link, "status": if up {"up"} else {"dead"}})
            })
            .collect();
        let resources: Vec<serde_json::Value> = self
            .resources
            .held()
            .iter()
            .map(|&g| {
                let since = self
                    .held_since
                    .get(&g)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64);
                json!({
                    "group": self.resources.groups()[g].name,
                    "home": self.resources.groups()[g].home,
                    "since_unix_ms": since,
                })
            })
            .collect();
        json!({
            "node": self.settings.node,
            "generation": self.generation,
            "uptime_ms": self.started.elapsed().as_millis() as u64,
            "comm_up": self.membership.comm_up(),
            "nodes": nodes,
            "links": links,
            "media": self.media.links(),
            "rscstatus": self.resources.status_word(),
            "resources": resources,
            "counters": self.counters,
        })
    }
}

fn why_text(why: &Why) -> String {
    match why {
        Why::Unheld => "nobody holds them".into(),
        Why::Standby => "standby hand-off".into(),
        Why::Duplicate(n) => format!("also held by {n} after a partition"),
        Why::Shutdown => "shutting down".into(),
        Why::Failed => "their status check kept failing: restarting them".into(),
    }
}

fn log_events(events: &[executor::Event]) {
    for e in events {
        match &e.outcome {
            Ok(what) => log(
                6,
                &format!("{}: {what} ({} ms)", e.resource, e.took.as_millis()),
            ),
            Err(why) => log(3, &format!("{}: {why}", e.resource)),
        }
    }
}

fn random_rexmit_delay() -> Duration {
    use rand::RngExt;
    Duration::from_millis(rand::rng().random_range(50..=250))
}

/// Runs the agent until `shutdown` resolves and the resources are handed over, or an
/// unrecoverable error. `media` and `inbound` come from [`Media::open`], `control` from
/// [`control::bind`].
pub async fn run(
    settings: Settings,
    media: Media,
    mut inbound: mpsc::Receiver<Inbound>,
    control_listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), super::generation::GenerationError> {
    let (generation, previous) = super::generation::bump(&settings.state_dir)?;
    let uuid = super::generation::node_uuid(&settings.state_dir)?;
    log(
        6,
        &format!(
            "hadeploy-agent {} starting as {} (generation {generation}, {})",
            env!("CARGO_PKG_VERSION"),
            settings.node,
            match previous {
                super::generation::Previous::Found(_) => "previous generation found",
                super::generation::Previous::Missing => "no previous generation",
            }
        ),
    );
    if settings.failback == Failback::Legacy {
        log(
            4,
            "auto_failback legacy: resources are negotiated as with `auto_failback off`",
        );
    }
    // Nothing runs here until the negotiation says this node holds it: an agent that died may
    // have left VIPs behind, and a service may have been started by hand or at boot.
    for group in &settings.groups {
        let mut events = Vec::new();
        settings
            .executor
            .stop_group(&group.steps, &mut events)
            .await;
        for e in events {
            if let Err(why) = e.outcome {
                log(4, &format!("stopping {} at start-up: {why}", e.resource));
            }
        }
    }

    let now = Instant::now();
    let peers: Vec<String> = settings
        .nodes
        .iter()
        .filter(|n| **n != settings.node)
        .cloned()
        .collect();
    let groups: Vec<Group> = settings
        .groups
        .iter()
        .map(|g| Group {
            name: g.steps.first().map(Step::describe).unwrap_or_default(),
            home: g.home.clone(),
        })
        .collect();
    let (finished_tx, mut finished_rx) = mpsc::channel(16);
    let resources = ResourceManager::new(&settings.node, peers.clone(), groups, settings.failback);
    let membership = Membership::new(peers, settings.timers, now);
    let ack_trigger = {
        use rand::RngExt;
        rand::rng().random_range(0..10u64)
    };
    let keepalive = settings.timers.keepalive;
    let mut agent = Agent {
        settings,
        media,
        uuid,
        generation,
        seq: 0,
        history: VecDeque::with_capacity(HISTORY),
        peers_uuid: BTreeMap::new(),
        trackers: BTreeMap::new(),
        rexmit_due: BTreeMap::new(),
        membership,
        resources,
        held_since: BTreeMap::new(),
        ack_trigger,
        started: now,
        counters: Counters::default(),
        bad_log: BTreeMap::new(),
        finished_tx,
        exit_at: None,
        shutdown_started: None,
        resource_work: Default::default(),
        check_failures: BTreeMap::new(),
        checking: false,
    };

    let (control_tx, mut control_rx) = mpsc::channel::<ControlCall>(8);
    let control_task = tokio::spawn(serve_control(control_listener, control_tx));

    // The start sequence 3.0.6 sends: init, then up twice, then one per keepalive.
    agent.send_status(NodeStatus::Init, now).await;
    agent.send_status(NodeStatus::Up, now).await;
    agent.send_status(NodeStatus::Up, now).await;
    let mut keepalive_timer = tokio::time::interval(keepalive);
    keepalive_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive_timer.tick().await;
    // Held VIPs are refreshed, and re-created interfaces noticed, on this one timer.
    let check_every = agent
        .settings
        .resource_check
        .map_or(Duration::from_secs(3600), |c| c.interval);
    let mut check_timer = tokio::time::interval(check_every);
    check_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A re-created interface (a cable plugged back) must carry heartbeats again at once: until
    // the node hears its peers it cannot resolve a group both sides held while apart. An
    // index lookup per interface costs microseconds.
    let mut media_timer = tokio::time::interval(Duration::from_millis(100));
    media_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut vip_timer = tokio::time::interval(executor::VIP_REFRESH);
    vip_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_seen = false;

    loop {
        let deadline = [
            agent.membership.next_deadline(),
            agent.resources.next_deadline(),
            agent.rexmit_due.values().min().copied(),
            agent.exit_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + keepalive);
        tokio::select! {
            biased;
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                let now = Instant::now();
                log(6, "shutting down: handing resources over");
                agent.shutdown_started = Some(now);
                let out = agent.resources.shutdown(now);
                agent.apply(out, now).await;
            }
            Some(finished) = finished_rx.recv() => {
                agent.on_finished(finished, Instant::now()).await;
            }
            Some(datagram) = inbound.recv() => {
                agent.on_datagram(datagram, Instant::now()).await;
            }
            _ = keepalive_timer.tick() => {
                let status = agent.own_status();
                agent.send_status(status, Instant::now()).await;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if agent.exit_at.is_some_and(|at| now >= at) {
                    break;
                }
                let changes = agent.membership.tick(now);
                agent.on_membership(changes, now).await;
                let out = agent.resources.tick(now);
                agent.apply(out, now).await;
                agent.request_rexmits(now).await;
            }
            _ = media_timer.tick() => {
                match agent.media.reopen_if_changed() {
                    Ok(changed) if !changed.is_empty() => log(
                        5,
                        &format!("interface {} was re-created: heartbeat sockets reopened", changed.join(", ")),
                    ),
                    Ok(_) => {}
                    Err(e) => log(3, &format!("reopening the heartbeat media: {e}")),
                }
            }
            _ = vip_timer.tick() => {
                let vips = agent.vips_of(&agent.resources.kept());
                if !vips.is_empty() {
                    for e in executor::refresh_vips(&vips, false).await {
                        log(3, &format!("refreshing a VIP: {e}"));
                    }
                }
            }
            _ = check_timer.tick(), if agent.settings.resource_check.is_some() => {
                agent.check_resources();
            }
            Some(call) = control_rx.recv() => {
                agent.on_control(call, Instant::now()).await;
            }
        }
    }
    // Listeners still stopping after their VIPs went finish before the agent exits.
    let _finished = agent.resource_work.lock().await;
    control_task.abort();
    log(6, "stopped");
    Ok(())
}

/// Accepts control connections; each request is answered by the protocol loop.
async fn serve_control(listener: UnixListener, calls: mpsc::Sender<ControlCall>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            let Some(request) = control::read_request(&mut stream).await else {
                return;
            };
            let (reply, answer) = oneshot::channel();
            if calls.send(ControlCall { request, reply }).await.is_err() {
                return;
            }
            if let Ok(json) = answer.await {
                let _ = control::answer(&mut stream, &json).await;
            }
        });
    }
}

/// The `status` answer as an operator reads it: nodes, links, resources, counters.
pub fn status_table(status: &serde_json::Value) -> String {
    use std::fmt::Write;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} (generation {}), communication {}, resources: {}",
        text(&status["node"]),
        status["generation"],
        if status["comm_up"].as_bool() == Some(true) {
            "up"
        } else {
            "not up yet"
        },
        text(&status["rscstatus"]),
    );
    let _ = writeln!(out, "\nNODE             STATUS");
    for node in status["nodes"].as_array().into_iter().flatten() {
        let me = if node["self"].as_bool() == Some(true) {
            " (this node)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<16} {}{me}",
            text(&node["name"]),
            text(&node["status"])
        );
    }
    let links = status["links"].as_array().into_iter().flatten();
    let _ = writeln!(out, "\nLINK                         STATUS");
    for link in links {
        let _ = writeln!(
            out,
            "{:<28} {}",
            format!("{}:{}", text(&link["node"]), text(&link["link"])),
            text(&link["status"])
        );
    }
    let _ = writeln!(out, "\nHELD GROUP                   SINCE (unix ms)");
    for group in status["resources"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<28} {}",
            text(&group["group"]),
            group["since_unix_ms"]
        );
    }
    let _ = writeln!(out, "\nCOUNTERS");
    if let Some(counters) = status["counters"].as_object() {
        for (name, value) in counters {
            let _ = writeln!(out, "  {name:<20} {value}");
        }
    }
    out
}
