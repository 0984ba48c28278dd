//! From /etc/ha.d to a running agent: which node this is (`nodeinfo`, else `uname -n`,
//! lower-cased, as Heartbeat decides), the daemon's settings built from the parsed files, the
//! summary `check-config` prints, the release that runs after a crash (the unit's
//! ExecStopPost), and the signals that stop the agent gracefully.

use std::fmt::Write;
use std::path::Path;

use super::core::Config;
use super::daemon::{ResourceCheck, Settings};
use super::executor::{Executor, Step, Timeouts};
use super::membership::Timers;
use super::resources::Group;
use super::script::Lookup;
use super::vip::VipSpec;
use crate::config::ha::Medium;
use crate::config::heartbeat::haresources::{AddressAgent, Resource};
use crate::config::heartbeat::{ConfigError, HeartbeatConfig, Location, Warning, authkeys};

pub use authkeys::load as load_authkeys;

/// This node's Heartbeat name: the first line of `nodeinfo` when present, else the kernel's
/// host name; lower-cased.
pub fn node_name(config_dir: &Path) -> String {
    let from = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_ascii_lowercase()))
            .filter(|n| !n.is_empty())
    };
    from(&config_dir.join("nodeinfo"))
        .or_else(|| from(Path::new("/proc/sys/kernel/hostname")))
        .unwrap_or_default()
}

fn step(resource: &Resource) -> Step {
    match resource {
        Resource::Address {
            agent,
            ip,
            prefix,
            iface,
            broadcast,
        } => Step::Vip(VipSpec {
            address: *ip,
            prefix: *prefix,
            interface: iface.clone(),
            broadcast: *broadcast,
            alias: *agent == AddressAgent::IPaddr,
        }),
        Resource::Script { name, args } => Step::Script {
            name: name.clone(),
            args: args.clone(),
        },
    }
}

fn executor(config_dir: &Path) -> Executor {
    Executor {
        lookup: Lookup {
            resource_d: config_dir.join("resource.d"),
            ..Lookup::default()
        },
        timeouts: Timeouts::default(),
    }
}

/// Each haresources group's resources, as the shell runs them.
fn steps(config: &HeartbeatConfig) -> Vec<Vec<Step>> {
    config
        .haresources
        .groups
        .iter()
        .map(|g| g.resources.iter().map(step).collect())
        .collect()
}

/// Each group as the protocol core knows it: named by its first resource, and its home.
fn core_groups(steps: &[Vec<Step>], config: &HeartbeatConfig) -> Vec<Group> {
    steps
        .iter()
        .zip(&config.haresources.groups)
        .map(|(steps, g)| Group {
            name: steps.first().map(Step::describe).unwrap_or_default(),
            home: g.node.clone(),
        })
        .collect()
}

/// Reads the configuration and checks that this node belongs to the cluster.
fn load_checked(config_dir: &Path) -> Result<(HeartbeatConfig, String, Vec<Warning>), ConfigError> {
    let (config, warnings) = HeartbeatConfig::load(config_dir)?;
    let me = node_name(config_dir);
    if !config.hacf.nodes.contains(&me) {
        return Err(ConfigError {
            at: Location {
                file: config_dir.join("ha.cf"),
                line: 0,
            },
            message: format!(
                "this node is `{me}` (uname -n) but the node lines name {}; add `node {me}` or write the name Heartbeat should use into {}",
                config.hacf.nodes.join(", "),
                config_dir.join("nodeinfo").display()
            ),
        });
    }
    Ok((config, me, warnings))
}

/// The files in the configuration directory the agent's behaviour comes from, in the order
/// [`config_digest`] takes them.
pub const CONFIG_FILES: [&str; 4] = ["ha.cf", "haresources", "authkeys", AGENT_CF];

/// The digest of the configuration in `config_dir` (see [`crate::files::parts_digest`]); an
/// unreadable file counts as absent.
pub fn config_digest(config_dir: &Path) -> String {
    digest_over(false, |name| std::fs::read(config_dir.join(name)).ok())
}

