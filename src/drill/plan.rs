//! What a drill does, decided before anything is touched: the pull modes, the steps of a drill
//! script (`pull`, `restore`, `expect vip_on`, `expect serving`, `wait`), the built-in
//! catalogue of scenarios, and the time budget each expectation gets from the cluster's
//! timers. Pure, so `--dry-run` prints exactly what a real run would do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ha::AutoFailback;
use crate::config::inventory::Cluster;

/// How a node is pulled out of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Hand the resources over (hb_standby): the node stays a member.
    Standby,
    /// Stop the agent gracefully: it hands over at once and leaves.
    Stop,
    /// SIGKILL the agent (and keep it down): peers notice after deadtime.
    Kill,
    /// Drop the node's heartbeat traffic with nftables (split brain), with an undo timer on
    /// the node itself.
    Isolate,
    /// Reboot the node.
    Reboot,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standby => "standby",
            Mode::Stop => "stop",
            Mode::Kill => "kill",
            Mode::Isolate => "isolate",
            Mode::Reboot => "reboot",
        }
    }
}

/// One step of a drill script.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Pull `node` out.
    Pull { node: String, mode: Mode },
    /// Undo the pull of `node`.
    Restore { node: String },
    /// The VIP must be on `node` within the budget — alone, except while a node is isolated
    /// (split brain: the isolated node still holds it too, and the time both held it is
    /// reported).
    ExpectVipOn { node: String },
    /// The service must answer through the VIP within the budget.
    ExpectServing,
    /// Let time pass.
    Wait { ms: u64 },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Pull { node, mode } => format!("pull {node} ({})", mode.as_str()),
            Step::Restore { node } => format!("restore {node}"),
            Step::ExpectVipOn { node } => format!("expect the VIP on {node}"),
            Step::ExpectServing => "expect the service to answer through the VIP".into(),
            Step::Wait { ms } => format!("wait {ms} ms"),
        }
    }
}

/// A drill script file: `steps:` in order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub steps: Vec<Step>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{file}: {message}")]
    Script { file: String, message: String },
    #[error("node `{node}` is not in cluster `{cluster}` (its nodes: {nodes})")]
    UnknownNode {
        node: String,
        cluster: String,
        nodes: String,
    },
    #[error("unknown scenario `{0}`; `hadeploy drill --list-scenarios` shows them")]
    UnknownScenario(String),
    #[error(
        "step {index} pulls {node}, the last node still in the cluster; a drill never pulls the last healthy node"
    )]
    LastNode { index: usize, node: String },
}

pub fn parse_script(text: &str, file: &str) -> Result<Script, PlanError> {
    serde_saphyr::from_str(text).map_err(|e| PlanError::Script {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// The built-in scenarios and what each does.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "standby",
        "the holder hands over (hb_standby), then takes back",
    ),
    (
        "flip",
        "the group moves to the other node and back again (standby both ways)",
    ),
    ("restart", "the holder's agent is stopped and started again"),
    (
        "kill",
        "the holder's agent is SIGKILLed; the peer takes over after deadtime",
    ),
    (
        "isolate",
        "the holder loses its heartbeat link (split brain), then the link heals",
    ),
    ("reboot", "the holder reboots"),
    (
        "rolling-restart",
        "every node's agent is restarted, one at a time",
    ),
];

/// Where the group lives and who would take it: the context a scenario is built in.
pub struct Context<'a> {
    pub cluster: &'a Cluster,
    /// The node holding the VIP now.
    pub holder: String,
}

