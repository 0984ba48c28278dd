//! Runs a drill against a live cluster: connects to every node, refuses a degraded cluster
//! (unless forced), then — while a client probes the VIP every 10 ms and a watcher records
//! which nodes hold it — carries out the steps, checking each expectation against its budget.
//! Everything a step changed goes on an undo stack that is unwound on success, on a failed
//! step, on an error and on Ctrl-C, so a drill always leaves the cluster as it found it.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::audit::{logged_errors, settled_audit};
pub use super::error::DrillError;
use super::nodes::{self, Node, observe, run_on, wait_back};
use super::plan::{self, Mode, Step};
use super::pull::pull_script;
use super::report::{self, Event, Holders, Probe, Report, StepOutcome};
use super::sampling::{Cadence, PROBE_INTERVAL, PROBE_TIMEOUT, WATCH_INTERVAL, ms};
use crate::agent::control::StatusAnswer;
use crate::config::inventory::Cluster;
use crate::transport::Transport;
use crate::transport::ssh::SshOptions;

pub struct Options {
    pub ssh: SshOptions,
    pub force: bool,
    /// Probe with a TCP connect to this port instead of HTTP on port 80.
    pub tcp_port: Option<u16>,
}

/// What the probe and the watcher have seen so far, shared with the step loop.
#[derive(Default)]
struct Seen {
    probes: Vec<Probe>,
    holders: Vec<Holders>,
    /// (when, which node, the peer it has declared dead) from each status poll.
    dead_views: Vec<(u64, String, String)>,
}

/// What the steps did so far, carried on to the unwinding and the report.
#[derive(Default)]
struct Record {
    outcomes: Vec<StepOutcome>,
    events: Vec<Event>,
    /// (node, how it was pulled, the command that restores it), newest last.
    undo: Vec<(String, Mode, String)>,
}

/// The nodes' names: an answer through the VIP that carries one tells who served it.
fn names(nodes: &[Arc<Node>]) -> Vec<String> {
    nodes.iter().map(|n| n.name.clone()).collect()
}

async fn probe_once(
    vip: Ipv4Addr,
    tcp_port: Option<u16>,
    names: &[String],
) -> (bool, Option<String>) {
    let port = tcp_port.unwrap_or(80);
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((vip, port)).await.ok()?;
        if tcp_port.is_some() {
            return Some(String::new());
        }
        stream
            .write_all(format!("GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await.ok()?;
        let text = String::from_utf8_lossy(&body).into_owned();
        text.starts_with("HTTP/").then_some(text)
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Some(body)) => (
            true,
            names.iter().find(|n| body.contains(n.as_str())).cloned(),
        ),
        _ => (false, None),
    }
}

/// Checks that the cluster is worth drilling: every agent answers and sees every peer active,
/// the VIP is on exactly one node, and the service answers through it.
async fn preflight(
    nodes: &[Arc<Node>],
    vip: Ipv4Addr,
    tcp_port: Option<u16>,
    names: &[String],
) -> Result<String, DrillError> {
    let mut problems = Vec::new();
    for node in nodes {
        match node
            .transport
            .read()
            .await
            .run("hadeploy-agent status --json", None)
            .await
        {
            Ok(out) if out.success() => {
                let status = StatusAnswer::from_json(&out.stdout_text()).unwrap_or_default();
                for peer in &status.nodes {
                    if peer.status != "active" {
                        problems.push(format!(
                            "{} sees {} as {}",
                            node.name, peer.name, peer.status
                        ));
                    }
                }
            }
            _ => problems.push(format!("the agent on {} does not answer", node.name)),
        }
    }
    let (holders, _) = observe(nodes, vip).await;
    if holders.len() > 1 {
        return Err(DrillError::Split(format!(
            "the VIP {vip} is on {} nodes at once: {}",
            holders.len(),
            holders.join(", ")
        )));
    }
    if holders.is_empty() {
        problems.push(format!("the VIP {vip} is on no node"));
    }
    let (ok, _) = probe_once(vip, tcp_port, names).await;
    if !ok {
        problems.push(format!("nothing answers through {vip}"));
    }
    match holders.into_iter().next() {
        Some(holder) if problems.is_empty() => Ok(holder),
        _ => Err(DrillError::Unhealthy(problems.join("; "))),
    }
}

/// The step list for `--pull`, `--scenario` or `--script`, validated. Needs the live holder.
pub enum What {
    Pull { node: String, mode: Mode },
    Scenario(String),
    Script(Vec<Step>),
}

