//! One flash sale's stock and who won what: grabs decided one at a time, never more than the stock.
//!
//! Every grab carries the dealer's key. The first answer to a (dealer, key) is remembered and
//! given again to a repeat, so a retry after a lost connection never wins a second unit. A
//! win whose write fails is undone: the unit goes back and the key is free again. Wins are
//! what the store keeps; the other answers are remembered for the life of the process.

use crate::model::{FlashSale, SalePhase};
use foldhash::{HashMap, HashMapExt};

/// Distinct keys one dealer may use per sale beyond its per-dealer limit (every answer is
/// remembered for its key, so keys are bounded).
pub const SPARE_GRAB_KEYS: u32 = 100;

/// What a grab gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrabOutcome {
    /// One unit, recorded as order number `order`.
    Won {
        order: u64,
    },
    SoldOut,
    LimitReached,
    /// Before the start (or while the room is not live).
    NotStarted,
    Ended,
    /// Not a dealer, or a tier without a sale price.
    NotEligible,
}

impl GrabOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            GrabOutcome::Won { .. } => "won",
            GrabOutcome::SoldOut => "sold_out",
            GrabOutcome::LimitReached => "limit_reached",
            GrabOutcome::NotStarted => "not_started",
            GrabOutcome::Ended => "ended",
            GrabOutcome::NotEligible => "not_eligible",
        }
    }
}

/// A grab's answer, and whether it repeats one given before (nothing changed then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrabAnswer {
    pub outcome: GrabOutcome,
    pub repeated: bool,
}

/// A dealer used more keys on this sale than it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyAttempts {
    pub max_keys: u32,
}

/// Who grabs: the viewer and the dealer tier it has now (`None`: not a dealer).
#[derive(Debug, Clone, Copy)]
pub struct Grabber<'a> {
    pub dealer_id: &'a str,
    pub tier: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct SaleState {
    sale: FlashSale,
    won_by_dealer: HashMap<String, u32>,
    /// (dealer, key) → the first answer.
    answers: HashMap<(String, String), GrabOutcome>,
    keys_by_dealer: HashMap<String, u32>,
}

impl SaleState {
    pub fn new(sale: FlashSale) -> SaleState {
        SaleState {
            sale,
            won_by_dealer: HashMap::new(),
            answers: HashMap::new(),
            keys_by_dealer: HashMap::new(),
        }
    }

    /// The sale as the store has it: `sale.remaining` as committed with the grants, and the
    /// wins (dealer, key, order number) it recorded.
    pub fn restore(
        sale: FlashSale,
        wins: impl IntoIterator<Item = (String, String, u64)>,
    ) -> SaleState {
        let mut s = SaleState::new(sale);
        for (dealer, key, order) in wins {
            s.remember(dealer, key, GrabOutcome::Won { order });
        }
        s
    }

    fn remember(&mut self, dealer: String, key: String, outcome: GrabOutcome) {
        if let GrabOutcome::Won { .. } = outcome {
            *self.won_by_dealer.entry(dealer.clone()).or_default() += 1;
        }
        *self.keys_by_dealer.entry(dealer.clone()).or_default() += 1;
        self.answers.insert((dealer, key), outcome);
    }

    pub fn sale(&self) -> &FlashSale {
        &self.sale
    }

    pub fn phase(&self, now: i64) -> SalePhase {
        self.sale.phase(now)
    }

    /// Units granted so far.
    pub fn granted(&self) -> u32 {
        self.sale.stock - self.sale.remaining
    }

    /// Units `dealer` won.
    pub fn won_by(&self, dealer: &str) -> u32 {
        self.won_by_dealer.get(dealer).copied().unwrap_or(0)
    }

