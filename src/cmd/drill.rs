//! `hadeploy drill`: which cluster and which drill the arguments name, then the run and its
//! report (table, JSON, HTML). A drill that failed an expectation exits 2; see
//! `drill::run::DrillError::status` for the codes of a drill that could not run.

use std::path::PathBuf;

use crate::config::inventory::{Cluster, Inventory};
use crate::drill::plan::{self, Mode};
use crate::drill::run::{self, DrillError, What};
use crate::error::{Error, Status};
use crate::transport::ssh::SshOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory (not needed with --list-scenarios).
    #[arg(required_unless_present = "list_scenarios")]
    pub inventory: Option<PathBuf>,
    /// The node to pull (the default drill: pull, check the VIP moved, restore, check failback).
    #[arg(long, conflicts_with_all = ["scenario", "script"])]
    pub pull: Option<String>,
    /// How to pull it.
    #[arg(long, value_enum, default_value_t = Mode::Stop)]
    pub mode: Mode,
    /// A built-in scenario (see --list-scenarios).
    #[arg(long, conflicts_with = "script")]
    pub scenario: Option<String>,
    /// A YAML drill script (`steps:` of pull/restore/expect_vip_on/expect_serving/wait).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// List the built-in scenarios.
    #[arg(long)]
    pub list_scenarios: bool,
    /// The cluster to drill, when the inventory has several.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Drill a cluster that is not healthy.
    #[arg(long)]
    pub force: bool,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Probe with a TCP connect to this port instead of HTTP on port 80.
    #[arg(long)]
    pub tcp: Option<u16>,
    /// One JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report with a timeline chart.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Trust a host key seen for the first time.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An ssh_config file to use instead of ~/.ssh/config.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
}

fn drill_error(e: DrillError) -> Error {
    Error::with(e.status(), e)
}

pub fn run(args: &Args) -> Result<Status, Error> {
    if args.list_scenarios {
        let list: String = plan::SCENARIOS
            .iter()
            .map(|(name, what)| format!("{name:<16} {what}\n"))
            .collect();
        return super::print(list.as_bytes());
    }
    let inventory = args
        .inventory
        .as_ref()
        .ok_or_else(|| Error::input("name the inventory"))?;
    let inv = super::load_inventory(inventory)?;
    let cluster = pick_cluster(&inv, args.cluster.as_deref())?;
    let what = what(args)?;
    let ssh = SshOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        config_file: args.ssh_config.clone(),
        ..SshOptions::default()
    };
    let runtime = super::runtime()?;
    if args.dry_run {
        let (name, steps) = runtime
            .block_on(async {
                let holder = run::holder(cluster, &ssh).await?;
                run::steps_for(&what, cluster, &holder)
            })
            .map_err(drill_error)?;
        let mut text = format!(
            "drill {name} on cluster {} (dry run: nothing is changed)\n",
            cluster.name
        );
        for (i, step) in steps.iter().enumerate() {
            text.push_str(&format!("{:>3}. {}\n", i + 1, step.describe()));
        }
        return super::print(text.as_bytes());
    }
    let options = run::Options {
        ssh,
        force: args.force,
        tcp_port: args.tcp,
    };
    let report = runtime
        .block_on(run::run(cluster, &what, &options))
        .map_err(drill_error)?;
    if let Some(path) = &args.report
        && let Err(e) = crate::files::write_atomic(path, report.html().as_bytes(), 0o644)
    {
        eprintln!("hadeploy drill: writing {}: {e}", path.display());
    }
    let text = if args.json {
        serde_json::to_string(&report).expect("the report serializes") + "\n"
    } else {
        report.table()
    };
    super::print(text.as_bytes())?;
    Ok(Status::not_as_desired_if(!report.passed))
}

/// The cluster `--cluster` names, or the only one.
pub fn pick_cluster<'a>(inv: &'a Inventory, name: Option<&str>) -> Result<&'a Cluster, Error> {
    let found = match (name, inv.clusters.as_slice()) {
        (Some(name), all) => all.iter().find(|c| c.name == name),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    found.ok_or_else(|| {
        let names: Vec<&str> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
        Error::input(format!(
            "say which cluster with --cluster (the inventory has: {})",
            names.join(", ")
        ))
    })
}

/// The drill the arguments ask for; a script is read and parsed here, before anything runs.
fn what(args: &Args) -> Result<What, Error> {
    if let Some(node) = &args.pull {
        return Ok(What::Pull {
            node: node.clone(),
            mode: args.mode,
        });
    }
    if let Some(name) = &args.scenario {
        return Ok(What::Scenario(name.clone()));
    }
    let Some(file) = &args.script else {
        return Err(Error::input(
            "say what to drill: --pull NODE, --scenario NAME or --script FILE",
        ));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::input(format!("{}: {e}", file.display())))?;
    let script = plan::parse_script(&text, &file.display().to_string()).map_err(Error::input)?;
    Ok(What::Script(script.steps))
}
