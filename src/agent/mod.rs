//! The heartbeat daemon installed on every node (`hadeploy-agent`), wire-compatible with
//! Heartbeat 3.0.6. Pure parts first — the wire codec (`wire`), signatures (`auth`), sequence
//! tracking (`seqtrack`) and membership (`membership`) — so the protocol's rules are tested
//! without sockets or clocks. This module never imports the controller side (`render`, `lab`,
//! transport, controller).

pub mod auth;
pub mod control;
pub mod daemon;
pub mod decode;
pub mod executor;
pub mod generation;
pub mod media;
pub mod membership;
pub mod node;
pub mod pcap;
pub mod resources;
pub mod script;
pub mod seqtrack;
pub mod vip;
pub mod wire;
