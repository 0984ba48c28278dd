//! The `apply` run, one named phase each: render every cluster (`select_and_render`), probe
//! every selected host in parallel, one round trip each (`probe_all`), refuse what must not be
//! touched (the preflights), plan and execute per host (`plan_and_execute`), and finally
//! restart agents whose configuration changed — one node at a time, so a cluster never loses
//! all its agents at once (`restart_agents`). The services' own files (`ha_files`) are rendered
//! once the probe brought the facts (`render_service_files`), staged and tested on every node
//! before anything else changes (`stage_service_files`), and their services reloaded where they
//! run after the rest (`reload_services`). A failing or unreachable host never stops the others unless
//! `any_errors_fatal` asks for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::manifest;
use super::plan::{self, AgentAction, Desired, DesiredFile, ServiceFileMeta, Stamp, Step};
use super::probe::{self, InitSystem, NodeState, OsFamily};
use super::service_files::{self, Reloaded};
use crate::config::inventory::{Cluster, ClusterNode, Inventory, secrets};
use crate::config::roles::{Family, Roles};
use crate::files::sha1_hex;
use crate::render::system::{self, AgentService};
use crate::render::{RenderedFile, Renderer};
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::{ReadOnly, Transport, Upload};

/// A node that has not finished its probe by then is reported unreachable: a hung node must
/// not hold up the run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub check: bool,
    pub diff: bool,
    /// Host names, group names or globs; empty means every host.
    pub limit: Vec<String>,
    pub forks: usize,
    pub ssh: SshOptions,
    pub any_errors_fatal: bool,
    /// The agent binary to install (the controller's own build).
    pub agent_binary: PathBuf,
    pub templates: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Changed,
    Failed(String),
    Unreachable(String),
}

#[derive(Clone, Debug)]
pub struct StepReport {
    pub description: String,
    pub diff: Option<String>,
}

#[derive(Clone, Debug)]
pub struct HostReport {
    pub host: String,
    pub cluster: String,
    pub outcome: Outcome,
    pub steps: Vec<StepReport>,
    pub elapsed: Duration,
}

/// Progress, for the binary to show (a bar on a terminal, lines otherwise).
#[derive(Clone, Debug)]
pub enum Event {
    Probed { host: String },
    Step { host: String, description: String },
    Done { host: String, outcome: Outcome },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error("cannot read the agent binary {path}: {source}")]
    AgentBinary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--limit {0} matches no host of the inventory")]
    EmptyLimit(String),
    #[error(transparent)]
    Role(#[from] crate::config::roles::RoleError),
    /// A node refused the new `ha_files` (its config test) or could not stage them.
    #[error("{host}: {what}; {aftermath}:\n{output}")]
    ServiceFiles {
        host: String,
        what: String,
        aftermath: String,
        output: String,
    },
}

/// Everything known about one selected host while the run goes on.
struct HostRun {
    node: ClusterNode,
    cluster: usize,
    files: Vec<DesiredFile>,
    transport: Option<Arc<SshTransport>>,
    state: Option<NodeState>,
    report: HostReport,
}

/// Shell-style glob with `*` and `?`, enough for `--limit 'node*'`.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn selected(limit: &[String], cluster: &Cluster, node: &ClusterNode) -> bool {
    limit.is_empty()
        || limit.iter().any(|l| {
            glob_match(l, &node.host)
                || glob_match(l, &node.node_name)
                || glob_match(l, &cluster.name)
        })
}

/// How the probe reaches the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeMode {
    /// `apply`: the connection stays open for the steps.
    Apply,
    /// `diff`: through a [`ReadOnly`] transport that runs the probe and nothing else, also
    /// asking the agent for its view; the connection closes after it.
    ReadOnly,
}

/// One host as `diff` sees it: the probe, and the plan `apply` would run there — the same
/// plan, from the same code.
#[derive(Clone, Debug)]
pub struct Surveyed {
    pub node: ClusterNode,
    /// Index into the inventory's clusters.
    pub cluster: usize,
    /// `Ok` when the host was probed and passed the preflight; otherwise why not.
    pub outcome: Outcome,
    pub state: Option<NodeState>,
    pub desired: Option<Desired>,
    pub steps: Vec<Step>,
    /// The services the cluster's resource group starts, under this node's names for them.
    pub group_services: Vec<String>,
}

/// What `apply` and `survey` both start from: the roles, the agent to install, the selected
/// hosts with their rendered files (probed, and refused by the preflight where they
/// contradict the inventory), and the fork limit.
struct Prepared {
    roles: Roles,
    agent: AgentBinary,
    hosts: Vec<HostRun>,
    forks: Arc<Semaphore>,
}

