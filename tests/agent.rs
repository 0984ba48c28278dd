//! The agent on real lab nodes, deployed by `hadeploy apply`: the VIP and nginx come up on the
//! preferred node, and after every kind of failure — standby, takeover, SIGTERM, SIGKILL of
//! the agent, a crashed container, a hung one, pulled cables — the cluster settles with the VIP
//! on exactly one node, nginx running only there, and HTTP through the VIP answered by it.
//! How long clients waited is printed for the record, never asserted against the clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hadeploy::lab::Flavor;
use hadeploy::lab::{self, Fault};

use hadeploy::agent::control::StatusAnswer;

use crate::support::{LabGuard, hadeploy, http_get, parse_status, stderr, stdout};

/// How long any settling may take before the test gives up (generous: a loaded CI machine).
const SETTLE: Duration = Duration::from_secs(30);

struct Cluster {
    guard: LabGuard,
    nodes: Vec<String>,
    vip: Ipv4Addr,
}

impl Cluster {
    /// A lab of `count` nodes with the cluster applied and the VIP served by node1.
    fn up(name: &str, count: u8) -> Cluster {
        let guard = LabGuard::up(name, count, Flavor::Systemd);
        let inventory = guard.lab.inventory_path();
        let ssh_config = guard.lab.ssh_config_path();
        let out = hadeploy(&[
            "apply",
            "--ssh-config",
            ssh_config.to_str().unwrap(),
            inventory.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "apply failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        let cluster = Cluster {
            nodes: (1..=count).map(|i| format!("node{i}")).collect(),
            vip: guard.lab.vip,
            guard,
        };
        cluster.settled_on("node1", "after apply");
        cluster
    }

    /// `hadeploy COMMAND FLAGS… --ssh-config LAB INVENTORY` against this lab.
    fn run(
        &self,
        command: &str,
        flags: &[&str],
        inventory: &std::path::Path,
    ) -> std::process::Output {
        let ssh_config = self.guard.lab.ssh_config_path();
        let mut args = vec![command];
        args.extend_from_slice(flags);
        args.extend([
            "--ssh-config",
            ssh_config.to_str().unwrap(),
            inventory.to_str().unwrap(),
        ]);
        hadeploy(&args)
    }

    /// `hadeploy diff` exits 0: the cluster is exactly what `inventory` says.
    fn in_sync(&self, inventory: &std::path::Path) {
        let diff = self.run("diff", &[], inventory);
        assert_eq!(
            diff.status.code(),
            Some(0),
            "{}{}",
            stdout(&diff),
            stderr(&diff)
        );
    }

    fn sh(&self, node: &str, script: &str) -> String {
        self.guard.exec(node, script).1
    }

    /// Nodes that can be asked: crashed and paused ones are skipped (exec into them fails or
    /// hangs).
    fn live_nodes(&self) -> impl Iterator<Item = &String> {
        self.nodes.iter().filter(|n| {
            self.guard
                .lab
                .node(n)
                .is_ok_and(|node| lab::docker::is_live(&node.container))
        })
    }

    /// Nodes that have the VIP configured right now.
    fn vip_holders(&self) -> Vec<String> {
        let needle = format!(" {}/", self.vip);
        self.live_nodes()
            .filter(|n| self.sh(n, "ip -o -4 addr show").contains(&needle))
            .cloned()
            .collect()
    }

    fn nginx_running_on(&self) -> Vec<String> {
        self.live_nodes()
            .filter(|n| {
                self.sh(n, "pgrep -x nginx >/dev/null && echo yes")
                    .contains("yes")
            })
            .cloned()
            .collect()
    }

    fn answered_by(&self) -> Option<String> {
        let body = http_get(self.vip, Duration::from_millis(500))?;
        self.nodes
            .iter()
            .find(|n| body.contains(n.as_str()))
            .cloned()
    }

    /// Waits until `node` alone holds the VIP, runs nginx and answers through the VIP.
    /// Returns how long that took.
    fn settled_on(&self, node: &str, after: &str) -> Duration {
        let began = Instant::now();
        loop {
            let answered = self.answered_by();
            if answered.as_deref() == Some(node)
                && self.vip_holders() == [node]
                && self.nginx_running_on() == [node]
            {
                return began.elapsed();
            }
            if began.elapsed() > SETTLE {
                panic!(
                    "{after}: expected {node} alone to serve the VIP; answered by {answered:?}, VIP on {:?}, nginx on {:?}\n{}",
                    self.vip_holders(),
                    self.nginx_running_on(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until some node other than `not` alone serves; returns it and the wait. An
    /// isolated `not` cannot know it lost the VIP, so its nginx is only checked when it can
    /// hear the cluster.
    fn settled_away_from(&self, not: &str, after: &str) -> (String, Duration) {
        let isolated = after.contains("cables");
        let began = Instant::now();
        loop {
            if let Some(node) = self.answered_by()
                && node != not
                && self.vip_holders() == [node.clone()]
                && (isolated && self.nginx_running_on().contains(&node)
                    || self.nginx_running_on() == [node.clone()])
            {
                return (node, began.elapsed());
            }
            if began.elapsed() > SETTLE {
                panic!(
                    "{after}: expected a node other than {not} to serve; VIP on {:?}\n{}",
                    self.vip_holders(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn agent(&self, node: &str, args: &str) -> (i32, String) {
        self.guard
            .exec(node, &format!("/usr/local/sbin/hadeploy-agent {args} 2>&1"))
    }

    fn status(&self, node: &str) -> StatusAnswer {
        let (code, out) = self.agent(node, "status --json");
        assert_eq!(code, 0, "{node}: status: {out}");
        parse_status(node, &out)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- {n}\n{}",
                    // A node running the real Heartbeat logs to /var/log/ha-log instead.
                    self.sh(
                        n,
                        "journalctl -u hadeploy-agent --no-pager -n 40 2>&1; \
                         tail -n 60 /var/log/ha-log 2>/dev/null | grep -v 'scheduler\\|locked-in memory'"
                    )
                )
            })
            .collect()
    }
}

#[test]
fn lab_agent_pair_survives_every_failure() {
    let c = Cluster::up("t-agent2", 2);

    // Both agents see each other active; node1 holds the group since a known time.
    for node in ["node1", "node2"] {
        let status = c.status(node);
        let states: Vec<&str> = status.nodes.iter().map(|n| n.status.as_str()).collect();
        assert_eq!(states, ["active", "active"], "{node}: {status}");
    }
    let status = c.status("node1");
    assert_eq!(status.rscstatus, "local");
    assert!(status.resources[0].since_unix_ms.unwrap() > 0);
    let (code, table) = c.agent("node1", "status");
    assert_eq!(code, 0);
    assert!(
        table.contains("node2") && table.contains("active"),
        "{table}"
    );

    // Standby and takeover (hb_standby / hb_takeover).
    let (code, out) = c.agent("node1", "standby");
    assert_eq!(code, 0, "{out}");
    let t = c.settled_on("node2", "standby on node1");
    eprintln!("standby: served by node2 after {t:?}");
    let (code, out) = c.agent("node1", "takeover");
    assert_eq!(code, 0, "{out}");
    let t = c.settled_on("node1", "takeover on node1");
    eprintln!("takeover: served by node1 after {t:?}");
    let (code, out) = c.agent("node2", "standby");
    assert_ne!(code, 0, "node2 holds nothing: standby must say so");
    assert!(out.contains("holds none"), "{out}");

    // SIGTERM: hands over at once; failback (auto_failback on) when it returns.
    c.sh("node1", "systemctl stop hadeploy-agent");
    let t = c.settled_on("node2", "SIGTERM of node1's agent");
    eprintln!("SIGTERM: served by node2 after {t:?}");
    c.sh("node1", "systemctl start hadeploy-agent");
    let t = c.settled_on("node1", "node1's agent started again");
    eprintln!("failback after restart: {t:?}");

    // SIGKILL of the agent: ExecStopPost releases, systemd restarts it, it negotiates.
    c.sh("node1", "systemctl kill -s KILL hadeploy-agent");
    let t = c.settled_on("node1", "SIGKILL of node1's agent and its restart");
    eprintln!("SIGKILL: node1 serving again after {t:?}");

    // A crashed container: node2 takes over; node1 boots again and gets its group back.
    lab::inject(&c.guard.lab, "node1", Fault::Crash).unwrap();
    let (_, t) = c.settled_away_from("node1", "docker kill node1");
    eprintln!("crash: served by node2 after {t:?}");
    lab::inject(&c.guard.lab, "node1", Fault::Start).unwrap();
    c.settled_on("node1", "node1 booted again");

    // A hung node: node2 takes over; on resume exactly one node keeps the VIP.
    lab::inject(&c.guard.lab, "node1", Fault::Hang).unwrap();
    let (_, t) = c.settled_away_from("node1", "docker pause node1");
    eprintln!("pause: served by node2 after {t:?}");
    lab::inject(&c.guard.lab, "node1", Fault::Resume).unwrap();
    c.settled_on("node1", "node1 resumed (home node keeps the group)");

    // Both cables pulled: node2 serves; plugged back, one owner, re-announced.
    lab::inject(&c.guard.lab, "node1", Fault::UnplugAll).unwrap();
    let (_, t) = c.settled_away_from("node1", "all of node1's cables pulled");
    eprintln!("cables pulled: served by node2 after {t:?}");
    lab::inject(&c.guard.lab, "node1", Fault::Plug).unwrap();
    c.settled_on("node1", "cables back (partition healed)");

    // resource_check (hadeploy-agent.cf): a dead nginx moves the group to the peer, which
    // Heartbeat v1 never noticed. node2 restarts first, so node1 keeps serving meanwhile.
    for node in ["node2", "node1"] {
        c.sh(
            node,
            "printf 'resource_check 300ms\\nresource_check_failures 2\\n' > /etc/ha.d/hadeploy-agent.cf \
             && systemctl restart hadeploy-agent",
        );
        c.settled_on(
            "node1",
            &format!("{node}'s agent restarted with resource_check"),
        );
    }
    let (code, out) = c.agent("node1", "check-config --config-dir /etc/ha.d");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every 300 ms, 2 failures"), "{out}");
    c.sh("node1", "systemctl kill -s KILL nginx");
    let t = c.settled_on("node2", "nginx killed on node1");
    eprintln!("nginx killed: served by node2 after {t:?}");
    let log = c.sh(
        "node1",
        "journalctl -u hadeploy-agent --no-pager -o cat | grep 'status check failed'",
    );
    assert!(log.contains("2 times in a row"), "{log}");

    // No agent logged a crash of its own.
    let logs = c.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn lab_agent_three_nodes_one_survivor_takes_over() {
    let c = Cluster::up("t-agent3", 3);
    let status = c.status("node3");
    assert_eq!(status.nodes.len(), 3, "{status}");
    lab::inject(&c.guard.lab, "node1", Fault::Crash).unwrap();
    let (taker, t) = c.settled_away_from("node1", "docker kill node1");
    eprintln!("3 nodes, crash: served by {taker} after {t:?}");
    lab::inject(&c.guard.lab, "node1", Fault::Start).unwrap();
    c.settled_on("node1", "node1 booted again");

    // SIGTERM, standby, SIGKILL of the agent, a hung node and every cable pulled: one of the
    // two others serves alone each time, and node1 gets its group back (auto_failback on).
    c.sh("node1", "systemctl stop hadeploy-agent");
    let (taker, t) = c.settled_away_from("node1", "SIGTERM of node1's agent");
    eprintln!("3 nodes, SIGTERM: served by {taker} after {t:?}");
    c.sh("node1", "systemctl start hadeploy-agent");
    c.settled_on("node1", "node1's agent started again");
    let (code, out) = c.agent("node1", "standby");
    assert_eq!(code, 0, "{out}");
    let (taker, _) = c.settled_away_from("node1", "standby on node1");
    let (code, out) = c.agent("node1", "takeover");
    assert_eq!(code, 0, "{out}");
    c.settled_on("node1", &format!("takeover from {taker}"));
    c.sh("node1", "systemctl kill -s KILL hadeploy-agent");
    c.settled_on("node1", "SIGKILL of node1's agent and its restart");
    for (fault, undo, what) in [
        (Fault::Hang, Fault::Resume, "docker pause node1"),
        (
            Fault::UnplugAll,
            Fault::Plug,
            "all of node1's cables pulled",
        ),
    ] {
        lab::inject(&c.guard.lab, "node1", fault).unwrap();
        let (taker, t) = c.settled_away_from("node1", what);
        eprintln!("3 nodes, {what}: served by {taker} after {t:?}");
        lab::inject(&c.guard.lab, "node1", undo).unwrap();
        c.settled_on("node1", &format!("{what}, undone"));
    }
    assert!(!c.logs().contains("panicked"));
}

/// The mixed pair: node1 runs the agent, node2 the real Heartbeat 3.0.6 on the same files.
/// Membership forms both ways, resources move both ways (standby, hb_standby, hb_takeover,
/// graceful stops), and a capture of the link decodes with every signature verified.
#[test]
fn lab_agent_interoperates_with_real_heartbeat() {
    let c = Cluster::up("t-interop", 2);
    let real = |script: &str| c.sh("node2", script);
    real(
        "systemctl stop hadeploy-agent && echo 'logfile /var/log/ha-log' >> /etc/ha.d/ha.cf && systemctl start heartbeat",
    );
    let began = Instant::now();
    while !(real("cl_status nodestatus node1 2>&1").trim() == "active"
        && c.status("node1").nodes[1].status == "active")
    {
        assert!(
            began.elapsed() < SETTLE,
            "no membership between the agent and Heartbeat: {}\n{}",
            c.status("node1"),
            real("tail -30 /var/log/ha-log")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.settled_on("node1", "Heartbeat joined");

    // The agent reloads beside Heartbeat: a new warntime in force, and for three deadtimes
    // after it Heartbeat never stops seeing the agent's node active.
    let generation = c.status("node1").generation;
    c.sh(
        "node1",
        "sed -i 's/^warntime .*/warntime 600ms/' /etc/ha.d/ha.cf",
    );
    let (code, out) = c.agent("node1", "reload");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warntime 500 ms → 600 ms"), "{out}");
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        let seen = real("cl_status nodestatus node1 2>&1");
        assert_eq!(seen.trim(), "active", "Heartbeat lost the reloaded agent");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = c.status("node1");
    assert_eq!(
        (status.generation, status.timers.warntime_ms),
        (generation, 600)
    );
    assert_eq!(
        status.node_view("node2").map(|n| n.status.as_str()),
        Some("active")
    );
    c.settled_on("node1", "the agent reloaded beside Heartbeat");

    // The agent hands over to Heartbeat and Heartbeat hands back (hb_standby).
    let (code, out) = c.agent("node1", "standby");
    assert_eq!(code, 0, "{out}");
    let t = c.settled_on("node2", "agent standby → Heartbeat");
    eprintln!("agent → heartbeat (standby): {t:?}");
    real("/usr/share/heartbeat/hb_standby");
    let t = c.settled_on("node1", "hb_standby on Heartbeat → agent");
    eprintln!("heartbeat → agent (hb_standby): {t:?}");

    // hb_takeover on Heartbeat's side, then a graceful stop of Heartbeat while it holds.
    real("/usr/share/heartbeat/hb_takeover");
    c.settled_on("node2", "hb_takeover on Heartbeat");
    real("systemctl stop heartbeat");
    let t = c.settled_on("node1", "Heartbeat stopped while holding");
    eprintln!("heartbeat stopped → agent: {t:?}");

    // Heartbeat back, then the agent stops while holding: Heartbeat takes over at once.
    real("systemctl start heartbeat");
    let began = Instant::now();
    while real("cl_status nodestatus node1 2>&1").trim() != "active" {
        assert!(
            began.elapsed() < SETTLE,
            "Heartbeat did not see node1 again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.settled_on("node1", "Heartbeat back (agent keeps the group)");

    // What is on the wire: both daemons' datagrams decode and verify with the cluster's keys.
    c.sh(
        "node1",
        "timeout 3 tcpdump -i eth1 -w /var/tmp/hb.pcap -U udp port 694 >/dev/null 2>&1; true",
    );
    let dir = tempfile::tempdir().unwrap();
    let container = &c.guard.lab.node("node1").unwrap().container;
    for file in ["/var/tmp/hb.pcap", "/etc/ha.d/authkeys"] {
        lab::docker::docker(&[
            "cp",
            &format!("{container}:{file}"),
            dir.path().to_str().unwrap(),
        ])
        .unwrap();
    }
    let decoded = std::process::Command::new(env!("CARGO_BIN_EXE_hadeploy-agent"))
        .arg("decode")
        .arg("--authkeys")
        .arg(dir.path().join("authkeys"))
        .arg(dir.path().join("hb.pcap"))
        .output()
        .unwrap();
    let text = stdout(&decoded);
    assert!(decoded.status.success(), "{}", stderr(&decoded));
    for node in ["node1", "node2"] {
        assert!(
            text.contains(&format!("src = {node}")),
            "no datagram from {node}:\n{text}"
        );
    }
    let checked = text.matches("checked by receivers): ").count();
    let ok = text.matches("checked by receivers): ok").count();
    assert!(checked >= 10, "too few datagrams captured:\n{text}");
    assert_eq!(ok, checked, "a signature failed:\n{text}");

    c.sh("node1", "systemctl stop hadeploy-agent");
    let t = c.settled_on("node2", "agent stopped while holding");
    eprintln!("agent stopped → heartbeat: {t:?}");

    // The agent back: Heartbeat returns the group (auto_failback on). Then SIGKILL: the unit's
    // ExecStopPost releases, Heartbeat takes over, and the restarted agent gets it back.
    c.sh("node1", "systemctl start hadeploy-agent");
    let t = c.settled_on("node1", "agent back, Heartbeat fails back");
    eprintln!("heartbeat → agent (failback): {t:?}");
    c.sh("node1", "systemctl kill -s KILL hadeploy-agent");
    let t = c.settled_on(
        "node1",
        "SIGKILL of the agent next to Heartbeat, and its restart",
    );
    eprintln!("agent SIGKILLed and back: {t:?}");
    let audit = real("grep ERROR /var/log/ha-log | grep -v 'scheduler\\|locked-in memory' || true");
    assert!(
        audit.trim().is_empty(),
        "Heartbeat's resource audit complained:\n{audit}\n--- its log around each error:\n{}",
        real(
            "grep -v 'scheduler\\|locked-in memory' /var/log/ha-log | grep -B12 -A3 ERROR || true"
        )
    );
}

/// Membership at its edges: a killed peer is declared dead within its deadtime (agent and real
/// Heartbeat, each about the other), a wrong key is refused by both daemons, and garbage,
/// truncated, oversized and replayed datagrams change nothing but counters.
#[test]
fn lab_agent_membership_keys_and_hostile_input() {
    let c = Cluster::up("t-members", 2);
    let dead_within = |observer: &dyn Fn() -> bool, what: &str| {
        let began = Instant::now();
        while !observer() {
            assert!(began.elapsed() < SETTLE, "{what}: never declared dead");
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{what}: declared dead after {:?}", began.elapsed());
    };
    let node2_status = || c.status("node1").nodes[1].status.clone();

    // Two agents: node2's container dies; node1 judges it by node2's advertised deadtime.
    std::thread::sleep(Duration::from_secs(6)); // past the start-up grace (deadtime + 2 s)
    lab::inject(&c.guard.lab, "node2", Fault::Crash).unwrap();
    dead_within(&|| node2_status() == "dead", "agent about a crashed agent");
    let log = c.sh(
        "node1",
        "journalctl -u hadeploy-agent --no-pager | grep 'node2: active → dead'",
    );
    assert!(
        log.contains("silent for more than 1000 ms"),
        "judged by deadtime: {log}"
    );
    lab::inject(&c.guard.lab, "node2", Fault::Start).unwrap();
    c.settled_on("node1", "node2 back");
    let began = Instant::now();
    while c
        .sh("node2", "systemctl is-system-running 2>/dev/null")
        .trim()
        != "running"
        || node2_status() != "active"
    {
        assert!(began.elapsed() < SETTLE, "node2 did not finish booting");
        std::thread::sleep(Duration::from_millis(200));
    }

    // node2 becomes a real Heartbeat 3.0.6.
    let real = |script: &str| c.sh("node2", script);
    real(
        "systemctl stop hadeploy-agent && echo 'logfile /var/log/ha-log' >> /etc/ha.d/ha.cf && systemctl start heartbeat",
    );
    let hb_sees_node1 = || real("cl_status nodestatus node1 2>&1").trim().to_string();
    let began = Instant::now();
    while !(hb_sees_node1() == "active" && node2_status() == "active") {
        assert!(began.elapsed() < SETTLE, "no membership with Heartbeat");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(6));
    real("pkill -9 -x heartbeat");
    dead_within(
        &|| node2_status() == "dead",
        "agent about a SIGKILLed Heartbeat",
    );
    real("systemctl reset-failed heartbeat; systemctl start heartbeat");
    let began = Instant::now();
    while node2_status() != "active" {
        assert!(began.elapsed() < SETTLE, "Heartbeat did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(6));
    // SIGKILL, and no restart: systemd's stop cancels the pending one.
    c.sh(
        "node1",
        "systemctl kill -s KILL hadeploy-agent; systemctl stop hadeploy-agent",
    );
    dead_within(
        &|| hb_sees_node1() == "dead",
        "Heartbeat about a SIGKILLed agent",
    );
    c.sh("node1", "systemctl start hadeploy-agent");
    let began = Instant::now();
    while !(hb_sees_node1() == "active" && node2_status() == "active") {
        assert!(
            began.elapsed() < SETTLE,
            "the agent did not rejoin Heartbeat"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A wrong key on Heartbeat's side: both refuse the other's datagrams.
    real(
        "cp /etc/ha.d/authkeys /root/authkeys.good && printf 'auth 1\\n1 sha1 not-the-cluster-key\\n' > /etc/ha.d/authkeys && systemctl restart heartbeat",
    );
    let began = Instant::now();
    loop {
        let status = c.status("node1");
        if status.counters.bad_auth >= 5 && node2_status() == "dead" {
            break;
        }
        assert!(
            began.elapsed() < SETTLE,
            "agent accepted a wrong key: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let began = Instant::now();
    while !real(
        "grep -c 'authentication failed\\|authtoken does not match' /var/log/ha-log || true",
    )
    .trim()
    .parse::<u32>()
    .is_ok_and(|n| n > 0)
    {
        assert!(
            began.elapsed() < SETTLE,
            "Heartbeat accepted the agent's datagrams under a wrong key"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(
        hb_sees_node1(),
        "active",
        "Heartbeat must not count node1 as a member"
    );
    real("cp /root/authkeys.good /etc/ha.d/authkeys && systemctl restart heartbeat");
    let began = Instant::now();
    while !(hb_sees_node1() == "active" && node2_status() == "active") {
        assert!(
            began.elapsed() < SETTLE,
            "the right key did not restore membership"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Hostile datagrams from node2's address: garbage, truncated and oversized copies of a
    // real one, and replays. The agent's view and resources must not move.
    let before = c.status("node1");
    let hb1 = c.guard.lab.node("node1").unwrap().heartbeat_addr;
    real(&format!(
        r#"timeout 5 tcpdump -i eth1 -c 20 -w /var/tmp/some.pcap 'udp and src host {hb2} and dst port 694' >/dev/null 2>&1
python3 - <<'PY'
import os, random, socket, struct, time
data = open('/var/tmp/some.pcap', 'rb').read()
# Records after the 24-byte file header; each Ethernet/IPv4/UDP frame after a 16-byte header.
# A status message: it carries a sequence number, so copies of it are replays (acks do not).
at, real = 24, None
while at + 16 <= len(data):
    caplen = struct.unpack('<I', data[at + 8:at + 12])[0]
    payload = data[at + 16 + 14 + 20 + 8:at + 16 + caplen]
    at += 16 + caplen
    if b'(0)t=status,' in payload:
        real = payload
        break
assert real, 'no status datagram captured'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ('{hb1}', 694)
random.seed(1)
# Paced, so the counts below are the agent's verdicts, not a socket buffer overflowing
# (a flood is dropped by a bounded queue, which is tested in the media module).
def send(d):
    s.sendto(d, dst)
    time.sleep(0.001)
for i in range(300):
    send(os.urandom(random.randint(1, 1400)))
for cut in range(1, len(real), 7):
    send(real[:cut])
send(real + b'x' * 60000)
for i in range(200):
    send(real)
PY"#,
        hb2 = c.guard.lab.node("node2").unwrap().heartbeat_addr,
    ));
    std::thread::sleep(Duration::from_secs(2));
    let after = c.status("node1");
    let (was, now) = (&before.counters, &after.counters);
    assert!(
        now.bad_packets >= was.bad_packets + 300,
        "garbage counted: {after}"
    );
    assert!(
        now.duplicates + now.replays >= was.duplicates + was.replays + 150,
        "replays counted: {after}"
    );
    assert_eq!(after.nodes, before.nodes, "membership unchanged");
    assert_eq!(after.rscstatus, before.rscstatus);
    assert_eq!(
        after.generation, before.generation,
        "the agent did not restart"
    );
}

/// The agent reloads its configuration in place. A timer changed in the inventory reaches the
/// agents through `apply` as a reload: no hand-off (the holder, its "since" and the agents'
/// generations unchanged, no transition counted) and the new timers in force. A broken
/// authkeys pushed by hand and `hadeploy-agent reload` (or SIGHUP) leave the agent on the
/// configuration it had; a change only a restart can make is refused with the reason.
#[test]
fn lab_agent_reloads_its_configuration_in_place() {
    let c = Cluster::up("t-reload", 2);
    let before: Vec<StatusAnswer> = c.nodes.iter().map(|n| c.status(n)).collect();
    let held_since = before[0].resources[0].since_unix_ms;
    assert!(held_since.is_some());
    let transitions = |s: &StatusAnswer| -> u64 { s.transitions.iter().map(|t| t.count).sum() };

    let lab_inventory = c.guard.lab.inventory_path();
    let text = std::fs::read_to_string(&lab_inventory).unwrap();
    let slower = text
        .replace("ha_warntime: 500ms", "ha_warntime: 700ms")
        .replace("ha_deadtime: 1\n", "ha_deadtime: 2\n")
        .replace("ha_initdead: 3\n", "ha_initdead: 5\n");
    assert_ne!(slower, text, "the lab inventory's timers moved");
    // Beside the lab's own inventory, so it shares the cluster's secret.
    let inventory = lab_inventory.with_file_name("inventory-slower.yml");
    std::fs::write(&inventory, slower).unwrap();
    let apply = |check: bool| c.run("apply", if check { &["--check"] } else { &[] }, &inventory);
    let reload_line = "handler: reload hadeploy-agent in place (warntime 500 ms → 700 ms; deadtime 1000 ms → 2000 ms; initdead 3000 ms → 5000 ms)";
    let checked = apply(true);
    assert_eq!(checked.status.code(), Some(2), "{}", stderr(&checked));
    assert!(
        stdout(&checked).contains(&format!("would {reload_line}")),
        "check mode names the reload:\n{}",
        stdout(&checked)
    );
    let applied = apply(false);
    assert!(
        applied.status.success(),
        "{}{}",
        stdout(&applied),
        stderr(&applied)
    );
    assert_eq!(
        stdout(&applied).matches(reload_line).count(),
        2,
        "both agents reloaded:\n{}",
        stdout(&applied)
    );
    assert!(!stdout(&applied).contains("restart hadeploy-agent"));
    for (node, was) in c.nodes.iter().zip(&before) {
        let now = c.status(node);
        assert_eq!(now.generation, was.generation, "{node} was not restarted");
        assert_eq!(now.timers.warntime_ms, 700, "{node}");
        assert_eq!(now.timers.deadtime_ms, 2000, "{node}");
        assert_eq!(transitions(&now), transitions(was), "{node}: no hand-off");
        assert!(now.config_loaded_unix_ms > was.config_loaded_unix_ms);
        assert!(now.nodes.iter().all(|n| n.status == "active"), "{now}");
    }
    let after = c.status("node1");
    assert_eq!(
        after.resources[0].since_unix_ms, held_since,
        "the VIP never moved"
    );
    // Each agent says whether the kernel has the VIP: the holder does, the other does not.
    let vip = c.vip.to_string();
    let view = |s: &StatusAnswer| {
        s.vips
            .iter()
            .find(|v| v.address == vip)
            .map(|v| (v.held, v.present))
    };
    assert_eq!(view(&after), Some((true, Some(true))), "{after}");
    let passive = c.status("node2");
    assert_eq!(view(&passive), Some((false, Some(false))), "{passive}");
    c.settled_on("node1", "timers reloaded");
    // The rerun changes nothing, and the drift check agrees the agents run what is on disk.
    let again = apply(false);
    assert!(again.status.success());
    assert!(!stdout(&again).contains("handler:"), "{}", stdout(&again));

    // A broken authkeys, by hand: refused, and the agent runs on with what it had.
    let digest = after.config_digest.clone();
    c.sh(
        "node1",
        "cp -p /etc/ha.d/authkeys /root/authkeys.good && printf 'auth 3\\n1 sha1 x\\n' > /etc/ha.d/authkeys",
    );
    let (code, out) = c.agent("node1", "reload");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("authkeys") && out.contains("still running"),
        "{out}"
    );
    // SIGHUP takes the same path: refused, logged, nothing changed.
    c.sh("node1", "systemctl kill -s HUP hadeploy-agent");
    let began = Instant::now();
    while !c
        .sh(
            "node1",
            "journalctl -u hadeploy-agent -o cat | grep -c 'reload refused'",
        )
        .trim()
        .parse::<u32>()
        .is_ok_and(|n| n >= 2)
    {
        assert!(
            began.elapsed() < SETTLE,
            "SIGHUP was not logged as a refused reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = c.status("node1");
    assert_eq!(status.config_digest, digest);
    assert_eq!(
        status.generation, before[0].generation,
        "still the same agent"
    );
    assert_eq!(status.keys.len(), after.keys.len());
    c.sh("node1", "mv /root/authkeys.good /etc/ha.d/authkeys");

    // What only a restart can change is refused, naming it.
    c.sh(
        "node1",
        "cp -p /etc/ha.d/ha.cf /root/ha.cf.good && sed -i 's/^auto_failback .*/auto_failback off/' /etc/ha.d/ha.cf && grep -q '^auto_failback off' /etc/ha.d/ha.cf",
    );
    let (code, out) = c.agent("node1", "reload");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("only a restart can change auto_failback"),
        "{out}"
    );
    c.sh("node1", "mv /root/ha.cf.good /etc/ha.d/ha.cf");
    let (code, out) = c.agent("node1", "reload");
    assert_eq!(code, 0, "{out}");
    c.settled_on("node1", "refused reloads");
    let last = c.status("node1");
    assert_eq!(last.resources[0].since_unix_ms, held_since);
    assert_eq!(transitions(&last), transitions(&before[0]));
}

/// `hadeploy rotate-key` on a live pair, interrupted once: the controller is killed after a
/// node reached stage 2 (one node signing with the new key, the other with the old), and the
/// rerun resumes from there. Throughout, a client on the VIP gets every answer; afterwards the
/// new secret is on every node and in the secrets file, the old one nowhere, no agent was
/// restarted, nothing moved, no signature failed, `diff` is clean, and neither secret appears
/// in any output. An unhealthy cluster is refused with nothing changed.
#[test]
fn lab_agent_rotate_key_with_no_moment_of_mistrust() {
    use std::io::BufRead;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let c = Cluster::up("t-rotate", 2);
    let inventory = c.guard.lab.inventory_path();
    let ssh_config = c.guard.lab.ssh_config_path();
    let secret_file = inventory
        .with_file_name(".hadeploy-secrets")
        .join("lab.key");
    let next_file = secret_file.with_file_name("lab.key.next");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap().trim().to_string();
    let old = read(&secret_file);
    let before: Vec<StatusAnswer> = c.nodes.iter().map(|n| c.status(n)).collect();
    let since = before[0].resources[0].since_unix_ms;
    let transitions = |s: &StatusAnswer| -> u64 { s.transitions.iter().map(|t| t.count).sum() };

    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, vip) = (stop.clone(), c.vip);
        std::thread::spawn(move || {
            let (mut answered, mut failed) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                match http_get(vip, Duration::from_millis(500)) {
                    Some(_) => answered += 1,
                    None => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (answered, failed)
        })
    };
    let args = [
        "rotate-key",
        "--ssh-config",
        ssh_config.to_str().unwrap(),
        inventory.to_str().unwrap(),
    ];
    // The first run is killed once a node has reached stage 2.
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_hadeploy"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_output = String::new();
    for line in std::io::BufReader::new(first.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        first_output.push_str(&line);
        first_output.push('\n');
        if line.contains("stage 2 of") {
            break;
        }
    }
    first.kill().unwrap();
    let _ = first.wait();
    assert!(first_output.contains("stage 2 of"), "{first_output}");
    assert!(
        next_file.exists(),
        "the new secret is kept beside the old until the end"
    );
    let resumed = hadeploy(&args);
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = prober.join().unwrap();
    let printed = format!("{first_output}{}{}", stdout(&resumed), stderr(&resumed));
    assert!(resumed.status.success(), "{printed}");
    eprintln!("rotation: {answered} requests answered, {failed} failed\n{printed}");
    assert_eq!(failed, 0, "a client request failed during the rotation");
    assert!(answered > 10);

    let new = read(&secret_file);
    assert_ne!(new, old);
    assert_eq!(new.len(), 64);
    assert!(!next_file.exists());
    for secret in [&old, &new] {
        assert!(!printed.contains(secret.as_str()), "a secret was printed");
    }
    for (node, was) in c.nodes.iter().zip(&before) {
        let authkeys = c.sh(node, "cat /etc/ha.d/authkeys");
        assert!(
            authkeys.contains(&new) && !authkeys.contains(&old),
            "{node}"
        );
        let journal = c.sh(node, "journalctl -u hadeploy-agent -o cat");
        assert!(
            !journal.contains(&new) && !journal.contains(&old),
            "{node}: a secret in the journal"
        );
        let now = c.status(node);
        assert_eq!(now.generation, was.generation, "{node} was not restarted");
        assert_eq!(transitions(&now), transitions(was), "{node}: no hand-off");
        assert_eq!(
            now.counters.bad_auth, was.counters.bad_auth,
            "{node}: a signature failed"
        );
        assert_eq!(now.keys.len(), 1, "{node}: only the new key is left");
        assert!(
            now.keys[0].packets_in > 0,
            "{node}: the peer signs with the new key"
        );
        assert!(now.keys[0].signs && now.keys[0].index == 1);
        assert!(now.nodes.iter().all(|n| n.status == "active"));
    }
    assert_eq!(c.status("node1").resources[0].since_unix_ms, since);
    c.in_sync(&inventory);

    // A node whose agent is down: refused, nothing changed.
    c.sh("node2", "systemctl stop hadeploy-agent");
    c.settled_on("node1", "node2's agent stopped");
    let refused = hadeploy(&args);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("nothing was changed") || stderr(&refused).contains("healthy"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(read(&secret_file), new);
    assert!(!next_file.exists());
}

/// md5 → sha1 on three nodes: the pair's test above, with a method change and a third node. The
/// cluster is moved to md5 first by `apply` (a live reload: the key replaced, nobody restarted),
/// then rotated with `ha_auth: sha1` in the inventory.
#[test]
fn lab_agent_rotate_key_moves_three_nodes_from_md5_to_sha1() {
    let c = Cluster::up("t-rotate3", 3);
    let lab_inventory = c.guard.lab.inventory_path();
    let text = std::fs::read_to_string(&lab_inventory).unwrap();
    let with_auth = |method: &str, name: &str| {
        let path = lab_inventory.with_file_name(name);
        std::fs::write(
            &path,
            text.replace(
                "        ha_resources: [nginx]\n",
                &format!("        ha_resources: [nginx]\n        ha_auth: {method}\n"),
            ),
        )
        .unwrap();
        path
    };
    let md5 = with_auth("md5", "inventory-md5.yml");
    let sha1 = with_auth("sha1", "inventory-sha1.yml");
    let out = c.run("apply", &[], &md5);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .contains("handler: reload hadeploy-agent in place (key 1 replaced (sha1 → md5))"),
        "{}",
        stdout(&out)
    );
    let before: Vec<StatusAnswer> = c.nodes.iter().map(|n| c.status(n)).collect();
    assert!(
        before
            .iter()
            .all(|s| s.keys.len() == 1 && s.keys[0].method == "md5")
    );
    let since = before[0].resources[0].since_unix_ms;

    let out = c.run("rotate-key", &["--json"], &sha1);
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{printed}");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        4 * 3,
        "four stages on each of three nodes: {doc}"
    );
    assert!(steps.iter().all(|s| s["took_ms"].as_u64().unwrap() > 0));
    eprintln!("md5 → sha1 on three nodes: {} ms in all", doc["total_ms"]);
    let secret = std::fs::read_to_string(
        lab_inventory
            .with_file_name(".hadeploy-secrets")
            .join("lab.key"),
    )
    .unwrap();
    assert!(!printed.contains(secret.trim()));
    for (node, was) in c.nodes.iter().zip(&before) {
        let now = c.status(node);
        assert_eq!(now.generation, was.generation, "{node} was not restarted");
        assert_eq!(now.counters.bad_auth, was.counters.bad_auth, "{node}");
        assert_eq!(
            (now.keys.len(), now.keys[0].method.as_str()),
            (1, "sha1"),
            "{node}"
        );
        assert!(now.nodes.iter().all(|n| n.status == "active"), "{now}");
    }
    assert_eq!(c.status("node1").resources[0].since_unix_ms, since);
    c.settled_on("node1", "md5 → sha1");
    c.in_sync(&sha1);
}
