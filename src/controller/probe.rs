//! Everything `apply` needs to know about a node, gathered in one round trip: facts (`uname -n`,
//! OS family, init system, interfaces, which web services exist) and the current state of every
//! thing hadeploy manages (files with mode and owner, the agent binary's sha1, sysctl, boot
//! autostart). Planning then runs locally on this snapshot, so check mode and diffs cost nothing
//! extra on the node.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::agent::control::StatusAnswer;
use crate::config::ha::Ipv4Net;

pub const AGENT_PATH: &str = "/usr/local/sbin/hadeploy-agent";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    Sysvinit,
    Other,
}

/// Debian-like (update-rc.d, apache2), RHEL-like (chkconfig, httpd), or something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsFamily {
    Debian,
    RedHat,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceState {
    pub present: bool,
    pub enabled_at_boot: bool,
    pub running: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `user:group` by name (`UNKNOWN` for an id without one), for `ha_files`' owners.
    pub owner: String,
    /// Last modification, seconds since the epoch: when a hand edit happened.
    pub mtime_unix: i64,
}

impl std::fmt::Debug for RemoteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Content may be a secret (authkeys): show its size only.
        write!(
            f,
            "RemoteFile({} bytes, {:o}, {}:{})",
            self.content.len(),
            self.mode,
            self.uid,
            self.gid
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub uname_n: String,
    pub os_id: String,
    pub os_family: OsFamily,
    pub init: InitSystem,
    pub addresses: Vec<(String, Ipv4Net)>,
    pub services: BTreeMap<String, ServiceState>,
    pub agent_sha1: Option<String>,
    pub nonlocal_bind_live: Option<bool>,
    /// The addresses the probe pinged, and whether each answered.
    pub answering: BTreeMap<Ipv4Addr, bool>,
    /// Managed files by path; `None` when absent.
    pub files: BTreeMap<String, Option<RemoteFile>>,
    /// Managed files larger than [`MAX_FILE_BYTES`], with their size: never transferred.
    pub oversized: BTreeMap<String, u64>,
    /// What `hadeploy-agent --version` printed.
    pub agent_version: Option<String>,
    /// The running agent's `status --json` line, when the probe asked for it and it answered.
    pub agent_status: Option<Vec<u8>>,
}

impl NodeState {
    pub fn interface_addresses<'a>(&'a self, iface: &'a str) -> impl Iterator<Item = Ipv4Net> + 'a {
        self.addresses
            .iter()
            .filter(move |(i, _)| i == iface)
            .map(|(_, a)| *a)
    }

    /// The running agent's own view, when the probe asked for it: the answer, or why what
    /// came back is not one.
    pub fn agent_view(&self) -> Option<Result<StatusAnswer, String>> {
        let bytes = self.agent_status.as_ref()?;
        Some(
            std::str::from_utf8(bytes)
                .map_err(|_| "not UTF-8".to_string())
                .and_then(|text| StatusAnswer::from_json(text).map_err(|e| e.to_string())),
        )
    }