async fn prepare(
    inventory: &Inventory,
    options: &ApplyOptions,
    mode: ProbeMode,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Prepared, ApplyError> {
    let renderer = Renderer::new(options.templates.as_deref())?;
    let mut prepared = Prepared {
        roles: Roles::load(inventory.file.parent().unwrap_or(Path::new(".")))?,
        agent: AgentBinary::read(&options.agent_binary)?,
        hosts: select_and_render(inventory, options, &renderer)?,
        forks: Arc::new(Semaphore::new(options.forks.max(1))),
    };
    probe_all(
        inventory,
        options,
        &prepared.roles,
        &prepared.forks,
        &mut prepared.hosts,
        mode,
        on_event,
    )
    .await;
    render_service_files(inventory, &mut prepared.hosts)?;
    preflight(inventory, &mut prepared.hosts);
    Ok(prepared)
}

/// Probes every selected host read-only and plans each as `apply` would, changing nothing.
pub async fn survey(
    inventory: &Inventory,
    options: &ApplyOptions,
) -> Result<Vec<Surveyed>, ApplyError> {
    let quiet = |_: Event| {};
    let Prepared {
        roles,
        agent,
        hosts,
        forks: _,
    } = prepare(inventory, options, ProbeMode::ReadOnly, &quiet).await?;
    let stamp = stamp(inventory);
    Ok(hosts
        .into_iter()
        .map(|host| {
            let (desired, steps) = match (&host.state, &host.report.outcome) {
                (Some(state), Outcome::Ok) => {
                    let desired = desired_for(inventory, &roles, &agent, &host, state, &stamp);
                    let steps = plan::plan(&desired, state);
                    (Some(desired), steps)
                }
                _ => (None, Vec::new()),
            };
            let family = host.state.as_ref().and_then(|s| family_of(s.os_family));
            let group_services = inventory.clusters[host.cluster]
                .resources
                .iter()
                .filter_map(|r| roles.for_service(&r.name)?.service_on(family))
                .map(str::to_string)
                .collect();
            Surveyed {
                node: host.node,
                cluster: host.cluster,
                outcome: host.report.outcome,
                state: host.state,
                desired,
                steps,
                group_services,
            }
        })
        .collect())
}

/// What this run's manifests are stamped with: the inventory file's digest and the time.
fn stamp(inventory: &Inventory) -> Stamp {
    Stamp {
        inventory_sha1: std::fs::read(&inventory.file)
            .map(|bytes| sha1_hex(&bytes))
            .unwrap_or_default(),
        now_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    }
}

pub async fn apply(
    inventory: &Inventory,
    options: &ApplyOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Vec<HostReport>, ApplyError> {
    let Prepared {
        roles,
        agent,
        mut hosts,
        forks,
    } = prepare(inventory, options, ProbeMode::Apply, on_event).await?;
    vip_preflight(inventory, &mut hosts).await;
    config_test_preflight(inventory, &roles, &mut hosts).await;
    let failed_early = hosts.iter().any(|h| h.report.outcome != Outcome::Ok);
    if options.any_errors_fatal && failed_early {
        return Ok(finish(hosts, on_event).await);
    }
    let staged = if options.check {
        Vec::new()
    } else {
        stage_service_files(inventory, &roles, &agent, &mut hosts).await?
    };
    let notify = plan_and_execute(
        inventory, options, &roles, &agent, &forks, &mut hosts, on_event,
    )
    .await;
    notify_agents(&roles, &mut hosts, notify).await;
    reload_services(inventory, &roles, &mut hosts, &staged).await;
    Ok(finish(hosts, on_event).await)
}

/// The agent binary this controller installs, read once and named by its sha1.
struct AgentBinary {
    bytes: Arc<Vec<u8>>,
    sha1: String,
}

impl AgentBinary {
    fn read(path: &Path) -> Result<AgentBinary, ApplyError> {
        let bytes = std::fs::read(path).map_err(|source| ApplyError::AgentBinary {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(AgentBinary {
            sha1: sha1_hex(&bytes),
            bytes: Arc::new(bytes),
        })
    }
}

fn desired_file(f: RenderedFile) -> DesiredFile {
    DesiredFile {
        path: format!("/{}", f.path),
        content: Arc::new(f.content.into_bytes()),
        mode: f.mode,
        secret: f.secret,
        notifies_agent: f.notifies_agent,
        service: None,
    }
}

/// The hosts `--limit` selects, each with its cluster's rendered /etc/ha.d files (the files
/// that depend on its init system are added once the probe has seen it).
fn select_and_render(
    inventory: &Inventory,
    options: &ApplyOptions,
    renderer: &Renderer,
) -> Result<Vec<HostRun>, ApplyError> {
    let mut hosts: Vec<HostRun> = Vec::new();
    for (index, cluster) in inventory.clusters.iter().enumerate() {
        let secret = secrets::resolve(cluster)?;
        let rendered = renderer.render_cluster(cluster, secret.as_ref())?;
        for (node, files) in cluster.nodes.iter().zip(rendered) {
            if !selected(&options.limit, cluster, node) {
                continue;
            }
            hosts.push(HostRun {
                node: node.clone(),
                cluster: index,
                files: files.files.into_iter().map(desired_file).collect(),
                transport: None,
                state: None,
                report: HostReport {
                    host: node.host.clone(),
                    cluster: cluster.name.clone(),
                    outcome: Outcome::Ok,
                    steps: Vec::new(),
                    elapsed: Duration::ZERO,
                },
            });
        }
    }
    if hosts.is_empty() {
        return Err(ApplyError::EmptyLimit(options.limit.join(",")));
    }
    Ok(hosts)
}

/// Connects to every host and reads its facts and managed state in one round trip, in
/// parallel; a host that cannot be reached or read keeps that as its outcome.
async fn probe_all(
    inventory: &Inventory,
    options: &ApplyOptions,
    roles: &Roles,
    forks: &Arc<Semaphore>,
    hosts: &mut [HostRun],
    mode: ProbeMode,
    on_event: &(dyn Fn(Event) + Sync),
) {
    let probe_paths: Vec<String> = hosts[0]
        .files
        .iter()
        .map(|f| f.path.clone())
        .chain(system::PATHS.iter().map(|p| format!("/{p}")))
        .chain([manifest::PATH.to_string()])
        // Every host's `ha_files`: one probe script serves a cluster, whose hosts may differ.
        .chain(
            hosts
                .iter()
                .flat_map(|h| h.node.files.iter().map(|f| f.dest.clone())),
        )
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    let probe_paths: Vec<&str> = probe_paths.iter().map(String::as_str).collect();
    let mut services = roles.all_services();
    if mode == ProbeMode::ReadOnly {
        // Another cluster daemon beside the agent is drift `diff` must see.
        services.extend(OTHER_CLUSTER_DAEMONS.iter().map(|s| s.to_string()));
    }
    let probe_scripts: Vec<Arc<String>> = inventory
        .clusters
        .iter()
        .map(|c| {
            let vips: Vec<_> = c.vips.iter().map(|v| v.address).collect();
            Arc::new(probe::script(
                &probe_paths,
                &services,
                &vips,
                mode == ProbeMode::ReadOnly,
            ))
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let (node, ssh, script, forks) = (
            host.node.clone(),
            options.ssh.clone(),
            probe_scripts[host.cluster].clone(),
            forks.clone(),
        );
        tasks.spawn(async move {
            let _permit = forks.acquire_owned().await;
            let started = Instant::now();
            let probed = tokio::time::timeout(PROBE_TIMEOUT, probe_one(&node, &ssh, &script, mode))
                .await
                .unwrap_or_else(|_| {
                    Err(Outcome::Unreachable(format!(
                        "{}: the probe did not finish within {} s",
                        node.host,
                        PROBE_TIMEOUT.as_secs()
                    )))
                });
            (i, probed, started)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((i, result, started)) = joined else {
            continue;
        };
        hosts[i].report.elapsed = started.elapsed();
        match result {
            Ok((transport, state)) => {
                hosts[i].transport = transport;
                hosts[i].state = Some(state);
                on_event(Event::Probed {
                    host: hosts[i].node.host.clone(),
                });
            }
            Err(outcome) => hosts[i].report.outcome = outcome,
        }
    }
}

/// The daemons that must not run beside the agent: two cluster managers would fight over the
/// VIPs.
pub const OTHER_CLUSTER_DAEMONS: [&str; 2] = ["heartbeat", "keepalived"];

/// Connects and probes one host. In read-only mode the probe goes through [`ReadOnly`] and
/// the connection is closed, so nothing else can reach the node.
async fn probe_one(
    node: &ClusterNode,
    ssh: &SshOptions,
    script: &str,
    mode: ProbeMode,
) -> Result<(Option<Arc<SshTransport>>, NodeState), Outcome> {
    let transport = SshTransport::connect(&node.host, &node.connection, ssh)
        .await
        .map_err(|e| Outcome::Unreachable(e.to_string()))?;
    let ran = match mode {
        ProbeMode::Apply => transport.run(script, None).await,
        ProbeMode::ReadOnly => ReadOnly::new(&transport, &[script]).run(script, None).await,
    };
    let transport = match mode {
        ProbeMode::Apply => Some(Arc::new(transport)),
        ProbeMode::ReadOnly => {
            transport.close().await;
            None
        }
    };
    let out = ran.map_err(|e| Outcome::Unreachable(e.to_string()))?;
    match probe::parse(&out.stdout_text()) {
        Ok(state) => Ok((transport, state)),
        Err(e) => Err(Outcome::Failed(format!(
            "probe: {e}; stderr: {}",
            out.stderr_text().trim()
        ))),
    }
}

/// Plans every healthy host against what its probe saw and, unless checking, executes the
/// plans in parallel. Returns the hosts whose running agent must reload or restart for a new
/// configuration, and which.
async fn plan_and_execute(
    inventory: &Inventory,
    options: &ApplyOptions,
    roles: &Roles,
    agent: &AgentBinary,
    forks: &Arc<Semaphore>,
    hosts: &mut [HostRun],
    on_event: &(dyn Fn(Event) + Sync),
) -> Vec<(usize, AgentAction)> {
    let stamp = &stamp(inventory);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter_mut().enumerate() {
        let (Some(transport), Some(state)) = (host.transport.clone(), host.state.clone()) else {
            continue;
        };
        if host.report.outcome != Outcome::Ok {
            continue;
        }
        let desired = desired_for(inventory, roles, agent, host, &state, stamp);
        let steps = plan::plan(&desired, &state);
        host.report.steps = steps
            .iter()
            .map(|s| StepReport {
                description: s.describe(),
                diff: if options.diff { s.diff(&state) } else { None },
            })
            .collect();
        let agent_was_running = state
            .services
            .get("hadeploy-agent")
            .is_some_and(|s| s.running);
        let action = if agent_was_running {
            plan::agent_action(&steps, &state)
        } else {
            AgentAction::Nothing
        };
        if options.check || steps.is_empty() {
            if !steps.is_empty() {
                host.report.outcome = Outcome::Changed;
            }
            if let Some(description) = action.describe() {
                host.report.steps.push(StepReport {
                    description,
                    diff: None,
                });
            }
            continue;
        }
        let events: Vec<String> = steps.iter().map(Step::describe).collect();
        let (bytes, forks, host_name) =
            (agent.bytes.clone(), forks.clone(), host.node.host.clone());
        tasks.spawn(async move {
            let _permit = forks.acquire_owned().await;
            let result = execute(transport, &steps, bytes).await;
            (i, host_name, events, result.map(|()| action))
        });
    }
    let mut notify = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((i, host, events, result)) = joined else {
            continue;
        };
        for description in events {
            on_event(Event::Step {
                host: host.clone(),
                description,
            });
        }
        match result {
            Ok(action) => {
                hosts[i].report.outcome = Outcome::Changed;
                if action != AgentAction::Nothing {
                    notify.push((i, action));
                }
            }
            Err(e) => hosts[i].report.outcome = Outcome::Failed(e),
        }
    }
    notify.sort_by_key(|(i, _)| *i);
    notify
}

/// Everything `host` should end up with: its cluster's rendered files, the agent's unit or
/// init script for the init system the probe saw, this controller's agent, the services to
/// keep out of boot under this distribution's names.
fn desired_for(
    inventory: &Inventory,
    roles: &Roles,
    agent: &AgentBinary,
    host: &HostRun,
    state: &NodeState,
    stamp: &Stamp,
) -> Desired {
    let service = match state.init {
        InitSystem::Systemd => AgentService::SystemdUnit,
        InitSystem::Sysvinit | InitSystem::Other => AgentService::InitScript,
    };
    let cluster = &inventory.clusters[host.cluster];
    let mut files = host.files.clone();
    files.extend(
        system::files(service, cluster.deadtime.as_std())
            .into_iter()
            .map(desired_file),
    );
    Desired {
        files,
        agent_sha1: agent.sha1.clone(),
        keep_out_of_boot: keep_out_of_boot(&cluster.disable_autostart, roles, state.os_family),
        stamp: stamp.clone(),
    }
}

/// The handler, one node at a time, each only after the heartbeat role's config test accepted
/// the new configuration (a configuration the agent would refuse must not reach a running
/// cluster member): agents whose changes are all live reload in place — the cluster keeps its
/// holder — and the others restart. A reload the agent refuses (its loaded configuration was
/// not the one on disk) falls back to the restart.
async fn notify_agents(roles: &Roles, hosts: &mut [HostRun], notify: Vec<(usize, AgentAction)>) {
    let test = roles
        .get("heartbeat")
        .and_then(|r| r.config_test.clone())
        .map(|t| format!("{t} >/dev/null && "))
        .unwrap_or_default();
    for (i, action) in notify {
        let Some(transport) = hosts[i].transport.clone() else {
            continue;
        };
        let init = hosts[i]
            .state
            .as_ref()
            .map(|s| s.init)
            .unwrap_or(InitSystem::Other);
        let restart = match init {
            InitSystem::Systemd => "systemctl restart hadeploy-agent.service",
            _ => "/etc/init.d/hadeploy-agent restart",
        };
        let Some(description) = action.describe() else {
            continue;
        };
        let script = match &action {
            AgentAction::Reload(_) => format!(
                "{test}{{ {agent} reload >/dev/null || {{ echo 'the agent refused the reload; restarting it' >&2; {restart}; }}; }}",
                agent = super::probe::AGENT_PATH
            ),
            _ => format!("{test}{restart}"),
        };
        match transport.run(&script, None).await {
            Ok(out) if out.success() => {
                let fell_back = out.stderr_text().contains("refused the reload");
                hosts[i].report.steps.push(StepReport {
                    description: if fell_back {
                        "handler: restart hadeploy-agent, a hand-off where it holds (it refused the reload)".into()
                    } else {
                        description
                    },
                    diff: None,
                });
            }
            Ok(out) => {
                hosts[i].report.outcome =
                    Outcome::Failed(format!("{description}: {}", out.stderr_text().trim()))
            }
            Err(e) => hosts[i].report.outcome = Outcome::Failed(e.to_string()),
        }
    }
}

async fn finish(hosts: Vec<HostRun>, on_event: &(dyn Fn(Event) + Sync)) -> Vec<HostReport> {
    let mut reports = Vec::new();
    for host in hosts {
        on_event(Event::Done {
            host: host.report.host.clone(),
            outcome: host.report.outcome.clone(),
        });
        if let Some(t) = host.transport
            && let Ok(t) = Arc::try_unwrap(t)
        {
            t.close().await;
        }
        reports.push(host.report);
    }
    reports
}

/// Runs the planned steps over the one connection: the uploads all at once, beside them one
/// script with the steps that do not need the files (SysV link syncs in the background), then
/// one script with the rest (the agent's reload and start).
async fn execute<T: Transport + 'static>(
    transport: Arc<T>,
    steps: &[Step],
    agent: Arc<Vec<u8>>,
) -> Result<(), String> {
    let mut tasks = tokio::task::JoinSet::new();
    let files: Vec<Step> = steps
        .iter()
        .filter(|s| match s {
            // `ha_files` were staged, tested and committed before this run's other steps.
            Step::PutFile { file, .. } => file.service.is_none(),
            Step::PutAgent | Step::WriteManifest(_) => true,
            _ => false,
        })
        .cloned()
        .collect();
    if !files.is_empty() {
        let (transport, agent) = (transport.clone(), agent.clone());
        tasks.spawn(async move {
            // The record goes in the same all-or-nothing batch as the files it describes.
            let records: Vec<Vec<u8>> = files
                .iter()
                .map(|step| match step {
                    Step::WriteManifest(m) => m.to_bytes(),
                    _ => Vec::new(),
                })
                .collect();
            let uploads: Vec<Upload<'_>> = files
                .iter()
                .zip(&records)
                .map(|(step, record)| match step {
                    Step::PutFile { file, existed } => Upload {
                        path: &file.path,
                        content: &file.content,
                        mode: file.mode,
                        // The previous version stays beside it for the operator.
                        keep_backup: *existed,
                        owner: None,
                    },
                    Step::WriteManifest(_) => Upload {
                        path: manifest::PATH,
                        content: record,
                        mode: manifest::MODE,
                        keep_backup: false,
                        owner: None,
                    },
                    _ => Upload {
                        path: probe::AGENT_PATH,
                        content: &agent,
                        mode: 0o755,
                        keep_backup: false,
                        owner: None,
                    },
                })
                .collect();
            transport.put_all(&uploads).await.map_err(|e| e.to_string())
        });
    }
    // The steps that do not read the uploaded files run meanwhile.
    let syncs: Vec<String> = steps.iter().filter_map(Step::sysv_sync).collect();
    let (mut early, mut late) = (Vec::new(), Vec::new());
    for step in steps {
        if let Some(s) = step.script() {
            if step.reads_uploads() {
                late.push(s);
            } else {
                early.push(s);
            }
        }
    }
    // A script with nothing in it is not worth a round trip.
    let run = |transport: Arc<T>, script: Option<String>| async move {
        let Some(script) = script else {
            return Ok(());
        };
        let out = transport
            .run(&script, None)
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            Ok(())
        } else {
            Err(out.stderr_text().trim().to_string())
        }
    };
    let early = (!early.is_empty() || !syncs.is_empty()).then(|| {
        let background: String = syncs
            .iter()
            .map(|sync| format!("( {sync} ) & syncs=\"$syncs $!\"\n"))
            .collect();
        format!(
            "set -e\nsyncs=\"\"\n{background}{}\nfor p in $syncs; do wait \"$p\"; done\n",
            early.join("\n")
        )
    });
    let late = (!late.is_empty()).then(|| format!("set -e\n{}\n", late.join("\n")));
    tasks.spawn(run(transport.clone(), early));
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| e.to_string())??;
    }
    run(transport, late).await
}

fn family_of(os: OsFamily) -> Option<Family> {
    match os {
        OsFamily::Debian => Some(Family::Debian),
        OsFamily::RedHat => Some(Family::Redhat),
        OsFamily::Other => None,
    }
}

/// The services to keep out of boot, under their names on this node's distribution
/// (`httpd` is `apache2` on Debian), each once.
fn keep_out_of_boot(names: &[String], roles: &Roles, os: OsFamily) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let service = roles.service_name(name, family_of(os));
        if !out.contains(&service) {
            out.push(service);
        }
    }
    out
}

