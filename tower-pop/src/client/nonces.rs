//! The latest server nonce per origin (RFC 9449 §8.2, §9), bounded.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

// The 0.1 path of this default, which lives in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::CLIENT_NONCE_ORIGINS as DEFAULT_NONCE_ORIGINS;

/// The latest `DPoP-Nonce` each origin (`scheme://host:port`) sent, to put into the next proof
/// for that origin (RFC 9449 §8.2: "until the server provides a new one").
///
/// Bounded: at most [`capacity`](Self::capacity) origins; remembering a new origin when full
/// forgets the one updated longest ago. Shared between clients and layers through an `Arc`; a
/// nonce is no secret (the server sends it in the clear), but `Debug` shows only the count.
///
/// ```
/// use tower_pop::client::NonceStore;
///
/// let store = NonceStore::with_capacity(2);
/// store.insert("https://a.example:443", "n1");
/// store.insert("https://b.example:443", "n2");
/// store.insert("https://a.example:443", "n3"); // a newer nonce for a
/// store.insert("https://c.example:443", "n4"); // full: b, the oldest, goes
/// assert_eq!(store.get("https://a.example:443").as_deref(), Some("n3"));
/// assert_eq!(store.get("https://b.example:443"), None);
/// assert_eq!(store.len(), 2);
/// ```
pub struct NonceStore {
    capacity: usize,
    map: Mutex<Map>,
}

#[derive(Default)]
struct Map {
    /// origin -> (nonce, when it was last updated).
    entries: HashMap<String, (String, u64)>,
    tick: u64,
}

impl NonceStore {
    /// An empty store for [`CLIENT_NONCE_ORIGINS`](crate::defaults::CLIENT_NONCE_ORIGINS) origins.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(crate::defaults::CLIENT_NONCE_ORIGINS)
    }

    /// An empty store for at most `capacity` origins (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest nonce `origin` sent, if remembered.
    #[must_use]
    pub fn get(&self, origin: &str) -> Option<String> {
        self.lock().entries.get(origin).map(|(n, _)| n.clone())
    }

    /// Remember `nonce` as `origin`'s latest, forgetting the least recently updated origin if
    /// the store is full.
    pub fn insert(&self, origin: &str, nonce: &str) {
        let capacity = self.capacity;
        let mut map = self.lock();
        map.tick += 1;
        let tick = map.tick;
        if let Some(entry) = map.entries.get_mut(origin) {
            if entry.0 != nonce {
                nonce.clone_into(&mut entry.0);
            }
            entry.1 = tick;
            return;
        }
        if map.entries.len() >= capacity {
            let oldest = map
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(o, _)| o.clone());
            if let Some(oldest) = oldest {
                map.entries.remove(&oldest);
            }
        }
        map.entries
            .insert(origin.to_owned(), (nonce.to_owned(), tick));
    }

    /// Forget `origin`'s nonce.
    pub fn remove(&self, origin: &str) {
        self.lock().entries.remove(origin);
    }

    /// How many origins are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no origin is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most origins remembered at once.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for NonceStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceStore")
            .field("origins", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_map_is_bounded_and_evicts_the_oldest() {
        let store = NonceStore::new();
        for i in 0..3000 {
            store.insert(&format!("https://h{i}.example:443"), &format!("n{i}"));
        }
        assert_eq!(store.len(), crate::defaults::CLIENT_NONCE_ORIGINS);
        // The last 1024 origins are there, the earlier ones are gone.
        assert_eq!(
            store.get("https://h2999.example:443").as_deref(),
            Some("n2999")
        );
        assert_eq!(
            store.get("https://h1976.example:443").as_deref(),
            Some("n1976")
        );
        assert_eq!(store.get("https://h1975.example:443"), None);
        assert_eq!(store.get("https://h0.example:443"), None);
    }

    #[test]
    fn an_update_makes_an_origin_young_again() {
        let store = NonceStore::with_capacity(2);
        store.insert("a", "1");
        store.insert("b", "2");
        store.insert("a", "3");
        store.insert("c", "4");
        assert_eq!(store.get("a").as_deref(), Some("3"));
        assert_eq!(store.get("b"), None);
        assert_eq!(store.get("c").as_deref(), Some("4"));
        store.remove("a");
        assert_eq!(store.len(), 1);
        assert_eq!(NonceStore::with_capacity(0).capacity(), 1);
    }

    #[test]
    fn debug_shows_no_nonce() {
        let store = NonceStore::new();
        store.insert("https://a.example:443", "the-nonce-value");
        let debug = format!("{store:?}");
        assert!(!debug.contains("the-nonce-value") && !debug.contains("a.example"));
    }
}