    /// Decides one grab. `room_live`: the room takes grabs only while live; `win_order`: the
    /// order number a win takes. A repeated key gets its first answer and changes nothing.
    pub fn grab(
        &mut self,
        who: Grabber<'_>,
        key: &str,
        now: i64,
        room_live: bool,
        win_order: u64,
    ) -> Result<GrabAnswer, TooManyAttempts> {
        let id_key = (who.dealer_id.to_string(), key.to_string());
        if let Some(&outcome) = self.answers.get(&id_key) {
            return Ok(GrabAnswer {
                outcome,
                repeated: true,
            });
        }
        let max_keys = self.sale.per_dealer_limit.saturating_add(SPARE_GRAB_KEYS);
        if self.keys_by_dealer.get(who.dealer_id).copied().unwrap_or(0) >= max_keys {
            return Err(TooManyAttempts { max_keys });
        }
        let eligible = who.tier.and_then(|t| self.sale.price_for(t)).is_some();
        let outcome = match self.sale.phase(now) {
            _ if !eligible => GrabOutcome::NotEligible,
            SalePhase::Ended => GrabOutcome::Ended,
            SalePhase::Scheduled => GrabOutcome::NotStarted,
            _ if !room_live => GrabOutcome::NotStarted,
            SalePhase::SoldOut => GrabOutcome::SoldOut,
            SalePhase::Live if self.won_by(who.dealer_id) >= self.sale.per_dealer_limit => {
                GrabOutcome::LimitReached
            }
            SalePhase::Live => {
                self.sale.remaining -= 1;
                GrabOutcome::Won { order: win_order }
            }
        };
        self.remember(id_key.0, id_key.1, outcome);
        Ok(GrabAnswer {
            outcome,
            repeated: false,
        })
    }