pub fn steps_for(
    what: &What,
    cluster: &Cluster,
    holder: &str,
) -> Result<(String, Vec<Step>), DrillError> {
    let ctx = plan::Context {
        cluster,
        holder: holder.to_string(),
    };
    let (name, steps) = match what {
        What::Pull { node, mode } => (
            format!("pull {node} ({})", mode.as_str()),
            ctx.pull_and_restore(node, *mode),
        ),
        What::Scenario(name) => (name.clone(), ctx.scenario(name)?),
        What::Script(steps) => ("script".to_string(), steps.clone()),
    };
    plan::validate(&steps, cluster)?;
    Ok((name, steps))
}

/// Finds the node holding the VIP without changing anything (for `--dry-run`).
pub async fn holder(cluster: &Cluster, ssh: &SshOptions) -> Result<String, DrillError> {
    let nodes = nodes::connect(cluster, ssh).await?;
    let vip = cluster.vips[0].address;
    let (holders, _) = observe(&nodes, vip).await;
    holders
        .into_iter()
        .next()
        .ok_or_else(|| DrillError::Unhealthy(format!("no node holds the VIP {vip}")))
}

/// Runs the drill `what` on `cluster`, phase by phase: connect and check the cluster, start the
/// recorders, carry out the steps (until Ctrl-C), unwind what they changed, stop the
/// recorders, read the agents' error logs, and put it all into the report.
pub async fn run(cluster: &Cluster, what: &What, options: &Options) -> Result<Report, DrillError> {
    let (nodes, holder) = connect_and_preflight(cluster, options).await?;
    let (drill, steps) = steps_for(what, cluster, &holder)?;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let start = Instant::now();
    let vip = cluster.vips[0].address;
    let recorders = Recorders::start(&nodes, vip, options.tcp_port, start);
    let mut record = Record::default();
    let interrupted = run_steps_until_ctrl_c(
        &steps,
        cluster,
        &options.ssh,
        &nodes,
        &recorders.seen,
        start,
        &mut record,
    )
    .await;
    unwind(cluster, &options.ssh, &nodes, start, &mut record).await;
    // Let the failback settle in the record before stopping the probes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = recorders.stop().await;
    let logged = logged_errors(&nodes, since_unix, start).await;
    record.outcomes.extend(logged);
    build_report(cluster, drill, record, &seen, interrupted, start).await
}

/// Connects to every node and finds the VIP's holder, refusing a cluster not fit to drill
/// unless forced; forced, the holder is the first node seen with the VIP, or else the first
/// node. A split cluster (the VIP on two nodes) is refused even when forced: pulling a node
/// out of it measures nothing and may leave clients on the wrong half.
async fn connect_and_preflight(
    cluster: &Cluster,
    options: &Options,
) -> Result<(Vec<Arc<Node>>, String), DrillError> {
    let nodes = nodes::connect(cluster, &options.ssh).await?;
    let vip = cluster.vips[0].address;
    let names = names(&nodes);
    let holder = match preflight(&nodes, vip, options.tcp_port, &names).await {
        Ok(holder) => holder,
        Err(why @ DrillError::Split(_)) => return Err(why),
        Err(why) if !options.force => return Err(why),
        Err(_) => observe(&nodes, vip)
            .await
            .0
            .into_iter()
            .next()
            .unwrap_or_else(|| names[0].clone()),
    };
    Ok((nodes, holder))
}

/// The client probing the VIP and the watcher of the VIP's holders: two tasks that run beside
/// the steps and write what they see into `seen`.
struct Recorders {
    seen: Arc<Mutex<Seen>>,
    stop: watch::Sender<bool>,
    prober: JoinHandle<()>,
    watcher: JoinHandle<()>,
}

impl Recorders {
    fn start(nodes: &[Arc<Node>], vip: Ipv4Addr, tcp_port: Option<u16>, start: Instant) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        // A watch channel, not a Notify: a task busy probing when the drill ends must still see
        // the stop on its next turn.
        let (stop, stopped) = watch::channel(false);
        let prober = tokio::spawn(probe_vip(
            seen.clone(),
            stopped.clone(),
            names(nodes),
            vip,
            tcp_port,
            start,
        ));
        let watcher = tokio::spawn(watch_holders(
            seen.clone(),
            stopped,
            nodes.to_vec(),
            vip,
            start,
        ));
        Recorders {
            seen,
            stop,
            prober,
            watcher,
        }
    }

    /// Stops both tasks and waits for them. Probes they started may still be in flight.
    async fn stop(self) -> Arc<Mutex<Seen>> {
        let _ = self.stop.send(true);
        let _ = self.prober.await;
        let _ = self.watcher.await;
        self.seen
    }
}

