//! What a drill audits beyond its own expectations: the invariants that must hold whenever
//! the cluster has settled after the VIP moved (the VIP on one node, the managed services only
//! there, membership agreed), retried through a short grace, and the error lines each agent
//! logged while the drill ran.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::nodes::{Node, observe, run_on};
use super::plan::Mode;
use super::report::StepOutcome;
use super::sampling::ms;
use crate::agent::control::StatusAnswer;
use crate::config::inventory::Cluster;
use crate::transport::Transport;

/// How long an audit may keep finding problems before they count.
const AUDIT_GRACE: Duration = Duration::from_secs(2);

/// How long a node that says it is still stopping a released group's listeners may take: a
/// graceful stop waits on connections the VIP's move cut off, until the service's own stop
/// schedule ends them (Debian's nginx unit: QUIT, and a kill 5 s later).
const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// What one pass of the audit found.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    /// A node that runs a service without the VIP says it is still stopping it.
    draining: bool,
}

/// What must hold whenever the cluster has settled: each VIP on exactly one node (both sides
/// of an isolation may hold it), the managed services running only there, and every node that
/// is still a member seeing the other members active. `pulled` nodes are out of the cluster.
async fn audit(cluster: &Cluster, nodes: &[Arc<Node>], pulled: &[&str]) -> Findings {
    let mut problems = Vec::new();
    let mut draining = false;
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
        let status = run_on(node, "hadeploy-agent status --json")
            .await
            .unwrap_or_default();
        let status = StatusAnswer::from_json(&status).unwrap_or_default();
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
            if !running.trim().is_empty() {
                // What the agent last did there says why: a hand-off it never finished, a
                // stop that failed.
                let log = run_on(
                    node,
                    "journalctl -u hadeploy-agent -n 30 --no-pager -q -o short-precise 2>/dev/null || true",
                )
                .await
                .unwrap_or_default();
                let still = if status.draining.is_empty() {
                    ""
                } else {
                    draining = true;
                    " (its agent is still stopping it)"
                };
                for service in running.split_whitespace() {
                    problems.push(format!(
                        "{service} runs on {}, which does not hold the VIP{still}; its agent's last lines:\n{}",
                        node.name,
                        log.trim_end()
                    ));
                }
            }
        }
        for peer in &status.nodes {
            // A node that just rejoined may still be `up` for a keepalive: alive either way.
            let alive = matches!(peer.status.as_str(), "active" | "up" | "init");
            if !pulled.contains(&peer.name.as_str()) && !alive {
                problems.push(format!(
                    "{} sees {} as {}",
                    node.name, peer.name, peer.status
                ));
            }
        }
    }
    Findings { problems, draining }
}

/// The audit after an expectation that the VIP moved, retried through the grace: every node
/// pulled other than into standby is out of the cluster.
pub(super) async fn settled_audit(
    cluster: &Cluster,
    nodes: &[Arc<Node>],
    undo: &[(String, Mode, String)],
    start: Instant,
) -> StepOutcome {
    let at = ms(start);
    let pulled: Vec<&str> = undo
        .iter()
        .filter(|(_, m, _)| *m != Mode::Standby)
        .map(|(n, _, _)| n.as_str())
        .collect();
    // Settling takes a moment after the VIP moved: a make-before-break giver stops its
    // proxy right after its address went. Only what lasts past the grace is a problem, or
    // past the longer one while the giver says it is still stopping its proxy.
    let began = Instant::now();
    let problems = loop {
        let Findings { problems, draining } = audit(cluster, nodes, &pulled).await;
        let grace = if draining { DRAIN_GRACE } else { AUDIT_GRACE };
        if problems.is_empty() || began.elapsed() >= grace {
            break problems;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    StepOutcome {
        step: "audit: VIP on one node, services only there, membership agreed".into(),
        started_ms: at,
        took_ms: ms(start) - at,
        budget_ms: None,
        passed: problems.is_empty(),
        detail: problems.join("; "),
    }
}

/// A failed outcome per node whose agent logged errors since the drill began (the first
/// three lines of them).
pub(super) async fn logged_errors(
    nodes: &[Arc<Node>],
    since_unix: u64,
    start: Instant,
) -> Vec<StepOutcome> {
    let mut outcomes = Vec::new();
    for node in nodes {
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
    outcomes
}
