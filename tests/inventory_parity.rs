//! hadeploy's reading of INI inventories against the real `ansible-inventory`: for every
//! inventory of the corpus (`tests/fixtures/ini-parity/`) and every shipped INI twin, the same
//! hosts, the same groups per host, and the same `ha_*` and `ansible_*` variables per host.
//! ansible-core is installed from PyPI into a venv under the target directory, once per
//! version; a machine that cannot build it fails the test, saying what to install.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hadeploy::config::inventory::Diagnostics;
use hadeploy::config::inventory::layout::Layout;
use serde_json::Value;

use crate::support::repo;

/// The ansible-core the parity is proven against (the venv is keyed by it).
const ANSIBLE_CORE: &str = "2.19.14";

/// The venv's python, building the venv first if this version has none yet. It is built in a
/// directory of its own and renamed into place, so concurrent runs never see half a venv.
fn ansible_python() -> PathBuf {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ansible-core-{ANSIBLE_CORE}"));
    let python = root.join("bin/python");
    if python.exists() {
        return python;
    }
    let staging = root.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let venv = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&staging)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 to build the ansible-core venv: {e}; install python3 and python3-venv (.ci/run does)"));
    assert!(
        venv.status.success(),
        "`python3 -m venv` failed; install python3-venv (.ci/run does):\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let pip = Command::new(staging.join("bin/pip"))
        .args(["install", "-q", &format!("ansible-core=={ANSIBLE_CORE}")])
        .output()
        .expect("run the venv's pip");
    assert!(
        pip.status.success(),
        "pip could not install ansible-core {ANSIBLE_CORE} into {}:\n{}",
        staging.display(),
        String::from_utf8_lossy(&pip.stderr)
    );
    // A concurrent run may have won the race; its venv is as good as this one.
    if std::fs::rename(&staging, &root).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        python.exists(),
        "no {} after building the venv",
        python.display()
    );
    python
}

/// Every inventory to compare: each corpus directory's one inventory file, and the shipped
/// INI twins.
fn corpus() -> Vec<PathBuf> {
    let root = repo().join("tests/fixtures/ini-parity");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(
            files.len(),
            1,
            "{}: one inventory file per case",
            dir.display()
        );
        found.extend(files);
    }
    found.sort();
    let inventories = repo().join("inventories");
    for twin in [
        "apache-pair.ini",
        "haproxy-pair.ini",
        "nginx-pair.ini",
        "three-node/hosts",
    ] {
        found.push(inventories.join(twin));
    }
    found
}

/// What both tools are compared on, per host: its groups (transitively, `all` included) and
/// its `ha_*` and `ansible_*` variables.
type Resolved = BTreeMap<String, (BTreeSet<String>, BTreeMap<String, Value>)>;

fn compared(vars: impl IntoIterator<Item = (String, Value)>) -> BTreeMap<String, Value> {
    vars.into_iter()
        .filter(|(k, _)| k.starts_with("ha_") || k.starts_with("ansible_"))
        .collect()
}

/// Reads `ansible-inventory --list`'s JSON.
fn from_ansible(json: &Value) -> Resolved {
    let groups = json.as_object().expect("a JSON object");
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, group) in groups {
        if name == "_meta" {
            continue;
        }
        for child in group["children"].as_array().into_iter().flatten() {
            parents
                .entry(child.as_str().unwrap().to_string())
                .or_default()
                .insert(name.clone());
        }
        for host in group["hosts"].as_array().into_iter().flatten() {
            direct
                .entry(host.as_str().unwrap().to_string())
                .or_default()
                .insert(name.clone());
        }
    }
    let hostvars = &json["_meta"]["hostvars"];
    direct
        .into_iter()
        .map(|(host, groups)| {
            let mut all = BTreeSet::from(["all".to_string()]);
            let mut stack: Vec<String> = groups.into_iter().collect();
            while let Some(g) = stack.pop() {
                if all.insert(g.clone()) {
                    stack.extend(parents.get(&g).into_iter().flatten().cloned());
                }
            }
            let vars = hostvars[&host]
                .as_object()
                .map(|m| compared(m.clone()))
                .unwrap_or_default();
            (host, (all, vars))
        })
        .collect()
}

fn from_hadeploy(inventory: &Path) -> Resolved {
    let mut diags = Diagnostics::default();
    let layout = Layout::load(inventory, &mut diags);
    assert!(!diags.has_errors(), "{}:\n{diags}", inventory.display());
    layout
        .hosts
        .iter()
        .map(|h| {
            let vars = compared(layout.resolved_json(&h.name));
            (h.name.clone(), (layout.host_groups(&h.name), vars))
        })
        .collect()
}

#[test]
fn ini_inventories_resolve_as_ansible_does() {
    let python = ansible_python();
    let corpus = corpus();
    assert!(
        corpus.len() >= 10,
        "the corpus holds {} inventories",
        corpus.len()
    );
    let home = tempfile::tempdir().unwrap();
    // All at once: each run is mostly interpreter start-up.
    let runs: Vec<_> = corpus
        .iter()
        .map(|inventory| {
            let child = Command::new(&python)
                .args(["-m", "ansible.cli.inventory", "--list", "-i"])
                .arg(inventory)
                .current_dir(home.path())
                .env("HOME", home.path())
                .env("ANSIBLE_HOME", home.path().join(".ansible"))
                .env("ANSIBLE_LOCAL_TEMP", home.path().join("tmp"))
                // Read as INI, and a file Ansible cannot parse fails instead of being skipped.
                .env("ANSIBLE_INVENTORY_ENABLED", "ini")
                .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")
                .env("ANSIBLE_NOCOLOR", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run ansible-inventory");
            (inventory, child)
        })
        .collect();
    let mut mismatches = Vec::new();
    let (mut hosts_compared, mut vars_compared) = (0, 0);
    for (inventory, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ansible-inventory refused {}:\n{}",
            inventory.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: ansible-inventory's output is not JSON: {e}",
                inventory.display()
            )
        });
        let ansible = from_ansible(&json);
        let ours = from_hadeploy(inventory);
        assert!(
            !ansible.is_empty(),
            "{}: Ansible found no host",
            inventory.display()
        );
        hosts_compared += ansible.len();
        vars_compared += ansible.values().map(|(_, vars)| vars.len()).sum::<usize>();
        if ours != ansible {
            let hosts: BTreeSet<&String> = ansible.keys().chain(ours.keys()).collect();
            for host in hosts {
                if ansible.get(host) != ours.get(host) {
                    mismatches.push(format!(
                        "{}: {host}:\n  ansible:  {:?}\n  hadeploy: {:?}",
                        inventory.display(),
                        ansible.get(host),
                        ours.get(host)
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The filters above must leave something to compare.
    assert!(
        hosts_compared >= 40 && vars_compared >= 200,
        "only {hosts_compared} hosts and {vars_compared} variables compared"
    );
}
