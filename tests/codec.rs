//! The wire codec and signatures against real Heartbeat 3.0.6 traffic (shared/heartbeat/vectors):
//! every captured datagram decodes, re-encodes to the same bytes, and verifies with the keys
//! the capture was made with; plus a bounded-time mutation fuzz run over the same corpus.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hadeploy::agent::auth::{self, Verification};
use hadeploy::agent::decode::decode_capture;
use hadeploy::agent::pcap;
use hadeploy::agent::wire::{self, Encoding};
use hadeploy::config::ha::{AuthMethod, MsgFormat};
use hadeploy::config::heartbeat::authkeys::{AuthKey, AuthKeys};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/heartbeat/vectors")
}

fn keys(active: u8, entries: &[(u8, AuthMethod, &str)]) -> AuthKeys {
    AuthKeys {
        active,
        keys: entries
            .iter()
            .map(|&(index, method, secret)| {
                let secret = secret.to_string();
                (
                    index,
                    AuthKey {
                        index,
                        method,
                        secret,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The lab's authkeys files (vectors/config), built in code.
fn sha1() -> AuthKeys {
    keys(1, &[(1, AuthMethod::Sha1, "testkey")])
}
fn md5() -> AuthKeys {
    keys(2, &[(2, AuthMethod::Md5, "testkey")])
}
fn crc() -> AuthKeys {
    keys(3, &[(3, AuthMethod::Crc, "")])
}
fn multi(active: u8) -> AuthKeys {
    keys(
        active,
        &[
            (1, AuthMethod::Sha1, "keyone"),
            (2, AuthMethod::Md5, "keytwo"),
        ],
    )
}
fn same(active: u8) -> AuthKeys {
    keys(
        active,
        &[
            (1, AuthMethod::Sha1, "samekey"),
            (2, AuthMethod::Md5, "samekey"),
        ],
    )
}

/// Reverses the vectors' escaping (\n \r \0 \\ \xNN).
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match bytes[i + 1] {
            b'n' => (b'\n', 2),
            b'r' => (b'\r', 2),
            b'0' => (0, 2),
            b'\\' => (b'\\', 2),
            b'x' => (u8::from_str_radix(&text[i + 2..i + 4], 16).unwrap(), 4),
            other => panic!("unknown escape \\{}", other as char),
        };
        out.push(byte);
        i += used;
    }
    out
}

/// One example from messages/*.txt: its header line, payload and the sign text it lists.
struct Example {
    file: String,
    header: String,
    payload: Vec<u8>,
    sign_text: Option<Vec<u8>>,
    body_len: Option<usize>,
}

fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(vectors().join("messages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut header = String::new();
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("== ") {
                header = h.to_string();
            } else if let Some(p) = line.strip_prefix("payload: ") {
                out.push(Example {
                    file: file.clone(),
                    header: header.clone(),
                    payload: unescape(p),
                    sign_text: None,
                    body_len: None,
                });
            } else if let Some(s) = line.strip_prefix("classic-sign-text: ") {
                out.last_mut().unwrap().sign_text = Some(unescape(s));
            } else if let Some(b) = line.strip_prefix("body_len=") {
                let n = b.split_whitespace().next().unwrap().parse().unwrap();
                out.last_mut().unwrap().body_len = Some(n);
            }
        }
    }
    assert!(
        out.len() >= 100,
        "expected the ~102 vector examples, got {}",
        out.len()
    );
    out
}

fn keys_for_method(header: &str) -> AuthKeys {
    match header.split("auth_method=").nth(1).unwrap_or("sha1") {
        "sha1" => sha1(),
        "md5" => md5(),
        "crc" => crc(),
        other => panic!("unknown method {other}"),
    }
}

#[test]
fn every_vector_message_decodes_verifies_and_reencodes_identically() {
    for ex in examples()
        .iter()
        .filter(|e| !e.file.starts_with("INJECTED"))
    {
        let what = format!("{} {}", ex.file, ex.header);
        let k = keys_for_method(&ex.header);
        let d = wire::decode(&ex.payload).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(d.encoding, Encoding::Netstring, "{what}");
        assert_eq!(d.encode().unwrap(), ex.payload, "{what}");
        assert_eq!(Some(d.signed.len()), ex.body_len, "{what}");
        assert!(
            auth::verify(&d, &k).is_ok(),
            "{what}: {:?}",
            auth::verify(&d, &k)
        );
        // Signing from scratch reproduces the daemon's bytes: inner field and trailer.
        let fmt = match &ex.sign_text {
            Some(text) => {
                assert_eq!(&d.message.classic_sign_text().unwrap(), text, "{what}");
                assert!(auth::verify_inner(&d.message, &k).is_ok(), "{what}");
                MsgFormat::Classic
            }
            None => MsgFormat::Netstring,
        };
        let mut unsigned = d.message.clone();
        unsigned.remove("auth");
        assert_eq!(
            auth::sign(&unsigned, &k, fmt).unwrap(),
            ex.payload,
            "{what}"
        );
        // The accessors read what the daemon wrote.
        let m = &d.message;
        assert!(
            m.msg_type().is_some() && m.src().is_some() && m.ts().is_some(),
            "{what}"
        );
        assert_eq!(m.ttl(), Some(3), "{what}");
        let ns = m.msg_type().unwrap().starts_with("NS_");
        assert_eq!(m.seq().is_some(), !ns, "{what}");
        assert_eq!(m.ld().is_some(), !ns, "{what}");
        assert!(m.srcuuid().is_some(), "{what}");
        assert!(m.hg().is_some(), "{what}");
        assert_eq!(m.msg_type() == Some("status"), m.dt().is_some(), "{what}");
        // heartbeat adds destuuid exactly when the creator set dest.
        assert_eq!(m.dest().is_some(), m.get("destuuid").is_some(), "{what}");
    }
}

#[test]
fn signatures_match_the_captured_tokens_for_each_method() {
    // status_st-active.txt: one example each of sha1 (s1), md5 (s2) and crc (s3).
    let examples = examples();
    let by_capture = |capture: &str| {
        examples
            .iter()
            .find(|e| e.file == "status_st-active.txt" && e.header.contains(capture))
            .unwrap()
    };
    for (capture, method, key, inner, trailer) in [
        (
            "s1_sha1",
            AuthMethod::Sha1,
            "testkey",
            "c88c3315280e1565984f3e33b83d6957297fd20c",
            "142ecb218c60952d4a281ba60e2af842702c75b4",
        ),
        (
            "s2_md5",
            AuthMethod::Md5,
            "testkey",
            "9ff5110d9b5fc879807a99f7901a3cc9",
            "5e53287614f61b4abd24defb5513edcb",
        ),
        ("s3_crc", AuthMethod::Crc, "", "adb83ec4", "91f3e827"),
    ] {
        let d = wire::decode(&by_capture(capture).payload).unwrap();
        let text = d.message.classic_sign_text().unwrap();
        assert_eq!(
            auth::token(method, key.as_bytes(), &text),
            inner,
            "{capture}"
        );
        assert_eq!(
            auth::token(method, key.as_bytes(), &d.signed),
            trailer,
            "{capture}"
        );
    }
}

#[test]
fn tampered_messages_fail_verification() {
    for ex in examples()
        .iter()
        .filter(|e| !e.file.starts_with("INJECTED"))
    {
        let k = keys_for_method(&ex.header);
        let d = wire::decode(&ex.payload).unwrap();
        let index = k.active;
        // Change one character of the `ts` value: same length, so the framing still holds.
        let at = ex.payload.windows(5).position(|w| w == b"(0)ts").unwrap() + 7;
        let mut bytes = ex.payload.clone();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let t = wire::decode(&bytes).unwrap();
        assert_ne!(t.message, d.message);
        for verify in [auth::verify, auth::verify_accepting] {
            assert_eq!(
                verify(&t, &k),
                Verification::BadSignature { index },
                "{}",
                ex.header
            );
        }
        if ex.sign_text.is_some() {
            assert_eq!(
                auth::verify_inner(&t.message, &k),
                Verification::BadSignature { index }
            );
        }
        // Upper-case hex is a different string to heartbeat.
        let mut upper = d.clone();
        upper.trailer = upper.trailer.map(|t| t.to_ascii_uppercase());
        if upper.trailer != d.trailer {
            assert_eq!(
                auth::verify(&upper, &k),
                Verification::BadSignature { index }
            );
        }
    }
}

#[test]
fn injected_datagrams_get_the_real_daemons_verdicts() {
    let k = sha1();
    let injected: Vec<_> = examples()
        .into_iter()
        .filter(|e| e.file.starts_with("INJECTED"))
        .collect();
    assert_eq!(injected.len(), 8);
    for ex in injected {
        let d = wire::decode(&ex.payload).unwrap_or_else(|e| panic!("{}: {e}", ex.header));
        assert_eq!(d.encode().unwrap(), ex.payload, "{}", ex.header);
        let verdict = auth::verify(&d, &k);
        if ex.header.contains("[classic, correct auth") {
            assert_eq!(d.encoding, Encoding::Classic);
            assert!(d.classic_nul);
            assert_eq!(verdict, Verification::Ok { index: 1 });
            assert_eq!(d.message.classic_sign_text().ok(), ex.sign_text);
        } else if ex.header.contains("[classic, wrong auth") {
            assert_eq!(verdict, Verification::BadSignature { index: 1 });
        } else if ex.header.contains("no inner auth") {
            assert_eq!(verdict, Verification::Ok { index: 1 });
            assert_eq!(auth::verify_inner(&d.message, &k), Verification::Missing);
        } else {
            assert!(ex.header.contains("garbage inner auth"), "{}", ex.header);
            assert_eq!(verdict, Verification::Ok { index: 1 });
            assert_eq!(
                auth::verify_inner(&d.message, &k),
                Verification::BadSignature { index: 1 }
            );
        }
    }
}

/// The UDP/694 datagrams of one capture.
fn capture(name: &str) -> Vec<pcap::UdpDatagram> {
    let bytes = std::fs::read(vectors().join("pcap").join(format!("{name}.pcap"))).unwrap();
    let capture = pcap::read_udp(&bytes).unwrap();
    assert_eq!((capture.fragments, capture.truncated), (0, 0), "{name}");
    capture
        .datagrams
        .into_iter()
        .filter(|d| d.src.port() == 694 || d.dst.port() == 694)
        .collect()
}

const NODEA: [u8; 4] = [10, 250, 0, 1];

/// Every datagram decodes, re-encodes to its bytes, and is accepted by a receiver holding
/// `receiver_keys(sender)`; returns the count.
fn check_capture(name: &str, receiver_keys: impl Fn(&pcap::UdpDatagram) -> AuthKeys) -> usize {
    let datagrams = capture(name);
    for (n, u) in datagrams.iter().enumerate() {
        let d = wire::decode(&u.payload).unwrap_or_else(|e| panic!("{name} #{n}: {e}"));
        assert_eq!(d.encode().unwrap(), u.payload, "{name} #{n}");
        let k = receiver_keys(u);
        assert!(
            auth::verify(&d, &k).is_ok(),
            "{name} #{n}: {:?}",
            auth::verify(&d, &k)
        );
        // The agent accepts everything 3.0.6 accepts, under the same entry.
        assert_eq!(auth::verify_accepting(&d, &k), auth::verify(&d, &k));
        // s12's injected datagrams carry a garbage inner field on purpose; the daemon's own
        // (from nodea) are fine.
        let injected = name.starts_with("s12") && u.src.ip().octets() != NODEA;
        if d.message.auth().is_some() {
            let inner = auth::verify_inner(&d.message, &k);
            assert_eq!(inner.is_ok(), !injected, "{name} #{n}: {inner:?}");
        }
    }
    datagrams.len()
}

#[test]
fn every_captured_datagram_decodes_and_verifies() {
    // Counts as verify_auth.py reports them (README) where it lists them.
    for (name, k, expected) in [
        ("s0_sha1_nodea_alone_badnic", sha1(), None),
        ("s1_sha1", sha1(), Some(239)),
        ("s2_md5", md5(), Some(101)),
        ("s3_crc", crc(), Some(99)),
        ("s5_loss_rexmit", sha1(), Some(179)),
        ("s6_msgfmt_netstring", sha1(), Some(722)),
        ("s7_legacy", sha1(), Some(105)),
        ("s8_afoff", sha1(), Some(211)),
        ("s10_afon_failback", sha1(), Some(236)),
        ("s11_legacy_rejoin", sha1(), Some(188)),
        ("s12_inject_netstring_badinner", sha1(), None),
        // t6c: authkeys line `1 sha1 test key with spaces` means key `test`.
        (
            "t6c_keyspaces",
            keys(1, &[(1, AuthMethod::Sha1, "test")]),
            Some(7),
        ),
        ("t7b_keepalive500ms", sha1(), None),
    ] {
        let count = check_capture(name, |_| k.clone());
        if let Some(expected) = expected {
            assert_eq!(count, expected, "{name}");
        }
    }
    // s6 ran with msgfmt netstring: no inner field anywhere.
    assert!(capture("s6_msgfmt_netstring").iter().all(|u| {
        let d = wire::decode(&u.payload).unwrap();
        d.message.auth().is_none() && d.trailer.is_some()
    }));
}

#[test]
fn s9_injection_classic_wrong_auth_is_the_only_rejection() {
    let k = sha1();
    let mut verdicts = BTreeMap::new();
    for u in capture("s9_inject") {
        let d = wire::decode(&u.payload).unwrap();
        assert_eq!(d.encode().unwrap(), u.payload);
        let form = match d.encoding {
            Encoding::Netstring => "netstring",
            Encoding::Classic => "classic",
        };
        *verdicts
            .entry((form, format!("{:?}", auth::verify(&d, &k))))
            .or_insert(0) += 1;
    }
    let rejected: usize = verdicts
        .iter()
        .filter(|((_, v), _)| !v.starts_with("Ok"))
        .map(|(_, n)| n)
        .sum();
    let classic_bad = verdicts
        .get(&("classic", "BadSignature { index: 1 }".to_string()))
        .copied()
        .unwrap_or(0);
    assert!(classic_bad > 0, "{verdicts:?}");
    assert_eq!(rejected, classic_bad, "{verdicts:?}");
    assert!(verdicts.contains_key(&("classic", "Ok { index: 1 }".to_string())));
}

#[test]
fn receiver_checks_the_trailer_with_its_active_key() {
    // s4a: nodea `auth 1` (sha1 keyone), nodeb `auth 2` (md5 keytwo), both entries on both.
    let sender_keys =
        |u: &pcap::UdpDatagram| multi(if u.src.ip().octets() == NODEA { 1 } else { 2 });
    check_capture("s4a_multikey_diffkeys", sender_keys);
    let mut rejected = 0;
    for u in capture("s4a_multikey_diffkeys") {
        let d = wire::decode(&u.payload).unwrap();
        let from_a = u.src.ip().octets() == NODEA;
        let receiver = multi(if from_a { 2 } else { 1 });
        let index = if from_a { 1 } else { 2 };
        // The peer rejects it (its active key differs) although the classic rule, entry n's
        // own key, would accept it: the 3.0.6 quirk the README shows from the daemon's log.
        assert_eq!(
            auth::verify(&d, &receiver),
            Verification::BadSignature { index }
        );
        assert_eq!(
            auth::verify_inner(&d.message, &receiver),
            Verification::Ok { index }
        );
        // The agent accepts it: entry n's own key matches. This is the overlap a key rotation
        // needs, where one node already signs with the new entry.
        assert_eq!(
            auth::verify_accepting(&d, &receiver),
            Verification::Ok { index }
        );
        // A receiver without that entry does not know the index at all.
        let lone = keys(3 - index, &[(3 - index, AuthMethod::Sha1, "keyone")]);
        for verify in [auth::verify, auth::verify_accepting] {
            assert_eq!(
                verify(&d, &lone),
                Verification::UnknownKeyIndex {
                    index: u32::from(index)
                }
            );
        }
        rejected += 1;
    }
    assert!(rejected > 0);
    // s4b: same indices, one key string: each side accepts the other's index.
    for receiver in [same(1), same(2)] {
        check_capture("s4b_multikey_samekey", |_| receiver.clone());
    }
}

#[test]
fn decode_capture_renders_a_whole_pcap() {
    let bytes = std::fs::read(vectors().join("pcap/s3_crc.pcap")).unwrap();
    let out = decode_capture(&bytes, &crc()).unwrap();
    assert_eq!(out.datagrams.len(), 99);
    let text = out.to_string();
    assert!(text.contains(" 10.250.0.1:"), "{}", &text[..400]);
    assert!(text.contains("  srcuuid = (binary, 16 bytes) 867ff3a310b14e0c889753e6437c1e6f\n"));
    assert!(text.ends_with("99 datagrams: 99 verified, 0 failed verification, 0 not heartbeat\n"));
    let wrong = decode_capture(&bytes, &sha1()).unwrap().to_string();
    assert!(wrong.contains("UNKNOWN KEY INDEX 3"), "{}", &wrong[..600]);
}

/// Mutation fuzzing over the vector corpus, seeded and bounded (200 000 cases or 10 s, the
/// budget this gets in CI): bit flips, byte overwrites, truncations, corrupted and inflated
/// length prefixes, and splices of two datagrams. Nothing may panic; a datagram cut inside its
/// body must be an error; whatever decodes must re-encode to something that decodes the same.
#[test]
fn mutation_fuzz_never_panics() {
    use rand::{RngExt, SeedableRng};

    let corpus: Vec<Vec<u8>> = examples().into_iter().map(|e| e.payload).collect();
    let pcap_bytes = std::fs::read(vectors().join("pcap/t6c_keyspaces.pcap")).unwrap();
    let keys_all = keys(
        1,
        &[
            (1, AuthMethod::Sha1, "testkey"),
            (2, AuthMethod::Md5, "k"),
            (3, AuthMethod::Crc, ""),
        ],
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0694);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut cases, mut decoded, mut errors) = (0u64, 0u64, 0u64);
    while cases < 200_000 && Instant::now() < deadline {
        cases += 1;
        let mut bytes = corpus[rng.random_range(0..corpus.len())].clone();
        let mut must_fail = false;
        for _ in 0..rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            // Only a cut that is the last mutation is sure to break the message.
            must_fail = false;
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..6) {
                0 => bytes[at] ^= 1 << rng.random_range(0..8),
                1 => bytes[at] = b"0123456789:,()=#%>\n\0"[rng.random_range(0..20)],
                2 => {
                    // Cut inside the netstring body: never a message.
                    let body = bytes.windows(4).position(|w| w == b"%%%\n");
                    must_fail |= body.is_some_and(|end| at < end + 3);
                    bytes.truncate(at);
                }
                3 => {
                    // Rewrite a length prefix to a random, possibly huge, number.
                    let colon = bytes[at..].iter().position(|&b| b == b':').map(|p| p + at);
                    if let Some(colon) = colon {
                        let start = bytes[..colon]
                            .iter()
                            .rposition(|b| !b.is_ascii_digit())
                            .map_or(0, |p| p + 1);
                        let n: u64 = match rng.random_range(0..3) {
                            0 => rng.random_range(0..400),
                            1 => rng.random_range(0..10_000_000),
                            _ => u64::MAX,
                        };
                        bytes.splice(start..colon, n.to_string().into_bytes());
                    }
                }
                4 => {
                    let other = &corpus[rng.random_range(0..corpus.len())];
                    let from = rng.random_range(0..other.len());
                    bytes.truncate(at);
                    bytes.extend_from_slice(&other[from..]);
                }
                _ => {
                    let extra = rng.random_range(0..64);
                    bytes.splice(at..at, std::iter::repeat_n(b'(', extra));
                }
            }
        }
        match wire::decode(&bytes) {
            Ok(d) => {
                assert!(!must_fail, "cut body decoded: {}", wire::escape(&bytes));
                decoded += 1;
                let _ = auth::verify(&d, &keys_all);
                let _ = auth::verify_inner(&d.message, &keys_all);
                let again = d.encode().expect("a decoded datagram encodes");
                assert_eq!(wire::decode(&again).unwrap().message, d.message);
            }
            Err(_) => errors += 1,
        }
        if cases % 64 == 0 {
            let mut p = pcap_bytes.clone();
            let at = rng.random_range(0..p.len());
            p[at] ^= 1 << rng.random_range(0..8);
            p.truncate(rng.random_range(at..=p.len()));
            let _ = decode_capture(&p, &keys_all).map(|c| c.to_string());
        }
    }
    assert!(cases >= 1_000, "only {cases} cases in the time budget");
    assert!(
        errors > 0 && decoded > 0,
        "{decoded} decoded, {errors} errors"
    );
}

