//! One red packet: its fair split, fixed when dropped, and which position of it each viewer opened.
//!
//! The split is drawn once (`split`) and stored with the packet, so a restart hands out the
//! same amounts. Each grab takes the lowest free position; a grab whose write failed gives
//! its position back, to be handed out again.

use crate::model::{PacketGrab, RedPacket};
use foldhash::{HashMap, HashMapExt};
use rand::{Rng, RngCore};
use std::collections::{BTreeMap, BTreeSet};

/// Splits `total` cents into `count` amounts by the double-mean method: each of the first
/// `count - 1` grabbers gets a uniform amount in `[1, 2 × (remaining / left) − 1]` cents and
/// the last gets what is left. Every amount is ≥ 1 cent and they sum to `total` exactly.
/// Requires `total ≥ count ≥ 1`.
pub fn split(total: i64, count: u32, rng: &mut (impl RngCore + ?Sized)) -> Vec<i64> {
    assert!(count >= 1 && total >= count as i64, "total ≥ count ≥ 1");
    let mut left = total;
    let mut out = Vec::with_capacity(count as usize);
    for k in (2..=count as i64).rev() {
        // left ≥ k, so max ≥ 1; and left − max ≥ k − 1, so everyone after gets ≥ 1 cent.
        let max = 2 * left / k - 1;
        let amount = rng.random_range(1..=max);
        out.push(amount);
        left -= amount;
    }
    out.push(left);
    out
}

/// What a grab gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Position `index` of the split, worth `amount_cents`; `emptied`: it was the last one.
    Won {
        index: u32,
        amount_cents: i64,
        emptied: bool,
    },
    AlreadyGrabbed {
        amount_cents: i64,
    },
    /// The packet is for dealers of other tiers.
    NotEligible,
    Expired,
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPacketState {
    /// The packet; its `grabs` are kept in `positions` instead and rebuilt by `record`.
    packet: RedPacket,
    holders: HashMap<String, u32>,
    /// Position → who opened it.
    positions: BTreeMap<u32, String>,
    /// Positions below `next_position` that are not taken (given back).
    free: BTreeSet<u32>,
    next_position: u32,
}

impl RedPacketState {
    /// A packet just dropped, or one from the store with its grabs.
    pub fn restore(mut packet: RedPacket) -> RedPacketState {
        let grabs = std::mem::take(&mut packet.grabs);
        let mut p = RedPacketState {
            packet,
            holders: HashMap::new(),
            positions: BTreeMap::new(),
            free: BTreeSet::new(),
            next_position: 0,
        };
        for g in grabs {
            if g.index >= p.packet.count || p.positions.contains_key(&g.index) {
                tracing::error!(packet = %p.packet.id, index = g.index, "red packet grab skipped");
                continue;
            }
            p.holders.insert(g.viewer_id.clone(), g.index);
            p.positions.insert(g.index, g.viewer_id);
        }
        p.next_position = p.positions.keys().next_back().map_or(0, |i| i + 1);
        p.free = (0..p.next_position)
            .filter(|i| !p.positions.contains_key(i))
            .collect();
        p
    }

    pub fn id(&self) -> &str {
        &self.packet.id
    }

    /// The packet with its grabs by position, as the store has it.
    pub fn record(&self) -> RedPacket {
        RedPacket {
            grabs: self
                .positions
                .iter()
                .map(|(&index, viewer)| PacketGrab {
                    viewer_id: viewer.clone(),
                    index,
                    amount_cents: self.packet.amounts[index as usize],
                })
                .collect(),
            ..self.packet.clone()
        }
    }

    /// The packet as shown before it is all taken: no split.
    pub fn without_split(&self) -> RedPacket {
        RedPacket {
            amounts: Vec::new(),
            ..self.record()
        }
    }

    pub fn packet(&self) -> &RedPacket {
        &self.packet
    }

    pub fn grabbed(&self) -> u32 {
        self.positions.len() as u32
    }

    pub fn left(&self) -> u32 {
        self.packet.count - self.grabbed()
    }

    pub fn expired(&self, now: i64) -> bool {
        self.packet.expires_ms <= now
    }

    /// Decides one grab by `viewer_id`, a dealer of `tier` (or not a dealer).
    pub fn grab(&mut self, viewer_id: &str, tier: Option<&str>, now: i64) -> PacketOutcome {
        if let Some(&index) = self.holders.get(viewer_id) {
            return PacketOutcome::AlreadyGrabbed {
                amount_cents: self.packet.amounts[index as usize],
            };
        }
        let tiers = &self.packet.tiers;
        if !tiers.is_empty() && !tier.is_some_and(|t| tiers.iter().any(|x| x == t)) {
            return PacketOutcome::NotEligible;
        }
        if self.expired(now) {
            return PacketOutcome::Expired;
        }
        if self.left() == 0 {
            return PacketOutcome::Empty;
        }
        let index = match self.free.pop_first() {
            Some(i) => i,
            None => {
                self.next_position += 1;
                self.next_position - 1
            }
        };
        self.holders.insert(viewer_id.to_string(), index);
        self.positions.insert(index, viewer_id.to_string());
        PacketOutcome::Won {
            index,
            amount_cents: self.packet.amounts[index as usize],
            emptied: self.left() == 0,
        }
    }

