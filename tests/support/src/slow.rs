//! Slow and idle clients over plain TCP, and an honest one: what the servers' connection limits
//! are tested with (slowloris, a silent client, a plain `GET`).

// Test support: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest any one slow client is kept going: every loop here stops by itself.
const GIVE_UP: Duration = Duration::from_secs(20);

/// A client that sends a request header one byte every `every` (slowloris) and never finishes
/// it. Returns how long the server kept the connection open, or `None` when it was still open
/// after `GIVE_UP` (20 s).
pub async fn slow_header(addr: SocketAddr, every: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .ok()?;
    let mut buf = [0u8; 512];
    while start.elapsed() < GIVE_UP {
        // A closed connection shows as a read of 0 bytes (or an error, or a 408 answer).
        if let Ok(read) = tokio::time::timeout(every, tcp.read(&mut buf)).await {
            return match read {
                Ok(0) | Err(_) => Some(start.elapsed()),
                Ok(_) => closed_after(&mut tcp, start).await,
            };
        }
        if tcp.write_all(b"a").await.is_err() {
            return Some(start.elapsed());
        }
    }
    None
}

/// A client that connects and sends nothing (for a TLS server: never starts its handshake).
/// Returns how long the server kept the connection open, or `None` past `GIVE_UP` (20 s).
pub async fn silent(addr: SocketAddr) -> Option<Duration> {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    closed_after(&mut tcp, start).await
}

/// Read until the server closes `tcp`: the time since `start`, or `None` past [`GIVE_UP`].
async fn closed_after(tcp: &mut TcpStream, start: Instant) -> Option<Duration> {
    let mut buf = [0u8; 512];
    while start.elapsed() < GIVE_UP {
        match tokio::time::timeout(GIVE_UP, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
    None
}

/// One honest `GET path` on a connection of its own: the status, and how long it took.
pub async fn honest_get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(GIVE_UP, tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = std::str::from_utf8(&answer[9..12])
        .unwrap()
        .parse()
        .unwrap();
    (status, start.elapsed())
}
