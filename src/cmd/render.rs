//! `hadeploy render`: every node's /etc/ha.d files into a directory, all clusters or nothing.

use std::path::PathBuf;

use crate::config::inventory::secrets;
use crate::error::{Error, Status, describe};
use crate::render::{self, Renderer};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// Output directory; files land in OUT/<node>/etc/ha.d/.
    #[arg(long)]
    pub out: PathBuf,
    /// Directory with ha.cf.j2, haresources.j2, authkeys.j2 overriding the built-in ones.
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let inv = super::load_inventory(&args.inventory)?;
    let renderer =
        Renderer::new(args.templates.as_deref()).map_err(|e| Error::input(describe(&e)))?;
    // Render every cluster before writing anything, so an error leaves no partial tree.
    let mut all = Vec::new();
    for cluster in &inv.clusters {
        let secret = secrets::resolve(cluster).map_err(|e| Error::input(describe(&e)))?;
        all.extend(
            renderer
                .render_cluster(cluster, secret.as_ref())
                .map_err(|e| Error::input(describe(&e)))?,
        );
    }
    let paths = render::write_tree(&args.out, &all).map_err(|e| Error::input(describe(&e)))?;
    let listing: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    super::print(listing.as_bytes())
}