/// The digest of what must be the same on every node of a cluster: the configuration files
/// with ha.cf's ucast lines left out. Nodes whose agents report different ones disagree.
pub fn shared_config_digest(config_dir: &Path) -> String {
    digest_over(true, |name| std::fs::read(config_dir.join(name)).ok())
}

/// The digest of the [`CONFIG_FILES`] as `read` gives them (by file name; `None` is absent),
/// ha.cf without its ucast lines when asked. The agent reads its directory; the controller
/// passes what its probe read, so both compute the digest the same way.
pub fn digest_over(without_ucast: bool, read: impl Fn(&str) -> Option<Vec<u8>>) -> String {
    let contents: Vec<Option<Vec<u8>>> = CONFIG_FILES
        .iter()
        .map(|name| match read(name) {
            Some(b) if without_ucast && *name == "ha.cf" => {
                Some(crate::config::heartbeat::hacf::without_ucast(&b))
            }
            other => other,
        })
        .collect();
    crate::files::parts_digest(
        CONFIG_FILES
            .iter()
            .zip(&contents)
            .map(|(name, c)| (*name, c.as_deref())),
    )
}

/// The configuration as read from the files: what the daemon's settings are built from, and
/// what a reload is judged on (`agent::reload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub heartbeat: HeartbeatConfig,
    pub agent: AgentSettings,
}

/// The daemon's settings and media from `config_dir`.
pub fn load(
    config_dir: &Path,
    state_dir: &Path,
) -> Result<(Settings, Vec<Medium>, Vec<Warning>), ConfigError> {
    // Read before the files are parsed: an edit in between then shows as "restart pending",
    // never as loaded when it was not.
    let config_digest = config_digest(config_dir);
    let shared_config_digest = shared_config_digest(config_dir);
    let (config, me, warnings) = load_checked(config_dir)?;
    let agent = agent_settings(config_dir)?;
    let hacf = &config.hacf;
    let steps = steps(&config);
    let protocol = Config {
        node: me,
        nodes: hacf.nodes.clone(),
        timers: Timers {
            keepalive: hacf.keepalive.as_std(),
            warntime: hacf.warntime.as_std(),
            deadtime: hacf.deadtime.as_std(),
            initdead: hacf.initdead.as_std(),
        },
        keys: config.authkeys.clone(),
        msgfmt: hacf.msgfmt,
        hopfudge: u32::from(hacf.hopfudge),
        resource_check: agent.resource_check,
        groups: core_groups(&steps, &config),
        failback: hacf.auto_failback,
    };
    let media = hacf.media.clone();
    let settings = Settings {
        protocol,
        steps,
        realtime: hacf.realtime,
        executor: executor(config_dir),
        config_dir: config_dir.to_path_buf(),
        state_dir: state_dir.to_path_buf(),
        config_digest,
        shared_config_digest,
        metrics_listen: agent.metrics_listen,
        loaded: Loaded {
            heartbeat: config,
            agent,
        },
    };
    Ok((settings, media, warnings))
}

/// Agent-only settings live in their own file, so the ha.cf a real Heartbeat node reads
/// stays one it accepts (it refuses unknown directives).
pub const AGENT_CF: &str = "hadeploy-agent.cf";

/// Reads `hadeploy-agent.cf` when present:
///
/// ```text
/// resource_check 2            # poll held resources' status every 2 s (500ms, 0 = off)
/// resource_check_failures 3   # failed checks in a row before the group moves
/// metrics_listen 127.0.0.1:9717  # serve /metrics over HTTP (off unless set)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSettings {
    pub resource_check: Option<ResourceCheck>,
    pub metrics_listen: Option<std::net::SocketAddr>,
}

pub fn agent_settings(config_dir: &Path) -> Result<AgentSettings, ConfigError> {
    let path = config_dir.join(AGENT_CF);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_agent_settings(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentSettings::default()),
        Err(e) => Err(ConfigError {
            at: Location {
                file: path,
                line: 0,
            },
            message: format!("cannot read it: {e}"),
        }),
    }
}

