//! Desired state versus the probed state of one node → the steps that close the gap. Pure: no
//! I/O, so `--check` shows exactly what `apply` would do, and `--diff` shows the diffs of the
//! same steps (secrets redacted). A step that changes the agent's configuration notifies the
//! handler, which reloads the agent in place or restarts it (`agent_action`).

use std::sync::Arc;

use similar::TextDiff;

use super::manifest::{self, Manifest};
use super::probe::{InitSystem, NodeState, OsFamily, RemoteFile};

/// A file hadeploy owns on the node (always root:root).
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredFile {
    pub path: String,
    pub content: Arc<Vec<u8>>,
    pub mode: u32,
    /// Never show the content: diffs say only that it changed.
    pub secret: bool,
    /// A change means the running agent must reload or restart (`agent_action`).
    pub notifies_agent: bool,
    /// Set for an `ha_files` entry, which is not root's and not uploaded with the rest.
    pub service: Option<ServiceFileMeta>,
}

/// What an `ha_files` entry adds to a file: its owner, and the role that tests and reloads it.
/// Such a file is staged and tested on every node of its cluster before anything else changes
/// (`controller::service_files`), so the upload batch leaves it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFileMeta {
    pub owner: String,
    pub group: String,
    pub role: Option<String>,
}

impl std::fmt::Debug for DesiredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DesiredFile({}, {} bytes, {:o})",
            self.path,
            self.content.len(),
            self.mode
        )
    }
}

/// Everything one node should end up with.
#[derive(Clone, Debug)]
pub struct Desired {
    pub files: Vec<DesiredFile>,
    /// sha1 of the agent binary the controller ships (its own build).
    pub agent_sha1: String,
    /// Services to keep out of boot (only those present on the node are touched).
    pub keep_out_of_boot: Vec<String>,
    /// What the manifest a run writes is stamped with.
    pub stamp: Stamp,
}

/// The run's inputs the manifest records besides the desired state: the inventory's digest and
/// the time (given, so planning stays pure).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub inventory_sha1: String,
    pub now_unix: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create or replace a file (content, mode or owner differ); the old one is kept as a backup.
    PutFile { file: DesiredFile, existed: bool },
    /// Upload the agent binary (missing or another build).
    PutAgent,
    /// `net.ipv4.ip_nonlocal_bind=1` now (the drop-in file makes it persistent).
    SysctlLive,
    /// Keep a service out of boot, the way its init system and distribution want it.
    DisableAutostart {
        service: String,
        init: InitSystem,
        family: OsFamily,
    },
    /// Reload systemd after a unit file changed.
    DaemonReload,
    /// Enable and start the agent.
    EnableAgent { init: InitSystem },
    /// Record what this run applied (`manifest`), uploaded with the files.
    WriteManifest(Box<Manifest>),
}

impl Step {
    /// One line for the recap and check mode.
    pub fn describe(&self) -> String {
        match self {
            Step::PutFile {
                file,
                existed: false,
            } => format!("create {} (mode {:o})", file.path, file.mode),
            Step::PutFile {
                file,
                existed: true,
            } => format!("update {}", file.path),
            Step::PutAgent => format!("install {}", super::probe::AGENT_PATH),
            Step::SysctlLive => "set net.ipv4.ip_nonlocal_bind=1 (live)".into(),
            Step::DisableAutostart { service, .. } => format!("keep {service} out of boot"),
            Step::DaemonReload => "systemctl daemon-reload".into(),
            Step::EnableAgent { .. } => "enable and start hadeploy-agent".into(),
            Step::WriteManifest(_) => format!("record the applied state in {}", manifest::PATH),
        }
    }

    /// Whether the step's script needs the uploads done first.
    pub fn reads_uploads(&self) -> bool {
        matches!(self, Step::DaemonReload | Step::EnableAgent { .. })
    }

    pub fn notifies_agent(&self) -> bool {
        match self {
            Step::PutFile { file, .. } => file.notifies_agent,
            Step::PutAgent => true,
            _ => false,
        }
    }

