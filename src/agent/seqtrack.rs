//! Per-sender sequence and generation tracking (docs/protocol.md §3): which datagrams are new, which
//! are duplicates arriving over a second medium, which are replays of an older generation, and
//! which sequence numbers went missing and should be asked for again. Pure and bounded: a peer
//! — or an attacker with a stolen key — cannot make it remember more than `MAX_MISSING` gaps.

use std::collections::BTreeSet;

/// Gaps remembered per sender (Heartbeat's MAXMISSING).
pub const MAX_MISSING: usize = 500;
/// A jump larger than this is not worth retransmitting: resynchronise instead (FLOWCONTROL_LIMIT).
pub const RESYNC_GAP: u64 = 250;

/// What to do with one datagram from a sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New and in order (or the first seen): deliver.
    Accept,
    /// New, but `missing` sequence numbers were skipped: deliver and ask for those again.
    AcceptWithGap { missing: Vec<u64> },
    /// One we had recorded as missing: deliver, stop asking.
    Recovered,
    /// The sender restarted (higher generation on a status message): tracking reset, deliver.
    Restarted,
    /// Already seen (the same packet over another medium, or a retransmission we no longer
    /// need): only proves the link is alive.
    Duplicate,
    /// An older generation than the sender's current one: a replay. Drop and count.
    Replay,
    /// A newer generation on a non-status message: wait for the sender's status to confirm the
    /// restart, as the real daemon does.
    Early,
}

impl Verdict {
    pub fn delivers(&self) -> bool {
        matches!(
            self,
            Verdict::Accept
                | Verdict::AcceptWithGap { .. }
                | Verdict::Recovered
                | Verdict::Restarted
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    generation: Option<u64>,
    last_seq: Option<u64>,
    missing: BTreeSet<u64>,
}

impl SeqTracker {
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Sequence numbers still missing, oldest first.
    pub fn missing(&self) -> impl Iterator<Item = u64> + '_ {
        self.missing.iter().copied()
    }

    /// Gives up on a gap (the sender answered that it no longer has it).
    pub fn forget(&mut self, seq: u64) {
        self.missing.remove(&seq);
    }

    /// Whether `generation` is older than the sender's current one (a replay).
    pub fn is_older(&self, generation: u64) -> bool {
        self.generation.is_some_and(|known| generation < known)
    }

    pub fn observe(&mut self, generation: u64, seq: u64, is_status: bool) -> Verdict {
        match self.generation {
            Some(known) if generation < known => return Verdict::Replay,
            Some(known) if generation > known => {
                if !is_status {
                    return Verdict::Early;
                }
                *self = SeqTracker {
                    generation: Some(generation),
                    last_seq: Some(seq),
                    missing: BTreeSet::new(),
                };
                return Verdict::Restarted;
            }
            Some(_) => {}
            None => {
                self.generation = Some(generation);
                self.last_seq = Some(seq);
                return Verdict::Accept;
            }
        }
        let Some(last) = self.last_seq else {
            self.last_seq = Some(seq);
            return Verdict::Accept;
        };
        if last.checked_add(1) == Some(seq) {
            self.last_seq = Some(seq);
            Verdict::Accept
        } else if seq > last {
            self.last_seq = Some(seq);
            let gap = seq - last - 1;
            if gap > RESYNC_GAP {
                self.missing.clear();
                return Verdict::Accept;
            }
            let missing: Vec<u64> = (last + 1..seq).collect();
            for m in &missing {
                if self.missing.len() >= MAX_MISSING {
                    // Drop the oldest gap: the newest are the likeliest to still be retrievable.
                    self.missing.pop_first();
                }
                self.missing.insert(*m);
            }
            Verdict::AcceptWithGap { missing }
        } else if self.missing.remove(&seq) {
            Verdict::Recovered
        } else {
            Verdict::Duplicate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_duplicates_and_gaps() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(100, 1, true), Verdict::Accept);
        assert_eq!(t.observe(100, 2, false), Verdict::Accept);
        assert_eq!(
            t.observe(100, 2, false),
            Verdict::Duplicate,
            "same packet over a second medium"
        );
        assert_eq!(
            t.observe(100, 5, false),
            Verdict::AcceptWithGap {
                missing: vec![3, 4]
            }
        );
        assert_eq!(t.missing().collect::<Vec<_>>(), [3, 4]);
        assert_eq!(t.observe(100, 4, false), Verdict::Recovered);
        assert_eq!(t.observe(100, 4, false), Verdict::Duplicate);
        t.forget(3);
        assert_eq!(t.observe(100, 3, false), Verdict::Duplicate);
    }

    #[test]
    fn generations_restart_and_replay() {
        let mut t = SeqTracker::default();
        t.observe(7, 40, true);
        assert_eq!(t.observe(6, 41, true), Verdict::Replay);
        assert_eq!(t.observe(8, 1, false), Verdict::Early);
        assert_eq!(t.observe(8, 1, true), Verdict::Restarted);
        assert_eq!(t.observe(8, 2, true), Verdict::Accept);
        assert_eq!(
            t.observe(7, 41, true),
            Verdict::Replay,
            "the old generation stays dead"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = SeqTracker::default();
        t.observe(1, 0, true);
        let mut seq = 0;
        for _ in 0..10_000 {
            seq += 200;
            t.observe(1, seq, false);
        }
        assert!(t.missing().count() <= MAX_MISSING);
        assert_eq!(
            t.observe(1, seq + 10_000, false),
            Verdict::Accept,
            "huge jumps resync"
        );
        assert_eq!(t.missing().count(), 0);
        assert_eq!(t.observe(1, u64::MAX, false), Verdict::Accept);
        assert_eq!(t.observe(1, 0, false), Verdict::Duplicate);
    }
}
