//! What a server bounds per connection, so that slow or many clients cannot exhaust it: the
//! time to send a request header, the time a connection may stay idle, how many connections and
//! how many TLS handshakes it holds at once. Plain data: `axum_pop::serve` and
//! `actix_pop::serve` apply the same [`ServerLimits`] to their servers.
//!
//! ```
//! use std::time::Duration;
//! use tower_pop::server_limits::ServerLimits;
//!
//! let mut limits = ServerLimits::default();
//! limits.header_read_timeout = Duration::from_secs(5);
//! assert_eq!(limits.max_connections, 10_000);
//! ```

use std::time::Duration;

use crate::defaults;

/// The bounds a server keeps on its connections. Every default is in [`crate::defaults`], with
/// its reason. A zero duration or count is read as the smallest that works (1 ms, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Longest time to receive a request's whole header, also the wait for the next request on
    /// a keep-alive HTTP/1.1 connection. Default
    /// [`SERVER_HEADER_READ_TIMEOUT`](defaults::SERVER_HEADER_READ_TIMEOUT).
    pub header_read_timeout: Duration,
    /// Longest time a connection may carry no byte either way. Default
    /// [`SERVER_IDLE_TIMEOUT`](defaults::SERVER_IDLE_TIMEOUT).
    pub idle_timeout: Duration,
    /// Connections held at once; past it, new ones wait in the listen backlog. Default
    /// [`SERVER_MAX_CONNECTIONS`](defaults::SERVER_MAX_CONNECTIONS).
    pub max_connections: usize,
    /// TLS handshakes run at once. Default
    /// [`SERVER_MAX_TLS_HANDSHAKES`](defaults::SERVER_MAX_TLS_HANDSHAKES).
    pub max_tls_handshakes: usize,
    /// Longest time from accepting a connection to the end of its TLS handshake, the wait for a
    /// handshake slot included. Default
    /// [`SERVER_TLS_HANDSHAKE_TIMEOUT`](defaults::SERVER_TLS_HANDSHAKE_TIMEOUT).
    pub tls_handshake_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: defaults::SERVER_HEADER_READ_TIMEOUT,
            idle_timeout: defaults::SERVER_IDLE_TIMEOUT,
            max_connections: defaults::SERVER_MAX_CONNECTIONS,
            max_tls_handshakes: defaults::SERVER_MAX_TLS_HANDSHAKES,
            tls_handshake_timeout: defaults::SERVER_TLS_HANDSHAKE_TIMEOUT,
        }
    }
}
