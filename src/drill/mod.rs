//! `hadeploy drill`: scripted failover drills against a live cluster. `plan` decides the steps
//! (pull modes, scripts, the scenario catalogue, time budgets), `run` carries them out while a
//! client probes the VIP and the VIP's holders are watched, always unwinding what it changed,
//! and `report` turns what was seen into a timeline, outage figures and a verdict. Beneath
//! `run`: `nodes` (the SSH connection to each node), `pull` (the commands behind each pull
//! mode), `audit` (the invariants checked once the cluster settles, the agents' error logs),
//! `sampling` (the recorders' cadences, which the report quotes too) and `error`.

mod audit;
mod error;
mod nodes;
pub mod plan;
mod pull;
pub mod report;
pub mod run;
mod sampling;
