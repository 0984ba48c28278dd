//! The agent's control socket: a Unix socket only root may use (0600 in a 0700 directory, and
//! the peer's uid checked with SO_PEERCRED), speaking one request line and one JSON answer
//! line. `hadeploy-agent status`, `standby`, `takeover` and `reload` are clients of it.
//!
//! The answers are a typed contract shared by the daemon (which builds them), the agent's CLI,
//! the drill and the tests (which read them): [`StatusAnswer`] for `status`, [`ControlAnswer`]
//! for `standby`, `takeover` and `reload`. Readers tolerate fields they do not know (a newer agent) and
//! diagnostic fields that are missing (an older one), so an agent and a controller of
//! different versions still understand each other — as they must while `apply` replaces the
//! binary under a running daemon.
//!
//! The JSON is byte for byte what the agent wrote when it built a `serde_json::Value`, whose
//! objects are sorted by key: that is why every struct here declares its fields in
//! alphabetical order. Readers must not depend on the order.

use std::fmt;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub const DEFAULT_PATH: &str = "/run/hadeploy-agent/control.sock";

/// Requests are tiny; anything longer is not a client of ours.
const MAX_REQUEST: usize = 256;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client sends: one word and a newline ([`Request::as_str`], [`Request::parse`]).
/// Its serde form is the same word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    Status,
    Standby,
    Takeover,
    /// Read the configuration again and apply what can change live (`agent::reload`).
    Reload,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Standby => "standby",
            Request::Takeover => "takeover",
            Request::Reload => "reload",
        }
    }

    pub fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "status" => Some(Request::Status),
            "standby" => Some(Request::Standby),
            "takeover" => Some(Request::Takeover),
            "reload" => Some(Request::Reload),
            _ => None,
        }
    }
}

/// The answer to `status`. Status words are kept as the agent wrote them, so a word a newer
/// agent adds is shown rather than refused: node statuses `unknown`, `init`, `up`, `active`,
/// `dead`; link statuses `up`, `dead`; `rscstatus` `none`, `local`, `foreign`, `all`,
/// `transition`.
///
/// Required: what readers decide on (who this is, its generation, membership, what it holds).
/// Defaulted when absent: the diagnostics (uptime, links, media, counters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAnswer {
    /// Whether communication is up (the first keepalive round is over).
    pub comm_up: bool,
    /// The digest of the configuration this agent loaded (`setup::config_digest`); empty from
    /// an agent too old to say.
    #[serde(default)]
    pub config_digest: String,
    /// When that configuration was loaded (start-up or the last reload), ms since the epoch.
    #[serde(default)]
    pub config_loaded_unix_ms: u64,
    #[serde(default)]
    pub counters: Counters,
    /// Groups this node released whose VIPs are gone but whose listeners are still stopping
    /// (a graceful stop can take the service's own stop timeout): not held, not settled yet.
    #[serde(default)]
    pub draining: Vec<String>,
    /// This agent's generation (bumped at every start).
    pub generation: u64,
    /// Every configured resource group, held or not, in haresources order.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Each peer's heartbeat intervals while it was alive, since this agent started.
    #[serde(default)]
    pub heartbeats: Vec<HeartbeatView>,
    /// The authkeys entries this agent accepts, by index and method (never the secrets), and
    /// which one it signs with.
    #[serde(default)]
    pub keys: Vec<KeyView>,
    /// The last time this node decided to take or give up groups, and why.
    #[serde(default)]
    pub last_transition: Option<TransitionView>,
    /// Per peer and interface, whether heartbeats arrive on it.
    #[serde(default)]
    pub links: Vec<LinkView>,
    /// The interfaces this agent sends on, each once, in ha.cf order.
    #[serde(default)]
    pub media: Vec<String>,
    /// This node's name, lower-case.
    pub node: String,
    /// Every configured node, this one included, in ha.cf order.
    pub nodes: Vec<NodeView>,
    /// The groups this node holds now.
    pub resources: Vec<HeldGroup>,
    /// The `rscstatus` word a peer would be told.
    pub rscstatus: String,
    /// The digest of the configuration without ha.cf's ucast lines: the same on every node of
    /// a cluster whose files agree; empty from an older agent.
    #[serde(default)]
    pub shared_config_digest: String,
    /// The ha.cf timers in force (a reload changes them).
    #[serde(default)]
    pub timers: TimersView,
    /// Hand-offs this node decided since it started: every (kind, reason) pair, zeros included.
    #[serde(default)]
    pub transitions: Vec<TransitionCount>,
    #[serde(default)]
    pub uptime_ms: u64,
    /// Every configured VIP: whether this node holds its group, and whether the address is on
    /// one of this node's interfaces (checked beside the lifetime refresh) — a held VIP not in
    /// the kernel serves nobody, and one present but not held is somebody else's.
    #[serde(default)]
    pub vips: Vec<VipView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipView {
    pub address: String,
    pub group: String,
    pub held: bool,
    /// `None` until the first check.
    pub present: Option<bool>,
}

