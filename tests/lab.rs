//! The lab against the real Docker engine: nodes answer SSH with the lab's key under their own
//! names, the heartbeat link is separate from the service network, a real init is PID 1, an
//! address can move between nodes with a gratuitous ARP, and `down` leaves nothing behind.

use std::time::{Duration, Instant};

use hadeploy::lab::Flavor;
use hadeploy::lab::{self, Fault};

use crate::support::{LabGuard, http_get, stderr, stdout};

fn labelled_leftovers(name: &str) -> String {
    let filter = format!("label=hadeploy.lab={name}");
    let mut all = String::new();
    for args in [
        vec!["ps", "-a", "-q", "--filter", &filter],
        vec!["network", "ls", "-q", "--filter", &filter],
        vec!["volume", "ls", "-q", "--filter", &filter],
    ] {
        all.push_str(&lab::docker::docker(&args).unwrap());
    }
    all.trim().to_string()
}

/// Waits until `probe` returns true or `limit` passes.
fn eventually(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn systemd_lab_nodes_links_init_and_a_moving_address() {
    let guard = LabGuard::up("t-systemd", 2, Flavor::Systemd);
    let lab = &guard.lab;

    // SSH with the generated key, strict host key checking, each node under its own name.
    for node in ["node1", "node2"] {
        let out = guard.ssh(
            node,
            "uname -n; cat /proc/1/comm; systemctl is-enabled nginx",
        );
        assert!(out.status.success(), "{node}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{node}\nsystemd\nenabled\n"));
    }

    // The heartbeat link is its own network: reachable, then not with node2's cable pulled,
    // while the service network still works; plugged back, reachable again.
    let hb2 = lab.node("node2").unwrap().heartbeat_addr;
    let svc2 = lab.node("node2").unwrap().service_addr;
    let ping = |addr: std::net::Ipv4Addr| {
        guard
            .exec(
                "node1",
                &format!("ping -c 1 -W 1 {addr} >/dev/null && echo ok"),
            )
            .1
            .contains("ok")
    };
    assert!(ping(hb2), "node1 reaches node2's heartbeat address");
    lab::inject(lab, "node2", Fault::UnplugHeartbeat).unwrap();
    assert!(!ping(hb2), "heartbeat cable pulled: unreachable");
    assert!(ping(svc2), "the service network is separate");
    lab::inject(lab, "node2", Fault::Plug).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || ping(hb2)),
        "cable back: reachable again"
    );

    // An address on node1's service interface answers HTTP from the host with node1's page;
    // moved to node2 with a gratuitous ARP, the host reaches node2.
    let vip = lab.vip;
    let iface = &lab.node("node1").unwrap().service_iface;
    assert_eq!(
        guard
            .exec(
                "node1",
                &format!("ip addr add {vip}/24 dev {iface} && echo added")
            )
            .1
            .trim(),
        "added"
    );
    assert!(
        eventually(Duration::from_secs(10), || http_get(
            vip,
            Duration::from_secs(1)
        )
        .as_deref()
            == Some("node1")),
        "VIP on node1 answers as node1"
    );
    guard.exec("node1", &format!("ip addr del {vip}/24 dev {iface}"));
    let iface2 = &lab.node("node2").unwrap().service_iface;
    let (status, out) = guard.exec(
        "node2",
        &format!(
            "ip addr add {vip}/24 dev {iface2} && arping -q -U -c 2 -I {iface2} {vip}; echo done"
        ),
    );
    assert!(out.contains("done"), "{status} {out}");
    assert!(
        eventually(Duration::from_secs(5), || http_get(
            vip,
            Duration::from_secs(1)
        )
        .as_deref()
            == Some("node2")),
        "after the GARP the host reaches node2"
    );

    // Faults: a crashed node is gone and comes back; a hung node answers nothing until resumed.
    lab::inject(lab, "node1", Fault::Crash).unwrap();
    assert!(!ping_from_host(lab.node("node1").unwrap().service_addr));
    lab::inject(lab, "node1", Fault::Start).unwrap();
    assert!(
        eventually(Duration::from_secs(60), || guard
            .ssh("node1", "true")
            .status
            .success()),
        "crashed node boots again"
    );
    lab::inject(lab, "node2", Fault::Hang).unwrap();
    assert!(!guard.ssh("node2", "true").status.success());
    lab::inject(lab, "node2", Fault::Resume).unwrap();
    assert!(eventually(Duration::from_secs(10), || guard
        .ssh("node2", "true")
        .status
        .success()));

    // `lab status` through the binary names the nodes and the inventory.
    let status = crate::support::hadeploy(&["lab", "status", "--name", "t-systemd"]);
    assert!(
        stdout(&status).contains("node2") && stdout(&status).contains("inventory.yml"),
        "{}",
        stdout(&status)
    );

    // The lab's inventory passes check and its rendered files name the lab's nodes.
    let check = crate::support::hadeploy(&["check", lab.inventory_path().to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));

    let name = lab.name.clone();
    drop(guard);
    assert_eq!(
        labelled_leftovers(&name),
        "",
        "lab down leaves no container, network or volume"
    );
    assert!(!lab::state_dir(&name).exists());
}

fn ping_from_host(addr: std::net::Ipv4Addr) -> bool {
    std::process::Command::new("ping")
        .args(["-c", "1", "-W", "1", &addr.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn sysvinit_lab_boots_with_update_rc_d() {
    let guard = LabGuard::up("t-sysv", 2, Flavor::Sysvinit);
    for node in ["node1", "node2"] {
        let out = guard.ssh(node, "uname -n; cat /proc/1/comm; command -v update-rc.d; ls /etc/rc2.d | grep -c 'S[0-9][0-9]nginx'");
        assert!(out.status.success(), "{node}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("{node}\ninit\n/usr/sbin/update-rc.d\n1\n")
        );
    }
}

#[test]
fn up_is_idempotent_and_bad_input_is_refused() {
    let guard = LabGuard::up("t-idem", 2, Flavor::Systemd);
    let again = lab::up(
        &lab::UpOptions {
            name: "t-idem".into(),
            nodes: 2,
            flavor: Flavor::Systemd,
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(again, guard.lab, "a second up returns the same lab");
    let other_shape = lab::up(
        &lab::UpOptions {
            name: "t-idem".into(),
            nodes: 3,
            flavor: Flavor::Systemd,
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(
        other_shape
            .to_string()
            .contains("already exists with 2 nodes"),
        "{other_shape}"
    );
    assert!(
        lab::up(
            &lab::UpOptions {
                name: "Bad Name".into(),
                nodes: 2,
                flavor: Flavor::Systemd
            },
            &|_| {}
        )
        .is_err()
    );
    assert!(
        lab::up(
            &lab::UpOptions {
                name: "t-one".into(),
                nodes: 1,
                flavor: Flavor::Systemd
            },
            &|_| {}
        )
        .is_err()
    );
}
