//! Runs a drill against a live cluster: connects to every node, refuses a degraded cluster
//! (unless forced), then — while a client probes the VIP every 10 ms and a watcher records
//! which nodes hold it — carries out the steps, checking each expectation against its budget.
//! Everything a step changed goes on an undo stack that is unwound on success, on a failed
//! step, on an error and on Ctrl-C, so a drill always leaves the cluster as it found it.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::plan::{self, Mode, Step};
use super::report::{self, Event, Holders, Probe, Report, StepOutcome};
use crate::config::inventory::Cluster;
use crate::transport::Transport;
use crate::transport::ssh::{SshOptions, SshTransport};

/// How often the client probes the VIP, and how long it waits for an answer.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How often every node is asked which addresses it has.
pub(crate) const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// An isolated node reconnects itself after four budgets — at least this long — even if the
/// controller vanished: long enough for the drill to restore it first, short enough that a
/// lost controller does not leave the node cut off.
const ISOLATE_UNDO_MIN: Duration = Duration::from_secs(20);
const NFT_TABLE: &str = "hadeploy_drill";

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Plan(#[from] plan::PlanError),
    #[error("{node}: {message}")]
    Node { node: String, message: String },
    #[error(
        "the cluster is not healthy, so the drill would not measure a failover: {0}. Fix it, or drill anyway with --force"
    )]
    Unhealthy(String),
    #[error("interrupted (Ctrl-C); what the drill changed was restored")]
    Interrupted,
    #[error("the drill's recorder failed: {0}")]
    Recorder(&'static str),
}

pub struct Options {
    pub ssh: SshOptions,
    pub force: bool,
    /// Probe with a TCP connect to this port instead of HTTP on port 80.
    pub tcp_port: Option<u16>,
}

struct Node {
    name: String,
    /// Replaced when the node comes back from a reboot (the old master connection died).
    transport: tokio::sync::RwLock<SshTransport>,
}

/// What the probe and the watcher have seen so far, shared with the step loop.
#[derive(Default)]
struct Seen {
    probes: Vec<Probe>,
    holders: Vec<Holders>,
    /// (node, its view of every peer) from the last status poll.
    dead_views: Vec<(u64, String, String)>,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

async fn run_on(node: &Node, script: &str) -> Result<String, DrillError> {
    let out = node
        .transport
        .read()
        .await
        .run(script, None)
        .await
        .map_err(|e| DrillError::Node {
            node: node.name.clone(),
            message: e.to_string(),
        })?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(DrillError::Node {
            node: node.name.clone(),
            message: format!("`{script}` failed: {}", out.stderr_text().trim()),
        })
    }
}

/// The commands that pull a node and undo the pull.
fn pull_script(mode: Mode, udpport: u16, undo_after: Duration) -> (String, String) {
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
            // The node comes back by itself; the restore waits for it (see `restore`).
            String::new(),
        ),
    }
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

/// Which nodes have the VIP now, and each node's view of its peers (from the agent).
async fn observe(nodes: &[Arc<Node>], vip: Ipv4Addr) -> (Vec<String>, Vec<(String, String)>) {
    let needle = format!(" {vip}/");
    let script =
        "ip -o -4 addr show; echo @@status; hadeploy-agent status --json 2>/dev/null || true";
    let mut handles = Vec::new();
    for node in nodes {
        let node = node.clone();
        handles.push(tokio::spawn(async move {
            let out = node.transport.read().await.run(script, None).await.ok()?;
            Some((node.name.clone(), out.stdout_text()))
        }));
    }
    let mut holders = Vec::new();
    let mut dead = Vec::new();
    for h in handles {
        let Ok(Some((name, text))) = h.await else {
            continue;
        };
        let (addrs, status) = text.split_once("@@status").unwrap_or((&text, ""));
        if addrs.contains(&needle) {
            holders.push(name.clone());
        }
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(status.trim()) {
            for peer in json["nodes"].as_array().into_iter().flatten() {
                if peer["status"] == "dead" {
                    dead.push((
                        name.clone(),
                        peer["name"].as_str().unwrap_or("?").to_string(),
                    ));
                }
            }
        }
    }
    holders.sort();
    (holders, dead)
}

