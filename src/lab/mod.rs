//! `hadeploy lab`: real multi-node clusters in local Docker containers, for trying hadeploy,
//! rehearsing drills and every integration test. Like the guides' set-ups, each lab has a
//! service network carrying the VIP and a separate, internal heartbeat link (the "crossover
//! cable"); each node runs a real init as PID 1, sshd with a key generated for the lab, nginx,
//! haproxy, apache2 and the real Heartbeat 3.0.6 package (disabled). Faults come from the
//! engine: kill, pause, network disconnect, restart. Everything a lab creates carries the label
//! `hadeploy.lab=<name>`, so `down` finds and removes exactly that.

pub mod apt_sources;
pub mod docker;
mod fault;
pub mod image;

pub use fault::{Fault, inject};

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::ha::Ipv4Net;
use docker::{DockerError, docker};

/// Lab subnets are carved from this /16: lab k gets 10.213.(2k).0/24 for service and
/// 10.213.(2k+1).0/24 for heartbeats.
const SUBNET_BASE: [u8; 2] = [10, 213];
const SLOTS: u8 = 120;
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// Where each lab keeps its key, known_hosts, ssh_config and inventory.
pub const STATE_ENV: &str = "HADEPLOY_LAB_DIR";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(
        "debootstrap is not installed; install it (apt-get install debootstrap) to build the lab image"
    )]
    NoDebootstrap,
    #[error(
        "no Debian mirror for bookworm in /etc/apt/sources.list or /etc/apt/sources.list.d; add the Debian archive to apt's sources"
    )]
    NoMirror,
    #[error("building image {tag} failed; last lines:\n{log}")]
    ImageBuild { tag: String, log: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab name `{0}` must be 1-20 lowercase letters, digits or `-`")]
    BadName(String),
    #[error("a lab needs 2 to 16 nodes, not {0}")]
    BadNodeCount(u8),
    #[error(
        "lab `{name}` already exists with {existing}; run `hadeploy lab down --name {name}` first"
    )]
    Mismatch { name: String, existing: String },
    #[error(
        "no free subnet pair in 10.213.0.0/16 for lab `{0}`: every slot overlaps a network or route that exists already; remove unused docker networks"
    )]
    NoSubnet(String),
    #[error("lab `{0}` does not exist (hadeploy lab up --name {0})")]
    NoLab(String),
    #[error("node {0} is not part of lab `{1}`")]
    NoNode(String, String),
    #[error("fault injection failed: {0}")]
    Fault(String),
    #[error("{node} did not finish booting within {timeout:?}: {detail}")]
    Boot {
        node: String,
        timeout: Duration,
        detail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabNode {
    pub name: String,
    pub container: String,
    pub service_addr: Ipv4Addr,
    pub heartbeat_addr: Ipv4Addr,
    pub service_iface: String,
    pub heartbeat_iface: String,
}

/// A lab as `up` made it; saved as `lab.json` in its state directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lab {
    pub name: String,
    pub flavor: String,
    pub image: String,
    pub state_dir: PathBuf,
    pub service_subnet: String,
    pub heartbeat_subnet: String,
    pub service_network: String,
    pub heartbeat_network: String,
    pub vip: Ipv4Addr,
    pub vip_range: (Ipv4Addr, Ipv4Addr),
    pub nodes: Vec<LabNode>,
}

impl Lab {
    pub fn inventory_path(&self) -> PathBuf {
        self.state_dir.join("inventory.yml")
    }

    pub fn key_path(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }

    pub fn ssh_config_path(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }

    pub fn node(&self, name: &str) -> Result<&LabNode, LabError> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| LabError::NoNode(name.to_string(), self.name.clone()))
    }

    /// Loads a lab `up` created.
    pub fn load(name: &str) -> Result<Lab, LabError> {
        let path = state_dir(name).join("lab.json");
        let text = std::fs::read_to_string(&path).map_err(|_| LabError::NoLab(name.to_string()))?;
        serde_json::from_str(&text).map_err(|e| LabError::Io {
            what: format!("reading {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

fn validate_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadName(name.to_string()))
    }
}

pub fn state_dir(name: &str) -> PathBuf {
    let base = std::env::var_os(STATE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".local/share/hadeploy/labs")
        });
    base.join(name)
}

