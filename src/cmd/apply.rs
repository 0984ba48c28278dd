//! `hadeploy apply`: the run's options from the arguments (forks, SSH reuse, the agent binary
//! beside this one), progress on the terminal, then the recap or JSON report and its exit bits.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::inventory::Inventory;
use crate::controller::apply::{self, ApplyOptions, Event, Outcome};
use crate::controller::report::ApplyReport;
use crate::error::{Error, Status, describe};
use crate::transport::ssh::SshOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// Show what would change; change nothing (exit 2 if anything would).
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

/// Like Ansible's ControlPersist: the next run within a minute skips the SSH handshake.
const SSH_REUSE: Duration = Duration::from_secs(60);
const MAX_DEFAULT_FORKS: usize = 50;

/// The run's options: every host at once up to 50, masters kept for the next run, and the
/// agent binary installed beside this one.
pub fn options(args: &Args, inv: &Inventory) -> Result<ApplyOptions, Error> {
    let agent_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("hadeploy-agent")))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            Error::input(
                "hadeploy-agent was not found beside the hadeploy binary; install both (cargo install --path .)",
            )
        })?;
    Ok(ApplyOptions {
        check: args.check,
        diff: args.diff,
        limit: args.limit.clone(),
        forks: args
            .forks
            .unwrap_or(host_count(inv).clamp(1, MAX_DEFAULT_FORKS)),
        ssh: SshOptions {
            accept_new_host_keys: args.accept_new_host_keys,
            config_file: args.ssh_config.clone(),
            reuse_for: Some(SSH_REUSE),
            ..SshOptions::default()
        },
        any_errors_fatal: args.any_errors_fatal,
        agent_binary,
        templates: args.templates.clone(),
    })
}

fn host_count(inv: &Inventory) -> usize {
    inv.clusters.iter().map(|c| c.nodes.len()).sum()
}

pub fn run(args: &Args, verbose: u8) -> Result<Status, Error> {
    let inv = super::load_inventory(&args.inventory)?;
    let options = options(args, &inv)?;
    let progress = Progress::new(args.json, verbose, host_count(&inv));
    let runtime = super::runtime()?;
    let hosts = runtime
        .block_on(apply::apply(&inv, &options, &|event| progress.show(event)))
        .map_err(|e| Error::input(describe(&e)))?;
    progress.finish();
    let report = ApplyReport {
        check: args.check,
        hosts,
    };
    let text = if args.json {
        report.json() + "\n"
    } else {
        report.text()
    };
    super::print(text.as_bytes())?;
    Ok(report.status())
}

/// How the run shows progress: a bar on a terminal, a line per host otherwise, nothing with
/// `--json` (stdout is the report).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    verbose: bool,
}

impl Progress {
    fn new(json: bool, verbose: u8, hosts: usize) -> Progress {
        let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (!json && on_terminal).then(|| {
            let bar = indicatif::ProgressBar::new(hosts as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} hosts {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            quiet: json,
            verbose: verbose > 0,
        }
    }

    fn show(&self, event: Event) {
        match (&self.bar, event) {
            (Some(bar), Event::Done { host, .. }) => {
                bar.inc(1);
                bar.set_message(host);
            }
            (Some(bar), Event::Step { host, description }) if self.verbose => {
                bar.println(format!("{host}: {description}"))
            }
            (None, Event::Step { host, description }) if !self.quiet && self.verbose => {
                eprintln!("{host}: {description}")
            }
            (None, Event::Done { host, outcome }) if !self.quiet => match outcome.error() {
                Some(e) => eprintln!("{host}: {}: {e}", outcome_word(&outcome)),
                None => eprintln!("{host}: {}", outcome.word()),
            },
            _ => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Failed(_) => "FAILED",
        Outcome::Unreachable(_) => "UNREACHABLE",
        Outcome::Ok | Outcome::Changed => "",
    }
}