/// Checks that the cluster is worth drilling: every agent answers and sees every peer active,
/// the VIP is on exactly one node, and the service answers through it.
async fn preflight(
    nodes: &[Arc<Node>],
    vip: Ipv4Addr,
    tcp_port: Option<u16>,
    names: &[String],
) -> Result<String, String> {
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
                let json: serde_json::Value =
                    serde_json::from_str(out.stdout_text().trim()).unwrap_or_default();
                for peer in json["nodes"].as_array().into_iter().flatten() {
                    if peer["status"] != "active" {
                        problems.push(format!(
                            "{} sees {} as {}",
                            node.name,
                            peer["name"].as_str().unwrap_or("?"),
                            peer["status"].as_str().unwrap_or("?")
                        ));
                    }
                }
            }
            _ => problems.push(format!("the agent on {} does not answer", node.name)),
        }
    }
    let (holders, _) = observe(nodes, vip).await;
    if holders.len() != 1 {
        problems.push(format!(
            "the VIP {vip} is on {} node(s): {:?}",
            holders.len(),
            holders
        ));
    }
    let (ok, _) = probe_once(vip, tcp_port, names).await;
    if !ok {
        problems.push(format!("nothing answers through {vip}"));
    }
    match (problems.is_empty(), holders.into_iter().next()) {
        (true, Some(holder)) => Ok(holder),
        (_, holder) if problems.is_empty() => Err(format!("no holder ({holder:?})")),
        _ => Err(problems.join("; ")),
    }
}

/// How long a rebooted node may take to answer again with its agent running.
const REBOOT_BACK_WITHIN: Duration = Duration::from_secs(180);

/// Waits for a rebooted node: a new SSH connection (the old one died with it) and its agent
/// answering; the new connection replaces the old for the rest of the drill.
async fn wait_back(cluster: &Cluster, ssh: &SshOptions, node: &Node) -> Result<(), DrillError> {
    let Some(spec) = cluster.nodes.iter().find(|n| n.node_name == node.name) else {
        return Ok(());
    };
    let deadline = Instant::now() + REBOOT_BACK_WITHIN;
    loop {
        if let Ok(t) = SshTransport::connect(&spec.host, &spec.connection, ssh).await {
            if t.run("hadeploy-agent status --json", None)
                .await
                .is_ok_and(|o| o.success())
            {
                *node.transport.write().await = t;
                return Ok(());
            }
            t.close().await;
        }
        if Instant::now() >= deadline {
            return Err(DrillError::Node {
                node: node.name.clone(),
                message: format!(
                    "did not come back from the reboot within {} s",
                    REBOOT_BACK_WITHIN.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The step list for `--pull`, `--scenario` or `--script`, validated. Needs the live holder.
pub enum What {
    Pull { node: String, mode: Mode },
    Scenario(String),
    Script(Vec<Step>),
}

async fn connect(cluster: &Cluster, ssh: &SshOptions) -> Result<Vec<Arc<Node>>, DrillError> {
    let mut nodes = Vec::new();
    for n in &cluster.nodes {
        let transport = SshTransport::connect(&n.host, &n.connection, ssh)
            .await
            .map_err(|e| DrillError::Node {
                node: n.node_name.clone(),
                message: e.to_string(),
            })?;
        nodes.push(Arc::new(Node {
            name: n.node_name.clone(),
            transport: tokio::sync::RwLock::new(transport),
        }));
    }
    Ok(nodes)
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
    let nodes = connect(cluster, ssh).await?;
    let vip = cluster.vips[0].address;
    let (holders, _) = observe(&nodes, vip).await;
    holders
        .into_iter()
        .next()
        .ok_or_else(|| DrillError::Unhealthy(format!("no node holds the VIP {vip}")))
}

pub async fn run(cluster: &Cluster, what: &What, options: &Options) -> Result<Report, DrillError> {
    let nodes = connect(cluster, &options.ssh).await?;
    let vip = cluster.vips[0].address;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let holder = match preflight(&nodes, vip, options.tcp_port, &names).await {
        Ok(holder) => holder,
        Err(why) if !options.force => return Err(DrillError::Unhealthy(why)),
        Err(_) => observe(&nodes, vip)
            .await
            .0
            .into_iter()
            .next()
            .unwrap_or_else(|| names[0].clone()),
    };
    let (drill, steps) = steps_for(what, cluster, &holder)?;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    let start = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // A watch channel, not a Notify: a task busy probing when the drill ends must still see
    // the stop on its next turn.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let prober = {
        let (seen, mut stop, names) = (seen.clone(), stop.clone(), names.clone());
        let tcp = options.tcp_port;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            (PROBE_TIMEOUT.as_millis() / PROBE_INTERVAL.as_millis()) as usize + 2,
        ));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tick.tick() => {}
                }
                // Each probe runs on its own, so one waiting out its timeout (nobody holds
                // the VIP) does not delay the next: the cadence stays 10 ms.
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    continue;
                };
                let (seen, names) = (seen.clone(), names.clone());
                tokio::spawn(async move {
                    let at_ms = ms(start);
                    let (ok, answered_by) = probe_once(vip, tcp, &names).await;
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
        })
    };
    let watcher = {
        let (seen, mut stop, nodes) = (seen.clone(), stop.clone(), nodes.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tick.tick() => {}
                }
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
        })
    };

    let mut outcomes: Vec<StepOutcome> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut undo: Vec<(String, Mode, String)> = Vec::new();
    let mut last_pull: Option<Mode> = None;
    let interrupted = {
        let steps_run = run_steps(
            &steps,
            cluster,
            &options.ssh,
            &nodes,
            &seen,
            start,
            &mut outcomes,
            &mut events,
            &mut undo,
            &mut last_pull,
        );
        tokio::select! {
            result = steps_run => result.err(),
            _ = tokio::signal::ctrl_c() => Some(DrillError::Interrupted),
        }
    };
    // Always restore what the drill changed, newest first.
    while let Some((node, mode, script)) = undo.pop() {
        events.push(Event {
            at_ms: ms(start),
            what: format!("undo: restore {node} ({})", mode.as_str()),
        });
        if let Some(n) = nodes.iter().find(|n| n.name == node) {
            if mode == Mode::Reboot {
                let _ = wait_back(cluster, &options.ssh, n).await;
            } else if !script.is_empty() {
                let _ = run_on(n, &script).await;
            }
        }
    }
    // Let the failback settle in the record before stopping the probes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(true);
    let _ = prober.await;
    let _ = watcher.await;

    // Audit: error lines the agents logged since the drill began.
    for node in &nodes {
        let logged = node
            .transport
            .read()
            .await
            .run(
                &format!("journalctl -u hadeploy-agent --since @{since_unix} -p err --no-pager -q 2>/dev/null | grep -v '^-- ' || true"),
                None,
            )
            .await
            .map(|o| o.stdout_text())
            .unwrap_or_default();
        if !logged.trim().is_empty() {
            outcomes.push(StepOutcome {
                step: format!("audit: {} logged no errors", node.name),
                started_ms: ms(start),
                took_ms: 0,
                budget_ms: None,
                passed: false,
                detail: logged.lines().take(3).collect::<Vec<_>>().join(" | "),
            });
        }
    }

    // Probes still in flight finish within their timeout.
    tokio::time::sleep(PROBE_TIMEOUT).await;
    let (mut probes, holders, dead_views) = {
        let s = seen
            .lock()
            .map_err(|_| DrillError::Recorder("a probe task panicked"))?;
        (s.probes.clone(), s.holders.clone(), s.dead_views.clone())
    };
    probes.sort_by_key(|p| p.at_ms);
    timeline(&mut events, &probes, &holders, &dead_views);
    if let Some(e) = interrupted {
        outcomes.push(StepOutcome {
            step: "drill".into(),
            started_ms: ms(start),
            took_ms: 0,
            budget_ms: None,
            passed: false,
            detail: e.to_string(),
        });
    }
    let passed = outcomes.iter().all(|o| o.passed);
    Ok(Report {
        cluster: cluster.name.clone(),
        vip: vip.to_string(),
        drill,
        passed,
        steps: outcomes,
        outage: report::outage(&probes),
        both_held_ms: report::both_held(&holders),
        events,
        probes,
        holders,
    })
}

