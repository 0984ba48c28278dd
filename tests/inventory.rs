//! `hadeploy check` and `hadeploy render` on the shipped examples and on broken inventories, run
//! through the real binary: exit codes, file:line messages, the rendered files' guarantees.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{Test, copy_tree, examples, hadeploy, repo, stderr, stdout};

#[test]
fn every_example_passes_check() {
    let examples = examples();
    assert!(
        examples.len() >= 4,
        "expected the four seed examples, found {examples:?}"
    );
    for example in examples {
        let path = repo().join("inventories").join(&example);
        let out = hadeploy(&["check", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}{}",
            example.display(),
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains(": ok ("), "{}", stdout(&out));
    }
}

/// Reads OUT/<node>/etc/ha.d/<file> for every node.
/// `hadeploy render INVENTORY --out OUT`, which must succeed.
fn render_into(inventory: &Path, out: &Path) {
    let run = hadeploy(&[
        "render",
        inventory.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
}

fn rendered(out: &Path, file: &str) -> BTreeMap<String, String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|node| {
            let text = std::fs::read_to_string(node.join("etc/ha.d").join(file)).ok()?;
            Some((
                node.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            ))
        })
        .collect()
}

fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn rendered_examples_meet_heartbeat_guarantees() {
    for example in examples() {
        let work = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("inventories"), work.path());
        let inventory = work.path().join(&example);
        let out = work.path().join("out");
        let run = hadeploy(&[
            "render",
            inventory.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}: {}",
            example.display(),
            stderr(&run)
        );

        // Group the rendered nodes by cluster: nodes of one cluster share haresources.
        let haresources = rendered(&out, "haresources");
        let authkeys = rendered(&out, "authkeys");
        let hacf = rendered(&out, "ha.cf");
        let mut clusters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (node, text) in &haresources {
            let name = text.lines().next().unwrap().to_string();
            clusters.entry(name).or_default().push(node.clone());
        }
        for nodes in clusters.values() {
            assert!(nodes.len() >= 2, "{}: {nodes:?}", example.display());
            let first = &nodes[0];
            for other in &nodes[1..] {
                assert_eq!(
                    haresources[first],
                    haresources[other],
                    "{}: haresources differ",
                    example.display()
                );
                assert_eq!(
                    authkeys[first],
                    authkeys[other],
                    "{}: authkeys differ",
                    example.display()
                );
                let strip = |t: &str| {
                    directives(t)
                        .into_iter()
                        .filter(|l| !l.starts_with("ucast"))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    strip(&hacf[first]),
                    strip(&hacf[other]),
                    "{}: ha.cf differs outside ucast",
                    example.display()
                );
            }
            for node in nodes {
                let lines = directives(&hacf[node]);
                let udpport = lines
                    .iter()
                    .position(|l| l.starts_with("udpport"))
                    .expect("udpport line");
                for (i, l) in lines.iter().enumerate() {
                    if ["ucast", "bcast", "mcast"].iter().any(|m| l.starts_with(m)) {
                        assert!(i > udpport, "{}: {l} before udpport", example.display());
                    }
                }
                // The per-node form: one ucast line per peer, none to itself.
                let ucast = lines.iter().filter(|l| l.starts_with("ucast")).count();
                assert!(
                    ucast == 0 || ucast == nodes.len() - 1,
                    "{}: {node} has {ucast} ucast lines",
                    example.display()
                );
                let node_lines: Vec<&str> = lines
                    .iter()
                    .filter(|l| l.starts_with("node "))
                    .map(|l| l.split_whitespace().nth(1).unwrap())
                    .collect();
                let mut expected = nodes.clone();
                expected.sort();
                let mut got: Vec<String> = node_lines.iter().map(|s| s.to_string()).collect();
                got.sort();
                assert_eq!(got, expected, "{}: node lines", example.display());
                let mode = std::fs::metadata(out.join(node).join("etc/ha.d/authkeys"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777;
                assert_eq!(mode, 0o600, "{}: authkeys mode", example.display());
            }
        }
        // The secret never reaches the terminal.
        for text in authkeys.values() {
            if let Some(secret) = text
                .lines()
                .find(|l| l.starts_with("1 sha1") || l.starts_with("1 md5"))
                .and_then(|l| l.split_whitespace().nth(2))
            {
                assert!(!stdout(&run).contains(secret) && !stderr(&run).contains(secret));
            }
        }
    }
}

#[test]
fn per_node_ucast_lists_only_peers() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), work.path());
    let out = work.path().join("out");
    render_into(&work.path().join("nginx-pair.yml"), &out);
    let hacf = rendered(&out, "ha.cf");
    assert_eq!(
        directives(&hacf["rproxy1"])
            .iter()
            .filter(|l| l.starts_with("ucast"))
            .collect::<Vec<_>>(),
        ["ucast           eth1 10.0.0.2"]
    );
    assert_eq!(
        directives(&hacf["rproxy2"])
            .iter()
            .filter(|l| l.starts_with("ucast"))
            .collect::<Vec<_>>(),
        ["ucast           eth1 10.0.0.1"]
    );
    assert!(directives(&hacf["rproxy1"]).contains(&"udpport         695".to_string()));
}

