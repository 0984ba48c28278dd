//! The running agent, the I/O shell around the protocol core (`agent::core::Node`): it owns
//! the sockets, the timers, the processes and the control socket, feeds the core every input
//! — datagrams, its timeout, finished resource work, control requests, the shutdown signal —
//! and carries out the effects it returns: datagrams out on every medium, resource work in
//! tasks of their own (so heartbeats keep flowing while nginx takes its time to start), log
//! lines to stderr. It holds no protocol state. `run` takes already-opened media, control
//! listener and a shutdown future, so tests can drive a daemon without touching /etc or the
//! real network. The status answer is built in `status`.

mod metrics_http;
mod status;

pub use status::status_table;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

pub use super::control::Counters;
use super::control::{self, Answer, ControlAnswer, Request};
pub use super::core::ResourceCheck;
use super::core::{Config, Control, Effect, Finished, Identity, Node, Work};
use super::executor::{self, Executor, Step};
use super::media::{Inbound, Media};
use super::resources::GroupSet;
use super::vip::VipSpec;

/// Everything the daemon needs, already validated: what the protocol core runs on, and what
/// only the shell needs — how to run each group, where state lives.
#[derive(Clone, Debug)]
pub struct Settings {
    pub protocol: Config,
    /// Each group's resources in haresources order, by the index of `protocol.groups`.
    pub steps: Vec<Vec<Step>>,
    /// ha.cf `realtime`: the binary raises the daemon to SCHED_RR before it starts.
    pub realtime: bool,
    pub executor: Executor,
    /// Where the configuration was read from, and is read again on a reload.
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The digest of the configuration files as they were read at start-up
    /// (`setup::config_digest`): `status` reports it, so a changed file is "restart pending".
    pub config_digest: String,
    /// The same without ha.cf's ucast lines (`setup::shared_config_digest`): equal on every
    /// node of a healthy cluster.
    pub shared_config_digest: String,
    /// `metrics_listen` in hadeploy-agent.cf: serve `/metrics` there.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The files as parsed, for judging a reload against.
    pub loaded: super::setup::Loaded,
}

/// Logs to stderr with a syslog priority prefix (`<3>` error … `<6>` info), which journald
/// and the init script's logger both understand.
fn log(priority: u8, text: &str) {
    eprintln!("<{priority}>{text}");
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "0.00 0.00 0.00 1/1 1".into())
}

struct ControlCall {
    request: Request,
    reply: oneshot::Sender<Answer>,
}

/// The shell's own state: the core, the media it transmits on, and how it runs work.
struct Agent {
    node: Node,
    settings: Settings,
    media: Media,
    finished_tx: mpsc::Sender<Finished>,
    /// Held by every task that starts or stops resources, so they never overlap: a giver's
    /// listeners still stopping after its VIPs went must be down before it starts them again.
    resource_work: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Groups released whose listeners are still stopping after their VIPs went, for
    /// `status`: the node is not settled until they are down.
    draining: Draining,
    /// When the configuration in force was loaded (start-up or the last reload), for `status`.
    config_loaded_unix_ms: u64,
    /// Whether each configured VIP is on one of this node's interfaces, as last checked.
    vips_present: VipsPresent,
    exit: bool,
}

type Draining = std::sync::Arc<std::sync::Mutex<GroupSet>>;
type VipsPresent =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<std::net::Ipv4Addr, bool>>>;

/// Looks at the kernel's addresses once and records which configured VIPs are there. In a task
/// of its own: an `ip` call must never hold up the loop's heartbeats.
fn check_vips_present(addresses: Vec<std::net::Ipv4Addr>, present: &VipsPresent) {
    let present = present.clone();
    tokio::spawn(async move {
        let Ok(local) = super::vip::local_addresses().await else {
            return;
        };
        if let Ok(mut map) = present.lock() {
            for a in addresses {
                map.insert(a, local.iter().any(|(_, net)| net.addr == a));
            }
        }
    });
}