/// Adds the observed moments: a peer declared dead, the VIP appearing on a node, the first
/// answer from a node — each the first time it happened after a change.
fn timeline(
    events: &mut Vec<Event>,
    probes: &[Probe],
    holders: &[Holders],
    dead: &[(u64, String, String)],
) {
    let mut reported: Vec<(String, String)> = Vec::new();
    for (at_ms, by, who) in dead {
        if !reported.contains(&(by.clone(), who.clone())) {
            reported.push((by.clone(), who.clone()));
            events.push(Event {
                at_ms: *at_ms,
                what: format!("{by} declared {who} dead"),
            });
        }
    }
    let mut previous: Vec<String> = holders.first().map(|h| h.nodes.clone()).unwrap_or_default();
    for h in holders {
        for n in &h.nodes {
            if !previous.contains(n) {
                events.push(Event {
                    at_ms: h.at_ms,
                    what: format!("VIP up on {n}"),
                });
            }
        }
        previous = h.nodes.clone();
    }
    let mut last: Option<String> = probes.iter().find_map(|p| p.answered_by.clone());
    for p in probes {
        if let Some(n) = &p.answered_by
            && last.as_ref() != Some(n)
        {
            events.push(Event {
                at_ms: p.at_ms,
                what: format!("first answer from {n}"),
            });
            last = Some(n.clone());
        }
    }
    events.sort_by_key(|e| e.at_ms);
}

/// How long an audit may keep finding problems before they count.
const AUDIT_GRACE: Duration = Duration::from_secs(2);

