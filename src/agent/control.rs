//! The agent's control socket: a Unix socket only root may use (0600 in a 0700 directory, and
//! the peer's uid checked with SO_PEERCRED), speaking one request line and one JSON answer
//! line. `hadeploy-agent status`, `standby` and `takeover` are clients of it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub const DEFAULT_PATH: &str = "/run/hadeploy-agent/control.sock";

/// Requests are tiny; anything longer is not a client of ours.
const MAX_REQUEST: usize = 256;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Status,
    Standby,
    Takeover,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Standby => "standby",
            Request::Takeover => "takeover",
        }
    }

    pub fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "status" => Some(Request::Status),
            "standby" => Some(Request::Standby),
            "takeover" => Some(Request::Takeover),
            _ => None,
        }
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

/// Writes one JSON answer line.
pub async fn answer(stream: &mut UnixStream, json: &serde_json::Value) -> std::io::Result<()> {
    let mut text = json.to_string();
    text.push('\n');
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

/// The client side: send one request, return the agent's JSON answer.
pub async fn request(path: &Path, request: Request) -> Result<serde_json::Value, ControlError> {
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
        if line.trim().is_empty() {
            return Err(ControlError::NoAnswer {
                path: path.to_path_buf(),
            });
        }
        serde_json::from_str(&line)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            path: path.to_path_buf(),
            timeout: CLIENT_TIMEOUT,
        })?
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
            let (mut stream, _) = listener.accept().await.unwrap();
            let req = read_request(&mut stream).await;
            answer(
                &mut stream,
                &serde_json::json!({"request": req.map(|r| r.as_str())}),
            )
            .await
            .unwrap();
        });
        let reply = request(&path, Request::Standby).await.unwrap();
        assert_eq!(reply["request"], "standby");
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
        assert_eq!(Request::parse("rm -rf"), None);
    }
}
