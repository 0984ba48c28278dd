//! Small fixtures shared by the integration tests: running the built binaries and copying the
//! example inventories somewhere writable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `hadeploy` with `args`, returning its output.
pub fn hadeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .args(args)
        .output()
        .expect("run hadeploy")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies a directory tree (the examples) into `to`, so rendering can create secrets there.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every example inventory, as paths relative to `inventories/`.
pub fn examples() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = repo().join("inventories");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.push(
                path.join("inventory.yml")
                    .strip_prefix(&root)
                    .unwrap()
                    .to_path_buf(),
            );
        } else if path.extension().is_some_and(|e| e == "yml") {
            found.push(path.strip_prefix(&root).unwrap().to_path_buf());
        }
    }
    found.sort();
    found
}

/// A lab for one test, removed when the test ends (also when it fails).
pub struct LabGuard {
    pub lab: hadeploy::lab::Lab,
}

impl LabGuard {
    /// Brings up a lab; a lab that cannot be built fails the test loudly.
    pub fn up(name: &str, nodes: u8, flavor: hadeploy::cli::LabFlavor) -> LabGuard {
        // A leftover from an interrupted run would make `up` refuse the shape or reuse it.
        let _ = hadeploy::lab::down(name);
        let options = hadeploy::lab::UpOptions {
            name: name.to_string(),
            nodes,
            flavor,
        };
        let lab = hadeploy::lab::up(&options, &|line| eprintln!("lab {name}: {line}"))
            .unwrap_or_else(|e| panic!("lab {name} could not be brought up: {e}"));
        LabGuard { lab }
    }

    /// Runs a command on a node over SSH with the lab's key and known_hosts (strict checking).
    pub fn ssh(&self, node: &str, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.lab.ssh_config_path())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                node,
                command,
            ])
            .output()
            .expect("run ssh")
    }

    /// `docker exec` on a node, for checks that must not depend on SSH.
    pub fn exec(&self, node: &str, script: &str) -> (i32, String) {
        let container = &self.lab.node(node).unwrap().container;
        hadeploy::lab::docker::exec(container, script).unwrap()
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = hadeploy::lab::down(&self.lab.name) {
            eprintln!("lab {}: cleanup failed: {e}", self.lab.name);
        }
    }
}

/// One HTTP GET from this process; the body, or None if nothing answered within `timeout`.
pub fn http_get(addr: std::net::Ipv4Addr, timeout: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&(addr, 80).into(), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream
        .write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_string())
}
