//! Property tests of flash sales and red packets over random grabs, failed writes and restarts.
//!
//! Each case drives the pure state next to a model of what was acknowledged and a model
//! store of what was written: a win is pending until its write commits or fails (then it is
//! undone), and a restart rebuilds the state from the store alone, dropping what was in
//! flight. Seeds are fixed, so every run checks the same cases.

use super::flash_sale::{GrabOutcome, Grabber, SaleState};
use super::red_packet::{split, PacketOutcome, RedPacketState};
use crate::model::{FlashSale, PacketGrab, RedPacket};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

fn config() -> Config {
    Config {
        cases: 300,
        rng_seed: RngSeed::Fixed(0x5EED_F1A5),
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A grab by dealer `.0` with key `.1` (few keys, so keys repeat).
    Grab(u8, u8),
    /// The oldest write in flight lands.
    Commit,
    /// The oldest write in flight fails: the room is told to undo it (twice, to check once).
    Fail,
    /// The process dies; the room comes back from the store.
    Restart,
}

fn steps(dealers: u8) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (0..dealers, 0..4u8).prop_map(|(d, k)| Step::Grab(d, k)),
        3 => Just(Step::Commit),
        1 => Just(Step::Fail),
        1 => Just(Step::Restart),
    ];
    prop::collection::vec(step, 1..150)
}

