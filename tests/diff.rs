//! `hadeploy diff` on a converged lab cluster: each drift made by hand is found, named with its
//! kind and rule, exits 2 (10 with a critical one, 4 with a node down), never prints a secret,
//! and is gone after `apply` (or the fix the finding names) with `diff` back to 0.

use std::time::{Duration, Instant};

use hadeploy::lab::Flavor;
use serde_json::Value;

use crate::support::{LabGuard, hadeploy, stderr, stdout};

fn run(guard: &LabGuard, command: &str, extra: &[&str]) -> std::process::Output {
    let inventory = guard.lab.inventory_path();
    let ssh_config = guard.lab.ssh_config_path();
    let mut args = vec![command, "--ssh-config", ssh_config.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(inventory.to_str().unwrap());
    hadeploy(&args)
}

/// One `diff --json`: the exit code, the document, and every byte it printed.
struct Diff {
    code: i32,
    doc: Value,
    printed: String,
}

impl Diff {
    /// The findings with this rule, as `(node or "cluster", kind, cause)`.
    fn with_rule(&self, rule: &str) -> Vec<(String, String, String)> {
        self.doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| {
                (
                    f["node"].as_str().unwrap_or("cluster").to_string(),
                    f["kind"].as_str().unwrap().to_string(),
                    f["cause"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn has(&self, rule: &str, node: &str, kind: &str) -> bool {
        self.with_rule(rule)
            .iter()
            .any(|(n, k, _)| n == node && k == kind)
    }
}

fn diff(guard: &LabGuard) -> Diff {
    let out = run(guard, "diff", &["--json"]);
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    let doc: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}):\n{printed}"));
    Diff {
        code: out.status.code().unwrap_or(-1),
        doc,
        printed,
    }
}

fn apply(guard: &LabGuard) {
    let out = run(guard, "apply", &[]);
    assert!(
        out.status.success(),
        "apply failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Waits until `diff` reports the cluster in sync (agents need a moment to see each other after
/// a restart), and returns that run.
fn in_sync(guard: &LabGuard, after: &str) -> Diff {
    let began = Instant::now();
    loop {
        let d = diff(guard);
        if d.code == 0 {
            assert!(d.doc["findings"].as_array().unwrap().is_empty());
            return d;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "after {after}, diff still finds (exit {}):\n{}",
            d.code,
            d.printed
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn lab_diff_finds_each_hand_made_drift_and_apply_clears_it() {
    let guard = LabGuard::up("t-diff", 2, Flavor::Systemd);
    let sh = |node: &str, script: &str| {
        let (code, out) = guard.exec(node, script);
        assert_eq!(code, 0, "{node}: `{script}` failed: {out}");
        out
    };
    apply(&guard);
    let converged = in_sync(&guard, "the first apply");
    assert!(
        converged.printed.contains("\"in_sync\":true"),
        "{}",
        converged.printed
    );
    // The text form says so too, one verdict per cluster.
    let text = run(&guard, "diff", &[]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).contains(": in sync"), "{}", stdout(&text));

    // haresources edited on one node: drift there, the nodes disagree, the agent still runs
    // the old one.
    sh("node2", "echo '# hand edit' >> /etc/ha.d/haresources");
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert!(
        d.with_rule("file")
            .contains(&("node2".into(), "desired".into(), "drift".into())),
        "{}",
        d.printed
    );
    assert!(
        d.has("same-haresources", "cluster", "node-vs-node"),
        "{}",
        d.printed
    );
    assert!(
        d.has("restart-pending", "node2", "runtime"),
        "{}",
        d.printed
    );
    assert!(d.printed.contains("+# hand edit") || d.printed.contains("-# hand edit"));
    apply(&guard);
    in_sync(&guard, "apply fixed haresources on node2");

    // The same edit on both nodes: drift against the inventory, but the nodes agree.
    for node in ["node1", "node2"] {
        sh(node, "echo '# both' >> /etc/ha.d/haresources");
    }
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert_eq!(d.with_rule("file").len(), 2, "{}", d.printed);
    assert!(d.with_rule("same-haresources").is_empty(), "{}", d.printed);
    apply(&guard);
    in_sync(&guard, "apply fixed haresources on both nodes");

    // The authkeys secret changed on one node: reported, never printed, old or new.
    let old_secret = sh(
        "node1",
        "awk '$1 ~ /^[0-9]+$/ {print $3}' /etc/ha.d/authkeys",
    );
    let old_secret = old_secret.trim();
    assert!(old_secret.len() >= 16, "{old_secret:?}");
    let new_secret = "hand-typed-weak-secret-4711";
    sh(
        "node1",
        &format!("sed -i 's|{old_secret}|{new_secret}|' /etc/ha.d/authkeys"),
    );
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert!(d.has("file", "node1", "desired"), "{}", d.printed);
    assert!(
        d.has("same-authkeys", "cluster", "node-vs-node"),
        "{}",
        d.printed
    );
    let text = run(&guard, "diff", &[]);
    for printed in [
        d.printed.clone(),
        format!("{}{}", stdout(&text), stderr(&text)),
    ] {
        assert!(
            !printed.contains(old_secret) && !printed.contains(new_secret),
            "diff printed a secret:\n{printed}"
        );
    }
    assert!(stdout(&text).contains("the secret differs (not shown)"));
    apply(&guard);
    in_sync(&guard, "apply restored authkeys");

    // nginx enabled at boot on the passive node, ip_nonlocal_bind reset live.
    sh("node2", "systemctl enable -q nginx.service");
    sh("node1", "sysctl -q -w net.ipv4.ip_nonlocal_bind=0");
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert!(
        d.with_rule("boot")
            .contains(&("node2".into(), "desired".into(), "drift".into())),
        "{}",
        d.printed
    );
    assert!(d.has("sysctl", "node1", "desired"), "{}", d.printed);
    apply(&guard);
    in_sync(&guard, "apply fixed boot state and sysctl");

    // The VIP added by hand on the passive node: critical, exit 10 (drift + critical).
    let vip = guard.lab.vip;
    let iface = sh(
        "node1",
        &format!("ip -o -4 addr show | awk '$4 ~ /^{vip}\\// {{print $2}}'"),
    );
    let iface = iface.trim();
    assert!(!iface.is_empty(), "node1 does not hold {vip}");
    sh("node2", &format!("ip addr add {vip}/32 dev {iface}"));
    let d = diff(&guard);
    assert_eq!(d.code, 10, "{}", d.printed);
    assert!(d.has("vip-holder", "cluster", "runtime"), "{}", d.printed);
    sh("node2", &format!("ip addr del {vip}/32 dev {iface}"));
    in_sync(&guard, "the hand-added VIP was removed");

    // nginx started by hand on the passive node.
    sh("node2", "systemctl start nginx.service");
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert!(
        d.has("service-placement", "node2", "runtime"),
        "{}",
        d.printed
    );
    sh("node2", "systemctl stop nginx.service");
    in_sync(&guard, "nginx was stopped on the passive node");

    // ha.cf changed without an agent restart: restart pending (and drift).
    sh("node1", "echo '# pending' >> /etc/ha.d/ha.cf");
    let d = diff(&guard);
    assert!(
        d.has("restart-pending", "node1", "runtime"),
        "{}",
        d.printed
    );
    // Accepted in the inventory until a date it is silenced; once the date is past it is
    // reported again, with a warning naming the entry.
    let inventory = guard.lab.inventory_path();
    let original = std::fs::read_to_string(&inventory).unwrap();
    let accepted = |until: &str| {
        original.replace(
            "        ha_resources: [nginx]\n",
            &format!(
                "        ha_resources: [nginx]\n        ha_drift_ignore: [{{rule: restart-pending, host: node1, reason: rolling restart tonight, until: {until}}}]\n"
            ),
        )
    };
    std::fs::write(&inventory, accepted("2999-12-31")).unwrap();
    let d = diff(&guard);
    assert!(
        !d.has("restart-pending", "node1", "runtime"),
        "{}",
        d.printed
    );
    assert!(d.doc["ignored"].as_u64().unwrap() >= 1, "{}", d.printed);
    std::fs::write(&inventory, accepted("2000-01-01")).unwrap();
    let d = diff(&guard);
    assert!(
        d.has("restart-pending", "node1", "runtime"),
        "{}",
        d.printed
    );
    assert!(d.printed.contains("expired on 2000-01-01"), "{}", d.printed);
    std::fs::write(&inventory, &original).unwrap();
    apply(&guard);
    in_sync(&guard, "apply restored ha.cf and restarted the agent");

    // A real Heartbeat started beside the agent: it is named, running and enabled.
    sh(
        "node2",
        "systemctl enable -q heartbeat.service && systemctl start heartbeat.service",
    );
    let d = diff(&guard);
    assert_eq!(d.code & 2, 2, "{}", d.printed);
    let daemon = d.doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "other-daemon" && f["node"] == "node2")
        .unwrap_or_else(|| panic!("heartbeat beside the agent not found:\n{}", d.printed));
    assert_eq!(
        daemon["actual"], "running and enabled at boot",
        "{}",
        d.printed
    );
    // Its generation is above the agent's: the agent's restart goes above it again, or node1
    // would keep dropping node2's heartbeats as replays.
    sh(
        "node2",
        "systemctl disable -q --now heartbeat.service && systemctl restart hadeploy-agent",
    );
    in_sync(&guard, "heartbeat was stopped and the agent restarted");

    // Hostile content: a huge binary file where haresources was. Reported, not read.
    sh(
        "node2",
        "head -c 3000000 /dev/urandom > /etc/ha.d/haresources",
    );
    let d = diff(&guard);
    assert_eq!(d.code, 2, "{}", d.printed);
    assert!(d.has("file", "node2", "desired"), "{}", d.printed);
    assert!(d.printed.contains("not read"), "{}", d.printed);
    apply(&guard);
    in_sync(&guard, "apply replaced the huge haresources");

    // Nothing diff ran changed a node: the manifests are still those apply wrote.
    let manifest = sh("node1", "stat -c %Y /var/lib/hadeploy/manifest.json");
    let _ = diff(&guard);
    assert_eq!(
        sh("node1", "stat -c %Y /var/lib/hadeploy/manifest.json"),
        manifest
    );

    // A node down: exit 4 for it, the other still inspected and reported.
    hadeploy::lab::inject(&guard.lab, "node2", hadeploy::lab::Fault::Crash).unwrap();
    let d = diff(&guard);
    assert_eq!(d.code & 4, 4, "{}", d.printed);
    let unreachable = d.doc["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{}", d.printed);
    assert_eq!(unreachable[0]["host"], "node2");
    assert!(
        d.doc["clusters"][0]["verdict"]
            .as_str()
            .unwrap()
            .contains("not inspected")
    );
}

fn status(guard: &LabGuard) -> (i32, Value, String) {
    let out = run(guard, "status", &["--json"]);
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    let doc: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{printed}"));
    (out.status.code().unwrap_or(-1), doc, printed)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One scrape of a node's `/metrics`, parsed by a real parser, and the text.
fn scrape(addr: std::net::Ipv4Addr) -> (prometheus_parse::Scrape, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from((addr, 9717)),
        Duration::from_secs(2),
    )
    .expect("the metrics listener answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    (
        prometheus_parse::Scrape::parse(lines).expect("the exposition parses"),
        body.to_string(),
    )
}

fn gauge(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .unwrap_or_else(|| panic!("no {name}{{{}={}}}", label.0, label.1));
    match sample.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn lab_status_shows_the_holder_since_a_drill_and_the_metrics_agree() {
    let guard = LabGuard::up("t-status", 2, Flavor::Systemd);
    let inventory = guard.lab.inventory_path();
    let text = std::fs::read_to_string(&inventory).unwrap();
    std::fs::write(
        &inventory,
        text.replace(
            "        ha_resources: [nginx]\n",
            "        ha_resources: [nginx]\n        ha_metrics_listen: 0.0.0.0:9717\n",
        ),
    )
    .unwrap();
    apply(&guard);
    // Healthy, and past the agents' start-up grace so the drill judges the configured timers.
    let began = Instant::now();
    let doc = loop {
        let (code, doc, printed) = status(&guard);
        let settled = doc["clusters"][0]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["uptime_ms"].as_u64().unwrap_or(0) > 6000);
        if code == 0 && settled {
            break doc;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "status never healthy (exit {code}):\n{printed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let group = &doc["clusters"][0]["groups"][0];
    assert_eq!(group["holders"], serde_json::json!(["node1"]), "{doc}");
    let first_since = group["since_unix_ms"].as_u64().unwrap();

    // Both agents serve the same picture: the group held once, node1 holding it.
    let addr = |node: &str| guard.lab.node(node).unwrap().service_addr;
    let group_name = group["group"].as_str().unwrap().to_string();
    let held = |node: &str| {
        gauge(
            &scrape(addr(node)).0,
            "hadeploy_group_held",
            ("group", &group_name),
        )
    };
    assert_eq!((held("node1"), held("node2")), (1.0, 0.0));
    let (_, exposition) = scrape(addr("node2"));
    let lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(exposition.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool is not installed: `.ci/run` installs it");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // A drill moves the group away and back: status names the holder and the new since.
    // Meanwhile both agents' metrics are recorded, to replay through the alert rules.
    let drill_began = unix_ms();
    let recording = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let recorder = {
        let (recording, group) = (recording.clone(), group_name.clone());
        let nodes = [("node1", addr("node1")), ("node2", addr("node2"))];
        std::thread::spawn(move || {
            let mut samples: Vec<(u64, &str, f64)> = Vec::new();
            while recording.load(std::sync::atomic::Ordering::Relaxed) {
                for (node, a) in nodes {
                    let held = gauge(&scrape(a).0, "hadeploy_group_held", ("group", &group));
                    samples.push((unix_ms(), node, held));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };
    let out = run(&guard, "drill", &["--pull", "node1", "--mode", "standby"]);
    recording.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = recorder.join().expect("the recorder");
    // Exit 2 is a budget missed on a loaded machine: what this test checks is where the group
    // went, through status; anything else is the drill not having run.
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "the drill did not run:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    no_alert_during(&samples, &group_name, drill_began);
    let began = Instant::now();
    let (doc, printed) = loop {
        let (code, doc, printed) = status(&guard);
        if code == 0 {
            break (doc, printed);
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "status after the drill (exit {code}):\n{printed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let cluster = &doc["clusters"][0];
    let group = &cluster["groups"][0];
    let holders = group["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1, "{printed}");
    let holder = holders[0].as_str().unwrap();
    let since = group["since_unix_ms"].as_u64().unwrap();
    assert!(
        since > first_since && since >= drill_began && since <= unix_ms(),
        "since {since} is not after the drill began at {drill_began}: {printed}"
    );
    // The node whose agent says it holds the group is the one with the VIP on its interface.
    let (_, addrs) = guard.exec(holder, "ip -o -4 addr show");
    assert!(addrs.contains(&format!(" {}/", guard.lab.vip)), "{addrs}");
    let hand_off = &cluster["last_hand_off"];
    assert!(
        hand_off["at_unix_ms"].as_u64().unwrap() >= drill_began,
        "{printed}"
    );
    assert_eq!(hand_off["host"], holder, "{printed}");
    // The metrics counted the hand-offs of the drill.
    let taken = gauge(
        &scrape(addr("node2")).0,
        "hadeploy_transitions_total",
        ("reason", "standby"),
    );
    assert!(taken >= 1.0, "node2 took the group in the drill: {taken}");
    let text = run(&guard, "status", &[]);
    let text = stdout(&text);
    assert!(
        text.contains("cluster lab: healthy") && text.contains(" (for "),
        "{text}"
    );
}

/// Replays what the agents exported during a drill through the shipped alert rules: a drill
/// that keeps the VIP on one node (but for the instant of a hand-off) must page nobody.
fn no_alert_during(samples: &[(u64, &str, f64)], group: &str, began_ms: u64) {
    let end_ms = samples.iter().map(|s| s.0).max().unwrap_or(began_ms);
    let seconds = (end_ms.saturating_sub(began_ms) / 1000 + 1) as usize;
    assert!(seconds >= 2, "the recording is too short: {samples:?}");
    let mut handed_over = false;
    let mut series = String::new();
    for node in ["node1", "node2"] {
        // One value a second: what the node exported last before each second.
        let values: Vec<String> = (0..seconds)
            .map(|i| {
                let at = began_ms + 1000 * i as u64;
                samples
                    .iter()
                    .rfind(|s| s.1 == node && s.0 <= at)
                    .or_else(|| samples.iter().find(|s| s.1 == node))
                    .map_or(0.0, |s| s.2)
                    .to_string()
            })
            .collect();
        handed_over |= node == "node2" && samples.iter().any(|s| s.1 == node && s.2 == 1.0);
        series.push_str(&format!(
            "      - series: 'hadeploy_group_held{{instance=\"{node}\",group=\"{group}\"}}'\n        values: '{}'\n      - series: 'hadeploy_agent_info{{instance=\"{node}\",cluster=\"node1+node2\",node=\"{node}\",version=\"0.1.0\"}}'\n        values: '1x{}'\n",
            values.join(" "),
            seconds - 1
        ));
    }
    assert!(
        handed_over,
        "node2 never held the group in the recording: {samples:?}"
    );
    let test = format!(
        "rule_files:\n  - {}\nevaluation_interval: 1s\ntests:\n  - interval: 1s\n    input_series:\n{series}    alert_rule_test:\n      - eval_time: {}s\n        alertname: HadeployVipNotOnExactlyOneNode\n",
        crate::support::repo()
            .join("monitoring/hadeploy-alerts.yml")
            .display(),
        seconds - 1
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drill.test.yml");
    std::fs::write(&file, &test).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["test", "rules", file.to_str().unwrap()])
        .output()
        .expect("promtool is not installed: `.ci/run` installs it");
    assert!(
        out.status.success(),
        "the alert rules paged on a drill:\n{}{}\n{test}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