    /// The shell a non-upload step runs on the node.
    pub fn script(&self) -> Option<String> {
        Some(match self {
            Step::PutFile { .. } | Step::PutAgent | Step::WriteManifest(_) => return None,
            Step::SysctlLive => "sysctl -q -w net.ipv4.ip_nonlocal_bind=1".into(),
            Step::DisableAutostart { service, init, family } => {
                let s = crate::transport::shell_quote(service);
                match (init, family) {
                    // disable, not mask: the cluster must still be able to start it. No reload:
                    // boot reads the symlinks, and the probe asks `is-enabled`, which does too.
                    // The SysV links `systemctl disable` would sync through systemd-sysv-install
                    // are `sysv_sync`'s, run beside the other steps.
                    (InitSystem::Systemd, _) => {
                        format!("SYSTEMCTL_SKIP_SYSV=1 systemctl disable --no-reload -q {s}.service")
                    }
                    // `disable` keeps K links, so the next package upgrade does not re-enable it
                    // (`remove` alone is undone by the package's postinst).
                    (_, OsFamily::Debian) => format!("update-rc.d {s} disable >/dev/null"),
                    (_, OsFamily::RedHat) => format!("chkconfig {s} off"),
                    (_, OsFamily::Other) => format!("if command -v update-rc.d >/dev/null; then update-rc.d {s} disable; else chkconfig {s} off; fi"),
                }
            }
            Step::DaemonReload => "systemctl daemon-reload".into(),
            // A unit file systemd has not loaded yet needs no reload: `start` reads it from disk.
            Step::EnableAgent { init: InitSystem::Systemd } => "systemctl enable --no-reload -q hadeploy-agent.service && systemctl start hadeploy-agent.service".into(),
            Step::EnableAgent { .. } => "update-rc.d hadeploy-agent defaults >/dev/null && /etc/init.d/hadeploy-agent start".into(),
        })
    }

    /// What systemd-sysv-install does for `systemctl disable` on Debian, run beside the
    /// script's other steps: the service's SysV start links become stop links, so a switch to
    /// sysvinit keeps it out of boot too. That is `update-rc.d NAME disable`'s toggle (S→K in
    /// the start runlevels, same sequence number), done in the shell: the perl costs ~0.2 s a
    /// service and this step is the whole first run's long pole.
    pub fn sysv_sync(&self) -> Option<String> {
        match self {
            Step::DisableAutostart {
                service,
                init: InitSystem::Systemd,
                family: OsFamily::Debian,
            } => {
                let s = crate::transport::shell_quote(service);
                Some(format!(
                    "for l in /etc/rc[2345].d/S[0-9][0-9]{s}; do [ -L \"$l\" ] || continue; k=\"${{l%/*}}/K${{l##*/S}}\"; mv -f \"$l\" \"$k\"; done"
                ))
            }
            _ => None,
        }
    }

    /// The unified diff of a file change, with secrets redacted.
    pub fn diff(&self, current: &NodeState) -> Option<String> {
        let Step::PutFile { file, .. } = self else {
            return None;
        };
        let old = current.files.get(&file.path).cloned().flatten();
        if file.secret {
            return Some(format!(
                "--- {p}\n+++ {p}\n@@ content hidden: contains a secret ({}) @@\n",
                if old.is_some() { "changed" } else { "created" },
                p = file.path
            ));
        }
        let old_text = old
            .as_ref()
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .unwrap_or_default();
        let new_text = String::from_utf8_lossy(&file.content);
        let mut out = TextDiff::from_lines(old_text.as_str(), new_text.as_ref())
            .unified_diff()
            .header(
                &format!("{} (on the node)", file.path),
                &format!("{} (desired)", file.path),
            )
            .to_string();
        if let Some(old) = &old
            && old.mode != file.mode
        {
            out.push_str(&format!("mode {:o} -> {:o}\n", old.mode, file.mode));
        }
        Some(out)
    }
}

fn file_matches(current: Option<&RemoteFile>, desired: &DesiredFile) -> bool {
    current.is_some_and(|c| {
        let owned = match &desired.service {
            None => c.uid == 0 && c.gid == 0,
            Some(m) => c.owner == format!("{}:{}", m.owner, m.group),
        };
        *c.content == **desired.content && c.mode == desired.mode && owned
    })
}

