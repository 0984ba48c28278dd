//! `hadeploy rotate-key`: a new authkeys secret on every node of a cluster with no moment in
//! which two nodes cannot verify each other. The pure half says which authkeys each node holds
//! at each stage and where a node stands (`stage_of`); the I/O half walks the stages one node
//! at a time, reloading each agent in place and confirming after each step that every agent
//! still sees every node active and that no signature failed.
//!
//! The stages, from the rendered file (`auth 1`, `1 OLD`) back to the rendered file with the
//! new secret (`auth 1`, `1 NEW`):
//!
//! | stage | authkeys | why it is safe next to the stage before |
//! |---|---|---|
//! | 1 | `auth 1`, `1 OLD`, `2 NEW` | still signs with 1, which everybody holds |
//! | 2 | `auth 2`, `1 OLD`, `2 NEW` | stage-1 peers hold 2 = NEW (agents accept an entry's own key) |
//! | 3 | `auth 2`, `1 NEW`, `2 NEW` | nobody signs with 1 any more; 2 is unchanged |
//! | 4 | `auth 1`, `1 NEW`, `2 NEW` | stage-3 peers hold 1 = NEW |
//! | 5 | `auth 1`, `1 NEW` | nobody signs with 2 any more: this is what `apply` renders |
//!
//! The new secret is kept beside the old one (`SECRET.next`, 0600) from before stage 1 until
//! stage 4 is complete everywhere, then replaces it, and `apply` writes stage 5 (and the
//! manifest) as it renders it; so an interrupted rotation is resumed by running it again,
//! from where the nodes stand. 3.0.6 checks a netstring trailer with its own *active* key
//! (docs/protocol.md §2.5), so a real Heartbeat node could not follow stage 2: the rotation
//! refuses a cluster whose nodes do not all answer as agents.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::agent::control::StatusAnswer;
use crate::config::ha::AuthMethod;
use crate::config::heartbeat::authkeys::{self, AuthKeys};
use crate::config::inventory::{Cluster, SecretSource};
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::{Transport, Upload};

/// The last stage this module writes itself; stage 5 is `apply`'s rendered file.
pub const LAST_STAGE: usize = 5;

/// What a node's authkeys holds at `stage` (1..=4), written with the header `apply` uses.
pub fn stage_text(cluster: &str, stage: usize, old: &Key, new: &Key) -> String {
    let (signs, one, two): (u8, &Key, Option<&Key>) = match stage {
        1 => (1, old, Some(new)),
        2 => (2, old, Some(new)),
        3 => (2, new, Some(new)),
        4 => (1, new, Some(new)),
        _ => (1, new, None),
    };
    let mut text = format!(
        "# /etc/ha.d/authkeys — cluster {cluster}\n# Written by hadeploy rotate-key (stage {stage} of {LAST_STAGE}); mode 0600.\nauth {signs}\n"
    );
    text.push_str(&one.line(1));
    if let Some(two) = two {
        text.push_str(&two.line(2));
    }
    text
}

/// One secret and the method it is used with (crc has none).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub method: AuthMethod,
    pub secret: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, <redacted>)", self.method.name())
    }
}

impl Key {
    fn line(&self, index: u8) -> String {
        match self.method {
            AuthMethod::Crc => format!("{index} crc\n"),
            m => format!("{index} {} {}\n", m.name(), self.secret),
        }
    }

    fn matches(&self, entry: Option<&authkeys::AuthKey>) -> bool {
        entry.is_some_and(|e| {
            e.method == self.method && (self.method == AuthMethod::Crc || e.secret == self.secret)
        })
    }
}

/// Where a node's authkeys stands: stage 0 (the old key alone) to 5 (the new key alone), or
/// `None` when it is none of them (edited by hand: `apply` first).
pub fn stage_of(keys: &AuthKeys, old: Option<&Key>, new: &Key) -> Option<usize> {
    let only = |k: &Key| keys.active == 1 && keys.keys.len() == 1 && k.matches(keys.get(1));
    let pair = |one: &Key, signs: u8| {
        keys.active == signs
            && keys.keys.len() == 2
            && one.matches(keys.get(1))
            && new.matches(keys.get(2))
    };
    if only(new) {
        return Some(LAST_STAGE);
    }
    if pair(new, 1) {
        return Some(4);
    }
    if pair(new, 2) {
        return Some(3);
    }
    let old = old?;
    if pair(old, 2) {
        Some(2)
    } else if pair(old, 1) {
        Some(1)
    } else if only(old) {
        Some(0)
    } else {
        None
    }
}

