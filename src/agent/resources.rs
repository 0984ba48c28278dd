//! Who holds which haresources group (PROTOCOL.md §5): Heartbeat v1's nice_failback negotiation
//! — `starting`, `resource rsc_hold=… isstable=…`, the three-phase `ask_resources` standby
//! exchange, `hb_takeover`, `shutdone` — as a pure state machine. It decides; the daemon acts:
//! every decision is an [`Output`] (send these fields, acquire these groups, release those), and
//! the daemon reports back when an acquire or release finished. Because nothing here touches
//! the network, a script or the clock, every hand-off flow of the real daemon is tested as a
//! sequence of events.
//!
//! Beyond Heartbeat v1, two rules make the outcome deterministic where 3.0.6 was not: after a
//! partition heals, a group held twice stays with its home node if that node holds it, else with
//! the holder whose name sorts first, and the other holder releases it without restarting
//! anything else; and a group nobody holds is taken by its home node when that node is up,
//! else by the first live node in name order — so with three nodes exactly one takes over.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The `auto_failback` modes (ha.cf). `Legacy` is Heartbeat's default; it is run with the same
/// negotiation as `Off` here, and the daemon says so at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    On,
    Off,
    Legacy,
}

/// A set of groups as named on the wire (`rsc_hold`), always relative to the node that sends it:
/// `local` are the groups whose home (first haresources column) is the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    None,
    Local,
    Foreign,
    All,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::None => "none",
            Hold::Local => "local",
            Hold::Foreign => "foreign",
            Hold::All => "all",
        }
    }

    /// Parses `rsc_hold` (and hb_standby's argument, where `failback` means `foreign`).
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "none" => Some(Hold::None),
            "local" => Some(Hold::Local),
            "foreign" | "failback" => Some(Hold::Foreign),
            "all" => Some(Hold::All),
            _ => None,
        }
    }

    /// What `hb_takeover X` on the sender asks of the receiver (rc.d/hb_takeover): the receiver
    /// gives up the complement, seen from its own side.
    fn takeover_complement(self) -> Self {
        match self {
            Hold::Local => Hold::Foreign,
            Hold::Foreign => Hold::Local,
            other => other,
        }
    }
}

/// One haresources group: its index is its position in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group's name on the wire and in logs: its first resource.
    pub name: String,
    /// The preferred node (first column), lower-cased.
    pub home: String,
}

pub type GroupSet = BTreeSet<usize>;

/// Why groups are being acquired or released, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Nobody holds them and this node is the one to take them.
    Unheld,
    /// The three-phase standby exchange.
    Standby,
    /// A partition healed and the other holder keeps them.
    Duplicate(String),
    /// This node is shutting down.
    Shutdown,
    /// Their resources kept failing the status check (`resource_check`): restart them.
    Failed,
}

/// What the daemon must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Broadcast a message with these creator fields, in this order (the daemon appends src,
    /// seq, hg, ts, … and signs it).
    Send(Vec<(String, String)>),
    /// Start these groups (left to right within each group), then call
    /// [`ResourceManager::acquired`].
    Acquire(GroupSet, Why),
    /// Stop these groups (right to left), then call [`ResourceManager::released`].
    Release(GroupSet, Why),
    /// This node is about to take these groups from a giver that still serves them: start what
    /// can run before the VIP moves (make-before-break), then call
    /// [`ResourceManager::prestarted`], which answers the giver.
    Prestart(GroupSet),
    /// Groups already held: re-send gratuitous ARP for their addresses (a healed partition).
    Reannounce(GroupSet),
    /// Everything is released and `shutdone` sent: the daemon may exit.
    ShutdownComplete,
}

/// What this node knows about a peer's resources.
#[derive(Clone, Debug, Default)]
struct PeerView {
    alive: bool,
    /// A `resource` message from its current incarnation arrived: `holds` is meaningful.
    known: bool,
    holds: GroupSet,
    stable: bool,
    /// It (re)joined and has not been offered its groups back yet: auto_failback applies
    /// when a home node returns, not after every hand-off (a standby must stick).
    failback_due: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Busy {
    Idle,
    Acquiring(GroupSet),
    Releasing(GroupSet),
}

/// The standby exchange (hb_resource.c ask_for_resources / go_standby).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Standby {
    Not,
    /// We asked to give `hold` (our view) away; waiting for `other` until `deadline`.
    Asked {
        hold: Hold,
        groups: GroupSet,
        deadline: Instant,
    },
    /// We are giving `groups` away; after the release we send `done`.
    Giving {
        hold: Hold,
        groups: GroupSet,
    },
    /// We gave them away and sent `done`; waiting for the taker's `done`.
    Given {
        hold: Hold,
    },
    /// `from` offered `hold` (its view); we wait for its `done`, then take them.
    Taking {
        from: String,
        hold: Hold,
    },
}

/// How long a standby request waits for the peer's `other` reply ("No reply to standby
/// request. Standby request cancelled.").
pub const STANDBY_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a stopping agent waits for a peer to accept its groups before it just releases
/// them: a graceful stop hands over like a standby (the taker makes before the giver
/// breaks), but must not hang when the peer does not answer.
pub const SHUTDOWN_HANDOFF_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a leaving node that released its groups waits for the taker to say it started
/// them (its scripts may take their time) before it leaves anyway.
pub const LEAVE_WAIT: Duration = Duration::from_secs(20);

/// How long to wait for a live peer's holdings before asking again.
pub const ASK_AGAIN: Duration = Duration::from_secs(1);

