//! How often a drill samples the cluster while it runs, and the loop both of its recorders
//! (the client probing the VIP, the watcher of who holds it) turn on. The cadences live here,
//! below both `run` and `report`, because the report states the holders' sampling interval
//! beside the figures computed from it.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

/// How often the client probes the VIP, and how long it waits for an answer.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(10);
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How often every node is asked which addresses it has.
pub(super) const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// The drill's clock: milliseconds since it began, the time of every sample and event.
pub(super) fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// A recorder's clock: a tick every interval until the drill says stop.
pub(super) struct Cadence {
    tick: Interval,
    stop: watch::Receiver<bool>,
}

impl Cadence {
    /// Call it inside the recorder's task: the first tick is due at once.
    pub(super) fn new(every: Duration, stop: watch::Receiver<bool>) -> Cadence {
        let mut tick = tokio::time::interval(every);
        // A sample that overran its slot pushes the next one back rather than firing a burst.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Cadence { tick, stop }
    }

    /// Waits for the next sample; false once the drill has stopped. The stop is checked
    /// first, so a recorder that is always behind still ends.
    pub(super) async fn next(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|stopped| *stopped) => false,
            _ = self.tick.tick() => true,
        }
    }
}