/// `ha_resource_check` reaches the agent through its own file, identical on every node, and
/// the agent reads back what was rendered; without it the file says the checks are off.
#[test]
fn resource_check_renders_the_agents_own_file() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), work.path());
    let inventory = work.path().join("nginx-pair.yml");
    let out = work.path().join("out");
    render_into(&inventory, &out);
    let off = rendered(&out, "hadeploy-agent.cf");
    assert!(off["rproxy1"].contains("resource_check is off"), "{off:?}");
    let text = std::fs::read_to_string(&inventory).unwrap().replace(
        "        ha_udpport: 695\n",
        "        ha_udpport: 695\n        ha_resource_check: 500ms\n        ha_resource_check_failures: 2\n",
    );
    std::fs::write(&inventory, text).unwrap();
    let on = work.path().join("on");
    render_into(&inventory, &on);
    let files = rendered(&on, "hadeploy-agent.cf");
    assert_eq!(files["rproxy1"], files["rproxy2"]);
    let check = hadeploy::agent::setup::agent_settings(&on.join("rproxy1/etc/ha.d"))
        .unwrap()
        .resource_check
        .expect("resource_check is on");
    assert_eq!(check.interval, std::time::Duration::from_millis(500));
    assert_eq!(check.failures, 2);
}

#[test]
fn secret_is_generated_once_and_reused() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), work.path());
    let inventory = work.path().join("nginx-pair.yml");
    let render = |out: &str| {
        let out = work.path().join(out);
        render_into(&inventory, &out);
        std::fs::read_to_string(out.join("rproxy1/etc/ha.d/authkeys")).unwrap()
    };
    let first = render("a");
    let second = render("b");
    assert_eq!(first, second, "a second run must render the same authkeys");
    let key_file = work.path().join(".hadeploy-secrets/rproxy.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(secret.trim().len(), 64);
    assert!(first.contains(&format!("1 sha1 {}", secret.trim())));
}

#[test]
fn secret_from_environment() {
    let env_secret = [(
        "ha_auth: sha1",
        "ha_auth: sha1\n        ha_auth_secret_env: HADEPLOY_TEST_SECRET",
    )];
    let ran = Test::new()
        .example("nginx-pair.yml", &env_secret)
        .env("HADEPLOY_TEST_SECRET", "env-supplied-secret-0123456789")
        .args(["render", "{inv}", "--out", "{dir}/out"])
        .status(0);
    assert!(
        ran.read("out/rproxy2/etc/ha.d/authkeys")
            .contains("1 sha1 env-supplied-secret-0123456789")
    );
    assert!(
        !ran.path(".hadeploy-secrets").exists(),
        "no file secret when the environment provides it"
    );
    Test::new()
        .example("nginx-pair.yml", &env_secret)
        .args(["render", "{inv}", "--out", "{dir}/out"])
        .status(1)
        .stderr_has("environment variable HADEPLOY_TEST_SECRET is not set");
}

#[test]
fn broken_inventory_exits_1_with_file_line_and_key() {
    let broken = [
        ("ha_udpport: 695", "ha_udpport: 69500"),
        ("ha_keepalive: 2", "ha_keepalve: 2"),
    ];
    let test = Test::new().example("nginx-pair.yml", &broken);
    let inventory = test.path("inventory.yml");
    test.args(["check", "{inv}"])
        .status(1)
        .stderr_has(&format!(
            "{}:28:9: error: ha_udpport: 69500 is not a UDP port",
            inventory.display()
        ))
        .stderr_has(&format!(
            "{}:24:9: error: ha_keepalve: unknown HA variable",
            inventory.display()
        ))
        .stderr_has("did you mean `ha_keepalive`?");
    // render refuses the same inventory and writes nothing.
    let ran = Test::new()
        .example("nginx-pair.yml", &broken)
        .args(["render", "{inv}", "--out", "{dir}/out"])
        .status(1);
    assert!(!ran.path("out").exists());
}