/// Why a rotation did not start or did not finish. Every message names the node and the step;
/// none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    NotHealthy(String),
    #[error("{0}")]
    Failed(String),
}

/// One step done: which stage reached which node, and how long until every agent confirmed.
#[derive(Clone, Debug)]
pub struct StepDone {
    pub stage: usize,
    pub node: String,
    pub took: Duration,
}

/// The secrets file and its `.next` beside it.
fn secret_paths(cluster: &Cluster) -> Result<(PathBuf, PathBuf), RotateError> {
    match &cluster.secret {
        SecretSource::File(path) => {
            let mut next = path.clone().into_os_string();
            next.push(".next");
            Ok((path.clone(), PathBuf::from(next)))
        }
        SecretSource::Env(var) => Err(RotateError::Input(format!(
            "cluster `{}`: its secret comes from ${var}; a rotation needs a secrets file it can keep both keys in (ha_auth_secret_file)",
            cluster.name
        ))),
        SecretSource::None => Err(RotateError::Input(format!(
            "cluster `{}`: ha_auth is crc, which has no secret; set ha_auth: sha1 and rotate to move it to a keyed method",
            cluster.name
        ))),
    }
}

fn read_secret(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim_end_matches(['\n', '\r']).to_string())
        .filter(|s| !s.is_empty())
}

struct Member {
    name: String,
    transport: SshTransport,
}

const AUTHKEYS: &str = "/etc/ha.d/authkeys";
const AGENT: &str = crate::controller::probe::AGENT_PATH;

async fn run(member: &Member, script: &str, stdin: Option<&[u8]>) -> Result<String, RotateError> {
    let out = member
        .transport
        .run(script, stdin)
        .await
        .map_err(|e| RotateError::Unreachable(format!("{}: {e}", member.name)))?;
    if out.success() {
        Ok(out.stdout_text())
    } else {
        Err(RotateError::Failed(format!(
            "{}: `{}` failed: {}",
            member.name,
            script
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            out.stderr_text().trim()
        )))
    }
}

async fn status(member: &Member) -> Result<StatusAnswer, RotateError> {
    let text = run(member, &format!("{AGENT} status --json"), None).await?;
    StatusAnswer::from_json(&text)
        .map_err(|e| RotateError::NotHealthy(format!("{}: the agent's status: {e}", member.name)))
}

async fn authkeys_of(member: &Member) -> Result<AuthKeys, RotateError> {
    let text = run(member, &format!("cat {AUTHKEYS}"), None).await?;
    authkeys::parse(&text, Path::new(AUTHKEYS)).map_err(|e| {
        RotateError::NotHealthy(format!(
            "{}: {AUTHKEYS} does not parse (line {}); run hadeploy apply first",
            member.name, e.at.line
        ))
    })
}

/// Healthy enough to rotate: every agent answers, sees every node active, and runs the
/// configuration on its disk.
fn unhealthy(statuses: &[(String, StatusAnswer)]) -> Option<String> {
    for (name, s) in statuses {
        if let Some(n) = s.nodes.iter().find(|n| n.status != "active") {
            return Some(format!("{name} sees {} as {}", n.name, n.status));
        }
    }
    None
}

