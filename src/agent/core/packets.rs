//! The packet layer of the protocol core: a received datagram decoded, authenticated,
//! checked against the sender's sequence numbers and generation (docs/protocol.md §3), parsed
//! into its [`Kind`] and dispatched, and the retransmission requests and answers that fill
//! gaps. What a message means for membership and resources is decided by `membership` and
//! `resources`.

use std::time::Instant;

use super::message::{self, Kind};
use super::{Effect, Node, REXMIT_DELAY};
use crate::agent::auth;
use crate::agent::membership::NodeStatus;
use crate::agent::seqtrack::Verdict;
use crate::agent::wire;

impl Node {
    /// One datagram from a heartbeat link (`link`: the interface it arrived on; `from`: its
    /// source, for log lines).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        link: &str,
        from: std::net::SocketAddr,
        data: &[u8],
    ) {
        self.counters.packets_in += 1;
        let datagram = match wire::decode(data) {
            Ok(d) => d,
            Err(e) => {
                self.counters.bad_packets += 1;
                self.bad_packet("malformed", now, || format!("from {from}: {e}"));
                return;
            }
        };
        match auth::verify_accepting(&datagram, &self.config.keys) {
            auth::Verification::Ok { index } => {
                *self.packets_by_key.entry(index).or_default() += 1;
            }
            _ => {
                self.counters.bad_auth += 1;
                self.bad_packet("authentication failed", now, || format!("from {from}"));
                return;
            }
        }
        let message = datagram.message;
        let (Some(kind), Some(src)) = (message.msg_type(), message.src()) else {
            self.counters.bad_packets += 1;
            self.bad_packet("missing t or src", now, || format!("from {from}"));
            return;
        };
        let kind = kind.to_string();
        let src = src.to_ascii_lowercase();
        if message.ts().is_none_or(|ts| ts == 0) {
            self.counters.bad_packets += 1;
            self.bad_packet("missing ts", now, || format!("from {src}"));
            return;
        }
        if src == self.config.node {
            // Our own datagram looped back (own address in the ucast list): harmless.
            return;
        }
        if !self.config.nodes.contains(&src) {
            self.counters.unknown_node += 1;
            self.bad_packet("unknown node", now, || format!("`{src}` from {from}"));
            return;
        }
        if let Some(uuid) = message.srcuuid() {
            self.peers_uuid.insert(src.clone(), uuid);
        }
        let generation = message.hg().unwrap_or(0);
        let control = message::is_control(&kind);
        let is_status = kind == "status";
        let mut deliver = true;
        if control {
            // `NS_*` messages carry no sequence number, so a replay of one cannot be told from
            // the original within a generation: an older generation is dropped like any
            // other replay, and the rest prove only the link (below).
            if self
                .trackers
                .get(&src)
                .is_some_and(|t| t.is_older(generation))
            {
                self.replay_dropped(now, || format!("{kind} from {src}"));
                return;
            }
        } else {
            let Some(seq) = message.seq().filter(|s| *s > 0) else {
                self.counters.bad_packets += 1;
                self.bad_packet("missing seq", now, || format!("{kind} from {src}"));
                return;
            };
            let verdict = self
                .trackers
                .entry(src.clone())
                .or_default()
                .observe(generation, seq, is_status);
            match &verdict {
                Verdict::Replay => {
                    self.replay_dropped(now, || format!("{kind} from {src}"));
                    return;
                }
                Verdict::Duplicate => self.counters.duplicates += 1,
                Verdict::AcceptWithGap { missing } => {
                    for m in missing {
                        let at = now + self.random_rexmit_delay();
                        self.rexmit_due.insert((src.clone(), *m), at);
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
                self.send(
                    vec![
                        ("t".into(), "NS_ackmsg".into()),
                        ("dest".into(), src.clone()),
                        ("ackseq".into(), format!("{seq:x}")),
                    ],
                    now,
                );
            }
        }
        // Only what sequence tracking delivered proves the node alive (and a status its
        // status word and deadtime); a duplicate, an old retransmission or an `NS_*` message
        // proves only the link it came on (docs/protocol.md §3).
        let kind = Kind::parse(&kind, &message);
        let changes = if deliver && !control {
            let status = match &kind {
                Kind::Status {
                    status: Some(st),
                    deadtime,
                } => Some((*st, *deadtime)),
                _ => None,
            };
            self.membership.heard(&src, link, generation, status, now)
        } else {
            self.membership.heard_link(&src, link, now)
        };
        self.on_membership(changes, now);
        if !deliver {
            return;
        }
        if let Some(dest) = message.dest()
            && !dest.eq_ignore_ascii_case(&self.config.node)
        {
            return;
        }
        self.dispatch(kind, &src, generation, now);
    }

    /// A datagram of an older generation than its sender's current one: counted and dropped,
    /// whatever its type.
    fn replay_dropped(&mut self, now: Instant, detail: impl FnOnce() -> String) {
        self.counters.replays += 1;
        self.bad_packet("replay of an older generation", now, detail);
    }

    fn dispatch(&mut self, kind: Kind, src: &str, generation: u64, now: Instant) {
        let resource_talk = matches!(
            kind,
            Kind::Starting
                | Kind::Resource { .. }
                | Kind::AskResources { .. }
                | Kind::Takeover { .. }
        );
        if resource_talk
            && !self
                .membership
                .status(src)
                .is_some_and(NodeStatus::is_alive)
        {
            // From a node we hold for gone: one lingering after its `shutdone` (a
            // retransmission we asked for, an answer to an old request). It has left the
            // negotiation; read as news, its word would make it a holder or a taker again.
            return;
        }
        let outputs = match kind {
            Kind::Shutdone => {
                self.log(6, format!("received shutdown notice from {src}"));
                let changes = self.membership.shutdown_notice(src, generation);
                self.on_membership(changes, now);
                Vec::new()
            }
            Kind::Starting => self.resources.peer_starting(src),
            Kind::Resource {
                hold: Some(hold),
                stable,
                info,
            } => self
                .resources
                .peer_resource(src, hold, stable, info.as_deref(), now),
            Kind::AskResources {
                hold: Some(hold),
                info: Some(info),
            } => self.resources.peer_ask(src, hold, &info, now),
            Kind::Takeover { hold: Some(hold) } => self.resources.peer_takeover(src, hold, now),
            Kind::ReqNodes => {
                let nodelist: String = self.config.nodes.iter().map(|n| format!("{n} ")).collect();
                self.send(
                    vec![
                        ("dest".into(), src.into()),
                        ("t".into(), "repnodes".into()),
                        ("nodelist".into(), nodelist),
                        ("delnodelist".into(), " ".into()),
                    ],
                    now,
                );
                Vec::new()
            }
            Kind::Rexmit {
                first: Some(first),
                last: Some(last),
            } => {
                self.answer_rexmit(src, first, last, now);
                Vec::new()
            }
            Kind::NakRexmit { first: Some(seq) } => {
                self.log(4, format!("irretrievably lost packet {seq} from {src}"));
                if let Some(t) = self.trackers.get_mut(src) {
                    t.forget(seq);
                }
                self.rexmit_due.remove(&(src.to_string(), seq));
                Vec::new()
            }
            Kind::Stonith {
                node: Some(node),
                result: Some(result),
            } => {
                self.log(6, format!("{src} reports fencing of {node}: {result}"));
                Vec::new()
            }
            // Status was handled above; the rest is incomplete or not ours to act on.
            _ => Vec::new(),
        };
        self.apply(outputs, now);
    }

    fn answer_rexmit(&mut self, src: &str, first: u64, last: u64, now: Instant) {
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
                    self.effects.push(Effect::Transmit(datagram));
                }
                None => self.send(
                    vec![
                        ("t".into(), "NS_nak_rexmit".into()),
                        ("firstseq".into(), format!("{seq:x}")),
                        ("dest".into(), src.into()),
                        ("info".into(), "not in history".into()),
                    ],
                    now,
                ),
            }
        }
    }

    pub(super) fn request_rexmits(&mut self, now: Instant) {
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
            self.send(
                vec![
                    ("t".into(), "NS_rexmit".into()),
                    ("dest".into(), peer.clone()),
                    ("firstseq".into(), seq.to_string()),
                    ("lastseq".into(), seq.to_string()),
                ],
                now,
            );
            self.rexmit_due.insert((peer, seq), now + REXMIT_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::agent::core::{Config, Identity};
    use crate::agent::membership::Timers;
    use crate::config::ha::{AutoFailback, MsgFormat};
    use crate::config::heartbeat::authkeys;

    const KEEPALIVE: Duration = Duration::from_millis(100);
    const DEADTIME: Duration = Duration::from_millis(500);

    fn node(name: &str, generation: u64, now: Instant) -> Node {
        let keys = authkeys::parse("auth 1\n1 sha1 a-shared-secret\n", "authkeys".as_ref())
            .expect("authkeys");
        let config = Config {
            node: name.into(),
            nodes: vec!["node1".into(), "node2".into()],
            timers: Timers {
                keepalive: KEEPALIVE,
                warntime: Duration::from_millis(300),
                deadtime: DEADTIME,
                initdead: DEADTIME * 2,
            },
            keys,
            msgfmt: MsgFormat::Netstring,
            hopfudge: 1,
            resource_check: None,
            groups: Vec::new(),
            failback: AutoFailback::Off,
        };
        let identity = Identity {
            uuid: [generation as u8; 16],
            generation,
            unix_ms: 1_700_000_000_000,
            seed: generation,
        };
        Node::new(config, identity, now)
    }

    fn from() -> SocketAddr {
        SocketAddr::from(([10, 0, 1, 1], 694))
    }

    /// What `node` transmitted since the last call.
    fn sent(node: &mut Node) -> Vec<Vec<u8>> {
        node.take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Transmit(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Runs node1 and node2 side by side for `span`, each one's datagrams delivered to the
    /// other; returns node1's last status datagram.
    fn run_pair(n1: &mut Node, n2: &mut Node, now: &mut Instant, span: Duration) -> Vec<u8> {
        let mut last_status = Vec::new();
        let end = *now + span;
        while *now < end {
            *now += Duration::from_millis(10);
            n1.handle_timeout(*now);
            n2.handle_timeout(*now);
            for d in sent(n1) {
                if wire::decode(&d).is_ok_and(|m| m.message.msg_type() == Some("status")) {
                    last_status = d.clone();
                }
                n2.handle_datagram(*now, "eth1", from(), &d);
            }
            for d in sent(n2) {
                n1.handle_datagram(*now, "eth1", from(), &d);
            }
        }
        last_status
    }

    /// A crashed node's own heartbeat, replayed on the link once every keepalive, must not
    /// keep it alive: it is dead within its deadtime, and the replays are counted.
    #[test]
    fn a_replayed_heartbeat_keeps_no_dead_node_alive() {
        let mut now = Instant::now();
        let (mut n1, mut n2) = (node("node1", 1, now), node("node2", 1, now));
        let captured = run_pair(&mut n1, &mut n2, &mut now, Duration::from_secs(2));
        assert_eq!(n2.membership().status("node1"), Some(NodeStatus::Active));
        assert!(!captured.is_empty());
        let crashed_at = now;
        drop(n1);
        while now < crashed_at + DEADTIME + KEEPALIVE * 2 {
            now += KEEPALIVE;
            n2.handle_datagram(now, "eth1", from(), &captured);
            n2.handle_timeout(now);
        }
        assert_eq!(n2.membership().status("node1"), Some(NodeStatus::Dead));
        assert!(n2.counters().duplicates >= 5, "{:?}", n2.counters());
    }

    /// An `NS_*` message of an older generation is a replay, even after its node said it
    /// shut down: it brings nothing back and is counted.
    #[test]
    fn an_old_generation_control_message_is_a_replay() {
        let mut now = Instant::now();
        let mut old = node("node1", 1, now);
        old.send(
            vec![
                ("t".into(), "NS_ackmsg".into()),
                ("dest".into(), "node2".into()),
                ("ackseq".into(), "1".into()),
            ],
            now,
        );
        let old_ack = sent(&mut old).pop().expect("an ack");
        let (mut n1, mut n2) = (node("node1", 2, now), node("node2", 1, now));
        run_pair(&mut n1, &mut n2, &mut now, Duration::from_secs(2));
        n1.handle_shutdown(now);
        for d in sent(&mut n1) {
            n2.handle_datagram(now, "eth1", from(), &d);
        }
        assert_eq!(n2.membership().status("node1"), Some(NodeStatus::Dead));
        let replays = n2.counters().replays;
        n2.handle_datagram(now, "eth1", from(), &old_ack);
        n2.handle_timeout(now);
        assert_eq!(n2.membership().status("node1"), Some(NodeStatus::Dead));
        assert_eq!(n2.counters().replays, replays + 1);
    }

    /// The same datagram over a second medium proves that link, not the node.
    #[test]
    fn a_duplicate_proves_its_link_only() {
        let mut now = Instant::now();
        let (mut n1, mut n2) = (node("node1", 1, now), node("node2", 1, now));
        let captured = run_pair(&mut n1, &mut n2, &mut now, Duration::from_secs(2));
        n2.handle_datagram(now, "eth2", from(), &captured);
        assert!(
            n2.membership()
                .links()
                .any(|(n, l, up)| n == "node1" && l == "eth2" && up)
        );
        assert_eq!(n2.counters().duplicates, 1);
    }
}