/// The steps, in the order they must run: files (the agent's config and unit) before the
/// binary, autostart and sysctl, then the agent enabled last.
pub fn plan(desired: &Desired, current: &NodeState) -> Vec<Step> {
    let mut steps = Vec::new();
    // Only a unit file systemd may have loaded needs a daemon-reload after it changes.
    let mut unit_changed = false;
    for file in &desired.files {
        let existing = current.files.get(&file.path).and_then(|f| f.as_ref());
        if !file_matches(existing, file) {
            unit_changed |= existing.is_some() && file.path.starts_with("/etc/systemd/");
            steps.push(Step::PutFile {
                file: file.clone(),
                existed: existing.is_some(),
            });
        }
    }
    if current.agent_sha1.as_deref() != Some(desired.agent_sha1.as_str()) {
        steps.push(Step::PutAgent);
    }
    // A run that uploads anything records it; so does one that finds no record of the state
    // it finds in place (a node converged by hand, or by a hadeploy without manifests).
    let recorded = Manifest::on(current).ok().flatten();
    if !steps.is_empty() || !recorded.is_some_and(|m| m.records(desired)) {
        steps.push(Step::WriteManifest(Box::new(Manifest::of(
            desired,
            &desired.stamp.inventory_sha1,
            desired.stamp.now_unix,
        ))));
    }
    if current.nonlocal_bind_live != Some(true) {
        steps.push(Step::SysctlLive);
    }
    for service in &desired.keep_out_of_boot {
        if current
            .services
            .get(service)
            .is_some_and(|s| s.present && s.enabled_at_boot)
        {
            steps.push(Step::DisableAutostart {
                service: service.clone(),
                init: current.init,
                family: current.os_family,
            });
        }
    }
    if unit_changed && current.init == InitSystem::Systemd {
        steps.push(Step::DaemonReload);
    }
    let agent_enabled = current
        .services
        .get("hadeploy-agent")
        .is_some_and(|s| s.enabled_at_boot && s.running);
    if !agent_enabled {
        steps.push(Step::EnableAgent { init: current.init });
    }
    steps
}

/// What the running agent needs once the steps are done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentAction {
    /// Nothing it runs on changed.
    Nothing,
    /// Only what a reload changes live (`agent::reload::judge`): the cluster keeps its holder.
    Reload(Vec<String>),
    /// Its binary, its unit, or something only a restart changes (a hand-off where it holds).
    Restart(Vec<String>),
}

impl AgentAction {
    /// The handler's line in the recap (and in check mode, what it would do).
    pub fn describe(&self) -> Option<String> {
        match self {
            AgentAction::Nothing => None,
            AgentAction::Reload(changes) if changes.is_empty() => {
                Some("handler: reload hadeploy-agent in place (nothing it acts on changed)".into())
            }
            AgentAction::Reload(changes) => Some(format!(
                "handler: reload hadeploy-agent in place ({})",
                changes.join("; ")
            )),
            AgentAction::Restart(why) => Some(format!(
                "handler: restart hadeploy-agent, a hand-off where it holds ({})",
                why.join("; ")
            )),
        }
    }
}

/// Reload or restart, judged by the agent's own rule on the files the probe read and the ones
/// the steps write, so `apply` reloads exactly when the agent will accept it.
pub fn agent_action(steps: &[Step], current: &NodeState) -> AgentAction {
    use crate::agent::setup::{AGENT_CF, CONFIG_FILES};
    if !steps.iter().any(Step::notifies_agent) {
        // Files already as desired, but the agent still runs what it loaded before they
        // changed: a reload converges it (and the agent itself falls back to "restart" when
        // that is what the difference needs).
        let loaded = current.agent_view().and_then(Result::ok);
        let on_disk = crate::agent::setup::digest_over(false, |name| {
            current
                .files
                .get(&format!("{CONFIG_DIR}{name}"))?
                .as_ref()
                .map(|f| f.content.clone())
        });
        return match loaded {
            Some(status) if !status.config_digest.is_empty() && status.config_digest != on_disk => {
                AgentAction::Reload(vec![
                    "it runs an older configuration than the one in /etc/ha.d".into(),
                ])
            }
            _ => AgentAction::Nothing,
        };
    }
    let mut written: Vec<(&str, &[u8])> = Vec::new();
    for step in steps {
        match step {
            Step::PutAgent => return AgentAction::Restart(vec!["a new agent binary".into()]),
            Step::PutFile { file, .. } if file.notifies_agent => {
                match file
                    .path
                    .strip_prefix(CONFIG_DIR)
                    .filter(|name| CONFIG_FILES.contains(name))
                {
                    Some(name) => written.push((name, file.content.as_slice())),
                    None => return AgentAction::Restart(vec![format!("{} changed", file.path)]),
                }
            }
            _ => {}
        }
    }
    let on_node = |name: &str| {
        current
            .files
            .get(&format!("{CONFIG_DIR}{name}"))
            .cloned()
            .flatten()
            .map(|f| f.content)
    };
    let old = loaded(|name| on_node(name));
    let new = loaded(|name| {
        written
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, content)| content.to_vec())
            .or_else(|| on_node(name))
    });
    match (old, new) {
        (Some(old), Some(new)) => match crate::agent::reload::judge(&old, &new) {
            Ok(changes) => AgentAction::Reload(changes),
            Err(restart) => AgentAction::Restart(restart),
        },
        (None, _) => AgentAction::Restart(vec![format!(
            "the configuration on the node does not load ({AGENT_CF} and /etc/ha.d)"
        )]),
        // The config test refuses it before the agent is asked.
        (_, None) => AgentAction::Restart(vec!["the new configuration does not load".into()]),
    }
}