    /// A win's write failed: the unit goes back and the key is free for a new attempt. Only
    /// the first call for a won key does anything; returns whether it did.
    pub fn undo_grant(&mut self, dealer: &str, key: &str) -> bool {
        let id_key = (dealer.to_string(), key.to_string());
        if !matches!(self.answers.get(&id_key), Some(GrabOutcome::Won { .. })) {
            return false;
        }
        self.answers.remove(&id_key);
        self.sale.remaining += 1;
        for counts in [&mut self.won_by_dealer, &mut self.keys_by_dealer] {
            if let Some(c) = counts.get_mut(dealer) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(dealer);
                }
            }
        }
        true
    }

    /// The host ends the sale now. Returns whether it was still running.
    pub fn end(&mut self, now: i64) -> bool {
        if self.sale.phase(now) == SalePhase::Ended {
            return false;
        }
        self.sale.ended_ms = Some(now);
        true
    }

    /// The wins, (dealer, key) → order number, in no particular order.
    pub fn wins(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.answers.iter().filter_map(|((d, k), o)| match o {
            GrabOutcome::Won { order } => Some((d.as_str(), k.as_str(), *order)),
            _ => None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sale(stock: u32, per_dealer_limit: u32) -> FlashSale {
        FlashSale {
            id: "s1".into(),
            product_id: "p1".into(),
            brand_id: "b1".into(),
            stock,
            remaining: stock,
            per_dealer_limit,
            prices: vec![("gold".into(), 500)],
            start_ms: 100,
            end_ms: 10_000,
            ended_ms: None,
            created_ms: 0,
        }
    }

    fn gold(dealer: &str) -> Grabber<'_> {
        Grabber {
            dealer_id: dealer,
            tier: Some("gold"),
        }
    }

    fn grab(s: &mut SaleState, dealer: &str, key: &str, order: u64) -> GrabOutcome {
        s.grab(gold(dealer), key, 500, true, order).unwrap().outcome
    }

    #[test]
    fn never_grants_more_than_the_stock() {
        let mut s = SaleState::new(sale(3, 1));
        let wins = (0..10)
            .filter(|i| {
                matches!(
                    grab(&mut s, &format!("d{i}"), "k", *i),
                    GrabOutcome::Won { .. }
                )
            })
            .count();
        assert_eq!(wins, 3);
        assert_eq!((s.granted(), s.sale().remaining), (3, 0));
        assert_eq!(grab(&mut s, "late", "k", 99), GrabOutcome::SoldOut);
    }

    #[test]
    fn a_dealer_wins_at_most_its_limit() {
        let mut s = SaleState::new(sale(10, 2));
        let outcomes: Vec<GrabOutcome> = (0..4)
            .map(|i| grab(&mut s, "d1", &format!("k{i}"), i))
            .collect();
        assert_eq!(
            outcomes,
            [
                GrabOutcome::Won { order: 0 },
                GrabOutcome::Won { order: 1 },
                GrabOutcome::LimitReached,
                GrabOutcome::LimitReached
            ]
        );
        assert_eq!(s.won_by("d1"), 2);
    }

    #[test]
    fn a_repeated_key_gets_its_first_answer_and_changes_nothing() {
        let mut s = SaleState::new(sale(1, 1));
        assert_eq!(grab(&mut s, "d1", "k", 7), GrabOutcome::Won { order: 7 });
        let again = s.grab(gold("d1"), "k", 600, true, 8).unwrap();
        assert_eq!(
            again,
            GrabAnswer {
                outcome: GrabOutcome::Won { order: 7 },
                repeated: true
            }
        );
        assert_eq!(grab(&mut s, "d2", "k", 9), GrabOutcome::SoldOut);
        // d2's sold_out stays its answer for that key even after stock comes back.
        assert!(s.undo_grant("d1", "k"));
        assert_eq!(grab(&mut s, "d2", "k", 10), GrabOutcome::SoldOut);
        assert_eq!(grab(&mut s, "d2", "k2", 10), GrabOutcome::Won { order: 10 });
    }

    #[test]
    fn undo_gives_the_unit_back_exactly_once() {
        let mut s = SaleState::new(sale(2, 1));
        grab(&mut s, "d1", "k", 1);
        assert_eq!(s.sale().remaining, 1);
        assert!(s.undo_grant("d1", "k"));
        assert!(!s.undo_grant("d1", "k"), "a second undo finds nothing");
        assert!(!s.undo_grant("d2", "k"), "never won");
        assert_eq!((s.sale().remaining, s.won_by("d1")), (2, 0));
        // The dealer may try again, with the same key.
        assert_eq!(grab(&mut s, "d1", "k", 3), GrabOutcome::Won { order: 3 });
    }

    #[test]
    fn phases_and_eligibility_decide_before_stock() {
        let mut s = SaleState::new(sale(5, 1));
        let public = Grabber {
            dealer_id: "v",
            tier: None,
        };
        let silver = Grabber {
            dealer_id: "v2",
            tier: Some("silver"),
        };
        assert_eq!(
            s.grab(public, "k", 500, true, 1).unwrap().outcome,
            GrabOutcome::NotEligible
        );
        assert_eq!(
            s.grab(silver, "k", 500, true, 1).unwrap().outcome,
            GrabOutcome::NotEligible
        );
        assert_eq!(
            s.grab(gold("a"), "k", 50, true, 1).unwrap().outcome,
            GrabOutcome::NotStarted
        );
        assert_eq!(
            s.grab(gold("b"), "k", 500, false, 1).unwrap().outcome,
            GrabOutcome::NotStarted
        );
        assert_eq!(
            s.grab(gold("c"), "k", 10_000, true, 1).unwrap().outcome,
            GrabOutcome::Ended
        );
        assert!(s.end(600));
        assert!(!s.end(700));
        assert_eq!(
            s.grab(gold("d"), "k", 700, true, 1).unwrap().outcome,
            GrabOutcome::Ended
        );
        assert_eq!(s.sale().remaining, 5);
    }

    #[test]
    fn keys_per_dealer_are_bounded() {
        let mut s = SaleState::new(sale(1, 1));
        grab(&mut s, "winner", "k", 1);
        for i in 0..(1 + SPARE_GRAB_KEYS) {
            assert!(s.grab(gold("d"), &format!("k{i}"), 500, true, 2).is_ok());
        }
        assert_eq!(
            s.grab(gold("d"), "one-more", 500, true, 2),
            Err(TooManyAttempts {
                max_keys: 1 + SPARE_GRAB_KEYS
            })
        );
        // A known key is still answered.
        assert!(s.grab(gold("d"), "k0", 500, true, 2).is_ok());
    }

    #[test]
    fn restore_from_the_written_grants_equals_the_wins_before() {
        let mut s = SaleState::new(sale(5, 2));
        grab(&mut s, "d1", "a", 1);
        grab(&mut s, "d1", "b", 2);
        grab(&mut s, "d2", "a", 3);
        s.undo_grant("d1", "b");
        let mut written = s.sale().clone();
        written.remaining = written.stock - 2;
        let wins: Vec<(String, String, u64)> = s
            .wins()
            .map(|(d, k, o)| (d.to_string(), k.to_string(), o))
            .collect();
        let back = SaleState::restore(written, wins);
        assert_eq!(back.sale(), s.sale());
        let sorted = |s: &SaleState| {
            let mut w: Vec<(String, String, u64)> =
                s.wins().map(|(d, k, o)| (d.into(), k.into(), o)).collect();
            w.sort();
            w
        };
        assert_eq!(sorted(&back), sorted(&s));
        assert_eq!((back.won_by("d1"), back.won_by("d2")), (1, 1));
    }
}
