//! /etc/ha.d/ha.cf as Heartbeat 3.0.6 parses it (config.c parse_config): `#` starts a comment
//! anywhere, the first token is the directive, and the rest is split on blanks and commas,
//! each token applied on its own (`node a b` adds two nodes). Media lines take the `udpport`
//! in force when they are read — a later `udpport` does not reach them, which the real daemon
//! does silently and we warn about. Unknown directives are errors, as in the real daemon;
//! directives it knows but this agent does not implement are named in a warning.

use std::net::Ipv4Addr;
use std::path::Path;

use super::{ConfigError, Location, Warning};
use crate::config::ha::{AutoFailback, HbDuration, Medium, MsgFormat};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaCf {
    /// Cluster nodes, lower-cased, in file order.
    pub nodes: Vec<String>,
    pub media: Vec<Medium>,
    pub udpport: u16,
    pub keepalive: HbDuration,
    pub deadtime: HbDuration,
    pub warntime: HbDuration,
    pub initdead: HbDuration,
    pub auto_failback: AutoFailback,
    pub msgfmt: MsgFormat,
    pub hopfudge: u8,
    /// `realtime` (default on): run at a real-time scheduling priority, so a busy CPU cannot
    /// delay heartbeats into a false failover.
    pub realtime: bool,
}

/// Heartbeat's default port when /etc/services has no `ha-cluster`.
pub const DEFAULT_UDPPORT: u16 = 694;

/// Directives the real daemon accepts that this agent does not act on.
const NOT_IMPLEMENTED: &[&str] = &[
    "serial",
    "baud",
    "ping",
    "ping_group",
    "hbaping",
    "deadping",
    "respawn",
    "failfast",
    "apiauth",
    "stonith",
    "stonith_host",
    "watchdog",
    "logfile",
    "debugfile",
    "use_logd",
    "conn_logd_time",
    "syslogmsgfmt",
    "debug",
    "hbgenmethod",
    "uuidfrom",
    "autojoin",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "max_rexmit_delay",
    "rtprio",
    "memreserve",
    "coredumps",
    "coreroot",
    "log_badpack",
    "use_apphbd",
    "env",
    "quorum_server",
    "cluster",
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
];