impl Agent {
    /// Carries out what the core asked for since the last input.
    async fn effects(&mut self) {
        for effect in self.node.take_effects() {
            match effect {
                Effect::Transmit(datagram) => {
                    self.media.send_all(&datagram).await;
                }
                Effect::Work(work) => self.work(work),
                Effect::Log { priority, text } => log(priority, &text),
                Effect::Exit => self.exit = true,
            }
        }
    }

    fn steps_of(&self, groups: &GroupSet) -> Vec<(usize, Vec<Step>)> {
        groups
            .iter()
            .map(|&g| (g, self.settings.steps[g].clone()))
            .collect()
    }

    /// The VIPs of these groups.
    fn vips_of(&self, groups: &GroupSet) -> Vec<VipSpec> {
        groups
            .iter()
            .flat_map(|&g| self.settings.steps[g].iter())
            .filter_map(|s| match s {
                Step::Vip(spec) => Some(spec.clone()),
                Step::Script { .. } => None,
            })
            .collect()
    }

    /// Starts one piece of resource work in its own task; what reports back goes through
    /// `finished_tx` to the loop.
    fn work(&mut self, work: Work) {
        let executor = self.settings.executor.clone();
        let tx = self.finished_tx.clone();
        let lock = self.resource_work.clone();
        match work {
            Work::Acquire(groups) => {
                let work = self.steps_of(&groups);
                tokio::spawn(async move {
                    let _working = lock.lock().await;
                    let started = acquire(&executor, work).await;
                    let _ = tx.send(Finished::Acquired(started)).await;
                });
            }
            Work::Release(groups) => {
                let work = self.steps_of(&groups);
                let draining = self.draining.clone();
                tokio::spawn(async move {
                    let _working = lock.lock().await;
                    release(&executor, work, &tx, &draining).await;
                });
            }
            Work::Prestart(groups) => {
                let work: Vec<(usize, Vec<Step>)> = self
                    .steps_of(&groups)
                    .into_iter()
                    .filter(|(_, steps)| executor::make_before_break(steps))
                    .collect();
                tokio::spawn(async move {
                    let _working = lock.lock().await;
                    prestart(&executor, work).await;
                    let _ = tx.send(Finished::Prestarted).await;
                });
            }
            Work::Reannounce(groups) => {
                let vips = self.vips_of(&groups);
                tokio::spawn(async move {
                    for e in executor::refresh_vips(&vips, true).await {
                        log(3, &e);
                    }
                });
            }
            Work::StopPrestarted(groups) => {
                let work = self.steps_of(&groups);
                tokio::spawn(async move {
                    let _working = lock.lock().await;
                    for (_, steps) in work.into_iter().rev() {
                        let mut events = Vec::new();
                        executor.stop_vips(&steps, &mut events).await;
                        executor.stop_listeners(&steps, &mut events).await;
                        log_events(&events);
                    }
                });
            }
            Work::Check(groups) => {
                let work = self.steps_of(&groups);
                tokio::spawn(async move {
                    let results = check(&executor, work).await;
                    let _ = tx.send(Finished::Checked(results)).await;
                });
            }
        }
    }

    fn on_control(&mut self, call: ControlCall, now: Instant) {
        let request = match call.request {
            Request::Status => {
                let _ = call.reply.send(self.status_answer(now).into());
                return;
            }
            Request::Reload => {
                let _ = call.reply.send(self.reload(now).into());
                return;
            }
            Request::Standby => Control::Standby,
            Request::Takeover => Control::Takeover,
        };
        let answer = match self.node.handle_control(now, request) {
            Ok(()) => ControlAnswer::ok().into(),
            Err(why) => ControlAnswer::refused(why).into(),
        };
        let _ = call.reply.send(answer);
    }
}

