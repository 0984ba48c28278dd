//! `hadeploy lab`: bring labs up and down, show them, build their image, inject faults.

use crate::error::{Error, Status};
use crate::lab::{self, Fault, Flavor};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Build the node image if needed, create the networks and nodes, write the lab inventory.
    Up {
        #[arg(long, default_value_t = 2)]
        nodes: u8,
        #[arg(long, value_enum, default_value_t = Flavor::Systemd)]
        flavor: Flavor,
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
        #[arg(long, value_enum, default_value_t = Flavor::Systemd)]
        flavor: Flavor,
    },
    /// Inject a fault into a lab node.
    Fault {
        #[arg(long, default_value = "hadeploy")]
        name: String,
        #[arg(value_enum)]
        fault: Fault,
        node: String,
        /// With `unplug`: pull every cable, not only the heartbeat one.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(command: Command) -> Result<Status, Error> {
    let progress = |line: &str| eprintln!("lab: {line}");
    let output = match command {
        Command::Up {
            nodes,
            flavor,
            name,
        } => lab::up(
            &lab::UpOptions {
                name,
                nodes,
                flavor,
            },
            &progress,
        )
        .map(|lab| {
            format!(
                "lab {} is up: {} nodes, VIP {}\n{}\n",
                lab.name,
                lab.nodes.len(),
                lab.vip,
                lab.inventory_path().display()
            )
        }),
        Command::Down { name } => lab::down(&name)
            .map(|n| format!("lab {name}: removed {n} containers/networks/volumes\n")),
        Command::Status { name } => lab::status(&name),
        Command::Image { flavor } => lab::image::ensure(flavor, &progress).map(|tag| tag + "\n"),
        Command::Fault {
            name,
            fault,
            node,
            all,
        } => {
            let fault = match (fault, all) {
                (Fault::UnplugHeartbeat, true) => Fault::UnplugAll,
                (_, true) => return Err(Error::input("--all goes with unplug only")),
                (fault, false) => fault,
            };
            lab::Lab::load(&name)
                .and_then(|lab| lab::inject(&lab, &node, fault))
                .map(|()| String::new())
        }
    };
    let text = output.map_err(Error::input)?;
    super::print(text.as_bytes())
}
