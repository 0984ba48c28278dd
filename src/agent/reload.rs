//! What a configuration reload may change while the agent keeps its place in the cluster, and
//! what only a restart can: a pure judgement of the configuration loaded before against the
//! one read now. The running agent asks it on `hadeploy-agent reload` (and SIGHUP), and the
//! controller asks it of the files its probe read and the ones it is about to write, so
//! `apply` reloads exactly when the agent will accept the reload.
//!
//! Live: the timers (keepalive, warntime, deadtime, initdead), the keys and which one signs,
//! `msgfmt`, `hopfudge`, and `resource_check`. Everything the agent does not act on (logging
//! directives, comments) changes nothing and reloads trivially. Restart only: the node list,
//! the media and the UDP port (sockets), the haresources groups (what this node may hold, by
//! index), `auto_failback` (the negotiation already under way), `realtime` (set once at start)
//! and `metrics_listen` (a bound socket).

use super::setup::Loaded;
use crate::config::heartbeat::AuthKeys;

/// What a reload from `old` to `new` would change, one sentence each (keys only by index and
/// method, never their secrets); `Err` lists what needs a restart instead. `Ok` with nothing
/// in it: the files differ only in what the agent does not act on.
pub fn judge(old: &Loaded, new: &Loaded) -> Result<Vec<String>, Vec<String>> {
    let (a, b) = (&old.heartbeat.hacf, &new.heartbeat.hacf);
    let mut restart = Vec::new();
    if a.nodes != b.nodes {
        restart.push(format!(
            "the node list ({} → {})",
            a.nodes.join(" "),
            b.nodes.join(" ")
        ));
    }
    if a.media != b.media {
        restart.push("the heartbeat media (ucast/bcast/mcast lines)".into());
    }
    if a.udpport != b.udpport {
        restart.push(format!("udpport ({} → {})", a.udpport, b.udpport));
    }
    let groups = |l: &Loaded| -> Vec<(String, Vec<String>)> {
        l.heartbeat
            .haresources
            .groups
            .iter()
            .map(|g| (g.node.clone(), g.texts.clone()))
            .collect()
    };
    if groups(old) != groups(new) {
        restart.push("the haresources groups".into());
    }
    if a.auto_failback != b.auto_failback {
        restart.push(format!(
            "auto_failback ({:?} → {:?})",
            a.auto_failback, b.auto_failback
        ));
    }
    if a.realtime != b.realtime {
        restart.push("realtime".into());
    }
    if old.agent.metrics_listen != new.agent.metrics_listen {
        restart.push("metrics_listen".into());
    }
    if !restart.is_empty() {
        return Err(restart);
    }

    let mut live = Vec::new();
    for (name, x, y) in [
        ("keepalive", a.keepalive, b.keepalive),
        ("warntime", a.warntime, b.warntime),
        ("deadtime", a.deadtime, b.deadtime),
        ("initdead", a.initdead, b.initdead),
    ] {
        if x != y {
            live.push(format!(
                "{name} {} ms → {} ms",
                x.as_millis(),
                y.as_millis()
            ));
        }
    }
    if a.msgfmt != b.msgfmt {
        live.push(format!("msgfmt {:?} → {:?}", a.msgfmt, b.msgfmt));
    }
    if a.hopfudge != b.hopfudge {
        live.push(format!("hopfudge {} → {}", a.hopfudge, b.hopfudge));
    }
    keys(&old.heartbeat.authkeys, &new.heartbeat.authkeys, &mut live);
    let check = |c: Option<super::core::ResourceCheck>| match c {
        Some(c) => format!(
            "every {} ms, {} failures",
            c.interval.as_millis(),
            c.failures
        ),
        None => "off".into(),
    };
    if old.agent.resource_check != new.agent.resource_check {
        live.push(format!(
            "resource_check {} → {}",
            check(old.agent.resource_check),
            check(new.agent.resource_check)
        ));
    }
    Ok(live)
}

