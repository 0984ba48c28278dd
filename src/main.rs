//! `hadeploy`, the controller binary: parse the command line, call the library, print, and map
//! the outcome to an exit code (0 ok, 1 usage or inventory error).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hadeploy::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hadeploy",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("hadeploy: not available in this build");
            ExitCode::from(1)
        }
    }
}