/// What must hold whenever the cluster has settled: each VIP on exactly one node (both sides
/// of an isolation may hold it), the managed services running only there, and every node that
/// is still a member seeing the other members active. `pulled` nodes are out of the cluster.
async fn audit(cluster: &Cluster, nodes: &[Arc<Node>], pulled: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let vip = cluster.vips[0].address;
    let (holders, _) = observe(nodes, vip).await;
    let members: Vec<&Arc<Node>> = nodes
        .iter()
        .filter(|n| !pulled.contains(&n.name.as_str()))
        .collect();
    let member_holders: Vec<&String> = holders
        .iter()
        .filter(|h| !pulled.contains(&h.as_str()))
        .collect();
    if member_holders.len() != 1 {
        problems.push(format!("VIP {vip} on {holders:?}"));
    }
    for node in &members {
        let services: Vec<String> = cluster
            .resources
            .iter()
            .map(|r| {
                format!(
                    "pgrep -x {} >/dev/null && echo {}",
                    crate::transport::shell_quote(&r.name),
                    r.name
                )
            })
            .collect();
        if !services.is_empty() && !holders.contains(&node.name) {
            let running = run_on(node, &format!("{{ {}; }} || true", services.join("; ")))
                .await
                .unwrap_or_default();
            for service in running.split_whitespace() {
                problems.push(format!(
                    "{service} runs on {}, which does not hold the VIP",
                    node.name
                ));
            }
        }
        let status = run_on(node, "hadeploy-agent status --json")
            .await
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(status.trim()).unwrap_or_default();
        for peer in json["nodes"].as_array().into_iter().flatten() {
            let name = peer["name"].as_str().unwrap_or("?");
            // A node that just rejoined may still be `up` for a keepalive: alive either way.
            let alive = matches!(peer["status"].as_str(), Some("active" | "up" | "init"));
            if !pulled.contains(&name) && !alive {
                problems.push(format!(
                    "{} sees {name} as {}",
                    node.name,
                    peer["status"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    problems
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    steps: &[Step],
    cluster: &Cluster,
    ssh: &SshOptions,
    nodes: &[Arc<Node>],
    seen: &Arc<Mutex<Seen>>,
    start: Instant,
    outcomes: &mut Vec<StepOutcome>,
    events: &mut Vec<Event>,
    undo: &mut Vec<(String, Mode, String)>,
    last_pull: &mut Option<Mode>,
) -> Result<(), DrillError> {
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
                let undo_after =
                    (plan::budget(cluster, Some(Mode::Isolate)) * 4).max(ISOLATE_UNDO_MIN);
                let (pull, restore) = pull_script(*mode, cluster.udpport, undo_after);
                events.push(Event {
                    at_ms: began,
                    what: format!("pull {node} ({}) issued", mode.as_str()),
                });
                undo.push((node.clone(), *mode, restore));
                if let Err(e) = run_on(&n, &pull).await {
                    outcome.passed = false;
                    outcome.detail = e.to_string();
                }
                *last_pull = Some(*mode);
            }
            Step::Restore { node } => {
                events.push(Event {
                    at_ms: began,
                    what: format!("restore {node} issued"),
                });
                if let Some(pos) = undo.iter().rposition(|(n, _, _)| n == node) {
                    let (_, mode, script) = undo.remove(pos);
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
                    *last_pull = Some(mode);
                }
            }
            Step::ExpectVipOn { node } => {
                let budget = plan::budget(cluster, *last_pull);
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
                    let split = *last_pull == Some(Mode::Isolate)
                        && undo.iter().any(|(_, m, _)| *m == Mode::Isolate);
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
                let budget = plan::budget(cluster, *last_pull);
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
        outcomes.push(outcome);
        if failed {
            // The undo stack restores what was changed; later steps would measure nothing.
            break;
        }
        if settled {
            let at = ms(start);
            let pulled: Vec<&str> = undo
                .iter()
                .filter(|(_, m, _)| *m != Mode::Standby)
                .map(|(n, _, _)| n.as_str())
                .collect();
            // Settling takes a moment after the VIP moved: a make-before-break giver stops its
            // proxy right after its address went. Only what lasts past the grace is a problem.
            let grace = Instant::now() + AUDIT_GRACE;
            let problems = loop {
                let problems = audit(cluster, nodes, &pulled).await;
                if problems.is_empty() || Instant::now() >= grace {
                    break problems;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let passed = problems.is_empty();
            outcomes.push(StepOutcome {
                step: "audit: VIP on one node, services only there, membership agreed".into(),
                started_ms: at,
                took_ms: ms(start) - at,
                budget_ms: None,
                passed,
                detail: problems.join("; "),
            });
            if !passed {
                break;
            }
        }
    }
    Ok(())
}
