//! The one integration test binary: every test that drives the built binaries or real lab nodes.

mod agent;
mod apply;
mod cli;
mod codec;
mod diff;
mod drill;
mod ha_files;
mod hbconfig;
mod inventory;
mod inventory_parity;
mod lab;
mod monitoring;
mod support;
