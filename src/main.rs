//! `hadeploy`, the controller binary: parse the command line, call the library, print, and map
//! the outcome to an exit code (0 ok, 1 usage or inventory error).

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hadeploy::cli::{ApplyArgs, Cli, Command, DrillArgs, LabCommand, LabFault};
use hadeploy::config::inventory::{Diagnostics, Inventory, secrets};
use hadeploy::controller::apply::{self as apply_run, ApplyOptions, Event, Outcome};
use hadeploy::lab::{self, Fault};
use hadeploy::render::{self, Renderer};
use hadeploy::transport::ssh::SshOptions;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { inventory, strict } => check(&inventory, strict),
        Command::Render {
            inventory,
            out,
            templates,
        } => render(&inventory, &out, templates.as_deref()),
        Command::Apply(args) => apply(&args, cli.verbose),
        Command::Drill(args) => drill(&args),
        Command::Lab { command } => lab(command),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hadeploy",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

fn load(inventory: &Path) -> Result<Inventory, ExitCode> {
    Inventory::load(inventory).map_err(|diags| {
        print_diagnostics(&diags);
        let errors = diags.errors().count();
        eprintln!(
            "{}: {errors} error{} — nothing was changed",
            inventory.display(),
            if errors == 1 { "" } else { "s" }
        );
        ExitCode::from(1)
    })
}

fn print_diagnostics(diags: &Diagnostics) {
    for d in &diags.0 {
        eprintln!("{d}");
    }
}

