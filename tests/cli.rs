//! The exit-code scheme every command shares (README, "Exit codes"), checked on the real
//! binaries: 0 ok, 1 usage or input error with nothing done, 4 a host unreachable (apply, drill,
//! diff, status), the agent's 6; a closed pipe is not an error; the manual pages are what the parsers accept. Codes 2 and
//! 8 need a live cluster and are checked by the lab tests (apply: `--check` finding drift;
//! drill: a degraded cluster, a failed expectation, a VIP on two nodes).

use std::process::{Command, Stdio};

use crate::support::{Test, repo};

/// A pair on loopback addresses where nothing listens on the SSH port.
const UNREACHABLE: &str = "all:
  vars:
    ansible_user: root
    ansible_port: 1
  children:
    web:
      hosts:
        web1: {ansible_host: 127.0.0.2, ha_service_address: 10.250.0.11, ha_heartbeat_address: 10.251.0.11}
        web2: {ansible_host: 127.0.0.3, ha_service_address: 10.250.0.12, ha_heartbeat_address: 10.251.0.12}
      vars:
        ha_vips: [10.250.0.10/24]
        ha_resources: [nginx]
        ha_heartbeat_interface: eth1
";

#[test]
fn usage_errors_exit_1_help_and_version_0() {
    Test::new()
        .args(["apply", "--bogus"])
        .status(1)
        .stderr_has("unexpected argument '--bogus'");
    Test::new().args([]).status(1);
    Test::new()
        .args(["drill"])
        .status(1)
        .stderr_has("<INVENTORY>");
    Test::new()
        .args(["lab", "fault", "crash", "node1", "--all"])
        .status(1)
        .stderr_has("--all goes with unplug only");
    Test::new()
        .args(["--help"])
        .status(0)
        .stdout_has("Exit codes");
    Test::new()
        .args(["--version"])
        .status(0)
        .stdout_has("hadeploy 0.");
    Test::agent().args(["--bogus"]).status(1);
    Test::agent()
        .args(["--help"])
        .status(0)
        .stdout_has("6 configuration error");
}

#[test]
fn input_errors_exit_1_and_name_the_place() {
    Test::new()
        .inventory("all:\n  children:\n    web: {hosts: {a: }\n")
        .args(["check", "{inv}"])
        .status(1)
        .stderr_has("inventory.yml:")
        .stderr_has("nothing was changed");
    Test::new()
        .inventory(UNREACHABLE)
        .args(["drill", "{inv}", "--cluster", "nope", "--pull", "web1"])
        .status(1)
        .stderr_has("--cluster (the inventory has: web)");
    Test::new()
        .inventory(UNREACHABLE)
        .args(["apply", "{inv}", "--limit", "nobody"])
        .status(1)
        .stderr_has("--limit nobody matches no host");
}

#[test]
fn an_unreachable_host_exits_4() {
    Test::new()
        .inventory(UNREACHABLE)
        .args(["apply", "{inv}", "--json"])
        .status(4)
        .stdout_has(r#""status":"unreachable""#);
    Test::new()
        .inventory(UNREACHABLE)
        .args(["drill", "{inv}", "--pull", "web1"])
        .status(4)
        .stderr_has("web1: unreachable");
}

/// `diff` and `status` report a host they cannot reach with bit 4, the others still judged;
/// `status --watch` redraws (plain lines off a terminal) until Ctrl-C and exits with the last
/// round's bits.
#[test]
fn diff_and_status_report_unreachable_hosts_and_watch_stops_on_ctrl_c() {
    Test::new()
        .inventory(UNREACHABLE)
        .args(["diff", "{inv}", "--json"])
        .status(4)
        .stdout_has(r#""host":"web1""#);
    Test::new()
        .inventory(UNREACHABLE)
        .args(["status", "{inv}"])
        .status(4)
        .stdout_has("web2: not reached");
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, UNREACHABLE).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .args(["status", "--watch", "0.2"])
        .arg(&inventory)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut rounds = 0;
    let mut line = String::new();
    while rounds < 2 {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0,
            "status --watch ended by itself"
        );
        rounds += usize::from(line.starts_with("cluster web:"));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    // Bounded: a watch that ignored Ctrl-C must fail this test, not hang the suite.
    let began = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("status --watch did not stop on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(4), "{status:?}");
}

#[test]
fn the_agent_keeps_heartbeats_configuration_error_6() {
    Test::agent()
        .args(["check-config", "--config-dir", "{dir}/missing"])
        .status(6);
}

#[test]
fn a_closed_pipe_is_the_reader_being_done() {
    // The reading end is closed before the binary writes a byte, so its first write fails
    // with EPIPE (`hadeploy man | true`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .arg("man")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn manual_pages_are_generated_and_written() {
    Test::new()
        .args(["man"])
        .status(0)
        .stdout_has(".TH hadeploy 1")
        .stdout_has("HADEPLOY DRILL");
    Test::new()
        .args(["man", "--agent"])
        .status(0)
        .stdout_has("HADEPLOY-AGENT STATUS");
    let ran = Test::new().args(["man", "--out", "{dir}/share"]).status(0);
    for page in ["man1/hadeploy.1", "man8/hadeploy-agent.8"] {
        assert!(ran.stdout().contains(page), "{}", ran.stdout());
    }
    // The unit the nodes get names the page that apply installs beside it.
    let unit = std::fs::read_to_string(repo().join("templates/hadeploy-agent.service")).unwrap();
    assert!(unit.contains("Documentation=man:hadeploy-agent(8)"));
}