/// cluster-glue's cl_str_to_boolean.
pub fn parse_bool(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

#[derive(Default)]
struct Timers {
    keepalive: Option<HbDuration>,
    deadtime: Option<HbDuration>,
    warntime: Option<HbDuration>,
    initdead: Option<HbDuration>,
}

impl HaCf {
    pub fn parse(
        text: &str,
        file: &Path,
        warnings: &mut Vec<Warning>,
    ) -> Result<HaCf, ConfigError> {
        let at = |line: usize| Location {
            file: file.to_path_buf(),
            line,
        };
        let mut nodes: Vec<String> = Vec::new();
        let mut media = Vec::new();
        let mut media_line = None;
        let mut udpport = DEFAULT_UDPPORT;
        // The ucast plugin fixes its port once, at its first line: later ucast lines keep it
        // even after another `udpport`.
        let mut ucast_port: Option<u16> = None;
        let mut timers = Timers::default();
        let mut auto_failback = AutoFailback::Legacy;
        let mut msgfmt = MsgFormat::Classic;
        let mut hopfudge = 1u8;
        let mut realtime = true;

        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            let err = |message: String| ConfigError {
                at: at(line),
                message,
            };
            let Some((directive, rest)) = content
                .split_once([' ', '\t'])
                .map(|(d, r)| (d, r.trim()))
                .or((!content.is_empty()).then_some((content, "")))
            else {
                continue;
            };
            let tokens: Vec<&str> = rest
                .split([' ', '\t', ','])
                .filter(|t| !t.is_empty())
                .collect();
            let one = |what: &str| -> Result<&str, ConfigError> {
                match tokens.as_slice() {
                    [value] => Ok(value),
                    [] => Err(err(format!("`{directive}` needs {what}"))),
                    _ => Err(err(format!(
                        "`{directive}` takes one value ({what}); values cannot contain spaces (write `500ms`, not `500 ms`)"
                    ))),
                }
            };
            let time = |what: &str| -> Result<HbDuration, ConfigError> {
                HbDuration::parse(one(what)?).map_err(|e| err(format!("{directive}: {e}")))
            };
            match directive {
                "node" => {
                    if tokens.is_empty() {
                        return Err(err("`node` needs at least one node name".into()));
                    }
                    for name in &tokens {
                        let name = name.to_ascii_lowercase();
                        if !nodes.contains(&name) {
                            nodes.push(name);
                        }
                    }
                }
                "udpport" => {
                    let value = one("a port number")?;
                    udpport = value
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err(format!("udpport `{value}`: not a port (1-65535)")))?;
                    if let Some(first) = media_line {
                        warnings.push(Warning {
                            at: at(line),
                            message: format!(
                                "udpport {udpport} comes after the media line at line {first}: as in Heartbeat, media already read keep their port; move udpport above the media lines"
                            ),
                        });
                    }
                }
                "ucast" => {
                    let [iface, peer] = tokens.as_slice() else {
                        return Err(err(
                            "`ucast` takes an interface and the peer's address: ucast eth1 10.0.0.2"
                                .into(),
                        ));
                    };
                    let peer = peer.parse::<Ipv4Addr>().map_err(|_| {
                        err(format!("ucast: `{peer}` is not an IPv4 address"))
                    })?;
                    let port = *ucast_port.get_or_insert(udpport);
                    if port != udpport {
                        warnings.push(Warning {
                            at: at(line),
                            message: format!(
                                "this ucast line uses port {port}, not udpport {udpport}: Heartbeat's ucast plugin keeps the port of its first line"
                            ),
                        });
                    }
                    media.push(Medium::Ucast {
                        iface: iface.to_string(),
                        peer,
                        port,
                    });
                    media_line.get_or_insert(line);
                }
                "bcast" | "udp" => {
                    if directive == "udp" {
                        warnings.push(Warning {
                            at: at(line),
                            message: "`udp` is the obsolete name of `bcast`; write bcast".into(),
                        });
                    }
                    if tokens.is_empty() {
                        return Err(err("`bcast` needs at least one interface".into()));
                    }
                    for iface in &tokens {
                        media.push(Medium::Bcast {
                            iface: iface.to_string(),
                            port: udpport,
                        });
                    }
                    media_line.get_or_insert(line);
                }
                "mcast" => {
                    let [iface, group, port, ttl, lp] = tokens.as_slice() else {
                        return Err(err(
                            "`mcast` takes five values: interface group port ttl loop (mcast eth1 239.0.0.1 694 1 0)"
                                .into(),
                        ));
                    };
                    let group = group
                        .parse::<Ipv4Addr>()
                        .ok()
                        .filter(Ipv4Addr::is_multicast)
                        .ok_or_else(|| {
                            err(format!("mcast: `{group}` is not a multicast group (224.0.0.0/4)"))
                        })?;
                    let port = port
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err(format!("mcast: port `{port}` is not 1-65535")))?;
                    let ttl = ttl
                        .parse::<u8>()
                        .ok()
                        .filter(|t| *t > 0)
                        .ok_or_else(|| err(format!("mcast: ttl `{ttl}` is not 1-255")))?;
                    let loopback = match *lp {
                        "0" => false,
                        "1" => true,
                        other => return Err(err(format!("mcast: loop `{other}` is not 0 or 1"))),
                    };
                    media.push(Medium::Mcast {
                        iface: iface.to_string(),
                        group,
                        port,
                        ttl,
                        loopback,
                    });
                    media_line.get_or_insert(line);
                }
                "keepalive" => timers.keepalive = Some(time("a time")?),
                "deadtime" => timers.deadtime = Some(time("a time")?),
                "warntime" => timers.warntime = Some(time("a time")?),
                "initdead" => timers.initdead = Some(time("a time")?),
                "auto_failback" => {
                    let value = one("on, off or legacy")?;
                    auto_failback = match (value, parse_bool(value)) {
                        ("legacy", _) => AutoFailback::Legacy,
                        (_, Some(true)) => AutoFailback::On,
                        (_, Some(false)) => AutoFailback::Off,
                        _ => {
                            return Err(err(format!(
                                "auto_failback `{value}`: use on, off or legacy"
                            )));
                        }
                    };
                }
                "nice_failback" => {
                    let value = one("on or off")?;
                    let on = parse_bool(value).ok_or_else(|| {
                        err(format!("nice_failback `{value}`: use on or off"))
                    })?;
                    auto_failback = if on {
                        AutoFailback::Off
                    } else {
                        AutoFailback::Legacy
                    };
                    warnings.push(Warning {
                        at: at(line),
                        message: format!(
                            "nice_failback is obsolete; it means `auto_failback {}` — write that instead",
                            if on { "off" } else { "legacy" }
                        ),
                    });
                }
                "crm" | "pacemaker" => {
                    let value = one("off")?;
                    if parse_bool(value) != Some(false) {
                        return Err(err(format!(
                            "{directive} {value}: hadeploy-agent runs haresources (v1) clusters only; set `crm off`"
                        )));
                    }
                }
                "msgfmt" => {
                    msgfmt = match one("classic or netstring")? {
                        "classic" => MsgFormat::Classic,
                        "netstring" => MsgFormat::Netstring,
                        other => {
                            return Err(err(format!(
                                "msgfmt `{other}`: use classic or netstring"
                            )));
                        }
                    };
                }
                "realtime" => {
                    let value = one("on or off")?;
                    realtime = parse_bool(value)
                        .ok_or_else(|| err(format!("realtime `{value}`: use on or off")))?;
                }
                "hopfudge" => {
                    let value = one("a number")?;
                    hopfudge = value
                        .parse()
                        .map_err(|_| err(format!("hopfudge `{value}`: not 0-255")))?;
                }
                // Logs go to stderr, which journald (or the init script's logger) hands to
                // syslog with the unit's facility: the setting has its effect there.
                "logfacility" => {
                    one("a syslog facility")?;
                }
                d if NOT_IMPLEMENTED.contains(&d) => warnings.push(Warning {
                    at: at(line),
                    message: format!(
                        "`{d}` is a Heartbeat directive hadeploy-agent does not implement; it is ignored"
                    ),
                }),
                other => {
                    return Err(err(format!(
                        "illegal directive `{other}` (the real daemon refuses it too)"
                    )));
                }
            }
        }

        let whole = |message: String| ConfigError { at: at(0), message };
        if nodes.is_empty() {
            return Err(whole("no `node` lines: name every cluster node".into()));
        }
        if media.is_empty() {
            return Err(whole(
                "no heartbeat media: add ucast, bcast or mcast lines".into(),
            ));
        }
        let keepalive = timers.keepalive.unwrap_or(HbDuration::from_millis(1000));
        let deadtime = timers.deadtime.unwrap_or(HbDuration::from_secs(30));
        let warntime = timers
            .warntime
            .unwrap_or(HbDuration::from_millis(deadtime.as_millis() / 2));
        let initdead = timers.initdead.unwrap_or_else(|| {
            // config.c init_config's rule.
            if deadtime.as_millis() > 10_000 {
                deadtime
            } else if deadtime.as_millis() < 6_000 {
                HbDuration::from_secs(12)
            } else {
                HbDuration::from_millis(deadtime.as_millis() * 2)
            }
        });
        if keepalive.as_millis() == 0 {
            return Err(whole("keepalive must be more than 0".into()));
        }
        if deadtime.as_millis() <= 2 * keepalive.as_millis() {
            return Err(whole(format!(
                "deadtime ({} ms) must be more than twice keepalive ({} ms)",
                deadtime.as_millis(),
                keepalive.as_millis()
            )));
        }
        if initdead < deadtime {
            return Err(whole(format!(
                "initdead ({} ms) must be at least deadtime ({} ms)",
                initdead.as_millis(),
                deadtime.as_millis()
            )));
        }
        if warntime >= deadtime {
            warnings.push(Warning {
                at: at(0),
                message: format!(
                    "warntime ({} ms) is not below deadtime ({} ms): no late-heartbeat warning comes before a node is declared dead",
                    warntime.as_millis(),
                    deadtime.as_millis()
                ),
            });
        }
        Ok(HaCf {
            nodes,
            media,
            udpport,
            keepalive,
            deadtime,
            warntime,
            initdead,
            auto_failback,
            msgfmt,
            hopfudge,
            realtime,
        })
    }
}

