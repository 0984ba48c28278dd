//! `hadeploy apply` against real lab nodes over SSH: a fresh apply converges every node (agent
//! running, VIP served by the preferred node, files identical where Heartbeat needs them,
//! authkeys 0600 root, ip_nonlocal_bind live and after a reboot, services out of boot), a
//! second apply changes nothing and touches nothing, `--check --diff` reports a hand edit and
//! leaves it, and a node that is down is reported unreachable while the others converge.

use std::time::{Duration, Instant};

use hadeploy::lab::Flavor;
use hadeploy::lab::{self, Fault};

use crate::support::{LabGuard, hadeploy, http_get, stderr, stdout};

fn apply(guard: &LabGuard, extra: &[&str]) -> std::process::Output {
    let inventory = guard.lab.inventory_path();
    let ssh_config = guard.lab.ssh_config_path();
    let mut args = vec!["apply", "--ssh-config", ssh_config.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(inventory.to_str().unwrap());
    hadeploy(&args)
}

fn recap_line<'a>(out: &'a str, node: &str) -> &'a str {
    out.lines()
        .rev()
        .find(|l| l.starts_with(node) && l.contains("ok="))
        .unwrap_or_else(|| panic!("no recap line for {node} in:\n{out}"))
}

fn served_by(guard: &LabGuard, node: &str) {
    let began = Instant::now();
    while !http_get(guard.lab.vip, Duration::from_millis(500)).is_some_and(|b| b.contains(node)) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the VIP is not served by {node}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const MANAGED: &str = "/etc/ha.d/ha.cf /etc/ha.d/haresources /etc/ha.d/authkeys /etc/sysctl.d/90-hadeploy.conf /usr/local/sbin/hadeploy-agent";

#[test]
fn lab_apply_converges_is_idempotent_and_reports_drift() {
    let guard = LabGuard::up("t-apply", 2, Flavor::Systemd);
    let sh = |node: &str, script: &str| guard.exec(node, script).1;

    let first = apply(&guard, &[]);
    let text = format!("{}{}", stdout(&first), stderr(&first));
    assert!(first.status.success(), "{text}");
    assert!(!recap_line(&text, "node1").contains("changed=0"), "{text}");
    served_by(&guard, "node1");

    for node in ["node1", "node2"] {
        assert_eq!(
            sh(node, "systemctl is-active hadeploy-agent").trim(),
            "active"
        );
        assert_eq!(
            sh(node, "systemctl is-enabled hadeploy-agent").trim(),
            "enabled"
        );
        assert_eq!(
            sh(node, "stat -c '%a %U %G' /etc/ha.d/authkeys").trim(),
            "600 root root"
        );
        assert_eq!(
            sh(node, "cat /proc/sys/net/ipv4/ip_nonlocal_bind").trim(),
            "1"
        );
        for service in ["nginx", "haproxy", "apache2"] {
            assert_eq!(
                sh(node, &format!("systemctl is-enabled {service}")).trim(),
                "disabled",
                "{node}: {service} must stay out of boot (disabled, not masked)"
            );
            // The SysV links follow, as `systemctl disable` leaves them on Debian: stop links only.
            assert_eq!(
                sh(
                    node,
                    &format!("ls /etc/rc[2345].d/ | grep -c '^S..{service}$' || true")
                )
                .trim(),
                "0",
                "{node}: {service} keeps a SysV start link"
            );
            assert_eq!(
                sh(
                    node,
                    &format!("ls /etc/rc[2345].d/ | grep -c '^K..{service}$' || true")
                )
                .trim(),
                "4",
                "{node}: {service} must keep its stop links"
            );
        }
    }
    for file in ["/etc/ha.d/haresources", "/etc/ha.d/authkeys"] {
        assert_eq!(
            sh("node1", &format!("cat {file}")),
            sh("node2", &format!("cat {file}")),
            "{file} must be identical"
        );
    }
    let without_ucast = |node: &str| sh(node, "grep -v '^ucast' /etc/ha.d/ha.cf");
    assert_eq!(without_ucast("node1"), without_ucast("node2"));
    assert_ne!(
        sh("node1", "grep '^ucast' /etc/ha.d/ha.cf"),
        sh("node2", "grep '^ucast' /etc/ha.d/ha.cf")
    );

    // Idempotent: nothing changes, nothing is written.
    let mtimes = |node: &str| sh(node, &format!("stat -c '%n %Y' {MANAGED}"));
    let before = (mtimes("node1"), mtimes("node2"));
    std::thread::sleep(Duration::from_millis(1100));
    let second = apply(&guard, &[]);
    let text = format!("{}{}", stdout(&second), stderr(&second));
    assert!(second.status.success(), "{text}");
    for node in ["node1", "node2"] {
        assert!(recap_line(&text, node).contains("changed=0"), "{text}");
    }
    assert_eq!(
        (mtimes("node1"), mtimes("node2")),
        before,
        "a no-op apply touched files"
    );

    // Drift: a hand edit is reported with its diff by --check --diff, and left in place.
    sh("node2", "echo 'deadtime 60 # hand edit' >> /etc/ha.d/ha.cf");
    let check = apply(&guard, &["--check", "--diff"]);
    let text = format!("{}{}", stdout(&check), stderr(&check));
    assert_eq!(
        check.status.code(),
        Some(2),
        "check mode found drift: {text}"
    );
    assert!(text.contains("-deadtime 60 # hand edit"), "{text}");
    assert!(recap_line(&text, "node1").contains("changed=0"), "{text}");
    assert!(!recap_line(&text, "node2").contains("changed=0"), "{text}");
    assert!(
        sh("node2", "cat /etc/ha.d/ha.cf").contains("hand edit"),
        "check mode changed it"
    );
    let fix = apply(&guard, &[]);
    assert!(fix.status.success());
    assert!(!sh("node2", "cat /etc/ha.d/ha.cf").contains("hand edit"));
    assert!(
        sh("node2", "ls /etc/ha.d/").contains("ha.cf.hadeploy-backup"),
        "backup kept"
    );

    // A reboot of the passive node: the sysctl persists, no managed service starts there.
    lab::inject(&guard.lab, "node2", Fault::Reboot).unwrap();
    let began = Instant::now();
    while sh("node2", "systemctl is-active hadeploy-agent").trim() != "active" {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "node2 did not come back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        sh("node2", "cat /proc/sys/net/ipv4/ip_nonlocal_bind").trim(),
        "1"
    );
    std::thread::sleep(Duration::from_secs(2));
    for service in ["nginx", "haproxy", "apache2"] {
        assert_ne!(
            sh("node2", &format!("systemctl is-active {service}")).trim(),
            "active",
            "{service} runs on the passive node after a reboot"
        );
    }
    served_by(&guard, "node1");

    // A node that is down: reported unreachable (exit 4), the other converges.
    lab::inject(&guard.lab, "node2", Fault::Crash).unwrap();
    sh("node1", "echo '# drift' >> /etc/ha.d/haresources");
    let partial = apply(&guard, &[]);
    let text = format!("{}{}", stdout(&partial), stderr(&partial));
    assert_eq!(partial.status.code(), Some(4), "{text}");
    assert!(
        recap_line(&text, "node2").contains("unreachable=1"),
        "{text}"
    );
    assert!(recap_line(&text, "node1").contains("failed=0"), "{text}");
    assert!(!sh("node1", "cat /etc/ha.d/haresources").contains("# drift"));
}

#[test]
fn lab_apply_on_sysvinit_keeps_services_out_of_boot_with_update_rc_d() {
    let guard = LabGuard::up("t-apply-sysv", 2, Flavor::Sysvinit);
    let sh = |node: &str, script: &str| guard.exec(node, script).1;
    let first = apply(&guard, &[]);
    let text = format!("{}{}", stdout(&first), stderr(&first));
    assert!(first.status.success(), "{text}");
    served_by(&guard, "node1");
    for node in ["node1", "node2"] {
        assert!(
            sh(node, "/etc/init.d/hadeploy-agent status && echo running").contains("running"),
            "{node}: agent not running"
        );
        for service in ["nginx", "haproxy", "apache2"] {
            // `update-rc.d NAME disable` turns the start links into K links, which package
            // upgrades respect.
            let links = sh(node, &format!("ls /etc/rc2.d/ | grep '{service}$'"));
            assert!(links.trim().starts_with('K'), "{node}: {service}: {links}");
        }
    }
    let second = apply(&guard, &[]);
    let text = format!("{}{}", stdout(&second), stderr(&second));
    for node in ["node1", "node2"] {
        assert!(recap_line(&text, node).contains("changed=0"), "{text}");
    }

    // `diff` reads the boot state from the rc links too: nginx put back into boot by hand on
    // the passive node is drift, and apply takes it out again.
    let diff = |guard: &LabGuard| {
        let inventory = guard.lab.inventory_path();
        let ssh_config = guard.lab.ssh_config_path();
        hadeploy(&[
            "diff",
            "--json",
            "--ssh-config",
            ssh_config.to_str().unwrap(),
            inventory.to_str().unwrap(),
        ])
    };
    let began = Instant::now();
    loop {
        // The agents may still be greeting each other after the first apply.
        let clean = diff(&guard);
        if clean.status.code() == Some(0) {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "diff on a converged sysvinit cluster: {}",
            stdout(&clean)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    sh("node2", "update-rc.d nginx enable >/dev/null 2>&1");
    let found = diff(&guard);
    let doc: serde_json::Value = serde_json::from_str(stdout(&found).trim()).unwrap();
    assert_eq!(found.status.code(), Some(2), "{doc}");
    let boot: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "boot")
        .collect();
    assert_eq!(boot.len(), 1, "{doc}");
    assert_eq!(boot[0]["node"], "node2");
    assert_eq!(boot[0]["cause"], "drift");
    assert!(apply(&guard, &[]).status.success());
    let fixed = diff(&guard);
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
}