pub struct ResourceManager {
    me: String,
    groups: Vec<Group>,
    failback: Failback,
    held: GroupSet,
    busy: Busy,
    standby: Standby,
    peers: BTreeMap<String, PeerView>,
    comm_up: bool,
    shutting_down: bool,
    /// Set while a graceful stop hands everything to a peer first (the standby exchange):
    /// when this node stops waiting for the taker and leaves anyway.
    leave_by: Option<Instant>,
    /// Groups whose listeners were started ahead of a hand-off to this node.
    prestarted: GroupSet,
    /// Heartbeat's rsc_hold is a set of categories a node answers for, not of groups: a node
    /// with no groups of its own says `local` once it is up, and `all` after taking its
    /// peer's. These flags stand for a category only while it has no groups.
    claims: Claims,
    initial_done: bool,
    /// When to send `starting` again because a live peer has not said what it holds.
    ask_again_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Claims {
    local: bool,
    foreign: bool,
}

impl Claims {
    fn set(&mut self, hold: Hold, value: bool) {
        if matches!(hold, Hold::Local | Hold::All) {
            self.local = value;
        }
        if matches!(hold, Hold::Foreign | Hold::All) {
            self.foreign = value;
        }
    }
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl ResourceManager {
    pub fn new(
        me: &str,
        peers: impl IntoIterator<Item = String>,
        groups: Vec<Group>,
        failback: Failback,
    ) -> Self {
        Self {
            me: me.to_string(),
            groups,
            failback,
            held: GroupSet::new(),
            busy: Busy::Idle,
            standby: Standby::Not,
            peers: peers
                .into_iter()
                .map(|p| (p, PeerView::default()))
                .collect(),
            comm_up: false,
            shutting_down: false,
            leave_by: None,
            prestarted: GroupSet::new(),
            claims: Claims::default(),
            initial_done: false,
            ask_again_at: None,
        }
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Groups this node holds now.
    pub fn held(&self) -> &GroupSet {
        &self.held
    }

    /// Held groups whose VIPs must be kept alive: not those being released right now (a
    /// refresh racing the release would put the address back after it was removed).
    pub fn kept(&self) -> GroupSet {
        match &self.busy {
            Busy::Releasing(going) => self.held.difference(going).copied().collect(),
            _ => self.held.clone(),
        }
    }

    /// Whether a graceful stop is handing everything over before it leaves.
    fn leaving(&self) -> bool {
        self.leave_by.is_some()
    }

    /// `rscstatus`: what this node holds, or `transition` while something is moving.
    pub fn status_word(&self) -> &'static str {
        if !self.is_stable() {
            return "transition";
        }
        self.my_hold(&self.held).as_str()
    }

    fn is_stable(&self) -> bool {
        self.busy == Busy::Idle && matches!(self.standby, Standby::Not)
    }

    /// The groups `hold` names, seen from `node`.
    fn groups_of(&self, node: &str, hold: Hold) -> GroupSet {
        (0..self.groups.len())
            .filter(|&i| match hold {
                Hold::None => false,
                Hold::All => true,
                Hold::Local => self.groups[i].home == node,
                Hold::Foreign => self.groups[i].home != node,
            })
            .collect()
    }

    /// The word for holding `set`: per category, whether any of its groups is held — or, for
    /// a category without groups, whether this node answers for it.
    fn my_hold(&self, set: &GroupSet) -> Hold {
        let covered = |mine: bool, claimed: bool| {
            let mut category = (0..self.groups.len())
                .filter(|&g| (self.groups[g].home == self.me) == mine)
                .peekable();
            if category.peek().is_none() {
                claimed
            } else {
                category.any(|g| set.contains(&g))
            }
        };
        match (
            covered(true, self.claims.local),
            covered(false, self.claims.foreign),
        ) {
            (true, true) => Hold::All,
            (true, false) => Hold::Local,
            (false, true) => Hold::Foreign,
            (false, false) => Hold::None,
        }
    }

    fn resource_message(&self, info: Option<&str>) -> Output {
        self.holding_message(&self.held, info)
    }

    /// `resource` announcing `holding` (not necessarily what is held yet: a giver announces
    /// what it keeps before it stops the rest, as 3.0.6 does, so the taker's audit never sees
    /// both holding the same groups).
    fn holding_message(&self, holding: &GroupSet, info: Option<&str>) -> Output {
        let hold = self.my_hold(holding);
        let stable = if self.is_stable() { "1" } else { "0" };
        let mut f = fields(&[
            ("t", "resource"),
            ("rsc_hold", hold.as_str()),
            ("rtype", "full"),
            ("isstable", stable),
        ]);
        if let Some(info) = info {
            f.push(("info".into(), info.into()));
        }
        Output::Send(f)
    }

    fn ask(&self, hold: Hold, info: &str) -> Output {
        Output::Send(fields(&[
            ("t", "ask_resources"),
            ("rsc_hold", hold.as_str()),
            ("info", info),
        ]))
    }

    fn live_peers(&self) -> impl Iterator<Item = (&String, &PeerView)> {
        self.peers.iter().filter(|(_, v)| v.alive)
    }

    /// Communication came up (every node heard from or declared dead).
    pub fn comm_up(&mut self, now: Instant) -> Vec<Output> {
        if self.comm_up {
            return Vec::new();
        }
        self.comm_up = true;
        // `starting` asks the peers what they hold; our own holdings go out at once too, so a
        // peer that was up before us learns them without waiting for a change.
        let mut out = vec![
            Output::Send(fields(&[("t", "starting")])),
            self.resource_message(None),
        ];
        out.extend(self.settle(now));
        out
    }

    /// A peer became alive (membership): a new incarnation, or one returning from a partition,
    /// whose holdings are unknown until it tells us. We tell it ours at once — after a
    /// partition neither side would otherwise speak first, and both may hold the same group.
    pub fn peer_alive(&mut self, node: &str) -> Vec<Output> {
        let Some(view) = self.peers.get_mut(node) else {
            return Vec::new();
        };
        *view = PeerView {
            alive: true,
            ..PeerView::default()
        };
        if self.comm_up && !self.shutting_down {
            vec![self.resource_message(None)]
        } else {
            Vec::new()
        }
    }

    /// A peer left: shutdown notice (`graceful`) or declared dead. Its groups are now unheld.
    pub fn peer_gone(&mut self, node: &str, graceful: bool, now: Instant) -> Vec<Output> {
        let Some(view) = self.peers.get_mut(node) else {
            return Vec::new();
        };
        if !view.alive && !view.known {
            return Vec::new();
        }
        let held_something = !view.holds.is_empty();
        *view = PeerView::default();
        // mach_down: this node now answers for what the leaver held.
        self.claims.foreign = true;
        let mut out = Vec::new();
        if !graceful && held_something {
            // No fencing device: say so, as 3.0.6 does before taking over.
            out.push(Output::Send(fields(&[
                ("t", "stonith"),
                ("node", node),
                ("result", "n_stnth"),
            ])));
        }
        match &self.standby {
            Standby::Taking { from, .. } if from == node => self.standby = Standby::Not,
            Standby::Asked { .. } | Standby::Given { .. } => self.standby = Standby::Not,
            _ => {}
        }
        if self.leaving() && self.standby == Standby::Not && self.busy == Busy::Idle {
            out.extend(self.shutdown_now());
            return out;
        }
        out.extend(self.settle(now));
        out
    }

    /// A `starting` from a peer: tell it what we hold.
    pub fn peer_starting(&mut self, node: &str) -> Vec<Output> {
        if !self.peers.contains_key(node) {
            return Vec::new();
        }
        vec![self.resource_message(None)]
    }

    /// A `resource` message from a peer. `isstable` is absent in mach_down messages, which
    /// add to what the peer holds rather than replace it.
    pub fn peer_resource(
        &mut self,
        node: &str,
        hold: Hold,
        isstable: Option<bool>,
        info: Option<&str>,
        now: Instant,
    ) -> Vec<Output> {
        let groups = self.groups_of(node, hold);
        let Some(view) = self.peers.get_mut(node) else {
            return Vec::new();
        };
        view.alive = true;
        if !view.known {
            view.known = true;
            view.failback_due = true;
        }
        if info == Some("mach_down") {
            view.holds.extend(groups);
        } else {
            view.holds = groups;
            view.stable = isstable.unwrap_or(view.stable);
        }
        self.settle(now)
    }

    /// An `ask_resources` from a peer.
    pub fn peer_ask(&mut self, node: &str, hold: Hold, info: &str, now: Instant) -> Vec<Output> {
        if !self.peers.contains_key(node) {
            return Vec::new();
        }
        match info {
            "me" => {
                let peer_stable = self.peers[node].stable;
                if self.standby != Standby::Not || !self.is_stable() || !peer_stable {
                    // "Other side is in flux" / "local resources in flux": ignored; the
                    // requester times out.
                    return Vec::new();
                }
                // The request goes to every node; with more than two, only the one that
                // would take one of the offered groups answers, so exactly one takes them.
                let offered = self.offered_by(node, hold);
                if !offered.iter().any(|&g| self.taker_for(g, node) == self.me) {
                    return Vec::new();
                }
                self.standby = Standby::Taking {
                    from: node.to_string(),
                    hold,
                };
                // `other` goes out once what can run ahead is running.
                let mine: GroupSet = offered
                    .into_iter()
                    .filter(|&g| self.taker_for(g, node) == self.me && !self.held.contains(&g))
                    .collect();
                self.prestarted.extend(mine.iter().copied());
                vec![Output::Prestart(mine)]
            }
            "other" => match &self.standby {
                Standby::Asked {
                    hold: ours, groups, ..
                } if *ours == hold => {
                    let groups = groups.clone();
                    self.claims.set(hold, false);
                    self.standby = Standby::Giving {
                        hold,
                        groups: groups.clone(),
                    };
                    self.start_release(groups, Why::Standby, Some("standby"))
                }
                _ => Vec::new(),
            },
            "done" => match self.standby.clone() {
                Standby::Taking { from, hold } if from == node => {
                    let offered = self.groups_of(node, hold);
                    // Its `done` says the giver has stopped them, whatever it announced before.
                    if let Some(view) = self.peers.get_mut(node) {
                        view.holds.retain(|g| !offered.contains(g));
                    }
                    let wanted: GroupSet = offered
                        .into_iter()
                        .filter(|&g| self.taker_for(g, node) == self.me)
                        .filter(|g| !self.held.contains(g) && !self.held_by_live_peer(*g))
                        .collect();
                    if wanted.is_empty() {
                        self.standby = Standby::Not;
                        return vec![self.resource_message(None), self.ask(hold, "done")];
                    }
                    self.start_acquire(wanted, Why::Standby)
                }
                Standby::Given { .. } => {
                    self.standby = Standby::Not;
                    if self.leaving() {
                        return self.shutdown_now();
                    }
                    let mut out = vec![self.resource_message(None)];
                    out.extend(self.settle(now));
                    out
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The daemon finished an [`Output::Prestart`]: tell the giver to go ahead, if it still
    /// wants to.
    pub fn prestarted(&mut self) -> Vec<Output> {
        match self.standby {
            Standby::Taking { hold, .. } => vec![self.ask(hold, "other")],
            _ => Vec::new(),
        }
    }

    /// Groups started ahead of a hand-off that is not going to happen any more (the giver
    /// left, or the taking failed): the daemon stops what it started for them. Groups now
    /// held are ordinary held groups again.
    pub fn take_stale_prestarts(&mut self) -> GroupSet {
        let held = &self.held;
        self.prestarted.retain(|g| !held.contains(g));
        let mut pending = match &self.busy {
            Busy::Acquiring(groups) => groups.clone(),
            _ => GroupSet::new(),
        };
        if let Standby::Taking { .. } = self.standby {
            pending.extend(self.prestarted.iter().copied());
        }
        let stale: GroupSet = self.prestarted.difference(&pending).copied().collect();
        self.prestarted.retain(|g| !stale.contains(g));
        stale
    }

    /// A held group's resources keep failing their status check (`resource_check`, beyond
    /// Heartbeat v1, which never noticed a dead nginx). With a peer up and stable that would
    /// take it, the group is handed over through the standby exchange for it alone; otherwise
    /// it is stopped and started again here (settle takes the unheld group back).
    pub fn resource_failed(&mut self, group: usize, now: Instant) -> Vec<Output> {
        if !self.held.contains(&group)
            || !self.is_stable()
            || !self.comm_up
            || self.leaving()
            || self.shutting_down
        {
            return Vec::new();
        }
        let me = self.me.clone();
        let taker = self.taker_for(group, &me);
        let taker_ready = self
            .peers
            .get(&taker)
            .is_some_and(|v| v.alive && v.known && v.stable);
        let groups: GroupSet = [group].into();
        if taker_ready {
            let hold = self.my_hold(&groups);
            self.standby = Standby::Asked {
                hold,
                groups,
                deadline: now + STANDBY_REPLY_TIMEOUT,
            };
            return vec![self.ask(hold, "me")];
        }
        self.start_release(groups, Why::Failed, None)
    }

    /// Whether nothing is moving: status checks only mean something then.
    pub fn is_settled(&self) -> bool {
        self.is_stable() && self.comm_up && !self.leaving() && !self.shutting_down
    }

    /// An `hb_takeover` from a peer: it wants `hold` (its view); we give the complement.
    pub fn peer_takeover(&mut self, node: &str, hold: Hold, now: Instant) -> Vec<Output> {
        if node == self.me || !self.peers.contains_key(node) {
            return Vec::new();
        }
        self.request_standby(hold.takeover_complement(), now)
    }

    /// `hadeploy-agent standby [hold]` (hb_standby): give `hold` away to the peers.
    pub fn request_standby(&mut self, hold: Hold, now: Instant) -> Vec<Output> {
        let groups: GroupSet = self
            .groups_of(&self.me, hold)
            .intersection(&self.held)
            .copied()
            .collect();
        let taker_ready = self.live_peers().any(|(_, v)| v.known && v.stable);
        if groups.is_empty()
            || !self.is_stable()
            || !taker_ready
            || !self.comm_up
            || self.shutting_down
            || self.leaving()
        {
            return Vec::new();
        }
        self.standby = Standby::Asked {
            hold,
            groups,
            deadline: now + STANDBY_REPLY_TIMEOUT,
        };
        vec![self.ask(hold, "me")]
    }

    /// `hadeploy-agent takeover` (hb_takeover): ask the peers to give us `hold`.
    pub fn request_takeover(&self, hold: Hold) -> Vec<Output> {
        vec![Output::Send(fields(&[
            ("t", "hb_takeover"),
            ("rsc_hold", hold.as_str()),
        ]))]
    }

    /// Why a standby or takeover request would do nothing now, for the operator.
    pub fn standby_refusal(&self, hold: Hold) -> Option<&'static str> {
        if self.shutting_down || self.leaving() {
            Some("this node is shutting down")
        } else if !self.comm_up {
            Some("communication with the peers is not up yet")
        } else if !self.is_stable() {
            Some("resources are in transition")
        } else if self
            .groups_of(&self.me, hold)
            .intersection(&self.held)
            .next()
            .is_none()
        {
            Some("this node holds none of those resources")
        } else if !self.live_peers().any(|(_, v)| v.known && v.stable) {
            Some("no peer is up and stable to take them")
        } else {
            None
        }
    }

    /// Time passed: cancels a standby request nobody answered.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        if !self.shutting_down
            && self.busy == Busy::Idle
            && self.leave_by.is_some_and(|at| now >= at)
        {
            // Nobody accepted the hand-off, or the taker never said it finished.
            self.standby = Standby::Not;
            return self.shutdown_now();
        }
        if let Standby::Asked { deadline, .. } = self.standby
            && now >= deadline
        {
            self.standby = Standby::Not;
            return self.settle(now);
        }
        // Decisions wait for every live peer's holdings; if its `resource` message was lost,
        // `starting` makes every peer say again what it holds.
        let waiting =
            self.comm_up && !self.shutting_down && self.live_peers().any(|(_, v)| !v.known);
        match (waiting, self.ask_again_at) {
            (false, _) => self.ask_again_at = None,
            (true, None) => self.ask_again_at = Some(now + ASK_AGAIN),
            (true, Some(at)) if now >= at => {
                self.ask_again_at = Some(now + ASK_AGAIN);
                return vec![Output::Send(fields(&[("t", "starting")]))];
            }
            _ => {}
        }
        Vec::new()
    }

    /// The next instant [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let standby = match self.standby {
            Standby::Asked { deadline, .. } => Some(deadline),
            _ => None,
        };
        let leave = self.leave_by.filter(|_| !self.shutting_down);
        standby
            .into_iter()
            .chain(self.ask_again_at)
            .chain(leave)
            .min()
    }

    /// Graceful shutdown (SIGTERM). With a peer up and stable, everything held is first
    /// handed over through the standby exchange, so the taker starts before this node stops
    /// (3.0.6 released first and let the peer start after `shutdone`); then, or when the peer
    /// does not answer within [`SHUTDOWN_HANDOFF_TIMEOUT`], or on a second request,
    /// [`shutdown_now`](Self::shutdown_now).
    pub fn shutdown(&mut self, now: Instant) -> Vec<Output> {
        if self.leaving() || self.shutting_down {
            return self.shutdown_now();
        }
        if !self.held.is_empty() && self.standby_refusal(Hold::All).is_none() {
            let out = self.request_standby(Hold::All, now);
            if let Standby::Asked { deadline, .. } = &mut self.standby {
                *deadline = now + SHUTDOWN_HANDOFF_TIMEOUT;
                self.leave_by = Some(*deadline);
                return out;
            }
        }
        self.shutdown_now()
    }

    /// Leaves at once: announce, release everything still held right to left, `shutdone`.
    pub fn shutdown_now(&mut self) -> Vec<Output> {
        if self.shutting_down {
            return Vec::new();
        }
        self.shutting_down = true;
        self.standby = Standby::Not;
        self.claims = Claims::default();
        let mut out = Vec::new();
        if self.comm_up {
            out.push(Output::Send(fields(&[
                ("t", "resource"),
                ("rsc_hold", "none"),
                ("rtype", "full"),
                ("isstable", "0"),
                ("info", "shutdown"),
            ])));
        }
        if self.busy != Busy::Idle {
            // The finishing transition calls back into finish_shutdown.
            return out;
        }
        out.extend(self.finish_shutdown());
        out
    }

    fn finish_shutdown(&mut self) -> Vec<Output> {
        if !self.held.is_empty() {
            let all = self.held.clone();
            self.busy = Busy::Releasing(all.clone());
            return vec![Output::Release(all, Why::Shutdown)];
        }
        vec![
            Output::Send(fields(&[("t", "shutdone"), ("st", "dead")])),
            Output::ShutdownComplete,
        ]
    }

    /// The daemon finished an [`Output::Acquire`]. `started` are the groups now running; the
    /// others failed (and were stopped again by the daemon).
    pub fn acquired(&mut self, started: &GroupSet, now: Instant) -> Vec<Output> {
        let Busy::Acquiring(_) = std::mem::replace(&mut self.busy, Busy::Idle) else {
            return Vec::new();
        };
        self.held.extend(started.iter().copied());
        if self.shutting_down {
            return self.finish_shutdown();
        }
        let mut out = Vec::new();
        if let Standby::Taking { hold, .. } = self.standby {
            self.standby = Standby::Not;
            // The giver's `local` is our `foreign` and the other way round.
            self.claims.set(hold.takeover_complement(), true);
            out.push(self.resource_message(None));
            out.push(self.ask(hold, "done"));
            // Holdings may have changed while we started them (another node's take).
            out.extend(self.settle(now));
            return out;
        }
        out.push(self.resource_message(Some("req_our_resources()")));
        out.extend(self.settle(now));
        out
    }

    /// The daemon finished an [`Output::Release`]. `stopped` are the groups now down; a group
    /// whose stop failed stays held (and is not handed over blindly).
    pub fn released(&mut self, stopped: &GroupSet, now: Instant) -> Vec<Output> {
        let Busy::Releasing(_) = std::mem::replace(&mut self.busy, Busy::Idle) else {
            return Vec::new();
        };
        for g in stopped {
            self.held.remove(g);
        }
        if self.shutting_down {
            return self.finish_shutdown();
        }
        let mut out = Vec::new();
        if let Standby::Giving { hold, groups } = self.standby.clone() {
            if groups.iter().any(|g| self.held.contains(g)) {
                // A stop failed: the peer must not start what may still be running here.
                self.standby = Standby::Not;
                out.push(self.resource_message(Some("standby")));
                if self.leaving() {
                    out.extend(self.shutdown_now());
                }
                return out;
            }
            out.push(self.ask(hold, "done"));
            self.standby = Standby::Given { hold };
            if self.leaving() {
                // `shutdone` only after the taker's `done`: a real Heartbeat taker that hears
                // it while still starting starts the groups a second time, as a dead node's.
                self.leave_by = Some(now + LEAVE_WAIT);
            }
            return out;
        }
        out.push(self.resource_message(None));
        out.extend(self.settle(now));
        out
    }

    fn start_acquire(&mut self, groups: GroupSet, why: Why) -> Vec<Output> {
        self.busy = Busy::Acquiring(groups.clone());
        vec![Output::Acquire(groups, why)]
    }

    fn start_release(&mut self, groups: GroupSet, why: Why, info: Option<&str>) -> Vec<Output> {
        self.busy = Busy::Releasing(groups.clone());
        let mut out = Vec::new();
        if let Some(info) = info {
            // Peers see us in flux (isstable=0), keeping only the rest, before anything stops.
            let keeping: GroupSet = self.held.difference(&groups).copied().collect();
            out.push(self.holding_message(&keeping, Some(info)));
        }
        out.push(Output::Release(groups, why));
        out
    }

    fn held_by_live_peer(&self, group: usize) -> bool {
        self.live_peers().any(|(_, v)| v.holds.contains(&group))
    }

    fn node_is_ready(&self, node: &str) -> bool {
        node == self.me || self.peers.get(node).is_some_and(|v| v.alive && v.known)
    }

    /// Which node should hold `group` when nobody does: its home when up, else the first live
    /// node in name order.
    /// The groups `node` offers with `hold`: those it holds, when we know what it holds.
    fn offered_by(&self, node: &str, hold: Hold) -> GroupSet {
        let named = self.groups_of(node, hold);
        match self.peers.get(node) {
            Some(view) if view.known => named.intersection(&view.holds).copied().collect(),
            _ => named,
        }
    }

    /// Who takes `group` when `giver` hands it over: its home when that is another ready
    /// node, else the first ready node by name other than the giver.
    fn taker_for(&self, group: usize, giver: &str) -> String {
        let home = &self.groups[group].home;
        if home != giver && self.node_is_ready(home) {
            return home.clone();
        }
        let mut ready: Vec<&String> = self
            .live_peers()
            .filter(|(n, v)| v.known && n.as_str() != giver)
            .map(|(n, _)| n)
            .collect();
        if self.me != giver {
            ready.push(&self.me);
        }
        ready.sort();
        ready.first().map(|n| n.to_string()).unwrap_or_default()
    }

    fn designated_taker(&self, group: usize) -> String {
        let home = &self.groups[group].home;
        if self.node_is_ready(home) {
            return home.clone();
        }
        let mut live: Vec<&String> = self.live_peers().map(|(n, _)| n).collect();
        live.push(&self.me);
        live.sort();
        live[0].clone()
    }

    /// Decides the next transition, if any, once nothing is in flight.
    fn settle(&mut self, now: Instant) -> Vec<Output> {
        if !self.comm_up
            || self.shutting_down
            || self.leaving()
            || self.busy != Busy::Idle
            || self.standby != Standby::Not
        {
            return Vec::new();
        }
        // Until every live peer has told us what it holds, any decision could double-start.
        if self.live_peers().any(|(_, v)| !v.known) {
            return Vec::new();
        }
        if !self.initial_done {
            // req_our_resources(): from now on this node answers for its own category, and
            // for everything when it is alone.
            self.initial_done = true;
            self.claims.local = true;
            if self.live_peers().next().is_none() {
                self.claims.foreign = true;
            }
        }

        // A group held here and by a live peer (a healed partition): one keeps it.
        let mut lose = GroupSet::new();
        let mut keep = GroupSet::new();
        for &g in &self.held {
            let mut holders: Vec<&str> = self
                .live_peers()
                .filter(|(_, v)| v.holds.contains(&g))
                .map(|(n, _)| n.as_str())
                .collect();
            if holders.is_empty() {
                continue;
            }
            holders.push(&self.me);
            let home = self.groups[g].home.as_str();
            let winner = if holders.contains(&home) {
                home
            } else {
                holders.iter().min().copied().unwrap_or(home)
            };
            if winner == self.me {
                keep.insert(g);
            } else {
                lose.insert(g);
            }
        }
        if !lose.is_empty() {
            let winner = self.designated_taker(*lose.iter().next().unwrap_or(&0));
            return self.start_release(lose, Why::Duplicate(winner), None);
        }
        let mut out = Vec::new();
        if !keep.is_empty() {
            out.push(Output::Reannounce(keep));
        }

        // Groups nobody holds.
        let unheld: GroupSet = (0..self.groups.len())
            .filter(|&g| !self.held.contains(&g) && !self.held_by_live_peer(g))
            .filter(|&g| self.designated_taker(g) == self.me)
            .collect();
        if !unheld.is_empty() {
            out.extend(self.start_acquire(unheld, Why::Unheld));
            return out;
        }

        // auto_failback on: hand a returned home node its groups back, once per return.
        if self.failback == Failback::On {
            let returned: Vec<String> = self
                .live_peers()
                .filter(|(_, v)| v.known && v.stable && v.failback_due)
                .map(|(n, _)| n.clone())
                .collect();
            let give: GroupSet = self
                .held
                .iter()
                .copied()
                .filter(|&g| returned.contains(&self.groups[g].home))
                .collect();
            for node in &returned {
                if let Some(view) = self.peers.get_mut(node) {
                    view.failback_due = false;
                }
            }
            if !give.is_empty() {
                let hold = Hold::Foreign;
                self.standby = Standby::Asked {
                    hold,
                    groups: give,
                    deadline: now + STANDBY_REPLY_TIMEOUT,
                };
                out.push(self.ask(hold, "me"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(me: &str, failback: Failback) -> ResourceManager {
        let peer = if me == "node1" { "node2" } else { "node1" };
        ResourceManager::new(
            me,
            [peer.to_string()],
            vec![Group {
                name: "IPaddr::10.0.0.100/24/eth0".into(),
                home: "node1".into(),
            }],
            failback,
        )
    }

    /// node1 up with node2 known and stable, node1 holding the group.
    fn node1_holding(failback: Failback, now: Instant) -> ResourceManager {
        let mut n1 = pair("node1", failback);
        n1.peer_alive("node2");
        n1.comm_up(now);
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        n1.acquired(&set(&[0]), now);
        n1
    }

    fn sent(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(f) => Some(
                    f.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            })
            .collect()
    }

    fn set(items: &[usize]) -> GroupSet {
        items.iter().copied().collect()
    }

    fn acquires(out: &[Output]) -> Option<GroupSet> {
        out.iter().find_map(|o| match o {
            Output::Acquire(s, _) => Some(s.clone()),
            _ => None,
        })
    }

    fn releases(out: &[Output]) -> Option<GroupSet> {
        out.iter().find_map(|o| match o {
            Output::Release(s, _) => Some(s.clone()),
            _ => None,
        })
    }

    #[test]
    fn alone_at_comm_up_takes_everything() {
        let now = Instant::now();
        let mut rm = pair("node2", Failback::On);
        let out = rm.comm_up(now);
        assert_eq!(
            sent(&out),
            [
                "t=starting",
                "t=resource rsc_hold=none rtype=full isstable=1"
            ]
        );
        assert_eq!(acquires(&out), Some(set(&[0])));
        let out = rm.acquired(&set(&[0]), now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=all rtype=full isstable=1 info=req_our_resources()"]
        );
        assert_eq!(rm.status_word(), "all", "alone: it answers for everything");
    }

    #[test]
    fn both_fresh_the_home_node_takes_its_group() {
        let now = Instant::now();
        let mut n1 = pair("node1", Failback::On);
        let mut n2 = pair("node2", Failback::On);
        n1.peer_alive("node2");
        n2.peer_alive("node1");
        assert!(
            acquires(&n1.comm_up(now)).is_none(),
            "waits for node2's holdings"
        );
        assert!(acquires(&n2.comm_up(now)).is_none());
        // Each answers the other's `starting`.
        let to_n2 = n1.peer_starting("node2");
        let to_n1 = n2.peer_starting("node1");
        assert_eq!(
            sent(&to_n1),
            ["t=resource rsc_hold=none rtype=full isstable=1"]
        );
        assert!(sent(&to_n2)[0].contains("rsc_hold=none"));
        let out = n1.peer_resource("node2", Hold::None, Some(true), None, now);
        assert_eq!(acquires(&out), Some(set(&[0])), "home node takes its group");
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert!(acquires(&out).is_none(), "the other does not");
    }

    #[test]
    fn a_joining_node_waits_and_failback_on_returns_its_group() {
        let now = Instant::now();
        // node2 holds node1's group; node1 comes back.
        let mut n2 = pair("node2", Failback::On);
        n2.comm_up(now);
        n2.acquired(&set(&[0]), now);
        n2.peer_alive("node1");
        let mut n1 = pair("node1", Failback::On);
        n1.peer_alive("node2");
        assert!(acquires(&n1.comm_up(now)).is_none());
        // node1 `starting` → node2 tells what it holds.
        let out = n2.peer_starting("node1");
        assert!(
            sent(&out)[0].contains("rsc_hold=all"),
            "alone, node2 took all"
        );
        let out = n1.peer_resource("node2", Hold::Foreign, Some(true), None, now);
        assert!(acquires(&out).is_none(), "held by node2: not started twice");
        // node1's own `resource none` reaches node2, which offers the group back.
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=me"]);
        let out = n1.peer_ask("node2", Hold::Foreign, "me", now);
        assert_eq!(out, [Output::Prestart(set(&[0]))]);
        let out = n1.prestarted();
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=other"]);
        let out = n2.peer_ask("node1", Hold::Foreign, "other", now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=local rtype=full isstable=0 info=standby"]
        );
        assert_eq!(releases(&out), Some(set(&[0])));
        let out = n2.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=done"]);
        let out = n1.peer_ask("node2", Hold::Foreign, "done", now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        let out = n1.acquired(&set(&[0]), now);
        assert_eq!(
            sent(&out),
            [
                "t=resource rsc_hold=local rtype=full isstable=1",
                "t=ask_resources rsc_hold=foreign info=done"
            ]
        );
        let out = n2.peer_ask("node1", Hold::Foreign, "done", now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=local rtype=full isstable=1"]
        );
        assert!(n2.held().is_empty());
        assert_eq!(n1.held(), &set(&[0]));
    }

    #[test]
    fn with_failback_on_a_standby_sticks() {
        let now = Instant::now();
        // node2 took node1's group by standby: node1 is up all along, not returning.
        let mut n2 = pair("node2", Failback::On);
        n2.peer_alive("node1");
        n2.comm_up(now);
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        n2.peer_ask("node1", Hold::All, "me", now);
        n2.peer_resource("node1", Hold::None, Some(false), Some("standby"), now);
        n2.peer_ask("node1", Hold::All, "done", now);
        let out = n2.acquired(&set(&[0]), now);
        assert!(
            !sent(&out)
                .iter()
                .any(|m| m.contains("ask_resources rsc_hold=foreign"))
        );
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert!(out.is_empty(), "no failback: {out:?}");
        // node1 restarts: now it is offered its group back.
        n2.peer_alive("node1");
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=me"]);
    }

    #[test]
    fn failback_off_leaves_the_group_where_it_is() {
        let now = Instant::now();
        let mut n2 = pair("node2", Failback::Off);
        n2.comm_up(now);
        n2.acquired(&set(&[0]), now);
        n2.peer_alive("node1");
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn standby_hands_everything_over_and_times_out_without_a_reply() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::Off, now);
        let out = n1.request_standby(Hold::All, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=me"]);
        assert_eq!(n1.status_word(), "transition");
        // No reply: cancelled after 10 s, nothing released.
        assert!(n1.tick(now + Duration::from_secs(9)).is_empty());
        n1.tick(now + STANDBY_REPLY_TIMEOUT);
        assert_eq!(n1.status_word(), "local");
        // A reply this time: release, `done`.
        n1.request_standby(Hold::All, now);
        let out = n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));
        let out = n1.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=done"]);
    }

    #[test]
    fn vips_being_released_are_not_kept_alive() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::Off, now);
        assert_eq!(n1.kept(), set(&[0]));
        n1.request_standby(Hold::All, now);
        n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(n1.held(), &set(&[0]), "still held until stopped");
        assert_eq!(n1.kept(), set(&[]), "but no longer refreshed");
    }

    #[test]
    fn a_failed_stop_is_not_handed_over() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::Off, now);
        n1.request_standby(Hold::All, now);
        n1.peer_ask("node2", Hold::All, "other", now);
        let out = n1.released(&GroupSet::new(), now);
        assert!(
            !sent(&out).iter().any(|m| m.contains("info=done")),
            "{out:?}"
        );
        assert_eq!(n1.held(), &set(&[0]));
    }