/// Runs each managed service's config test (its role's `config_test`) where the service is
/// installed: a broken nginx.conf is refused before anything changes, not discovered at the
/// next failover.
async fn config_test_preflight(inventory: &Inventory, roles: &Roles, hosts: &mut [HostRun]) {
    let mut tests = tokio::task::JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let (Some(state), Some(transport)) = (&host.state, &host.transport) else {
            continue;
        };
        if host.report.outcome != Outcome::Ok {
            continue;
        }
        let cluster = &inventory.clusters[host.cluster];
        let mut wanted: Vec<(String, String)> = Vec::new();
        for resource in &cluster.resources {
            let Some(role) = roles.for_service(&resource.name) else {
                continue;
            };
            let (Some(test), Some(service)) = (
                &role.config_test,
                role.service_on(family_of(state.os_family)),
            ) else {
                continue;
            };
            if state.services.get(service).is_some_and(|s| s.present) {
                wanted.push((test.clone(), service.to_string()));
            }
        }
        let transport = transport.clone();
        // Hosts test at once; one host's tests run in order and stop at the first failure.
        tests.spawn(async move {
            for (test, service) in wanted {
                match transport.run(&test, None).await {
                    Ok(out) if out.success() => {}
                    Ok(out) => {
                        return (i, Some(format!(
                            "preflight: `{test}` failed, so {service} would not start on failover: {}. Fix the configuration on this node first",
                            out.stderr_text().trim()
                        )));
                    }
                    Err(e) => return (i, Some(format!("preflight: `{test}`: {e}"))),
                }
            }
            (i, None)
        });
    }
    while let Some(joined) = tests.join_next().await {
        if let Ok((i, Some(failure))) = joined {
            hosts[i].report.outcome = Outcome::Failed(failure);
        }
    }
}

