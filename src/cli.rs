//! Command-line definitions for both binaries, in one place so that shell completions (and a
//! man page later) are generated from exactly what the parsers accept. Parsing only: the
//! binaries hand the parsed values to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The controller: `hadeploy`.
#[derive(Debug, Parser)]
#[command(
    name = "hadeploy",
    version,
    about = "Heartbeat-style active/passive clusters from one inventory, with measured failover drills"
)]
pub struct Cli {
    /// More detail (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an inventory offline: YAML, keys, types, addresses, timers, clusters.
    Check {
        inventory: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Render /etc/ha.d/{ha.cf,haresources,authkeys} for every node into a directory.
    Render {
        inventory: PathBuf,
        /// Output directory; files land in OUT/<node>/etc/ha.d/.
        #[arg(long)]
        out: PathBuf,
        /// Directory with ha.cf.j2, haresources.j2, authkeys.j2 overriding the built-in ones.
        #[arg(long)]
        templates: Option<PathBuf>,
    },
    /// Bring every node to the desired state over SSH and start the cluster.
    Apply(ApplyArgs),
    /// Pull a node out of a live cluster and measure what the clients saw; always restored.
    Drill(DrillArgs),
    /// Local Docker nodes to try hadeploy and rehearse drills on.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    pub inventory: PathBuf,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub check: bool,
    /// Show unified diffs of changed files (secrets redacted).
    #[arg(long)]
    pub diff: bool,
    /// Only these hosts: names, groups (clusters) or globs, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Hosts worked on at once (default: all, up to 50).
    #[arg(long)]
    pub forks: Option<usize>,
    /// Trust a host key seen for the first time (StrictHostKeyChecking=accept-new).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An ssh_config file to use instead of ~/.ssh/config.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// Stop every host as soon as one fails.
    #[arg(long)]
    pub any_errors_fatal: bool,
    /// One machine-readable JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Template directory overriding the built-in ha.cf/haresources/authkeys templates.
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The inventory (not needed with --list-scenarios).
    #[arg(required_unless_present = "list_scenarios")]
    pub inventory: Option<PathBuf>,
    /// The node to pull (the default drill: pull, check the VIP moved, restore, check failback).
    #[arg(long, conflicts_with_all = ["scenario", "script"])]
    pub pull: Option<String>,
    /// How to pull it.
    #[arg(long, value_enum, default_value_t = crate::drill::plan::Mode::Stop)]
    pub mode: crate::drill::plan::Mode,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabFlavor {
    /// systemd as PID 1.
    Systemd,
    /// sysvinit-core as PID 1 (tests the update-rc.d path).
    Sysvinit,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the node image if needed, create the networks and nodes, write the lab inventory.
    Up {
        #[arg(long, default_value_t = 2)]
        nodes: u8,
        #[arg(long, value_enum, default_value_t = LabFlavor::Systemd)]
        flavor: LabFlavor,
        #[arg(long, default_value = "hadeploy")]
        name: String,
    },
    /// Remove every container, network and volume the lab created.
    Down {
        #[arg(long, default_value = "hadeploy")]
        name: String,
    },
    /// Show nodes, addresses and the VIP range.
    Status {
        #[arg(long, default_value = "hadeploy")]
        name: String,
    },
    /// Build (or rebuild) the node image only.
    Image {
        #[arg(long, value_enum, default_value_t = LabFlavor::Systemd)]
        flavor: LabFlavor,
    },
    /// Inject a fault into a lab node.
    Fault {
        #[arg(long, default_value = "hadeploy")]
        name: String,
        #[command(subcommand)]
        fault: LabFault,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LabFault {
    /// Crash the node (docker kill).
    Crash { node: String },
    /// Freeze the node (docker pause).
    Hang { node: String },
    /// Unfreeze a hung node (docker unpause).
    Resume { node: String },
    /// Pull the node's heartbeat cable, or every cable with --all.
    Unplug {
        node: String,
        #[arg(long)]
        all: bool,
    },
    /// Plug the cables back in.
    Plug { node: String },
    /// Reboot the node (docker restart).
    Reboot { node: String },
    /// Start a crashed node again.
    Start { node: String },
}

/// The node daemon: `hadeploy-agent`.
#[derive(Debug, Parser)]
#[command(
    name = "hadeploy-agent",
    version,
    about = "Heartbeat 3.0.6-compatible cluster agent"
)]
pub struct AgentCli {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the cluster agent (in the foreground; systemd or the init script backgrounds it).
    Run {
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
        #[arg(long, default_value = "/var/lib/hadeploy-agent")]
        state_dir: PathBuf,
        #[arg(long, default_value = crate::agent::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Parse ha.cf, haresources and authkeys with the real daemon's rules and report problems.
    CheckConfig {
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
    },
    /// Nodes, links, resources and counters of the running agent (like cl_status).
    Status {
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = crate::agent::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Hand every resource this node holds to a peer (hb_standby all).
    Standby {
        #[arg(long, default_value = crate::agent::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Ask the peers to hand every resource to this node (hb_takeover all).
    Takeover {
        #[arg(long, default_value = crate::agent::control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Stop the resources and VIPs the agent may have left running (the unit's ExecStopPost,
    /// after a crash); does nothing for groups this node does not hold.
    Release {
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
    },
    /// Decode heartbeat datagrams from a pcap file (or one raw datagram), showing every field
    /// and whether the signatures verify.
    Decode {
        #[arg(long, default_value = "/etc/ha.d/authkeys")]
        authkeys: PathBuf,
        /// A pcap file, or `-` for standard input.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
}