/// `hadeploy-agent.cf`'s text, as [`agent_settings`] reads it from `path`.
pub fn parse_agent_settings(text: &str, path: &Path) -> Result<AgentSettings, ConfigError> {
    let mut interval = None;
    let mut failures = 3;
    let mut metrics_listen = None;
    for (index, raw) in text.lines().enumerate() {
        let err = |message: String| ConfigError {
            at: Location {
                file: path.to_path_buf(),
                line: index + 1,
            },
            message,
        };
        let line = raw.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let (Some(key), value, None) = (words.next(), words.next(), words.next()) else {
            if line.is_empty() {
                continue;
            }
            return Err(err(format!("`{line}`: expected `KEY VALUE`")));
        };
        let value = value.ok_or_else(|| err(format!("`{key}` needs a value")))?;
        match key {
            "resource_check" => {
                let d = crate::config::ha::duration::HbDuration::parse(value)
                    .map_err(|e| err(format!("resource_check `{value}`: {e}")))?
                    .as_std();
                if !d.is_zero() && d < std::time::Duration::from_millis(100) {
                    return Err(err(format!(
                        "resource_check `{value}`: at least 100ms (or 0 for off)"
                    )));
                }
                interval = (!d.is_zero()).then_some(d);
            }
            "resource_check_failures" => {
                failures = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        err(format!("resource_check_failures `{value}`: a number 1-100"))
                    })?;
            }
            "metrics_listen" => {
                metrics_listen = Some(value.parse().map_err(|_| {
                    err(format!(
                        "metrics_listen `{value}`: an ADDRESS:PORT such as 127.0.0.1:9717"
                    ))
                })?);
            }
            other => return Err(err(format!("unknown setting `{other}`"))),
        }
    }
    Ok(AgentSettings {
        resource_check: interval.map(|interval| ResourceCheck { interval, failures }),
        metrics_listen,
    })
}

/// Raises this thread — the agent's only one — to SCHED_RR, as Heartbeat does with `realtime
/// on`: heartbeats then go out on time with every CPU busy. SCHED_RESET_ON_FORK puts the
/// scripts and services it starts back to normal scheduling.
pub fn make_realtime() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler reads `param` only during the call; 0 names this thread.
    let rc =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn millis(d: crate::config::ha::duration::HbDuration) -> String {
    format!("{} ms", d.as_millis())
}

/// `check-config`: the configuration as the agent understands it — never the keys.
pub fn check(config_dir: &Path) -> Result<(String, Vec<Warning>), ConfigError> {
    let (config, me, warnings) = load_checked(config_dir)?;
    let hacf = &config.hacf;
    let mut out = String::new();
    let _ = writeln!(out, "node      {me} (one of {})", hacf.nodes.join(", "));
    for medium in &hacf.media {
        let _ = match medium {
            Medium::Ucast { iface, peer, port } => {
                writeln!(out, "medium    ucast {iface} → {peer}:{port}")
            }
            Medium::Bcast { iface, port } => writeln!(out, "medium    bcast {iface} port {port}"),
            Medium::Mcast {
                iface,
                group,
                port,
                ttl,
                loopback,
            } => writeln!(
                out,
                "medium    mcast {iface} {group}:{port} ttl {ttl} loop {}",
                u8::from(*loopback)
            ),
        };
    }
    let _ = writeln!(
        out,
        "timers    keepalive {}, warntime {}, deadtime {}, initdead {}",
        millis(hacf.keepalive),
        millis(hacf.warntime),
        millis(hacf.deadtime),
        millis(hacf.initdead)
    );
    let _ = writeln!(out, "failback  {:?}", hacf.auto_failback);
    let agent = agent_settings(config_dir)?;
    let _ = match agent.resource_check {
        Some(c) => writeln!(
            out,
            "checks    resource status every {} ms, {} failures move a group",
            c.interval.as_millis(),
            c.failures
        ),
        None => writeln!(out, "checks    off (no resource_check in {AGENT_CF})"),
    };
    if let Some(addr) = agent.metrics_listen {
        let _ = writeln!(out, "metrics   http://{addr}/metrics");
    }
    let active = config.authkeys.active_key();
    let _ = writeln!(
        out,
        "auth      key {} ({}), {} key(s) accepted",
        active.index,
        active.method.name(),
        config.authkeys.keys.len()
    );
    for group in &config.haresources.groups {
        let _ = writeln!(
            out,
            "group     {} prefers {}: {}",
            group.name(),
            group.node,
            group.texts.join(" ")
        );
    }
    Ok((out, warnings))
}

