//! Fixtures shared by the cluster tests in every room of this module: a valid two-node
//! inventory each test changes one thing in, and helpers that load a variant and assert an error
//! sits at an exact line:column. They load through `Inventory::load`, so each test sees the
//! diagnostics exactly as an operator would.

use crate::config::inventory::{Diagnostics, Inventory};

/// A valid two-node cluster; each test changes one thing.
pub(super) const BASE: &str = "all:
  children:
    web:
      hosts:
        node1: {ansible_host: 192.168.1.11, ha_heartbeat_address: 10.0.0.1/24}
        node2: {ansible_host: 192.168.1.12, ha_heartbeat_address: 10.0.0.2/24}
      vars:
        ha_vips: [192.168.1.100/24]
        ha_resources: [nginx]
        ha_heartbeat_interface: eth1
";

pub(super) fn load(text: &str) -> (tempfile::TempDir, Result<Inventory, Diagnostics>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inv.yml"), text).unwrap();
    let result = Inventory::load(&dir.path().join("inv.yml"));
    (dir, result)
}

/// Asserts loading fails with an error at `line:column` whose text contains `needle`.
#[track_caller]
pub(super) fn rejects(text: &str, line: u32, column: u32, needle: &str) {
    let (_dir, result) = load(text);
    let diags = result.expect_err("inventory should be rejected");
    let found = diags.errors().any(|d| {
        d.origin.pos == Some(crate::config::inventory::yaml::Pos { line, column })
            && d.to_string().contains(needle)
    });
    assert!(
        found,
        "no error at {line}:{column} containing {needle:?}; got:\n{diags}"
    );
}
