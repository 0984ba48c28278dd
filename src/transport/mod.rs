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

    /// Writes `content` to `path` atomically in one round trip: a temp file beside it, mode and
    /// owner set, fsync, sha1 verified on the node, then rename. An interrupted upload leaves
    /// the old file in place.
    fn put(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        async move {
            let script = put_script(path, &sha1_hex(content), mode);
            let out = self.run(&script, Some(content)).await?;
            if out.success() {
                Ok(())
            } else {
                Err(TransportError::Upload {
                    host: self.host().to_string(),
                    path: path.to_string(),
                    reason: out.stderr_text().trim().to_string(),
                })
            }
        }
    }
}

pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// The node-side half of `put`: the checksum is checked before the rename, so a truncated
/// transfer can never replace a good file.
fn put_script(path: &str, sha1: &str, mode: u32) -> String {
    let p = shell_quote(path);
    format!(
        r#"set -eu
d=$(dirname {p}); mkdir -p "$d"
tmp=$(mktemp "$d/.hadeploy.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
chmod {mode:o} "$tmp"
[ "$(id -u)" = 0 ] && chown 0:0 "$tmp"
sum=$(sha1sum "$tmp"); sum=${{sum%% *}}
if [ "$sum" != {sha1} ]; then echo "checksum mismatch after transfer ($sum)" >&2; exit 3; fi
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" {p}
trap - EXIT
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/etc/ha.d/ha.cf"), "/etc/ha.d/ha.cf");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    }

    #[test]
    fn sha1_matches_coreutils() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
