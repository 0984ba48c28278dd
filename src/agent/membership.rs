//! Who is in the cluster right now (docs/protocol.md §4): node states init/up/active/dead, per-link
//! up/dead, the late-heartbeat warning, and death judged by the deadtime each peer advertises —
//! not our own — as the real daemon does, with `initdead` until communication is up. A shutdown
//! notice makes a peer dead at once. Pure: the caller passes the time in, so every timing rule
//! is tested without sleeping.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A node's state as the cluster sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeStatus {
    /// Configured but never heard from.
    Unknown,
    /// Just started (first status after start).
    Init,
    /// Sending, communication not yet up.
    Up,
    /// Communication up.
    Active,
    /// Silent for longer than its deadtime, or announced its shutdown.
    Dead,
}

impl NodeStatus {
    /// The wire word (`st=`), also what `cl_status nodestatus` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Unknown => "unknown",
            NodeStatus::Init => "init",
            NodeStatus::Up => "up",
            NodeStatus::Active => "active",
            NodeStatus::Dead => "dead",
        }
    }

    /// Parses a `st=` value from a status message.
    pub fn from_wire(word: &str) -> Option<Self> {
        match word {
            "init" => Some(NodeStatus::Init),
            "up" => Some(NodeStatus::Up),
            "active" => Some(NodeStatus::Active),
            "dead" => Some(NodeStatus::Dead),
            _ => None,
        }
    }

    pub fn is_alive(self) -> bool {
        matches!(self, NodeStatus::Init | NodeStatus::Up | NodeStatus::Active)
    }
}

/// The ha.cf timers membership runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
}

/// Why a node changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// We heard from it.
    Heard,
    /// It was silent for longer than the window.
    Silent { window: Duration },
    /// It announced its shutdown (`t=shutdone`).
    Shutdown,
    /// It came back with a new generation: it restarted.
    Restarted,
}

/// What the caller should act on (log, tell the resource manager, answer status queries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Node {
        node: String,
        from: NodeStatus,
        to: NodeStatus,
        reason: Reason,
    },
    Link {
        node: String,
        link: String,
        up: bool,
    },
    /// A status arrived later than warntime after the previous one.
    LateHeartbeat { node: String, gap: Duration },
    /// Every configured node was heard from or declared dead: communication is up.
    CommUp,
}

/// Upper bounds of the heartbeat-interval histogram in ms (Prometheus `le` buckets); one more
/// count holds the intervals above the last.
pub const GAP_BUCKETS_MS: [u64; 10] = [50, 100, 200, 300, 500, 1000, 2000, 5000, 10_000, 30_000];

/// The intervals between a live peer's status messages, since this agent started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gaps {
    /// `counts[i]`: intervals in bucket `i` (above the previous bound, up to
    /// `GAP_BUCKETS_MS[i]`); the last: above every bound.
    pub counts: [u64; GAP_BUCKETS_MS.len() + 1],
    pub sum_ms: u64,
    pub longest_ms: u64,
    /// Intervals longer than warntime.
    pub late: u64,
}

