//! Heartbeat's own files through the agent's parsers: what `hadeploy render` writes for every
//! example inventory parses back to exactly what the inventory meant, the real daemon's config
//! files from the vectors parse, and `hadeploy-agent check-config` reports on a rendered node
//! without ever printing the key.

use std::path::Path;
use std::process::Command;

use hadeploy::config::ha::Medium;
use hadeploy::config::heartbeat::haresources::{Haresources, Resource};
use hadeploy::config::heartbeat::{HaCf, HeartbeatConfig, authkeys};
use hadeploy::config::inventory::{Inventory, Media};
use hadeploy::render::{self, Renderer};

use crate::support::{copy_tree, examples, repo, stderr, stdout};

const VECTORS: &str = "../shared/heartbeat/vectors/config";

#[test]
fn rendered_files_parse_back_to_the_inventory() {
    for example in examples() {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("inventories"), dir.path());
        let inv = Inventory::load(&dir.path().join(&example))
            .unwrap_or_else(|d| panic!("{}: {d}", example.display()));
        let renderer = Renderer::new(None).unwrap();
        for cluster in &inv.clusters {
            let secret = hadeploy::config::inventory::secrets::resolve(cluster).unwrap();
            let nodes = renderer.render_cluster(cluster, secret.as_ref()).unwrap();
            let out = dir.path().join("out").join(&cluster.name);
            render::write_tree(&out, &nodes).unwrap();
            for node in &cluster.nodes {
                let etc = out.join(&node.node_name).join("etc/ha.d");
                let (parsed, warnings) = HeartbeatConfig::load(&etc)
                    .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
                let at = format!("{} {}", example.display(), node.node_name);
                assert!(warnings.is_empty(), "{at}: {warnings:?}");
                let cf = &parsed.hacf;
                let names: Vec<&str> = cluster.nodes.iter().map(|n| n.node_name.as_str()).collect();
                assert_eq!(cf.nodes, names, "{at}");
                assert_eq!(
                    (cf.keepalive, cf.warntime, cf.deadtime, cf.initdead),
                    (
                        cluster.keepalive,
                        cluster.warntime,
                        cluster.deadtime,
                        cluster.initdead
                    ),
                    "{at}"
                );
                assert_eq!(cf.auto_failback, cluster.auto_failback, "{at}");
                assert_eq!(cf.udpport, cluster.udpport, "{at}");
                // Media: per-node ucast lists exactly the peers; every medium on the named
                // interface and the cluster's port.
                for medium in &cf.media {
                    let (iface, port) = match medium {
                        Medium::Ucast { iface, port, .. }
                        | Medium::Bcast { iface, port }
                        | Medium::Mcast { iface, port, .. } => (iface, *port),
                    };
                    assert_eq!(iface, &cluster.heartbeat_interface, "{at}");
                    assert_eq!(port, cluster.udpport, "{at}");
                }
                if cluster.media == Media::Ucast {
                    let peers: Vec<_> = cf
                        .media
                        .iter()
                        .map(|m| match m {
                            Medium::Ucast { peer, .. } => *peer,
                            other => panic!("{at}: {other:?}"),
                        })
                        .collect();
                    let expected: Vec<_> = cluster
                        .nodes
                        .iter()
                        .filter(|n| n.node_name != node.node_name)
                        .map(|n| n.heartbeat_address.unwrap().addr)
                        .collect();
                    assert_eq!(peers, expected, "{at}");
                }
                // One group, on the preferred node, VIPs first then the services in order.
                let [group] = parsed.haresources.groups.as_slice() else {
                    panic!("{at}: {:?}", parsed.haresources);
                };
                assert_eq!(group.node, cluster.preferred_node, "{at}");
                let vips: Vec<_> = group
                    .resources
                    .iter()
                    .filter_map(|r| match r {
                        Resource::Address { ip, .. } => Some(*ip),
                        Resource::Script { .. } => None,
                    })
                    .collect();
                let wanted: Vec<_> = cluster.vips.iter().map(|v| v.address).collect();
                assert_eq!(vips, wanted, "{at}");
                assert_eq!(
                    group.resources.len(),
                    cluster.vips.len() + cluster.resources.len(),
                    "{at}"
                );
                assert_eq!(parsed.authkeys.active_key().method, cluster.auth, "{at}");
            }
        }
    }
}