/// Waits until every agent has heard from every peer since `since` with no signature
/// failure beyond `bad_auth` (per node), all nodes active; bounded by `limit`.
async fn confirm(
    members: &[Member],
    before: &[StatusAnswer],
    limit: Duration,
) -> Result<Vec<StatusAnswer>, RotateError> {
    let began = Instant::now();
    loop {
        let mut now = Vec::new();
        for m in members {
            now.push(status(m).await?);
        }
        for ((m, was), is) in members.iter().zip(before).zip(&now) {
            if is.counters.bad_auth > was.counters.bad_auth {
                return Err(RotateError::Failed(format!(
                    "{}: {} signature(s) failed since the step; the rotation stopped here",
                    m.name,
                    is.counters.bad_auth - was.counters.bad_auth
                )));
            }
        }
        let peers = members.len().saturating_sub(1) as u64;
        let heard = before
            .iter()
            .zip(&now)
            .all(|(was, is)| is.counters.packets_in >= was.counters.packets_in + 3 * peers);
        let active = now
            .iter()
            .all(|s| s.nodes.iter().all(|n| n.status == "active"));
        if heard && active {
            return Ok(now);
        }
        if began.elapsed() > limit {
            return Err(RotateError::Failed(format!(
                "the agents did not confirm within {} ms: {}",
                limit.as_millis(),
                unhealthy(
                    &members
                        .iter()
                        .map(|m| m.name.clone())
                        .zip(now)
                        .collect::<Vec<_>>()
                )
                .unwrap_or_else(|| "too few heartbeats heard".into())
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rotates `cluster`'s secret through stage 4 on every node, then swaps the secrets file, so
/// that `apply` (run by the caller) writes stage 5. `on_step` hears each step as it is done.
pub async fn rotate(
    cluster: &Cluster,
    ssh: &SshOptions,
    on_step: &(dyn Fn(&StepDone) + Sync),
) -> Result<Vec<StepDone>, RotateError> {
    let (secret_file, next_file) = secret_paths(cluster)?;
    let mut members = Vec::new();
    for n in &cluster.nodes {
        let transport = SshTransport::connect(&n.host, &n.connection, ssh)
            .await
            .map_err(|e| RotateError::Unreachable(format!("{}: {e}", n.host)))?;
        members.push(Member {
            name: n.host.clone(),
            transport,
        });
    }
    let mut statuses = Vec::new();
    for m in &members {
        statuses.push(status(m).await.map_err(|e| {
            RotateError::NotHealthy(format!(
                "{e}; every node must run a healthy hadeploy-agent (a real Heartbeat node cannot follow a rotation)"
            ))
        })?);
    }
    let named: Vec<(String, StatusAnswer)> = members
        .iter()
        .map(|m| m.name.clone())
        .zip(statuses.iter().cloned())
        .collect();
    if let Some(why) = unhealthy(&named) {
        return Err(RotateError::NotHealthy(format!(
            "cluster `{}` is not healthy ({why}); nothing was changed",
            cluster.name
        )));
    }

    // Old and new keys: the new one is generated once and kept in `.next` until stage 4 is
    // everywhere; a rerun finds it and resumes.
    let current = read_secret(&secret_file);
    let method = cluster.auth;
    let (old, new) = match read_secret(&next_file) {
        Some(next) => (current, next),
        None => {
            let nodes_keys = authkeys_of(&members[0]).await?;
            let new = Key {
                method,
                secret: current.clone().unwrap_or_default(),
            };
            if current.is_some() && stage_of(&nodes_keys, None, &new) == Some(4) {
                // Interrupted after the swap: only stage 5 is left, which apply writes.
                (None, new.secret)
            } else {
                let fresh = crate::config::inventory::secrets::generate()
                    .map_err(|e| RotateError::Failed(format!("a new secret: {e}")))?;
                crate::config::inventory::secrets::store(&next_file, &fresh)
                    .map_err(|e| RotateError::Failed(format!("{}: {e}", next_file.display())))?;
                (current, fresh)
            }
        }
    };
    let new = Key {
        method,
        secret: new,
    };
    // What the nodes hold now is what they sign with: the old key's method comes from there.
    let mut stages = Vec::new();
    let mut old_key = None;
    for m in &members {
        let keys = authkeys_of(m).await?;
        if old_key.is_none()
            && let Some(secret) = &old
        {
            let entry = keys.get(1);
            old_key = Some(Key {
                method: entry.map_or(method, |e| e.method),
                secret: secret.clone(),
            });
        }
        let stage = stage_of(&keys, old_key.as_ref(), &new).ok_or_else(|| {
            RotateError::NotHealthy(format!(
                "{}: {AUTHKEYS} is neither the inventory's nor a rotation stage (edited by hand?); run hadeploy apply first",
                m.name
            ))
        })?;
        stages.push(stage);
    }
    let (lowest, highest) = (
        stages.iter().copied().min().unwrap_or(0),
        stages.iter().copied().max().unwrap_or(0),
    );
    if highest > lowest + 1 {
        return Err(RotateError::NotHealthy(format!(
            "the nodes stand more than one stage apart ({stages:?}); this is not a state a rotation leaves"
        )));
    }

    let limit = cluster.deadtime.as_std() * 2 + Duration::from_secs(10);
    let mut done = Vec::new();
    let mut before = statuses;
    for stage in (lowest + 1)..LAST_STAGE {
        let Some(old_key) = old_key
            .as_ref()
            .or(if stage >= 3 { Some(&new) } else { None })
        else {
            return Err(RotateError::Failed(
                "the old secret is gone but a node still holds it; restore the secrets file".into(),
            ));
        };
        let text = stage_text(&cluster.name, stage, old_key, &new);
        for (i, m) in members.iter().enumerate() {
            if stages[i] >= stage {
                continue;
            }
            let began = Instant::now();
            m.transport
                .put_all(&[Upload {
                    path: AUTHKEYS,
                    content: text.as_bytes(),
                    mode: 0o600,
                    keep_backup: false,
                    owner: None,
                }])
                .await
                .map_err(|e| RotateError::Failed(format!("{}: stage {stage}: {e}", m.name)))?;
            run(m, &format!("{AGENT} reload >/dev/null"), None)
                .await
                .map_err(|e| RotateError::Failed(format!("stage {stage}: {e}")))?;
            before = confirm(&members, &before, limit)
                .await
                .map_err(|e| RotateError::Failed(format!("stage {stage} on {}: {e}", m.name)))?;
            stages[i] = stage;
            let step = StepDone {
                stage,
                node: m.name.clone(),
                took: began.elapsed(),
            };
            on_step(&step);
            done.push(step);
        }
    }
    // Stage 4 everywhere: the new secret is the cluster's now.
    if read_secret(&next_file).is_some() {
        std::fs::rename(&next_file, &secret_file)
            .map_err(|e| RotateError::Failed(format!("{}: {e}", secret_file.display())))?;
    }
    for m in members {
        m.transport.close().await;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::auth;
    use crate::agent::wire::{Message, decode};
    use crate::config::ha::MsgFormat;

    fn key(method: AuthMethod, secret: &str) -> Key {
        Key {
            method,
            secret: secret.into(),
        }
    }

    fn parsed(text: &str) -> AuthKeys {
        authkeys::parse(text, Path::new("authkeys")).unwrap()
    }

    /// Walks every stage one node at a time, as `rotate` does, and checks at every moment that
    /// each node verifies what each other node sends, under the agent's rule.
    #[test]
    fn at_every_step_every_node_verifies_every_other() {
        for (old, new) in [
            (
                key(AuthMethod::Sha1, "old-secret-0123456789"),
                key(AuthMethod::Sha1, "new-secret-9876543210"),
            ),
            (
                key(AuthMethod::Md5, "old-secret-0123456789"),
                key(AuthMethod::Sha1, "new-secret-9876543210"),
            ),
            (
                key(AuthMethod::Crc, ""),
                key(AuthMethod::Sha1, "new-secret-9876543210"),
            ),
        ] {
            let rendered = |k: &Key| parsed(&format!("auth 1\n{}", k.line(1)));
            let mut nodes = vec![rendered(&old); 3];
            let mut m = Message::new();
            m.push_str("t", "status");
            let all_verify = |nodes: &[AuthKeys]| {
                for (i, sender) in nodes.iter().enumerate() {
                    let datagram =
                        decode(&auth::sign(&m, sender, MsgFormat::Classic).unwrap()).unwrap();
                    for (j, receiver) in nodes.iter().enumerate() {
                        assert!(
                            auth::verify_accepting(&datagram, receiver).is_ok(),
                            "node {i} → node {j}: {:?}",
                            auth::verify_accepting(&datagram, receiver)
                        );
                    }
                }
            };
            for stage in 1..=LAST_STAGE {
                let text = stage_text("web", stage, &old, &new);
                for i in 0..nodes.len() {
                    nodes[i] = parsed(&text);
                    assert_eq!(stage_of(&nodes[i], Some(&old), &new), Some(stage));
                    all_verify(&nodes);
                }
            }
            assert_eq!(nodes[0], rendered(&new));
            assert_eq!(stage_of(&rendered(&old), Some(&old), &new), Some(0));
            assert!(!stage_text("web", 2, &old, &new).contains("redacted"));
            assert!(!format!("{old:?}{new:?}").contains("secret-"));
        }
    }

    /// The 3.0.6 rule alone would break at stage 2: that is why a real Heartbeat node is refused.
    #[test]
    fn stage_two_needs_the_agents_wider_rule() {
        let (old, new) = (
            key(AuthMethod::Sha1, "old-secret-0123456789"),
            key(AuthMethod::Sha1, "new-secret-9876543210"),
        );
        let one = parsed(&stage_text("web", 1, &old, &new));
        let two = parsed(&stage_text("web", 2, &old, &new));
        let mut m = Message::new();
        m.push_str("t", "status");
        let from_two = decode(&auth::sign(&m, &two, MsgFormat::Netstring).unwrap()).unwrap();
        assert!(!auth::verify(&from_two, &one).is_ok());
        assert!(auth::verify_accepting(&from_two, &one).is_ok());
        // A file that is no stage is refused.
        let stranger = parsed("auth 1\n1 sha1 somebody-elses-secret\n");
        assert_eq!(stage_of(&stranger, Some(&old), &new), None);
    }
}
