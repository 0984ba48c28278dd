//! `hadeploy drill`: scripted failover drills against a live cluster. `plan` decides the steps
//! (pull modes, scripts, the scenario catalogue, time budgets), `run` carries them out while a
//! client probes the VIP and the VIP's holders are watched, always unwinding what it changed,
//! and `report` turns what was seen into a timeline, outage figures and a verdict.

pub mod plan;
pub mod report;
pub mod run;
