//! Faults a lab injects into one of its nodes, all through the engine: a crash (kill), a hang
//! (pause), a reboot (restart), a heartbeat cable or every cable pulled (network disconnect)
//! and plugged back under the interface names the cluster's config uses.

use std::net::Ipv4Addr;

use super::docker::{self, docker};
use super::{Lab, LabError};

/// Faults the engine can inject; on the command line `unplug --all` is `UnplugAll`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Crash the node (docker kill).
    Crash,
    /// Freeze the node (docker pause).
    Hang,
    /// Unfreeze a hung node (docker unpause).
    Resume,
    /// Pull the node's heartbeat cable (with --all: every cable).
    #[value(name = "unplug")]
    UnplugHeartbeat,
    #[value(skip)]
    UnplugAll,
    /// Plug the cables back in.
    Plug,
    /// Reboot the node (docker restart).
    Reboot,
    /// Start a crashed node again.
    Start,
}

/// Disconnects a network. Docker finds the interface by the name it gave it; one that `plug`
/// renamed back is left behind in the node, so it is removed here, or the next plug would
/// find its address taken.
fn unplug(container: &str, network: &str, addr: Ipv4Addr) -> Result<(), LabError> {
    docker(&["network", "disconnect", "-f", network, container])?;
    docker::exec(
        container,
        &format!(
            r#"dev=$(ip -o -4 addr show | awk -v a="{addr}/" 'index($4, a) == 1 {{ print $2; exit }}'); [ -z "$dev" ] || ip link del "$dev""#
        ),
    )?;
    Ok(())
}

/// Renames the interface holding `addr` to `iface`, keeping a default route through it.
fn rename_script(addr: Ipv4Addr, iface: &str) -> String {
    format!(
        r#"dev=$(ip -o -4 addr show | awk -v a="{addr}/" 'index($4, a) == 1 {{ print $2; exit }}')
[ -n "$dev" ] || {{ echo "no interface has {addr}"; exit 1; }}
[ "$dev" = "{iface}" ] && exit 0
gw=$(ip route show default dev "$dev" | awk '{{ print $3; exit }}')
ip link set "$dev" down && ip link set "$dev" name {iface} && ip link set {iface} up || exit 1
if [ -n "$gw" ]; then ip route replace default via "$gw" dev {iface}; fi
"#
    )
}

pub fn inject(lab: &Lab, node: &str, fault: Fault) -> Result<(), LabError> {
    let n = lab.node(node)?;
    let c = n.container.as_str();
    let connected = |network: &str| -> Result<bool, LabError> {
        let out = docker(&[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            c,
        ])?;
        Ok(out.contains(&format!("\"{network}\"")))
    };
    match fault {
        Fault::Crash => docker(&["kill", c]).map(drop)?,
        Fault::Hang => docker(&["pause", c]).map(drop)?,
        Fault::Resume => docker(&["unpause", c]).map(drop)?,
        Fault::Reboot => docker(&["restart", "-t", "5", c]).map(drop)?,
        Fault::Start => docker(&["start", c]).map(drop)?,
        Fault::UnplugHeartbeat => unplug(c, &lab.heartbeat_network, n.heartbeat_addr)?,
        Fault::UnplugAll => {
            for (network, addr) in [
                (&lab.heartbeat_network, n.heartbeat_addr),
                (&lab.service_network, n.service_addr),
            ] {
                if connected(network)? {
                    unplug(c, network, addr)?;
                }
            }
        }
        Fault::Plug => {
            for (network, addr, iface) in [
                (&lab.service_network, n.service_addr, &n.service_iface),
                (&lab.heartbeat_network, n.heartbeat_addr, &n.heartbeat_iface),
            ] {
                if !connected(network)? {
                    docker(&["network", "connect", "--ip", &addr.to_string(), network, c])?;
                    // Docker names a reconnected interface eth2, eth3…; a real cable plugged
                    // back keeps its name, and ha.cf and haresources name it.
                    let (code, out) = docker::exec(c, &rename_script(addr, iface))?;
                    if code != 0 {
                        return Err(LabError::Fault(format!(
                            "{node}: naming the reconnected interface {iface}: {out}"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}