/// ha.cf as it must agree between nodes: every line but the ucast ones, which name the peers.
pub fn without_ucast(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    for line in content.split_inclusive(|&b| b == b'\n') {
        let first = line
            .split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty());
        if first != Some(b"ucast") {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ucast_lines_are_the_only_difference_allowed_in_ha_cf() {
        let a = b"keepalive 2\nucast eth1 10.0.0.2\nnode a b\n";
        let b = b"keepalive 2\n  ucast eth1 10.0.0.1\nnode a b\n";
        assert_eq!(without_ucast(a), without_ucast(b));
        assert_eq!(without_ucast(a), b"keepalive 2\nnode a b\n");
        assert_ne!(
            without_ucast(b"keepalive 1\n"),
            without_ucast(b"keepalive 2\n")
        );
        // A line that only starts with the word is not a ucast line.
        assert_eq!(without_ucast(b"ucastx 1\n"), b"ucastx 1\n");
    }

    fn parse(text: &str) -> (Result<HaCf, ConfigError>, Vec<Warning>) {
        let mut warnings = Vec::new();
        let result = HaCf::parse(text, Path::new("ha.cf"), &mut warnings);
        (result, warnings)
    }

    const BASE: &str = "node a b\nucast eth1 10.0.0.2\n";

    #[test]
    fn defaults_follow_the_real_daemon() {
        let cf = parse(BASE).0.unwrap();
        assert_eq!(cf.nodes, ["a", "b"]);
        assert_eq!(cf.keepalive.as_millis(), 1000);
        assert_eq!(cf.deadtime.as_millis(), 30_000);
        assert_eq!(cf.warntime.as_millis(), 15_000);
        assert_eq!(cf.initdead.as_millis(), 30_000);
        assert_eq!(cf.auto_failback, AutoFailback::Legacy);
        assert_eq!(cf.msgfmt, MsgFormat::Classic);
        let cf = parse(&format!("{BASE}deadtime 5\n")).0.unwrap();
        assert_eq!(cf.initdead.as_millis(), 12_000, "deadtime < 6 s → 12 s");
        let cf = parse(&format!("{BASE}deadtime 8\n")).0.unwrap();
        assert_eq!(cf.initdead.as_millis(), 16_000);
    }

    #[test]
    fn udpport_after_media_is_ignored_for_them_with_a_warning() {
        let (cf, warnings) =
            parse("udpport 700\nucast eth1 10.0.0.2\nudpport 701\nbcast eth2\nnode a\n");
        let cf = cf.unwrap();
        assert_eq!(
            cf.media,
            [
                Medium::Ucast {
                    iface: "eth1".into(),
                    peer: "10.0.0.2".parse().unwrap(),
                    port: 700
                },
                Medium::Bcast {
                    iface: "eth2".into(),
                    port: 701
                }
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].at.line, 3);
        assert!(warnings[0].message.contains("line 2"), "{}", warnings[0]);
    }

    #[test]
    fn every_ucast_line_keeps_the_port_of_the_first() {
        let (cf, warnings) =
            parse("node a\nucast eth1 10.0.0.2\nudpport 700\nucast eth1 10.0.0.3\n");
        let ports: Vec<u16> = cf
            .unwrap()
            .media
            .iter()
            .map(|m| match m {
                Medium::Ucast { port, .. } => *port,
                _ => 0,
            })
            .collect();
        assert_eq!(ports, [694, 694]);
        assert!(
            warnings
                .iter()
                .any(|w| w.at.line == 4 && w.message.contains("first line"))
        );
    }

    #[test]
    fn times_take_ms_and_fractions_but_not_an_s_suffix() {
        let cf = parse(&format!(
            "{BASE}keepalive 500ms\nwarntime 0.75\ndeadtime 2\ninitdead 4\n"
        ))
        .0
        .unwrap();
        assert_eq!(cf.keepalive.as_millis(), 500);
        assert_eq!(cf.warntime.as_millis(), 750);
        let err = parse(&format!("{BASE}deadtime 5s\n")).0.unwrap_err();
        assert_eq!(err.at.line, 3);
        assert!(err.message.contains("`s` suffix"), "{err}");
        let err = parse(&format!("{BASE}keepalive 500 ms\n")).0.unwrap_err();
        assert!(err.message.contains("cannot contain spaces"), "{err}");
    }

    #[test]
    fn timer_order_is_enforced() {
        let err = parse(&format!("{BASE}keepalive 2\ndeadtime 4\n"))
            .0
            .unwrap_err();
        assert!(err.message.contains("more than twice keepalive"), "{err}");
        let err = parse(&format!("{BASE}deadtime 10\ninitdead 5\n"))
            .0
            .unwrap_err();
        assert!(err.message.contains("at least deadtime"), "{err}");
    }

    #[test]
    fn tokens_split_on_blanks_and_commas_and_comments_anywhere() {
        let cf = parse("node A,b\tc # d\nucast eth1 10.0.0.2 # peer\n")
            .0
            .unwrap();
        assert_eq!(cf.nodes, ["a", "b", "c"]);
    }

    #[test]
    fn unknown_directives_are_errors_and_unimplemented_ones_warnings() {
        let err = parse(&format!("{BASE}keepalvie 1\n")).0.unwrap_err();
        assert!(err.message.contains("illegal directive `keepalvie`"));
        let (cf, warnings) = parse(&format!("{BASE}respawn hacluster /usr/lib/ipfail\n"));
        cf.unwrap();
        assert!(warnings[0].message.contains("`respawn`"), "{}", warnings[0]);
    }

    #[test]
    fn crm_must_be_off_and_failback_words_are_booleans() {
        let err = parse(&format!("{BASE}crm respawn\n")).0.unwrap_err();
        assert!(err.message.contains("crm off"));
        parse(&format!("{BASE}crm no\n")).0.unwrap();
        let cf = parse(&format!("{BASE}auto_failback yes\n")).0.unwrap();
        assert_eq!(cf.auto_failback, AutoFailback::On);
        let (cf, w) = parse(&format!("{BASE}nice_failback on\n"));
        assert_eq!(cf.unwrap().auto_failback, AutoFailback::Off);
        assert!(w[0].message.contains("obsolete"));
    }

    #[test]
    fn media_are_checked() {
        for (line, needle) in [
            ("mcast eth1 10.0.0.1 694 1 0", "multicast group"),
            ("mcast eth1 239.0.0.1 694 0 0", "ttl"),
            ("mcast eth1 239.0.0.1 694 1", "five values"),
            ("ucast eth1 host", "IPv4"),
            ("ucast eth1", "interface and the peer"),
            ("udpport 70000", "not a port"),
        ] {
            let err = parse(&format!("node a\n{line}\n")).0.unwrap_err();
            assert!(err.message.contains(needle), "{line}: {err}");
            assert_eq!(err.at.line, 2);
        }
        let err = parse("node a\n").0.unwrap_err();
        assert!(err.message.contains("no heartbeat media"));
    }

    #[test]
    fn hostile_input_is_refused_without_panicking() {
        for text in [
            "\0\0\u{1}",
            "node",
            "#",
            "\u{feff}node a",
            &"x ".repeat(100_000),
        ] {
            let _ = parse(text);
        }
    }
}
