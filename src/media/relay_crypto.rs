//! Sealing of the media relay's datagrams (AES-256-GCM, ring): the relay may cross networks
//! the cluster does not own (brands presenting from other cities), so nobody on the path can
//! read the media, inject packets into a show or redirect a flow.
//!
//! Each relay subscription has its own 256-bit key, chosen by the receiving node (the edge)
//! with the subscription id and sent to the origin over NATS only. A datagram is
//! `tag u8 | sub u64 | counter u64 | ciphertext | GCM tag (16)`: the first 17 bytes are the
//! additional authenticated data, and the nonce is the direction (origin → edge, or edge →
//! origin) followed by the counter, so one key serves both directions without ever reusing a
//! nonce. A sender's counter starts at the wall clock in nanoseconds and counts up, so an
//! origin that restarts and is handed the same key again never reuses a nonce either. A
//! receiver keeps a 64-datagram window of counters and drops replays.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of the clear header: tag, subscription id, counter.
pub const HEADER: usize = 1 + 8 + 8;
/// Bytes of the GCM tag at the end.
pub const TAG_LEN: usize = 16;

/// Which way a datagram goes (the first four bytes of its nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Media, from the origin to an edge.
    ToEdge = 1,
    /// `HELLO` and `PLI`, from an edge to the origin.
    ToOrigin = 2,
}

/// A relay subscription as the edge chose it: its id and its key.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubKey {
    pub id: u64,
    pub key: [u8; 32],
}

impl SubKey {
    pub fn random() -> SubKey {
        SubKey {
            id: rand::random(),
            key: rand::random(),
        }
    }
}

impl std::fmt::Debug for SubKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubKey({:016x}, key hidden)", self.id)
    }
}

/// One side of a subscription: seals what it sends, opens what it receives.
pub struct Sealed {
    sub: u64,
    key: LessSafeKey,
    /// The key's bytes, only to compare (a renewal must come with the same key).
    raw: [u8; 32],
    sends: Direction,
    counter: AtomicU64,
    window: parking_lot::Mutex<ReplayWindow>,
}

impl Sealed {
    /// The side that sends `sends` (and receives the other direction).
    pub fn new(sub: &SubKey, sends: Direction) -> Sealed {
        let key = UnboundKey::new(&AES_256_GCM, &sub.key).expect("a 32-byte AES-256 key");
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Sealed {
            sub: sub.id,
            key: LessSafeKey::new(key),
            raw: sub.key,
            sends,
            counter: AtomicU64::new(start),
            window: parking_lot::Mutex::new(ReplayWindow::default()),
        }
    }

    pub fn sub(&self) -> u64 {
        self.sub
    }

    pub fn same_key(&self, sub: &SubKey) -> bool {
        self.raw == sub.key
    }

    /// Writes into `out` (cleared first) the datagram with `tag` carrying `body`.
    pub fn seal(&self, tag: u8, body: &[u8], out: &mut Vec<u8>) {
        let counter = self.counter.fetch_add(1, Ordering::Relaxed);
        out.clear();
        out.push(tag);
        out.extend_from_slice(&self.sub.to_be_bytes());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(body);
        let (head, text) = out.split_at_mut(HEADER);
        let t = self
            .key
            .seal_in_place_separate_tag(nonce(self.sends, counter), Aad::from(&*head), text)
            .expect("sealing cannot fail for a datagram's size");
        out.extend_from_slice(t.as_ref());
    }

    /// The body of a datagram this side receives (the other direction), decrypted in place;
    /// `None` if it is not authentic (wrong key, altered, the wrong direction) or a replay.
    pub fn open<'a>(&self, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        if datagram.len() < HEADER + TAG_LEN || be_u64(&datagram[1..9]) != self.sub {
            return None;
        }
        let counter = be_u64(&datagram[9..17]);
        let from = match self.sends {
            Direction::ToEdge => Direction::ToOrigin,
            Direction::ToOrigin => Direction::ToEdge,
        };
        let (head, sealed) = datagram.split_at_mut(HEADER);
        let body = self
            .key
            .open_in_place(nonce(from, counter), Aad::from(&*head), sealed)
            .ok()?;
        // Only an authentic datagram moves the window.
        self.window.lock().accept(counter).then_some(&*body)
    }
}