    /// A grab's write failed: position `index` goes back, if `viewer_id` holds it. Only the
    /// first call does anything; returns whether it did.
    pub fn give_back(&mut self, viewer_id: &str, index: u32) -> bool {
        if self.holders.get(viewer_id) != Some(&index) {
            return false;
        }
        self.holders.remove(viewer_id);
        self.positions.remove(&index);
        if index + 1 == self.next_position {
            // The top position: shrink, so the state is what a restore would build.
            self.next_position = index;
            while let Some(&top) = self.free.last() {
                if top + 1 != self.next_position {
                    break;
                }
                self.free.pop_last();
                self.next_position = top;
            }
        } else {
            self.free.insert(index);
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    pub(crate) fn packet(amounts: Vec<i64>, tiers: Vec<String>) -> RedPacket {
        RedPacket {
            id: "r1".into(),
            total_cents: amounts.iter().sum(),
            count: amounts.len() as u32,
            tiers,
            message: String::new(),
            amounts,
            created_ms: 0,
            expires_ms: 1000,
            grabs: Vec::new(),
        }
    }

    #[test]
    fn split_sums_exactly_and_every_share_is_at_least_a_cent() {
        let mut rng = StdRng::seed_from_u64(7);
        for (total, count) in [
            (1, 1),
            (5, 5),
            (100, 3),
            (10_000, 100),
            (99_999, 7),
            (10_000, 10_000),
        ] {
            for _ in 0..50 {
                let a = split(total, count, &mut rng);
                assert_eq!(a.len(), count as usize);
                assert_eq!(a.iter().sum::<i64>(), total, "{total} / {count}");
                assert!(a.iter().all(|x| *x >= 1), "{a:?}");
            }
        }
    }

    #[test]
    fn split_is_fair_on_average_for_every_position() {
        // The double-mean method gives every position the same expected amount.
        let mut rng = StdRng::seed_from_u64(11);
        let (total, count, rounds) = (10_000i64, 5u32, 20_000);
        let mut sums = vec![0i64; count as usize];
        for _ in 0..rounds {
            for (i, a) in split(total, count, &mut rng).iter().enumerate() {
                sums[i] += a;
            }
        }
        let mean = total as f64 / count as f64;
        for s in sums {
            let avg = s as f64 / rounds as f64;
            assert!((avg - mean).abs() < mean * 0.05, "average {avg} vs {mean}");
        }
    }

    #[test]
    fn one_share_per_viewer_until_empty() {
        let mut p = RedPacketState::restore(packet(vec![10, 20], Vec::new()));
        assert_eq!(
            p.grab("a", None, 5),
            PacketOutcome::Won {
                index: 0,
                amount_cents: 10,
                emptied: false
            }
        );
        assert_eq!(
            p.grab("a", None, 5),
            PacketOutcome::AlreadyGrabbed { amount_cents: 10 }
        );
        assert_eq!(
            p.grab("b", None, 5),
            PacketOutcome::Won {
                index: 1,
                amount_cents: 20,
                emptied: true
            }
        );
        assert_eq!(p.grab("c", None, 5), PacketOutcome::Empty);
        assert_eq!(p.left(), 0);
    }

    #[test]
    fn tiers_and_expiry_are_checked() {
        let mut p = RedPacketState::restore(packet(vec![10, 20], vec!["gold".into()]));
        assert_eq!(p.grab("a", None, 5), PacketOutcome::NotEligible);
        assert_eq!(p.grab("a", Some("silver"), 5), PacketOutcome::NotEligible);
        assert_eq!(p.grab("a", Some("gold"), 1000), PacketOutcome::Expired);
        assert!(matches!(
            p.grab("a", Some("gold"), 999),
            PacketOutcome::Won { .. }
        ));
    }

    #[test]
    fn a_share_given_back_is_handed_out_again_exactly_once() {
        let mut p = RedPacketState::restore(packet(vec![10, 20, 30], Vec::new()));
        p.grab("a", None, 0);
        p.grab("b", None, 0);
        assert!(!p.give_back("b", 0), "b does not hold position 0");
        assert!(p.give_back("a", 0));
        assert!(!p.give_back("a", 0), "only once");
        assert_eq!(p.left(), 2);
        assert_eq!(
            p.grab("c", None, 0),
            PacketOutcome::Won {
                index: 0,
                amount_cents: 10,
                emptied: false
            }
        );
        assert_eq!(
            p.grab("a", None, 0),
            PacketOutcome::Won {
                index: 2,
                amount_cents: 30,
                emptied: true
            }
        );
    }

    #[test]
    fn restore_from_the_written_grabs_equals_the_state_before() {
        let mut p = RedPacketState::restore(packet(vec![10, 20, 30, 40], Vec::new()));
        for v in ["a", "b", "c", "d"] {
            p.grab(v, None, 0);
        }
        p.give_back("b", 1);
        p.give_back("d", 3);
        p.give_back("c", 2);
        assert_eq!(RedPacketState::restore(p.record()), p);
        let grabs: Vec<(String, u32)> = p
            .record()
            .grabs
            .into_iter()
            .map(|g| (g.viewer_id, g.index))
            .collect();
        assert_eq!(grabs, [("a".to_string(), 0)]);
    }
}
