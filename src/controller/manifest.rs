//! The record `apply` leaves on each node (`/var/lib/hadeploy/manifest.json`, root-only): the
//! digest of every file it wrote and of the agent binary, the inventory's digest, the version
//! of hadeploy and the time. `diff` reads it back to tell *drift* (the node changed since the
//! last apply) from *pending* (the inventory changed since): a file that still has the digest
//! the manifest recorded was not touched, so a difference is the inventory's. Pure: the bytes
//! come from the probe and go out with the other uploads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::plan::Desired;
use super::probe::NodeState;
use crate::files::sha1_hex;

pub const PATH: &str = "/var/lib/hadeploy/manifest.json";

/// Only root reads it: the digests include the authkeys file's.
pub const MODE: u32 = 0o600;

/// Anything larger is not a manifest hadeploy wrote.
const MAX_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The hadeploy version that wrote it.
    pub version: String,
    pub applied_at_unix: i64,
    /// sha1 of the inventory file the run read.
    pub inventory_sha1: String,
    pub agent_sha1: String,
    /// Every managed file's sha1, by path.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// What a run that brings the node to `desired` records.
    pub fn of(desired: &Desired, inventory_sha1: &str, now_unix: i64) -> Manifest {
        Manifest {
            version: env!("CARGO_PKG_VERSION").to_string(),
            applied_at_unix: now_unix,
            inventory_sha1: inventory_sha1.to_string(),
            agent_sha1: desired.agent_sha1.clone(),
            files: desired
                .files
                .iter()
                .map(|f| (f.path.clone(), sha1_hex(&f.content)))
                .collect(),
        }
    }

    /// Whether this record describes `desired`: the same files with the same contents and the
    /// same agent. The time and the inventory's own digest do not matter — an edited comment in
    /// the inventory changes nothing on the node.
    pub fn records(&self, desired: &Desired) -> bool {
        self.agent_sha1 == desired.agent_sha1
            && self.files.len() == desired.files.len()
            && desired
                .files
                .iter()
                .all(|f| self.files.get(&f.path) == Some(&sha1_hex(&f.content)))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("the manifest serializes");
        bytes.push(b'\n');
        bytes
    }

    /// The record the probe found on the node: `None` when there is none, the error when
    /// something is there but is not one.
    pub fn on(state: &NodeState) -> Result<Option<Manifest>, String> {
        match state.files.get(PATH).and_then(|f| f.as_ref()) {
            None => Ok(None),
            Some(f) => Manifest::parse(&f.content).map(Some),
        }
    }

    /// Reads what the probe found at [`PATH`]; the error says why it is not a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() > MAX_BYTES {
            return Err(format!("{} bytes, more than a manifest holds", bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("not a hadeploy manifest: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::plan::DesiredFile;
    use std::sync::Arc;

    fn desired(hacf: &str) -> Desired {
        Desired {
            files: vec![DesiredFile {
                path: "/etc/ha.d/ha.cf".into(),
                content: Arc::new(hacf.as_bytes().to_vec()),
                mode: 0o644,
                secret: false,
                notifies_agent: true,
                service: None,
            }],
            agent_sha1: "abc".into(),
            keep_out_of_boot: vec![],
            stamp: Default::default(),
        }
    }

    #[test]
    fn a_manifest_round_trips_and_records_only_what_it_was_made_of() {
        let m = Manifest::of(&desired("keepalive 2\n"), "inv", 1_764_680_000);
        let back = Manifest::parse(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(back.records(&desired("keepalive 2\n")));
        assert!(!back.records(&desired("keepalive 1\n")));
        let mut other_agent = desired("keepalive 2\n");
        other_agent.agent_sha1 = "def".into();
        assert!(!back.records(&other_agent));
        assert_eq!(back.files["/etc/ha.d/ha.cf"], sha1_hex(b"keepalive 2\n"));
    }

    #[test]
    fn junk_is_not_a_manifest() {
        assert!(Manifest::parse(b"\xff\x00junk").is_err());
        assert!(Manifest::parse(b"{}").is_err());
        assert!(Manifest::parse(&vec![b' '; MAX_BYTES + 1]).is_err());
    }
}