/// One peer's heartbeat intervals, as `membership::Gaps`. Fields in key order, as in every
/// struct of the answer: the line stays the one a `serde_json::Value` would print.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatView {
    /// Intervals per bucket of `membership::GAP_BUCKETS_MS`, then those above the last bound.
    pub interval_counts: Vec<u64>,
    pub interval_sum_ms: u64,
    /// Intervals longer than warntime.
    pub late: u64,
    pub longest_gap_ms: u64,
    pub node: String,
}

/// One authkeys entry the agent holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    pub index: u8,
    /// `crc`, `md5` or `sha1`.
    pub method: String,
    /// Authenticated datagrams received that this entry verified.
    #[serde(default)]
    pub packets_in: u64,
    /// Outgoing messages are signed with this one (`auth N`).
    pub signs: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimersView {
    pub deadtime_ms: u64,
    pub initdead_ms: u64,
    pub keepalive_ms: u64,
    pub warntime_ms: u64,
}

/// A decision to take (`acquire`) or give up (`release`) groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionView {
    pub at_unix_ms: u64,
    /// The sentence the agent's log said.
    pub detail: String,
    pub groups: Vec<String>,
    /// `acquire` or `release`.
    pub kind: String,
    /// One of `resources::Why::LABELS`.
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCount {
    pub count: u64,
    pub kind: String,
    pub reason: String,
}

/// One configured node as the answering agent sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    /// Whether this is the answering node itself.
    #[serde(rename = "self", default)]
    pub self_: bool,
    pub status: String,
}

/// One (peer, interface) pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// The interface.
    pub link: String,
    /// The peer.
    pub node: String,
    pub status: String,
}

/// A haresources group this node holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldGroup {
    /// The group's name (its first resource).
    pub group: String,
    /// Its preferred node.
    #[serde(default)]
    pub home: String,
    /// When this node finished starting it; `null` while it is being started.
    pub since_unix_ms: Option<u64>,
}

/// Counters `status` reports. A counter missing from an answer (an older agent) reads 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub bad_auth: u64,
    pub bad_packets: u64,
    pub duplicates: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub replays: u64,
    pub rexmit_requested: u64,
    pub rexmit_sent: u64,
    pub unknown_node: u64,
}

impl StatusAnswer {
    /// Parses a `status` answer (`hadeploy-agent status --json`'s output); surrounding
    /// whitespace is ignored.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text.trim())
    }

    /// The node `name` as this agent sees it.
    pub fn node_view(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// The answer as it travels: one line of JSON.
impl fmt::Display for StatusAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

/// The answer to `standby`, `takeover` and `reload`: `{"ok":true}` (a reload's with its
/// `changes`), or `{"error":"why","ok":false}`.
/// The daemon's refusal of a peer that is not root, `{"error":"permission denied"}`, reads as a
/// refusal too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAnswer {
    /// What a reload changed, one sentence each (absent when nothing did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub ok: bool,
}

impl ControlAnswer {
    /// The request was accepted.
    pub fn ok() -> Self {
        ControlAnswer {
            ok: true,
            ..Default::default()
        }
    }

    /// The request was refused, and why.
    pub fn refused(why: impl Into<String>) -> Self {
        ControlAnswer {
            error: Some(why.into()),
            ..Default::default()
        }
    }
}

