//! Script resources (PROTOCOL.md §5.1): `name::arg1::arg2` runs `/etc/ha.d/resource.d/name`,
//! else `/etc/init.d/name`, with the arguments then `start|stop|status` — and, beyond Heartbeat
//! v1, falls back to the systemd unit of that name, so plain `nginx`/`haproxy`/`apache2` work
//! on a systemd host. Every action has a timeout after which the script is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Status,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Status => "status",
        }
    }
}

/// How a resource name is carried out on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executor {
    Script(PathBuf),
    SystemdUnit(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("resource {name}: no script in {} or {} and no systemd unit of that name", .dirs[0].display(), .dirs[1].display())]
    NotFound { name: String, dirs: [PathBuf; 2] },
    #[error("resource {name} {action}: timed out after {timeout:?} (killed)")]
    Timeout {
        name: String,
        action: &'static str,
        timeout: Duration,
    },
    #[error("resource {name} {action}: exit {status}: {output}")]
    Failed {
        name: String,
        action: &'static str,
        status: i32,
        output: String,
    },
    #[error("resource {name} {action}: cannot run: {source}")]
    Spawn {
        name: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Where scripts are looked up; tests point these at a temporary directory.
#[derive(Clone, Debug)]
pub struct Lookup {
    pub resource_d: PathBuf,
    pub init_d: PathBuf,
    /// Whether to fall back to systemd units (true when PID 1 is systemd).
    pub systemd: bool,
}

impl Default for Lookup {
    fn default() -> Self {
        Self {
            resource_d: "/etc/ha.d/resource.d".into(),
            init_d: "/etc/init.d".into(),
            systemd: Path::new("/run/systemd/system").is_dir(),
        }
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Lookup {
    pub fn find(&self, name: &str) -> Result<Executor, ScriptError> {
        // Names come from haresources; never let one walk out of the script directories.
        let safe = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if safe {
            for dir in [&self.resource_d, &self.init_d] {
                let path = dir.join(name);
                if is_executable_file(&path) {
                    return Ok(Executor::Script(path));
                }
            }
            if self.systemd {
                return Ok(Executor::SystemdUnit(format!("{name}.service")));
            }
        }
        Err(ScriptError::NotFound {
            name: name.to_string(),
            dirs: [self.resource_d.clone(), self.init_d.clone()],
        })
    }
}

/// Heartbeat's reading of a `status` answer: running when the output says `running` or `OK`
/// and not `not running` (ResourceManager's rule; exit codes of old scripts are unreliable).
pub fn status_says_running(output: &str) -> bool {
    let lower = output.to_lowercase();
    (lower.contains("running") && !lower.contains("not running") && !lower.contains("stopped"))
        || output.contains("OK")
}

/// Runs one action. `Ok(output)` when it succeeded; for `Status`, success means running.
pub async fn run(
    executor: &Executor,
    name: &str,
    args: &[String],
    action: Action,
    timeout: Duration,
) -> Result<String, ScriptError> {
    let mut command = match executor {
        Executor::Script(path) => {
            let mut c = Command::new(path);
            c.args(args).arg(action.as_str());
            c
        }
        Executor::SystemdUnit(unit) => {
            let mut c = Command::new("systemctl");
            match action {
                Action::Status => c.args(["is-active", "--quiet", unit.as_str()]),
                other => c.args([other.as_str(), unit.as_str()]),
            };
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|source| ScriptError::Spawn {
        name: name.to_string(),
        action: action.as_str(),
        source,
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|source| ScriptError::Spawn {
            name: name.to_string(),
            action: action.as_str(),
            source,
        })?,
        Err(_) => {
            return Err(ScriptError::Timeout {
                name: name.to_string(),
                action: action.as_str(),
                timeout,
            });
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string();
    let ok = match (action, executor) {
        (Action::Status, Executor::Script(_)) => status_says_running(&text),
        _ => out.status.success(),
    };
    if ok {
        Ok(text)
    } else {
        Err(ScriptError::Failed {
            name: name.to_string(),
            action: action.as_str(),
            status: out.status.code().unwrap_or(-1),
            output: text.chars().take(500).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn lookup(dir: &Path) -> Lookup {
        std::fs::create_dir_all(dir.join("resource.d")).unwrap();
        std::fs::create_dir_all(dir.join("init.d")).unwrap();
        Lookup {
            resource_d: dir.join("resource.d"),
            init_d: dir.join("init.d"),
            systemd: false,
        }
    }

    #[test]
    fn lookup_order_and_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let l = lookup(dir.path());
        script(&l.init_d, "web", "true");
        assert_eq!(
            l.find("web").unwrap(),
            Executor::Script(l.init_d.join("web"))
        );
        script(&l.resource_d, "web", "true");
        assert_eq!(
            l.find("web").unwrap(),
            Executor::Script(l.resource_d.join("web")),
            "resource.d wins"
        );
        std::fs::write(l.init_d.join("plain"), "not executable").unwrap();
        assert!(l.find("plain").is_err());
        assert!(l.find("../init.d/web").is_err());
        let with_systemd = Lookup { systemd: true, ..l };
        assert_eq!(
            with_systemd.find("nginx").unwrap(),
            Executor::SystemdUnit("nginx.service".into())
        );
    }

    #[test]
    fn status_rule_matches_resource_manager() {
        assert!(status_says_running("nginx is running."));
        assert!(status_says_running("OK"));
        assert!(!status_says_running("nginx is not running"));
        assert!(!status_says_running("stopped"));
        assert!(!status_says_running(""));
    }

    #[tokio::test]
    async fn arguments_actions_failures_and_timeouts() {
        let dir = tempfile::tempdir().unwrap();
        let l = lookup(dir.path());
        let log = dir.path().join("log");
        script(
            &l.resource_d,
            "Filesystem",
            &format!(
                "echo \"$@\" >> {}; [ \"$4\" = status ] && echo running; exit 0",
                log.display()
            ),
        );
        let exec = l.find("Filesystem").unwrap();
        let args: Vec<String> = ["/dev/sdb1", "/data", "ext4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        run(
            &exec,
            "Filesystem",
            &args,
            Action::Start,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        run(
            &exec,
            "Filesystem",
            &args,
            Action::Status,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "/dev/sdb1 /data ext4 start\n/dev/sdb1 /data ext4 status\n"
        );

        script(&l.resource_d, "broken", "echo cannot bind >&2; exit 7");
        let err = run(
            &l.find("broken").unwrap(),
            "broken",
            &[],
            Action::Stop,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "resource broken stop: exit 7: cannot bind");

        script(&l.resource_d, "hang", "sleep 30");
        let started = std::time::Instant::now();
        let err = run(
            &l.find("hang").unwrap(),
            "hang",
            &[],
            Action::Start,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ScriptError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