impl Agent {
    /// `hadeploy-agent reload` or SIGHUP: reads the configuration again and, when
    /// `agent::reload` finds only what can change live, hands it to the core. A file that does
    /// not load, or a change only a restart can make, is refused with the reason and the agent
    /// runs on as it was.
    fn reload(&mut self, now: Instant) -> ControlAnswer {
        let refuse = |why: String| {
            log(3, &format!("reload refused: {why}"));
            ControlAnswer::refused(why)
        };
        let new = match super::setup::load(&self.settings.config_dir, &self.settings.state_dir) {
            Ok((new, _media, warnings)) => {
                for warning in &warnings {
                    log(4, &warning.to_string());
                }
                new
            }
            Err(e) => {
                return refuse(format!(
                    "{e}; still running the configuration loaded before"
                ));
            }
        };
        let changes = match super::reload::judge(&self.settings.loaded, &new.loaded) {
            Ok(changes) => changes,
            Err(restart) => {
                return refuse(format!(
                    "only a restart can change {}; nothing was changed",
                    restart.join(", ")
                ));
            }
        };
        if let Err(why) = self.node.reconfigure(now, new.protocol.clone()) {
            return refuse(why);
        }
        self.settings = new;
        self.config_loaded_unix_ms = unix_ms();
        log(
            5,
            &if changes.is_empty() {
                "configuration reloaded: nothing the agent acts on changed".to_string()
            } else {
                format!("configuration reloaded: {}", changes.join("; "))
            },
        );
        ControlAnswer {
            changes,
            ..ControlAnswer::ok()
        }
    }
}

/// Starts groups, each left to right (make-before-break groups all at once); returns those
/// that started.
async fn acquire(executor: &Executor, work: Vec<(usize, Vec<Step>)>) -> GroupSet {
    let mut started = GroupSet::new();
    for (g, steps) in work {
        let began = Instant::now();
        let mut events = Vec::new();
        let ok = if executor::make_before_break(&steps) {
            executor.start_at_once(&steps, &mut events).await
        } else {
            executor.start_group(&steps, &mut events).await
        };
        log_events(&events);
        log(
            if ok { 6 } else { 3 },
            &format!(
                "group {g} {} in {} ms",
                if ok { "started" } else { "failed to start" },
                began.elapsed().as_millis()
            ),
        );
        if ok {
            started.insert(g);
        }
    }
    started
}

/// Stops groups, right to left. A make-before-break group's VIPs go first and it counts as
/// released then — the taker may add them at once — and its listeners stop after, unseen.
async fn release(
    executor: &Executor,
    work: Vec<(usize, Vec<Step>)>,
    tx: &mpsc::Sender<Finished>,
    draining_now: &Draining,
) {
    let mut stopped = GroupSet::new();
    let mut draining = Vec::new();
    for (g, steps) in work.into_iter().rev() {
        let mut events = Vec::new();
        if executor::make_before_break(&steps) {
            if executor.stop_vips(&steps, &mut events).await {
                stopped.insert(g);
                draining.push((g, steps));
            } else {
                log(
                    3,
                    &format!("group {g}: a VIP did not go: it stays held here"),
                );
            }
        } else if executor.stop_group(&steps, &mut events).await {
            stopped.insert(g);
        } else {
            log(3, &format!("group {g} did not stop: it stays held here"));
        }
        log_events(&events);
    }
    if let Ok(mut now) = draining_now.lock() {
        now.extend(draining.iter().map(|(g, _)| *g));
    }
    let _ = tx.send(Finished::Released(stopped)).await;
    for (g, steps) in draining {
        // A graceful stop waits for connections that came through the VIP, which can never
        // finish now; the service's own stop schedule ends them (Debian's nginx: QUIT, and a
        // kill 5 s later). Logged first so a slow one shows in the journal while it lasts.
        log(
            6,
            &format!("group {g}: its VIPs went; stopping its listeners"),
        );
        let began = Instant::now();
        let mut events = Vec::new();
        let ok = executor.stop_listeners(&steps, &mut events).await;
        if let Ok(mut now) = draining_now.lock() {
            now.remove(&g);
        }
        log_events(&events);
        log(
            if ok { 6 } else { 3 },
            &format!(
                "group {g}: listeners {} {} ms after its VIPs went",
                if ok { "stopped" } else { "failed to stop" },
                began.elapsed().as_millis()
            ),
        );
    }
}

