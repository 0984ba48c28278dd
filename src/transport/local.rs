//! Runs scripts on this machine with `sh -c`: the same code path as SSH minus the network, for
//! unit tests of the modules that change a node.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{CommandOutput, Transport, TransportError};

pub struct LocalTransport {
    name: String,
}

impl LocalTransport {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, TransportError> {
        let fail = |reason: String| TransportError::Command {
            host: self.name.clone(),
            what: "sh".into(),
            reason,
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(CommandOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn put_is_atomic_verified_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub dir/authkeys");
        let t = LocalTransport::new("local");
        t.put(path.to_str().unwrap(), b"auth 1\n1 sha1 secret\n", 0o600)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"auth 1\n1 sha1 secret\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp files are left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[tokio::test]
    async fn run_reports_status_and_output() {
        let t = LocalTransport::new("local");
        let out = t
            .run(
                "read x; echo \"got $x\"; echo err >&2; exit 3",
                Some(b"hello\n"),
            )
            .await
            .unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout_text(), "got hello\n");
        assert_eq!(out.stderr_text(), "err\n");
    }
}