fn container_name(lab: &str, node: &str) -> String {
    format!("hadeploy-{lab}-{node}")
}

/// The slot a name hashes to first; collisions move on to the next free slot.
fn preferred_slot(name: &str) -> u8 {
    let digest = crate::files::sha1_hex(name.as_bytes());
    u8::from_str_radix(&digest[..2], 16).unwrap_or(0) % SLOTS
}

fn slot_subnets(slot: u8) -> (Ipv4Net, Ipv4Net) {
    let net = |third: u8| Ipv4Net {
        addr: Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], third, 0),
        prefix: 24,
    };
    (net(slot * 2), net(slot * 2 + 1))
}

/// Subnets already in use by docker networks or host routes.
fn taken_subnets() -> Result<Vec<Ipv4Net>, LabError> {
    let mut taken = Vec::new();
    let ids = docker(&["network", "ls", "-q"])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec![
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        ];
        args.extend(ids);
        for word in docker(&args)?.split_whitespace() {
            if let Ok(net) = Ipv4Net::parse(word, None) {
                taken.push(net);
            }
        }
    }
    if let Ok(out) = std::process::Command::new("ip")
        .args(["-o", "-4", "route", "show"])
        .output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(Ok(net)) = line
                .split_whitespace()
                .next()
                .filter(|w| w.contains('/'))
                .map(|w| Ipv4Net::parse(w, None))
            {
                taken.push(net);
            }
        }
    }
    Ok(taken)
}

fn labelled(kind: &str, lab: &str) -> Result<Vec<String>, LabError> {
    let filter = format!("label=hadeploy.lab={lab}");
    let out = match kind {
        "container" => docker(&["ps", "-a", "-q", "--filter", &filter])?,
        "network" => docker(&["network", "ls", "-q", "--filter", &filter])?,
        _ => docker(&["volume", "ls", "-q", "--filter", &filter])?,
    };
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// Options for `up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub name: String,
    pub nodes: u8,
    pub flavor: Flavor,
}

/// Brings a lab up (building the image if needed). Idempotent: an existing lab with the same
/// shape is started and returned as it is.
pub fn up(options: &UpOptions, progress: &dyn Fn(&str)) -> Result<Lab, LabError> {
    validate_name(&options.name)?;
    if !(2..=16).contains(&options.nodes) {
        return Err(LabError::BadNodeCount(options.nodes));
    }
    let flavor = image::flavor_name(options.flavor);
    if let Some(existing) = restart_existing(options, flavor, progress)? {
        return Ok(existing);
    }
    let image = image::ensure(options.flavor, progress)?;
    let dir = state_dir(&options.name);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    ensure_key(&dir)?;
    let networks = create_networks(&options.name)?;
    let nodes = create_nodes(options, &networks, &image, &dir, progress)?;
    let mut lab = Lab {
        name: options.name.clone(),
        flavor: flavor.to_string(),
        image,
        state_dir: dir,
        service_subnet: networks.service_subnet.to_string(),
        heartbeat_subnet: networks.heartbeat_subnet.to_string(),
        vip: host(networks.service_subnet, 100),
        vip_range: (
            host(networks.service_subnet, 100),
            host(networks.service_subnet, 119),
        ),
        service_network: networks.service,
        heartbeat_network: networks.heartbeat,
        nodes,
    };
    wait_for_nodes(&lab, progress)?;
    discover_interfaces(&mut lab)?;
    write_access_files(&lab)?;
    save(&lab)?;
    Ok(lab)
}

