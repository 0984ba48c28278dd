//! The operator's inventory: Ansible's layout (`layout`), from a YAML file read with positions
//! (`yaml`) or an INI file (`ini`), interpreted as HA clusters (`cluster`) with every mistake reported at file:line:column
//! (`diag`), and the authkeys secret each cluster signs with (`secrets`).

pub mod cluster;
pub mod diag;
pub mod ini;
pub mod layout;
pub mod secrets;
pub mod yaml;

/// Texts `seed` becomes after a few random byte edits (replace, insert, delete from
/// `alphabet`), the valid UTF-8 ones only: the readers' "never panic" tests.
#[cfg(test)]
pub(crate) fn mutations(seed: &str, alphabet: &[u8], rng_seed: u64, count: usize) -> Vec<String> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        if let Ok(text) = String::from_utf8(bytes) {
            out.push(text);
        }
    }
    out
}

use std::path::{Path, PathBuf};

pub use cluster::{
    Cluster, ClusterNode, Connection, DriftIgnore, Media, ResourceSpec, SecretSource, Vip, VipKind,
};
pub use diag::{Diagnostic, Diagnostics, Severity};

/// A validated inventory: its clusters, and the warnings found on the way.
#[derive(Debug)]
pub struct Inventory {
    pub file: PathBuf,
    pub clusters: Vec<Cluster>,
    /// Every group with its hosts (children's included): Ansible's `groups`, for templates.
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    pub warnings: Diagnostics,
}

impl Inventory {
    /// Loads and validates an inventory. Any error fails the whole load (with every diagnostic,
    /// warnings included); warnings alone are returned with the inventory.
    pub fn load(file: &Path) -> Result<Inventory, Diagnostics> {
        let mut diags = Diagnostics::default();
        let layout = layout::Layout::load(file, &mut diags);
        let clusters = cluster::build_clusters(&layout, &mut diags);
        if !diags.has_errors() && clusters.is_empty() {
            diags.push(
                Diagnostic::error(diag::Origin::file(file), Some("ha_vips"), "no cluster found: no group sets `ha_vips`")
                    .hint("add `ha_vips: [A.B.C.D/bits]` to the vars of the group whose hosts form the cluster"),
            );
        }
        for cluster in &clusters {
            secrets::check_source(cluster, &mut diags);
        }
        if diags.has_errors() {
            return Err(diags);
        }
        let groups = layout
            .groups
            .keys()
            .map(|g| (g.clone(), layout.group_hosts(g)))
            .collect();
        Ok(Inventory {
            file: file.to_path_buf(),
            clusters,
            groups,
            warnings: diags,
        })
    }
}
