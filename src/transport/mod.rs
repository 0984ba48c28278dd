//! How the controller reaches a node: run a shell script, upload a file. `ssh` is the real
//! transport (one multiplexed OpenSSH master per host, so every step after the first costs one
//! round trip, and `~/.ssh/config`, the agent and ProxyJump all work as the operator expects);
//! `local` runs the same scripts on this machine for unit tests of the modules.

pub mod local;
pub mod ssh;

use std::future::Future;

/// What a remote command produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: cannot connect: {reason}")]
    Connect { host: String, reason: String },
    #[error("{host}: {what}: {reason}")]
    Command {
        host: String,
        what: String,
        reason: String,
    },
    #[error("{host}: upload of {path} failed: {reason}")]
    Upload {
        host: String,
        path: String,
        reason: String,
    },
}

/// The two operations every module is built from.
pub trait Transport: Send + Sync {
    /// The host name used in messages.
    fn host(&self) -> &str;

    /// Runs `script` with `sh -c` (as root: through `sudo -n` when the connection needs it),
    /// feeding `stdin`.
    fn run(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<CommandOutput, TransportError>> + Send;

    /// Writes files atomically in one round trip: each into a temp file beside it, mode and
    /// owner set, sha1 verified on the node, fsynced; only when every file arrived whole are
    /// they renamed into place (a file in `keep_backup` first copied to `PATH.hadeploy-backup`).
    /// An interrupted upload leaves every old file in place.
    fn put_all(
        &self,
        files: &[Upload<'_>],
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        async move {
            let script = put_script(files);
            let total: usize = files.iter().map(|f| f.content.len()).sum();
            let mut stream = Vec::with_capacity(total);
            for f in files {
                stream.extend_from_slice(f.content);
            }
            let out = self.run(&script, Some(&stream)).await?;
            if out.success() {
                Ok(())
            } else {
                let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
                Err(TransportError::Upload {
                    host: self.host().to_string(),
                    path: paths.join(", "),
                    reason: out.stderr_text().trim().to_string(),
                })
            }
        }
    }
}

/// A transport that runs only the scripts it was made with and uploads nothing: `diff` probes
/// through it, so it is read-only by construction, whatever the code above it asks.
pub struct ReadOnly<'a, T> {
    inner: &'a T,
    allowed: &'a [&'a str],
}

impl<'a, T: Transport> ReadOnly<'a, T> {
    pub fn new(inner: &'a T, allowed: &'a [&'a str]) -> Self {
        ReadOnly { inner, allowed }
    }
}

impl<T: Transport> Transport for ReadOnly<'_, T> {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn run(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, TransportError> {
        if !self.allowed.contains(&script) {
            return Err(TransportError::Command {
                host: self.host().to_string(),
                what: "remote command".into(),
                reason: "refused: this run is read-only and may run only its probe".into(),
            });
        }
        self.inner.run(script, stdin).await
    }

    async fn put_all(&self, files: &[Upload<'_>]) -> Result<(), TransportError> {
        let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
        Err(TransportError::Upload {
            host: self.host().to_string(),
            path: paths.join(", "),
            reason: "refused: this run is read-only".into(),
        })
    }
}

/// One file for `put_all`.
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    pub path: &'a str,
    pub content: &'a [u8],
    pub mode: u32,
    /// Copy the file being replaced to `PATH.hadeploy-backup` first.
    pub keep_backup: bool,
    /// `user:group` for `chown`; root's when `None`.
    pub owner: Option<&'a str>,
}

/// Quotes a word for POSIX sh.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The node-side half of `put_all`. The files arrive back to back on stdin; GNU dd with
/// `count_bytes` reads exactly each one's length (head would read ahead and lose the next).
/// Checksums are checked before any rename, so a truncated transfer replaces nothing.
fn put_script(files: &[Upload<'_>]) -> String {
    let mut script = String::from("set -eu\ntmps=\"\"\ntrap 'rm -f $tmps' EXIT\n");
    for (i, f) in files.iter().enumerate() {
        let p = shell_quote(f.path);
        script.push_str(&format!(
            r#"d=$(dirname {p}); mkdir -p "$d"
t{i}=$(mktemp "$d/.hadeploy.XXXXXX"); tmps="$tmps $t{i}"
dd bs=65536 iflag=fullblock,count_bytes count={len} of="$t{i}" status=none
chmod {mode:o} "$t{i}"
[ "$(id -u)" = 0 ] && chown {owner} "$t{i}"
sum=$(sha1sum "$t{i}"); sum=${{sum%% *}}
if [ "$sum" != {sha1} ]; then echo "{path}: checksum mismatch after transfer ($sum)" >&2; exit 3; fi
"#,
            len = f.content.len(),
            mode = f.mode,
            sha1 = crate::files::sha1_hex(f.content),
            path = f.path.replace(['"', '\\', '$', '`'], "_"),
            owner = shell_quote(f.owner.unwrap_or("0:0")),
        ));
    }
    script.push_str("sync $tmps 2>/dev/null || sync\n");
    for (i, f) in files.iter().enumerate() {
        let p = shell_quote(f.path);
        if f.keep_backup {
            script.push_str(&format!(
                "if [ -f {p} ]; then cp -p {p} {p}.hadeploy-backup; fi\n"
            ));
        }
        script.push_str(&format!("mv -f \"$t{i}\" {p}\n"));
    }
    script.push_str("trap - EXIT\n");
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_only_transport_runs_its_probe_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("written");
        let local = local::LocalTransport::new("here");
        let probe = "echo probed";
        let allowed = [probe];
        let read_only = ReadOnly::new(&local, &allowed);
        assert_eq!(
            read_only.run(probe, None).await.unwrap().stdout,
            b"probed\n"
        );
        let touch = format!("touch {}", target.display());
        assert!(read_only.run(&touch, None).await.is_err());
        let upload = Upload {
            path: target.to_str().unwrap(),
            content: b"x",
            mode: 0o644,
            keep_backup: false,
            owner: None,
        };
        assert!(read_only.put_all(&[upload]).await.is_err());
        assert!(!target.exists(), "nothing reached the file system");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/ha.d/ha.cf"), "/etc/ha.d/ha.cf");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    }
}
