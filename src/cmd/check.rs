//! `hadeploy check`: validate an inventory offline and summarise each cluster in one line.

use std::fmt::Write;
use std::path::PathBuf;

use crate::config::inventory::Inventory;
use crate::error::{Error, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let inv = super::load_inventory(&args.inventory)?;
    let warnings = inv.warnings.warnings().count();
    if args.strict && warnings > 0 {
        return Err(Error::input(format!(
            "{}: {warnings} warning(s) and --strict",
            args.inventory.display()
        )));
    }
    super::print(summary(&inv).as_bytes())
}

/// One line per cluster, then the verdict.
fn summary(inv: &Inventory) -> String {
    let mut out = String::new();
    for c in &inv.clusters {
        let nodes: Vec<&str> = c.nodes.iter().map(|n| n.node_name.as_str()).collect();
        let vips: Vec<String> = c.vips.iter().map(|v| v.resource_spec()).collect();
        let resources: Vec<String> = c.resources.iter().map(|r| r.spec()).collect();
        let _ = writeln!(
            out,
            "cluster {}: nodes {} (preferred {}), {} via {} on {} port {}, keepalive {} deadtime {}, auth {}, resources {}",
            c.name,
            nodes.join(", "),
            c.preferred_node,
            vips.join(" "),
            c.media.as_str(),
            c.heartbeat_interface,
            c.udpport,
            c.keepalive,
            c.deadtime,
            c.auth.name(),
            resources.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "{}: ok ({} cluster(s), {} warning(s))",
        inv.file.display(),
        inv.clusters.len(),
        inv.warnings.warnings().count()
    );
    out
}
