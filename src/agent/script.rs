//! Script resources (docs/protocol.md §5.1): `name::arg1::arg2` runs `/etc/ha.d/resource.d/name`,
//! else `/etc/init.d/name`, with the arguments then `start|stop|status` — and, beyond Heartbeat
//! v1, falls back to the systemd unit of that name, so plain `nginx`/`haproxy`/`apache2` work
//! on a systemd host. Every action has a timeout after which the script is killed.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

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
pub enum Provider {
    Script(PathBuf),
    SystemdUnit(String),
}

/// Why an action did not succeed. [`ScriptError::NotRunning`] is an answer (the resource is
/// stopped); every other variant means the program could not run or said nothing usable.
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
    #[error("resource {name} status: not running: {output}")]
    NotRunning { name: String, output: String },
}

/// What a `status` that ran to its end answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    Stopped,
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
    pub fn find(&self, name: &str) -> Result<Provider, ScriptError> {
        // Names come from haresources; never let one walk out of the script directories.
        let safe = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if safe {
            for dir in [&self.resource_d, &self.init_d] {
                let path = dir.join(name);
                if is_executable_file(&path) {
                    return Ok(Provider::Script(path));
                }
            }
            if self.systemd {
                return Ok(Provider::SystemdUnit(format!("{name}.service")));
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

/// How a status answer reads; `None` when it is no answer at all. A script is read by
/// Heartbeat's output rule whatever its exit code — but one killed by a signal did not answer.
/// `systemctl is-active` exits 0 for an active unit and 3 (LSB "not running") for any other,
/// unknown units included; anything else (1 when systemd cannot be asked) says nothing.
fn read_status(provider: &Provider, code: Option<i32>, output: &str) -> Option<Status> {
    let running = match (provider, code) {
        (Provider::Script(_), Some(_)) => status_says_running(output),
        (Provider::SystemdUnit(_), Some(0)) => true,
        (Provider::SystemdUnit(_), Some(3)) => false,
        _ => return None,
    };
    Some(if running {
        Status::Running
    } else {
        Status::Stopped
    })
}

/// Spawning a program fails with ETXTBSY while any process has it open for writing. Every
/// fork copies the whole descriptor table, close-on-exec descriptors included, and the child
/// only drops them when its own exec completes: a script written and closed here (or by
/// configuration management) just before it runs can still be open in a child that another
/// thread is spawning at that moment. The window is that child's exec, so a few short
/// retries outlast it; nothing has run when exec fails, so retrying is safe.
const BUSY_RETRIES: u32 = 10;
const BUSY_FIRST_DELAY: Duration = Duration::from_millis(10);
const BUSY_MAX_DELAY: Duration = Duration::from_millis(200);

async fn spawn(command: &mut Command) -> std::io::Result<Child> {
    let mut delay = BUSY_FIRST_DELAY;
    let mut retries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == ErrorKind::ExecutableFileBusy && retries < BUSY_RETRIES => {
                retries += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BUSY_MAX_DELAY);
            }
            spawned => return spawned,
        }
    }
}

/// A program that ran to its end: its exit code (none when a signal ended it) and its
/// output, stdout then stderr, trimmed.
struct Ran {
    code: Option<i32>,
    output: String,
}

