//! `hadeploy-agent`, the node daemon binary: parse the command line, call `hadeploy::agent`, and
//! map the outcome to an exit code (0 ok, 1 failure, 6 configuration error — Heartbeat's code
//! for "Configuration error, heartbeat not started").

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use hadeploy::agent::control::{self, Request};
use hadeploy::agent::{daemon, decode, node};
use hadeploy::cli::{AgentCli, AgentCommand};

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn main() -> ExitCode {
    let cli = AgentCli::parse();
    match cli.command {
        AgentCommand::Run {
            config_dir,
            state_dir,
            control,
        } => run(&config_dir, &state_dir, &control),
        AgentCommand::CheckConfig { config_dir } => check_config(&config_dir),
        AgentCommand::Status { json, control } => status(&control, json),
        AgentCommand::Standby { control } => ask(&control, Request::Standby),
        AgentCommand::Takeover { control } => ask(&control, Request::Takeover),
        AgentCommand::Release { config_dir } => release(&config_dir),
        AgentCommand::Decode { authkeys, input } => decode_input(&authkeys, &input),
    }
}

fn run(config_dir: &Path, state_dir: &Path, control_path: &Path) -> ExitCode {
    let (settings, media, warnings) = match node::load(config_dir, state_dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("<3>hadeploy-agent: {e}");
            return ExitCode::from(6);
        }
    };
    for warning in &warnings {
        eprintln!("<4>{warning}");
    }
    if settings.realtime
        && let Err(e) = node::make_realtime()
    {
        eprintln!(
            "<4>hadeploy-agent: cannot run at real-time priority ({e}); a busy CPU may delay heartbeats"
        );
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("<3>hadeploy-agent: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = rt.block_on(async {
        let (media, inbound) = hadeploy::agent::media::Media::open(&media)
            .map_err(|e| format!("opening the heartbeat media: {e}"))?;
        let listener = control::bind(control_path).map_err(|e| e.to_string())?;
        daemon::run(settings, media, inbound, listener, node::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("<3>hadeploy-agent: {e}");
            ExitCode::from(1)
        }
    }
}

fn check_config(config_dir: &Path) -> ExitCode {
    match node::check(config_dir) {
        Ok((summary, warnings)) => {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy-agent check-config: {e}");
            ExitCode::from(6)
        }
    }
}

fn call(control_path: &Path, request: Request) -> Result<serde_json::Value, String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(control::request(control_path, request))
        .map_err(|e| e.to_string())
}

fn status(control_path: &Path, json: bool) -> ExitCode {
    match call(control_path, Request::Status) {
        Ok(answer) if json => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            print!("{}", daemon::status_table(&answer));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy-agent status: {e}");
            ExitCode::from(1)
        }
    }
}

fn ask(control_path: &Path, request: Request) -> ExitCode {
    match call(control_path, request) {
        Ok(answer) if answer["ok"] == true => {
            println!("{}: requested", request.as_str());
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprintln!(
                "hadeploy-agent {}: refused: {}",
                request.as_str(),
                answer["error"].as_str().unwrap_or("no reason given")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hadeploy-agent {}: {e}", request.as_str());
            ExitCode::from(1)
        }
    }
}

fn release(config_dir: &Path) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hadeploy-agent release: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(node::release(config_dir)) {
        Ok(lines) => {
            for line in lines {
                eprintln!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy-agent release: {e}");
            ExitCode::from(1)
        }
    }
}

fn decode_input(authkeys: &Path, input: &Path) -> ExitCode {
    let keys = match node::load_authkeys(authkeys) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("hadeploy-agent decode: {e}");
            return ExitCode::from(6);
        }
    };
    let bytes = if input == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(input)
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            eprintln!("hadeploy-agent decode: {}: {e}", input.display());
            return ExitCode::from(1);
        }
    };
    match decode::decode_capture(&bytes, &keys) {
        Ok(capture) => {
            // Usually piped into a pager or `head`: a closed pipe is the reader being done.
            use std::io::Write;
            match std::io::stdout().write_all(capture.to_string().as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("hadeploy-agent decode: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("hadeploy-agent decode: {}: {e}", input.display());
            ExitCode::from(1)
        }
    }
}
