//! The agent's protocol core, sans I/O (the shape of quinn-proto and holo-vrrp): a [`Node`]
//! owns every piece of protocol state — our sequence numbers and history, the peers'
//! trackers, retransmission requests, membership, the resource manager, counters — and is
//! driven only by inputs: a datagram, a timeout, a control request, finished resource work, a
//! shutdown. Each input returns [`Effect`]s (datagrams to transmit, resource work to start,
//! log lines, exit), and [`Node::poll_timeout`] says when to call it next. No sockets, no
//! tokio, no clock, no filesystem: time, randomness and the wall clock come in as values, so
//! the simulator in `sim` runs whole clusters deterministically (docs/architecture.md,
//! "datagram → core → effects").

mod message;
mod packets;
#[cfg(test)]
mod sim;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::auth;
pub use super::control::Counters;
use super::membership::{Change, Membership, NodeStatus, Reason, Timers};
use super::resources::{Group, GroupSet, Hold, Output, ResourceManager, Why};
use super::seqtrack::SeqTracker;
use super::wire::{Message, Value};
use crate::config::ha::{AutoFailback, MsgFormat};
use crate::config::heartbeat::authkeys::AuthKeys;

pub use message::Kind;

/// Messages kept for retransmission (MAXMSGHIST).
const HISTORY: usize = 500;
/// A retransmission request is repeated this often until the gap closes (max_rexmit_delay).
const REXMIT_DELAY: Duration = Duration::from_millis(250);
/// After a shutdown notice went out, keep answering retransmission requests this long.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(1000);
/// One log line per kind of bad packet per this interval; the rest are counted.
const BAD_PACKET_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `resource_check`: every `interval`, the status of each held group's scripts; after
/// `failures` failed checks in a row the group moves (see `ResourceManager::resource_failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceCheck {
    pub interval: Duration,
    pub failures: u32,
}

/// What the protocol needs to know, already validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name, lower-case.
    pub node: String,
    /// Every configured node, this one included, lower-case.
    pub nodes: Vec<String>,
    pub timers: Timers,
    pub keys: AuthKeys,
    /// `msgfmt`: whether the classic `auth` field travels inside the body too.
    pub msgfmt: MsgFormat,
    pub hopfudge: u32,
    /// Status polling of held resources (hadeploy-agent.cf), off when `None`.
    pub resource_check: Option<ResourceCheck>,
    /// The haresources groups, by index; the shell knows how to run each.
    pub groups: Vec<Group>,
    pub failback: AutoFailback,
}

/// Who this node is on the wire, and the values from outside the protocol it starts with.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub uuid: [u8; 16],
    /// Our generation (`hg`), one more than the last run's.
    pub generation: u64,
    /// The wall clock at `now` of [`Node::new`], for `ts` fields and status times.
    pub unix_ms: u64,
    /// Seeds retransmission jitter and the ack phase.
    pub seed: u64,
}

/// Resource work for the shell to carry out; each but `Reannounce` and `StopPrestarted`
/// reports back through [`Node::handle_finished`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Start these groups (all at once for make-before-break groups); → `Acquired`.
    Acquire(GroupSet),
    /// Stop these groups; make-before-break groups drop their VIPs first and count as released
    /// then, their listeners stopping after; → `Released`.
    Release(GroupSet),
    /// Start the listeners and VIPs of make-before-break groups ahead of a hand-off; →
    /// `Prestarted` (also when there was nothing to start).
    Prestart(GroupSet),
    /// Gratuitous ARP again for these groups' VIPs (a partition healed).
    Reannounce(GroupSet),
    /// A hand-off that did not happen: stop what `Prestart` started.
    StopPrestarted(GroupSet),
    /// `resource_check`: the status of these groups' scripts; → `Checked`.
    Check(GroupSet),
}

/// What finished resource work reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    Acquired(GroupSet),
    Released(GroupSet),
    Prestarted,
    /// Status checks of held groups: (group, every script running).
    Checked(Vec<(usize, bool)>),
}

/// What the node asks its shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send this datagram on every heartbeat medium.
    Transmit(Vec<u8>),
    Work(Work),
    /// A log line with its syslog priority (3 error … 6 info).
    Log {
        priority: u8,
        text: String,
    },
    /// The node has left the cluster: stop.
    Exit,
}

/// A control request the node answers itself (status is read with [`Node::held_groups`] and
/// friends, since it also shows what only the shell knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Standby,
    Takeover,
}

