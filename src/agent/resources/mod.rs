//! Who holds which haresources group (docs/protocol.md §5): Heartbeat v1's nice_failback negotiation
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

mod owners;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub use crate::config::ha::AutoFailback;

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

impl Why {
    /// Every label [`Why::label`] returns, so counters by reason exist from start-up.
    pub const LABELS: [&'static str; 5] = ["unheld", "standby", "duplicate", "shutdown", "failed"];

    /// A bounded word for metrics and the status answer (the peer's name stays out).
    pub fn label(&self) -> &'static str {
        match self {
            Why::Unheld => "unheld",
            Why::Standby => "standby",
            Why::Duplicate(_) => "duplicate",
            Why::Shutdown => "shutdown",
            Why::Failed => "failed",
        }
    }
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
    /// We are giving `groups` away to `to`, the node whose `other` we accepted; after the
    /// release we send `done`. `to` becomes `None` when that node left or came back as a new
    /// incarnation meanwhile: nobody waits for the `done` any more.
    Giving {
        hold: Hold,
        groups: GroupSet,
        to: Option<String>,
    },
    /// We gave them away to `to` and sent `done`; waiting for its `done`.
    Given {
        hold: Hold,
        to: String,
    },
    /// `from` offered `hold` (its view); we wait for its `done`, then take them.
    Taking {
        from: String,
        hold: Hold,
        /// We sent `other` (what we could start ahead is running).
        answered: bool,
        /// Until the giver shows it is giving (`resource isstable=0 info=standby`), the offer
        /// lapses at this instant: a giver that cancelled its request (no reply in time, a
        /// peer died) or never made it (a retransmitted old `me`) says nothing more, and the
        /// listeners started for it must not run on forever.
        deadline: Option<Instant>,
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

/// How long a taker waits, after the `me` it answered, for the giver to show it is giving:
/// the giver's own [`STANDBY_REPLY_TIMEOUT`] (counted from its sending `me`, so it ends first)
/// plus a margin for the `other` and the answer to travel.
pub const TAKING_TIMEOUT: Duration = Duration::from_secs(12);

pub struct ResourceManager {
    me: String,
    groups: Vec<Group>,
    failback: AutoFailback,
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
    /// A peer came back: once the datagrams it sent while cut off have been retransmitted,
    /// everybody says again what it holds (see [`view_in_doubt`](Self::view_in_doubt)).
    confirm: bool,
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
        failback: AutoFailback,
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
            confirm: false,
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

    /// What `isstable` says: stable while a request of ours waits for its `other` too, as
    /// in 3.0.6 (nothing moves until it is answered). Saying otherwise would make the node
    /// the request goes to ignore it — a `starting` from a returning node, answered while the
    /// failback offer to it is out, was enough — and the offer would lapse unanswered.
    fn says_stable(&self) -> bool {
        self.busy == Busy::Idle && matches!(self.standby, Standby::Not | Standby::Asked { .. })
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
        let stable = if self.says_stable() { "1" } else { "0" };
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
        // Whatever exchange we had with its former self is void: a restarted node knows
        // nothing of it, and one back from a partition gave it up when it declared us dead.
        self.forget_exchange_with(node);
        // A request of ours still unanswered is withdrawn, as a death withdraws it: the node
        // that would take it may be this one, which never heard it (it went out to its
        // former self, or before it could hear us). settle asks again once it is known.
        if let Standby::Asked { .. } = self.standby {
            self.standby = Standby::Not;
        }
        let mut out = Vec::new();
        if self.comm_up && !self.shutting_down {
            out.push(self.resource_message(None));
            // What it said while we had it for dead arrives now, retransmitted to fill the
            // gap in its sequence numbers, after what it says today — and an old statement of
            // its holdings replaces the new one. The view can come out of that wrong yet
            // consistent (every node believing a group held by a node that released it), so
            // nothing would look amiss: once that traffic is over, ask everybody once more.
            self.confirm = true;
            self.ask_again_at = None;
        }
        if self.leaving() && self.standby == Standby::Not && self.busy == Busy::Idle {
            out.extend(self.shutdown_now());
        }
        out
    }

    /// Ends the part of a standby exchange that waits for `node`: as taker, the offer it made;
    /// as giver, its `done`.
    fn forget_exchange_with(&mut self, node: &str) {
        match &mut self.standby {
            Standby::Taking { from, .. } if from == node => self.standby = Standby::Not,
            Standby::Given { to, .. } if to == node => self.standby = Standby::Not,
            Standby::Giving { to, .. } if to.as_deref() == Some(node) => *to = None,
            _ => {}
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
        // A request nobody answered yet is cancelled by any death, as in 3.0.6 (the taker it
        // would go to may be the one that died).
        if let Standby::Asked { .. } = self.standby {
            self.standby = Standby::Not;
        }
        self.forget_exchange_with(node);
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
            return self.settle(now);
        }
        view.holds = groups;
        view.stable = isstable.unwrap_or(view.stable);
        let mut out = Vec::new();
        match self.standby.clone() {
            Standby::Taking { from, answered, .. } if from == node => {
                match isstable {
                    // The giver announces what it keeps before stopping the rest: it is giving.
                    Some(false) if info == Some("standby") => {
                        if let Standby::Taking { deadline, .. } = &mut self.standby {
                            *deadline = None;
                        }
                    }
                    // After our `other`, a giver that says it is stable is not giving any more:
                    // a giver is in flux from accepting our `other` until our `done`. It still
                    // holds what it offered (it cancelled, or its stop failed), or it released
                    // it another way (it withdrew its request to settle a group held twice, and
                    // our `other` found nothing to answer); either way no `done` will come.
                    Some(true) if answered => {
                        self.standby = Standby::Not;
                        // A giver still waiting for us (the stable message was an old one) learns
                        // where the groups are.
                        out.push(self.resource_message(None));
                    }
                    _ => {}
                }
            }
            Standby::Given { to, .. } if to == node && self.taker_is_through(node) => {
                // Its `done` is still to come, or was lost, or will never come (it dropped out
                // of the exchange): it says it is stable again.
                self.standby = Standby::Not;
                if self.leaving() {
                    return self.shutdown_now();
                }
                out.push(self.resource_message(None));
            }
            _ => {}
        }
        out.extend(self.settle(now));
        out
    }

    /// Whether `taker`, to which we gave groups, said since our `done` that it is stable
    /// (sending `done` marked it in flux): it runs them now and its `done` is still to come or
    /// was lost — or it had dropped out of the exchange (an old `resource` of ours,
    /// retransmitted, made it believe we were not giving) and answered our `done` with its
    /// holdings, so no `done` will ever come. Waiting for one then would leave us in flux for
    /// good, and the groups unheld.
    fn taker_is_through(&self, taker: &str) -> bool {
        self.peers
            .get(taker)
            .is_some_and(|v| v.alive && v.known && v.stable)
    }

    /// An `ask_resources` from a peer.
    pub fn peer_ask(&mut self, node: &str, hold: Hold, info: &str, now: Instant) -> Vec<Output> {
        if !self.peers.contains_key(node) {
            return Vec::new();
        }
        match info {
            "me" => {
                let peer_stable = self.peers[node].stable;
                // A node on its way out takes nothing: it would leave with what it started
                // for the hand-off still running.
                if self.shutting_down || self.leaving() {
                    return Vec::new();
                }
                if self.standby != Standby::Not || !self.is_stable() || !peer_stable {
                    // "Other side is in flux" / "local resources in flux": ignored; the
                    // requester times out.
                    return Vec::new();
                }
                // The request goes to every node; with more than two, only the one that
                // would take one of the offered groups answers, so exactly one takes them. A
                // node that cannot be sure yet (a live peer that might be the taker has not
                // said what it holds) stays out of it.
                let offered = self.offered_by(node, hold);
                let ours: GroupSet = offered
                    .into_iter()
                    .filter(|&g| self.sure_taker_for(g, node).as_deref() == Some(&self.me))
                    .collect();
                if ours.is_empty() {
                    return Vec::new();
                }
                self.standby = Standby::Taking {
                    from: node.to_string(),
                    hold,
                    answered: false,
                    deadline: Some(now + TAKING_TIMEOUT),
                };
                // `other` goes out once what can run ahead is running.
                let mine: GroupSet = ours
                    .into_iter()
                    .filter(|g| !self.held.contains(g))
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
                        to: Some(node.to_string()),
                    };
                    self.start_release(groups, Why::Standby, Some("standby"))
                }
                // The node whose offer we are taking answers an offer itself (ours, which a
                // peer's death withdrew before the two crossed, or another's): it is taking,
                // so it is not giving, and its `done` will never come. Drop the offer before
                // starting anything for good; what we prestarted for it stops. Our stable
                // `resource` tells it the same if it is taking from us.
                Standby::Taking { from, .. } if from == node && self.busy == Busy::Idle => {
                    self.standby = Standby::Not;
                    let mut out = vec![self.resource_message(None)];
                    out.extend(self.settle(now));
                    out
                }
                // An `other` for a request we no longer make (it timed out, a peer died, or
                // the `me` it answers was an old one retransmitted): say what we hold, so
                // that the taker stops what it started for it.
                Standby::Not
                    if self
                        .groups_of(&self.me, hold)
                        .iter()
                        .any(|g| self.held.contains(g)) =>
                {
                    vec![self.resource_message(None)]
                }
                _ => Vec::new(),
            },
            "done" => match self.standby.clone() {
                Standby::Taking { from, hold, .. } if from == node => {
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
                Standby::Given { to, .. } if to == node => {
                    self.standby = Standby::Not;
                    if self.leaving() {
                        return self.shutdown_now();
                    }
                    let mut out = vec![self.resource_message(None)];
                    out.extend(self.settle(now));
                    out
                }
                // A `done` for an exchange we are not in (we dropped out of it, or it is
                // the taker's `done` after its stable `resource` ended ours): say what we hold
                // — a giver still waiting on us learns that we are stable, and 3.0.6 sends its
                // holdings after the exchange too.
                _ if self.peers[node].alive && self.comm_up && !self.shutting_down => {
                    vec![self.resource_message(None)]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The daemon finished an [`Output::Prestart`]: tell the giver to go ahead, if it still
    /// wants to.
    pub fn prestarted(&mut self) -> Vec<Output> {
        match &mut self.standby {
            Standby::Taking { hold, answered, .. } => {
                *answered = true;
                let hold = *hold;
                vec![self.ask(hold, "other")]
            }
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
        // Not from a node we hold for gone: after its `shutdone` a lingering node sends only
        // retransmissions, and it would take nothing anyway (a leaver ignores offers). The
        // holders would sit in a request nobody answers for STANDBY_REPLY_TIMEOUT, settling
        // nothing else meanwhile (a group held twice, say).
        if node == self.me || !self.peers.get(node).is_some_and(|v| v.alive) {
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
        if self.shutting_down || self.leaving() {
            // A node on its way out takes nothing (peer_ask ignores offers then): asking the
            // holders to give would only freeze them in requests nobody answers.
            return Vec::new();
        }
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
            && let Standby::Asked { groups, .. } =
                std::mem::replace(&mut self.standby, Standby::Not)
        {
            // A home node that let the offer of its groups lapse (it was busy, or could not
            // be sure it was the taker yet) is offered them again: failback is not given up
            // after one try.
            if self.failback == AutoFailback::On {
                for g in groups {
                    let home = &self.groups[g].home;
                    if let Some(view) = self.peers.get_mut(home).filter(|v| v.alive) {
                        view.failback_due = true;
                    }
                }
            }
            return self.settle(now);
        }
        if let Standby::Taking {
            deadline: Some(deadline),
            ..
        } = self.standby
            && now >= deadline
        {
            // The giver never showed it was giving: the offer lapsed, and what was started
            // for it is stale (take_stale_prestarts).
            self.standby = Standby::Not;
            let mut out = vec![self.resource_message(None)];
            out.extend(self.settle(now));
            return out;
        }
        // Decisions wait for every live peer's holdings; if its `resource` message was lost,
        // `starting` makes every peer say again what it holds. So does a view that cannot be
        // the truth, and the confirmation after a peer came back.
        let unknown =
            self.comm_up && !self.shutting_down && self.live_peers().any(|(_, v)| !v.known);
        // Never during an exchange or a transition of ours: a 3.0.6 peer that hears `starting`
        // while taking answers that it is stable, and one in a takeover starts failing back.
        let idle = self.comm_up && !self.shutting_down && self.is_stable();
        let doubt = !unknown && idle && (self.confirm || self.view_in_doubt());
        match (unknown || doubt, self.ask_again_at) {
            (false, _) => self.ask_again_at = None,
            (true, None) => self.ask_again_at = Some(now + ASK_AGAIN),
            (true, Some(at)) if now >= at => {
                self.ask_again_at = Some(now + ASK_AGAIN);
                let mut out = vec![Output::Send(fields(&[("t", "starting")]))];
                if doubt {
                    self.confirm = false;
                    // Our own holdings too: a peer's view of us may be just as old, and a
                    // 3.0.6 peer takes `starting` to mean that we are in flux until we say
                    // otherwise.
                    out.push(self.resource_message(None));
                }
                return out;
            }
            _ => {}
        }
        Vec::new()
    }

    /// Whether what we believe the peers hold cannot be the settled truth although nothing
    /// moves here: a live peer in flux, or a group held by nobody or, unambiguously, by two
    /// nodes. A `resource` message states its sender's full holdings, and the newest is meant
    /// to replace the rest — but datagrams do not arrive in order: two sent milliseconds apart
    /// can swap (two media, a lost one retransmitted), and after a partition heals the gap is
    /// filled with what the peer said while cut off. An old statement that lands last stands
    /// for good, since nobody speaks again once nothing moves: a group it shows held stays
    /// unheld, a peer it shows in flux is never offered anything. While the view stays like
    /// that, [`tick`](Self::tick) asks everybody again, [`ASK_AGAIN`] apart (during a hand-off
    /// that takes its time, one `resource` message per peer and second).
    ///
    /// Asked only of a node that is up, idle and in no exchange ([`tick`](Self::tick) checks).
    fn view_in_doubt(&self) -> bool {
        if self.leaving() || !self.initial_done {
            return false;
        }
        if self.live_peers().any(|(_, v)| !v.stable) {
            return true;
        }
        (0..self.groups.len()).any(|g| {
            // rsc_hold names categories: a peer saying `foreign` may hold only one of several
            // foreign groups, so it counts as a second holder only when its word can mean no
            // other group — otherwise asking again would change nothing, every second.
            let precise = |node: &str| {
                let home_is_node = self.groups[g].home == node;
                self.groups
                    .iter()
                    .filter(|other| (other.home == node) == home_is_node)
                    .count()
                    == 1
            };
            let mine = usize::from(self.held.contains(&g));
            let theirs: Vec<&String> = self
                .live_peers()
                .filter(|(_, v)| v.holds.contains(&g))
                .map(|(n, _)| n)
                .collect();
            let precise_holders = mine + theirs.iter().filter(|n| precise(n)).count();
            mine + theirs.len() == 0 || precise_holders > 1
        })
    }

    /// The next instant [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let standby = match self.standby {
            Standby::Asked { deadline, .. } => Some(deadline),
            Standby::Taking { deadline, .. } => deadline,
            _ => None,
        };
        // tick leaves only once nothing is in flight; until then the work's end wakes us.
        let leave = self
            .leave_by
            .filter(|_| !self.shutting_down && self.busy == Busy::Idle);
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
        if let Standby::Giving { hold, groups, to } = self.standby.clone() {
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
            let Some(to) = to else {
                // The taker left (or came back new) while we stopped: nobody will answer our
                // `done`; the groups are simply unheld now.
                self.standby = Standby::Not;
                if self.leaving() {
                    out.extend(self.shutdown_now());
                    return out;
                }
                out.push(self.resource_message(None));
                out.extend(self.settle(now));
                return out;
            };
            if let Some(view) = self.peers.get_mut(&to) {
                // In flux from our `done` until it says otherwise (taker_is_through). What it
                // said before does not count: a 3.0.6 taker, asked, says it is stable while it
                // waits for our `done`.
                view.stable = false;
            }
            self.standby = Standby::Given { hold, to };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(me: &str, failback: AutoFailback) -> ResourceManager {
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
    fn node1_holding(failback: AutoFailback, now: Instant) -> ResourceManager {
        let mut n1 = pair("node1", failback);
        n1.peer_alive("node2");
        n1.comm_up(now);
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        n1.acquired(&set(&[0]), now);
        n1
    }

    /// node2 up and holding node1's group when node1 comes alive, its holdings not yet known.
    fn node2_holding_node1s_group(failback: AutoFailback, now: Instant) -> ResourceManager {
        let mut n2 = pair("node2", failback);
        n2.comm_up(now);
        n2.acquired(&set(&[0]), now);
        n2.peer_alive("node1");
        n2
    }

    /// node2 up, holding nothing, with node1 known to hold its group and stable.
    fn node2_beside_node1_holding(failback: AutoFailback, now: Instant) -> ResourceManager {
        let mut n2 = pair("node2", failback);
        n2.peer_alive("node1");
        n2.comm_up(now);
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        n2
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
        let mut rm = pair("node2", AutoFailback::On);
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
        let mut n1 = pair("node1", AutoFailback::On);
        let mut n2 = pair("node2", AutoFailback::On);
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
        let mut n2 = node2_holding_node1s_group(AutoFailback::On, now);
        let mut n1 = pair("node1", AutoFailback::On);
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
        let mut n2 = node2_beside_node1_holding(AutoFailback::On, now);
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
        let mut n2 = node2_holding_node1s_group(AutoFailback::Off, now);
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn standby_hands_everything_over_and_times_out_without_a_reply() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
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
        let mut n1 = node1_holding(AutoFailback::Off, now);
        assert_eq!(n1.kept(), set(&[0]));
        n1.request_standby(Hold::All, now);
        n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(n1.held(), &set(&[0]), "still held until stopped");
        assert_eq!(n1.kept(), set(&[]), "but no longer refreshed");
    }

    #[test]
    fn a_failed_stop_is_not_handed_over() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
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
        let mut n2 = node2_holding_node1s_group(AutoFailback::Off, now);
        n2.peer_resource("node1", Hold::None, Some(true), None, now);
        let out = n2.peer_takeover("node1", Hold::All, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=me"]);
        // `hb_takeover local` from node1 means node2 gives its foreign groups.
        let mut n2b = pair("node2", AutoFailback::Off);
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
        let mut n1 = node1_holding(AutoFailback::On, now);
        let mut n2 = node2_beside_node1_holding(AutoFailback::On, now);

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
        let mut n1 = node1_holding(AutoFailback::On, now);
        let out = n1.resource_failed(0, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=local info=me"]);
        let out = n1.peer_ask("node2", Hold::Local, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));

        // Alone: stopped, then taken again as an unheld group.
        let mut alone = pair("node1", AutoFailback::On);
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
        let mut n1 = node1_holding(AutoFailback::On, now);
        assert!(releases(&n1.shutdown(now)).is_none());
        assert!(n1.tick(now + Duration::from_millis(1900)).is_empty());
        let out = n1.tick(now + SHUTDOWN_HANDOFF_TIMEOUT);
        assert_eq!(releases(&out), Some(set(&[0])));
        // A taker that never says it finished does not keep the leaver forever.
        let mut n1 = node1_holding(AutoFailback::On, now);
        n1.shutdown(now);
        n1.peer_ask("node2", Hold::All, "other", now);
        n1.released(&set(&[0]), now);
        assert_eq!(n1.next_deadline(), Some(now + LEAVE_WAIT));
        let out = n1.tick(now + LEAVE_WAIT);
        assert_eq!(out.last(), Some(&Output::ShutdownComplete));
        // A second SIGTERM does not wait at all.
        let mut n1 = node1_holding(AutoFailback::On, now);
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
            AutoFailback::Off,
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
        let mut n1 = node1_holding(AutoFailback::On, now);
        let out = n1.shutdown_now();
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=none rtype=full isstable=0 info=shutdown"]
        );
        assert_eq!(releases(&out), Some(set(&[0])));
        let out = n1.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=shutdone st=dead"]);
        assert_eq!(out.last(), Some(&Output::ShutdownComplete));

        let mut n2 = node2_beside_node1_holding(AutoFailback::On, now);
        let out = n2.peer_gone("node1", true, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        assert!(sent(&out).is_empty(), "no stonith message for a clean exit");
    }

    #[test]
    fn a_dead_holder_is_reported_unfenced_and_taken_over() {
        let now = Instant::now();
        let mut n2 = node2_beside_node1_holding(AutoFailback::On, now);
        let out = n2.peer_gone("node1", false, now);
        assert_eq!(sent(&out), ["t=stonith node=node1 result=n_stnth"]);
        assert_eq!(acquires(&out), Some(set(&[0])));
    }

    #[test]
    fn healed_partition_keeps_one_holder() {
        let now = Instant::now();
        // Both took the group while apart; node1 is its home and keeps it.
        let mut n1 = pair("node1", AutoFailback::Off);
        n1.comm_up(now);
        n1.acquired(&set(&[0]), now);
        n1.peer_alive("node2");
        let out = n1.peer_resource("node2", Hold::Foreign, Some(true), None, now);
        assert_eq!(out, vec![Output::Reannounce(set(&[0]))]);

        let mut n2 = node2_holding_node1s_group(AutoFailback::Off, now);
        let out = n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert_eq!(releases(&out), Some(set(&[0])));
    }

    #[test]
    fn a_partition_heals_without_either_side_waiting_for_the_other() {
        let now = Instant::now();
        let mut n1 = pair("node1", AutoFailback::Off);
        let mut n2 = pair("node2", AutoFailback::Off);
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
            let mut rm = ResourceManager::new(me, peers, groups.clone(), AutoFailback::On);
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
            let mut rm = ResourceManager::new(me, peers, groups.clone(), AutoFailback::On);
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
        let mut n1 = pair("node1", AutoFailback::On);
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
    fn an_old_resource_message_that_lands_last_is_asked_about_again() {
        let now = Instant::now();
        // node1 holds its group and says so, stable; an earlier "in flux" of its lands last.
        let mut n2 = node2_beside_node1_holding(AutoFailback::Off, now);
        assert!(n2.tick(now).is_empty(), "consistent: nothing to ask");
        n2.peer_resource("node1", Hold::Local, Some(false), None, now);
        assert!(n2.tick(now).is_empty());
        assert_eq!(
            sent(&n2.tick(now + ASK_AGAIN)),
            [
                "t=starting",
                "t=resource rsc_hold=local rtype=full isstable=1"
            ]
        );
        // Its answer says what holds today, and nobody is asked again.
        n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert!(n2.tick(now + ASK_AGAIN * 3).is_empty());
        assert_eq!(n2.next_deadline(), None);
    }

    #[test]
    fn a_peer_back_from_a_partition_is_asked_once_more_after_its_old_traffic() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
        n1.peer_gone("node2", false, now);
        n1.peer_alive("node2");
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        assert!(n1.tick(now).is_empty());
        assert_eq!(
            sent(&n1.tick(now + ASK_AGAIN)),
            [
                "t=starting",
                "t=resource rsc_hold=all rtype=full isstable=1"
            ]
        );
        assert!(n1.tick(now + ASK_AGAIN * 2).is_empty(), "once");
        assert_eq!(n1.next_deadline(), None);
    }

    #[test]
    fn a_takeover_asked_by_a_node_that_left_is_ignored() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
        n1.peer_gone("node2", true, now);
        assert!(n1.peer_takeover("node2", Hold::All, now).is_empty());
        // Nor does a node on its way out ask for anything.
        let mut n2 = pair("node2", AutoFailback::Off);
        n2.comm_up(now);
        n2.shutdown_now();
        assert!(n2.request_takeover(Hold::All).is_empty());
    }

    #[test]
    fn a_standby_request_is_withdrawn_when_its_group_turns_out_held_twice() {
        let now = Instant::now();
        // node2 holds node1's group and offers it away; then node1 turns out to hold it too.
        let mut n2 = node2_holding_node1s_group(AutoFailback::Off, now);
        n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert_eq!(
            sent(&n2.request_standby(Hold::All, now)),
            ["t=ask_resources rsc_hold=all info=me"]
        );
        let out = n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert_eq!(releases(&out), Some(set(&[0])), "the home node keeps it");
        assert!(n2.next_deadline().is_none(), "no request left waiting");
    }

    #[test]
    fn a_giver_whose_taker_dropped_out_of_the_exchange_does_not_wait_for_ever() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
        n1.request_standby(Hold::All, now);
        n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(n1.released(&set(&[0]), now).len(), 1, "`done`, then waits");
        assert_eq!(n1.status_word(), "transition");
        // node2 says it is stable and holds nothing: no `done` will come. The group is unheld,
        // and node1, its home, takes it back.
        let out = n1.peer_resource("node2", Hold::None, Some(true), None, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        // What node2 said before our `done` does not count: a 3.0.6 taker asked by a
        // `starting` says it is stable while it waits for the `done`.
        let mut n1 = node1_holding(AutoFailback::Off, now);
        n1.request_standby(Hold::All, now);
        n1.peer_ask("node2", Hold::All, "other", now);
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        let out = n1.released(&set(&[0]), now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=all info=done"]);
        assert_eq!(n1.status_word(), "transition");
        // A taker that dropped out answers the `done` with its holdings.
        let mut n2 = node2_beside_node1_holding(AutoFailback::Off, now);
        assert_eq!(
            sent(&n2.peer_ask("node1", Hold::All, "done", now)),
            ["t=resource rsc_hold=local rtype=full isstable=1"]
        );
        let out = n1.peer_resource("node2", Hold::Local, Some(true), None, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
    }

    #[test]
    fn nobody_is_asked_again_while_an_exchange_runs() {
        let now = Instant::now();
        let mut n1 = node1_holding(AutoFailback::Off, now);
        n1.peer_gone("node2", false, now);
        n1.peer_alive("node2");
        n1.peer_resource("node2", Hold::None, Some(true), None, now);
        n1.request_standby(Hold::All, now);
        // A 3.0.6 taker hearing `starting` now would say it is stable before it has taken.
        for step in 0..5 {
            let at = now + ASK_AGAIN * step;
            assert!(sent(&n1.tick(at)).is_empty(), "asked at step {step}");
        }
        n1.peer_ask("node2", Hold::All, "other", now);
        n1.released(&set(&[0]), now);
        n1.peer_resource("node2", Hold::All, Some(true), None, now);
        assert!(n1.is_settled());
        // The confirmation the return called for comes once the exchange is over.
        assert!(n1.tick(now + ASK_AGAIN * 6).is_empty());
        assert_eq!(
            sent(&n1.tick(now + ASK_AGAIN * 7)),
            [
                "t=starting",
                "t=resource rsc_hold=none rtype=full isstable=1"
            ]
        );
    }

    #[test]
    fn a_taker_drops_the_offer_when_the_giver_is_stable_again_whatever_it_holds() {
        let now = Instant::now();
        let mut n2 = node2_beside_node1_holding(AutoFailback::Off, now);
        n2.peer_ask("node1", Hold::All, "me", now);
        n2.prestarted();
        // node1 withdrew its request and released the group another way.
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert_eq!(n2.take_stale_prestarts(), set(&[0]));
        assert!(n2.is_settled());
        assert_eq!(acquires(&out), None, "node1, its home, takes it back");
    }

    /// `me` in a cluster of node1–node3 whose two groups are at home on node1 and node2,
    /// its peers alive and communication up.
    fn three_nodes_two_groups(me: &str, now: Instant) -> ResourceManager {
        let groups = ["node1", "node2"]
            .iter()
            .enumerate()
            .map(|(i, home)| Group {
                name: format!("10.0.0.{}", 100 + i),
                home: home.to_string(),
            })
            .collect();
        let peers: Vec<String> = ["node1", "node2", "node3"]
            .iter()
            .filter(|n| **n != me)
            .map(|n| n.to_string())
            .collect();
        let mut rm = ResourceManager::new(me, peers.clone(), groups, AutoFailback::Off);
        for peer in &peers {
            rm.peer_alive(peer);
        }
        rm.comm_up(now);
        rm
    }

    #[test]
    fn two_holders_each_taking_the_others_offer_both_drop_it() {
        let now = Instant::now();
        let mut n1 = three_nodes_two_groups("node1", now);
        n1.peer_resource("node2", Hold::Local, Some(true), None, now);
        n1.peer_resource("node3", Hold::None, Some(true), None, now);
        n1.acquired(&set(&[0]), now);
        // A takeover asked both holders to give; each withdrew its request when a peer died,
        // then took the other's offer, and answers it.
        assert_eq!(
            n1.peer_ask("node2", Hold::All, "me", now),
            [Output::Prestart(set(&[1]))]
        );
        n1.prestarted();
        let out = n1.peer_ask("node2", Hold::All, "other", now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=local rtype=full isstable=1"]
        );
        assert!(n1.is_settled());
        assert_eq!(n1.take_stale_prestarts(), set(&[1]));
    }

    #[test]
    fn a_group_nobody_holds_that_our_word_names_is_ours_to_take() {
        let now = Instant::now();
        let mut n3 = three_nodes_two_groups("node3", now);
        n3.held.insert(0);
        // node3 holds node1's group and says `all` (both are foreign to it): the others read
        // that it holds node2's group too, so nobody else will take that one.
        n3.peer_resource("node1", Hold::None, Some(true), None, now);
        let out = n3.peer_resource("node2", Hold::None, Some(true), None, now);
        assert_eq!(acquires(&out), Some(set(&[1])));
    }

    #[test]
    fn hold_words_are_relative_to_the_sender() {
        let rm = pair("node2", AutoFailback::On);
        assert_eq!(rm.groups_of("node1", Hold::Local), set(&[0]));
        assert_eq!(rm.groups_of("node2", Hold::Local), set(&[]));
        assert_eq!(rm.groups_of("node2", Hold::Foreign), set(&[0]));
        assert_eq!(Hold::parse("failback"), Some(Hold::Foreign));
        assert_eq!(Hold::parse("most"), None);
    }

    #[test]
    fn an_offer_is_left_to_the_taker_while_its_holdings_are_unknown() {
        let now = Instant::now();
        let groups = vec![Group {
            name: "10.0.0.100".into(),
            home: "node1".into(),
        }];
        // node3 hears node1 again (it restarted) but has not had its `resource` yet when node2
        // offers node1's group back: node1 may well take it, so node3 stays out.
        let mut n3 = ResourceManager::new(
            "node3",
            ["node1".to_string(), "node2".to_string()],
            groups.clone(),
            AutoFailback::On,
        );
        n3.peer_alive("node1");
        n3.peer_alive("node2");
        n3.comm_up(now);
        n3.peer_resource("node2", Hold::All, Some(true), None, now);
        assert!(n3.peer_ask("node2", Hold::Foreign, "me", now).is_empty());
        // Once node1 has said it holds nothing, node1 (the home) is the taker, still not node3.
        n3.peer_resource("node1", Hold::None, Some(true), None, now);
        assert!(n3.peer_ask("node2", Hold::Foreign, "me", now).is_empty());
        // With node1 gone, node3 is the first ready node besides the giver.
        n3.peer_gone("node1", false, now);
        let out = n3.peer_ask("node2", Hold::Foreign, "me", now);
        assert_eq!(out, [Output::Prestart(set(&[0]))]);
    }

    /// node2 holds node1's group and offers it back; node1 prestarts and may answer.
    fn failback_offered(now: Instant) -> (ResourceManager, ResourceManager) {
        let mut n2 = node2_holding_node1s_group(AutoFailback::On, now);
        let out = n2.peer_resource("node1", Hold::None, Some(true), None, now);
        assert_eq!(sent(&out), ["t=ask_resources rsc_hold=foreign info=me"]);
        let mut n1 = pair("node1", AutoFailback::On);
        n1.peer_alive("node2");
        n1.comm_up(now);
        n1.peer_resource("node2", Hold::All, Some(true), None, now);
        assert_eq!(
            n1.peer_ask("node2", Hold::Foreign, "me", now),
            [Output::Prestart(set(&[0]))]
        );
        (n1, n2)
    }

    #[test]
    fn a_failback_offer_that_lapsed_is_made_again() {
        let now = Instant::now();
        let (_, mut n2) = failback_offered(now);
        // node1 let it lapse (busy, or unsure yet that it is the taker): offered again.
        assert_eq!(
            sent(&n2.tick(now + STANDBY_REPLY_TIMEOUT)),
            ["t=ask_resources rsc_hold=foreign info=me"]
        );
        let out = n2.peer_ask("node1", Hold::Foreign, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));
    }

    #[test]
    fn a_taker_stops_what_it_prestarted_when_the_giver_gave_up() {
        let now = Instant::now();
        let (mut n1, mut n2) = failback_offered(now);
        // The giver's request lapses before node1's `other` arrives (with failback off, it
        // is not made again).
        n2.failback = AutoFailback::Off;
        n2.tick(now + STANDBY_REPLY_TIMEOUT);
        let other = n1.prestarted();
        assert_eq!(
            sent(&other),
            ["t=ask_resources rsc_hold=foreign info=other"]
        );
        assert!(n1.take_stale_prestarts().is_empty(), "still taking");
        // The giver answers an `other` it no longer expects with what it holds…
        let out = n2.peer_ask("node1", Hold::Foreign, "other", now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=all rtype=full isstable=1"]
        );
        assert_eq!(releases(&out), None);
        // …and the taker, seeing it stable and still holding the group, gives up at once.
        let out = n1.peer_resource("node2", Hold::All, Some(true), None, now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=none rtype=full isstable=1"]
        );
        assert_eq!(n1.take_stale_prestarts(), set(&[0]));
        assert!(n1.is_settled());

        // A giver whose stop failed says so the same way (`isstable=1 info=standby`).
        let (mut n1, mut n2) = failback_offered(now);
        n1.prestarted();
        let out = n2.peer_ask("node1", Hold::Foreign, "other", now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=local rtype=full isstable=0 info=standby"]
        );
        n1.peer_resource("node2", Hold::Local, Some(false), Some("standby"), now);
        assert!(n1.take_stale_prestarts().is_empty(), "the giver is giving");
        let out = n2.released(&GroupSet::new(), now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=all rtype=full isstable=1 info=standby"]
        );
        n1.peer_resource("node2", Hold::All, Some(true), Some("standby"), now);
        assert_eq!(n1.take_stale_prestarts(), set(&[0]));
    }

    #[test]
    fn an_offer_the_giver_never_acts_on_lapses() {
        let now = Instant::now();
        let (mut n1, _) = failback_offered(now);
        n1.prestarted();
        assert_eq!(n1.next_deadline(), Some(now + TAKING_TIMEOUT));
        assert!(
            n1.tick(now + TAKING_TIMEOUT - Duration::from_millis(1))
                .is_empty()
        );
        assert!(n1.take_stale_prestarts().is_empty());
        let out = n1.tick(now + TAKING_TIMEOUT);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=none rtype=full isstable=1"]
        );
        assert_eq!(n1.take_stale_prestarts(), set(&[0]));
        assert_eq!(n1.next_deadline(), None);

        // Once the giver shows it is giving, its stop may take as long as it takes.
        let (mut n1, _) = failback_offered(now);
        n1.prestarted();
        n1.peer_resource("node2", Hold::Local, Some(false), Some("standby"), now);
        assert_eq!(n1.next_deadline(), None);
        assert!(n1.tick(now + TAKING_TIMEOUT * 10).is_empty());
        assert!(n1.take_stale_prestarts().is_empty());
        let out = n1.peer_ask("node2", Hold::Foreign, "done", now);
        assert_eq!(acquires(&out), Some(set(&[0])));
    }

    #[test]
    fn a_giver_that_restarted_or_died_ends_the_offer() {
        let now = Instant::now();
        // A new incarnation of the giver (heard again without a death in between) knows
        // nothing of its predecessor's offer.
        let (mut n1, _) = failback_offered(now);
        n1.prestarted();
        n1.peer_alive("node2");
        assert_eq!(n1.take_stale_prestarts(), set(&[0]));
        assert!(
            n1.next_deadline()
                .is_none_or(|at| at > now + TAKING_TIMEOUT)
        );
        // A giver that dies leaves the group unheld: the taker takes it, what it prestarted
        // included, and holds it once started.
        let (mut n1, _) = failback_offered(now);
        n1.prestarted();
        let out = n1.peer_gone("node2", false, now);
        assert_eq!(acquires(&out), Some(set(&[0])));
        assert!(n1.take_stale_prestarts().is_empty(), "being acquired");
        n1.acquired(&set(&[0]), now);
        assert!(n1.take_stale_prestarts().is_empty());
        assert_eq!(n1.held(), &set(&[0]));
    }

    #[test]
    fn a_giver_whose_taker_died_while_it_stopped_takes_the_group_back() {
        let now = Instant::now();
        let (mut n1, mut n2) = failback_offered(now);
        let other = n1.prestarted();
        assert!(!sent(&other).is_empty());
        let out = n2.peer_ask("node1", Hold::Foreign, "other", now);
        assert_eq!(releases(&out), Some(set(&[0])));
        // The taker dies while the giver stops the group: nobody will send `done`.
        n2.peer_gone("node1", false, now);
        let out = n2.released(&set(&[0]), now);
        assert_eq!(acquires(&out), Some(set(&[0])), "{out:?}");
        assert_eq!(n2.standby, Standby::Not);
        n2.acquired(&set(&[0]), now);
        assert!(n2.is_settled());
    }

    #[test]
    fn a_giver_is_not_kept_waiting_by_a_taker_that_already_holds() {
        let now = Instant::now();
        let (mut n1, mut n2) = failback_offered(now);
        n1.prestarted();
        n2.peer_ask("node1", Hold::Foreign, "other", now);
        n2.released(&set(&[0]), now);
        assert!(matches!(n2.standby, Standby::Given { .. }));
        // An old stable `resource` made the taker drop out; it took the group as unheld and
        // says so, but will never send `done`.
        let out = n2.peer_resource("node1", Hold::Local, Some(true), None, now);
        assert_eq!(
            sent(&out),
            ["t=resource rsc_hold=local rtype=full isstable=1"]
        );
        assert!(n2.is_settled());
        // Another node's `done` does not end an exchange with node1 either.
        let (mut n1, mut n2) = failback_offered(now);
        n1.prestarted();
        n2.peer_ask("node1", Hold::Foreign, "other", now);
        n2.released(&set(&[0]), now);
        assert!(n2.peer_ask("node3", Hold::Foreign, "done", now).is_empty());
        assert!(matches!(n2.standby, Standby::Given { .. }));
    }

    /// Three resource managers and the traffic between them, as three daemons would carry
    /// it: every `Output::Send` goes to the other two, by its `t`; an acquire, release or
    /// prestart finishes later and is reported back; after every step the daemon's
    /// `take_stale_prestarts` stops what it reports. `running` is what each node really runs
    /// (VIP and listeners alike). Deliveries keep their order per sender and receiver; which
    /// of the possible next events happens is `pick`'s choice. While a node is isolated its
    /// traffic is held back, and after the heal it arrives as retransmissions do: once the
    /// receiver has heard the sender again, mixed with new traffic.
    struct Three {
        rms: Vec<ResourceManager>,
        isolated: Option<usize>,
        queue: Vec<Event>,
        held_back: Vec<Missed>,
        running: Vec<GroupSet>,
        alive: [[bool; 3]; 3],
        log: Vec<String>,
        /// xorshift state; 0: always the oldest possible event.
        rng: u64,
        /// Whether time may jump up to 4 s between events (ticks mid-flow).
        jumps: bool,
        now: Instant,
    }

    /// A message held back from `to` while `from` was cut off: (from, to, fields).
    type Missed = (usize, usize, Vec<(String, String)>);

    #[derive(Clone, Debug)]
    enum Event {
        Deliver {
            from: usize,
            to: usize,
            fields: Vec<(String, String)>,
            rexmit: bool,
        },
        Acquired(usize, GroupSet),
        Released(usize, GroupSet),
        Prestarted(usize),
        Gone(usize, usize),
        Alive(usize, usize),
    }

    impl Event {
        /// Events of one channel happen in order.
        fn channel(&self) -> (u8, usize, usize) {
            match self {
                Event::Deliver {
                    from, to, rexmit, ..
                } => (u8::from(*rexmit), *from, *to),
                Event::Acquired(n, _) | Event::Released(n, _) | Event::Prestarted(n) => (2, *n, *n),
                Event::Gone(a, b) | Event::Alive(a, b) => (3, *a, *b),
            }
        }
    }

    const NAMES: [&str; 3] = ["node1", "node2", "node3"];

    fn manager(me: &str) -> ResourceManager {
        ResourceManager::new(
            me,
            NAMES.iter().filter(|n| **n != me).map(|n| n.to_string()),
            vec![Group {
                name: "IPaddr::10.0.0.100".into(),
                home: "node1".into(),
            }],
            AutoFailback::On,
        )
    }

    impl Three {
        /// All three up together; node1 ends up holding its group.
        fn up(seed: u64, jumps: bool, now: Instant) -> Self {
            let mut c = Three {
                rms: NAMES.iter().map(|n| manager(n)).collect(),
                isolated: None,
                queue: Vec::new(),
                held_back: Vec::new(),
                running: vec![GroupSet::new(); 3],
                alive: [[false; 3]; 3],
                log: Vec::new(),
                rng: if seed == 0 {
                    0
                } else {
                    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
                },
                jumps,
                now,
            };
            for a in 0..3 {
                for b in (0..3).filter(|b| *b != a) {
                    c.alive[a][b] = true;
                    let out = c.rms[a].peer_alive(NAMES[b]);
                    c.apply(a, out);
                }
            }
            for n in 0..3 {
                let out = c.rms[n].comm_up(c.now);
                c.apply(n, out);
            }
            c.settle();
            assert_eq!(c.check(), Ok(()), "{}", c.log.join("\n"));
            assert_eq!(c.rms[0].held(), &set(&[0]));
            c
        }

        fn rand(&mut self, n: usize) -> usize {
            if self.rng == 0 {
                return 0;
            }
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            (self.rng % n as u64) as usize
        }

        fn connected(&self, a: usize, b: usize) -> bool {
            self.isolated.is_none_or(|i| a != i && b != i)
        }

        /// What the daemon does with a manager's outputs.
        fn apply(&mut self, node: usize, out: Vec<Output>) {
            for o in out {
                self.log.push(format!("{} -> {o:?}", NAMES[node]));
                match o {
                    Output::Send(fields) => {
                        for to in (0..3).filter(|to| *to != node) {
                            if self.connected(node, to) {
                                self.queue.push(Event::Deliver {
                                    from: node,
                                    to,
                                    fields: fields.clone(),
                                    rexmit: false,
                                });
                            } else {
                                self.held_back.push((node, to, fields.clone()));
                            }
                        }
                    }
                    Output::Acquire(g, _) => self.queue.push(Event::Acquired(node, g)),
                    Output::Release(g, _) => self.queue.push(Event::Released(node, g)),
                    Output::Prestart(g) => {
                        self.running[node].extend(g);
                        self.queue.push(Event::Prestarted(node));
                    }
                    Output::Reannounce(_) | Output::ShutdownComplete => {}
                }
            }
            let stale = self.rms[node].take_stale_prestarts();
            if !stale.is_empty() {
                self.log
                    .push(format!("{} stops stale {stale:?}", NAMES[node]));
                self.running[node].retain(|g| !stale.contains(g));
            }
        }

        fn hear_again(&mut self, observer: usize, peer: usize) {
            self.alive[observer][peer] = true;
            self.log
                .push(format!("{} hears {} again", NAMES[observer], NAMES[peer]));
            let out = self.rms[observer].peer_alive(NAMES[peer]);
            self.apply(observer, out);
            let (missed, rest) = std::mem::take(&mut self.held_back)
                .into_iter()
                .partition(|(from, to, _)| *from == peer && *to == observer);
            self.held_back = rest;
            for (from, to, fields) in missed {
                self.queue.push(Event::Deliver {
                    from,
                    to,
                    fields,
                    rexmit: true,
                });
            }
        }

        fn deliver(&mut self, from: usize, to: usize, fields: Vec<(String, String)>) {
            if !self.alive[to][from] {
                // Membership hears it before the resource manager does.
                self.hear_again(to, from);
            }
            let now = self.now;
            let get = |key: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let hold = get("rsc_hold").and_then(|h| Hold::parse(&h));
            let rm = &mut self.rms[to];
            let src = NAMES[from];
            let out = match (get("t").as_deref(), hold) {
                (Some("starting"), _) => rm.peer_starting(src),
                (Some("resource"), Some(hold)) => {
                    let isstable = get("isstable").map(|v| v == "1");
                    rm.peer_resource(src, hold, isstable, get("info").as_deref(), now)
                }
                (Some("ask_resources"), Some(hold)) => {
                    rm.peer_ask(src, hold, &get("info").unwrap_or_default(), now)
                }
                (Some("hb_takeover"), Some(hold)) => rm.peer_takeover(src, hold, now),
                _ => Vec::new(),
            };
            self.log.push(format!("{} got {fields:?}", NAMES[to]));
            self.apply(to, out);
        }

        /// One event; false when nothing is left to happen.
        fn step(&mut self) -> bool {
            if self.queue.is_empty() {
                return false;
            }
            if self.jumps && self.rand(15) == 0 {
                let ms = self.rand(4000) as u64;
                self.now += Duration::from_millis(ms);
                let n = self.rand(3);
                let out = self.rms[n].tick(self.now);
                self.apply(n, out);
                return true;
            }
            let mut channels = BTreeSet::new();
            let possible: Vec<usize> = (0..self.queue.len())
                .filter(|&i| channels.insert(self.queue[i].channel()))
                .collect();
            let pick = possible[self.rand(possible.len())];
            let event = self.queue.remove(pick);
            self.now += Duration::from_millis(5);
            let now = self.now;
            match event {
                Event::Deliver {
                    from,
                    to,
                    fields,
                    rexmit,
                } => {
                    if self.connected(from, to) {
                        self.deliver(from, to, fields);
                    } else if !rexmit {
                        self.held_back.push((from, to, fields));
                    }
                }
                Event::Acquired(n, g) => {
                    self.running[n].extend(g.iter().copied());
                    let out = self.rms[n].acquired(&g, now);
                    self.apply(n, out);
                }
                Event::Released(n, g) => {
                    self.running[n].retain(|x| !g.contains(x));
                    let out = self.rms[n].released(&g, now);
                    self.apply(n, out);
                }
                Event::Prestarted(n) => {
                    let out = self.rms[n].prestarted();
                    self.apply(n, out);
                }
                Event::Gone(observer, peer) => {
                    if self.alive[observer][peer] {
                        self.alive[observer][peer] = false;
                        self.log
                            .push(format!("{} declares {} dead", NAMES[observer], NAMES[peer]));
                        let out = self.rms[observer].peer_gone(NAMES[peer], false, now);
                        self.apply(observer, out);
                    }
                }
                Event::Alive(observer, peer) => {
                    if !self.alive[observer][peer] && self.connected(observer, peer) {
                        self.hear_again(observer, peer);
                    }
                }
            }
            true
        }

        fn steps(&mut self, count: usize) {
            for _ in 0..count {
                if !self.step() {
                    return;
                }
            }
        }

        /// Until nothing moves any more, with time passing for every deadline.
        fn settle(&mut self) {
            for _ in 0..20 {
                while self.step() {}
                let Some(next) = self.rms.iter().filter_map(|r| r.next_deadline()).max() else {
                    return;
                };
                self.now = self.now.max(next);
                for n in 0..3 {
                    let out = self.rms[n].tick(self.now);
                    self.apply(n, out);
                }
            }
            panic!("never settled:\n{}", self.log.join("\n"));
        }

        /// `node`'s heartbeat traffic is dropped: it and the others declare each other dead,
        /// in an order of `pick`'s choosing.
        fn isolate(&mut self, node: usize) {
            self.isolated = Some(node);
            for other in (0..3).filter(|o| *o != node) {
                self.queue.push(Event::Gone(node, other));
                self.queue.push(Event::Gone(other, node));
            }
        }

        fn heal(&mut self) {
            let node = self.isolated.take().unwrap();
            for other in (0..3).filter(|o| *o != node) {
                self.queue.push(Event::Alive(node, other));
                self.queue.push(Event::Alive(other, node));
            }
        }

        /// node1's agent is killed (the others declare it dead and one takes over) and starts
        /// again as a new incarnation that knows nothing.
        fn kill_and_restart_node1(&mut self) {
            self.isolate(0);
            self.settle();
            self.isolated = None;
            self.held_back.clear();
            self.rms[0] = manager("node1");
            self.running[0].clear();
            for (other, name) in NAMES.iter().enumerate().skip(1) {
                self.alive[0][other] = true;
                let out = self.rms[0].peer_alive(name);
                self.apply(0, out);
                self.queue.push(Event::Alive(other, 0));
            }
            let out = self.rms[0].comm_up(self.now);
            self.apply(0, out);
        }

        /// Nothing runs off its holder, nobody is stuck in an exchange, one node holds.
        fn check(&self) -> Result<(), String> {
            for ((name, rm), running) in NAMES.iter().zip(&self.rms).zip(&self.running) {
                if *running != rm.held {
                    return Err(format!(
                        "{name} runs {running:?} but holds {:?} ({:?}, prestarted {:?})",
                        rm.held, rm.standby, rm.prestarted
                    ));
                }
                if !rm.is_settled() {
                    return Err(format!("{name} is stuck: {:?}, {:?}", rm.standby, rm.busy));
                }
            }
            let holders: Vec<&str> = (0..3)
                .filter(|&n| self.rms[n].held.contains(&0))
                .map(|n| NAMES[n])
                .collect();
            if holders.len() != 1 {
                return Err(format!("held by {holders:?}"));
            }
            Ok(())
        }
    }

    #[test]
    fn three_nodes_isolate_and_heal_in_order() {
        let mut c = Three::up(0, false, Instant::now());
        c.isolate(0);
        c.settle();
        assert_eq!(c.rms[0].held(), &set(&[0]), "alone, node1 keeps it");
        assert_eq!(c.rms[1].held(), &set(&[0]), "node2 takes it, first by name");
        assert!(c.rms[2].held().is_empty());
        c.heal();
        c.settle();
        assert_eq!(c.check(), Ok(()), "{}", c.log.join("\n"));
        assert_eq!(c.rms[0].held(), &set(&[0]), "the home node keeps it");
    }

    /// The 3-node isolate drill, every order of events: node1 isolated while it holds, right
    /// after a restart and failback, or in the middle of that failback's hand-off (node1
    /// and node3 both hear node2's offer, and node3 may not know node1 yet), then healed,
    /// old traffic retransmitted. Afterwards nothing prestarted runs on a node that does not
    /// hold the group (it was reported by take_stale_prestarts), nobody waits for an
    /// exchange that is over, and one node holds the group.
    #[test]
    fn three_nodes_isolate_and_heal_leave_nothing_running_off_its_holder() {
        let mut failures = Vec::new();
        for seed in 1..=3000u64 {
            let variant = seed % 3;
            let mut c = Three::up(seed, seed % 2 == 0, Instant::now());
            if variant > 0 {
                c.kill_and_restart_node1();
                if variant == 1 {
                    c.settle();
                } else {
                    let k = c.rand(40);
                    c.steps(k);
                }
            }
            c.isolate(0);
            let k = c.rand(30);
            c.steps(k);
            c.settle();
            c.heal();
            c.settle();
            if let Err(e) = c.check() {
                failures.push(format!("seed {seed}: {e}\n{}", c.log.join("\n")));
            }
        }
        assert!(
            failures.is_empty(),
            "{} runs failed; the first:\n{}",
            failures.len(),
            failures[0]
        );
    }
}