/// Probes the VIP every `PROBE_INTERVAL` until stopped.
async fn probe_vip(
    seen: Arc<Mutex<Seen>>,
    stop: watch::Receiver<bool>,
    names: Vec<String>,
    vip: Ipv4Addr,
    tcp_port: Option<u16>,
    start: Instant,
) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        (PROBE_TIMEOUT.as_millis() / PROBE_INTERVAL.as_millis()) as usize + 2,
    ));
    let mut cadence = Cadence::new(PROBE_INTERVAL, stop);
    while cadence.next().await {
        // Each probe runs on its own, so one waiting out its timeout (nobody holds
        // the VIP) does not delay the next: the cadence stays 10 ms.
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            continue;
        };
        let (seen, names) = (seen.clone(), names.clone());
        tokio::spawn(async move {
            let at_ms = ms(start);
            let (ok, answered_by) = probe_once(vip, tcp_port, &names).await;
            if let Ok(mut s) = seen.lock() {
                s.probes.push(Probe {
                    at_ms,
                    answered_by,
                    ok,
                });
            }
            drop(permit);
        });
    }
}

/// Asks every node which addresses it has, every `WATCH_INTERVAL` until stopped.
async fn watch_holders(
    seen: Arc<Mutex<Seen>>,
    stop: watch::Receiver<bool>,
    nodes: Vec<Arc<Node>>,
    vip: Ipv4Addr,
    start: Instant,
) {
    let mut cadence = Cadence::new(WATCH_INTERVAL, stop);
    while cadence.next().await {
        let at_ms = ms(start);
        let (holders, dead) = observe(&nodes, vip).await;
        if let Ok(mut s) = seen.lock() {
            s.holders.push(Holders {
                at_ms,
                nodes: holders,
            });
            for (by, who) in dead {
                s.dead_views.push((at_ms, by, who));
            }
        }
    }
}

/// Carries out the steps until they end or one fails, or until Ctrl-C abandons the step under
/// way; returns what cut them short, for the report.
async fn run_steps_until_ctrl_c(
    steps: &[Step],
    cluster: &Cluster,
    ssh: &SshOptions,
    nodes: &[Arc<Node>],
    seen: &Mutex<Seen>,
    start: Instant,
    record: &mut Record,
) -> Option<DrillError> {
    tokio::select! {
        result = run_steps(steps, cluster, ssh, nodes, seen, start, record) => result.err(),
        _ = tokio::signal::ctrl_c() => Some(DrillError::Interrupted),
    }
}

/// Always restores what the drill changed, newest first, whatever ended the steps. Best
/// effort: a restore that fails does not keep the others from running.
async fn unwind(
    cluster: &Cluster,
    ssh: &SshOptions,
    nodes: &[Arc<Node>],
    start: Instant,
    record: &mut Record,
) {
    while let Some((node, mode, script)) = record.undo.pop() {
        record.events.push(Event {
            at_ms: ms(start),
            what: format!("undo: restore {node} ({})", mode.as_str()),
        });
        if let Some(n) = nodes.iter().find(|n| n.name == node) {
            if mode == Mode::Reboot {
                let _ = wait_back(cluster, ssh, n).await;
            } else if !script.is_empty() {
                let _ = run_on(n, &script).await;
            }
        }
    }
}

/// Waits out the probes still in flight, then puts the outcomes and what the recorders saw
/// into the report: the timeline, the outage, the time two nodes held the VIP, the verdict.
async fn build_report(
    cluster: &Cluster,
    drill: String,
    mut record: Record,
    seen: &Mutex<Seen>,
    interrupted: Option<DrillError>,
    start: Instant,
) -> Result<Report, DrillError> {
    // Probes still in flight finish within their timeout.
    tokio::time::sleep(PROBE_TIMEOUT).await;
    let (mut probes, holders, dead_views) = {
        let s = seen
            .lock()
            .map_err(|_| DrillError::Recorder("a probe task panicked"))?;
        (s.probes.clone(), s.holders.clone(), s.dead_views.clone())
    };
    probes.sort_by_key(|p| p.at_ms);
    report::timeline(&mut record.events, &probes, &holders, &dead_views);
    if let Some(e) = interrupted {
        record.outcomes.push(StepOutcome {
            step: "drill".into(),
            started_ms: ms(start),
            took_ms: 0,
            budget_ms: None,
            passed: false,
            detail: e.to_string(),
        });
    }
    let passed = record.outcomes.iter().all(|o| o.passed);
    Ok(Report {
        cluster: cluster.name.clone(),
        vip: cluster.vips[0].address.to_string(),
        drill,
        passed,
        steps: record.outcomes,
        outage: report::outage(&probes),
        both_held_ms: report::both_held(&holders),
        events: record.events,
        probes,
        holders,
    })
}

