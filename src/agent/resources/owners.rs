//! Who should hold a group, the rules beyond Heartbeat v1 that make the outcome deterministic
//! (docs/protocol.md §5.7): which peer is ready to take a group, who takes a group a giver
//! offers, the designated taker of a group nobody holds (its home node when up, else the
//! first live node by name), and `settle`, which after a partition heals leaves each group
//! held twice with exactly one holder.

use std::time::Instant;

use super::*;

impl ResourceManager {
    pub(super) fn held_by_live_peer(&self, group: usize) -> bool {
        self.live_peers().any(|(_, v)| v.holds.contains(&group))
    }

    pub(super) fn node_is_ready(&self, node: &str) -> bool {
        node == self.me || self.peers.get(node).is_some_and(|v| v.alive && v.known)
    }

    /// Which node should hold `group` when nobody does: its home when up, else the first live
    /// node in name order.
    /// The groups `node` offers with `hold`: those it holds, when we know what it holds.
    pub(super) fn offered_by(&self, node: &str, hold: Hold) -> GroupSet {
        let named = self.groups_of(node, hold);
        match self.peers.get(node) {
            Some(view) if view.known => named.intersection(&view.holds).copied().collect(),
            _ => named,
        }
    }

    /// Who takes `group` when `giver` hands it over: its home when that is another ready
    /// node, else the first ready node by name other than the giver.
    pub(super) fn taker_for(&self, group: usize, giver: &str) -> String {
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

    /// [`taker_for`](Self::taker_for), when it cannot change once every live peer has said
    /// what it holds: `None` while a live node that would come before the answer (the home
    /// node, or a node sorting first) has not. A node answering an offer on a guess could
    /// start the group beside the real taker.
    pub(super) fn sure_taker_for(&self, group: usize, giver: &str) -> Option<String> {
        let home = &self.groups[group].home;
        let unsure = |node: &str| {
            node != self.me && self.peers.get(node).is_some_and(|v| v.alive && !v.known)
        };
        if home != giver {
            if self.node_is_ready(home) {
                return Some(home.clone());
            }
            if unsure(home) {
                return None;
            }
        }
        let mut live: Vec<&String> = self
            .live_peers()
            .filter(|(n, _)| n.as_str() != giver)
            .map(|(n, _)| n)
            .collect();
        if self.me != giver {
            live.push(&self.me);
        }
        live.sort();
        let first = live.first()?;
        (!unsure(first)).then(|| first.to_string())
    }

    pub(super) fn designated_taker(&self, group: usize) -> String {
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
    pub(super) fn settle(&mut self, now: Instant) -> Vec<Output> {
        if !self.comm_up || self.shutting_down || self.leaving() || self.busy != Busy::Idle {
            return Vec::new();
        }
        // Until every live peer has told us what it holds, any decision could double-start.
        if self.live_peers().any(|(_, v)| !v.known) {
            return Vec::new();
        }
        let (lose, keep) = self.duplicates();
        if matches!(self.standby, Standby::Asked { .. }) && !lose.is_empty() {
            // A group we offer is also held by a node that keeps it (a partition healed, or
            // one takeover asked two holders to give): the request would hold the release
            // back for STANDBY_REPLY_TIMEOUT, and its taker — often that other holder, waiting
            // in a request of its own — may never answer. Nothing is released yet: withdraw
            // it, as its timeout would. A taker that answers still is told our holdings.
            self.standby = Standby::Not;
        }
        if self.standby != Standby::Not {
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
        if !lose.is_empty() {
            let winner = self.designated_taker(*lose.iter().next().unwrap_or(&0));
            return self.start_release(lose, Why::Duplicate(winner), None);
        }
        let mut out = Vec::new();
        if !keep.is_empty() {
            out.push(Output::Reannounce(keep));
        }

        // Groups nobody holds. rsc_hold names categories, not groups: a node holding one of
        // two groups of a category says it holds both, and the peers read it so. A group
        // nobody holds that our own word names is believed ours by everyone else, so nobody
        // else will take it.
        let believed_ours = self.groups_of(&self.me, self.my_hold(&self.held));
        let unheld: GroupSet = (0..self.groups.len())
            .filter(|&g| !self.held.contains(&g) && !self.held_by_live_peer(g))
            .filter(|&g| self.designated_taker(g) == self.me || believed_ours.contains(&g))
            .collect();
        if !unheld.is_empty() {
            out.extend(self.start_acquire(unheld, Why::Unheld));
            return out;
        }

        // auto_failback on: hand a returned home node its groups back, once per return.
        if self.failback == AutoFailback::On {
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

    /// The groups held here and by a live peer too, split into those this node releases and
    /// those it keeps: the home node keeps a group if it is one of the holders, else the
    /// holder whose name sorts first.
    pub(super) fn duplicates(&self) -> (GroupSet, GroupSet) {
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
        (lose, keep)
    }
}