impl Gaps {
    fn record(&mut self, gap: Duration, late: bool) {
        let ms = gap.as_millis() as u64;
        let bucket = GAP_BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(GAP_BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.longest_ms = self.longest_ms.max(ms);
        self.late += u64::from(late);
    }
}

#[derive(Clone, Debug)]
struct Link {
    last_heard: Instant,
    up: bool,
}

#[derive(Clone, Debug)]
struct Peer {
    status: NodeStatus,
    last_heard: Option<Instant>,
    last_status: Option<Instant>,
    advertised_deadtime: Option<Duration>,
    generation: Option<u64>,
    /// The generation that announced its shutdown: its trailing statuses must not revive it.
    shut_down_generation: Option<u64>,
    links: BTreeMap<String, Link>,
    gaps: Gaps,
}

/// The membership view of one node.
#[derive(Clone, Debug)]
pub struct Membership {
    timers: Timers,
    started: Instant,
    comm_up: bool,
    peers: BTreeMap<String, Peer>,
}

/// How long after start a node may advertise deadtime + 2 s, covering its own start-up jitter
/// (Heartbeat's hb_add_deadtime; observed `dt=1b58` for 5 s, then `dt=1388`). The agent stops
/// sooner, once communication is up: see [`Membership::advertised_deadtime`].
const STARTUP_GRACE: Duration = Duration::from_secs(5);
const STARTUP_EXTRA_DEADTIME: Duration = Duration::from_secs(2);

impl Membership {
    /// `peers`: every configured node except this one.
    pub fn new(peers: impl IntoIterator<Item = String>, timers: Timers, now: Instant) -> Self {
        let peers = peers
            .into_iter()
            .map(|name| {
                (
                    name,
                    Peer {
                        status: NodeStatus::Unknown,
                        last_heard: None,
                        last_status: None,
                        advertised_deadtime: None,
                        generation: None,
                        shut_down_generation: None,
                        links: BTreeMap::new(),
                        gaps: Gaps::default(),
                    },
                )
            })
            .collect();
        let mut m = Self {
            timers,
            started: now,
            comm_up: false,
            peers,
        };
        // A single-node configuration has nobody to wait for.
        m.comm_up = m.peers.is_empty();
        m
    }

    pub fn comm_up(&self) -> bool {
        self.comm_up
    }