fn check(inventory: &Path, strict: bool) -> ExitCode {
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    print_diagnostics(&inv.warnings);
    for c in &inv.clusters {
        let nodes: Vec<&str> = c.nodes.iter().map(|n| n.node_name.as_str()).collect();
        let vips: Vec<String> = c.vips.iter().map(|v| v.resource_spec()).collect();
        println!(
            "cluster {}: nodes {} (preferred {}), {} via {} on {} port {}, keepalive {} deadtime {}, auth {}, resources {}",
            c.name,
            nodes.join(", "),
            c.preferred_node,
            vips.join(" "),
            c.media.as_str(),
            c.heartbeat_interface,
            c.udpport,
            c.keepalive,
            c.deadtime,
            c.auth.name(),
            c.resources
                .iter()
                .map(|r| r.spec())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let warnings = inv.warnings.warnings().count();
    if strict && warnings > 0 {
        eprintln!(
            "{}: {warnings} warning(s) and --strict",
            inventory.display()
        );
        return ExitCode::from(1);
    }
    println!(
        "{}: ok ({} cluster(s), {warnings} warning(s))",
        inventory.display(),
        inv.clusters.len()
    );
    ExitCode::SUCCESS
}

fn render(inventory: &Path, out: &Path, templates: Option<&Path>) -> ExitCode {
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    print_diagnostics(&inv.warnings);
    let result = (|| -> anyhow::Result<Vec<std::path::PathBuf>> {
        let renderer = Renderer::new(templates)?;
        // Render every cluster before writing anything, so an error leaves no partial tree.
        let mut all = Vec::new();
        for cluster in &inv.clusters {
            let secret = secrets::resolve(cluster)?;
            all.extend(renderer.render_cluster(cluster, secret.as_ref())?);
        }
        Ok(render::write_tree(out, &all)?)
    })();
    match result {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hadeploy render: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn apply(args: &ApplyArgs, verbose: u8) -> ExitCode {
    let inv = match load(&args.inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    print_diagnostics(&inv.warnings);
    let Some(agent_binary) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("hadeploy-agent")))
        .filter(|p| p.is_file())
    else {
        eprintln!(
            "hadeploy apply: hadeploy-agent was not found beside the hadeploy binary; install both (cargo install --path .)"
        );
        return ExitCode::from(1);
    };
    let host_count: usize = inv.clusters.iter().map(|c| c.nodes.len()).sum();
    let options = ApplyOptions {
        check: args.check,
        diff: args.diff,
        limit: args.limit.clone(),
        forks: args.forks.unwrap_or(host_count.clamp(1, 50)),
        ssh: SshOptions {
            accept_new_host_keys: args.accept_new_host_keys,
            config_file: args.ssh_config.clone(),
            // Like Ansible's ControlPersist: the next run within a minute skips the handshake.
            reuse_for: Some(std::time::Duration::from_secs(60)),
            ..SshOptions::default()
        },
        any_errors_fatal: args.any_errors_fatal,
        agent_binary,
        templates: args.templates.clone(),
    };
    let progress =
        (!args.json && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new(host_count as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} hosts {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
    let quiet = args.json;
    let on_event = |event: Event| match (&progress, event) {
        (Some(bar), Event::Done { host, .. }) => {
            bar.inc(1);
            bar.set_message(host);
        }
        (Some(bar), Event::Step { host, description }) if verbose > 0 => {
            bar.println(format!("{host}: {description}"))
        }
        (None, Event::Step { host, description }) if !quiet && verbose > 0 => {
            eprintln!("{host}: {description}")
        }
        (None, Event::Done { host, outcome }) if !quiet => {
            eprintln!("{host}: {}", outcome_word(&outcome))
        }
        _ => {}
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hadeploy apply: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let reports = match runtime.block_on(apply_run::apply(&inv, &options, &on_event)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hadeploy apply: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if args.json {
        let hosts: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let (status, error) = match &r.outcome {
                    Outcome::Ok => ("ok", None),
                    Outcome::Changed => ("changed", None),
                    Outcome::Failed(e) => ("failed", Some(e.clone())),
                    Outcome::Unreachable(e) => ("unreachable", Some(e.clone())),
                };
                serde_json::json!({"host": r.host, "cluster": r.cluster, "status": status, "error": error, "elapsed_ms": r.elapsed.as_millis() as u64,
                    "changes": r.steps.iter().map(|s| serde_json::json!({"step": s.description, "diff": s.diff})).collect::<Vec<_>>()})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"check": args.check, "hosts": hosts})
        );
    } else {
        for r in &reports {
            if !r.steps.is_empty() {
                println!("{} ({}):", r.host, r.cluster);
                for s in &r.steps {
                    println!(
                        "  {}{}",
                        if args.check { "would " } else { "" },
                        s.description
                    );
                    if let Some(diff) = &s.diff {
                        for line in diff.lines() {
                            println!("    {line}");
                        }
                    }
                }
            }
        }
        println!(
            "\nRECAP{}",
            if args.check {
                " (check mode: nothing was changed)"
            } else {
                ""
            }
        );
        for r in &reports {
            let changed = if matches!(r.outcome, Outcome::Changed) {
                r.steps.len()
            } else {
                0
            };
            let (failed, unreachable) = (
                matches!(r.outcome, Outcome::Failed(_)) as u8,
                matches!(r.outcome, Outcome::Unreachable(_)) as u8,
            );
            println!(
                "{:<24} ok={} changed={changed} failed={failed} unreachable={unreachable}",
                r.host,
                (failed + unreachable == 0) as u8
            );
            if let Outcome::Failed(e) | Outcome::Unreachable(e) = &r.outcome {
                println!("    {e}");
            }
        }
    }
    if reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Unreachable(_)))
    {
        ExitCode::from(4)
    } else if reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed(_)))
    {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn outcome_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".into(),
        Outcome::Changed => "changed".into(),
        Outcome::Failed(e) => format!("FAILED: {e}"),
        Outcome::Unreachable(e) => format!("UNREACHABLE: {e}"),
    }
}

