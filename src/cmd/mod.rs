//! The `hadeploy` command line: the clap definitions, one module per subcommand (each turns its
//! parsed arguments into the library's options, runs, and prints its report), and [`main`], the
//! one place where a command's outcome becomes an exit code (`crate::error` documents the
//! codes). The binary only calls [`main`].

pub mod apply;
pub mod check;
pub mod diff;
pub mod drill;
pub mod lab;
pub mod manual;
pub mod render;
pub mod rotate_key;
pub mod status;

use std::ffi::OsString;
use std::path::Path;

use clap::{Parser, Subcommand};

use crate::config::inventory::Inventory;
use crate::error::{Error, Status};

/// The controller: `hadeploy`.
#[derive(Debug, Parser)]
#[command(
    name = "hadeploy",
    version,
    about = "Heartbeat-style active/passive clusters from one inventory, with measured failover drills",
    after_help = "Exit codes (bits, combined): 0 ok; 1 usage or input error, nothing done; 2 not as desired (host failed, drift, would change, drill failed, cluster degraded); 4 a host unreachable; 8 a critical invariant broken (a VIP not on exactly one node)."
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
    /// Validate an inventory (YAML or INI) offline: syntax, keys, types, addresses, timers, clusters.
    Check(check::Args),
    /// Render /etc/ha.d/{ha.cf,haresources,authkeys} for every node into a directory.
    Render(render::Args),
    /// Bring every node to the desired state over SSH and start the cluster.
    Apply(apply::Args),
    /// Every difference from the inventory, between nodes and at run time; changes nothing.
    Diff(diff::Args),
    /// Pull a node out of a live cluster and measure what the clients saw; always restored.
    Drill(drill::Args),
    /// Who holds what on every cluster, how every node sees the others; exit 2 when degraded.
    Status(status::Args),
    /// A new authkeys secret on every node, with no moment the nodes stop trusting each other.
    RotateKey(rotate_key::Args),
    /// Local Docker nodes to try hadeploy and rehearse drills on.
    Lab {
        #[command(subcommand)]
        command: lab::Command,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print or write the manual pages: hadeploy(1) and hadeploy-agent(8).
    Man(manual::Args),
}

/// Parses `args`, runs the command and returns the process exit code. clap's own errors are
/// usage errors (1); `--help` and `--version` exit 0.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    match run(cli) {
        Ok(status) => status.code(),
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// Prints a clap error or its help/version text; 0 for those, 1 for a usage error.
pub fn clap_exit(e: &clap::Error) -> u8 {
    let _ = e.print();
    if e.use_stderr() { 1 } else { 0 }
}

pub fn run(cli: Cli) -> Result<Status, Error> {
    match cli.command {
        Command::Check(args) => check::run(&args).map_err(|e| e.context("hadeploy check")),
        Command::Render(args) => render::run(&args).map_err(|e| e.context("hadeploy render")),
        Command::Apply(args) => {
            apply::run(&args, cli.verbose).map_err(|e| e.context("hadeploy apply"))
        }
        Command::Diff(args) => diff::run(&args).map_err(|e| e.context("hadeploy diff")),
        Command::Drill(args) => drill::run(&args).map_err(|e| e.context("hadeploy drill")),
        Command::Status(args) => status::run(&args).map_err(|e| e.context("hadeploy status")),
        Command::RotateKey(args) => {
            rotate_key::run(&args).map_err(|e| e.context("hadeploy rotate-key"))
        }
        Command::Lab { command } => lab::run(command).map_err(|e| e.context("hadeploy lab")),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "hadeploy",
                &mut out,
            );
            print(&out)
        }
        Command::Man(args) => manual::run(&args).map_err(|e| e.context("hadeploy man")),
    }
}

/// Loads and validates an inventory, printing every diagnostic (warnings too) to stderr; a
/// failed load is an input error that says nothing was changed.
pub fn load_inventory(path: &Path) -> Result<Inventory, Error> {
    match Inventory::load(path) {
        Ok(inv) => {
            for d in &inv.warnings.0 {
                eprintln!("{d}");
            }
            Ok(inv)
        }
        Err(diags) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            let errors = diags.errors().count();
            let plural = if errors == 1 { "" } else { "s" };
            Err(Error::input(format!(
                "{}: {errors} error{plural} — nothing was changed",
                path.display()
            )))
        }
    }
}

/// Writes a report to stdout; a closed pipe is the reader being done.
pub fn print(text: &[u8]) -> Result<Status, Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    crate::error::output(stdout.write_all(text).and_then(|()| stdout.flush()))?;
    Ok(Status::OK)
}

/// A multi-threaded runtime for the commands that talk to many hosts at once.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::input(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(args: &[&str]) -> u8 {
        main(
            std::iter::once("hadeploy")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn usage_errors_exit_1_and_help_exits_0() {
        assert_eq!(code(&["apply", "--bogus"]), 1);
        assert_eq!(code(&["no-such-command"]), 1);
        assert_eq!(code(&[]), 1);
        assert_eq!(code(&["--version"]), 0);
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
