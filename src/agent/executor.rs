//! Carries out the resource manager's decisions on this host: a group is started left to right
//! (a resource whose status already says running is left alone, as ResourceManager does) and
//! stopped right to left; a start that fails stops what the group had started, and a stop that
//! still fails after retries leaves the group held — it is reported, never handed over blindly.
//! VIPs are built in: added with a short kernel lifetime that [`refresh_vips`] renews, and
//! announced with gratuitous ARP every time this node becomes their holder.

use std::time::Duration;

use super::script::{self, Action, Lookup, Status};
use super::vip::{Vip, VipSpec};

/// How long a VIP lives in the kernel without a refresh: a SIGKILLed agent's VIPs vanish
/// within this, so a dead node cannot keep answering for the cluster.
pub const VIP_LIFETIME: Duration = Duration::from_secs(3);
/// How often held VIPs are refreshed: several refreshes fit in one lifetime.
pub const VIP_REFRESH: Duration = Duration::from_millis(750);
/// Gratuitous ARP: request/reply pairs and their spacing (IPaddr2's defaults are 5 × 200 ms).
pub const ARP_COUNT: u32 = 5;
pub const ARP_INTERVAL: Duration = Duration::from_millis(200);
/// ResourceManager retries a failed stop (HA_STOPRETRYMAX is 10, 1 s apart; fewer here, since
/// a stuck stop blocks the hand-off).
const STOP_ATTEMPTS: u32 = 3;
const STOP_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Reverse proxies that keep no shared state and, with `net.ipv4.ip_nonlocal_bind=1`, listen
/// on a VIP before this node holds it. A group of only VIPs and these is handed over
/// make-before-break: the taker starts them and adds the VIPs (announcing itself) while the
/// giver still serves, and only then does the giver drop its VIPs and stop them. Clients never
/// find the address unanswered; for the moment between the two, both nodes answer it, which
/// two stateless proxies of one site can. An early VIP that never becomes held is not
/// refreshed, so it expires with its lifetime even if nothing removes it.
pub const LISTENERS: &[&str] = &["nginx", "haproxy", "apache2", "httpd"];

/// Whether a script resource is one of the [`LISTENERS`] (as a plain name, no arguments).
fn is_listener(name: &str, args: &[String]) -> bool {
    args.is_empty() && LISTENERS.contains(&name)
}

/// Whether a group can be handed over make-before-break on this host now.
pub fn make_before_break(steps: &[Step]) -> bool {
    let listeners_only = steps.iter().all(|s| match s {
        Step::Vip(_) => true,
        Step::Script { name, args } => is_listener(name, args),
    });
    let has_listener = steps.iter().any(|s| matches!(s, Step::Script { .. }));
    // Without nonlocal bind a listener configured for the VIP fails to start before it.
    let nonlocal_bind = std::fs::read_to_string("/proc/sys/net/ipv4/ip_nonlocal_bind")
        .is_ok_and(|v| v.trim() == "1");
    listeners_only && has_listener && nonlocal_bind
}

/// One resource of a group, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Vip(VipSpec),
    Script { name: String, args: Vec<String> },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Vip(spec) => format!("VIP {}", spec.address),
            Step::Script { name, args } if args.is_empty() => name.clone(),
            Step::Script { name, args } => format!("{name}::{}", args.join("::")),
        }
    }
}

/// Per-action time limits for script resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub start: Duration,
    pub stop: Duration,
    pub status: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            start: Duration::from_secs(60),
            stop: Duration::from_secs(60),
            status: Duration::from_secs(20),
        }
    }
}

/// What happened to one resource, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub resource: String,
    pub outcome: Result<&'static str, String>,
    pub took: Duration,
}

#[derive(Clone, Debug)]
pub struct Executor {
    pub lookup: Lookup,
    pub timeouts: Timeouts,
}