/// The key changes, by index: added, removed, replaced (secret or method), and the signing key.
fn keys(old: &AuthKeys, new: &AuthKeys, out: &mut Vec<String>) {
    for (index, key) in &new.keys {
        match old.keys.get(index) {
            None => out.push(format!("key {index} added ({})", key.method.name())),
            Some(was) if was.method != key.method => out.push(format!(
                "key {index} replaced ({} → {})",
                was.method.name(),
                key.method.name()
            )),
            Some(was) if was.secret != key.secret => {
                out.push(format!("key {index} replaced (secret not shown)"))
            }
            Some(_) => {}
        }
    }
    for index in old.keys.keys().filter(|i| !new.keys.contains_key(i)) {
        out.push(format!("key {index} removed"));
    }
    if old.active != new.active {
        out.push(format!(
            "signing with key {} (was {})",
            new.active, old.active
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::setup::{AgentSettings, parse_agent_settings};
    use crate::config::heartbeat::HeartbeatConfig;
    use std::path::Path;

    const HACF: &str = "node a b\nucast eth1 10.0.0.2\nkeepalive 200ms\nwarntime 500ms\ndeadtime 1\ninitdead 3\nauto_failback on\n";
    const HARESOURCES: &str = "a IPaddr2::10.0.0.10/24/eth0 nginx\n";
    const AUTHKEYS: &str = "auth 1\n1 sha1 oldsecret\n";

    fn loaded(hacf: &str, haresources: &str, authkeys: &str, agent_cf: &str) -> Loaded {
        let dir = Path::new("/etc/ha.d");
        Loaded {
            heartbeat: HeartbeatConfig::parse(dir, hacf, haresources, authkeys)
                .unwrap()
                .0,
            agent: if agent_cf.is_empty() {
                AgentSettings::default()
            } else {
                parse_agent_settings(agent_cf, &dir.join("hadeploy-agent.cf")).unwrap()
            },
        }
    }

    fn base() -> Loaded {
        loaded(HACF, HARESOURCES, AUTHKEYS, "")
    }

    #[test]
    fn timers_keys_and_checks_change_live_and_say_what_changed() {
        let new = loaded(
            &HACF
                .replace("deadtime 1", "deadtime 2")
                .replace("warntime 500ms", "warntime 1"),
            HARESOURCES,
            "auth 2\n1 sha1 oldsecret\n2 sha1 newsecret\n",
            "resource_check 2\n",
        );
        let changes = judge(&base(), &new).unwrap();
        assert_eq!(
            changes,
            [
                "warntime 500 ms → 1000 ms",
                "deadtime 1000 ms → 2000 ms",
                "key 2 added (sha1)",
                "signing with key 2 (was 1)",
                "resource_check off → every 2000 ms, 3 failures",
            ]
        );
        let rotated = loaded(HACF, HARESOURCES, "auth 1\n1 md5 other\n", "");
        let changes = judge(&base(), &rotated).unwrap();
        assert_eq!(changes, ["key 1 replaced (sha1 → md5)"]);
        let secret = loaded(HACF, HARESOURCES, "auth 1\n1 sha1 different\n", "");
        let changes = judge(&base(), &secret).unwrap();
        assert_eq!(changes, ["key 1 replaced (secret not shown)"]);
        assert!(!changes.concat().contains("different"));
    }

    #[test]
    fn what_the_agent_does_not_act_on_reloads_with_no_change() {
        let new = loaded(
            &format!("# edited by hand\n{HACF}logfile /var/log/ha-log\n"),
            &format!("# the web group\n{HARESOURCES}"),
            AUTHKEYS,
            "",
        );
        assert_eq!(judge(&base(), &new), Ok(vec![]));
    }

    #[test]
    fn sockets_groups_and_negotiation_need_a_restart() {
        for (hacf, haresources, agent_cf, why) in [
            (
                HACF.replace("node a b", "node a b c"),
                HARESOURCES,
                "",
                "node list",
            ),
            (
                HACF.replace("10.0.0.2", "10.0.0.3"),
                HARESOURCES,
                "",
                "media",
            ),
            (
                HACF.replace("ucast", "udpport 695\nucast"),
                HARESOURCES,
                "",
                "udpport (694 → 695)",
            ),
            (
                HACF.into(),
                "a IPaddr2::10.0.0.10/24/eth0 haproxy\n",
                "",
                "haresources",
            ),
            (
                HACF.replace("auto_failback on", "auto_failback off"),
                HARESOURCES,
                "",
                "auto_failback",
            ),
            (format!("{HACF}realtime off\n"), HARESOURCES, "", "realtime"),
            (
                HACF.into(),
                HARESOURCES,
                "metrics_listen 127.0.0.1:9717\n",
                "metrics_listen",
            ),
        ] {
            let new = loaded(&hacf, haresources, AUTHKEYS, agent_cf);
            let refused = judge(&base(), &new).unwrap_err();
            assert!(
                refused.iter().any(|r| r.contains(why)),
                "{why}: {refused:?}"
            );
        }
        // A restart-only change refuses the whole reload, even beside a live one.
        let both = loaded(
            &HACF
                .replace("deadtime 1", "deadtime 2")
                .replace("ucast", "udpport 695\nucast"),
            HARESOURCES,
            AUTHKEYS,
            "",
        );
        let refused = judge(&base(), &both).unwrap_err();
        assert!(refused.iter().any(|r| r.contains("udpport")), "{refused:?}");
        assert!(
            !refused.iter().any(|r| r.contains("deadtime")),
            "{refused:?}"
        );
    }
}
