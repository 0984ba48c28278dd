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
    use crate::transport::Upload;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn put_all_is_atomic_verified_and_sets_modes() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("sub dir/authkeys");
        let cf = dir.path().join("sub dir/ha.cf");
        let empty = dir.path().join("other/empty");
        std::fs::create_dir_all(cf.parent().unwrap()).unwrap();
        std::fs::write(&cf, b"old\n").unwrap();
        // Binary content with every byte value crosses intact, back to back with the others.
        let binary: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        let t = LocalTransport::new("local");
        fn upload<'a>(path: &'a std::path::Path, content: &'a [u8], mode: u32) -> Upload<'a> {
            Upload {
                path: path.to_str().unwrap(),
                content,
                mode,
                keep_backup: true,
                owner: None,
            }
        }
        t.put_all(&[
            upload(&keys, b"auth 1\n1 sha1 secret\n", 0o600),
            upload(&cf, &binary, 0o644),
            upload(&empty, b"", 0o644),
        ])
        .await
        .unwrap();
        assert_eq!(std::fs::read(&keys).unwrap(), b"auth 1\n1 sha1 secret\n");
        assert_eq!(std::fs::read(&cf).unwrap(), binary);
        assert_eq!(std::fs::read(&empty).unwrap(), b"");
        let backup = dir.path().join("sub dir/ha.cf.hadeploy-backup");
        assert_eq!(std::fs::read(backup).unwrap(), b"old\n");
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp files are left behind: authkeys, ha.cf and its backup.
        assert_eq!(
            std::fs::read_dir(keys.parent().unwrap()).unwrap().count(),
            3
        );
    }

    /// A transfer cut short replaces nothing, not even the files that arrived whole.
    #[tokio::test]
    async fn put_all_cut_short_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        std::fs::write(&first, b"old first").unwrap();
        let files = [
            Upload {
                path: first.to_str().unwrap(),
                content: b"new first",
                mode: 0o644,
                keep_backup: false,
                owner: None,
            },
            Upload {
                path: second.to_str().unwrap(),
                content: b"new second",
                mode: 0o644,
                keep_backup: false,
                owner: None,
            },
        ];
        let out = LocalTransport::new("local")
            .run(&super::super::put_script(&files), Some(b"new firstnew sec"))
            .await
            .unwrap();
        assert!(!out.success());
        assert!(
            out.stderr_text().contains("checksum mismatch"),
            "{}",
            out.stderr_text()
        );
        assert_eq!(std::fs::read(&first).unwrap(), b"old first");
        assert!(!second.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