fn nonce(d: Direction, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&(d as u32).to_be_bytes());
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The subscription id of a datagram (before it is opened).
pub fn sub_of(datagram: &[u8]) -> Option<u64> {
    (datagram.len() >= HEADER + TAG_LEN).then(|| be_u64(&datagram[1..9]))
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

/// The counters seen lately: the highest, and which of the 64 below it.
#[derive(Default)]
struct ReplayWindow {
    top: Option<u64>,
    seen: u64,
}

impl ReplayWindow {
    /// Whether `c` is new (then it is recorded).
    fn accept(&mut self, c: u64) -> bool {
        let Some(top) = self.top else {
            self.top = Some(c);
            self.seen = 1;
            return true;
        };
        if c > top {
            let shift = c - top;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = Some(c);
            return true;
        }
        let back = top - c;
        if back >= 64 || self.seen & (1 << back) != 0 {
            return false;
        }
        self.seen |= 1 << back;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealed, Sealed, SubKey) {
        let k = SubKey::random();
        (
            Sealed::new(&k, Direction::ToEdge),
            Sealed::new(&k, Direction::ToOrigin),
            k,
        )
    }

    #[test]
    fn a_sealed_datagram_opens_on_the_other_side_only() {
        let (origin, edge, _) = pair();
        let mut d = Vec::new();
        origin.seal(0xC1, b"media payload", &mut d);
        assert_eq!(d.len(), HEADER + 13 + TAG_LEN);
        assert!(
            !d.windows(5).any(|w| w == b"media"),
            "the payload is encrypted"
        );
        assert_eq!(sub_of(&d), Some(origin.sub()));
        // The origin cannot take its own datagram back as one from the edge (direction).
        assert_eq!(origin.open(&mut d.clone()), None);
        assert_eq!(edge.open(&mut d.clone()), Some(&b"media payload"[..]));
        let mut back = Vec::new();
        edge.seal(0xC2, b"", &mut back);
        assert_eq!(origin.open(&mut back), Some(&b""[..]));
    }

    #[test]
    fn altered_forged_and_replayed_datagrams_are_dropped() {
        let (origin, edge, k) = pair();
        let mut d = Vec::new();
        origin.seal(0xC1, b"frame", &mut d);
        for i in [0, 5, 12, HEADER, d.len() - 1] {
            let mut bad = d.clone();
            bad[i] ^= 0x01;
            assert_eq!(edge.open(&mut bad), None, "byte {i} altered");
        }
        // Someone who knows the subscription id but not the key.
        let forger = Sealed::new(
            &SubKey {
                id: k.id,
                key: [7; 32],
            },
            Direction::ToEdge,
        );
        let mut forged = Vec::new();
        forger.seal(0xC1, b"injected", &mut forged);
        assert_eq!(edge.open(&mut forged), None);
        assert!(edge.open(&mut d.clone()).is_some());
        assert_eq!(edge.open(&mut d.clone()), None, "a replay");
        assert_eq!(edge.open(&mut d[..HEADER + 3].to_vec()), None, "truncated");
    }

    #[test]
    fn the_window_takes_reordered_counters_once_and_forgets_old_ones() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(1000));
        assert!(w.accept(1002));
        assert!(w.accept(1001), "late but new");
        assert!(!w.accept(1001));
        assert!(!w.accept(1002));
        assert!(w.accept(1100));
        assert!(!w.accept(1000), "older than the window");
        assert!(w.accept(1100 - 63));
        assert!(!w.accept(1100 - 64));
    }
}