    /// New timers from a reload. What we advertise (`dt`) follows from the next status on, and
    /// peers that never advertised a deadtime are judged by the new one at the next tick.
    pub fn set_timers(&mut self, timers: Timers) {
        self.timers = timers;
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    pub fn status(&self, node: &str) -> Option<NodeStatus> {
        self.peers.get(node).map(|p| p.status)
    }

    pub fn is_peer(&self, node: &str) -> bool {
        self.peers.contains_key(node)
    }

    pub fn peers(&self) -> impl Iterator<Item = (&str, NodeStatus)> {
        self.peers.iter().map(|(n, p)| (n.as_str(), p.status))
    }

    /// Every link of every peer with its state.
    /// Each peer's heartbeat intervals while it was alive.
    pub fn gaps(&self) -> impl Iterator<Item = (&str, &Gaps)> {
        self.peers.iter().map(|(n, p)| (n.as_str(), &p.gaps))
    }

    pub fn links(&self) -> impl Iterator<Item = (&str, &str, bool)> {
        self.peers.iter().flat_map(|(n, p)| {
            p.links
                .iter()
                .map(move |(l, s)| (n.as_str(), l.as_str(), s.up))
        })
    }

    /// The deadtime we advertise in our own status messages (`dt`), which is the window our
    /// peers give us (§4.2).
    ///
    /// While starting — communication not up yet, and for at most the first 5 s — it is
    /// deadtime + 2 s, as 3.0.6 sends, so that a peer does not declare us dead during our own
    /// start-up. 3.0.6 keeps the extra 2 s for the whole 5 s **[differs]**: a node that
    /// rejoined a running cluster is up within a keepalive or two, and with the extra 2 s a
    /// failure in its first seconds back (a failback just done, the node holding again) was
    /// noticed 2 s late — `dt` is a number each status replaces, so the shorter value is
    /// understood by every peer. Nothing after comm-up can stall the status loop: resource
    /// work runs beside it.
    pub fn advertised_deadtime(&self, now: Instant) -> Duration {
        if !self.comm_up && now.saturating_duration_since(self.started) < STARTUP_GRACE {
            self.timers.deadtime + STARTUP_EXTRA_DEADTIME
        } else {
            self.timers.deadtime
        }
    }

    /// An authenticated datagram from `node` arrived on `link` but delivered nothing new
    /// (a duplicate, a retransmission we no longer needed, an unsequenced `NS_*` message):
    /// it proves the link, never the node. A replayed datagram is exactly that, and if it
    /// refreshed the node one captured heartbeat sent once a second would keep a crashed node
    /// alive and its groups untaken.
    pub fn heard_link(&mut self, node: &str, link: &str, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        let Some(peer) = self.peers.get_mut(node) else {
            return changes;
        };
        let link_state = peer.links.entry(link.to_string()).or_insert(Link {
            last_heard: now,
            up: false,
        });
        link_state.last_heard = now;
        if !link_state.up {
            link_state.up = true;
            changes.push(Change::Link {
                node: node.to_string(),
                link: link.to_string(),
                up: true,
            });
        }
        changes
    }

    /// A datagram from `node` arrived on `link` and was delivered by sequence tracking (new,
    /// a gap filled, or the first of a new generation). `status` is the `st=`/`dt=` of a
    /// status message, `None` for any other message type.
    pub fn heard(
        &mut self,
        node: &str,
        link: &str,
        generation: u64,
        status: Option<(NodeStatus, Option<Duration>)>,
        now: Instant,
    ) -> Vec<Change> {
        let warntime = self.timers.warntime;
        let mut changes = Vec::new();
        let Some(peer) = self.peers.get_mut(node) else {
            return changes;
        };
        if peer.shut_down_generation == Some(generation) {
            // The trailing statuses a stopping daemon still sends must not bring it back.
            return changes;
        }
        if peer.generation.is_some_and(|g| generation < g) {
            // Sequence tracking drops older generations; a known generation is never lowered.
            return changes;
        }
        let restarted = peer.generation.is_some_and(|g| generation > g);
        if restarted {
            // The new incarnation's window is what it advertises, not its predecessor's.
            peer.advertised_deadtime = None;
        }
        peer.generation = Some(generation);
        peer.last_heard = Some(now);
        changes.extend(self.heard_link(node, link, now));
        let Some(peer) = self.peers.get_mut(node) else {
            return changes;
        };
        let new_status = match status {
            Some((st, dt)) => {
                if let Some(previous) = peer.last_status
                    && peer.status.is_alive()
                {
                    let gap = now.saturating_duration_since(previous);
                    peer.gaps.record(gap, gap > warntime);
                    if gap > warntime {
                        changes.push(Change::LateHeartbeat {
                            node: node.to_string(),
                            gap,
                        });
                    }
                }
                peer.last_status = Some(now);
                if let Some(dt) = dt {
                    peer.advertised_deadtime = Some(dt);
                }
                // `dead` never arrives in a status; treat it as "up" if a broken peer sends it.
                if st == NodeStatus::Dead {
                    NodeStatus::Up
                } else {
                    st
                }
            }
            // Any message proves the node alive; a node we thought dead is at least up again.
            None if !peer.status.is_alive() => NodeStatus::Up,
            None => peer.status,
        };
        if new_status != peer.status {
            let reason = if restarted {
                Reason::Restarted
            } else {
                Reason::Heard
            };
            changes.push(Change::Node {
                node: node.to_string(),
                from: peer.status,
                to: new_status,
                reason,
            });
            peer.status = new_status;
        }
        self.check_comm_up(&mut changes);
        changes
    }

    /// The node announced it is shutting down: dead now, no deadtime wait.
    pub fn shutdown_notice(&mut self, node: &str, generation: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(peer) = self.peers.get_mut(node) {
            peer.shut_down_generation = Some(generation);
            if peer.status != NodeStatus::Dead {
                changes.push(Change::Node {
                    node: node.to_string(),
                    from: peer.status,
                    to: NodeStatus::Dead,
                    reason: Reason::Shutdown,
                });
                peer.status = NodeStatus::Dead;
            }
            for (link, state) in &mut peer.links {
                if state.up {
                    state.up = false;
                    changes.push(Change::Link {
                        node: node.to_string(),
                        link: link.clone(),
                        up: false,
                    });
                }
            }
        }
        self.check_comm_up(&mut changes);
        changes
    }

    /// The silence allowed for a peer before it is dead.
    fn window(&self, peer: &Peer) -> Duration {
        if !self.comm_up {
            return self.timers.initdead;
        }
        peer.advertised_deadtime.unwrap_or(self.timers.deadtime)
    }

    /// Declares silent nodes and links dead. Call at least every keepalive.
    pub fn tick(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        let started = self.started;
        let windows: Vec<Duration> = self.peers.values().map(|p| self.window(p)).collect();
        for ((name, peer), window) in self.peers.iter_mut().zip(windows) {
            let since = peer.last_heard.unwrap_or(started);
            for (link, state) in &mut peer.links {
                if state.up && now.saturating_duration_since(state.last_heard) > window {
                    state.up = false;
                    changes.push(Change::Link {
                        node: name.clone(),
                        link: link.clone(),
                        up: false,
                    });
                }
            }
            if peer.status != NodeStatus::Dead && now.saturating_duration_since(since) > window {
                changes.push(Change::Node {
                    node: name.clone(),
                    from: peer.status,
                    to: NodeStatus::Dead,
                    reason: Reason::Silent { window },
                });
                peer.status = NodeStatus::Dead;
            }
        }
        self.check_comm_up(&mut changes);
        changes
    }

    /// The earliest instant at which `tick` could change something, for the runtime's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        // Silent for *more* than the window: the first instant `tick` acts on. A link is
        // judged by its own last datagram, which may be newer than the node's last delivered
        // one (a duplicate proves only the link).
        let after = |last: Instant, p: &Peer| last + self.window(p) + Duration::from_millis(1);
        self.peers
            .values()
            .flat_map(|p| {
                let node = (p.status != NodeStatus::Dead)
                    .then(|| after(p.last_heard.unwrap_or(self.started), p));
                let links = p
                    .links
                    .values()
                    .filter(|l| l.up)
                    .map(move |l| after(l.last_heard, p));
                node.into_iter().chain(links)
            })
            .min()
    }