fn sale(stock: u32, per_dealer_limit: u32) -> FlashSale {
    FlashSale {
        id: "s1".into(),
        product_id: "p1".into(),
        brand_id: "b1".into(),
        stock,
        remaining: stock,
        per_dealer_limit,
        prices: vec![("gold".into(), 100)],
        start_ms: 0,
        end_ms: i64::MAX,
        ended_ms: None,
        created_ms: 0,
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flash_sale_never_oversells_and_keys_keep_their_answers(
        stock in 1..12u32,
        limit in 1..4u32,
        dealers in 1..7u8,
        script in steps(7),
    ) {
        let mut state = SaleState::new(sale(stock, limit));
        // The store: committed wins (dealer, key) → order.
        let mut written: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut in_flight: VecDeque<(String, String, u64)> = VecDeque::new();
        // What each key was answered (wins are durable, other answers live with the process).
        let mut answered: HashMap<(String, String), GrabOutcome> = HashMap::new();
        let mut next_order = 1u64;
        for step in script {
            match step {
                Step::Grab(d, k) => {
                    let (dealer, key) = (format!("d{}", d % dealers), format!("k{k}"));
                    let who = Grabber { dealer_id: &dealer, tier: Some("gold") };
                    let answer = state.grab(who, &key, 1, true, next_order).unwrap();
                    let id = (dealer.clone(), key.clone());
                    match answered.get(&id) {
                        Some(first) => {
                            prop_assert_eq!(answer.outcome, *first, "a key gets its first answer");
                            prop_assert!(answer.repeated);
                        }
                        None => {
                            prop_assert!(!answer.repeated);
                            answered.insert(id, answer.outcome);
                            if let GrabOutcome::Won { order } = answer.outcome {
                                prop_assert_eq!(order, next_order);
                                next_order += 1;
                                in_flight.push_back((dealer, key, order));
                            }
                        }
                    }
                }
                Step::Commit => {
                    if let Some((d, k, o)) = in_flight.pop_front() {
                        written.insert((d, k), o);
                    }
                }
                Step::Fail => {
                    if let Some((d, k, _)) = in_flight.pop_front() {
                        let before = state.sale().remaining;
                        prop_assert!(state.undo_grant(&d, &k));
                        prop_assert_eq!(state.sale().remaining, before + 1, "the unit comes back");
                        prop_assert!(!state.undo_grant(&d, &k), "and only once");
                        prop_assert_eq!(state.sale().remaining, before + 1);
                        answered.remove(&(d, k));
                    }
                }
                Step::Restart => {
                    in_flight.clear();
                    let mut record = sale(stock, limit);
                    record.remaining = stock - written.len() as u32;
                    let wins = written.iter().map(|((d, k), o)| (d.clone(), k.clone(), *o));
                    state = SaleState::restore(record, wins);
                    answered.retain(|id, o| matches!(o, GrabOutcome::Won { .. }) && written.contains_key(id));
                    let restored: BTreeMap<(String, String), u64> =
                        state.wins().map(|(d, k, o)| ((d.into(), k.into()), o)).collect();
                    prop_assert_eq!(&restored, &written, "restore equals what was written");
                }
            }
            let granted = state.wins().count() as u32;
            prop_assert!(granted <= stock, "grants ≤ stock");
            prop_assert_eq!(granted + state.sale().remaining, stock, "granted + remaining = stock");
            prop_assert_eq!(state.granted(), granted);
            let mut per_dealer: HashMap<&str, u32> = HashMap::new();
            for (d, _, _) in state.wins() {
                *per_dealer.entry(d).or_default() += 1;
            }
            for (d, n) in per_dealer {
                prop_assert!(n <= limit, "per dealer ≤ limit");
                prop_assert_eq!(state.won_by(d), n);
            }
        }
    }

    #[test]
    fn red_packet_split_sums_exactly_with_every_share_at_least_a_cent(
        count in 1..300u32,
        extra in 0..50_000i64,
        seed in any::<u64>(),
    ) {
        let total = count as i64 + extra;
        let shares = split(total, count, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(shares.len(), count as usize);
        prop_assert_eq!(shares.iter().sum::<i64>(), total);
        prop_assert!(shares.iter().all(|s| *s >= 1));
        prop_assert_eq!(shares, split(total, count, &mut StdRng::seed_from_u64(seed)), "replays");
    }

    #[test]
    fn red_packet_never_hands_a_share_out_twice(
        count in 1..8u32,
        extra in 0..500i64,
        seed in any::<u64>(),
        viewers in 1..10u8,
        script in steps(10),
    ) {
        let total = count as i64 + extra;
        let dropped = RedPacket {
            id: "r1".into(),
            total_cents: total,
            count,
            tiers: Vec::new(),
            message: String::new(),
            amounts: split(total, count, &mut StdRng::seed_from_u64(seed)),
            created_ms: 0,
            expires_ms: i64::MAX,
            grabs: Vec::new(),
        };
        let mut state = RedPacketState::restore(dropped.clone());
        let mut written: BTreeMap<u32, String> = BTreeMap::new();
        let mut in_flight: VecDeque<(String, u32)> = VecDeque::new();
        for step in script {
            match step {
                Step::Grab(v, _) => {
                    let viewer = format!("v{}", v % viewers);
                    let held_before = state.record().grabs.iter().find(|g| g.viewer_id == viewer).map(|g| g.amount_cents);
                    match state.grab(&viewer, None, 1) {
                        PacketOutcome::Won { index, amount_cents, .. } => {
                            prop_assert!(held_before.is_none());
                            prop_assert_eq!(amount_cents, dropped.amounts[index as usize]);
                            in_flight.push_back((viewer, index));
                        }
                        PacketOutcome::AlreadyGrabbed { amount_cents } => {
                            prop_assert_eq!(Some(amount_cents), held_before);
                        }
                        PacketOutcome::Empty => prop_assert_eq!(state.left(), 0),
                        other => prop_assert!(false, "unexpected {:?}", other),
                    }
                }
                Step::Commit => {
                    if let Some((v, i)) = in_flight.pop_front() {
                        prop_assert!(written.insert(i, v).is_none(), "a position is written once");
                    }
                }
                Step::Fail => {
                    if let Some((v, i)) = in_flight.pop_front() {
                        let left = state.left();
                        prop_assert!(state.give_back(&v, i));
                        prop_assert!(!state.give_back(&v, i), "given back once");
                        prop_assert_eq!(state.left(), left + 1);
                    }
                }
                Step::Restart => {
                    in_flight.clear();
                    let record = RedPacket {
                        grabs: written
                            .iter()
                            .map(|(&index, v)| PacketGrab {
                                viewer_id: v.clone(),
                                index,
                                amount_cents: dropped.amounts[index as usize],
                            })
                            .collect(),
                        ..dropped.clone()
                    };
                    state = RedPacketState::restore(record);
                }
            }
            let grabs = state.record().grabs;
            let positions: BTreeSet<u32> = grabs.iter().map(|g| g.index).collect();
            let holders: BTreeSet<&str> = grabs.iter().map(|g| g.viewer_id.as_str()).collect();
            prop_assert_eq!(positions.len(), grabs.len(), "no share handed out twice");
            prop_assert_eq!(holders.len(), grabs.len(), "one share per viewer");
            prop_assert_eq!(state.left() as usize + grabs.len(), count as usize);
            prop_assert!(grabs.iter().all(|g| g.amount_cents == dropped.amounts[g.index as usize]));
            if in_flight.is_empty() {
                // Everything acknowledged is written: a restore now builds the same state.
                let on_disk: BTreeMap<u32, String> =
                    grabs.iter().map(|g| (g.index, g.viewer_id.clone())).collect();
                prop_assert_eq!(&on_disk, &written);
                prop_assert_eq!(&RedPacketState::restore(state.record()), &state);
            }
        }
    }
}