/// Starts make-before-break groups' listeners and VIPs ahead of a hand-off. A failure here
/// only loses the head start: the acquire tries again.
async fn prestart(executor: &Executor, work: Vec<(usize, Vec<Step>)>) {
    if work.is_empty() {
        return;
    }
    let names: Vec<String> = work
        .iter()
        .filter_map(|(_, steps)| steps.first().map(Step::describe))
        .collect();
    log(
        6,
        &format!(
            "starting {} ahead of the hand-off (make-before-break)",
            names.join(", ")
        ),
    );
    for (g, steps) in work {
        let began = Instant::now();
        let mut events = Vec::new();
        let ok = executor.prestart(&steps, &mut events).await;
        log_events(&events);
        log(
            if ok { 6 } else { 4 },
            &format!(
                "group {g}: {} in {} ms, while the giver still serves",
                if ok {
                    "listeners and VIPs up"
                } else {
                    "head start failed"
                },
                began.elapsed().as_millis()
            ),
        );
    }
}

/// `resource_check`: whether every script of each group is running. A status that could not
/// be learned counts as a failed check, logged as an error rather than as "not running".
async fn check(executor: &Executor, work: Vec<(usize, Vec<Step>)>) -> Vec<(usize, bool)> {
    let mut results = Vec::new();
    for (g, steps) in work {
        let mut running = true;
        for step in steps.iter().filter(|s| matches!(s, Step::Script { .. })) {
            match executor.is_running(step).await {
                Ok(true) => {}
                Ok(false) => {
                    log(4, &format!("group {g}: {} is not running", step.describe()));
                    running = false;
                }
                Err(why) => {
                    log(3, &format!("group {g}: status check could not run: {why}"));
                    running = false;
                }
            }
        }
        results.push((g, running));
    }
    results
}

fn log_events(events: &[executor::Event]) {
    for e in events {
        match &e.outcome {
            Ok(what) => log(
                6,
                &format!("{}: {what} ({} ms)", e.resource, e.took.as_millis()),
            ),
            Err(why) => log(3, &format!("{}: {why}", e.resource)),
        }
    }
}

