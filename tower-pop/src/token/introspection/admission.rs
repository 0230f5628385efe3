//! Who may start an introspection call, so that a flood of opaque tokens cannot starve honest
//! users of the authorization server (RFC 7662 §4 leaves protecting the endpoint to us): at
//! most `max_concurrent` calls in flight; a bounded, short wait for a free slot; and at most a
//! share of the slots, waiting or in flight, for the requests of one peer.
//!
//! A peer is the TCP peer's address as the adapter gave it (an IPv4 address, or an IPv6 /64,
//! which one host usually holds whole). Requests without one (a bare tower stack with no
//! [`PeerAddr`](crate::request::PeerAddr)) are not counted per peer. Behind a proxy every
//! client is the proxy: raise the share to `max_concurrent` there, and limit per client at
//! the proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Why a call could not start; both are answered 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The peer already holds its share of the slots.
    PeerOverShare,
    /// No slot came free within the permit wait.
    Busy,
}

/// The slots and the count per peer.
#[derive(Debug)]
pub(super) struct Admission {
    calls: Semaphore,
    wait: Duration,
    share: usize,
    /// Requests waiting or in flight, per peer; a peer leaves the map at zero, so it holds at
    /// most one entry per request in progress.
    peers: Mutex<HashMap<u128, usize>>,
}

/// Held while a call may run: its slot and its place in its peer's share.
pub(super) struct Pass<'a> {
    _slot: SemaphorePermit<'a>,
    _peer: Option<PeerPlace<'a>>,
}

struct PeerPlace<'a> {
    admission: &'a Admission,
    peer: u128,
}

impl Drop for PeerPlace<'_> {
    fn drop(&mut self) {
        let mut peers = self.admission.lock();
        if let Some(count) = peers.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                peers.remove(&self.peer);
            }
        }
    }
}

impl Admission {
    /// `max_concurrent` slots (at least 1), a wait of at most `wait` for one, and `share`
    /// slots at most (at least 1) per peer.
    pub(super) fn new(max_concurrent: usize, wait: Duration, share: usize) -> Self {
        Self {
            calls: Semaphore::new(max_concurrent.max(1)),
            wait,
            share: share.max(1),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// A pass for one call from `peer`: at once when the peer is over its share, after at most
    /// the wait when every slot is busy.
    pub(super) async fn enter(&self, peer: Option<IpAddr>) -> Result<Pass<'_>, Refused> {
        let place = peer.map(|ip| self.take_place(ip)).transpose()?;
        let slot = tokio::time::timeout(self.wait, self.calls.acquire())
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Busy)?;
        Ok(Pass {
            _slot: slot,
            _peer: place,
        })
    }

    fn take_place(&self, ip: IpAddr) -> Result<PeerPlace<'_>, Refused> {
        let peer = peer_key(ip);
        let mut peers = self.lock();
        let count = peers.entry(peer).or_insert(0);
        if *count >= self.share {
            return Err(Refused::PeerOverShare);
        }
        *count += 1;
        Ok(PeerPlace {
            admission: self,
            peer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, usize>> {
        // The map holds plain counts, each changed in one statement: usable after a panic.
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Peers with requests in progress (for tests).
    #[cfg(test)]
    fn peers(&self) -> usize {
        self.lock().len()
    }
}

/// An IPv4 address whole (also when mapped into IPv6), an IPv6 address by its /64.
fn peer_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        // Tagged with a bit above the IPv4 range, so no IPv6 /64 reads as an IPv4 address.
        IpAddr::V6(v6) => (v6.to_bits() & !u128::from(u64::MAX)) | (1 << 32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("an address"))
    }

    #[tokio::test]
    async fn one_peer_holds_at_most_its_share() {
        let admission = Admission::new(4, Duration::from_millis(10), 2);
        let a1 = admission.enter(ip("192.0.2.1")).await.expect("first");
        let a2 = admission.enter(ip("192.0.2.1")).await.expect("second");
        assert_eq!(
            admission.enter(ip("192.0.2.1")).await.err(),
            Some(Refused::PeerOverShare)
        );
        // The same host's IPv4-mapped address and another port are the same peer.
        assert_eq!(
            admission.enter(ip("::ffff:192.0.2.1")).await.err(),
            Some(Refused::PeerOverShare)
        );
        // Others still get the remaining slots.
        let b = admission
            .enter(ip("192.0.2.2"))
            .await
            .expect("another peer");
        let c = admission.enter(None).await.expect("no peer known");
        // Every slot busy: refused after the wait.
        assert_eq!(
            admission.enter(ip("192.0.2.3")).await.err(),
            Some(Refused::Busy)
        );
        drop((a1, b, c));
        let _again = admission
            .enter(ip("192.0.2.1"))
            .await
            .expect("a place came free");
        drop((a2, _again));
        assert_eq!(admission.peers(), 0, "no peer is left behind");
    }

    #[tokio::test]
    async fn an_ipv6_64_is_one_peer() {
        let admission = Admission::new(4, Duration::from_millis(10), 1);
        let _a = admission.enter(ip("2001:db8:0:1::1")).await.expect("first");
        assert_eq!(
            admission.enter(ip("2001:db8:0:1::ffff")).await.err(),
            Some(Refused::PeerOverShare)
        );
        let _b = admission
            .enter(ip("2001:db8:0:2::1"))
            .await
            .expect("another /64");
        assert_ne!(
            peer_key("0.0.0.1".parse().expect("v4")),
            peer_key("::1".parse().expect("v6"))
        );
    }

    #[tokio::test]
    async fn a_refused_wait_gives_its_place_back() {
        let admission = Admission::new(1, Duration::from_millis(10), 1);
        let _held = admission.enter(ip("192.0.2.1")).await.expect("held");
        assert_eq!(
            admission.enter(ip("192.0.2.2")).await.err(),
            Some(Refused::Busy)
        );
        assert_eq!(admission.peers(), 1, "only the holder is counted");
    }
}
