//! hadeploy turns two or more plain Linux servers into a Heartbeat-style active/passive cluster
//! (a virtual IP plus nginx, haproxy or httpd started only on the active node) from one
//! Ansible-style inventory, and proves with drills that the VIP really moves.
//!
//! The library holds all behaviour; the two binaries (`hadeploy`, `hadeploy-agent`) only parse
//! arguments, call in here and map errors to exit codes. Module boundaries follow DESIGN.md §3:
//! `agent` never imports the controller side (`render`, `lab`, later `transport`/`controller`).

pub mod agent;
pub mod cli;
pub mod config;
pub mod controller;
pub mod drill;
pub mod lab;
pub mod render;
pub mod transport;
