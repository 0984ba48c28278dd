//! The `hadeploy-agent` command line: its clap definitions and what each subcommand does —
//! run the daemon, check the configuration, talk to the running daemon over the control
//! socket, release after a crash, decode captures. Exit codes are Heartbeat's where it has one
//! (6: configuration error, the daemon not started), else 0 ok and 1 failure; the binary only
//! calls [`main`].

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::control::{self, ControlAnswer, Request, StatusAnswer};
use super::{daemon, decode, setup};

/// Heartbeat's "configuration error, heartbeat not started".
pub const EXIT_CONFIG: u8 = 6;

/// The node daemon: `hadeploy-agent`.
#[derive(Debug, Parser)]
#[command(
    name = "hadeploy-agent",
    version,
    about = "Heartbeat 3.0.6-compatible cluster agent",
    after_help = "Exit codes: 0 ok; 1 failure (usage included); 6 configuration error, the agent not started (Heartbeat's own code)."
)]
pub struct AgentCli {
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    Prometheus,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the cluster agent (in the foreground; systemd or the init script backgrounds it).
    Run {
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
        #[arg(long, default_value = "/var/lib/hadeploy-agent")]
        state_dir: PathBuf,
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Parse ha.cf, haresources and authkeys with the real daemon's rules and report problems.
    CheckConfig {
        #[arg(long, default_value = "/etc/ha.d")]
        config_dir: PathBuf,
    },
    /// Nodes, links, resources and counters of the running agent (like cl_status).
    Status {
        /// One JSON object instead of the table (the same as `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// table, json, or prometheus (the text exposition format, for node_exporter's
        /// textfile collector).
        #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
        format: StatusFormat,
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Hand every resource this node holds to a peer (hb_standby all).
    Standby {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Ask the peers to hand every resource to this node (hb_takeover all).
    Takeover {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Make the running agent read its configuration again (as SIGHUP does) and apply what can
    /// change live — timers, keys, resource checks — without leaving the cluster or touching
    /// what it holds. A file that does not load, or a change only a restart can make (nodes,
    /// media, udpport, haresources groups, auto_failback), is refused with the reason and the
    /// agent runs on as before; exit 1 then.
    Reload {
        #[arg(long, default_value = control::DEFAULT_PATH)]
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

/// hadeploy-agent(8), the page the agent's unit names as its documentation.
pub fn manual() -> Vec<u8> {
    crate::manpage::render(<AgentCli as clap::CommandFactory>::command(), "8")
}

/// Parses `args`, runs the subcommand and returns the exit code; clap's own errors exit 1,
/// `--help` and `--version` 0.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match AgentCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match cli.command {
        AgentCommand::Run {
            config_dir,
            state_dir,
            control,
        } => run(&config_dir, &state_dir, &control),
        AgentCommand::CheckConfig { config_dir } => check_config(&config_dir),
        AgentCommand::Status {
            json,
            format,
            control,
        } => status(&control, if json { StatusFormat::Json } else { format }),
        AgentCommand::Standby { control } => ask(&control, Request::Standby),
        AgentCommand::Takeover { control } => ask(&control, Request::Takeover),
        AgentCommand::Reload { control } => ask(&control, Request::Reload),
        AgentCommand::Release { config_dir } => release(&config_dir),
        AgentCommand::Decode { authkeys, input } => decode_input(&authkeys, &input),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn run(config_dir: &Path, state_dir: &Path, control_path: &Path) -> ExitCode {
    let (settings, media, warnings) = match setup::load(config_dir, state_dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("<3>hadeploy-agent: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for warning in &warnings {
        eprintln!("<4>{warning}");
    }
    if settings.realtime
        && let Err(e) = setup::make_realtime()
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
        let (media, inbound) = super::media::Media::open(&media)
            .map_err(|e| format!("opening the heartbeat media: {e}"))?;
        let listener = control::bind(control_path).map_err(|e| e.to_string())?;
        let hangups = setup::hangups();
        daemon::run(
            settings,
            media,
            inbound,
            listener,
            setup::shutdown_signal(),
            hangups,
        )
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
    match setup::check(config_dir) {
        Ok((summary, warnings)) => {
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy-agent check-config: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// One request over the control socket: the agent's answer line as it came, and as `T`.
fn call<T: serde::de::DeserializeOwned>(
    control_path: &Path,
    request: Request,
) -> Result<(String, T), String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let line = rt
        .block_on(control::request_line(control_path, request))
        .map_err(|e| e.to_string())?;
    let answer = control::parse_answer(control_path, request, &line).map_err(|e| e.to_string())?;
    Ok((line, answer))
}

fn status(control_path: &Path, format: StatusFormat) -> ExitCode {
    match call::<StatusAnswer>(control_path, Request::Status) {
        // The line as the agent wrote it, fields this binary does not know included.
        Ok((line, _)) if format == StatusFormat::Json => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok((_, answer)) if format == StatusFormat::Prometheus => {
            print!(
                "{}",
                super::metrics::render(&answer, env!("CARGO_PKG_VERSION"))
            );
            ExitCode::SUCCESS
        }
        Ok((_, answer)) => {
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
    match call::<ControlAnswer>(control_path, request) {
        Ok((_, answer)) if answer.ok && request == Request::Reload => {
            if answer.changes.is_empty() {
                println!("reload: done; nothing the agent acts on changed");
            }
            for change in &answer.changes {
                println!("reload: {change}");
            }
            ExitCode::SUCCESS
        }
        Ok((_, answer)) if answer.ok => {
            println!("{}: requested", request.as_str());
            ExitCode::SUCCESS
        }
        Ok((_, answer)) => {
            eprintln!(
                "hadeploy-agent {}: refused: {}",
                request.as_str(),
                answer.error.as_deref().unwrap_or("no reason given")
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
    match rt.block_on(setup::release(config_dir)) {
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
    let keys = match setup::load_authkeys(authkeys) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("hadeploy-agent decode: {e}");
            return ExitCode::from(EXIT_CONFIG);
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
