//! Rate limits of the registration endpoint: token buckets per client address and per room,
//! bounded in memory.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;

/// Buckets kept per map; past this, the fullest (idle) ones are forgotten first.
const MAX_KEYS: usize = 100_000;

/// A bucket's shape: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

/// The endpoint's limits (defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegistrationLimits {
    /// Registrations from one client address: 10 at once, then 6 a minute.
    pub per_address: Rate,
    /// Registrations into one room, from everyone: 300 at once, then 1,200 a minute.
    pub per_room: Rate,
    /// Status polls (and personal-link fetches) from one address: 30 at once, then 60 a
    /// minute (a page polls every 5 s).
    pub polls_per_address: Rate,
}

impl Default for RegistrationLimits {
    fn default() -> Self {
        RegistrationLimits {
            per_address: Rate {
                burst: 10,
                per_minute: 6,
            },
            per_room: Rate {
                burst: 300,
                per_minute: 1200,
            },
            polls_per_address: Rate {
                burst: 30,
                per_minute: 60,
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Token buckets by key.
pub struct Buckets<K> {
    rate: Rate,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rate: Rate) -> Buckets<K> {
        Buckets {
            rate,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now_ms`, or says how many seconds until one is there.
    pub fn take(&self, key: &K, now_ms: i64) -> Result<(), u64> {
        let burst = f64::from(self.rate.burst.max(1));
        let per_ms = f64::from(self.rate.per_minute) / 60_000.0;
        let mut map = self.map.lock();
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            // Forget the buckets that have refilled: they carry no information.
            map.retain(|_, b| b.tokens + (now_ms - b.at_ms) as f64 * per_ms < burst);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let elapsed = (now_ms - b.at_ms).max(0) as f64;
        b.tokens = (b.tokens + elapsed * per_ms).min(burst);
        b.at_ms = now_ms.max(b.at_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        if per_ms <= 0.0 {
            return Err(60);
        }
        let wait_ms = (1.0 - b.tokens) / per_ms;
        Err(((wait_ms / 1000.0).ceil() as u64).max(1))
    }

    /// Gives back a token taken for a request that was refused for another reason before it
    /// did any work (so one limit does not eat another's budget).
    pub fn give_back(&self, key: &K) {
        if let Some(b) = self.map.lock().get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(f64::from(self.rate.burst.max(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate() {
        let b = Buckets::new(Rate {
            burst: 2,
            per_minute: 6,
        });
        assert!(b.take(&"a", 0).is_ok());
        assert!(b.take(&"a", 0).is_ok());
        assert_eq!(b.take(&"a", 0), Err(10));
        assert!(b.take(&"b", 0).is_ok(), "another key has its own bucket");
        assert_eq!(b.take(&"a", 5_000), Err(5));
        assert!(b.take(&"a", 10_000).is_ok());
        b.give_back(&"a");
        assert!(b.take(&"a", 10_000).is_ok());
        assert!(b.take(&"a", 10_000).is_err());
    }
}
