//! The drill's hold on each node: one SSH connection per node (replaced when the node comes
//! back from a reboot), running a script there, asking every node at once which of them holds
//! the VIP and which peers it has declared dead, and waiting for a rebooted node to answer.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::DrillError;
use crate::agent::control::StatusAnswer;
use crate::config::inventory::Cluster;
use crate::transport::Transport;
use crate::transport::ssh::{SshOptions, SshTransport};

/// One node of the drilled cluster, as the drill reaches it.
pub(super) struct Node {
    pub(super) name: String,
    /// Replaced when the node comes back from a reboot (the old master connection died).
    pub(super) transport: tokio::sync::RwLock<SshTransport>,
}

/// Connects to every node; the first one that cannot be reached ends the drill.
pub(super) async fn connect(
    cluster: &Cluster,
    ssh: &SshOptions,
) -> Result<Vec<Arc<Node>>, DrillError> {
    let mut nodes = Vec::new();
    for n in &cluster.nodes {
        let transport = SshTransport::connect(&n.host, &n.connection, ssh)
            .await
            .map_err(|e| DrillError::Unreachable {
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

/// Runs a script on a node: its output, or an error naming the node if it failed.
pub(super) async fn run_on(node: &Node, script: &str) -> Result<String, DrillError> {
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

/// Which nodes have the VIP now, and each node's view of its peers (from the agent).
pub(super) async fn observe(
    nodes: &[Arc<Node>],
    vip: Ipv4Addr,
) -> (Vec<String>, Vec<(String, String)>) {
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
        if let Ok(status) = StatusAnswer::from_json(status) {
            for peer in status.nodes {
                if peer.status == "dead" {
                    dead.push((name.clone(), peer.name));
                }
            }
        }
    }
    holders.sort();
    (holders, dead)
}

/// How long a rebooted node may take to answer again with its agent running.
const REBOOT_BACK_WITHIN: Duration = Duration::from_secs(180);

/// Waits for a rebooted node: a new SSH connection (the old one died with it) and its agent
/// answering; the new connection replaces the old for the rest of the drill.
pub(super) async fn wait_back(
    cluster: &Cluster,
    ssh: &SshOptions,
    node: &Node,
) -> Result<(), DrillError> {
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