    #[test]
    fn takeover_asks_the_peer_to_stand_by() {
        let now = Instant::now();
        let mut n2 = pair("node2", Failback::Off);
        n2.comm_up(now);
        n2.acquired(&set(&[0]), now);
        n2.peer_alive("node1");
        n2.peer_resource("node1", Hold::None, Some(true), None, now);
        let out = n2.peer_takeover("node1", Hold::All, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=me"]);
        // `hb_takeover local` from node1 means node2 gives its foreign groups.
        let mut n2b = pair("node2", Failback::Off);
        n2b.comm_up(now);
        n2b.acquired(&set(&[0]), now);
        n2b.peer_alive("node1");
        n2b.peer_resource("node1", Hold::None, Some(true), None, now);
        let out = n2b.peer_takeover("node1", Hold::Local, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=me"]);
    }

    #[test]
    fn a_graceful_stop_hands_over_make_before_break_then_leaves() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::On, now);
        let mut n2 = pair("node2", Failback::On);
        n2.peer_alive("node1");
        n2.comm_up(now);
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);

        // The leaver asks first and stops nothing yet.
        let out = n1.shutdown(now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=me"]);
        assert_eq!(releases(&out), None);
        // The taker starts what can run ahead, and only then says go.
        let out = n2.peer_ask("node1", Hold::All, "me", now);
        assert_eq!(out, [Output::Prestart(set(&[0]))]);
        let out = n2.prestarted();
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=other"]);
        // The leaver releases, says `done`, and leaves without waiting for the taker.
        let out = n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));
        let out = n1.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=done"]);
        let out = n2.peer_ask("node1", Hold::All, "done", now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        assert!(n2.take_stale_prestarts().is_empty(), "being acquired");
        let out = n2.acquired(&set(&[0]), now);
        assert!(sent(&out).contains(&"t=ask_resources rsc_hold=all info=done".to_string()));
        assert_eq!(n2.held(), &set(&[0]));
        assert!(n2.take_stale_prestarts().is_empty());
        // Only the taker's `done` lets the leaver go.
        let out = n1.peer_ask("node2", Hold::All, "done", now);
        assert_eq!(
            sent(&out),
            [
                "t=resource rsc_hold=none rtype=full isstable=0 info=shutdown",
                "t=shutdone st=dead"
            ]
        );
        assert_eq!(out.last(), Some(&Output::ShutdownComplete));
    }