impl Executor {
    /// Runs a start or stop; `Err` when it failed or could not run.
    async fn run_script(&self, name: &str, args: &[String], action: Action) -> Result<(), String> {
        let executor = self.lookup.find(name).map_err(|e| e.to_string())?;
        let timeout = match action {
            Action::Start => self.timeouts.start,
            Action::Stop => self.timeouts.stop,
            Action::Status => self.timeouts.status,
        };
        script::run(&executor, name, args, action, timeout)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A script's status; `Err` when it could not be learned (no script, spawn failure,
    /// timeout, no answer) — which is not "stopped".
    async fn script_status(&self, name: &str, args: &[String]) -> Result<Status, String> {
        let executor = self.lookup.find(name).map_err(|e| e.to_string())?;
        script::status(&executor, name, args, self.timeouts.status)
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether the resource is running here now: `Ok(false)` when it is stopped, `Err` when
    /// its status could not be learned.
    pub async fn is_running(&self, step: &Step) -> Result<bool, String> {
        match step {
            Step::Vip(spec) => match spec.resolve().await {
                Ok(vip) => Ok(vip.is_present().await),
                // No interface carries its subnet: it cannot be configured here.
                Err(_) => Ok(false),
            },
            Step::Script { name, args } => self
                .script_status(name, args)
                .await
                .map(|s| s == Status::Running),
        }
    }

    async fn start_one(&self, step: &Step) -> Result<&'static str, String> {
        match step {
            Step::Vip(spec) => {
                let vip = spec.resolve().await.map_err(|e| e.to_string())?;
                vip.add_or_refresh(VIP_LIFETIME)
                    .await
                    .map_err(|e| e.to_string())?;
                announce_in_background(vip);
                Ok("started")
            }
            // The listeners' scripts and units treat a start of a running service as success,
            // so the status round trip (tens of milliseconds) is skipped for them.
            Step::Script { name, args } if is_listener(name, args) => {
                self.run_script(name, args, Action::Start).await?;
                Ok("started")
            }
            Step::Script { name, args } => {
                match self.script_status(name, args).await {
                    Ok(Status::Running) => return Ok("already running"),
                    Ok(Status::Stopped) => {}
                    // A status that could not run says nothing: starting anyway could start
                    // a service twice (one whose status hangs) and would hide the error.
                    Err(e) => return Err(format!("{e} (not started: its state is unknown)")),
                }
                self.run_script(name, args, Action::Start).await?;
                Ok("started")
            }
        }
    }

    async fn stop_one(&self, step: &Step) -> Result<&'static str, String> {
        let mut last = String::new();
        for attempt in 0..STOP_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(STOP_RETRY_DELAY).await;
            }
            let result = match step {
                Step::Vip(spec) => match spec.resolve().await {
                    Ok(vip) => vip.remove().await.map_err(|e| e.to_string()),
                    // No interface carries its subnet: it cannot be configured here.
                    Err(_) => Ok(()),
                },
                Step::Script { name, args } => self.run_script(name, args, Action::Stop).await,
            };
            match result {
                Ok(()) => return Ok("stopped"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts a group left to right. On a failure the resources already started are stopped
    /// again (right to left) and the group counts as not started.
    pub async fn start_group(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        for (i, step) in steps.iter().enumerate() {
            let began = std::time::Instant::now();
            let outcome = self.start_one(step).await;
            let failed = outcome.is_err();
            log.push(Event {
                resource: step.describe(),
                outcome,
                took: began.elapsed(),
            });
            if failed {
                self.stop_steps(&steps[..i], log).await;
                return false;
            }
        }
        true
    }

    /// Starts a make-before-break group's VIPs and listeners at once: the listeners bind
    /// through ip_nonlocal_bind, so neither waits for the other, and a takeover after a crash
    /// costs the slower of the two instead of their sum. On a failure both halves are stopped.
    pub async fn start_at_once(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        let (vips, scripts) = split(steps);
        let (mut vip_log, mut script_log) = (Vec::new(), Vec::new());
        let (vips_up, scripts_up) = tokio::join!(
            self.start_group(&vips, &mut vip_log),
            self.start_group(&scripts, &mut script_log)
        );
        log.extend(vip_log);
        log.extend(script_log);
        if vips_up && scripts_up {
            return true;
        }
        if scripts_up {
            self.stop_steps(&scripts, log).await;
        }
        if vips_up {
            self.stop_steps(&vips, log).await;
        }
        false
    }

    /// The taker's half of a make-before-break hand-off: the group's listeners, then — once
    /// they run — its VIPs. A group whose listeners fail gets no early VIP.
    pub async fn prestart(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        let (vips, scripts) = split(steps);
        self.start_group(&scripts, log).await && self.start_group(&vips, log).await
    }

    /// Stops only a group's VIPs, right to left; true when all are gone.
    pub async fn stop_vips(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        self.stop_steps(&split(steps).0, log).await
    }

    /// Stops only a group's scripts, right to left; true when all stopped.
    pub async fn stop_listeners(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        self.stop_steps(&split(steps).1, log).await
    }

    /// Stops a group right to left; true when every resource stopped.
    pub async fn stop_group(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        self.stop_steps(steps, log).await
    }

    async fn stop_steps(&self, steps: &[Step], log: &mut Vec<Event>) -> bool {
        let mut all = true;
        for step in steps.iter().rev() {
            let began = std::time::Instant::now();
            let outcome = self.stop_one(step).await;
            all &= outcome.is_ok();
            log.push(Event {
                resource: step.describe(),
                outcome,
                took: began.elapsed(),
            });
        }
        all
    }
}

/// A group's VIPs and its scripts, each in group order.
fn split(steps: &[Step]) -> (Vec<Step>, Vec<Step>) {
    steps
        .iter()
        .cloned()
        .partition(|s| matches!(s, Step::Vip(_)))
}

fn announce_in_background(vip: Vip) {
    tokio::spawn(async move {
        // A failed announcement only delays clients until their ARP entry expires; the VIP
        // itself is up, so this is logged and not fatal.
        if let Err(e) = vip.announce(ARP_COUNT, ARP_INTERVAL).await {
            eprintln!("<4>gratuitous ARP for {}: {e}", vip.address);
        }
    });
}

/// Renews the kernel lifetime of the held VIPs; with `announce`, also re-sends gratuitous ARP
/// (after a healed partition, when another node may have announced itself meanwhile).
pub async fn refresh_vips(specs: &[VipSpec], announce: bool) -> Vec<String> {
    let mut errors = Vec::new();
    for spec in specs {
        match spec.resolve().await {
            Ok(vip) => {
                if let Err(e) = vip.add_or_refresh(VIP_LIFETIME).await {
                    errors.push(e.to_string());
                } else if announce {
                    announce_in_background(vip);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn script(dir: &Path, name: &str, body: &str) {
        std::fs::create_dir_all(dir.join("resource.d")).unwrap();
        script::testing::write_script(&dir.join("resource.d").join(name), body);
    }

    fn executor(dir: &Path) -> Executor {
        std::fs::create_dir_all(dir.join("resource.d")).unwrap();
        std::fs::create_dir_all(dir.join("init.d")).unwrap();
        Executor {
            lookup: Lookup {
                resource_d: dir.join("resource.d"),
                init_d: dir.join("init.d"),
                systemd: false,
            },
            timeouts: Timeouts::default(),
        }
    }

    /// A resource that records its actions in `journal` and keeps its state in a file.
    fn recording(dir: &Path, name: &str, fail_start: bool) {
        let state = dir.join(format!("{name}.state"));
        let journal = dir.join("journal");
        script(
            dir,
            name,
            &format!(
                r#"echo "{name} $1" >> {journal}
case "$1" in
  start) {fail} touch {state} ;;
  stop) rm -f {state} ;;
  status) [ -e {state} ] && echo running || echo stopped ;;
esac"#,
                journal = journal.display(),
                state = state.display(),
                fail = if fail_start { "exit 1;" } else { "" },
            ),
        );
    }

    fn journal(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("journal"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn step(name: &str) -> Step {
        Step::Script {
            name: name.into(),
            args: vec![],
        }
    }

    #[tokio::test]
    async fn a_group_starts_left_to_right_and_stops_right_to_left() {
        let dir = tempfile::tempdir().unwrap();
        recording(dir.path(), "a", false);
        recording(dir.path(), "b", false);
        let ex = executor(dir.path());
        let mut log = Vec::new();
        assert!(ex.start_group(&[step("a"), step("b")], &mut log).await);
        assert!(ex.stop_group(&[step("a"), step("b")], &mut log).await);
        assert_eq!(
            journal(dir.path()),
            [
                "a status", "a start", "b status", "b start", "b stop", "a stop"
            ]
        );
    }

    #[tokio::test]
    async fn a_running_resource_is_not_started_again() {
        let dir = tempfile::tempdir().unwrap();
        recording(dir.path(), "a", false);
        std::fs::write(dir.path().join("a.state"), "").unwrap();
        let ex = executor(dir.path());
        let mut log = Vec::new();
        assert!(ex.start_group(&[step("a")], &mut log).await);
        assert_eq!(journal(dir.path()), ["a status"]);
        assert_eq!(log[0].outcome, Ok("already running"));
    }

    #[tokio::test]
    async fn listeners_start_without_a_status_round_trip_and_a_failure_stops_both_halves() {
        let dir = tempfile::tempdir().unwrap();
        recording(dir.path(), "nginx", false);
        let ex = executor(dir.path());
        let mut log = Vec::new();
        assert!(ex.start_at_once(&[step("nginx")], &mut log).await);
        assert_eq!(journal(dir.path()), ["nginx start"]);
        // A failing listener: what started of the group is stopped again.
        recording(dir.path(), "haproxy", true);
        let mut log = Vec::new();
        assert!(
            !ex.start_at_once(&[step("nginx"), step("haproxy")], &mut log)
                .await
        );
        assert_eq!(
            journal(dir.path()),
            ["nginx start", "nginx start", "haproxy start", "nginx stop"]
        );
    }

    #[tokio::test]
    async fn a_failed_start_stops_what_the_group_started() {
        let dir = tempfile::tempdir().unwrap();
        recording(dir.path(), "a", false);
        recording(dir.path(), "b", true);
        let ex = executor(dir.path());
        let mut log = Vec::new();
        assert!(!ex.start_group(&[step("a"), step("b")], &mut log).await);
        assert_eq!(
            journal(dir.path()),
            ["a status", "a start", "b status", "b start", "a stop"]
        );
        assert!(!dir.path().join("a.state").exists());
        assert!(log.iter().any(|e| e.resource == "b" && e.outcome.is_err()));
    }

    #[tokio::test]
    async fn a_stop_that_keeps_failing_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "stuck", "[ \"$1\" = stop ] && exit 1; exit 0");
        let ex = executor(dir.path());
        let mut log = Vec::new();
        assert!(!ex.stop_group(&[step("stuck")], &mut log).await);
        assert!(log[0].outcome.as_ref().unwrap_err().contains("stuck stop"));
    }

    #[tokio::test]
    async fn a_status_that_cannot_run_is_an_error_and_nothing_is_started() {
        let dir = tempfile::tempdir().unwrap();
        recording(dir.path(), "a", false);
        let journal_path = dir.path().join("journal");
        script(
            dir.path(),
            "wedged",
            &format!(
                "echo \"wedged $1\" >> {}; [ \"$1\" = status ] && exec sleep 30; exit 0",
                journal_path.display()
            ),
        );
        let mut ex = executor(dir.path());
        ex.timeouts.status = Duration::from_millis(300);
        let wedged = step("wedged");
        let err = ex.is_running(&wedged).await.unwrap_err();
        assert!(err.contains("wedged status: timed out"), "{err}");
        let mut log = Vec::new();
        assert!(!ex.start_group(&[step("a"), wedged], &mut log).await);
        assert_eq!(
            journal(dir.path()),
            [
                "wedged status",
                "a status",
                "a start",
                "wedged status",
                "a stop"
            ]
        );
        let e = log.iter().find(|e| e.resource == "wedged").unwrap();
        assert!(e.outcome.as_ref().unwrap_err().contains("not started"));
        // A stopped resource is an answer, not an error.
        assert_eq!(ex.is_running(&step("a")).await, Ok(false));
    }
}
