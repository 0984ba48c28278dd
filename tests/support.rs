//! Small fixtures shared by the integration tests: running the built binaries and copying the
//! example inventories somewhere writable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hadeploy::agent::control::StatusAnswer;

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
        // A directory is an example when it holds an inventory (`templates/` does not).
        if path.is_dir() && path.join("inventory.yml").is_file() {
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

/// `hadeploy-agent status --json`'s output on `node` as the typed answer; anything else fails
/// the test, with the output.
pub fn parse_status(node: &str, out: &str) -> StatusAnswer {
    StatusAnswer::from_json(out).unwrap_or_else(|e| panic!("{node}: status JSON: {e}: {out}"))
}

/// A lab for one test, removed when the test ends (also when it fails).
pub struct LabGuard {
    pub lab: hadeploy::lab::Lab,
}

impl LabGuard {
    /// Brings up a lab; a lab that cannot be built fails the test loudly.
    pub fn up(name: &str, nodes: u8, flavor: hadeploy::lab::Flavor) -> LabGuard {
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

    /// The node's agent's `status --json` answer, or None while it does not answer.
    pub fn agent_status(&self, node: &str) -> Option<StatusAnswer> {
        let (code, out) = self.exec(node, "hadeploy-agent status --json");
        (code == 0).then(|| parse_status(node, &out))
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

/// One run of a built binary, set up and checked in a line:
/// `Test::new().inventory(yaml).args(["check", "{inv}"]).status(1).stderr_has("…")`.
/// `{inv}` in an argument is the inventory written by `inventory`, `{dir}` the test's own
/// temporary directory.
pub struct Test {
    binary: &'static str,
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What a [`Test`] printed, for more checks; its directory lives as long as this does.
pub struct Ran {
    pub output: Output,
    dir: tempfile::TempDir,
}

impl Test {
    /// A run of `hadeploy`.
    pub fn new() -> Test {
        Test {
            binary: env!("CARGO_BIN_EXE_hadeploy"),
            dir: tempfile::tempdir().expect("a temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A run of `hadeploy-agent`.
    pub fn agent() -> Test {
        Test {
            binary: env!("CARGO_BIN_EXE_hadeploy-agent"),
            ..Test::new()
        }
    }

    /// Writes `yaml` as the test's inventory, `{inv}` in the arguments.
    pub fn inventory(self, yaml: &str) -> Test {
        self.file("inventory.yml", yaml)
    }

    /// Writes a shipped example (`inventories/NAME`) as the test's inventory, with each
    /// `(from, to)` replacement made in its text.
    pub fn example(self, name: &str, replacements: &[(&str, &str)]) -> Test {
        let mut text = std::fs::read_to_string(repo().join("inventories").join(name)).unwrap();
        for (from, to) in replacements {
            assert!(text.contains(from), "{name} has no {from:?}");
            text = text.replace(from, to);
        }
        self.inventory(&text).example_templates()
    }

    /// The examples' `ha_files` templates, beside an example's text written with `file`.
    pub fn example_templates(self) -> Test {
        copy_tree(
            &repo().join("inventories/templates"),
            &self.path("templates"),
        );
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A path below the test's directory (to check what the run wrote).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file below the test's directory.
    pub fn file(self, name: &str, content: impl AsRef<[u8]>) -> Test {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content.as_ref()).unwrap();
        self
    }

    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Test {
        let inv = self.dir.path().join("inventory.yml");
        self.args.extend(args.iter().map(|a| {
            a.replace("{inv}", inv.to_str().unwrap())
                .replace("{dir}", self.dir.path().to_str().unwrap())
        }));
        self
    }

    /// Runs it and checks the exit code.
    pub fn status(self, code: i32) -> Ran {
        let output = Command::new(self.binary)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .expect("run the binary");
        let ran = Ran {
            output,
            dir: self.dir,
        };
        assert_eq!(
            ran.output.status.code(),
            Some(code),
            "{} {:?}\nstdout: {}\nstderr: {}",
            self.binary,
            self.args,
            ran.stdout(),
            ran.stderr()
        );
        ran
    }
}

impl Ran {
    /// A path below the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The file below the test's directory, which the run must have written.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn stdout(&self) -> String {
        stdout(&self.output)
    }

    pub fn stderr(&self) -> String {
        stderr(&self.output)
    }

    pub fn stdout_has(self, text: &str) -> Ran {
        assert!(
            self.stdout().contains(text),
            "no {text:?} in stdout:\n{}",
            self.stdout()
        );
        self
    }

    pub fn stderr_has(self, text: &str) -> Ran {
        assert!(
            self.stderr().contains(text),
            "no {text:?} in stderr:\n{}",
            self.stderr()
        );
        self
    }
}
