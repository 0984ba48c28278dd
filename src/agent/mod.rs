//! The heartbeat daemon installed on every node (`hadeploy-agent`), wire-compatible with
//! Heartbeat 3.0.6. The protocol is pure: the wire codec (`wire`), signatures (`auth`),
//! sequence tracking (`seqtrack`), membership (`membership`), the resource manager
//! (`resources`) and the sans-IO core that drives them all (`core`), tested without sockets or
//! clocks by a cluster simulator. The I/O shell (`daemon`, `media`, `executor`, `control`)
//! carries the core's effects out. This module never imports the controller side (`render`,
//! `lab`, transport, controller).

pub mod auth;
pub mod cli;
pub mod control;
pub mod core;
pub mod daemon;
pub mod decode;
pub mod executor;
pub mod generation;
pub mod media;
pub mod membership;
pub mod metrics;
pub mod pcap;
pub mod reload;
pub mod resources;
pub mod script;
pub mod seqtrack;
pub mod setup;
pub mod vip;
pub mod wire;