/// Refuses nodes whose facts contradict the inventory, with the fix spelled out.
fn preflight(inventory: &Inventory, hosts: &mut [HostRun]) {
    for host in hosts.iter_mut() {
        let Some(state) = &host.state else { continue };
        let cluster = &inventory.clusters[host.cluster];
        let node = &host.node;
        let problem = if state.uname_n.to_lowercase() != node.node_name.to_lowercase() {
            Some(format!(
                "`uname -n` on this host is `{}`, but the inventory calls the node `{}`; Heartbeat identifies nodes by `uname -n`. Fix: rename the host (hostnamectl set-hostname {}) or set `ha_node_name: {}` for it",
                state.uname_n, node.node_name, node.node_name, state.uname_n
            ))
        } else if state
            .interface_addresses(&cluster.heartbeat_interface)
            .next()
            .is_none()
            && !state
                .addresses
                .iter()
                .any(|(i, _)| i == &cluster.heartbeat_interface)
        {
            Some(format!(
                "the heartbeat interface {} has no IPv4 address on this host. Fix: bring the heartbeat link up, or set `ha_heartbeat_interface` to the right interface",
                cluster.heartbeat_interface
            ))
        } else if let Some(addr) = node.heartbeat_address
            && state.has_address(addr.addr) != Some(cluster.heartbeat_interface.as_str())
        {
            Some(format!(
                "the heartbeat address {} is not configured on {} here. Fix: configure it, or correct `ha_heartbeat_address`",
                addr.addr, cluster.heartbeat_interface
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            host.report.outcome = Outcome::Failed(format!("preflight: {problem}"));
        }
    }
}

/// Whether a member holds `vip` right now: an agent may have just taken it between the probe
/// and the ping, which is not another host using the address.
async fn held_now(hosts: &[HostRun], members: &[usize], vip: std::net::Ipv4Addr) -> bool {
    for &i in members {
        if let Some(transport) = &hosts[i].transport
            && transport
                .run(&format!("ip -o -4 addr show | grep -q ' {vip}/'"), None)
                .await
                .is_ok_and(|o| o.success())
        {
            return true;
        }
    }
    false
}

/// A VIP that no node of its cluster holds but that answers anyway belongs to someone else:
/// bringing it up would make two hosts answer for one address. The members pinged it during
/// their probes, since only the service network can see it.
async fn vip_preflight(inventory: &Inventory, hosts: &mut [HostRun]) {
    for (index, cluster) in inventory.clusters.iter().enumerate() {
        let members: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].cluster == index)
            .collect();
        let mut foreign = Vec::new();
        for vip in &cluster.vips {
            let held = members.iter().any(|&i| {
                hosts[i]
                    .state
                    .as_ref()
                    .is_some_and(|s| s.has_address(vip.address).is_some())
            });
            if held {
                continue;
            }
            // Every member pinged it during its probe.
            let answered = members.iter().any(|&i| {
                hosts[i]
                    .state
                    .as_ref()
                    .and_then(|s| s.answering.get(&vip.address))
                    .is_some_and(|&yes| yes)
            });
            if answered && !held_now(hosts, &members, vip.address).await {
                foreign.push(vip.address);
            }
        }
        if foreign.is_empty() {
            continue;
        }
        let list: Vec<String> = foreign.iter().map(|a| a.to_string()).collect();
        for &i in &members {
            if hosts[i].report.outcome == Outcome::Ok {
                hosts[i].report.outcome = Outcome::Failed(format!(
                    "preflight: VIP {} already answers, but no node of cluster `{}` holds it: another host uses that address. Fix: free the address or choose another VIP",
                    list.join(", "),
                    cluster.name
                ));
            }
        }
    }
}

