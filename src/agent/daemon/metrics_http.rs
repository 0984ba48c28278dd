//! The optional `/metrics` listener (`metrics_listen` in hadeploy-agent.cf): a minimal HTTP/1.x
//! server that answers `GET /metrics` with `agent::metrics` rendered from the protocol loop's
//! own status answer — from memory, no fork, no file. Everything a client sends is hostile until
//! proven otherwise: at most [`MAX_CLIENTS`] at once, [`MAX_REQUEST`] bytes of request head,
//! [`CLIENT_TIMEOUT`] to send it, and any other request is refused in one short answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::ControlCall;
use crate::agent::control::{Answer, Request};
use crate::agent::metrics;

const MAX_CLIENTS: usize = 16;
const MAX_REQUEST: usize = 8 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts scrapes until the agent stops (the task is aborted).
pub(super) async fn serve(listener: TcpListener, calls: mpsc::Sender<ControlCall>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Over the limit the connection is closed at once: scrapers retry, floods cost nothing.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, calls)).await;
        });
    }
}

/// What the request head asks for: the path of a GET, or why it is refused.
fn route(head: &[u8]) -> Result<(), (&'static str, &'static str)> {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(b"");
    let mut words = line.split(|&b| b == b' ');
    match (words.next(), words.next(), words.next()) {
        (Some(b"GET"), Some(path), Some(version)) if version.starts_with(b"HTTP/1.") => {
            let path = path.split(|&b| b == b'?').next().unwrap_or(b"");
            if path == b"/metrics" {
                Ok(())
            } else {
                Err(("404 Not Found", "only /metrics is served\n"))
            }
        }
        (Some(b"GET"), _, _) => Err(("400 Bad Request", "bad request line\n")),
        _ => Err(("405 Method Not Allowed", "only GET /metrics\n")),
    }
}

async fn answer(mut stream: TcpStream, calls: mpsc::Sender<ControlCall>) {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST {
            let _ = respond(&mut stream, "431 Request Header Fields Too Large", "", b"").await;
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    if let Err((status, body)) = route(&head) {
        let _ = respond(&mut stream, status, "text/plain", body.as_bytes()).await;
        return;
    }
    let (reply, answered) = oneshot::channel();
    if calls
        .send(ControlCall {
            request: Request::Status,
            reply,
        })
        .await
        .is_err()
    {
        return;
    }
    let Ok(Answer::Status(status)) = answered.await else {
        let _ = respond(&mut stream, "503 Service Unavailable", "", b"").await;
        return;
    };
    let body = metrics::render(&status, env!("CARGO_PKG_VERSION"));
    let _ = respond(
        &mut stream,
        "200 OK",
        metrics::CONTENT_TYPE,
        body.as_bytes(),
    )
    .await;
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(()));
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Ok(()));
        assert_eq!(
            route(b"GET / HTTP/1.1\r\n\r\n").unwrap_err().0,
            "404 Not Found"
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n").unwrap_err().0,
            "405 Method Not Allowed"
        );
        assert_eq!(
            route(b"GET /metrics\r\n\r\n").unwrap_err().0,
            "400 Bad Request"
        );
        assert_eq!(
            route(b"\xff\x00junk").unwrap_err().0,
            "405 Method Not Allowed"
        );
        assert_eq!(route(b"").unwrap_err().0, "405 Method Not Allowed");
    }
}
