//! The files every cluster node gets besides its /etc/ha.d, the same on every node: the sysctl
//! drop-in that lets the proxies bind the VIP before the node holds it (`ip_nonlocal_bind`,
//! what make-before-break hand-offs need), the agent's systemd unit or SysV init script —
//! whichever the node boots with — and hadeploy-agent(8), which the unit names as its
//! documentation. Paths are relative to the node's root, as `render_cluster`'s are.

use super::RenderedFile;

pub const SYSCTL_DROPIN: &str = "etc/sysctl.d/90-hadeploy.conf";
pub const SYSTEMD_UNIT: &str = "etc/systemd/system/hadeploy-agent.service";
pub const INIT_SCRIPT: &str = "etc/init.d/hadeploy-agent";
pub const AGENT_MANUAL: &str = "usr/local/share/man/man8/hadeploy-agent.8";

/// Every path this module may produce, for the probe to read before planning.
pub const PATHS: [&str; 4] = [SYSCTL_DROPIN, SYSTEMD_UNIT, INIT_SCRIPT, AGENT_MANUAL];

const SYSCTL: &str = "# Installed by hadeploy: services may bind the VIP before this node holds it.\nnet.ipv4.ip_nonlocal_bind = 1\n";

/// How the node starts the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentService {
    SystemdUnit,
    InitScript,
}

/// How long systemd waits before starting a crashed agent again: the cluster's deadtime
/// (the peers' window to declare it dead) and 5 s for their takeover to finish.
fn restart_delay(deadtime: std::time::Duration) -> std::time::Duration {
    deadtime + std::time::Duration::from_secs(5)
}

/// The node's system files for the way it starts services; `deadtime` is the cluster's.
///
/// None of them restarts a running agent when it changes: systemd reads the unit again at the
/// daemon-reload that follows and applies it from the agent's next start or stop, and an init
/// script is read whenever it runs. A restart would be a hand-off on the holder, and the
/// unit's RestartSec follows the deadtime, so a timer change would move the VIP.
pub fn files(service: AgentService, deadtime: std::time::Duration) -> Vec<RenderedFile> {
    let file = |path, content: &str, mode, notifies_agent| RenderedFile {
        path,
        content: content.to_string(),
        mode,
        secret: false,
        notifies_agent,
    };
    let manual = String::from_utf8(crate::agent::cli::manual()).expect("roff is UTF-8");
    vec![
        file(SYSCTL_DROPIN, SYSCTL, 0o644, false),
        match service {
            AgentService::SystemdUnit => file(
                SYSTEMD_UNIT,
                &include_str!("../../templates/hadeploy-agent.service").replace(
                    "@RESTART_SEC@",
                    &format!("{}ms", restart_delay(deadtime).as_millis()),
                ),
                0o644,
                false,
            ),
            AgentService::InitScript => file(
                INIT_SCRIPT,
                include_str!("../../templates/hadeploy-agent.init"),
                0o755,
                false,
            ),
        },
        file(AGENT_MANUAL, &manual, 0o644, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_init_gets_its_own_way_to_start_the_agent() {
        let deadtime = std::time::Duration::from_millis(1500);
        let systemd = files(AgentService::SystemdUnit, deadtime);
        let sysv = files(AgentService::InitScript, deadtime);
        let paths = |fs: &[RenderedFile]| fs.iter().map(|f| f.path).collect::<Vec<_>>();
        assert_eq!(paths(&systemd), [SYSCTL_DROPIN, SYSTEMD_UNIT, AGENT_MANUAL]);
        assert_eq!(paths(&sysv), [SYSCTL_DROPIN, INIT_SCRIPT, AGENT_MANUAL]);
        assert!(systemd.iter().chain(&sysv).all(|f| PATHS.contains(&f.path)));
        let unit = &systemd[1];
        assert!(
            !unit.notifies_agent && unit.content.contains("Documentation=man:hadeploy-agent(8)")
        );
        assert!(
            unit.content.contains("\nRestartSec=6500ms\n"),
            "{}",
            unit.content
        );
        assert!(unit.content.contains("\nKillMode=mixed\n"));
        assert_eq!(sysv[1].mode, 0o755);
        assert!(systemd[0].content.contains("net.ipv4.ip_nonlocal_bind = 1"));
        assert!(systemd.iter().chain(&sysv).all(|f| !f.notifies_agent));
        assert!(systemd[2].content.contains(".TH hadeploy"));
    }
}
