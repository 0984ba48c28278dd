//! The shell commands behind each pull mode, and the command that undoes each: standby, a
//! stopped or killed agent, heartbeats dropped with nftables (which undoes itself if the
//! controller is lost), a reboot (which the node undoes by coming back).

use std::time::Duration;

use super::plan::{self, Mode};
use crate::config::inventory::Cluster;

/// An isolated node reconnects itself after four budgets — at least this long — even if the
/// controller vanished: long enough for the drill to restore it first, short enough that a
/// lost controller does not leave the node cut off.
const ISOLATE_UNDO_MIN: Duration = Duration::from_secs(20);
const NFT_TABLE: &str = "hadeploy_drill";

/// The commands that pull a node of `cluster` out in `mode`, and the command that undoes it.
pub(super) fn pull_script(mode: Mode, cluster: &Cluster) -> (String, String) {
    let udpport = cluster.udpport;
    let undo_after = (plan::budget(cluster, Some(Mode::Isolate)) * 4).max(ISOLATE_UNDO_MIN);
    let systemd = "[ -d /run/systemd/system ]";
    let start = format!(
        "if {systemd}; then systemctl start hadeploy-agent; else /etc/init.d/hadeploy-agent start; fi"
    );
    match mode {
        Mode::Standby => ("hadeploy-agent standby".into(), "true".into()),
        Mode::Stop => (
            format!(
                "if {systemd}; then systemctl stop hadeploy-agent; else /etc/init.d/hadeploy-agent stop; fi"
            ),
            start,
        ),
        // Kept down after the kill: a restarted agent would hide the failover being measured.
        Mode::Kill => (
            format!(
                "if {systemd}; then systemctl kill -s KILL hadeploy-agent && systemctl stop hadeploy-agent; else pkill -9 -x hadeploy-agent; hadeploy-agent release; fi"
            ),
            start,
        ),
        Mode::Isolate => {
            let undo = format!("nft delete table inet {NFT_TABLE} 2>/dev/null; true");
            (
                format!(
                    "nft add table inet {t} && nft add chain inet {t} in '{{ type filter hook input priority -10; }}' && nft add chain inet {t} out '{{ type filter hook output priority -10; }}' && nft add rule inet {t} in udp dport {udpport} drop && nft add rule inet {t} out udp dport {udpport} drop && (setsid sh -c 'sleep {secs}; {undo}' </dev/null >/dev/null 2>&1 &)",
                    t = NFT_TABLE,
                    secs = undo_after.as_secs(),
                ),
                undo,
            )
        }
        Mode::Reboot => (
            "(setsid sh -c 'sleep 1; systemctl reboot || reboot' </dev/null >/dev/null 2>&1 &)"
                .into(),
            // The node comes back by itself; restoring it waits for it (`nodes::wait_back`).
            String::new(),
        ),
    }
}
