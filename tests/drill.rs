//! `hadeploy drill` against real lab clusters deployed by `hadeploy apply`: every pull mode
//! passes on a healthy pair and on three nodes, and the report's outage agrees with a probe
//! the test runs itself; a degraded cluster is refused; a drill script runs; and an isolated node whose
//! controller vanished reconnects itself by its own timer.

use std::process::Output;
use std::time::{Duration, Instant};

use hadeploy::lab::Flavor;

use crate::support::{LabGuard, hadeploy, stderr, stdout};

fn applied(name: &str, nodes: u8) -> LabGuard {
    let guard = LabGuard::up(name, nodes, Flavor::Systemd);
    let out = hadeploy(&[
        "apply",
        "--ssh-config",
        guard.lab.ssh_config_path().to_str().unwrap(),
        guard.lab.inventory_path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // Past the agents' start-up grace, so budgets are judged on the configured deadtime.
    std::thread::sleep(Duration::from_secs(6));
    guard
}

fn drill(guard: &LabGuard, args: &[&str]) -> Output {
    let ssh = guard.lab.ssh_config_path();
    let inv = guard.lab.inventory_path();
    let mut all = vec![
        "drill",
        inv.to_str().unwrap(),
        "--ssh-config",
        ssh.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    hadeploy(&all)
}

/// The longest stretch from a failed probe to the next answer.
fn longest_gap(seen: &[(u64, bool)]) -> u64 {
    let mut longest = 0;
    let mut since = None;
    for &(at, ok) in seen {
        match (ok, since) {
            (false, None) => since = Some(at),
            (true, Some(s)) => {
                longest = longest.max(at - s);
                since = None;
            }
            _ => {}
        }
    }
    longest
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("JSON report: {e}\n{}\n{}", stdout(out), stderr(out)))
}

#[test]
fn lab_drill_every_mode_on_a_pair() {
    let guard = applied("t-drill", 2);
    let dir = tempfile::tempdir().unwrap();
    for mode in ["standby", "stop", "kill", "isolate", "reboot"] {
        let html = dir.path().join(format!("{mode}.html"));
        // Our own client, independent of the drill's, probing the VIP the whole time.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let independent = {
            let stop = stop.clone();
            let vip = guard.lab.vip;
            std::thread::spawn(move || {
                let began = Instant::now();
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ok = crate::support::http_get(vip, Duration::from_millis(200)).is_some();
                    seen.push((began.elapsed().as_millis() as u64, ok));
                    std::thread::sleep(Duration::from_millis(10));
                }
                seen
            })
        };
        let out = drill(
            &guard,
            &[
                "--pull",
                "node1",
                "--mode",
                mode,
                "--json",
                "--report",
                html.to_str().unwrap(),
            ],
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let ours = longest_gap(&independent.join().unwrap());
        let r = report(&out);
        let theirs = r["outage"]["longest_ms"].as_u64().unwrap();
        assert!(
            ours.abs_diff(theirs) <= 300,
            "{mode}: the report says the longest outage was {theirs} ms, our own probe saw {ours} ms"
        );
        assert!(out.status.success() && r["passed"] == true, "{mode}: {r:#}");
        let events: Vec<&str> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["what"].as_str().unwrap())
            .collect();
        assert!(
            events.iter().any(|e| e.starts_with("pull node1")),
            "{mode}: {events:?}"
        );
        assert!(events.contains(&"VIP up on node2"), "{mode}: {events:?}");
        let audits = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"].as_str().unwrap().starts_with("audit:"))
            .count();
        assert!(audits >= 2, "{mode}: an audit at each settled point: {r:#}");
        assert!(
            events.contains(&"first answer from node2"),
            "{mode}: {events:?}"
        );
        // Probes every 10 ms (each takes a few ms itself): at least one per 20 ms of drill.
        let probes = r["probes"].as_array().unwrap();
        let span = probes.last().unwrap()["at_ms"].as_u64().unwrap();
        assert!(
            probes.len() as u64 >= span / 20,
            "{mode}: {} probes in {span} ms",
            probes.len()
        );
        if matches!(mode, "kill" | "isolate") {
            assert!(
                events.contains(&"node2 declared node1 dead"),
                "{mode}: {events:?}"
            );
        }
        eprintln!(
            "{mode}: longest outage {} ms, {} failed probes, both held {} ms",
            r["outage"]["longest_ms"], r["outage"]["failed_probes"], r["both_held_ms"]
        );
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(
            page.contains("<svg") && page.contains("node2"),
            "{mode}: HTML report"
        );
        // Restored: the home node holds the group again (auto_failback on), except after a
        // standby, which sticks.
        let holder = if mode == "standby" { "node2" } else { "node1" };
        let last = r["holders"].as_array().unwrap().last().unwrap();
        assert_eq!(last["nodes"], serde_json::json!([holder]), "{mode}: {r:#}");
        if mode == "standby" {
            let back = drill(&guard, &["--pull", "node2", "--mode", "standby", "--json"]);
            assert!(back.status.success(), "{}", stdout(&back));
        }
    }

    // A script: the same as a stop drill, written by hand, plus a wait.
    let script = dir.path().join("drill.yml");
    std::fs::write(
        &script,
        "steps:\n  - pull: {node: node1, mode: stop}\n  - expect_vip_on: {node: node2}\n  - expect_serving\n  - wait: {ms: 300}\n  - restore: {node: node1}\n  - expect_vip_on: {node: node1}\n",
    )
    .unwrap();
    let out = drill(&guard, &["--script", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("PASSED") && stdout(&out).contains("client outage"));

    // Dry run: the plan, nothing touched.
    let out = drill(&guard, &["--scenario", "flip", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("pull node1 (standby)"),
        "{}",
        stdout(&out)
    );

    // The last healthy node is never pulled.
    std::fs::write(
        &script,
        "steps:\n  - pull: {node: node1, mode: kill}\n  - pull: {node: node2, mode: stop}\n",
    )
    .unwrap();
    let out = drill(&guard, &["--script", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("last node"), "{}", stderr(&out));

    // A degraded cluster is refused, with the reason: not as desired.
    guard.exec("node2", "systemctl stop hadeploy-agent");
    let out = drill(&guard, &["--pull", "node1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not healthy") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    guard.exec("node2", "systemctl start hadeploy-agent");

    // The VIP on two nodes at once is the critical invariant broken: exit 8, never drilled.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !guard
        .agent_status("node2")
        .is_some_and(|s| s.nodes.iter().any(|n| n.status == "active"))
    {
        assert!(Instant::now() < deadline, "node2's agent did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    let vip = guard.lab.vip;
    let (code, text) = guard.exec("node2", &format!("ip addr add {vip}/24 dev eth0"));
    assert_eq!(code, 0, "{text}");
    let out = drill(&guard, &["--pull", "node1"]);
    guard.exec("node2", &format!("ip addr del {vip}/24 dev eth0"));
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("split"), "{}", stderr(&out));
}

#[test]
fn lab_drill_three_nodes_and_a_lost_controller() {
    let guard = applied("t-drill3", 3);
    // Every mode twice in a row: a node pulled again soon after it rejoined must fail over
    // as well as the first time.
    for round in 1..=2 {
        for mode in ["standby", "stop", "kill", "isolate", "reboot"] {
            let out = drill(&guard, &["--pull", "node1", "--mode", mode, "--json"]);
            let r = report(&out);
            assert!(
                out.status.success() && r["passed"] == true,
                "round {round}, {mode}: {r:#}"
            );
            eprintln!(
                "3 nodes, round {round}, {mode}: longest outage {} ms, both held {} ms",
                r["outage"]["longest_ms"], r["both_held_ms"]
            );
            if mode == "standby" {
                // Standby sticks: hand the group back to node1.
                let back = drill(&guard, &["--pull", "node2", "--mode", "standby", "--json"]);
                assert!(back.status.success(), "round {round}: {}", stdout(&back));
            }
        }
    }

    // The controller dies mid-isolate: node1's own timer lifts the rules (the drill arms it
    // for four budgets, at least 20 s).
    let ssh = guard.lab.ssh_config_path();
    let inv = guard.lab.inventory_path();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .args([
            "drill",
            inv.to_str().unwrap(),
            "--ssh-config",
            ssh.to_str().unwrap(),
        ])
        .args(["--pull", "node1", "--mode", "isolate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !guard
        .exec("node1", "nft list tables")
        .1
        .contains("hadeploy_drill")
    {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "isolation never armed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        guard
            .exec("node1", "nft list tables")
            .1
            .contains("hadeploy_drill")
    );
    let began = Instant::now();
    while guard
        .exec("node1", "nft list tables")
        .1
        .contains("hadeploy_drill")
    {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "node1 stayed isolated"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