#[test]
fn the_real_daemons_config_files_parse() {
    let dir = repo().join(VECTORS);
    for name in ["ha.cf", "ha.cf.afoff", "ha.cf.legacy", "ha.cf.netstring"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut warnings = Vec::new();
        let cf = HaCf::parse(&text, &path, &mut warnings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cf.nodes, ["nodea", "nodeb"], "{name}");
        assert_eq!(cf.media.len(), 2, "{name}");
        assert_eq!(cf.deadtime.as_millis(), 5000, "{name}");
        // The vectors' files name logfile/debugfile/use_logd, which the agent does not
        // implement: each is named, none silently dropped.
        for directive in ["logfile", "debugfile", "use_logd"] {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.message.contains(&format!("`{directive}`"))),
                "{name}: {warnings:?}"
            );
        }
    }
    let path = dir.join("haresources");
    let h = Haresources::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    assert_eq!(h.groups[0].node, "nodea");
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "authkeys.sha1",
        "authkeys.md5",
        "authkeys.crc",
        "authkeys.multiA",
        "authkeys.multiB",
        "authkeys.sameA",
        "authkeys.sameB",
    ] {
        let copy = tmp.path().join(name);
        std::fs::copy(dir.join(name), &copy).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
        authkeys::load(&copy).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn check_config_summarises_without_the_key_and_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("inventories"), dir.path());
    let out = dir.path().join("out");
    let run = crate::support::hadeploy(&[
        "render",
        dir.path().join("nginx-pair.yml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let node = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap();
    let etc = node.path().join("etc/ha.d");
    std::fs::write(etc.join("nodeinfo"), node.file_name().as_encoded_bytes()).unwrap();
    let secret = std::fs::read_to_string(etc.join("authkeys")).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let check = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_hadeploy-agent"))
            .args(["check-config", "--config-dir"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let ok = check(&etc);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let text = stdout(&ok);
    assert!(text.contains("group") && text.contains("ucast"), "{text}");
    assert!(!text.contains(&secret) && !stderr(&ok).contains(&secret));

    // A group-readable authkeys is refused with the fix, as the real daemon does (exit 6).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(etc.join("authkeys"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let bad = check(&etc);
    assert_eq!(bad.status.code(), Some(6));
    assert!(stderr(&bad).contains("chmod 600"), "{}", stderr(&bad));
    std::fs::set_permissions(etc.join("authkeys"), std::fs::Permissions::from_mode(0o600)).unwrap();

    // A node that is not in the cluster is told how to fix it.
    std::fs::write(etc.join("nodeinfo"), "stranger\n").unwrap();
    let stranger = check(&etc);
    assert_eq!(stranger.status.code(), Some(6));
    assert!(
        stderr(&stranger).contains("nodeinfo"),
        "{}",
        stderr(&stranger)
    );
}

#[test]
fn the_seed_guides_configs_parse() {
    let seeds = repo().join("tests/fixtures/seeds");
    let tmp = tempfile::tempdir().unwrap();
    for guide in ["nginx-rproxy", "apache-crossover", "haproxy-lb", "twin-crm"] {
        // Git does not keep the 0600 mode authkeys needs: copy and set it, as an operator would.
        let dir = tmp.path().join(guide);
        copy_tree(&seeds.join(guide), &dir);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("authkeys"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let result = HeartbeatConfig::load(&dir);
        if guide == "twin-crm" {
            let err = result.unwrap_err();
            assert!(err.message.contains("crm off"), "{err}");
            assert!(err.to_string().contains("ha.cf:14"), "{err}");
            continue;
        }
        let (config, warnings) = result.unwrap_or_else(|e| panic!("{guide}: {e}"));
        assert_eq!(config.hacf.nodes.len(), 2, "{guide}");
        assert_eq!(config.haresources.groups.len(), 1, "{guide}");
        if guide == "haproxy-lb" {
            assert_eq!(config.hacf.media.len(), 4, "bcast, mcast, ucast, udp");
            assert!(
                warnings
                    .iter()
                    .any(|w| w.message.contains("obsolete name of `bcast`"))
            );
        }
        if guide == "nginx-rproxy" {
            assert_eq!(config.hacf.udpport, 695);
            assert!(
                config
                    .hacf
                    .media
                    .iter()
                    .all(|m| matches!(m, Medium::Ucast { port: 695, .. }))
            );
        }
    }
}