const CONFIG_DIR: &str = "/etc/ha.d/";

/// The agent's configuration from file contents by name, parsed as the agent parses it.
fn loaded(read: impl Fn(&str) -> Option<Vec<u8>>) -> Option<crate::agent::setup::Loaded> {
    use crate::agent::setup::{AGENT_CF, Loaded, parse_agent_settings};
    let dir = std::path::Path::new(CONFIG_DIR);
    let text = |name: &str| read(name).and_then(|b| String::from_utf8(b).ok());
    let heartbeat = crate::config::heartbeat::HeartbeatConfig::parse(
        dir,
        &text("ha.cf")?,
        &text("haresources")?,
        &text("authkeys")?,
    )
    .ok()?
    .0;
    let agent = match text(AGENT_CF) {
        Some(cf) => parse_agent_settings(&cf, &dir.join(AGENT_CF)).ok()?,
        None => Default::default(),
    };
    Some(Loaded { heartbeat, agent })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::probe::ServiceState;
    use std::collections::BTreeMap;

    fn file(path: &str, content: &str, mode: u32, secret: bool) -> DesiredFile {
        DesiredFile {
            path: path.into(),
            content: Arc::new(content.as_bytes().to_vec()),
            mode,
            secret,
            notifies_agent: path.starts_with("/etc/ha.d/"),
            service: None,
        }
    }

    fn desired() -> Desired {
        Desired {
            files: vec![
                file("/etc/ha.d/ha.cf", "keepalive 2\n", 0o644, false),
                file(
                    "/etc/ha.d/authkeys",
                    "auth 1\n1 sha1 s3cr3t-value\n",
                    0o600,
                    true,
                ),
            ],
            agent_sha1: "abc".into(),
            keep_out_of_boot: vec!["nginx".into(), "httpd".into()],
            stamp: Stamp {
                inventory_sha1: "inv".into(),
                now_unix: 1_764_680_000,
            },
        }
    }

    /// A root-owned file on the node, as the probe reports it.
    fn on_node(content: Vec<u8>, mode: u32, mtime_unix: i64) -> Option<RemoteFile> {
        Some(RemoteFile {
            content,
            mode,
            uid: 0,
            gid: 0,
            owner: "root:root".into(),
            mtime_unix,
        })
    }

    fn converged() -> NodeState {
        let d = desired();
        let mut files = BTreeMap::new();
        for f in &d.files {
            files.insert(
                f.path.clone(),
                on_node(f.content.to_vec(), f.mode, 1_764_680_000),
            );
        }
        files.insert(
            manifest::PATH.to_string(),
            on_node(
                Manifest::of(&d, "inv", 1_764_000_000).to_bytes(),
                manifest::MODE,
                1_764_000_000,
            ),
        );
        let mut services = BTreeMap::new();
        services.insert(
            "nginx".to_string(),
            ServiceState {
                present: true,
                enabled_at_boot: false,
                running: true,
            },
        );
        services.insert(
            "hadeploy-agent".to_string(),
            ServiceState {
                present: true,
                enabled_at_boot: true,
                running: true,
            },
        );
        NodeState {
            uname_n: "node1".into(),
            os_id: "debian".into(),
            os_family: OsFamily::Debian,
            init: InitSystem::Systemd,
            addresses: vec![],
            services,
            agent_sha1: Some("abc".into()),
            nonlocal_bind_live: Some(true),
            answering: BTreeMap::new(),
            files,
            oversized: BTreeMap::new(),
            agent_version: None,
            agent_status: None,
        }
    }

    /// A node whose /etc/ha.d is a working pair's, and a desired state with `hacf` instead.
    fn ha_d(hacf: &str) -> (Desired, NodeState) {
        const HACF: &str =
            "node node1 node2\nucast eth1 10.0.0.2\nkeepalive 200ms\nwarntime 500ms\ndeadtime 1\n";
        let files = |hacf: &str| {
            vec![
                file("/etc/ha.d/ha.cf", hacf, 0o644, false),
                file(
                    "/etc/ha.d/haresources",
                    "node1 10.0.0.10 nginx\n",
                    0o644,
                    false,
                ),
                file("/etc/ha.d/authkeys", "auth 1\n1 sha1 k\n", 0o600, true),
            ]
        };
        let mut desired = desired();
        desired.files = files(HACF);
        let mut state = converged();
        for f in files(HACF) {
            state
                .files
                .insert(f.path.clone(), on_node(f.content.to_vec(), f.mode, 0));
        }
        desired.files = files(hacf);
        (desired, state)
    }

    #[test]
    fn a_timer_change_reloads_the_agent_and_a_media_change_restarts_it() {
        let (d, state) = ha_d(
            "node node1 node2\nucast eth1 10.0.0.2\nkeepalive 200ms\nwarntime 500ms\ndeadtime 2\n",
        );
        let steps = plan(&d, &state);
        assert_eq!(
            agent_action(&steps, &state),
            AgentAction::Reload(vec!["deadtime 1000 ms → 2000 ms".into()])
        );
        let (d, state) = ha_d(
            "node node1 node2\nucast eth1 10.0.0.3\nkeepalive 200ms\nwarntime 500ms\ndeadtime 1\n",
        );
        let steps = plan(&d, &state);
        assert!(matches!(
            agent_action(&steps, &state),
            AgentAction::Restart(why) if why == ["the heartbeat media (ucast/bcast/mcast lines)"]
        ));
        // Nothing the agent runs on: no action. A new binary or unit: a restart.
        let (d, mut state) = ha_d(
            "node node1 node2\nucast eth1 10.0.0.2\nkeepalive 200ms\nwarntime 500ms\ndeadtime 1\n",
        );
        assert_eq!(
            agent_action(&plan(&d, &state), &state),
            AgentAction::Nothing
        );
        // The files are as desired but the agent says it loaded others: a reload converges it.
        let mut pending = state.clone();
        let mut status = crate::agent::control::StatusAnswer {
            config_digest: "loaded-before-a-hand-edit".into(),
            ..Default::default()
        };
        pending.agent_status = Some(status.to_string().into_bytes());
        assert!(matches!(
            agent_action(&plan(&d, &pending), &pending),
            AgentAction::Reload(why) if why[0].contains("older configuration")
        ));
        status.config_digest = crate::agent::setup::digest_over(false, |name| {
            pending
                .files
                .get(&format!("/etc/ha.d/{name}"))?
                .as_ref()
                .map(|f| f.content.clone())
        });
        pending.agent_status = Some(status.to_string().into_bytes());
        assert_eq!(
            agent_action(&plan(&d, &pending), &pending),
            AgentAction::Nothing
        );
        state.agent_sha1 = Some("older".into());
        assert!(matches!(
            agent_action(&plan(&d, &state), &state),
            AgentAction::Restart(_)
        ));
        let unit = Step::PutFile {
            file: DesiredFile {
                notifies_agent: true,
                ..file(
                    "/etc/systemd/system/hadeploy-agent.service",
                    "[Unit]\n",
                    0o644,
                    false,
                )
            },
            existed: true,
        };
        assert_eq!(
            agent_action(&[unit], &state),
            AgentAction::Restart(vec![
                "/etc/systemd/system/hadeploy-agent.service changed".into()
            ])
        );
    }

    #[test]
    fn converged_node_needs_nothing() {
        assert_eq!(plan(&desired(), &converged()), vec![]);
    }

    #[test]
    fn fresh_node_gets_everything_in_order() {
        let mut state = converged();
        state.files.values_mut().for_each(|f| *f = None);
        state.agent_sha1 = None;
        state.nonlocal_bind_live = Some(false);
        state.services.get_mut("nginx").unwrap().enabled_at_boot = true;
        state.services.remove("hadeploy-agent");
        let steps = plan(&desired(), &state);
        let described: Vec<String> = steps.iter().map(Step::describe).collect();
        assert_eq!(
            described,
            [
                "create /etc/ha.d/ha.cf (mode 644)",
                "create /etc/ha.d/authkeys (mode 600)",
                "install /usr/local/sbin/hadeploy-agent",
                "record the applied state in /var/lib/hadeploy/manifest.json",
                "set net.ipv4.ip_nonlocal_bind=1 (live)",
                "keep nginx out of boot",
                "enable and start hadeploy-agent"
            ]
        );
        assert!(
            steps[0].notifies_agent() && steps[2].notifies_agent() && !steps[4].notifies_agent()
        );
    }

    #[test]
    fn mode_or_owner_drift_is_a_change() {
        let mut state = converged();
        state
            .files
            .get_mut("/etc/ha.d/authkeys")
            .unwrap()
            .as_mut()
            .unwrap()
            .mode = 0o644;
        let steps = plan(&desired(), &state);
        assert!(matches!(
            &steps[..],
            [Step::PutFile { .. }, Step::WriteManifest(_)]
        ));
        state = converged();
        state
            .files
            .get_mut("/etc/ha.d/ha.cf")
            .unwrap()
            .as_mut()
            .unwrap()
            .uid = 1000;
        assert_eq!(plan(&desired(), &state).len(), 2);
    }

    #[test]
    fn a_node_without_a_record_of_its_converged_state_gets_one() {
        let mut state = converged();
        state.files.insert(manifest::PATH.into(), None);
        let steps = plan(&desired(), &state);
        let [Step::WriteManifest(m)] = &steps[..] else {
            panic!("{steps:?}")
        };
        assert!(m.records(&desired()));
        assert_eq!(m.applied_at_unix, 1_764_680_000);
        // A record of another state is rewritten too; junk in its place as well.
        let mut other = desired();
        other.agent_sha1 = "old".into();
        let stale = Manifest::of(&other, "inv", 1).to_bytes();
        state.files.insert(
            manifest::PATH.into(),
            Some(RemoteFile {
                content: stale,
                mode: manifest::MODE,
                uid: 0,
                gid: 0,
                owner: "root:root".into(),
                mtime_unix: 1,
            }),
        );
        assert_eq!(plan(&desired(), &state).len(), 1);
    }

    #[test]
    fn diffs_show_text_and_hide_secrets() {
        let mut state = converged();
        state
            .files
            .get_mut("/etc/ha.d/ha.cf")
            .unwrap()
            .as_mut()
            .unwrap()
            .content = b"keepalive 1\n".to_vec();
        state
            .files
            .get_mut("/etc/ha.d/authkeys")
            .unwrap()
            .as_mut()
            .unwrap()
            .content = b"auth 1\n1 sha1 old-secret\n".to_vec();
        let steps = plan(&desired(), &state);
        let hacf = steps[0].diff(&state).unwrap();
        assert!(hacf.contains("-keepalive 1\n+keepalive 2\n"), "{hacf}");
        let keys = steps[1].diff(&state).unwrap();
        assert!(keys.contains("content hidden"), "{keys}");
        assert!(!keys.contains("s3cr3t") && !keys.contains("old-secret"));
    }

    #[test]
    fn autostart_commands_per_init_and_family() {
        let step = |init, family| {
            Step::DisableAutostart {
                service: "nginx".into(),
                init,
                family,
            }
            .script()
            .unwrap()
        };
        assert_eq!(
            step(InitSystem::Systemd, OsFamily::Debian),
            "SYSTEMCTL_SKIP_SYSV=1 systemctl disable --no-reload -q nginx.service"
        );
        assert_eq!(
            step(InitSystem::Sysvinit, OsFamily::Debian),
            "update-rc.d nginx disable >/dev/null"
        );
        assert_eq!(
            step(InitSystem::Sysvinit, OsFamily::RedHat),
            "chkconfig nginx off"
        );
    }
}