/// After a crash: stops, right to left, every group whose VIP is still configured here. A
/// graceful stop has already released everything, so then this finds nothing to do.
pub async fn release(config_dir: &Path) -> Result<Vec<String>, ConfigError> {
    let (config, _) = HeartbeatConfig::load(config_dir)?;
    let executor = executor(config_dir);
    let mut report = Vec::new();
    for (group, steps) in config.haresources.groups.iter().zip(steps(&config)) {
        let mut held = false;
        for s in &steps {
            if let Step::Vip(vip) = s
                && let Ok(resolved) = vip.resolve().await
                && resolved.is_present().await
            {
                held = true;
            }
        }
        if !held {
            continue;
        }
        let mut events = Vec::new();
        let stopped = executor.stop_group(&steps, &mut events).await;
        report.push(format!(
            "released {}{}",
            group.name(),
            if stopped {
                ""
            } else {
                " (some resources did not stop)"
            }
        ));
        for e in events {
            if let Err(why) = e.outcome {
                report.push(format!("  {}: {why}", e.resource));
            }
        }
    }
    Ok(report)
}

/// A message for every SIGHUP, as Heartbeat's init script `reload` sends it: the daemon reads
/// its configuration again. Call inside the runtime. Without a handler the channel closes and
/// SIGHUP keeps its default effect.
pub fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    if let Ok(mut hup) = signal(SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                // A reload already queued covers this one too.
                let _ = tx.try_send(());
            }
        });
    }
    rx
}

/// Resolves on SIGTERM or SIGINT: both mean "hand over and stop".
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the agent can only be killed; never resolve.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_settings_are_optional_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            agent_settings(dir.path()).unwrap(),
            AgentSettings::default()
        );
        let cf = dir.path().join(AGENT_CF);
        std::fs::write(
            &cf,
            "# polling\nresource_check 500ms\n\nresource_check_failures 2 # quick\n",
        )
        .unwrap();
        assert_eq!(
            agent_settings(dir.path()).unwrap().resource_check,
            Some(ResourceCheck {
                interval: std::time::Duration::from_millis(500),
                failures: 2
            })
        );
        std::fs::write(&cf, "resource_check 0\nmetrics_listen 127.0.0.1:9717\n").unwrap();
        assert_eq!(
            agent_settings(dir.path()).unwrap(),
            AgentSettings {
                resource_check: None,
                metrics_listen: Some("127.0.0.1:9717".parse().unwrap()),
            }
        );
        for (text, line, what) in [
            ("resource_check 2\nresource_check_failures 0\n", 2, "1-100"),
            ("resource_check 10ms\n", 1, "at least 100ms"),
            ("resource_check 2s\n", 1, "resource_check `2s`"),
            (
                "resource_checks 2\n",
                1,
                "unknown setting `resource_checks`",
            ),
            ("resource_check\n", 1, "needs a value"),
            ("metrics_listen localhost\n", 1, "ADDRESS:PORT"),
        ] {
            std::fs::write(&cf, text).unwrap();
            let e = agent_settings(dir.path()).unwrap_err();
            assert_eq!(e.at.line, line, "{text}");
            assert!(e.message.contains(what), "{text}: {}", e.message);
        }
    }
}