fn lab(command: LabCommand) -> ExitCode {
    let progress = |line: &str| eprintln!("lab: {line}");
    let result = match command {
        LabCommand::Up {
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
            println!(
                "lab {} is up: {} nodes, VIP {}",
                lab.name,
                lab.nodes.len(),
                lab.vip
            );
            println!("{}", lab.inventory_path().display());
        }),
        LabCommand::Down { name } => lab::down(&name)
            .map(|n| println!("lab {name}: removed {n} containers/networks/volumes")),
        LabCommand::Status { name } => lab::status(&name).map(|s| print!("{s}")),
        LabCommand::Image { flavor } => {
            lab::image::ensure(flavor, &progress).map(|tag| println!("{tag}"))
        }
        LabCommand::Fault { name, fault } => lab::Lab::load(&name).and_then(|lab| {
            let (node, fault) = match fault {
                LabFault::Crash { node } => (node, Fault::Crash),
                LabFault::Hang { node } => (node, Fault::Hang),
                LabFault::Resume { node } => (node, Fault::Resume),
                LabFault::Unplug { node, all: false } => (node, Fault::UnplugHeartbeat),
                LabFault::Unplug { node, all: true } => (node, Fault::UnplugAll),
                LabFault::Plug { node } => (node, Fault::Plug),
                LabFault::Reboot { node } => (node, Fault::Reboot),
                LabFault::Start { node } => (node, Fault::Start),
            };
            lab::inject(&lab, &node, fault)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hadeploy lab: {e}");
            ExitCode::from(1)
        }
    }
}

fn drill(args: &DrillArgs) -> ExitCode {
    use hadeploy::drill::{plan, run};
    if args.list_scenarios {
        for (name, what) in plan::SCENARIOS {
            println!("{name:<16} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let Some(inventory) = &args.inventory else {
        eprintln!("hadeploy drill: name the inventory");
        return ExitCode::from(1);
    };
    let inv = match load(inventory) {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    let cluster = match (&args.cluster, inv.clusters.as_slice()) {
        (Some(name), all) => all.iter().find(|c| &c.name == name),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    let Some(cluster) = cluster else {
        let names: Vec<&str> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
        eprintln!(
            "hadeploy drill: say which cluster with --cluster (the inventory has: {})",
            names.join(", ")
        );
        return ExitCode::from(1);
    };
    let what = if let Some(node) = &args.pull {
        run::What::Pull {
            node: node.clone(),
            mode: args.mode,
        }
    } else if let Some(name) = &args.scenario {
        run::What::Scenario(name.clone())
    } else if let Some(file) = &args.script {
        let parsed = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|text| {
                plan::parse_script(&text, &file.display().to_string()).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(script) => run::What::Script(script.steps),
            Err(e) => {
                eprintln!("hadeploy drill: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        eprintln!(
            "hadeploy drill: say what to drill: --pull NODE, --scenario NAME or --script FILE"
        );
        return ExitCode::from(1);
    };
    let ssh = SshOptions {
        accept_new_host_keys: args.accept_new_host_keys,
        config_file: args.ssh_config.clone(),
        ..SshOptions::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hadeploy drill: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if args.dry_run {
        let planned = runtime.block_on(async {
            let holder = run::holder(cluster, &ssh).await?;
            run::steps_for(&what, cluster, &holder)
        });
        return match planned {
            Ok((name, steps)) => {
                println!(
                    "drill {name} on cluster {} (dry run: nothing is changed)",
                    cluster.name
                );
                for (i, step) in steps.iter().enumerate() {
                    println!("{:>3}. {}", i + 1, step.describe());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hadeploy drill: {e}");
                ExitCode::from(1)
            }
        };
    }
    let options = run::Options {
        ssh,
        force: args.force,
        tcp_port: args.tcp,
    };
    match runtime.block_on(run::run(cluster, &what, &options)) {
        Ok(report) => {
            if let Some(path) = &args.report
                && let Err(e) = render::write_atomic(path, report.html().as_bytes(), 0o644)
            {
                eprintln!("hadeploy drill: writing {}: {e}", path.display());
            }
            if args.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print!("{}", report.table());
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("hadeploy drill: {e}");
            ExitCode::from(1)
        }
    }
}