impl Context<'_> {
    fn survivor(&self, pulled: &str) -> String {
        self.cluster
            .nodes
            .iter()
            .map(|n| n.node_name.clone())
            .find(|n| n != pulled)
            .unwrap_or_default()
    }

    /// Where the group goes back after `pulled` returns: its home with auto_failback on and
    /// a node that left; otherwise it stays where it is.
    fn after_restore(&self, pulled: &str, mode: Mode, survivor: &str) -> String {
        let home = &self.cluster.preferred_node;
        let left = !matches!(mode, Mode::Standby);
        if self.cluster.auto_failback == AutoFailback::On && left && pulled == home {
            home.clone()
        } else {
            survivor.to_string()
        }
    }

    /// The steps of a pull of `node`, the checks, the restore and the failback check.
    pub fn pull_and_restore(&self, node: &str, mode: Mode) -> Vec<Step> {
        let survivor = if node == self.holder {
            self.survivor(node)
        } else {
            self.holder.clone()
        };
        let back = self.after_restore(node, mode, &survivor);
        vec![
            Step::Pull {
                node: node.to_string(),
                mode,
            },
            Step::ExpectVipOn {
                node: survivor.clone(),
            },
            Step::ExpectServing,
            Step::Restore {
                node: node.to_string(),
            },
            Step::ExpectVipOn { node: back },
            Step::ExpectServing,
        ]
    }

    pub fn scenario(&self, name: &str) -> Result<Vec<Step>, PlanError> {
        let holder = self.holder.clone();
        Ok(match name {
            "standby" => self.pull_and_restore(&holder, Mode::Standby),
            "flip" => {
                let other = self.survivor(&holder);
                let mut steps = self.pull_and_restore(&holder, Mode::Standby);
                // The survivor now holds; hand back the same way.
                steps.truncate(3);
                steps.push(Step::Pull {
                    node: other.clone(),
                    mode: Mode::Standby,
                });
                steps.push(Step::ExpectVipOn {
                    node: holder.clone(),
                });
                steps.push(Step::ExpectServing);
                steps
            }
            "restart" => self.pull_and_restore(&holder, Mode::Stop),
            "kill" => self.pull_and_restore(&holder, Mode::Kill),
            "isolate" => self.pull_and_restore(&holder, Mode::Isolate),
            "reboot" => self.pull_and_restore(&holder, Mode::Reboot),
            "rolling-restart" => {
                let mut steps = Vec::new();
                for node in &self.cluster.nodes {
                    steps.push(Step::Pull {
                        node: node.node_name.clone(),
                        mode: Mode::Stop,
                    });
                    steps.push(Step::ExpectServing);
                    steps.push(Step::Restore {
                        node: node.node_name.clone(),
                    });
                    steps.push(Step::ExpectServing);
                }
                steps
            }
            other => return Err(PlanError::UnknownScenario(other.to_string())),
        })
    }
}

/// Checks a plan against the cluster: known nodes, and never the last healthy one pulled.
pub fn validate(steps: &[Step], cluster: &Cluster) -> Result<(), PlanError> {
    let names: Vec<&str> = cluster.nodes.iter().map(|n| n.node_name.as_str()).collect();
    let mut pulled: Vec<&str> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let node = match step {
            Step::Pull { node, .. } | Step::Restore { node } | Step::ExpectVipOn { node } => {
                node.as_str()
            }
            _ => continue,
        };
        if !names.contains(&node) {
            return Err(PlanError::UnknownNode {
                node: node.to_string(),
                cluster: cluster.name.clone(),
                nodes: names.join(", "),
            });
        }
        match step {
            Step::Pull { mode, .. } => {
                // A standby leaves the node a member, able to take over again.
                if *mode != Mode::Standby && !pulled.contains(&node) {
                    pulled.push(node);
                }
                if pulled.len() >= names.len() {
                    return Err(PlanError::LastNode {
                        index: index + 1,
                        node: node.to_string(),
                    });
                }
            }
            Step::Restore { .. } => pulled.retain(|n| *n != node),
            _ => {}
        }
    }
    Ok(())
}

/// What a node's shutdown may take before its agent is gone, on top of a reboot's budget.
pub const REBOOT_SHUTDOWN: Duration = Duration::from_secs(15);