    #[test]
    fn a_failing_group_moves_to_a_ready_peer_or_restarts_alone() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::On, now);
        let out = n1.resource_failed(0, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=local info=me"]);
        let out = n1.peer_ask("node2", Hold::Local, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));

        // Alone: stopped, then taken again as an unheld group.
        let mut alone = pair("node1", Failback::On);
        alone.comm_up(now);
        alone.peer_gone("node2", false, now);
        alone.acquired(&set(&[0]), now);
        assert!(alone.is_settled());
        let out = alone.resource_failed(0, now);
        assert_eq!(releases(&out), Some(set(&[0])));
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Release(_, Why::Failed)))
        );
        let out = alone.released(&set(&[0]), now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        // Not held, or moving: nothing to do.
        assert!(alone.resource_failed(0, now).is_empty());
    }

    #[test]
    fn a_graceful_stop_nobody_accepts_releases_after_the_timeout() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::On, now);
        assert!(releases(&n1.shutdown(now)).is_none());
        assert!(n1.tick(now + Duration::from_millis(1900)).is_empty());
        let out = n1.tick(now + SHUTDOWN_HANDOFF_TIMEOUT);
        assert_eq!(releases(&out), Some(set(&[0])));
        // A taker that never says it finished does not keep the leaver forever.
        let mut n1 = node1_holding(Failback::On, now);
        n1.shutdown(now);
        n1.peer_ask("node2", Hold::All, "other", now);
        n1.released(&set(&[0]), now);
        assert_eq!(n1.next_deadline(), Some(now + LEAVE_WAIT));
        let out = n1.tick(now + LEAVE_WAIT);
        assert_eq!(out.last(), Some(&Output::ShutdownComplete));
        // A second SIGTERM does not wait at all.
        let mut n1 = node1_holding(Failback::On, now);
        n1.shutdown(now);
        assert_eq!(releases(&n1.shutdown(now)), Some(set(&[0])));
    }

    #[test]
    fn a_hand_off_that_does_not_happen_stops_the_prestarted_listeners() {
        let now = Instant::now();
        // Three nodes: node3 would take node1's group while node2 is not up yet.
        let groups = vec![Group {
            name: "IPaddr::10.0.0.100".into(),
            home: "node2".into(),
        }];
        let mut n3 = ResourceManager::new(
            "node3",
            ["node1".to_string(), "node2".to_string()],
            groups,
            Failback::Off,
        );
        n3.peer_alive("node1");
        n3.comm_up(now);
        n3.peer_resource("node1", Hold::Foreign, Some(true), None, now);
        n3.peer_gone("node2", false, now);
        let out = n3.peer_ask("node1", Hold::Foreign, "me", now);
        assert_eq!(out, [Output::Prestart(set(&[0]))]);
        assert!(n3.take_stale_prestarts().is_empty(), "still taking");
        // The home node comes back and says it holds the group: node3 takes nothing.
        n3.peer_alive("node2");
        n3.peer_resource("node2", Hold::Local, Some(true), None, now);
        n3.peer_gone("node1", true, now);
        assert_eq!(n3.take_stale_prestarts(), set(&[0]));
        assert!(n3.take_stale_prestarts().is_empty());
    }

    #[test]
    fn shutdown_now_releases_then_says_shutdone_and_the_peer_takes_over_at_once() {
        let now = Instant::now();
        let mut n1 = node1_holding(Failback::On, now);
        let out = n1.shutdown_now();
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=none rtype=full isstable=0 info=shutdown"]
        );
        assert_eq!(releases(&out), Some(set(&[0])));
        let out = n1.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=shutdone st=dead"]);
        assert_eq!(out.last(), Some(&Output::ShutdownComplete));

        let mut n2 = pair("node2", Failback::On);
        n2.peer_alive("node1");
        n2.comm_up(now);
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        let out = n2.peer_gone("node1", true, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        assert!(sent(&out).is_empty(), "no stonith message for a clean exit");
    }

    #[test]
    fn a_dead_holder_is_reported_unfenced_and_taken_over() {
        let now = Instant::now();
        let mut n2 = pair("node2", Failback::On);
        n2.peer_alive("node1");
        n2.comm_up(now);
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        let out = n2.peer_gone("node1", false, now);
        assert_eq!(sent(&out), ["t=stonith node=node1 result=n_stnth"]);
        assert_eq!(acquires(&out), Some(set(&[0])));
    }

    #[test]
    fn healed_partition_keeps_one_holder() {
        let now = Instant::now();
        // Both took the group while apart; node1 is its home and keeps it.
        let mut n1 = pair("node1", Failback::Off);
        n1.comm_up(now);
        n1.acquired(&set(&[0]), now);
        n1.peer_alive("node2");
        let out = n1.peer_resource("node2", Hold::Foreign, Some(true), None, now);
        assert_eq!(out, vec![Output::Reannounce(set(&[0]))]);

        let mut n2 = pair("node2", Failback::Off);
        n2.comm_up(now);
        n2.acquired(&set(&[0]), now);
        n2.peer_alive("node1");
        let out = n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert_eq!(releases(&out), Some(set(&[0])));
    }

    #[test]
    fn a_partition_heals_without_either_side_waiting_for_the_other() {
        let now = Instant::now();
        let mut n1 = pair("node1", Failback::Off);
        let mut n2 = pair("node2", Failback::Off);
        for (rm, peer) in [(&mut n1, "node2"), (&mut n2, "node1")] {
            rm.peer_alive(peer);
            rm.comm_up(now);
            rm.peer_resource(peer, Hold::None, Some(true), None, now);
        }
        n1.acquired(&set(&[0]), now);
        // Apart: each thinks the other dead; node2 takes the group.
        n1.peer_gone("node2", false, now);
        let out = n2.peer_gone("node1", false, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        n2.acquired(&set(&[0]), now);
        // Healed: each hears the other and says what it holds.
        let from_n1 = n1.peer_alive("node2");
        let from_n2 = n2.peer_alive("node1");
        // After mach_down each answers for the other's category too (Heartbeat's `all`).
        assert_eq!(
            sent(&from_n1),
            ["t=resource rsc_hold=all rtype=full isstable=1"]
        );
        assert_eq!(
            sent(&from_n2),
            ["t=resource rsc_hold=all rtype=full isstable=1"]
        );
        let out = n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert_eq!(
            releases(&out),
            Some(set(&[0])),
            "node2 yields to the home node"
        );
        let out = n1.peer_resource("node2", Hold::Foreign, Some(true), None, now);
        assert_eq!(out, vec![Output::Reannounce(set(&[0]))]);
    }

    #[test]
    fn three_nodes_exactly_one_survivor_takes_over() {
        let now = Instant::now();
        let groups = vec![Group {
            name: "10.0.0.100".into(),
            home: "node1".into(),
        }];
        let mut takers = 0;
        for me in ["node2", "node3"] {
            let peers = ["node1", "node2", "node3"]
                .into_iter()
                .filter(|n| *n != me)
                .map(String::from);
            let mut rm = ResourceManager::new(me, peers, groups.clone(), Failback::On);
            for p in ["node1", "node2", "node3"] {
                if p != me {
                    rm.peer_alive(p);
                }
            }
            rm.comm_up(now);
            for p in ["node2", "node3"] {
                if p != me {
                    rm.peer_resource(p, Hold::None, Some(true), None, now);
                }
            }
            rm.peer_resource("node1", Hold::Local, Some(true), None, now);
            let out = rm.peer_gone("node1", false, now);
            if acquires(&out).is_some() {
                takers += 1;
                assert_eq!(me, "node2", "first live node in name order");
            }
        }
        assert_eq!(takers, 1);
    }

    #[test]
    fn with_three_nodes_only_the_home_node_answers_a_failback_offer() {
        let now = Instant::now();
        let groups = vec![Group {
            name: "10.0.0.100".into(),
            home: "node1".into(),
        }];
        let mut answers = Vec::new();
        for me in ["node1", "node3"] {
            let peers = ["node1", "node2", "node3"]
                .into_iter()
                .filter(|n| *n != me)
                .map(String::from);
            let mut rm = ResourceManager::new(me, peers, groups.clone(), Failback::On);
            for p in ["node1", "node2", "node3"] {
                if p != me {
                    rm.peer_alive(p);
                }
            }
            rm.comm_up(now);
            for p in ["node1", "node3"] {
                if p != me {
                    rm.peer_resource(p, Hold::None, Some(true), None, now);
                }
            }
            // node2 holds node1's group and offers it back.
            rm.peer_resource("node2", Hold::All, Some(true), None, now);
            let out = rm.peer_ask("node2", Hold::Foreign, "me", now);
            if !out.is_empty() {
                assert_eq!(out, [Output::Prestart(set(&[0]))]);
                assert_eq!(
                    sent(&rm.prestarted()),
                    ["t=ask_resources rsc_hold=foreign info=other"]
                );
                answers.push(me);
            }
        }
        assert_eq!(answers, ["node1"]);
    }

    #[test]
    fn a_peer_that_never_says_what_it_holds_is_asked_again() {
        let now = Instant::now();
        let mut n1 = pair("node1", Failback::On);
        n1.peer_alive("node2");
        n1.comm_up(now);
        assert!(n1.tick(now).is_empty());
        assert!(n1.tick(now + ASK_AGAIN / 2).is_empty());
        assert_eq!(sent(&n1.tick(now + ASK_AGAIN)), ["t=starting"]);
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        assert!(n1.tick(now + ASK_AGAIN * 3).is_empty());
        assert_eq!(n1.next_deadline(), None);
    }

    #[test]
    fn hold_words_are_relative_to_the_sender() {
        let rm = pair("node2", Failback::On);
        assert_eq!(rm.groups_of("node1", Hold::Local), set(&[0]));
        assert_eq!(rm.groups_of("node2", Hold::Local), set(&[]));
        assert_eq!(rm.groups_of("node2", Hold::Foreign), set(&[0]));
        assert_eq!(Hold::parse("failback"), Some(Hold::Foreign));
        assert_eq!(Hold::parse("most"), None);
    }
}