/// A lab that exists already: with the shape asked for and all its containers, it is started
/// and returned; with another shape, refused while any of its containers is left. A saved lab
/// whose containers are all gone is built afresh.
fn restart_existing(
    options: &UpOptions,
    flavor: &str,
    progress: &dyn Fn(&str),
) -> Result<Option<Lab>, LabError> {
    let Ok(existing) = Lab::load(&options.name) else {
        return Ok(None);
    };
    let containers = labelled("container", &options.name)?;
    if existing.nodes.len() == options.nodes as usize
        && existing.flavor == flavor
        && containers.len() == existing.nodes.len()
    {
        for node in &existing.nodes {
            docker(&["start", &node.container])?;
        }
        wait_for_nodes(&existing, progress)?;
        return Ok(Some(existing));
    }
    if !containers.is_empty() {
        return Err(LabError::Mismatch {
            name: options.name.clone(),
            existing: format!("{} nodes ({})", existing.nodes.len(), existing.flavor),
        });
    }
    Ok(None)
}

/// A lab's two docker networks, by name, and their subnets.
struct Networks {
    service: String,
    heartbeat: String,
    service_subnet: Ipv4Net,
    heartbeat_subnet: Ipv4Net,
}

/// Creates the service network and the internal heartbeat network on the first free slot.
fn create_networks(lab: &str) -> Result<Networks, LabError> {
    // Try slots from the name's preferred one; a concurrent lab may take a slot between our
    // look and our create, which docker reports as an overlap: move on.
    let service_network = format!("hadeploy-{lab}-a-service");
    let heartbeat_network = format!("hadeploy-{lab}-b-heartbeat");
    let taken = taken_subnets()?;
    for offset in 0..SLOTS {
        let slot = (preferred_slot(lab) + offset) % SLOTS;
        let (svc, hb) = slot_subnets(slot);
        if taken.iter().any(|t| t.overlaps(svc) || t.overlaps(hb)) {
            continue;
        }
        let label = format!("hadeploy.lab={lab}");
        let gateway = Ipv4Addr::from(u32::from(svc.addr) + 1).to_string();
        match docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &svc.to_string(),
            "--gateway",
            &gateway,
            "--label",
            &label,
            &service_network,
        ]) {
            Ok(_) => {}
            Err(DockerError::Failed { message, .. }) if message.contains("overlap") => continue,
            Err(e) => return Err(e.into()),
        }
        match docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--internal",
            "--subnet",
            &hb.to_string(),
            "--label",
            &label,
            &heartbeat_network,
        ]) {
            Ok(_) => {
                return Ok(Networks {
                    service: service_network,
                    heartbeat: heartbeat_network,
                    service_subnet: svc,
                    heartbeat_subnet: hb,
                });
            }
            Err(DockerError::Failed { message, .. }) if message.contains("overlap") => {
                let _ = docker(&["network", "rm", &service_network]);
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(LabError::NoSubnet(lab.to_string()))
}

/// The address `last` in a lab /24.
fn host(net: Ipv4Net, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(
        net.addr.octets()[0],
        net.addr.octets()[1],
        net.addr.octets()[2],
        last,
    )
}

/// Creates and starts node1…nodeN, each on both networks at .11, .12, …
fn create_nodes(
    options: &UpOptions,
    networks: &Networks,
    image: &str,
    dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<LabNode>, LabError> {
    let mut nodes = Vec::new();
    for i in 1..=options.nodes {
        let name = format!("node{i}");
        let container = container_name(&options.name, &name);
        let (service_addr, heartbeat_addr) = (
            host(networks.service_subnet, 10 + i),
            host(networks.heartbeat_subnet, 10 + i),
        );
        progress(&format!(
            "creating {name} ({service_addr}, heartbeat {heartbeat_addr})"
        ));
        let mut args: Vec<String> = vec![
            "create".into(),
            "--name".into(),
            container.clone(),
            "--hostname".into(),
            name.clone(),
            // A reboot from inside (PID 1 exits) brings the node back, as on a real host;
            // `docker kill` (the crash fault) keeps it down until started.
            "--restart".into(),
            "unless-stopped".into(),
        ];
        for label in [
            format!("hadeploy.lab={}", options.name),
            format!("hadeploy.node={name}"),
        ] {
            args.extend(["--label".into(), label]);
        }
        args.extend([
            "--network".into(),
            networks.service.clone(),
            "--ip".into(),
            service_addr.to_string(),
        ]);
        args.extend(container_privileges(options.flavor));
        args.extend([
            "-v".into(),
            format!(
                "{}:/root/.ssh/authorized_keys:ro",
                dir.join("authorized_keys").display()
            ),
        ]);
        args.push(image.to_string());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        docker(&[
            "network",
            "connect",
            "--ip",
            &heartbeat_addr.to_string(),
            &networks.heartbeat,
            &container,
        ])?;
        docker(&["start", &container])?;
        nodes.push(LabNode {
            name,
            container,
            service_addr,
            heartbeat_addr,
            service_iface: "eth0".into(),
            heartbeat_iface: "eth1".into(),
        });
    }
    Ok(nodes)
}

/// Saves the lab as `lab.json` and writes its inventory.
fn save(lab: &Lab) -> Result<(), LabError> {
    std::fs::write(
        lab.state_dir.join("lab.json"),
        serde_json::to_string_pretty(lab).unwrap_or_default(),
    )
    .map_err(io("writing lab.json"))?;
    write_inventory(lab)
}

/// The least privilege that lets a real init run as PID 1 and the cluster do its work:
/// SYS_ADMIN for init's mounts and cgroups, NET_ADMIN to add VIPs and set sysctls and
/// nftables rules, NET_RAW for gratuitous ARP and ping; /proc/sys writable (systempaths) so
/// `ip_nonlocal_bind` can be set the way `apply` sets it on a real host; the host's cgroup tree
/// read-only (cgroup v1) and tmpfs for /run.
fn container_privileges(flavor: Flavor) -> Vec<String> {
    let mut args: Vec<String> = [
        "--cap-add=SYS_ADMIN",
        "--cap-add=NET_ADMIN",
        "--cap-add=NET_RAW",
        "--security-opt=seccomp=unconfined",
        "--security-opt=apparmor=unconfined",
        "--security-opt=systempaths=unconfined",
        "--tmpfs=/run",
        "--tmpfs=/run/lock",
        "--tmpfs=/tmp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if flavor == Flavor::Systemd {
        // systemd shuts down cleanly on SIGRTMIN+3, not on docker's default SIGTERM.
        args.extend([
            "-v".into(),
            "/sys/fs/cgroup:/sys/fs/cgroup:ro".into(),
            "--env=container=docker".into(),
            "--stop-signal=SIGRTMIN+3".into(),
        ]);
    }
    args
}

fn ensure_key(dir: &Path) -> Result<(), LabError> {
    let key = dir.join("id_ed25519");
    if !key.exists() {
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "hadeploy-lab", "-f"])
            .arg(&key)
            .status()
            .map_err(io("running ssh-keygen (install openssh-client)"))?;
        if !status.success() {
            return Err(LabError::Io {
                what: "ssh-keygen".into(),
                source: std::io::Error::other("failed"),
            });
        }
    }
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub"))
        .map_err(io("reading the lab's public key"))?;
    crate::files::write_atomic(&dir.join("authorized_keys"), public.as_bytes(), 0o644)
        .map_err(io("writing authorized_keys"))
}

