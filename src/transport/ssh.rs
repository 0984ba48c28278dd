//! SSH to a node through the system OpenSSH client (the `openssh` crate): one ControlMaster per
//! host, so `~/.ssh/config`, the ssh agent and ProxyJump behave exactly as in the operator's
//! shell, and every command after the first rides the existing connection. Host keys are
//! checked strictly unless the operator explicitly allows trust on first use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use super::{CommandOutput, Transport, TransportError};
use crate::config::inventory::Connection;

/// Connection settings that are not per host.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// `StrictHostKeyChecking=accept-new` instead of `yes`.
    pub accept_new_host_keys: bool,
    /// An ssh_config file to use instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// A known_hosts file to use instead of `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            accept_new_host_keys: false,
            config_file: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

pub struct SshTransport {
    name: String,
    session: Session,
    /// Wrap commands in `sudo -n` (ansible_become with a non-root user).
    sudo: bool,
}

/// `~/x` → `$HOME/x`, as Ansible does for key paths.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

impl SshTransport {
    /// Opens the master connection to one node.
    pub async fn connect(
        name: &str,
        connection: &Connection,
        options: &SshOptions,
    ) -> Result<Self, TransportError> {
        let mut builder = SessionBuilder::default();
        if let Some(user) = &connection.user {
            builder.user(user.clone());
        }
        builder.port(connection.port);
        if let Some(key) = &connection.private_key {
            builder.keyfile(expand_home(key));
        }
        builder.known_hosts_check(if options.accept_new_host_keys {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        });
        builder.connect_timeout(options.connect_timeout);
        builder.server_alive_interval(Duration::from_secs(5));
        // The control socket path must stay under the kernel's 108-byte limit: keep it short.
        builder.control_directory(std::env::temp_dir());
        if let Some(config) = &options.config_file {
            builder.config_file(config);
        }
        if let Some(known_hosts) = &options.known_hosts {
            builder.user_known_hosts_file(known_hosts);
        }
        let session =
            builder
                .connect(&connection.host)
                .await
                .map_err(|e| TransportError::Connect {
                    host: name.to_string(),
                    reason: describe(&e),
                })?;
        let sudo =
            connection.become_root && connection.user.as_deref().is_some_and(|u| u != "root");
        Ok(Self {
            name: name.to_string(),
            session,
            sudo,
        })
    }

    /// Closes the master connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// openssh's errors nest the ssh client's stderr; show the whole chain on one line.
fn describe(error: &openssh::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(s.to_string().trim());
        source = s.source();
    }
    text
}

impl Transport for SshTransport {
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
            what: "remote command".into(),
            reason,
        };
        let mut command = if self.sudo {
            let mut c = self.session.command("sudo");
            c.args(["-n", "sh", "-c", script]);
            c
        } else {
            let mut c = self.session.command("sh");
            c.args(["-c", script]);
            c
        };
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().await.map_err(|e| fail(describe(&e)))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin().take()) {
            pipe.write_all(data)
                .await
                .map_err(|e| fail(e.to_string()))?;
            pipe.shutdown().await.map_err(|e| fail(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| fail(describe(&e)))?;
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

    #[test]
    fn home_expansion() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_home(Path::new("~/.ssh/id")),
            PathBuf::from(format!("{home}/.ssh/id"))
        );
        assert_eq!(expand_home(Path::new("/abs/id")), PathBuf::from("/abs/id"));
    }

    #[tokio::test]
    async fn unreachable_host_is_a_connect_error_naming_the_host() {
        let connection = Connection {
            host: "127.0.0.1".into(),
            port: 1,
            user: Some("root".into()),
            private_key: None,
            become_root: false,
        };
        let options = SshOptions {
            connect_timeout: Duration::from_secs(3),
            ..SshOptions::default()
        };
        let err = SshTransport::connect("node9", &connection, &options)
            .await
            .err()
            .expect("port 1 refuses");
        assert!(
            err.to_string().starts_with("node9: cannot connect"),
            "{err}"
        );
    }
}
