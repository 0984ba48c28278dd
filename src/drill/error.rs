//! Everything that can go wrong in a drill (a bad plan, an unreachable or failing node, a
//! cluster not fit to drill, Ctrl-C, a broken recorder) and the exit-code bits each maps to.
//! It sits below the rest of the drill so that `nodes` can use it without depending on `run`,
//! which re-exports it as `run::DrillError`.

use super::plan;
use crate::error::Status;

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Plan(#[from] plan::PlanError),
    #[error("{node}: {message}")]
    Node { node: String, message: String },
    #[error("{node}: unreachable: {message}")]
    Unreachable { node: String, message: String },
    #[error(
        "the cluster is not healthy, so the drill would not measure a failover: {0}. Fix it, or drill anyway with --force"
    )]
    Unhealthy(String),
    #[error(
        "the cluster is split: {0}. Find out why before anything else (hadeploy-agent status on each node); a drill would only hide it"
    )]
    Split(String),
    #[error("interrupted (Ctrl-C); what the drill changed was restored")]
    Interrupted,
    #[error("the drill's recorder failed: {0}")]
    Recorder(&'static str),
}

impl DrillError {
    /// The exit-code bits: a plan error changed nothing (1), an unreachable node is 4, a VIP on
    /// more than one node is the critical 8, everything else a drill that did not go as
    /// desired (2).
    pub fn status(&self) -> Status {
        match self {
            DrillError::Plan(_) => Status::USAGE,
            DrillError::Unreachable { .. } => Status::UNREACHABLE,
            DrillError::Split(_) => Status::CRITICAL,
            DrillError::Node { .. }
            | DrillError::Unhealthy(_)
            | DrillError::Interrupted
            | DrillError::Recorder(_) => Status::NOT_AS_DESIRED,
        }
    }
}