/// How long an expectation may take after a pull, from the cluster's timers: a hand-off is
/// immediate, a death is noticed after deadtime (plus the start-up grace a node advertises until its
/// communication is up),
/// and the resources need time to start.
pub fn budget(cluster: &Cluster, last_pull: Option<Mode>) -> Duration {
    let keepalive = cluster.keepalive.as_std();
    let deadtime = cluster.deadtime.as_std();
    let resources = Duration::from_secs(2);
    match last_pull {
        Some(Mode::Standby | Mode::Stop) | None => resources + 2 * keepalive,
        Some(Mode::Kill | Mode::Isolate) => deadtime + 2 * keepalive + resources,
        // A reboot first shuts the node down, its other services with it, before the agent
        // hands over or goes silent.
        Some(Mode::Reboot) => deadtime + 2 * keepalive + resources + REBOOT_SHUTDOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::inventory::Inventory;

    fn cluster() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inv.yml");
        std::fs::write(
            &file,
            "all:\n  children:\n    web:\n      hosts:\n        n1: {ansible_host: 10.0.0.11, ha_heartbeat_address: 10.1.0.11/24}\n        n2: {ansible_host: 10.0.0.12, ha_heartbeat_address: 10.1.0.12/24}\n      vars:\n        ha_vips: [10.0.0.100/24]\n        ha_resources: [nginx]\n        ha_preferred_node: n1\n        ha_heartbeat_interface: eth1\n        ha_auto_failback: true\n        ha_keepalive: 200ms\n        ha_warntime: 500ms\n        ha_deadtime: 1\n        ha_initdead: 3\n",
        )
        .unwrap();
        Inventory::load(&file).unwrap().clusters.remove(0)
    }

    #[test]
    fn a_stop_of_the_home_node_fails_back_and_a_standby_sticks() {
        let c = cluster();
        let ctx = Context {
            cluster: &c,
            holder: "n1".into(),
        };
        let stop = ctx.pull_and_restore("n1", Mode::Stop);
        assert_eq!(stop[1], Step::ExpectVipOn { node: "n2".into() });
        assert_eq!(stop[4], Step::ExpectVipOn { node: "n1".into() });
        let standby = ctx.pull_and_restore("n1", Mode::Standby);
        assert_eq!(standby[4], Step::ExpectVipOn { node: "n2".into() });
    }

    #[test]
    fn scenarios_validate_and_the_last_node_is_never_pulled() {
        let c = cluster();
        let ctx = Context {
            cluster: &c,
            holder: "n1".into(),
        };
        for (name, _) in SCENARIOS {
            validate(&ctx.scenario(name).unwrap(), &c).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(matches!(
            ctx.scenario("chaos"),
            Err(PlanError::UnknownScenario(_))
        ));
        let both = vec![
            Step::Pull {
                node: "n1".into(),
                mode: Mode::Kill,
            },
            Step::Pull {
                node: "n2".into(),
                mode: Mode::Stop,
            },
        ];
        assert!(matches!(
            validate(&both, &c),
            Err(PlanError::LastNode { index: 2, .. })
        ));
        let stranger = vec![Step::Restore { node: "n9".into() }];
        assert!(matches!(
            validate(&stranger, &c),
            Err(PlanError::UnknownNode { .. })
        ));
    }

    #[test]
    fn scripts_parse_and_name_their_mistakes() {
        let s = parse_script(
            "steps:\n  - pull: {node: n1, mode: isolate}\n  - expect_vip_on: {node: n2}\n  - expect_serving\n  - wait: {ms: 500}\n  - restore: {node: n1}\n",
            "drill.yml",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 5);
        assert_eq!(s.steps[3], Step::Wait { ms: 500 });
        let err = parse_script("steps:\n  - pull: {node: n1, mode: explode}\n", "drill.yml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("drill.yml") && err.contains("explode"),
            "{err}"
        );
    }

    #[test]
    fn budgets_follow_the_timers() {
        let c = cluster();
        assert_eq!(budget(&c, Some(Mode::Stop)), Duration::from_millis(2400));
        assert_eq!(budget(&c, Some(Mode::Kill)), Duration::from_millis(3400));
    }
}
