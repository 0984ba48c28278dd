//! `hadeploy-agent`, the node daemon binary: everything it does is `hadeploy::agent::cli`.

fn main() -> std::process::ExitCode {
    hadeploy::agent::cli::main(std::env::args_os())
}