/// The probe's facts under Ansible's names, for the `ha_files` templates.
fn facts_of(state: &NodeState) -> crate::render::service_files::Facts {
    let os_family = match state.os_family {
        OsFamily::Debian => "Debian".to_string(),
        OsFamily::RedHat => "RedHat".to_string(),
        OsFamily::Other => capitalised(&state.os_id),
    };
    crate::render::service_files::Facts {
        nodename: state.uname_n.clone(),
        os_family,
        distribution: capitalised(&state.os_id),
        service_mgr: match state.init {
            InitSystem::Systemd => "systemd",
            InitSystem::Sysvinit => "sysvinit",
            InitSystem::Other => "service",
        }
        .into(),
        all_ipv4_addresses: state
            .addresses
            .iter()
            .filter(|(iface, _)| iface != "lo")
            .map(|(_, a)| a.addr.to_string())
            .collect(),
    }
}

/// `debian` → `Debian`, as Ansible names distributions.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Renders each probed host's `ha_files` into its desired files. It runs once the probe has
/// brought the facts the templates may use and before anything changes, so a template error
/// stops the run with nothing done, like any other input error.
fn render_service_files(inventory: &Inventory, hosts: &mut [HostRun]) -> Result<(), ApplyError> {
    for host in hosts.iter_mut() {
        let Some(state) = &host.state else { continue };
        let rendered =
            crate::render::service_files::render(&host.node, &inventory.groups, &facts_of(state))?;
        host.files.extend(rendered.into_iter().map(|f| DesiredFile {
            path: f.entry.dest,
            content: Arc::new(f.content.into_bytes()),
            mode: f.entry.mode,
            secret: false,
            notifies_agent: false,
            service: Some(ServiceFileMeta {
                owner: f.entry.owner,
                group: f.entry.group,
                role: f.entry.service,
            }),
        }));
    }
    Ok(())
}

