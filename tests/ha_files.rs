//! `ha_files` on real lab nodes: the shipped examples' templates render and pass the real
//! config tests (nginx, haproxy, apache2); an nginx site changed in the inventory reaches every
//! node through `apply`, is served through the VIP, reloads nginx only where it runs, leaves
//! the previous content in the backup, converges (changed=0 on a rerun, `diff` clean) and a
//! hand edit is drift; a site `nginx -t` refuses changes nothing on any node (exit 1).

use std::time::{Duration, Instant};

use hadeploy::config::inventory::Inventory;
use hadeploy::config::roles::Roles;
use hadeploy::lab::Flavor;
use hadeploy::render::service_files::{Facts, render};

use crate::support::{LabGuard, hadeploy, http_get, repo, stderr, stdout};

/// Facts as the probe reports them on a lab node.
fn lab_facts(node: &str) -> Facts {
    Facts {
        nodename: node.into(),
        os_family: "Debian".into(),
        distribution: "Debian".into(),
        service_mgr: "systemd".into(),
        all_ipv4_addresses: vec![],
    }
}

#[test]
fn lab_examples_render_and_pass_the_real_config_tests() {
    let guard = LabGuard::up("t-hafiles-ex", 2, Flavor::Systemd);
    let roles = Roles::load(&repo().join("inventories")).unwrap();
    let mut tested = Vec::new();
    for example in ["apache-pair.yml", "haproxy-pair.yml", "nginx-pair.yml"] {
        let inv = Inventory::load(&repo().join("inventories").join(example))
            .unwrap_or_else(|d| panic!("{example}: {d}"));
        let node = &inv.clusters[0].nodes[0];
        let files = render(node, &inv.groups, &lab_facts("node1")).unwrap();
        assert!(!files.is_empty(), "{example} ships ha_files");
        for f in files {
            // The Apache example is for the RHEL family (conf.d); the lab image is Debian's.
            let dest = f
                .entry
                .dest
                .replace("/etc/httpd/conf.d/", "/etc/apache2/sites-enabled/");
            let role = roles.get(f.entry.service.as_deref().unwrap()).unwrap();
            let test = role.config_test.as_deref().unwrap();
            let script = format!(
                "printf '%s' '{}' | base64 -d > {dest} && {test}",
                base64(f.content.as_bytes())
            );
            let (code, out) = guard.exec("node1", &script);
            assert_eq!(
                code, 0,
                "{example}: `{test}` refused {dest}:\n{out}\n{}",
                f.content
            );
            tested.push(test.to_string());
        }
    }
    assert_eq!(tested.len(), 3, "{tested:?}");
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

const SITE: &str = "server {\n    listen 80 default_server;\n{% if broken is defined %}\n    no_such_directive on;\n{% endif %}\n    location / { return 200 \"site {{ site_version }} from {{ inventory_hostname }}\\n\"; }\n}\n";

/// The lab's inventory with an nginx site in `ha_files` at `version` (and `extra` vars).
fn with_site(guard: &LabGuard, base: &str, version: &str, extra: &str) {
    let dir = guard.lab.inventory_path().parent().unwrap().to_path_buf();
    std::fs::write(dir.join("site.conf.j2"), SITE).unwrap();
    let text = format!(
        "{base}        site_version: {version}\n{extra}        ha_files:\n          - {{src: site.conf.j2, dest: /etc/nginx/sites-enabled/default, service: nginx}}\n"
    );
    std::fs::write(guard.lab.inventory_path(), text).unwrap();
}

fn run(guard: &LabGuard, command: &str, extra: &[&str]) -> (i32, String) {
    let inventory = guard.lab.inventory_path();
    let ssh_config = guard.lab.ssh_config_path();
    let mut args = vec![command, "--ssh-config", ssh_config.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(inventory.to_str().unwrap());
    let out = hadeploy(&args);
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn vip_serves(guard: &LabGuard, text: &str) {
    let began = Instant::now();
    while !http_get(guard.lab.vip, Duration::from_millis(500)).is_some_and(|b| b.contains(text)) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the VIP does not serve {text:?}: {:?}",
            http_get(guard.lab.vip, Duration::from_millis(500))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The section of `apply`'s text report about `node`: from its `node (cluster):` heading to the
/// next blank line or heading.
fn section<'a>(out: &'a str, node: &str) -> &'a str {
    let heading = format!("{node} (");
    let start = match out.starts_with(&heading) {
        true => 0,
        false => {
            out.find(&format!("\n{heading}"))
                .unwrap_or_else(|| panic!("no section for {node}:\n{out}"))
                + 1
        }
    };
    let rest = &out[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    let end = rest[..end].find("\nnode").unwrap_or(end);
    &rest[..end]
}

#[test]
fn lab_a_site_reaches_every_node_and_a_refused_one_changes_nothing() {
    let guard = LabGuard::up("t-hafiles", 2, Flavor::Systemd);
    let base = std::fs::read_to_string(guard.lab.inventory_path()).unwrap();
    let sh = |node: &str, script: &str| guard.exec(node, script).1;
    let site = "/etc/nginx/sites-enabled/default";

    with_site(&guard, &base, "v1", "");
    let (code, out) = run(&guard, "apply", &[]);
    assert_eq!(code, 0, "{out}");
    vip_serves(&guard, "site v1 from node1");
    // The first run starts the agents, which stop nginx everywhere and start it on the holder
    // with the new files: nothing to reload beside them (a reload raced that stop once).
    for node in ["node1", "node2"] {
        assert!(
            section(&out, node)
                .contains("nginx is started by the cluster agent, with the new files"),
            "{out}"
        );
    }
    for node in ["node1", "node2"] {
        assert!(sh(node, &format!("cat {site}")).contains(&format!("site v1 from {node}")));
    }

    // A new version: on every node, served through the VIP, nginx reloaded only on the holder.
    with_site(&guard, &base, "v2", "");
    let (code, out) = run(&guard, "apply", &[]);
    assert_eq!(code, 0, "{out}");
    vip_serves(&guard, "site v2 from node1");
    assert!(
        section(&out, "node1").contains("handler: reload nginx"),
        "{out}"
    );
    assert!(
        section(&out, "node2").contains("nginx is not running here"),
        "{out}"
    );
    assert_eq!(sh("node2", "systemctl is-active nginx").trim(), "inactive");
    for node in ["node1", "node2"] {
        assert!(sh(node, &format!("cat {site}")).contains(&format!("site v2 from {node}")));
        assert!(
            sh(node, &format!("cat /var/lib/hadeploy/backup{site}"))
                .contains(&format!("site v1 from {node}")),
            "{node}: the previous content is kept for a rollback"
        );
    }
    let (code, out) = run(&guard, "apply", &[]);
    assert_eq!(code, 0, "{out}");
    for node in ["node1", "node2"] {
        let recap = out
            .lines()
            .rev()
            .find(|l| l.starts_with(node) && l.contains("ok="))
            .unwrap_or_else(|| panic!("no recap for {node}: {out}"));
        assert!(recap.contains("changed=0"), "{out}");
    }
    let (code, out) = run(&guard, "diff", &[]);
    assert_eq!(code, 0, "diff after apply must be clean:\n{out}");
    sh("node2", &format!("echo '# by hand' >> {site}"));
    let (code, out) = run(&guard, "diff", &[]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains(site) && out.contains("node2"), "{out}");
    let (code, out) = run(&guard, "apply", &[]);
    assert_eq!(code, 0, "{out}");

    // A site nginx -t refuses: exit 1, the node and nginx's words named, nothing changed.
    with_site(&guard, &base, "v3", "        broken: true\n");
    let (code, out) = run(&guard, "apply", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("`nginx -t` refused the new ha_files") && out.contains("no_such_directive"),
        "{out}"
    );
    assert!(out.contains("node1:") || out.contains("node2:"), "{out}");
    vip_serves(&guard, "site v2 from node1");
    for node in ["node1", "node2"] {
        let content = sh(node, &format!("cat {site}"));
        assert!(
            content.contains("site v2") && !content.contains("no_such_directive"),
            "{node}: {content}"
        );
        assert_eq!(sh(node, "nginx -t >/dev/null 2>&1; echo $?").trim(), "0");
    }
}