fn wait_for_nodes(lab: &Lab, progress: &dyn Fn(&str)) -> Result<(), LabError> {
    for node in &lab.nodes {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let mut detail;
        loop {
            let keys = docker::exec(
                &node.container,
                "test -s /etc/ssh/ssh_host_ed25519_key.pub && echo ready",
            );
            let ssh_up = TcpStream::connect_timeout(
                &(node.service_addr, 22).into(),
                Duration::from_millis(300),
            )
            .is_ok();
            detail = match (&keys, ssh_up) {
                (Ok((_, out)), true) if out.contains("ready") => break,
                (Ok((_, out)), _) => format!(
                    "sshd not answering on {}:22 yet ({})",
                    node.service_addr,
                    out.trim()
                ),
                (Err(e), _) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(LabError::Boot {
                    node: node.name.clone(),
                    timeout: BOOT_TIMEOUT,
                    detail,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        progress(&format!("{} is up", node.name));
    }
    Ok(())
}

/// Records which interface carries which network, as the containers see it.
fn discover_interfaces(lab: &mut Lab) -> Result<(), LabError> {
    for node in &mut lab.nodes {
        let (_, out) = docker::exec(&node.container, "ip -o -4 addr show")?;
        for line in out.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (Some(iface), Some(addr)) = (words.get(1), words.get(3)) else {
                continue;
            };
            let addr = addr.split('/').next().unwrap_or_default();
            if addr == node.service_addr.to_string() {
                node.service_iface = iface.to_string();
            } else if addr == node.heartbeat_addr.to_string() {
                node.heartbeat_iface = iface.to_string();
            }
        }
    }
    Ok(())
}

/// known_hosts (from the nodes' own host keys, so strict checking works from the first
/// connection) and an ssh_config for `ssh -F`.
fn write_access_files(lab: &Lab) -> Result<(), LabError> {
    let mut known = String::new();
    let mut config = String::new();
    for node in &lab.nodes {
        let (_, key) = docker::exec(&node.container, "cat /etc/ssh/ssh_host_ed25519_key.pub")?;
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        let _ = writeln!(known, "{} {}", node.service_addr, key.join(" "));
        let _ = writeln!(
            config,
            "Host {name} {addr}\n    HostName {addr}\n    User root\n    IdentityFile {key}\n    IdentitiesOnly yes\n    UserKnownHostsFile {known}\n    StrictHostKeyChecking yes\n",
            name = node.name,
            addr = node.service_addr,
            key = lab.key_path().display(),
            known = lab.state_dir.join("known_hosts").display()
        );
    }
    crate::files::write_atomic(&lab.state_dir.join("known_hosts"), known.as_bytes(), 0o644)
        .map_err(io("writing known_hosts"))?;
    crate::files::write_atomic(&lab.ssh_config_path(), config.as_bytes(), 0o644)
        .map_err(io("writing ssh_config"))
}

/// The lab's inventory in the README's format: one cluster with the service VIP, nginx, and
/// per-node ucast on the heartbeat link.
pub fn inventory_text(lab: &Lab) -> String {
    let mut hosts = String::new();
    for node in &lab.nodes {
        let _ = writeln!(
            hosts,
            "        {}: {{ansible_host: {}, ha_heartbeat_address: {}/24}}",
            node.name, node.service_addr, node.heartbeat_addr
        );
    }
    let heartbeat_iface = lab
        .nodes
        .first()
        .map(|n| n.heartbeat_iface.as_str())
        .unwrap_or("eth1");
    format!(
        "# hadeploy lab `{name}`: {count} {flavor} nodes, written by `hadeploy lab up`.\n# Service network {svc} (VIPs {vip_lo}-{vip_hi}); heartbeat link {hb}.\nall:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {key}\n  children:\n    lab:\n      hosts:\n{hosts}      vars:\n        ha_vips: [{vip}/24]\n        ha_resources: [nginx]\n        ha_preferred_node: node1\n        ha_heartbeat_interface: {heartbeat_iface}\n        ha_heartbeat_private: true\n        ha_keepalive: 200ms\n        ha_warntime: 500ms\n        ha_deadtime: 1\n        ha_initdead: 3\n",
        name = lab.name,
        count = lab.nodes.len(),
        flavor = lab.flavor,
        svc = lab.service_subnet,
        hb = lab.heartbeat_subnet,
        vip_lo = lab.vip_range.0,
        vip_hi = lab.vip_range.1,
        key = lab.key_path().display(),
        vip = lab.vip,
    )
}

fn write_inventory(lab: &Lab) -> Result<(), LabError> {
    crate::files::write_atomic(&lab.inventory_path(), inventory_text(lab).as_bytes(), 0o644)
        .map_err(io("writing the lab inventory"))
}

/// Removes every container, network and volume labelled with the lab's name, and its state.
pub fn down(name: &str) -> Result<usize, LabError> {
    validate_name(name)?;
    let mut removed = 0;
    let containers = labelled("container", name)?;
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args)?;
        removed += containers.len();
    }
    for network in labelled("network", name)? {
        docker(&["network", "rm", &network])?;
        removed += 1;
    }
    for volume in labelled("volume", name)? {
        docker(&["volume", "rm", "-f", &volume])?;
        removed += 1;
    }
    let dir = state_dir(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(format!("removing {}", dir.display())))?;
    }
    Ok(removed)
}