/// One host's `ha_files` that this run changes.
struct Staged {
    host: usize,
    files: Vec<DesiredFile>,
}

/// Writes every changed `ha_files` file in place on every node first, then runs each
/// concerned role's config test on every healthy node of the cluster; if any node refuses,
/// the previous files go back on every node and the run stops (exit 1) with nothing changed.
async fn stage_service_files(
    inventory: &Inventory,
    roles: &Roles,
    agent: &AgentBinary,
    hosts: &mut [HostRun],
) -> Result<Vec<Staged>, ApplyError> {
    let stamp = stamp(inventory);
    let mut staged: Vec<Staged> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let (Some(state), Outcome::Ok) = (&host.state, &host.report.outcome) else {
            continue;
        };
        let desired = desired_for(inventory, roles, agent, host, state, &stamp);
        let files: Vec<DesiredFile> = plan::plan(&desired, state)
            .into_iter()
            .filter_map(|step| match step {
                Step::PutFile { file, .. } if file.service.is_some() => Some(file),
                _ => None,
            })
            .collect();
        if !files.is_empty() && host.transport.is_some() {
            staged.push(Staged { host: i, files });
        }
    }
    if staged.is_empty() {
        return Ok(staged);
    }
    let transport = |i: usize| {
        hosts[i]
            .transport
            .clone()
            .expect("staged hosts are connected")
    };
    let mut tasks = tokio::task::JoinSet::new();
    for s in &staged {
        let (t, files, at) = (transport(s.host), s.files.clone(), s.host);
        tasks.spawn(async move { (at, service_files::stage(&*t, &files).await) });
    }
    // (host, what failed, its output)
    let mut failure: Option<(String, String, String)> = None;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((at, Err(output))) = joined {
            failure.get_or_insert((
                hosts[at].node.host.clone(),
                "staging the new ha_files failed".to_string(),
                output,
            ));
        }
    }
    if failure.is_none() {
        failure = test_staged(inventory, roles, hosts, &staged).await;
    }
    let Some((host, what, output)) = failure else {
        return Ok(staged);
    };
    // Every node that staged anything gets its previous files back, whichever node refused.
    let mut unrestored = Vec::new();
    for s in &staged {
        if let Err(e) = service_files::restore(&*transport(s.host), &s.files).await {
            unrestored.push(format!("{}: {e}", hosts[s.host].node.host));
        }
    }
    let aftermath = if unrestored.is_empty() {
        "the previous files are back on every node, nothing was changed".to_string()
    } else {
        format!(
            "restoring the previous files failed on {}; their backups are under {}",
            unrestored.join("; "),
            service_files::BACKUP_DIR
        )
    };
    Err(ApplyError::ServiceFiles {
        host,
        what,
        aftermath,
        output,
    })
}