    pub fn has_address(&self, addr: Ipv4Addr) -> Option<&str> {
        self.addresses
            .iter()
            .find(|(_, a)| a.addr == addr)
            .map(|(i, _)| i.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the node's probe output is not understood: {0}")]
pub struct ProbeError(String);

/// A managed file larger than this is reported by size and never transferred: every file
/// hadeploy writes is a few kilobytes, and a huge one must not exhaust the controller.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The probe script for these files and services (the roles' units and the agent), pinging
/// `ping` meanwhile (a VIP nobody answers for costs the whole wait, so it overlaps the rest).
/// With `agent_status` it also asks the running agent for its view (`diff` needs it, `apply`
/// does not). Output lines start with `@@kind`; file contents are base64 so any byte survives
/// the trip. Everything it runs only reads.
pub fn script(
    files: &[&str],
    services: &[String],
    ping: &[Ipv4Addr],
    agent_status: bool,
) -> String {
    let ping: Vec<String> = ping.iter().map(Ipv4Addr::to_string).collect();
    let services: Vec<String> = services
        .iter()
        .map(|s| crate::transport::shell_quote(s))
        .collect();
    let services = services.join(" ");
    let files: Vec<String> = files
        .iter()
        .map(|f| crate::transport::shell_quote(f))
        .collect();
    format!(
        r#"export LC_ALL=C
pinged=""
for a in {ping}; do
  # On the service LAN an owner answers within milliseconds; nobody answering costs the wait.
  ping -c 1 -W 0.15 "$a" >/dev/null 2>&1 &
  pinged="$pinged $a=$!"
done
echo "@@uname $(uname -n)"
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "@@os ${{ID:-unknown}} ${{ID_LIKE:-}}"
echo "@@init $(cat /proc/1/comm 2>/dev/null)"
ip -o -4 addr show 2>/dev/null | while read -r _ name _ addr _; do echo "@@addr $name $addr"; done
if [ -d /run/systemd/system ]; then
  # One systemctl call for every unit: on a small node each call costs tens of milliseconds.
  # `show` caches UnitFileState until the next daemon-reload, and apply disables units without
  # one: the boot state comes from `is-enabled`, which reads the symlinks on disk.
  units=""; for s in {services}; do units="$units $s.service"; done
  shown=$(systemctl show -p Id,LoadState,ActiveState $units 2>/dev/null | awk -F= '
    function flush() {{ if (id != "") print id, (l == "" ? "unknown" : l), (a == "" ? "unknown" : a); id = l = a = "" }}
    /^Id=/ {{ id = $2; sub(/\.service$/, "", id) }}
    /^LoadState=/ {{ l = $2 }}
    /^ActiveState=/ {{ a = $2 }}
    /^$/ {{ flush() }}
    END {{ flush() }}')
  loaded=$(echo "$shown" | awk '$2 == "loaded" {{ printf "%s.service ", $1 }}')
  boot=""; [ -n "$loaded" ] && boot=$(SYSTEMCTL_SKIP_SYSV=1 systemctl is-enabled $loaded 2>/dev/null | tr '\n' ' ')
  echo "$shown" | while read -r id l a; do
    [ -n "$id" ] || continue
    u=unknown
    if [ "$l" = loaded ]; then u=${{boot%% *}}; boot=${{boot#* }}; fi
    echo "@@service $id $l ${{u:-unknown}} $a"
  done
else
  for s in {services}; do
    load=not-found; [ -x "/etc/init.d/$s" ] && load=loaded
    enabled=disabled; ls /etc/rc[2345].d/S[0-9][0-9]"$s" >/dev/null 2>&1 && enabled=enabled
    # Some scripts answer `status` with 0 whatever the state (keepalived's exits 0 early
    # without a configuration), so a running process of that name must agree.
    active=inactive
    [ "$load" = loaded ] && "/etc/init.d/$s" status >/dev/null 2>&1 && pidof "$s" >/dev/null 2>&1 && active=active
    echo "@@service $s $load $enabled $active"
  done
fi
if [ -f {agent} ]; then
  echo "@@agent $(sha1sum {agent} | cut -d' ' -f1)"
  echo "@@agentversion $({agent} --version 2>/dev/null | head -c 200 | head -n 1)"
{status}fi
echo "@@sysctl $(cat /proc/sys/net/ipv4/ip_nonlocal_bind 2>/dev/null)"
for f in {files}; do
  if [ -f "$f" ]; then
    size=$(stat -c %s "$f")
    if [ "$size" -gt {max_bytes} ]; then echo "@@bigfile $f $size"
    else echo "@@file $f $(stat -c '%a %u %g %Y %U:%G' "$f") $(base64 -w0 < "$f")"; fi
  else echo "@@nofile $f"; fi
done
for p in $pinged; do
  if wait "${{p#*=}}"; then echo "@@ping ${{p%=*}} yes"; else echo "@@ping ${{p%=*}} no"; fi
done
echo "@@end"
"#,
        ping = ping.join(" "),
        agent = AGENT_PATH,
        files = files.join(" "),
        max_bytes = MAX_FILE_BYTES,
        status = if agent_status {
            // The answer is one JSON line; a hostile node's endless one is cut, not read whole.
            format!(
                "  st=$({AGENT_PATH} status --json 2>/dev/null | head -c {MAX_FILE_BYTES}) && echo \"@@status $(printf '%s' \"$st\" | base64 -w0)\"\n"
            )
        } else {
            String::new()
        },
    )
}

/// Parses what `script` printed.
pub fn parse(output: &str) -> Result<NodeState, ProbeError> {
    let mut state = NodeState {
        uname_n: String::new(),
        os_id: String::new(),
        os_family: OsFamily::Other,
        init: InitSystem::Other,
        addresses: Vec::new(),
        services: BTreeMap::new(),
        agent_sha1: None,
        nonlocal_bind_live: None,
        answering: BTreeMap::new(),
        files: BTreeMap::new(),
        oversized: BTreeMap::new(),
        agent_version: None,
        agent_status: None,
    };
    let mut complete = false;
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("@@") else {
            continue;
        };
        let (kind, value) = rest.split_once(' ').unwrap_or((rest, ""));
        match kind {
            "uname" => state.uname_n = value.trim().to_string(),
            "os" => {
                let mut words = value.split_whitespace();
                state.os_id = words.next().unwrap_or("unknown").to_string();
                let like: Vec<&str> = words.collect();
                let is = |id: &str| state.os_id == id || like.contains(&id);
                state.os_family = if is("debian") || is("ubuntu") {
                    OsFamily::Debian
                } else if is("rhel") || is("fedora") || is("centos") {
                    OsFamily::RedHat
                } else {
                    OsFamily::Other
                };
            }
            "init" => {
                state.init = match value.trim() {
                    "systemd" => InitSystem::Systemd,
                    "init" => InitSystem::Sysvinit,
                    _ => InitSystem::Other,
                }
            }
            "addr" => {
                let mut words = value.split_whitespace();
                if let (Some(iface), Some(addr)) = (words.next(), words.next())
                    && let Ok(net) = Ipv4Net::parse(addr, Some(32))
                {
                    state.addresses.push((iface.to_string(), net));
                }
            }
            "service" => {
                let words: Vec<&str> = value.split_whitespace().collect();
                let [name, load, enabled, active] = words[..] else {
                    return Err(ProbeError(format!("bad service line `{line}`")));
                };
                state.services.insert(
                    name.to_string(),
                    ServiceState {
                        present: load == "loaded",
                        // `static`/`indirect` units are started by others; only `enabled` is ours to undo.
                        enabled_at_boot: enabled == "enabled",
                        running: active == "active",
                    },
                );
            }
            "agent" => state.agent_sha1 = Some(value.trim().to_string()),
            "agentversion" => {
                state.agent_version = Some(value.trim().to_string()).filter(|v| !v.is_empty())
            }
            "status" => {
                state.agent_status = Some(
                    base64_decode(value.trim())
                        .ok_or_else(|| ProbeError("bad base64 for the agent's status".into()))?,
                )
            }
            "bigfile" => {
                let (path, size) = value.rsplit_once(' ').unwrap_or((value, ""));
                state
                    .oversized
                    .insert(path.to_string(), size.trim().parse().unwrap_or(u64::MAX));
            }
            "ping" => {
                let mut words = value.split_whitespace();
                if let (Some(Ok(addr)), Some(answered)) =
                    (words.next().map(str::parse::<Ipv4Addr>), words.next())
                {
                    state.answering.insert(addr, answered == "yes");
                }
            }
            "sysctl" => state.nonlocal_bind_live = value.trim().parse::<u8>().ok().map(|v| v == 1),
            "file" => {
                let words: Vec<&str> = value.splitn(7, ' ').collect();
                let [path, mode, uid, gid, mtime, owner, data] = words[..] else {
                    return Err(ProbeError(format!("bad file line for `{value:.40}`")));
                };
                let parse_num = |t: &str, radix| {
                    u32::from_str_radix(t, radix)
                        .map_err(|_| ProbeError(format!("bad number `{t}` for {path}")))
                };
                let content = base64_decode(data.trim())
                    .ok_or_else(|| ProbeError(format!("bad base64 for {path}")))?;
                state.files.insert(
                    path.to_string(),
                    Some(RemoteFile {
                        content,
                        mode: parse_num(mode, 8)?,
                        uid: parse_num(uid, 10)?,
                        gid: parse_num(gid, 10)?,
                        owner: owner.to_string(),
                        mtime_unix: mtime.parse().map_err(|_| {
                            ProbeError(format!("bad modification time `{mtime}` for {path}"))
                        })?,
                    }),
                );
            }
            "nofile" => {
                state.files.insert(value.trim().to_string(), None);
            }
            "end" => complete = true,
            _ => {}
        }
    }
    if !complete {
        return Err(ProbeError(
            "the output ended early (connection dropped?)".into(),
        ));
    }
    if state.uname_n.is_empty() {
        return Err(ProbeError("no `uname -n`".into()));
    }
    Ok(state)
}

/// Standard base64, as coreutils' `base64` writes it; `None` on any invalid input.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use crate::transport::local::LocalTransport;

    #[test]
    fn base64_matches_coreutils() {
        assert_eq!(base64_decode("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("YQ=").is_none());
        assert!(base64_decode("Y!==").is_none());
    }

    #[test]
    fn parses_a_systemd_debian_node() {
        let out = "@@uname node1\n@@os debian \n@@init systemd\n@@addr eth0 172.29.10.11/24\n@@addr eth1 172.29.11.11/24\n@@service nginx loaded enabled active\n@@service httpd not-found unknown inactive\n@@agent 0123abcd\n@@sysctl 0\n@@file /etc/ha.d/ha.cf 644 0 0 1764680000 root:root aGVsbG8K\n@@agentversion hadeploy-agent 0.1.0\n@@bigfile /etc/ha.d/haresources 5000000\n@@nofile /etc/ha.d/authkeys\n@@end\n";
        let s = parse(out).unwrap();
        assert_eq!(s.uname_n, "node1");
        assert_eq!(
            (s.os_family, s.init),
            (OsFamily::Debian, InitSystem::Systemd)
        );
        assert_eq!(
            s.interface_addresses("eth1").next().unwrap().to_string(),
            "172.29.11.11/24"
        );
        assert_eq!(
            s.services["nginx"],
            ServiceState {
                present: true,
                enabled_at_boot: true,
                running: true
            }
        );
        assert!(!s.services["httpd"].present);
        assert_eq!(s.nonlocal_bind_live, Some(false));
        assert_eq!(
            s.files["/etc/ha.d/ha.cf"].as_ref().unwrap().content,
            b"hello\n"
        );
        assert_eq!(s.files["/etc/ha.d/authkeys"], None);
        assert_eq!(
            s.files["/etc/ha.d/ha.cf"].as_ref().unwrap().mtime_unix,
            1764680000
        );
        assert_eq!(s.oversized["/etc/ha.d/haresources"], 5_000_000);
        assert_eq!(s.agent_version.as_deref(), Some("hadeploy-agent 0.1.0"));
    }

    #[test]
    fn truncated_output_is_an_error() {
        assert!(parse("@@uname node1\n@@os debian\n").is_err());
        assert!(parse("").is_err());
    }

    /// The script runs for real on this machine (Debian, a shell, coreutils): every line it
    /// prints must parse, and a file written here must come back byte for byte.
    #[tokio::test]
    async fn script_runs_and_parses_on_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ha.cf");
        std::fs::write(&file, b"keepalive 2\n\x00binary\xff").unwrap();
        let missing = dir.path().join("missing");
        let out = LocalTransport::new("here")
            .run(
                &script(
                    &[file.to_str().unwrap(), missing.to_str().unwrap()],
                    &["nginx".to_string(), "hadeploy-agent".to_string()],
                    &[Ipv4Addr::LOCALHOST],
                    true,
                ),
                None,
            )
            .await
            .unwrap();
        let state = parse(&out.stdout_text()).unwrap();
        let uname = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap();
        assert_eq!(state.uname_n, String::from_utf8_lossy(&uname.stdout).trim());
        assert_eq!(state.answering.get(&Ipv4Addr::LOCALHOST), Some(&true));
        assert_eq!(
            state.files[file.to_str().unwrap()]
                .as_ref()
                .unwrap()
                .content,
            b"keepalive 2\n\x00binary\xff"
        );
        assert_eq!(state.files[missing.to_str().unwrap()], None);
        assert_eq!(state.services.len(), 2);
        assert!(
            state
                .addresses
                .iter()
                .any(|(i, a)| i == "lo" && a.addr == Ipv4Addr::LOCALHOST)
        );
    }
}
