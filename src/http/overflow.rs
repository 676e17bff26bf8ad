//! The answer for a connection past [`super::MAX_CONNECTIONS`] that found
//! no free slot in time: `503` with `Retry-After: 1` and
//! `Connection: close`, sent so that the client actually reads it.
//!
//! Closing a socket while unread request bytes sit in its receive buffer
//! makes the kernel send a reset, which can destroy the answer before the
//! client reads it. So the request head is read first, and after the
//! answer the connection is half-closed and drained until the client
//! closes it, each step within a short, fixed time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections waiting for a slot or being answered 503 at once. Each
/// holds a file descriptor for about two seconds at most; with the
/// served ones this stays well under the common 1024-descriptor limit.
pub(super) const MAX_WAITING: usize = 512;
/// Time for the request head to arrive before the answer goes out anyway.
const HEAD_WAIT: Duration = Duration::from_millis(500);
/// Time for writing the answer, and for the client to close afterwards.
const WRITE_WAIT: Duration = Duration::from_millis(500);
const LINGER: Duration = Duration::from_millis(500);
/// Most request bytes read and dropped.
const MAX_READ: usize = 64 * 1024;

const BODY: &str = r#"{"error":"too many connections: retry in a second"}"#;

fn response() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
}

/// Answers 503 and closes, within about 1.5 s whatever the client does.
pub(super) async fn refuse(mut stream: TcpStream) {
    let mut buf = vec![0u8; 4096];
    let mut head = Vec::new();
    let _ = tokio::time::timeout(HEAD_WAIT, async {
        while head.len() < MAX_READ {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let written = tokio::time::timeout(WRITE_WAIT, async {
        stream.write_all(response().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let mut read = head.len();
    let _ = tokio::time::timeout(LINGER, async {
        while read < MAX_READ {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_complete_http() {
        let r = response();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains("retry-after: 1\r\n"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
