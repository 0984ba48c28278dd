//! `apply`: bring every node of every cluster to the desired state. One probe round trip per
//! node (`probe`) gives facts and current state; planning is pure and local, so check mode and
//! diffs fall out of the plan; execution applies only the planned steps. The services' own
//! files (`ha_files`) are staged, tested and reloaded by `service_files`; `rotate` walks a
//! cluster to a new authkeys secret one node at a time (`hadeploy rotate-key`).

pub mod apply;
pub mod drift;
pub mod manifest;
pub mod plan;
pub mod probe;
pub mod report;
pub mod rotate;
pub mod service_files;
