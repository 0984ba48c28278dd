//! Everything hadeploy reads from files, turned into typed, validated models — with no network
//! I/O. Two families live here: the operator's Ansible-style inventory (`inventory`, with its
//! validation and secrets), and the Heartbeat configuration files the agent runs on
//! (`heartbeat`: ha.cf, haresources, authkeys). `duration` is shared by both because the
//! inventory's timers are written in Heartbeat's own time syntax.

pub mod ha;
pub mod heartbeat;
pub mod inventory;
pub mod roles;
