//! hadeploy turns two or more plain Linux servers into a Heartbeat-style active/passive cluster
//! (a virtual IP plus nginx, haproxy or httpd started only on the active node) from one
//! Ansible-style inventory, and proves with drills that the VIP really moves.
//!
//! The library holds all behaviour; the two binaries (`hadeploy`, `hadeploy-agent`) only call
//! `cmd::main` and `agent::cli::main`. The rooms and the rules between them are in
//! docs/architecture.md: the ground floor (`error`, `files`, `manpage`, `config::ha`) imports
//! nothing above it; `agent` and `config::heartbeat` never import the inventory or the
//! controller side (`render`, `controller`, `drill`, `lab`, `transport`, `cmd`).

pub mod agent;
pub mod cmd;
pub mod config;
pub mod controller;
pub mod drill;
pub mod error;
pub mod files;
pub mod lab;
pub mod manpage;
pub mod render;
pub mod transport;
