//! The alert rules shipped in `monitoring/` and the agent's exposition, held to the real
//! `promtool` (`.ci/run` installs it): the rules load, their unit tests pass, and what
//! `hadeploy-agent status --format prometheus` prints passes `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::repo;

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(repo().join("monitoring"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is not installed: `.ci/run` installs it from Debian's prometheus package",
        );
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn alert_rules_load_and_their_tests_pass() {
    let (ok, out) = promtool(&["check", "rules", "hadeploy-alerts.yml"], None);
    assert!(ok && out.contains("7 rules found"), "{out}");
    let (ok, out) = promtool(&["test", "rules", "hadeploy-alerts.test.yml"], None);
    assert!(ok, "{out}");
}

/// A rule test that expects the wrong thing fails: the suite above can fail.
#[test]
fn a_wrong_expectation_fails_the_rule_tests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("monitoring/hadeploy-alerts.yml"),
        dir.path().join("hadeploy-alerts.yml"),
    )
    .unwrap();
    let tests = std::fs::read_to_string(repo().join("monitoring/hadeploy-alerts.test.yml"))
        .unwrap()
        .replace("held by 2 nodes", "held by 3 nodes");
    let file = dir.path().join("wrong.test.yml");
    std::fs::write(&file, tests).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", file.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(!out.status.success());
}

#[test]
fn the_agents_exposition_passes_promtools_lint() {
    let status = hadeploy::agent::control::StatusAnswer::from_json(
        r#"{"comm_up":true,"generation":3,"node":"node1","config_digest":"a","shared_config_digest":"b",
            "groups":["VIP 10.0.0.10"],
            "nodes":[{"name":"node1","status":"active","self":true},{"name":"node2","status":"dead"}],
            "links":[{"node":"node2","link":"eth1","status":"dead"}],
            "heartbeats":[{"node":"node2","longest_gap_ms":900,"late":1,"interval_counts":[0,3,0,0,0,1,0,0,0,0,0],"interval_sum_ms":1200}],
            "resources":[{"group":"VIP 10.0.0.10","home":"node1","since_unix_ms":1700000000000}],
            "transitions":[{"kind":"acquire","reason":"unheld","count":1}],
            "rscstatus":"all","uptime_ms":5000}"#,
    )
    .unwrap();
    let text = hadeploy::agent::metrics::render(&status, "0.1.0");
    let (ok, out) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "{out}\n{text}");
}
