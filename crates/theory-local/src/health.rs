//! Readiness: `GET /healthz` over a plain TCP connection, polled until it answers `200` or the
//! deadline passes. No HTTP client is built for one request.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Asks `host:port` for `/healthz` once; true when it answers 200 with `{"ok":true}`.
pub async fn healthy_once(address: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        Some(text.starts_with("HTTP/1.1 200") && text.ends_with(theory_protocol::HEALTHZ_BODY))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten().unwrap_or(false)
}

/// Polls until healthy, backing off from 1 ms to 50 ms; false when `deadline` passes first.
pub async fn wait_healthy(address: &str, deadline: Instant) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        if healthy_once(address).await {
            return true;
        }
        if Instant::now() + pause > deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