/// Runs the agent until `shutdown` resolves and the resources are handed over, or an
/// unrecoverable error. `media` and `inbound` come from [`Media::open`], `control` from
/// [`control::bind`]; each message on `hangups` (SIGHUP) reloads the configuration.
pub async fn run(
    settings: Settings,
    media: Media,
    mut inbound: mpsc::Receiver<Inbound>,
    control_listener: UnixListener,
    shutdown: impl Future<Output = ()>,
    mut hangups: mpsc::Receiver<()>,
) -> Result<(), super::generation::GenerationError> {
    let (generation, previous) = super::generation::bump(
        &settings.state_dir,
        &[Path::new(super::generation::HEARTBEAT_FILE)],
    )?;
    let uuid = super::generation::node_uuid(&settings.state_dir)?;
    log(
        6,
        &format!(
            "hadeploy-agent {} starting as {} (generation {generation}, {})",
            env!("CARGO_PKG_VERSION"),
            settings.protocol.node,
            match previous {
                super::generation::Previous::Found(_) => "previous generation found",
                super::generation::Previous::Missing => "no previous generation",
            }
        ),
    );
    // Nothing runs here until the negotiation says this node holds it: an agent that died may
    // have left VIPs behind, and a service may have been started by hand or at boot.
    for steps in &settings.steps {
        let mut events = Vec::new();
        settings.executor.stop_group(steps, &mut events).await;
        for e in events {
            if let Err(why) = e.outcome {
                log(4, &format!("stopping {} at start-up: {why}", e.resource));
            }
        }
    }

    let identity = Identity {
        uuid,
        generation,
        unix_ms: unix_ms(),
        seed: rand::random(),
    };
    let mut node = Node::new(settings.protocol.clone(), identity, Instant::now());
    node.set_loadavg(loadavg());
    let (finished_tx, mut finished_rx) = mpsc::channel(16);
    let mut agent = Agent {
        node,
        settings,
        media,
        finished_tx,
        resource_work: Default::default(),
        draining: Default::default(),
        config_loaded_unix_ms: unix_ms(),
        vips_present: Default::default(),
        exit: false,
    };
    agent.effects().await;

    let (control_tx, mut control_rx) = mpsc::channel::<ControlCall>(8);
    let metrics_task = match agent.settings.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                log(6, &format!("serving metrics on http://{addr}/metrics"));
                Some(tokio::spawn(metrics_http::serve(
                    listener,
                    control_tx.clone(),
                )))
            }
            // Metrics are not worth the cluster: the agent runs on without them.
            Err(e) => {
                log(
                    3,
                    &format!("metrics_listen {addr}: {e}; no metrics are served"),
                );
                None
            }
        },
        None => None,
    };
    let control_task = tokio::spawn(serve_control(control_listener, control_tx));
    // A re-created interface (a cable plugged back) must carry heartbeats again at once: until
    // the node hears its peers it cannot resolve a group both sides held while apart. An
    // index lookup per interface costs microseconds.
    let mut media_timer = tokio::time::interval(Duration::from_millis(100));
    media_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Held VIPs are refreshed on their own timer: their kernel lifetime is I/O, not protocol.
    let mut vip_timer = tokio::time::interval(executor::VIP_REFRESH);
    vip_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_seen = false;
    let mut hangups_open = true;

    while !agent.exit {
        // Never a deadline already past: a timer the core cannot act on yet (a hand-off still
        // running) must not spin this single-threaded loop and starve the resource work.
        let deadline = agent
            .node
            .poll_timeout()
            .max(Instant::now() + Duration::from_millis(1));
        // Timers before datagrams: a flood of inbound datagrams must never delay our own
        // heartbeats into a false failover.
        tokio::select! {
            biased;
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                agent.node.handle_shutdown(Instant::now());
            }
            Some(finished) = finished_rx.recv() => {
                agent.node.handle_finished(Instant::now(), finished);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                agent.node.set_loadavg(loadavg());
                agent.node.handle_timeout(Instant::now());
            }
            Some(call) = control_rx.recv() => {
                agent.on_control(call, Instant::now());
            }
            hangup = hangups.recv(), if hangups_open => match hangup {
                // The outcome is logged either way; nobody waits for an answer.
                Some(()) => drop(agent.reload(Instant::now())),
                None => hangups_open = false,
            },
            Some(datagram) = inbound.recv() => {
                agent.node.handle_datagram(Instant::now(), &datagram.link, datagram.from, &datagram.data);
            }
            _ = media_timer.tick() => {
                match agent.media.reopen_if_changed() {
                    Ok(changed) if !changed.is_empty() => log(
                        5,
                        &format!("interface {} was re-created: heartbeat sockets reopened", changed.join(", ")),
                    ),
                    Ok(_) => {}
                    Err(e) => log(3, &format!("reopening the heartbeat media: {e}")),
                }
            }
            _ = vip_timer.tick() => {
                let vips = agent.vips_of(&agent.node.resources().kept());
                if !vips.is_empty() {
                    for e in executor::refresh_vips(&vips, false).await {
                        log(3, &format!("refreshing a VIP: {e}"));
                    }
                }
                let all: GroupSet = (0..agent.settings.steps.len()).collect();
                let configured = agent.vips_of(&all).iter().map(|v| v.address).collect();
                check_vips_present(configured, &agent.vips_present);
            }
        }
        agent.effects().await;
    }
    // Listeners still stopping after their VIPs went finish before the agent exits.
    let _finished = agent.resource_work.lock().await;
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    log(6, "stopped");
    Ok(())
}

/// Accepts control connections; each request is answered by the protocol loop.
async fn serve_control(listener: UnixListener, calls: mpsc::Sender<ControlCall>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            let Some(request) = control::read_request(&mut stream).await else {
                return;
            };
            let (reply, answer) = oneshot::channel();
            if calls.send(ControlCall { request, reply }).await.is_err() {
                return;
            }
            if let Ok(json) = answer.await {
                let _ = control::answer(&mut stream, &json).await;
            }
        });
    }
}