/// The protocol core fed a real Heartbeat 3.0.6 node's datagrams, as they were captured, with
/// their own timing: in `s10_afon_failback` nodea holds its group when nodeb starts, later
/// stops, restarts and stops again. Played as nodeb, the core accepts every datagram (no
/// signature, sequence or replay drop), follows each of nodea's transitions, and takes the
/// group exactly when nodea has left it.
#[test]
fn a_core_follows_a_real_3_0_6_peer() {
    use hadeploy::agent::core::{Config, Effect, Identity, Node, Work};
    use hadeploy::agent::membership::{NodeStatus, Timers};
    use hadeploy::agent::resources::Group;
    use hadeploy::config::ha::AutoFailback;

    let datagrams = capture("s10_afon_failback");
    let ours = [10, 250, 0, 2];
    // nodeb starts where the real one did: its first datagram.
    let start_at = datagrams
        .iter()
        .find(|d| d.src.ip().octets() == ours)
        .expect("nodeb speaks in s10")
        .timestamp;
    let from_nodea: Vec<_> = datagrams
        .iter()
        .filter(|d| d.src.ip().octets() == NODEA && d.timestamp >= start_at)
        .collect();
    assert!(from_nodea.len() > 20, "{}", from_nodea.len());
    let config = Config {
        node: "nodeb".into(),
        nodes: vec!["nodea".into(), "nodeb".into()],
        timers: Timers {
            keepalive: Duration::from_secs(1),
            warntime: Duration::from_secs(3),
            deadtime: Duration::from_secs(5),
            initdead: Duration::from_secs(10),
        },
        keys: sha1(),
        msgfmt: MsgFormat::Netstring,
        hopfudge: 1,
        resource_check: None,
        groups: vec![Group {
            name: "IPaddr::10.250.0.100/24/eth1".into(),
            home: "nodea".into(),
        }],
        failback: AutoFailback::On,
    };
    let identity = Identity {
        uuid: [2; 16],
        generation: 1,
        unix_ms: start_at.as_millis() as u64,
        seed: 7,
    };
    let base = Instant::now();
    let mut node = Node::new(config, identity, base);
    let mut effects = node.take_effects();
    for d in &from_nodea {
        let now = base + (d.timestamp - start_at);
        while node.poll_timeout() <= now {
            let due = node.poll_timeout();
            node.handle_timeout(due);
        }
        node.handle_datagram(now, "eth1", std::net::SocketAddr::V4(d.src), &d.payload);
        effects.extend(node.take_effects());
    }
    let counters = node.counters();
    assert_eq!(counters.packets_in, from_nodea.len() as u64);
    assert_eq!(
        (
            counters.bad_auth,
            counters.bad_packets,
            counters.unknown_node,
            counters.replays
        ),
        (0, 0, 0, 0),
        "{counters:?}"
    );
    // nodea, in order: comes up active; leaves (shutdone) — we take its group then, and only
    // then; comes back as a new generation; leaves again, and its trailing `st=active`
    // statuses (the capture's last datagrams) do not revive it.
    let events: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log { text, .. } => Some(text.clone()),
            Effect::Work(Work::Acquire(_)) => Some("ACQUIRE".into()),
            _ => None,
        })
        .collect();
    let at = |what: &str| events.iter().position(|e| e.contains(what));
    let active = at("nodea: up → active").expect("nodea seen active");
    let left = at("active → dead (shutdown notice)").expect("nodea's shutdone honoured");
    let took = at("ACQUIRE").expect("its group taken when it left");
    let back = at("restarted: new generation").expect("its restart seen");
    assert!(active < left && left < took && took < back, "{events:#?}");
    assert_eq!(
        events.iter().filter(|e| *e == "ACQUIRE").count(),
        1,
        "{events:#?}"
    );
    assert_eq!(
        node.membership().status("nodea"),
        Some(NodeStatus::Dead),
        "{events:#?}"
    );
    // What it sent verifies with the same keys, as a 3.0.6 receiver would check it.
    let sent: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Transmit(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    assert!(sent.len() > 10);
    for bytes in sent {
        let d = wire::decode(bytes).unwrap();
        assert!(auth::verify(&d, &sha1()).is_ok());
    }
}