#[test]
fn strict_turns_warnings_into_failure() {
    Test::new()
        .example("haproxy-pair.yml", &[])
        .args(["check", "{inv}"])
        .status(0)
        .stderr_has("warning: ha_auth: md5 is weaker than sha1");
    Test::new()
        .example("haproxy-pair.yml", &[])
        .args(["check", "--strict", "{inv}"])
        .status(1)
        .stderr_has("--strict");
}

#[test]
fn missing_file_and_binary_file_are_clear_errors() {
    Test::new()
        .args(["check", "/nonexistent/inventory.yml"])
        .status(1)
        .stderr_has("/nonexistent/inventory.yml: error: cannot read the inventory:");
    Test::new()
        .file("bin.yml", [0u8, 159, 146, 150, 255, 0, 1])
        .args(["check", "{dir}/bin.yml"])
        .status(1)
        .stderr_has("not UTF-8 text");
}

#[test]
fn template_override_is_used_and_held_to_the_guarantees() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), work.path());
    let inventory = work.path().join("nginx-pair.yml");
    let templates = work.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("haresources.j2"), "# site override\n{{ cluster.preferred_node }} {{ cluster.resources | join(\" \") }} MailTo::ops\n").unwrap();
    let out = work.path().join("out");
    let run = hadeploy(&[
        "render",
        inventory.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        std::fs::read_to_string(out.join("rproxy2/etc/ha.d/haresources"))
            .unwrap()
            .ends_with("nginx MailTo::ops\n")
    );

    // A template that makes haresources differ per node is refused, and nothing is written.
    std::fs::write(
        templates.join("haresources.j2"),
        "{{ node.name }} {{ cluster.resources | join(\" \") }}\n",
    )
    .unwrap();
    let out2 = work.path().join("out2");
    let bad = hadeploy(&[
        "render",
        inventory.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("/etc/ha.d/haresources differs between rproxy1 and rproxy2"),
        "{}",
        stderr(&bad)
    );
    assert!(!out2.exists());

    // Strict undefined: a typo in a template is an error, not an empty string.
    std::fs::write(
        templates.join("haresources.j2"),
        "{{ cluster.prefered_node }}\n",
    )
    .unwrap();
    let typo = hadeploy(&[
        "render",
        inventory.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "--templates",
        templates.to_str().unwrap(),
    ]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("haresources.j2"),
        "{}",
        stderr(&typo)
    );
}

#[test]
fn completions_for_three_shells() {
    for shell in ["bash", "zsh", "fish"] {
        Test::new()
            .args(["completions", shell])
            .status(0)
            .stdout_has("render");
    }
}

/// Each shipped YAML example and its INI twin.
const INI_TWINS: [(&str, &str); 4] = [
    ("apache-pair.yml", "apache-pair.ini"),
    ("haproxy-pair.yml", "haproxy-pair.ini"),
    ("nginx-pair.yml", "nginx-pair.ini"),
    ("three-node/inventory.yml", "three-node/hosts"),
];

/// Every node's rendered files of an inventory, through the library as `hadeploy render` runs
/// it, and its `ha_files`: (node, path, content, mode), and the warnings' count.
fn render_in_process(inventory: &Path) -> (Vec<(String, String, String, u32)>, usize) {
    use hadeploy::config::inventory::{Inventory, secrets};
    let inv = Inventory::load(inventory).unwrap_or_else(|d| panic!("{}: {d}", inventory.display()));
    let renderer = hadeploy::render::Renderer::new(None).unwrap();
    let mut files = Vec::new();
    for cluster in &inv.clusters {
        let secret = secrets::resolve(cluster).unwrap();
        for node in renderer.render_cluster(cluster, secret.as_ref()).unwrap() {
            for f in node.files {
                files.push((
                    node.node_name.clone(),
                    f.path.to_string(),
                    f.content,
                    f.mode,
                ));
            }
        }
        // The `ha_files` too, with the same facts for both twins.
        for node in &cluster.nodes {
            let facts = hadeploy::render::service_files::Facts {
                nodename: node.node_name.clone(),
                ..Default::default()
            };
            for f in hadeploy::render::service_files::render(node, &inv.groups, &facts).unwrap() {
                files.push((
                    node.node_name.clone(),
                    f.entry.dest,
                    f.content,
                    f.entry.mode,
                ));
            }
        }
    }
    (files, inv.warnings.warnings().count())
}

/// The seed guides' examples ship as INI too, and each twin renders byte for byte what its YAML
/// twin renders (both in one directory, so they share the generated secret).
#[test]
fn ini_twins_render_byte_identically() {
    let yaml: Vec<PathBuf> = INI_TWINS.iter().map(|(y, _)| PathBuf::from(y)).collect();
    assert_eq!(examples(), yaml, "every YAML example needs an INI twin");
    let work = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), work.path());
    for (yaml, ini) in INI_TWINS {
        let (from_yaml, yaml_warnings) = render_in_process(&work.path().join(yaml));
        assert!(from_yaml.len() >= 8, "{yaml}: {} files", from_yaml.len());
        let (from_ini, ini_warnings) = render_in_process(&work.path().join(ini));
        assert_eq!(from_ini.len(), from_yaml.len(), "{ini}: file count");
        for (y, i) in from_yaml.iter().zip(&from_ini) {
            assert_eq!(y, i, "{ini} renders differently from {yaml}");
        }
        assert_eq!(ini_warnings, yaml_warnings, "{ini}: warnings");
    }
}

