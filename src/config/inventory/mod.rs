//! The operator's inventory: Ansible's layout (`layout`), from a YAML file read with positions
//! (`yaml`) or an INI file (`ini`), interpreted as HA clusters (`cluster`) with every mistake reported at file:line:column
//! (`diag`), and the authkeys secret each cluster signs with (`secrets`).

pub mod cluster;
pub mod diag;
pub mod ini;
pub mod layout;
pub mod secrets;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use cluster::{
    Cluster, ClusterNode, Connection, Media, ResourceSpec, SecretSource, Vip, VipKind,
};
pub use diag::{Diagnostic, Diagnostics, Severity};

/// A validated inventory: its clusters, and the warnings found on the way.
#[derive(Debug)]
pub struct Inventory {
    pub file: PathBuf,
    pub clusters: Vec<Cluster>,
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
        Ok(Inventory {
            file: file.to_path_buf(),
            clusters,
            warnings: diags,
        })
    }
}