    fn check_comm_up(&mut self, changes: &mut Vec<Change>) {
        if !self.comm_up && self.peers.values().all(|p| p.status != NodeStatus::Unknown) {
            self.comm_up = true;
            changes.push(Change::CommUp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timers() -> Timers {
        Timers {
            keepalive: 1000 * MS,
            warntime: 3000 * MS,
            deadtime: 5000 * MS,
            initdead: 10_000 * MS,
        }
    }

    fn node_change(changes: &[Change]) -> Option<(NodeStatus, NodeStatus, Reason)> {
        changes.iter().find_map(|c| match c {
            Change::Node {
                from, to, reason, ..
            } => Some((*from, *to, *reason)),
            _ => None,
        })
    }

    #[test]
    fn peer_comes_up_and_comm_goes_up() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        assert!(!m.comm_up());
        let c = m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Init, Some(7000 * MS))),
            t0 + 100 * MS,
        );
        assert_eq!(
            node_change(&c),
            Some((NodeStatus::Unknown, NodeStatus::Init, Reason::Heard))
        );
        assert!(c.contains(&Change::Link {
            node: "nodeb".into(),
            link: "eth1".into(),
            up: true
        }));
        assert!(c.contains(&Change::CommUp));
        let c = m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(5000 * MS))),
            t0 + 1100 * MS,
        );
        assert_eq!(
            node_change(&c),
            Some((NodeStatus::Init, NodeStatus::Active, Reason::Heard))
        );
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Active));
    }

    #[test]
    fn initdead_applies_until_comm_is_up() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        assert!(
            node_change(&m.tick(t0 + 9_999 * MS)).is_none(),
            "deadtime alone must not kill a booting peer"
        );
        let c = m.tick(t0 + 10_001 * MS);
        assert_eq!(
            node_change(&c),
            Some((
                NodeStatus::Unknown,
                NodeStatus::Dead,
                Reason::Silent {
                    window: 10_000 * MS
                }
            ))
        );
        assert!(c.contains(&Change::CommUp));
    }

    #[test]
    fn death_uses_the_deadtime_the_peer_advertises() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        // The peer advertises 2 s although our own deadtime is 5 s.
        m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(2000 * MS))),
            t0,
        );
        assert_eq!(m.next_deadline(), Some(t0 + 2001 * MS));
        assert!(node_change(&m.tick(t0 + 2000 * MS)).is_none());
        let c = m.tick(t0 + 2001 * MS);
        assert_eq!(
            node_change(&c),
            Some((
                NodeStatus::Active,
                NodeStatus::Dead,
                Reason::Silent { window: 2000 * MS }
            ))
        );
        assert!(c.contains(&Change::Link {
            node: "nodeb".into(),
            link: "eth1".into(),
            up: false
        }));
        // It returns after a partition (same generation): up again.
        let c = m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(2000 * MS))),
            t0 + 9000 * MS,
        );
        assert_eq!(
            node_change(&c),
            Some((NodeStatus::Dead, NodeStatus::Active, Reason::Heard))
        );
    }

    #[test]
    fn late_heartbeat_warns_before_death() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(5000 * MS))),
            t0,
        );
        let c = m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(5000 * MS))),
            t0 + 3500 * MS,
        );
        assert!(c.contains(&Change::LateHeartbeat {
            node: "nodeb".into(),
            gap: 3500 * MS
        }));
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Active));
        // One interval, late, in the 5 s bucket; the first status measured nothing.
        let (_, gaps) = m.gaps().next().unwrap();
        assert_eq!(gaps.longest_ms, 3500);
        assert_eq!(gaps.late, 1);
        assert_eq!(gaps.sum_ms, 3500);
        assert_eq!(gaps.counts.iter().sum::<u64>(), 1);
        assert_eq!(
            gaps.counts[GAP_BUCKETS_MS.iter().position(|&b| b == 5000).unwrap()],
            1
        );
    }

    #[test]
    fn intervals_fall_in_their_bucket_and_above_the_last() {
        let mut g = Gaps::default();
        g.record(50 * MS, false);
        g.record(51 * MS, false);
        g.record(60_000 * MS, true);
        assert_eq!(g.counts[0], 1, "50 ms is at most 50");
        assert_eq!(g.counts[1], 1);
        assert_eq!(g.counts[GAP_BUCKETS_MS.len()], 1);
        assert_eq!((g.longest_ms, g.late, g.sum_ms), (60_000, 1, 60_101));
    }

    #[test]
    fn shutdown_notice_is_immediate_and_sticky_for_that_generation() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        m.heard(
            "nodeb",
            "eth1",
            7,
            Some((NodeStatus::Active, Some(5000 * MS))),
            t0,
        );
        let c = m.shutdown_notice("nodeb", 7);
        assert_eq!(
            node_change(&c),
            Some((NodeStatus::Active, NodeStatus::Dead, Reason::Shutdown))
        );
        // Trailing statuses (`st=active` for 1-2 s after shutdone) do not revive it.
        assert!(
            m.heard(
                "nodeb",
                "eth1",
                7,
                Some((NodeStatus::Active, None)),
                t0 + 500 * MS
            )
            .is_empty()
        );
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Dead));
        // The restarted daemon (new generation) does.
        let c = m.heard(
            "nodeb",
            "eth1",
            8,
            Some((NodeStatus::Init, None)),
            t0 + 4000 * MS,
        );
        assert_eq!(
            node_change(&c),
            Some((NodeStatus::Dead, NodeStatus::Init, Reason::Restarted))
        );
    }

    #[test]
    fn per_link_state_with_two_media() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(5000 * MS))),
            t0,
        );
        m.heard("nodeb", "eth2", 1, None, t0);
        // Only eth1 keeps delivering.
        for i in 1..=6 {
            m.heard(
                "nodeb",
                "eth1",
                1,
                Some((NodeStatus::Active, Some(5000 * MS))),
                t0 + i * 1000 * MS,
            );
        }
        let c = m.tick(t0 + 6000 * MS);
        assert_eq!(
            c,
            vec![Change::Link {
                node: "nodeb".into(),
                link: "eth2".into(),
                up: false
            }]
        );
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Active));
        let links: Vec<_> = m.links().collect();
        assert_eq!(links, [("nodeb", "eth1", true), ("nodeb", "eth2", false)]);
    }

    #[test]
    fn unknown_nodes_change_nothing() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        assert!(
            m.heard("mallory", "eth1", 1, Some((NodeStatus::Active, None)), t0)
                .is_empty()
        );
        assert!(m.shutdown_notice("mallory", 1).is_empty());
        assert_eq!(m.peers().count(), 1);
    }

    #[test]
    fn advertised_deadtime_has_a_startup_grace() {
        let t0 = Instant::now();
        let m = Membership::new(["nodeb".to_string()], timers(), t0);
        assert_eq!(m.advertised_deadtime(t0), 7000 * MS);
        assert_eq!(m.advertised_deadtime(t0 + 5001 * MS), 5000 * MS);
    }

    /// The lab's timers: keepalive 100 ms, deadtime 300 ms.
    fn lab_timers(initdead: Duration) -> Timers {
        Timers {
            keepalive: 100 * MS,
            warntime: 200 * MS,
            deadtime: 300 * MS,
            initdead,
        }
    }

    /// The status a node sends now, as the daemon builds it.
    fn status_of(m: &Membership, now: Instant) -> Option<(NodeStatus, Option<Duration>)> {
        let st = if m.comm_up() {
            NodeStatus::Active
        } else {
            NodeStatus::Up
        };
        Some((st, Some(m.advertised_deadtime(now))))
    }

    fn went_dead(changes: &[Change], who: &str) -> bool {
        changes
            .iter()
            .any(|c| matches!(c, Change::Node { node, to: NodeStatus::Dead, .. } if node == who))
    }

    /// node2 has run for a while; node1 restarts (new generation), rejoins, goes active and is
    /// killed `kill_after` later. Both send a status every keepalive, node2 50 ms out of step;
    /// every 10 ms both tick. Returns how long after the kill node2 declared node1 dead, and
    /// the `dt` node1 advertised when it was killed.
    fn death_after_rejoin(initdead: Duration, kill_after: Duration) -> (Duration, Duration) {
        let timers = lab_timers(initdead);
        let t0 = Instant::now();
        let mut n2 = Membership::new(["node1".to_string()], timers, t0);
        // node1's previous incarnation, heard and then declared dead (another drill's kill).
        n2.heard(
            "node1",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(300 * MS))),
            t0,
        );
        assert!(went_dead(&n2.tick(t0 + 301 * MS), "node1"));
        // The restart, a few seconds later.
        let restart = t0 + 5000 * MS;
        let mut n1 = Membership::new(["node2".to_string()], timers, restart);
        // The start sequence: init, then up twice at once.
        n2.heard(
            "node1",
            "eth1",
            2,
            Some((NodeStatus::Init, Some(n1.advertised_deadtime(restart)))),
            restart,
        );
        for _ in 0..2 {
            n2.heard("node1", "eth1", 2, status_of(&n1, restart), restart);
        }
        let kill = restart + kill_after;
        let step = 10 * MS;
        let mut now = restart;
        let mut advertised_at_kill = Duration::ZERO;
        loop {
            now += step;
            let since = now.saturating_duration_since(restart).as_millis();
            if now <= kill && since.is_multiple_of(100) {
                n2.heard("node1", "eth1", 2, status_of(&n1, now), now);
            }
            if now == kill {
                advertised_at_kill = n1.advertised_deadtime(now);
            }
            if since % 100 == 50 {
                let status = status_of(&n2, now);
                n1.heard("node2", "eth1", 1, status, now);
            }
            n1.tick(now);
            if went_dead(&n2.tick(now), "node1") {
                assert!(now > kill, "declared dead while it was still sending");
                return (now - kill, advertised_at_kill);
            }
            assert!(now < kill + 30 * 1000 * MS, "never declared dead");
        }
    }

    #[test]
    fn a_node_that_fails_soon_after_rejoining_is_declared_dead_within_deadtime() {
        for initdead in [2000 * MS, 20_000 * MS] {
            for kill_after in [1000 * MS, 3000 * MS, 8000 * MS] {
                let (late, dt) = death_after_rejoin(initdead, kill_after);
                assert!(
                    late <= 300 * MS + 100 * MS,
                    "initdead {initdead:?}, killed {kill_after:?} after its restart: \
                     declared dead {late:?} after the kill (it advertised {dt:?})"
                );
                assert_eq!(dt, 300 * MS);
            }
        }
    }

    #[test]
    fn a_starting_node_still_gets_the_start_up_grace() {
        let timers = lab_timers(2000 * MS);
        let t0 = Instant::now();
        // Ours: deadtime + 2 s until communication is up, the plain deadtime once it is.
        let mut n1 = Membership::new(["node2".to_string()], timers, t0);
        assert_eq!(n1.advertised_deadtime(t0), 2300 * MS);
        assert_eq!(n1.advertised_deadtime(t0 + 4999 * MS), 2300 * MS);
        assert_eq!(n1.advertised_deadtime(t0 + 5000 * MS), 300 * MS);
        n1.heard(
            "node2",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(300 * MS))),
            t0 + 50 * MS,
        );
        assert!(n1.comm_up());
        assert_eq!(n1.advertised_deadtime(t0 + 100 * MS), 300 * MS);

        // A peer that is up already gives a starting node (its start sequence said 2300 ms)
        // the whole grace if it stalls before communication is up: not dead at 300 ms.
        let mut n2 = Membership::new(["node1".to_string()], timers, t0);
        n2.heard(
            "node1",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(300 * MS))),
            t0,
        );
        assert!(n2.comm_up());
        let restart = t0 + 1000 * MS;
        let fresh = Membership::new(["node2".to_string()], timers, restart);
        for st in [NodeStatus::Init, NodeStatus::Up, NodeStatus::Up] {
            let dt = fresh.advertised_deadtime(restart);
            let c = n2.heard("node1", "eth1", 2, Some((st, Some(dt))), restart);
            assert!(!went_dead(&c, "node1"));
        }
        assert_eq!(n2.next_deadline(), Some(restart + 2301 * MS));
        assert!(!went_dead(&n2.tick(restart + 2300 * MS), "node1"));
        let c = n2.tick(restart + 2301 * MS);
        assert_eq!(
            node_change(&c),
            Some((
                NodeStatus::Up,
                NodeStatus::Dead,
                Reason::Silent { window: 2300 * MS }
            ))
        );

        // A real 3.0.6 peer keeps its extra 2 s for its first 5 s even when active, and is
        // judged by it, as 3.0.6 judges it.
        let mut n2 = Membership::new(["node1".to_string()], timers, t0);
        n2.heard(
            "node1",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(2300 * MS))),
            t0,
        );
        assert!(!went_dead(&n2.tick(t0 + 2300 * MS), "node1"));
        assert!(went_dead(&n2.tick(t0 + 2301 * MS), "node1"));
    }

    #[test]
    fn a_restarted_peer_is_not_judged_by_its_predecessors_deadtime() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        m.heard(
            "nodeb",
            "eth1",
            1,
            Some((NodeStatus::Active, Some(9000 * MS))),
            t0,
        );
        // The new incarnation's first status carries no dt: our own deadtime applies.
        m.heard("nodeb", "eth1", 2, Some((NodeStatus::Init, None)), t0);
        assert_eq!(m.next_deadline(), Some(t0 + 5001 * MS));
    }

    /// A datagram of an older generation changes nothing, not even the link; one that proves
    /// only the link leaves a dead node dead.
    #[test]
    fn old_generations_and_link_proofs_revive_nobody() {
        let t0 = Instant::now();
        let mut m = Membership::new(["nodeb".to_string()], timers(), t0);
        m.heard("nodeb", "eth1", 5, Some((NodeStatus::Active, None)), t0);
        let dead_at = t0 + 6000 * MS;
        assert!(went_dead(&m.tick(dead_at), "nodeb"));
        assert!(m.heard("nodeb", "eth1", 4, None, dead_at).is_empty());
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Dead));
        let link = m.heard_link("nodeb", "eth1", dead_at);
        assert!(matches!(&link[..], [Change::Link { up: true, .. }]));
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Dead));
        // The link's own silence is the next thing to watch, not the dead node's.
        assert_eq!(m.next_deadline(), Some(dead_at + 5001 * MS));
        // Its own generation, delivered, is the node itself again.
        m.heard(
            "nodeb",
            "eth1",
            5,
            Some((NodeStatus::Active, None)),
            dead_at,
        );
        assert_eq!(m.status("nodeb"), Some(NodeStatus::Active));
    }
}
