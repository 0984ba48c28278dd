//! SSH to a node through the system OpenSSH client (the `openssh` crate): one ControlMaster per
//! host, so `~/.ssh/config`, the ssh agent and ProxyJump behave exactly as in the operator's
//! shell, and every command after the first rides the existing connection. Host keys are
//! checked strictly unless the operator explicitly allows trust on first use. Like Ansible's
//! ControlPersist, a master outlives the run for a while (`reuse_for`), so the next run skips
//! the SSH handshake: the masters' sockets live in a directory only this user can enter, under a
//! name derived from every connection setting, so a run only ever reuses an identical connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
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
    /// Keep each master connection up this long after its last use, for the next run to
    /// resume; `None` closes it when the run ends.
    pub reuse_for: Option<Duration>,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            accept_new_host_keys: false,
            config_file: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
            reuse_for: None,
        }
    }
}

pub struct SshTransport {
    name: String,
    session: Session,
    /// Wrap commands in `sudo -n` (ansible_become with a non-root user).
    sudo: bool,
    /// The master stays up after this run for the next one to resume.
    persist: bool,
}

/// The directory holding reusable masters' links: created 0700, and used only if it is a real
/// directory owned by this user that nobody else can enter (it lives in a shared /tmp).
fn reuse_dir() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("hadeploy-ssh-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}

/// The link naming a master: a digest of every setting that shapes the connection.
fn reuse_key(connection: &Connection, options: &SshOptions) -> String {
    crate::files::sha1_hex(
        format!(
            "{:?}|{}|{}|{:?}|{:?}|{:?}|{}",
            connection.user,
            connection.host,
            connection.port,
            connection.private_key,
            options.config_file,
            options.known_hosts,
            options.accept_new_host_keys
        )
        .as_bytes(),
    )
}

/// A live master from an earlier run, if there is one; a dead one's leftovers are removed. A
/// master can outlive its peer (a node rebuilt under the same address) until its keepalives
/// give up, so it must also run a command, promptly, before it is trusted.
async fn resume(link: &Path) -> Option<Session> {
    let ctl = std::fs::read_link(link).ok()?;
    let session = Session::resume(ctl.clone().into_boxed_path(), None);
    if session.check().await.is_ok() {
        let answered = tokio::time::timeout(
            Duration::from_secs(2),
            session.command("true").stdin(Stdio::null()).status(),
        )
        .await
        .is_ok_and(|status| status.is_ok_and(|s| s.success()));
        if answered {
            return Some(session);
        }
        let _ = session.close().await;
    }
    let _ = std::fs::remove_file(link);
    if let Some(dir) = ctl.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    None
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
        let sudo =
            connection.become_root && connection.user.as_deref().is_some_and(|u| u != "root");
        let reuse = options
            .reuse_for
            .and_then(|idle| Some((idle, reuse_dir()?)))
            .map(|(idle, dir)| (idle, dir.join(reuse_key(connection, options))));
        if let Some((_, link)) = &reuse
            && let Some(session) = resume(link).await
        {
            return Ok(Self {
                name: name.to_string(),
                session,
                sudo,
                persist: true,
            });
        }
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
        match &reuse {
            Some((idle, link)) => {
                builder.control_directory(link.parent().unwrap_or(Path::new("/tmp")));
                if let Some(secs) = std::num::NonZeroUsize::new(idle.as_secs() as usize) {
                    builder.control_persist(ControlPersist::IdleFor(secs));
                }
            }
            None => {
                builder.control_directory(std::env::temp_dir());
            }
        }
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
        let persist = match &reuse {
            Some((_, link)) => {
                let _ = std::fs::remove_file(link);
                std::os::unix::fs::symlink(session.control_socket(), link).is_ok()
            }
            None => false,
        };
        Ok(Self {
            name: name.to_string(),
            session,
            sudo,
            persist,
        })
    }

    /// Ends this run's use of the connection: a reusable master stays up until it has been idle
    /// for `reuse_for`, any other is closed now.
    pub async fn close(self) {
        if self.persist {
            let _ = self.session.detach();
        } else {
            let _ = self.session.close().await;
        }
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