/// Carries out the steps in order up to the first that fails; each expectation that the VIP
/// moved is followed by an audit of the settled cluster, which can fail the drill too.
async fn run_steps(
    steps: &[Step],
    cluster: &Cluster,
    ssh: &SshOptions,
    nodes: &[Arc<Node>],
    seen: &Mutex<Seen>,
    start: Instant,
    record: &mut Record,
) -> Result<(), DrillError> {
    // Whichever pull happened last sets the budget of the expectations after it.
    let mut last_pull: Option<Mode> = None;
    let node_of = |name: &str| nodes.iter().find(|n| n.name == name).cloned();
    for step in steps {
        let began = ms(start);
        let mut outcome = StepOutcome {
            step: step.describe(),
            started_ms: began,
            took_ms: 0,
            budget_ms: None,
            passed: true,
            detail: String::new(),
        };
        match step {
            Step::Pull { node, mode } => {
                let n = node_of(node).ok_or_else(|| DrillError::Node {
                    node: node.clone(),
                    message: "not connected".into(),
                })?;
                let (pull, restore) = pull_script(*mode, cluster);
                record.events.push(Event {
                    at_ms: began,
                    what: format!("pull {node} ({}) issued", mode.as_str()),
                });
                record.undo.push((node.clone(), *mode, restore));
                if let Err(e) = run_on(&n, &pull).await {
                    outcome.passed = false;
                    outcome.detail = e.to_string();
                }
                last_pull = Some(*mode);
            }
            Step::Restore { node } => {
                record.events.push(Event {
                    at_ms: began,
                    what: format!("restore {node} issued"),
                });
                if let Some(pos) = record.undo.iter().rposition(|(n, _, _)| n == node) {
                    let (_, mode, script) = record.undo.remove(pos);
                    if mode == Mode::Reboot
                        && let Some(n) = node_of(node)
                        && let Err(e) = wait_back(cluster, ssh, &n).await
                    {
                        outcome.passed = false;
                        outcome.detail = e.to_string();
                    }
                    if let Some(n) = node_of(node)
                        && !script.is_empty()
                        && let Err(e) = run_on(&n, &script).await
                    {
                        outcome.passed = false;
                        outcome.detail = e.to_string();
                    }
                    last_pull = Some(mode);
                }
            }
            Step::ExpectVipOn { node } => {
                let budget = plan::budget(cluster, last_pull);
                outcome.budget_ms = Some(budget.as_millis() as u64);
                let after = began;
                let deadline = Instant::now() + budget;
                loop {
                    let now_holders = seen.lock().ok().and_then(|s| {
                        s.holders
                            .iter()
                            .rev()
                            .find(|h| h.at_ms >= after)
                            .map(|h| h.nodes.clone())
                    });
                    // While a node is isolated both sides hold the VIP (split brain, the
                    // service network still up): the survivor must hold it, not alone.
                    let split = last_pull == Some(Mode::Isolate)
                        && record.undo.iter().any(|(_, m, _)| *m == Mode::Isolate);
                    let held = now_holders.as_ref().is_some_and(|h| {
                        if split {
                            h.contains(node)
                        } else {
                            h.as_slice() == std::slice::from_ref(node)
                        }
                    });
                    if held {
                        break;
                    }
                    if Instant::now() >= deadline {
                        outcome.passed = false;
                        outcome.detail = format!(
                            "VIP on {:?} after {} ms",
                            now_holders.unwrap_or_default(),
                            budget.as_millis()
                        );
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Step::ExpectServing => {
                let budget = plan::budget(cluster, last_pull);
                outcome.budget_ms = Some(budget.as_millis() as u64);
                let deadline = Instant::now() + budget;
                loop {
                    let serving = seen.lock().ok().is_some_and(|s| {
                        s.probes
                            .iter()
                            .rev()
                            .take_while(|p| p.at_ms >= began)
                            .any(|p| p.ok)
                    });
                    if serving {
                        break;
                    }
                    if Instant::now() >= deadline {
                        outcome.passed = false;
                        outcome.detail =
                            format!("no answer through the VIP within {} ms", budget.as_millis());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Step::Wait { ms: wait } => tokio::time::sleep(Duration::from_millis(*wait)).await,
        }
        outcome.took_ms = ms(start) - began;
        let failed = !outcome.passed;
        let settled = matches!(step, Step::ExpectVipOn { .. }) && !failed;
        record.outcomes.push(outcome);
        if failed {
            // The undo stack restores what was changed; later steps would measure nothing.
            break;
        }
        if settled {
            let audited = settled_audit(cluster, nodes, &record.undo, start).await;
            let passed = audited.passed;
            record.outcomes.push(audited);
            if !passed {
                break;
            }
        }
    }
    Ok(())
}