/// Any answer the daemon sends: what its protocol loop hands to the connection's task.
/// Serialized as the inner answer, with no tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Status(Box<StatusAnswer>),
    Control(ControlAnswer),
}

impl From<StatusAnswer> for Answer {
    fn from(status: StatusAnswer) -> Self {
        Answer::Status(Box::new(status))
    }
}

impl From<ControlAnswer> for Answer {
    fn from(answer: ControlAnswer) -> Self {
        Answer::Control(answer)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {path}: no answer within {timeout:?}")]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("control socket {path}: the agent closed the connection without answering")]
    NoAnswer { path: PathBuf },
    /// The agent answered with an error instead of what was asked (`permission denied`).
    #[error("control socket {path}: refused: {error}")]
    Refused { path: PathBuf, error: String },
    #[error("control socket {path}: not an answer to `{request}`: {source}: {line}")]
    BadAnswer {
        path: PathBuf,
        request: &'static str,
        line: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Binds the socket: directory 0700, stale socket removed, socket 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Reads one request from an accepted connection, refusing peers that are not our own uid
/// (root in production) before reading anything.
pub async fn read_request(stream: &mut UnixStream) -> Option<Request> {
    let uid = stream.peer_cred().ok()?.uid();
    // The 0600 mode already keeps others out; the credential check also covers a socket whose
    // mode an operator loosened by hand.
    if uid != current_uid() {
        let _ = stream
            .write_all(b"{\"error\":\"permission denied\"}\n")
            .await;
        return None;
    }
    let mut reader = BufReader::new(stream.take(MAX_REQUEST as u64));
    let mut line = String::new();
    tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    Request::parse(&line)
}

/// Writes one JSON answer line: any answer of the contract ([`Answer`], [`StatusAnswer`],
/// [`ControlAnswer`]).
pub async fn answer(stream: &mut UnixStream, answer: &impl Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_string(answer).map_err(std::io::Error::other)?;
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

/// The client side: send one request, return the agent's answer line as it came (without its
/// newline) — what `status --json` prints, unknown fields included.
pub async fn request_line(path: &Path, request: Request) -> Result<String, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.map_err(io)?;
        stream
            .write_all(format!("{}\n", request.as_str()).as_bytes())
            .await
            .map_err(io)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(io)?;
        let line = line.trim();
        if line.is_empty() {
            return Err(ControlError::NoAnswer {
                path: path.to_path_buf(),
            });
        }
        Ok(line.to_string())
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            path: path.to_path_buf(),
            timeout: CLIENT_TIMEOUT,
        })?
}

/// The client side: send one request, return the agent's answer as the type that answers it
/// ([`StatusAnswer`] for `status`, [`ControlAnswer`] for the others).
pub async fn request<T: DeserializeOwned>(
    path: &Path,
    request: Request,
) -> Result<T, ControlError> {
    let line = request_line(path, request).await?;
    parse_answer(path, request, &line)
}

/// Reads an answer line as `T`. A line that is not a `T` but an error (`{"error":"…"}`, how
/// the agent refuses a peer that is not root) is [`ControlError::Refused`].
pub fn parse_answer<T: DeserializeOwned>(
    path: &Path,
    request: Request,
    line: &str,
) -> Result<T, ControlError> {
    serde_json::from_str(line).map_err(|source| match serde_json::from_str::<ControlAnswer>(line) {
        Ok(ControlAnswer {
            error: Some(error),
            ok: false,
            ..
        }) => ControlError::Refused {
            path: path.to_path_buf(),
            error,
        },
        _ => ControlError::BadAnswer {
            path: path.to_path_buf(),
            request: request.as_str(),
            line: line.to_string(),
            source,
        },
    })
}

/// The uid of this process, read from /proc so no unsafe libc call is needed.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn root_only_socket_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/control.sock");
        let listener = bind(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let reply: Answer = match read_request(&mut stream).await {
                    Some(Request::Status) => sample().into(),
                    Some(other) => ControlAnswer::refused(other.as_str()).into(),
                    None => ControlAnswer::refused("no request").into(),
                };
                answer(&mut stream, &reply).await.unwrap();
            }
        });
        let reply: ControlAnswer = request(&path, Request::Standby).await.unwrap();
        assert_eq!(reply, ControlAnswer::refused("standby"));
        let status: StatusAnswer = request(&path, Request::Status).await.unwrap();
        assert_eq!(status, sample());
        server.await.unwrap();
        // A second bind replaces the stale socket instead of failing.
        drop(bind(&path).unwrap());
    }

    #[tokio::test]
    async fn garbage_and_oversized_requests_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let listener = bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                results.push(read_request(&mut stream).await);
            }
            results
        });
        for payload in ["reboot now\n".to_string(), "x".repeat(10_000)] {
            let mut s = UnixStream::connect(&path).await.unwrap();
            s.write_all(payload.as_bytes()).await.unwrap();
            s.shutdown().await.unwrap();
        }
        assert_eq!(server.await.unwrap(), [None, None]);
    }

    #[test]
    fn requests_parse() {
        assert_eq!(Request::parse("status\n"), Some(Request::Status));
        assert_eq!(Request::parse(" takeover "), Some(Request::Takeover));
        assert_eq!(Request::parse("reload\n"), Some(Request::Reload));
        assert_eq!(Request::parse("rm -rf"), None);
    }

    /// A two-node answer with every field filled in.
    fn sample() -> StatusAnswer {
        StatusAnswer {
            comm_up: true,
            config_digest: "0123456789abcdef0123456789abcdef01234567".into(),
            config_loaded_unix_ms: 1_700_000_000_000,
            keys: vec![KeyView {
                index: 1,
                method: "sha1".into(),
                packets_in: 118,
                signs: true,
            }],
            timers: TimersView {
                deadtime_ms: 1000,
                initdead_ms: 3000,
                keepalive_ms: 200,
                warntime_ms: 500,
            },
            counters: Counters {
                bad_auth: 1,
                packets_in: 120,
                packets_out: 118,
                ..Counters::default()
            },
            draining: vec!["192.168.1.20".into()],
            generation: 7,
            groups: vec!["192.168.1.10".into(), "nginx".into()],
            heartbeats: vec![HeartbeatView {
                node: "node2".into(),
                longest_gap_ms: 1200,
                late: 1,
                interval_counts: vec![0, 0, 40, 2, 0, 0, 1, 0, 0, 0, 0],
                interval_sum_ms: 9000,
            }],
            last_transition: Some(TransitionView {
                groups: vec!["192.168.1.10".into()],
                kind: "acquire".into(),
                reason: "unheld".into(),
                detail: "nobody holds them".into(),
                at_unix_ms: 1_700_000_000_000,
            }),
            transitions: vec![TransitionCount {
                kind: "acquire".into(),
                reason: "unheld".into(),
                count: 1,
            }],
            links: vec![LinkView {
                link: "eth1".into(),
                node: "node2".into(),
                status: "up".into(),
            }],
            media: vec!["eth1".into()],
            node: "node1".into(),
            nodes: vec![
                NodeView {
                    name: "node1".into(),
                    self_: true,
                    status: "active".into(),
                },
                NodeView {
                    name: "node2".into(),
                    self_: false,
                    status: "dead".into(),
                },
            ],
            resources: vec![
                HeldGroup {
                    group: "192.168.1.10".into(),
                    home: "node1".into(),
                    since_unix_ms: Some(1_700_000_000_000),
                },
                HeldGroup {
                    group: "nginx".into(),
                    home: "node2".into(),
                    since_unix_ms: None,
                },
            ],
            rscstatus: "local".into(),
            shared_config_digest: "89abcdef0123456789abcdef0123456789abcdef".into(),
            uptime_ms: 5_000,
            vips: vec![VipView {
                address: "192.168.1.10".into(),
                group: "192.168.1.10".into(),
                held: true,
                present: Some(true),
            }],
        }
    }

    #[test]
    fn status_answer_round_trips() {
        let status = sample();
        let text = status.to_string();
        assert_eq!(
            StatusAnswer::from_json(&format!("{text}\n")).unwrap(),
            status
        );
        assert_eq!(serde_json::to_string(&Answer::from(status)).unwrap(), text);
    }

    /// The bytes are those the agent wrote when it built the answer as a `serde_json::Value`
    /// (objects sorted by key), so old and new binaries print and read the same line.
    #[test]
    fn status_answer_is_the_json_the_agent_always_wrote() {
        let before = serde_json::json!({
            "node": "node1",
            "generation": 7,
            "uptime_ms": 5000,
            "comm_up": true,
            "config_digest": "0123456789abcdef0123456789abcdef01234567",
            "nodes": [
                {"name": "node1", "status": "active", "self": true},
                {"name": "node2", "status": "dead", "self": false},
            ],
            "links": [{"node": "node2", "link": "eth1", "status": "up"}],
            "media": ["eth1"],
            "rscstatus": "local",
            "shared_config_digest": "89abcdef0123456789abcdef0123456789abcdef",
            "resources": [
                {"group": "192.168.1.10", "home": "node1", "since_unix_ms": 1_700_000_000_000u64},
                {"group": "nginx", "home": "node2", "since_unix_ms": null},
            ],
            "counters": {
                "packets_in": 120, "packets_out": 118, "bad_packets": 0, "bad_auth": 1,
                "unknown_node": 0, "replays": 0, "duplicates": 0, "rexmit_requested": 0,
                "rexmit_sent": 0,
            },
            "draining": ["192.168.1.20"],
            "groups": ["192.168.1.10", "nginx"],
            "heartbeats": [{"node": "node2", "longest_gap_ms": 1200, "late": 1,
                "interval_counts": [0, 0, 40, 2, 0, 0, 1, 0, 0, 0, 0], "interval_sum_ms": 9000}],
            "last_transition": {"groups": ["192.168.1.10"], "kind": "acquire", "reason": "unheld",
                "detail": "nobody holds them", "at_unix_ms": 1_700_000_000_000u64},
            "transitions": [{"kind": "acquire", "reason": "unheld", "count": 1}],
            "config_loaded_unix_ms": 1_700_000_000_000u64,
            "keys": [{"index": 1, "method": "sha1", "packets_in": 118, "signs": true}],
            "vips": [{"address": "192.168.1.10", "group": "192.168.1.10", "held": true,
                "present": true}],
            "timers": {"keepalive_ms": 200, "warntime_ms": 500, "deadtime_ms": 1000,
                "initdead_ms": 3000},
        });
        assert_eq!(sample().to_string(), before.to_string());
    }

    /// The keys the drill, the tests and `status_table` read, and no others.
    #[test]
    fn status_answer_keys_are_the_contract() {
        let json = serde_json::to_value(sample()).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(
            keys(&json),
            [
                "comm_up",
                "config_digest",
                "config_loaded_unix_ms",
                "counters",
                "draining",
                "generation",
                "groups",
                "heartbeats",
                "keys",
                "last_transition",
                "links",
                "media",
                "node",
                "nodes",
                "resources",
                "rscstatus",
                "shared_config_digest",
                "timers",
                "transitions",
                "uptime_ms",
                "vips"
            ]
        );
        assert_eq!(
            keys(&json["keys"][0]),
            ["index", "method", "packets_in", "signs"]
        );
        assert_eq!(
            keys(&json["vips"][0]),
            ["address", "group", "held", "present"]
        );
        assert_eq!(keys(&json["nodes"][0]), ["name", "self", "status"]);
        assert_eq!(json["nodes"][1]["status"], "dead");
        assert_eq!(json["nodes"][0]["self"], true);
        assert_eq!(keys(&json["links"][0]), ["link", "node", "status"]);
        assert_eq!(
            keys(&json["resources"][0]),
            ["group", "home", "since_unix_ms"]
        );
        assert!(json["resources"][1]["since_unix_ms"].is_null());
        assert!(json["resources"][0]["since_unix_ms"].as_u64().unwrap() > 0);
        assert_eq!(
            keys(&json["counters"]),
            [
                "bad_auth",
                "bad_packets",
                "duplicates",
                "packets_in",
                "packets_out",
                "replays",
                "rexmit_requested",
                "rexmit_sent",
                "unknown_node"
            ]
        );
        assert_eq!(json["counters"]["bad_auth"].as_u64(), Some(1));
    }

    /// An older agent without the diagnostic fields, and a newer one with fields this reader
    /// does not know: both parse.
    #[test]
    fn status_answer_tolerates_older_and_newer_agents() {
        let older = r#"{"comm_up":false,"generation":3,"node":"node2",
            "nodes":[{"name":"node1","status":"up"},{"name":"node2","status":"init","self":true}],
            "resources":[{"group":"nginx"}],"rscstatus":"none",
            "counters":{"packets_in":4}}"#;
        let status = StatusAnswer::from_json(older).unwrap();
        assert_eq!(status.uptime_ms, 0);
        assert!(status.links.is_empty() && status.media.is_empty());
        assert!(!status.node_view("node1").unwrap().self_);
        assert!(status.node_view("node2").unwrap().self_);
        assert_eq!(status.resources[0].since_unix_ms, None);
        assert_eq!(status.resources[0].home, "");
        assert_eq!(status.counters.packets_in, 4);
        assert_eq!(status.counters.rexmit_sent, 0);

        let newer = r#"{"comm_up":true,"generation":9,"node":"node1","quorum":true,
            "nodes":[{"name":"node1","status":"active","self":true,"weight":2}],
            "links":[{"node":"node2","link":"eth1","status":"up","rtt_ms":0.4}],
            "resources":[{"group":"nginx","home":"node1","since_unix_ms":1,"checks":3}],
            "rscstatus":"all","uptime_ms":1,"media":["eth1"],
            "counters":{"bad_auth":2,"rexmit_capped":5}}"#;
        let status = StatusAnswer::from_json(newer).unwrap();
        assert_eq!(status.nodes[0].status, "active");
        assert_eq!(status.links[0].status, "up");
        assert_eq!(status.resources[0].since_unix_ms, Some(1));
        assert_eq!(status.counters.bad_auth, 2);
    }

    /// What readers decide on is required: an error or another answer is not a status.
    #[test]
    fn an_error_is_not_a_status() {
        for line in [r#"{"error":"permission denied"}"#, r#"{"ok":true}"#, "{}"] {
            assert!(StatusAnswer::from_json(line).is_err(), "{line}");
        }
        let path = Path::new("/run/x.sock");
        let denied =
            parse_answer::<StatusAnswer>(path, Request::Status, r#"{"error":"permission denied"}"#);
        assert!(
            matches!(&denied, Err(ControlError::Refused { error, .. }) if error == "permission denied"),
            "{denied:?}"
        );
        let garbage = parse_answer::<StatusAnswer>(path, Request::Status, "not json");
        assert!(
            matches!(garbage, Err(ControlError::BadAnswer { .. })),
            "{garbage:?}"
        );
    }

    #[test]
    fn control_answers_are_the_json_the_agent_always_wrote() {
        let ok = serde_json::to_string(&Answer::from(ControlAnswer::ok())).unwrap();
        assert_eq!(ok, serde_json::json!({"ok": true}).to_string());
        let refused = serde_json::to_string(&ControlAnswer::refused("nothing is held")).unwrap();
        assert_eq!(
            refused,
            serde_json::json!({"ok": false, "error": "nothing is held"}).to_string()
        );
        for line in [ok, refused] {
            let parsed: ControlAnswer = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::to_string(&parsed).unwrap(), line);
        }
        // How the agent turns away a peer that is not root; a newer agent's extra field.
        let denied: ControlAnswer =
            serde_json::from_str(r#"{"error":"permission denied"}"#).unwrap();
        assert_eq!(denied, ControlAnswer::refused("permission denied"));
        let newer: ControlAnswer = serde_json::from_str(r#"{"ok":true,"queued":1}"#).unwrap();
        assert_eq!(newer, ControlAnswer::ok());
    }

    #[test]
    fn requests_serialize_as_their_word() {
        for r in [Request::Status, Request::Standby, Request::Takeover] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(Request::parse(&format!("{}\n", r.as_str())), Some(r));
        }
    }
}
