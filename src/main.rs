//! `hadeploy`, the controller binary: parse the command line, call the library, print, and map
//! the outcome to an exit code (0 ok, 1 usage or inventory error).

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hadeploy::cli::{Cli, Command};
use hadeploy::config::inventory::{Diagnostics, Inventory, secrets};
use hadeploy::render::{self, Renderer};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { inventory, strict } => check(&inventory, strict),
        Command::Render {
            inventory,
            out,
            templates,
        } => render(&inventory, &out, templates.as_deref()),
        Command::Lab { .. } => {
            eprintln!("hadeploy: the lab is not part of this build yet");
            ExitCode::from(1)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hadeploy",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

fn load(inventory: &Path) -> Result<Inventory, ExitCode> {
    Inventory::load(inventory).map_err(|diags| {
        print_diagnostics(&diags);
        let errors = diags.errors().count();
        eprintln!(
            "{}: {errors} error{} — nothing was changed",
            inventory.display(),
            if errors == 1 { "" } else { "s" }
        );
        ExitCode::from(1)
    })
}

fn print_diagnostics(diags: &Diagnostics) {
    for d in &diags.0 {
        eprintln!("{d}");
    }
}

fn check(inventory: &Path, strict: bool) -> ExitCode {
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    print_diagnostics(&inv.warnings);
    for c in &inv.clusters {
        let nodes: Vec<&str> = c.nodes.iter().map(|n| n.node_name.as_str()).collect();
        let vips: Vec<String> = c.vips.iter().map(|v| v.resource_spec()).collect();
        println!(
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
            c.resources
                .iter()
                .map(|r| r.spec())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let warnings = inv.warnings.warnings().count();
    if strict && warnings > 0 {
        eprintln!(
            "{}: {warnings} warning(s) and --strict",
            inventory.display()
        );
        return ExitCode::from(1);
    }
    println!(
        "{}: ok ({} cluster(s), {warnings} warning(s))",
        inventory.display(),
        inv.clusters.len()
    );
    ExitCode::SUCCESS
}

fn render(inventory: &Path, out: &Path, templates: Option<&Path>) -> ExitCode {
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    print_diagnostics(&inv.warnings);
    let result = (|| -> anyhow::Result<Vec<std::path::PathBuf>> {
        let renderer = Renderer::new(templates)?;
        // Render every cluster before writing anything, so an error leaves no partial tree.
        let mut all = Vec::new();
        for cluster in &inv.clusters {
            let secret = secrets::resolve(cluster)?;
            all.extend(renderer.render_cluster(cluster, secret.as_ref())?);
        }
        Ok(render::write_tree(out, &all)?)
    })();
    match result {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy render: {e:#}");
            ExitCode::from(1)
        }
    }
}