/// The last time this node decided to take or give up groups, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub groups: Vec<String>,
    pub acquired: bool,
    /// One of [`Why::LABELS`].
    pub reason: &'static str,
    /// The sentence the log said.
    pub detail: String,
    pub at_unix_ms: u64,
}

pub struct Node {
    config: Config,
    identity: Identity,
    seq: u64,
    history: VecDeque<(u64, Vec<u8>)>,
    peers_uuid: BTreeMap<String, [u8; 16]>,
    trackers: BTreeMap<String, SeqTracker>,
    /// Gaps we asked peers to fill: (peer, seq) → when to ask again.
    rexmit_due: BTreeMap<(String, u64), Instant>,
    membership: Membership,
    resources: ResourceManager,
    held_since: BTreeMap<usize, Instant>,
    last_transition: Option<Transition>,
    /// Hand-offs decided, by [acquire, release] and [`Why::LABELS`] index.
    transitions: [[u64; Why::LABELS.len()]; 2],
    ack_trigger: u64,
    started: Instant,
    counters: Counters,
    /// Authenticated datagrams received, by the authkeys entry that verified them: a key
    /// rotation shows here which key the peers sign with.
    packets_by_key: BTreeMap<u8, u64>,
    bad_log: BTreeMap<&'static str, (Instant, u64)>,
    /// Set once `shutdone` went out: the node exits at this instant.
    exit_at: Option<Instant>,
    shutdown_started: Option<Instant>,
    /// Failed status checks in a row, per held group.
    check_failures: BTreeMap<usize, u32>,
    checking: bool,
    next_keepalive: Instant,
    next_check: Option<Instant>,
    rng: StdRng,
    /// The `ld` field: the shell refreshes it from /proc/loadavg.
    loadavg: String,
    effects: Vec<Effect>,
}

impl Node {
    /// A node that has just started: it sends the start sequence 3.0.6 sends (init, then up
    /// twice), returned by the first [`Node::take_effects`].
    pub fn new(config: Config, identity: Identity, now: Instant) -> Node {
        let peers: Vec<String> = config
            .nodes
            .iter()
            .filter(|n| **n != config.node)
            .cloned()
            .collect();
        let resources = ResourceManager::new(
            &config.node,
            peers.clone(),
            config.groups.clone(),
            config.failback,
        );
        let membership = Membership::new(peers, config.timers, now);
        let mut rng = StdRng::seed_from_u64(identity.seed);
        let ack_trigger = rng.random_range(0..10u64);
        let next_check = config.resource_check.map(|c| now + c.interval);
        let mut node = Node {
            next_keepalive: now + config.timers.keepalive,
            config,
            identity,
            seq: 0,
            history: VecDeque::with_capacity(HISTORY),
            peers_uuid: BTreeMap::new(),
            trackers: BTreeMap::new(),
            rexmit_due: BTreeMap::new(),
            membership,
            resources,
            held_since: BTreeMap::new(),
            last_transition: None,
            transitions: [[0; Why::LABELS.len()]; 2],
            ack_trigger,
            started: now,
            counters: Counters::default(),
            packets_by_key: BTreeMap::new(),
            bad_log: BTreeMap::new(),
            exit_at: None,
            shutdown_started: None,
            check_failures: BTreeMap::new(),
            checking: false,
            next_check,
            rng,
            loadavg: "0.00 0.00 0.00 1/1 1".into(),
            effects: Vec::new(),
        };
        if node.config.failback == AutoFailback::Legacy {
            node.log(
                4,
                "auto_failback legacy: resources are negotiated as with `auto_failback off`".into(),
            );
        }
        node.send_status(NodeStatus::Init, now);
        node.send_status(NodeStatus::Up, now);
        node.send_status(NodeStatus::Up, now);
        node
    }