/// Runs one action within `timeout` (spawn retries included); `Err` when it could not run
/// or did not finish in time (it is killed then).
async fn execute(
    provider: &Provider,
    name: &str,
    args: &[String],
    action: Action,
    timeout: Duration,
) -> Result<Ran, ScriptError> {
    let mut command = match provider {
        Provider::Script(path) => {
            let mut c = Command::new(path);
            c.args(args).arg(action.as_str());
            c
        }
        Provider::SystemdUnit(unit) => {
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
    let finished = tokio::time::timeout(timeout, async {
        spawn(&mut command).await?.wait_with_output().await
    })
    .await;
    let out = match finished {
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
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string();
    Ok(Ran {
        code: out.status.code(),
        output,
    })
}

fn failed(name: &str, action: Action, ran: &Ran) -> ScriptError {
    ScriptError::Failed {
        name: name.to_string(),
        action: action.as_str(),
        status: ran.code.unwrap_or(-1),
        output: ran.output.chars().take(500).collect(),
    }
}

/// Asks a resource whether it runs. `Err` only when that could not be learned: the program
/// could not be spawned, timed out or gave no answer — never to mean "stopped".
pub async fn status(
    provider: &Provider,
    name: &str,
    args: &[String],
    timeout: Duration,
) -> Result<Status, ScriptError> {
    let ran = execute(provider, name, args, Action::Status, timeout).await?;
    read_status(provider, ran.code, &ran.output).ok_or_else(|| failed(name, Action::Status, &ran))
}

/// Runs one action. `Ok(output)` when it succeeded (exit 0). For `Status`, success means
/// running, and a resource that answered stopped is [`ScriptError::NotRunning`]; [`status`]
/// tells the three outcomes apart without matching on errors.
pub async fn run(
    provider: &Provider,
    name: &str,
    args: &[String],
    action: Action,
    timeout: Duration,
) -> Result<String, ScriptError> {
    let ran = execute(provider, name, args, action, timeout).await?;
    let answer = match action {
        Action::Status => read_status(provider, ran.code, &ran.output),
        Action::Start | Action::Stop if ran.code == Some(0) => Some(Status::Running),
        Action::Start | Action::Stop => None,
    };
    match answer {
        Some(Status::Running) => Ok(ran.output),
        Some(Status::Stopped) => Err(ScriptError::NotRunning {
            name: name.to_string(),
            output: ran.output.chars().take(500).collect(),
        }),
        None => Err(failed(name, action, &ran)),
    }
}

/// Writing the scripts tests run. A script written by this process through `std::fs` is open
/// for writing here between its open and close, and a child that another test thread spawns
/// in that window keeps a copy of that descriptor until its exec completes — running the
/// script then fails with ETXTBSY. A child process writes it instead, so no descriptor open
/// for writing on it ever exists in this process.
#[cfg(test)]
pub(super) mod testing {
    use std::path::Path;

    /// Writes `#!/bin/sh`, `body`, mode 0755 at `path`; it is closed everywhere on return.
    pub fn write_script(path: &Path, body: &str) {
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("printf '#!/bin/sh\\n%s\\n' \"$1\" > \"$0\" && chmod 755 \"$0\"")
            .arg(path)
            .arg(body)
            .status()
            .unwrap();
        assert!(status.success(), "writing {}: {status}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) {
        testing::write_script(&dir.join(name), body);
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
            Provider::Script(l.init_d.join("web"))
        );
        script(&l.resource_d, "web", "true");
        assert_eq!(
            l.find("web").unwrap(),
            Provider::Script(l.resource_d.join("web")),
            "resource.d wins"
        );
        std::fs::write(l.init_d.join("plain"), "not executable").unwrap();
        assert!(l.find("plain").is_err());
        assert!(l.find("../init.d/web").is_err());
        let with_systemd = Lookup { systemd: true, ..l };
        assert_eq!(
            with_systemd.find("nginx").unwrap(),
            Provider::SystemdUnit("nginx.service".into())
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

    #[test]
    fn a_status_answer_is_stopped_only_when_the_program_said_so() {
        let script = Provider::Script("/x".into());
        let unit = Provider::SystemdUnit("x.service".into());
        assert_eq!(
            read_status(&script, Some(0), "running"),
            Some(Status::Running)
        );
        assert_eq!(
            read_status(&script, Some(3), "stopped"),
            Some(Status::Stopped)
        );
        assert_eq!(read_status(&script, Some(0), ""), Some(Status::Stopped));
        assert_eq!(read_status(&script, None, "running"), None, "killed");
        assert_eq!(read_status(&unit, Some(0), ""), Some(Status::Running));
        assert_eq!(read_status(&unit, Some(3), ""), Some(Status::Stopped));
        assert_eq!(
            read_status(&unit, Some(1), "Failed to connect to bus"),
            None
        );
        assert_eq!(read_status(&unit, None, ""), None);
    }

    #[tokio::test]
    async fn a_status_that_cannot_run_is_an_error_not_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let l = lookup(dir.path());
        script(&l.resource_d, "down", "echo stopped; exit 3");
        let down = l.find("down").unwrap();
        let answer = status(&down, "down", &[], Duration::from_secs(5)).await;
        assert_eq!(answer.unwrap(), Status::Stopped);
        let err = run(&down, "down", &[], Action::Status, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ScriptError::NotRunning { .. }), "{err}");

        let missing = Provider::Script(l.resource_d.join("missing"));
        let err = status(&missing, "missing", &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ScriptError::Spawn { source, .. } if source.kind() == ErrorKind::NotFound),
            "{err}"
        );

        script(&l.resource_d, "wedged", "exec sleep 30");
        let err = status(
            &l.find("wedged").unwrap(),
            "wedged",
            &[],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ScriptError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_program_busy_being_written_is_retried_then_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh");
        testing::write_script(&path, "echo running");
        let fresh = Provider::Script(path.clone());
        // While this descriptor is open, exec of the script fails with ETXTBSY — as it does
        // while a child forked elsewhere still holds a copy of the writer's descriptor.
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let began = std::time::Instant::now();
        let (answer, ()) = tokio::join!(
            status(&fresh, "fresh", &[], Duration::from_secs(5)),
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                drop(writer);
            }
        );
        assert_eq!(answer.unwrap(), Status::Running);
        assert!(began.elapsed() >= Duration::from_millis(100));

        // Busy for good: after the bounded retries it cannot run, which is not "stopped".
        let _writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let err = status(&fresh, "fresh", &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ScriptError::Spawn { source, .. } if source.kind() == ErrorKind::ExecutableFileBusy),
            "{err}"
        );
    }
}