/// The config test of every role whose files were staged, on every healthy node of each
/// cluster concerned where the service is installed; the first refusal.
async fn test_staged(
    inventory: &Inventory,
    roles: &Roles,
    hosts: &[HostRun],
    staged: &[Staged],
) -> Option<(String, String, String)> {
    let mut tests = tokio::task::JoinSet::new();
    for (cluster, _) in inventory.clusters.iter().enumerate() {
        let mut concerned: Vec<(String, Vec<String>)> = Vec::new();
        for s in staged.iter().filter(|s| hosts[s.host].cluster == cluster) {
            for f in &s.files {
                let Some(role) = f.service.as_ref().and_then(|m| m.role.clone()) else {
                    continue;
                };
                match concerned.iter_mut().find(|(r, _)| *r == role) {
                    Some((_, paths)) => paths.push(f.path.clone()),
                    None => concerned.push((role, vec![f.path.clone()])),
                }
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            let (Some(state), Some(t), Outcome::Ok) =
                (&host.state, &host.transport, &host.report.outcome)
            else {
                continue;
            };
            if host.cluster != cluster {
                continue;
            }
            for (role_name, paths) in &concerned {
                let Some(role) = roles.get(role_name) else {
                    continue;
                };
                let (Some(test), Some(service)) = (
                    role.config_test.clone(),
                    role.service_on(family_of(state.os_family)),
                ) else {
                    continue;
                };
                if !state.services.get(service).is_some_and(|s| s.present) {
                    continue;
                }
                let (t, files) = (t.clone(), paths.join(", "));
                tests.spawn(async move {
                    let result = service_files::config_test(&*t, &test).await;
                    (i, test, files, result)
                });
            }
        }
    }
    let mut refused = None;
    while let Some(joined) = tests.join_next().await {
        if let Ok((i, test, files, Err(output))) = joined {
            refused.get_or_insert((
                hosts[i].node.host.clone(),
                format!("`{test}` refused the new ha_files ({files})"),
                output,
            ));
        }
    }
    refused
}

/// The handler for changed `ha_files`: each concerned service is reloaded where it runs,
/// cluster by cluster, passive nodes first and the VIP holder last, and must still run after.
async fn reload_services(
    inventory: &Inventory,
    roles: &Roles,
    hosts: &mut [HostRun],
    staged: &[Staged],
) {
    for (cluster, c) in inventory.clusters.iter().enumerate() {
        let members: Vec<(usize, bool)> = staged
            .iter()
            .filter(|s| hosts[s.host].cluster == cluster)
            .map(|s| {
                let holds = hosts[s.host]
                    .state
                    .as_ref()
                    .is_some_and(|st| c.vips.iter().any(|v| st.has_address(v.address).is_some()));
                (s.host, holds)
            })
            .collect();
        for i in service_files::reload_order(&members) {
            let Some(s) = staged.iter().find(|s| s.host == i) else {
                continue;
            };
            let (Some(state), Some(t)) = (hosts[i].state.clone(), hosts[i].transport.clone())
            else {
                continue;
            };
            if matches!(hosts[i].report.outcome, Outcome::Failed(_)) {
                continue;
            }
            // An agent this run started stops every group's services at start-up and starts
            // them again where the negotiation puts them, with the new files: a reload beside
            // it would race that stop (and read the stop as a failed reload).
            let cluster_starting = !state
                .services
                .get("hadeploy-agent")
                .is_some_and(|a| a.running);
            let mut done: Vec<&str> = Vec::new();
            for f in &s.files {
                let Some(role_name) = f.service.as_ref().and_then(|m| m.role.as_deref()) else {
                    continue;
                };
                if done.contains(&role_name) {
                    continue;
                }
                done.push(role_name);
                let Some(role) = roles.get(role_name) else {
                    continue;
                };
                let (Some(reload), Some(service)) =
                    (&role.reload, role.service_on(family_of(state.os_family)))
                else {
                    continue;
                };
                if cluster_starting
                    && c.resources
                        .iter()
                        .any(|r| r.name == service || r.name == role_name)
                {
                    hosts[i].report.steps.push(StepReport {
                        description: format!(
                            "handler: {service} is started by the cluster agent, with the new files"
                        ),
                        diff: None,
                    });
                    continue;
                }
                let description = match service_files::reload(&*t, service, reload, state.init)
                    .await
                {
                    Ok(Reloaded::Reloaded) => format!("handler: reload {service}"),
                    Ok(Reloaded::NotRunning) => {
                        format!(
                            "handler: {service} is not running here; it has the new files for its next start"
                        )
                    }
                    Err(e) => {
                        hosts[i].report.outcome = Outcome::Failed(e);
                        break;
                    }
                };
                hosts[i].report.steps.push(StepReport {
                    description,
                    diff: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_files_cannot_land_on_anything_apply_installs() {
        use crate::config::inventory::cluster::RESERVED_PATHS;
        let covered = |p: &str| {
            RESERVED_PATHS
                .iter()
                .any(|r| p == *r || p.starts_with(&format!("{r}/")))
        };
        let ours = system::PATHS
            .iter()
            .map(|p| format!("/{p}"))
            .chain(
                crate::render::TEMPLATES
                    .iter()
                    .map(|(t, _)| format!("/etc/ha.d/{}", t.trim_end_matches(".j2"))),
            )
            .chain([probe::AGENT_PATH.into(), manifest::PATH.into()])
            .chain([format!("{}/etc/x", service_files::BACKUP_DIR)]);
        for path in ours {
            assert!(covered(&path), "{path} is not reserved");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("node*", "node12"));
        assert!(glob_match("n?de1", "node1"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("node?", "node12"));
        assert!(!glob_match("web*", "node1"));
    }
}