/// The binary takes an INI inventory whatever its name, and names INI mistakes at
/// file:line:column like YAML ones.
#[test]
fn ini_inventory_through_the_binary() {
    let ini = std::fs::read_to_string(repo().join("inventories/nginx-pair.ini")).unwrap();
    Test::new()
        .example_templates()
        .file("inventory.yml", &ini)
        .args(["check", "{inv}"])
        .status(0)
        .stdout_has(": ok (1 cluster(s), 0 warning(s))");
    let broken = ini
        .replace("ha_udpport=695", "ha_udpport=69500")
        .replace("ha_keepalive=2", "ha_keepalve=2");
    let test = Test::new().example_templates().file("hosts", &broken);
    let hosts = test.path("hosts");
    let line = |key: &str| broken.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    test.args(["check", "{dir}/hosts"])
        .status(1)
        .stderr_has(&format!(
            "{}:{}:1: error: ha_udpport: 69500 is not a UDP port",
            hosts.display(),
            line("ha_udpport")
        ))
        .stderr_has(&format!(
            "{}:{}:1: error: ha_keepalve: unknown HA variable",
            hosts.display(),
            line("ha_keepalve")
        ));
    // On a host line a list must be quoted whole: shlex strips the inner quotes otherwise, and
    // Ansible (like hadeploy) is left with the string "[nginx]".
    let host_list = |value: &str| {
        ini.replace(
            " ansible_host=192.168.1.1",
            &format!(" ha_disable_autostart={value} ansible_host=192.168.1.1"),
        )
    };
    Test::new()
        .example_templates()
        .file("hosts", host_list("['nginx']"))
        .args(["check", "{dir}/hosts"])
        .status(1)
        .stderr_has("ha_disable_autostart: expected a list of service names, found a string");
    Test::new()
        .example_templates()
        .file("hosts", host_list("\"['nginx']\""))
        .args(["check", "{dir}/hosts"])
        .status(0);
}

/// Hostile INI gets one clear error at its place, never a panic or a hang.
#[test]
fn hostile_ini_inventories_are_clear_errors() {
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "unterminated",
            b"[rproxy\nrproxy1\n",
            "unterminated:1:1: error: unterminated section header `[rproxy`",
        ),
        (
            "million",
            b"[web]\nn[0:999999]\n",
            "million:2:1: error: n[0:999999]: `n[0:999999]`: expands to more than 10000 hosts",
        ),
        (
            "junk",
            b"[web]\nn1\n\x00\x9f\x92\x96\xff\x00\x01",
            "junk:3:2: error: not UTF-8 text",
        ),
        (
            "nul",
            b"\x00\x01\x02\x03 a=1",
            "nul:1:1: error: \u{0}\u{1}\u{2}\u{3}: not a valid host name",
        ),
        (
            "vars-only",
            b"[web:vars]\nha_vips=['10.0.0.10/24']\n",
            "vars-only:1:2: error: web: `[web:vars]` is for a group the inventory never declares",
        ),
    ];
    for (name, content, expected) in cases {
        let started = std::time::Instant::now();
        Test::new()
            .file(name, content)
            .args(["check", &format!("{{dir}}/{name}")])
            .status(1)
            .stderr_has(expected);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{name}"
        );
    }
    // Duplicate sections merge as in Ansible: the cluster is whole.
    let ini = std::fs::read_to_string(repo().join("inventories/nginx-pair.ini")).unwrap();
    let split = ini.replace(
        "rproxy2 ansible_host",
        "[all:vars]\nansible_user=root\n[rproxy]\nrproxy2 ansible_host",
    );
    Test::new()
        .example_templates()
        .file("hosts", split)
        .args(["check", "{dir}/hosts"])
        .status(0)
        .stdout_has("cluster rproxy: nodes rproxy1, rproxy2")
        .stderr_has("warning: ansible_user: set again for `all`");
}
