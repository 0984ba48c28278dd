//! `hadeploy`, the controller binary: everything it does is `hadeploy::cmd`, which also maps
//! every outcome to the one exit-code scheme (`hadeploy::error`).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(hadeploy::cmd::main(std::env::args_os()))
}