    /// The effects the inputs so far asked for, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When [`Node::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Instant {
        [
            self.membership.next_deadline(),
            self.resources.next_deadline(),
            self.rexmit_due.values().min().copied(),
            self.exit_at,
            self.next_check,
        ]
        .into_iter()
        .flatten()
        .fold(self.next_keepalive, Instant::min)
    }

    /// Timers: our keepalive, peers' deadtimes, the resource manager's, retransmission
    /// requests, resource checks and, after `shutdone`, the exit.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.exit_at.is_some_and(|at| now >= at) {
            self.effects.push(Effect::Exit);
            return;
        }
        if now >= self.next_keepalive {
            let status = self.own_status();
            self.send_status(status, now);
            self.next_keepalive = now + self.config.timers.keepalive;
        }
        let changes = self.membership.tick(now);
        self.on_membership(changes, now);
        let out = self.resources.tick(now);
        self.apply(out, now);
        self.request_rexmits(now);
        if let (Some(check), Some(at)) = (self.config.resource_check, self.next_check)
            && now >= at
        {
            self.next_check = Some(now + check.interval);
            self.check_resources();
        }
    }

    /// SIGTERM: hand everything over, then leave.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.log(6, "shutting down: handing resources over".into());
        self.shutdown_started = Some(now);
        let out = self.resources.shutdown(now);
        self.apply(out, now);
    }

    /// `standby` / `takeover` from the control socket: `Err` says why it was refused.
    pub fn handle_control(&mut self, now: Instant, request: Control) -> Result<(), &'static str> {
        let out = match request {
            Control::Standby => {
                if let Some(why) = self.resources.standby_refusal(Hold::All) {
                    return Err(why);
                }
                self.resources.request_standby(Hold::All, now)
            }
            Control::Takeover => self.resources.request_takeover(Hold::All),
        };
        self.apply(out, now);
        Ok(())
    }

    pub fn handle_finished(&mut self, now: Instant, finished: Finished) {
        let outputs = match finished {
            Finished::Acquired(groups) => {
                for &g in &groups {
                    self.check_failures.remove(&g);
                    self.held_since.insert(g, now);
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
        self.apply(outputs, now);
    }

    /// `hadeploy-agent reload`: the settings a reload may change live (`agent::reload`
    /// judged the files) take effect now, without leaving the cluster or touching what is held.
    /// A configuration that differs in what only a restart may change is refused, with the
    /// reason, and nothing changes.
    pub fn reconfigure(&mut self, now: Instant, new: Config) -> Result<(), String> {
        let old = &self.config;
        if new.node != old.node || new.nodes != old.nodes {
            return Err("the node list differs: only a restart can change it".into());
        }
        if new.groups != old.groups || new.failback != old.failback {
            return Err(
                "the resource groups or auto_failback differ: only a restart can change them"
                    .into(),
            );
        }
        self.membership.set_timers(new.timers);
        // A shorter keepalive is kept at once; a longer one from the next heartbeat on.
        self.next_keepalive = self.next_keepalive.min(now + new.timers.keepalive);
        self.next_check = match (new.resource_check, self.config.resource_check) {
            (Some(c), Some(was)) if c.interval == was.interval => self.next_check,
            (Some(c), _) => Some(now + c.interval),
            (None, _) => None,
        };
        if new.resource_check.is_none() {
            self.check_failures.clear();
        }
        let resign = new.keys != self.config.keys || new.msgfmt != self.config.msgfmt;
        self.config = new;
        if resign {
            self.resign_history();
        }
        Ok(())
    }

    /// Signs the kept messages again with the keys now in force. A retransmission answers a
    /// gap a peer noticed, which may be one the key change itself caused (a peer still on the
    /// old key dropped our first new datagrams): sent with the old signature, the answer would
    /// fail at every peer that has moved on, and the gap would never close.
    fn resign_history(&mut self) {
        let (keys, msgfmt) = (&self.config.keys, self.config.msgfmt);
        let resigned: VecDeque<(u64, Vec<u8>)> = self
            .history
            .drain(..)
            .filter_map(|(seq, bytes)| {
                let mut message = super::wire::decode(&bytes).ok()?.message;
                if msgfmt == MsgFormat::Netstring {
                    message.remove("auth");
                }
                Some((seq, auth::sign(&message, keys, msgfmt).ok()?))
            })
            .collect();
        self.history = resigned;
    }

    /// The `ld` field of our next status messages.
    pub fn set_loadavg(&mut self, loadavg: String) {
        self.loadavg = loadavg;
    }

    // Read-only views, for the status answer and the shell's VIP refresh.

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.identity.generation
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Authenticated datagrams received that authkeys entry `index` verified.
    pub fn packets_by_key(&self, index: u8) -> u64 {
        self.packets_by_key.get(&index).copied().unwrap_or(0)
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn resources(&self) -> &ResourceManager {
        &self.resources
    }

    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The wall-clock time (ms since the epoch) at which we started holding group `g`.
    pub fn held_since_unix_ms(&self, g: usize) -> Option<u64> {
        self.held_since.get(&g).map(|&t| self.unix_ms(t))
    }

    fn unix_ms(&self, t: Instant) -> u64 {
        self.identity.unix_ms + t.saturating_duration_since(self.started).as_millis() as u64
    }

    pub fn last_transition(&self) -> Option<&Transition> {
        self.last_transition.as_ref()
    }

    /// How many times this node decided to acquire (`true`) or release groups for each reason
    /// in [`Why::LABELS`], since it started.
    pub fn transitions(&self, acquired: bool) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Why::LABELS
            .iter()
            .zip(self.transitions[usize::from(!acquired)])
            .map(|(&label, n)| (label, n))
    }

    fn record_transition(&mut self, groups: &GroupSet, why: &Why, acquired: bool, now: Instant) {
        let reason = why.label();
        if let Some(i) = Why::LABELS.iter().position(|&l| l == reason) {
            self.transitions[usize::from(!acquired)][i] += 1;
        }
        self.last_transition = Some(Transition {
            groups: groups
                .iter()
                .map(|&g| self.resources.groups()[g].name.clone())
                .collect(),
            acquired,
            reason,
            detail: why_text(why),
            at_unix_ms: self.unix_ms(now),
        });
    }

    /// The status we announce: active once communication is up.
    pub fn own_status(&self) -> NodeStatus {
        if self.membership.comm_up() {
            NodeStatus::Active
        } else {
            NodeStatus::Up
        }
    }

    fn log(&mut self, priority: u8, text: String) {
        self.effects.push(Effect::Log { priority, text });
    }

    fn peers(&self) -> impl Iterator<Item = &String> {
        self.config
            .nodes
            .iter()
            .filter(move |n| **n != self.config.node)
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        (self.identity.unix_ms + now.saturating_duration_since(self.started).as_millis() as u64)
            / 1000
    }

    /// Builds, signs, records and transmits one message. `creator` are the fields the
    /// message's author puts first; the standard fields follow in the order 3.0.6 writes them.
    fn send(&mut self, creator: Vec<(String, String)>, now: Instant) {
        let mut message = Message::new();
        for (name, value) in &creator {
            message.push_str(name, value);
        }
        let kind = message.msg_type().unwrap_or_default().to_string();
        let control = message::is_control(&kind);
        if let Some(uuid) = message.dest().and_then(|d| self.peers_uuid.get(d).copied()) {
            message.push("destuuid", Value::Binary(uuid.to_vec()));
        }
        message.push_str("src", &self.config.node);
        message.push("srcuuid", Value::Binary(self.identity.uuid.to_vec()));
        if !control {
            self.seq += 1;
            message.push_str("seq", &format!("{:x}", self.seq));
        }
        message.push_str("hg", &format!("{:x}", self.identity.generation));
        message.push_str("ts", &format!("{:x}", self.unix_secs(now)));
        if !control {
            message.push_str("ld", &self.loadavg);
        }
        let ttl = self.config.hopfudge as usize + self.config.nodes.len();
        message.push_str("ttl", &ttl.to_string());
        let datagram = match auth::sign(&message, &self.config.keys, self.config.msgfmt) {
            Ok(d) => d,
            Err(e) => {
                self.log(3, format!("cannot encode a {kind} message: {e}"));
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
        self.effects.push(Effect::Transmit(datagram));
    }

    fn send_status(&mut self, status: NodeStatus, now: Instant) {
        let dt = self.membership.advertised_deadtime(now).as_millis();
        self.send(
            vec![
                ("t".into(), "status".into()),
                ("st".into(), status.as_str().into()),
                ("dt".into(), format!("{dt:x}")),
                ("protocol".into(), "1".into()),
            ],
            now,
        );
    }

    fn bad_packet(&mut self, kind: &'static str, now: Instant, detail: impl FnOnce() -> String) {
        let entry = self.bad_log.entry(kind).or_insert((now, 0));
        if entry.1 == 0 || now.duration_since(entry.0) >= BAD_PACKET_LOG_INTERVAL {
            let suppressed = entry.1.saturating_sub(1);
            *entry = (now, 1);
            let extra = if suppressed > 0 {
                format!(" ({suppressed} more since the last report)")
            } else {
                String::new()
            };
            self.log(
                4,
                format!("dropped a datagram: {kind}: {}{extra}", detail()),
            );
        } else {
            entry.1 += 1;
        }
    }

    fn random_rexmit_delay(&mut self) -> Duration {
        Duration::from_millis(self.rng.random_range(50..=250))
    }

    fn on_membership(&mut self, changes: Vec<Change>, now: Instant) {
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
                    self.log(
                        if to == NodeStatus::Dead { 4 } else { 6 },
                        format!("node {node}: {} → {}{why}", from.as_str(), to.as_str()),
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
                    self.log(
                        if up { 6 } else { 4 },
                        format!("link {node}:{link} {}", if up { "up" } else { "dead" }),
                    );
                    Vec::new()
                }
                Change::LateHeartbeat { node, gap } => {
                    self.log(
                        4,
                        format!("late heartbeat from {node}: {} ms", gap.as_millis()),
                    );
                    Vec::new()
                }
                Change::CommUp => {
                    self.log(6, "communication with the cluster is up".into());
                    let live_peer = self
                        .peers()
                        .find(|p| self.membership.status(p).is_some_and(NodeStatus::is_alive))
                        .cloned();
                    if let Some(peer) = live_peer {
                        self.send(
                            vec![("t".into(), "reqnodes".into()), ("dest".into(), peer)],
                            now,
                        );
                    }
                    self.resources.comm_up(now)
                }
            };
            self.apply(outputs, now);
        }
    }

    fn group_names(&self, groups: &GroupSet) -> String {
        groups
            .iter()
            .map(|&g| self.resources.groups()[g].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Carries out the resource manager's decisions: messages go out, work goes to the shell.
    fn apply(&mut self, outputs: Vec<Output>, now: Instant) {
        for output in outputs {
            match output {
                Output::Send(fields) => self.send(fields, now),
                Output::Acquire(groups, why) => {
                    self.record_transition(&groups, &why, true, now);
                    let text = format!(
                        "acquiring {} ({})",
                        self.group_names(&groups),
                        why_text(&why)
                    );
                    self.log(6, text);
                    self.effects.push(Effect::Work(Work::Acquire(groups)));
                }
                Output::Release(groups, why) => {
                    self.record_transition(&groups, &why, false, now);
                    let text = format!(
                        "releasing {} ({})",
                        self.group_names(&groups),
                        why_text(&why)
                    );
                    self.log(6, text);
                    self.effects.push(Effect::Work(Work::Release(groups)));
                }
                Output::Prestart(groups) => {
                    self.effects.push(Effect::Work(Work::Prestart(groups)));
                }
                Output::Reannounce(groups) => {
                    let text = format!(
                        "keeping {} after a partition healed; announcing again",
                        self.group_names(&groups)
                    );
                    self.log(6, text);
                    self.effects.push(Effect::Work(Work::Reannounce(groups)));
                }
                Output::ShutdownComplete => {
                    let began = self.shutdown_started.unwrap_or(now);
                    let text = format!(
                        "resources released in {} ms; leaving the cluster",
                        now.duration_since(began).as_millis()
                    );
                    self.log(6, text);
                    self.exit_at = Some(now + SHUTDOWN_LINGER);
                }
            }
        }
        self.stop_stale_prestarts();
    }

    /// Stops the listeners started for a hand-off that did not happen.
    fn stop_stale_prestarts(&mut self) {
        let stale = self.resources.take_stale_prestarts();
        if stale.is_empty() {
            return;
        }
        let text = format!(
            "the hand-off of {} did not happen: stopping what was started for it",
            self.group_names(&stale)
        );
        self.log(5, text);
        self.effects.push(Effect::Work(Work::StopPrestarted(stale)));
    }

    /// `resource_check` is due: the status of every script of every held group, when nothing
    /// is moving (a check during a start or stop means nothing).
    fn check_resources(&mut self) {
        if self.checking || !self.resources.is_settled() {
            return;
        }
        let groups = self.resources.kept();
        if groups.is_empty() {
            return;
        }
        self.checking = true;
        self.effects.push(Effect::Work(Work::Check(groups)));
    }

    fn on_checked(&mut self, results: Vec<(usize, bool)>, now: Instant) -> Vec<Output> {
        let Some(check) = self.config.resource_check else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (g, running) in results {
            // Only what is still held and settled counts: it may have moved meanwhile.
            if !self.resources.held().contains(&g) || !self.resources.is_settled() || running {
                self.check_failures.remove(&g);
                continue;
            }
            let failures = self.check_failures.entry(g).or_default();
            *failures += 1;
            let failures = *failures;
            if failures < check.failures {
                self.log(
                    4,
                    format!(
                        "group {g}: status check failed ({failures} of {})",
                        check.failures
                    ),
                );
                continue;
            }
            self.check_failures.remove(&g);
            self.log(
                3,
                format!(
                    "group {g}: status check failed {} times in a row: moving it",
                    check.failures
                ),
            );
            out.extend(self.resources.resource_failed(g, now));
        }
        out
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