/// One line per node: name, container state, addresses.
pub fn status(name: &str) -> Result<String, LabError> {
    let lab = Lab::load(name)?;
    let mut out = format!(
        "lab {} ({}), service {} (VIPs {}-{}), heartbeat {}\ninventory: {}\n",
        lab.name,
        lab.flavor,
        lab.service_subnet,
        lab.vip_range.0,
        lab.vip_range.1,
        lab.heartbeat_subnet,
        lab.inventory_path().display()
    );
    for node in &lab.nodes {
        let state = docker(&["inspect", "--format", "{{.State.Status}}", &node.container])
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "missing".into());
        let _ = writeln!(
            out,
            "  {:<6} {:<8} {} {} / {} {}",
            node.name,
            state,
            node.service_iface,
            node.service_addr,
            node.heartbeat_iface,
            node.heartbeat_addr
        );
    }
    Ok(out)
}

/// The init system a lab node boots with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// systemd as PID 1.
    Systemd,
    /// sysvinit-core as PID 1 (tests the update-rc.d path).
    Sysvinit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slots() {
        assert!(validate_name("hadeploy").is_ok());
        assert!(validate_name("t-1").is_ok());
        assert!(validate_name("Bad").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("x; rm -rf").is_err());
        let (svc, hb) = slot_subnets(3);
        assert_eq!(
            (svc.to_string(), hb.to_string()),
            ("10.213.6.0/24".to_string(), "10.213.7.0/24".to_string())
        );
        assert!(preferred_slot("hadeploy") < SLOTS);
        let (svc, hb) = slot_subnets(SLOTS - 1);
        assert!(!svc.overlaps(hb));
    }

    #[test]
    fn lab_inventory_passes_check() {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab {
            name: "t".into(),
            flavor: "systemd".into(),
            image: "img".into(),
            state_dir: dir.path().to_path_buf(),
            service_subnet: "10.213.6.0/24".into(),
            heartbeat_subnet: "10.213.7.0/24".into(),
            service_network: "s".into(),
            heartbeat_network: "h".into(),
            vip: Ipv4Addr::new(10, 213, 6, 100),
            vip_range: (
                Ipv4Addr::new(10, 213, 6, 100),
                Ipv4Addr::new(10, 213, 6, 119),
            ),
            nodes: (1..=3)
                .map(|i| LabNode {
                    name: format!("node{i}"),
                    container: format!("c{i}"),
                    service_addr: Ipv4Addr::new(10, 213, 6, 10 + i),
                    heartbeat_addr: Ipv4Addr::new(10, 213, 7, 10 + i),
                    service_iface: "eth0".into(),
                    heartbeat_iface: "eth1".into(),
                })
                .collect(),
        };
        write_inventory(&lab).unwrap();
        let inv = crate::config::inventory::Inventory::load(&lab.inventory_path()).unwrap();
        let c = &inv.clusters[0];
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.vips[0].address, lab.vip);
        assert_eq!(c.heartbeat_interface, "eth1");
        assert_eq!(
            c.nodes[2].heartbeat_address.unwrap().addr,
            Ipv4Addr::new(10, 213, 7, 13)
        );
        assert!(inv.warnings.is_empty(), "{}", inv.warnings);
    }
}
