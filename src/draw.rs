//! The provably fair lucky-draw algorithm (`showfloor-draw-v1`) and its verifier: pure
//! functions, no I/O.
//!
//! A draw is fair when nobody — the host, the server operator or an entrant — can choose the
//! winners, and anyone can check afterwards that nobody did. The scheme:
//!
//! 1. **Open.** The server draws a secret 32-byte `seed` from the OS CSPRNG ([`new_seed`])
//!    and publishes `commitment = hex(SHA-256(seed))` ([`commitment`]) with the rules.
//!    The seed stays secret, so nobody can predict the winners while entries come in; the
//!    commitment means the server cannot change the seed later.
//! 2. **Close.** The entrant ids are put in canonical order — sorted bytewise ascending,
//!    duplicates removed ([`sort_entrants`]) — and hashed ([`entrants_hash`]); the hash is
//!    published.
//! 3. **Decide.** The winners are a pure function of (seed, entrants hash, draw id, beacon,
//!    canonical entrants, winners count) ([`pick_winners`], [`decide`]); the seed is then
//!    revealed and the whole [`DrawRecord`] can be re-checked by anyone ([`verify`]).
//!
//! The server knows the seed from the start, so the operator could try to steer a draw by
//! adding entrants before the hash is fixed, or by choosing a beacon. A draw may therefore
//! declare a *beacon source* at open (a public value that appears only later: a lottery
//! result, a drand round, a block hash). Such a draw closes in two steps: entry closes and
//! the entrants hash is published first; the winners are drawn only when the host supplies
//! the beacon, which nobody could know when the entrants were fixed. A draw without a
//! declared source uses the empty beacon: a beacon chosen by the host at will would be a
//! free parameter for the operator, so [`verify`] rejects one.
//!
//! # `showfloor-draw-v1`, exactly
//!
//! All hex is lowercase. `lp(x)` ("length-prefixed") is the byte length of the UTF-8
//! string `x` as a 4-byte big-endian unsigned integer, followed by the bytes of `x`.
//!
//! - `commitment = hex(SHA-256(seed))`, over the 32 raw seed bytes.
//! - `entrants_hash = hex(SHA-256(lp(e_0) ‖ lp(e_1) ‖ … ‖ lp(e_{n-1})))` over the entrants in
//!   canonical order; for no entrants, the SHA-256 of the empty string.
//! - `key = HMAC-SHA256(key = seed, message = lp(entrants_hash) ‖ lp(draw_id) ‖ lp(beacon))`,
//!   where `entrants_hash` is its 64-character hex text.
//! - A stream of u64: block `j` (j = 0, 1, 2, …) is `HMAC-SHA256(key = key, message = j as
//!   8-byte big-endian)`; each 32-byte block gives four u64, read big-endian, in order.
//! - `uniform(m)`, m ≥ 1: `zone = (2^64 - 1) / m * m` (integer division); take the next u64
//!   `x` from the stream until `x < zone`; return `x mod m`. Rejection sampling removes the
//!   modulo bias. `uniform(1)` still consumes a value from the stream.
//! - `k = min(winners_count, n)`. On a copy of the canonical entrants,
//!   `for i in 0..k { j = i + uniform(n - i); swap(i, j) }` (a partial Fisher–Yates
//!   shuffle). The winners are the first `k` entries, in that order.
//!
//! `docs/draws.md` restates this for third parties, with a worked example.

use hmac::{Hmac, Mac};

use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The name of this algorithm, carried in every record so a verifier knows what to run.
pub const ALGORITHM: &str = "showfloor-draw-v1";

pub use crate::model::DrawRecord;

/// A fresh secret seed: 32 bytes from the operating system's CSPRNG.
pub fn new_seed() -> [u8; 32] {
    use rand::TryRngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .expect("the operating system's random number generator failed");
    seed
}

/// `hex(SHA-256(seed))`: published at open, so the seed cannot be swapped later.
pub fn commitment(seed: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(seed))
}

/// Puts entrant ids in canonical order: bytewise ascending, duplicates removed.
pub fn sort_entrants(v: &mut Vec<String>) {
    // `str`'s `Ord` compares UTF-8 bytes, which is the order the spec defines.
    v.sort_unstable();
    v.dedup();
}

/// `hex(SHA-256(lp(e_0) ‖ … ‖ lp(e_{n-1})))` over the entrants in the order given (callers
/// pass the canonical order). The length prefixes make the encoding unambiguous:
/// `["ab", "c"]` and `["a", "bc"]` hash differently.
pub fn entrants_hash(sorted: &[String]) -> String {
    let mut hasher = Sha256::new();
    for entrant in sorted {
        hasher.update(length_prefix(entrant));
        hasher.update(entrant.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The winners, in draw order: `min(winners, entrants)` distinct entrants, chosen by a
/// partial Fisher–Yates shuffle driven by the seeded stream (see the module docs).
pub fn pick_winners(
    seed: &[u8; 32],
    entrants_hash: &str,
    draw_id: &str,
    beacon: &str,
    sorted_entrants: &[String],
    winners: usize,
) -> Vec<String> {
    let n = sorted_entrants.len();
    let k = winners.min(n);
    let mut stream = DrawStream::new(draw_key(seed, entrants_hash, draw_id, beacon));
    let mut order = sorted_entrants.to_vec();
    for i in 0..k {
        // n - i ≥ 1 since i < k ≤ n.
        let j = i + stream.uniform((n - i) as u64) as usize;
        order.swap(i, j);
    }
    order.truncate(k);
    order
}

/// Closes a draw: canonical entrants, their hash, and the winners.
pub fn decide(
    seed: &[u8; 32],
    draw_id: &str,
    beacon: &str,
    mut entrants: Vec<String>,
    winners: usize,
) -> (Vec<String>, String, Vec<String>) {
    sort_entrants(&mut entrants);
    let hash = entrants_hash(&entrants);
    let chosen = pick_winners(seed, &hash, draw_id, beacon, &entrants, winners);
    (entrants, hash, chosen)
}

/// Re-checks a closed draw's record. Returns every problem found, one sentence each, starting
/// with the name of the field at fault; empty means the record is consistent.
///
/// `room_id`, `prize`, `eligibility`, `opened_ms` and `closes_ms` are not inputs to the
/// winner computation, so changing them is not detected (except `opened_ms` moving after
/// `closed_ms`); they are bound only by what was published when the draw opened.
pub fn verify(record: &DrawRecord) -> Vec<String> {
    let mut problems = Vec::new();

    if record.algorithm != ALGORITHM {
        // Another algorithm's record would fail every check below for no real reason.
        problems.push(format!(
            "algorithm: this verifier implements {ALGORITHM:?}, the record says {:?}; \
             nothing else was checked",
            record.algorithm
        ));
        return problems;
    }

    let Some(seed_text) = &record.seed else {
        // Everything else would only list the consequences of the draw being open.
        problems.push(
            "seed: missing, so this is the record of a draw whose winners are not drawn yet \
             (the seed is revealed with them); it cannot be verified until then"
                .to_string(),
        );
        return problems;
    };
    let seed = parse_seed(seed_text);
    if seed.is_none() {
        problems.push(format!(
            "seed: expected 64 lowercase hex characters (32 bytes), found {seed_text:?}"
        ));
    }

    if let Some(seed) = &seed {
        let expected = commitment(seed);
        if record.commitment != expected {
            problems.push(format!(
                "commitment: the record says {:?}, but SHA-256 of seed is {expected:?} \
                 (seed or commitment was altered)",
                record.commitment
            ));
        }
    }

    match (record.beacon_source.is_empty(), record.beacon.is_empty()) {
        (false, true) => problems.push(format!(
            "beacon: missing, but the draw declared the beacon source {:?} when it opened",
            record.beacon_source
        )),
        (true, false) => problems.push(format!(
            "beacon: {:?} is set, but no beacon_source was declared when the draw opened; an \
             undeclared beacon could have been chosen to pick the winners",
            record.beacon
        )),
        _ => {}
    }

    if let Some(i) = (1..record.entrants.len())
        .find(|&i| record.entrants[i - 1].as_bytes() > record.entrants[i].as_bytes())
    {
        problems.push(format!(
            "entrants: not in canonical order (bytewise ascending): {:?} at position {} comes \
             before {:?} at position {}",
            record.entrants[i - 1],
            i - 1,
            record.entrants[i],
            i
        ));
    }
    let duplicates = duplicated(&record.entrants);
    if !duplicates.is_empty() {
        problems.push(format!(
            "entrants: each entrant must appear once, but these appear more than once: {}",
            quoted_list(&duplicates)
        ));
    }

    let hash = entrants_hash(&record.entrants);
    match &record.entrants_hash {
        None => problems.push(format!(
            "entrants_hash: missing; the {} entrants listed hash to {hash:?}",
            record.entrants.len()
        )),
        Some(found) if *found != hash => problems.push(format!(
            "entrants_hash: the record says {found:?}, but the {} entrants listed hash to \
             {hash:?} (entrants or entrants_hash was altered)",
            record.entrants.len()
        )),
        Some(_) => {}
    }

    let expected_count = (record.winners_count as usize).min(record.entrants.len());
    if record.winners.len() != expected_count {
        problems.push(format!(
            "winners: {} listed, but min(winners_count {}, {} entrants) = {expected_count} \
             (winners, winners_count or entrants was altered)",
            record.winners.len(),
            record.winners_count,
            record.entrants.len()
        ));
    }

    if let Some(seed) = &seed {
        // The recomputed hash, not the record's: a wrong entrants_hash is reported above and
        // should not also make every winner look wrong.
        let expected = pick_winners(
            seed,
            &hash,
            &record.draw_id,
            &record.beacon,
            &record.entrants,
            record.winners_count as usize,
        );
        if record.winners != expected {
            problems.push(format!(
                "winners: the record lists {}, but seed, entrants, draw_id {:?}, beacon {:?} \
                 and winners_count {} give {} (one of these fields, or winners, was altered)",
                quoted_list(&record.winners),
                record.draw_id,
                record.beacon,
                record.winners_count,
                quoted_list(&expected)
            ));
        }
    }

    match record.closed_ms {
        None => problems.push(
            "closed_ms: missing, but the seed is revealed only once a draw has closed, so the \
             record must say when it closed"
                .to_string(),
        ),
        Some(closed) if closed < record.opened_ms => problems.push(format!(
            "closed_ms: {closed} is before opened_ms {}; a draw cannot close before it opens",
            record.opened_ms
        )),
        Some(_) => {}
    }
    if let (Some(closed), Some(drawn)) = (record.closed_ms, record.drawn_ms) {
        if drawn < closed {
            problems.push(format!(
                "drawn_ms: {drawn} is before closed_ms {closed}; the winners are drawn only \
                 after the entrants hash is published"
            ));
        }
    }

    problems
}

/// `lp(x)`'s prefix: the byte length as a 4-byte big-endian integer.
fn length_prefix(s: &str) -> [u8; 4] {
    // Ids, draw ids and beacons are bounded far below 4 GiB by every caller and parser.
    u32::try_from(s.len())
        .expect("a draw input longer than 4 GiB")
        .to_be_bytes()
}

/// `HMAC-SHA256(seed, lp(entrants_hash) ‖ lp(draw_id) ‖ lp(beacon))`: the key of the stream.
fn draw_key(seed: &[u8; 32], entrants_hash: &str, draw_id: &str, beacon: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(seed).expect("HMAC takes keys of any length");
    for part in [entrants_hash, draw_id, beacon] {
        mac.update(&length_prefix(part));
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// The deterministic u64 stream: block j = HMAC-SHA256(key, j as u64 big-endian), each block
/// read as four big-endian u64.
struct DrawStream {
    key: [u8; 32],
    next_block: u64,
    block: [u8; 32],
    /// Index of the next unread u64 in `block`; 4 = exhausted.
    used: usize,
}

impl DrawStream {
    fn new(key: [u8; 32]) -> Self {
        DrawStream {
            key,
            next_block: 0,
            block: [0; 32],
            used: 4,
        }
    }

    fn next_u64(&mut self) -> u64 {
        if self.used == 4 {
            let mut mac =
                HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
            mac.update(&self.next_block.to_be_bytes());
            self.block = mac.finalize().into_bytes().into();
            self.next_block += 1;
            self.used = 0;
        }
        let at = self.used * 8;
        self.used += 1;
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.block[at..at + 8]);
        u64::from_be_bytes(word)
    }

    /// Uniform in `0..m` without modulo bias, `m >= 1`.
    fn uniform(&mut self, m: u64) -> u64 {
        let zone = (u64::MAX / m) * m;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % m;
            }
        }
    }
}

/// Exactly 64 lowercase hex characters: one textual form per seed.
fn parse_seed(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text, &mut seed).ok()?;
    Some(seed)
}

/// The values that occur more than once, each named once, in sorted order.
fn duplicated(values: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = values.iter().collect();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    for pair in sorted.windows(2) {
        if pair[0] == pair[1] && out.last() != Some(pair[0]) {
            out.push(pair[0].clone());
        }
    }
    out
}

/// `["a", "b"]`, with each value quoted and escaped as in Rust debug output.
fn quoted_list(values: &[String]) -> String {
    format!("{values:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(range: std::ops::RangeInclusive<char>) -> Vec<String> {
        range.map(|c| c.to_string()).collect()
    }

    /// A valid closed record: seed [7; 32], entrants "a".."j", 3 winners.
    fn good_record() -> DrawRecord {
        let seed = [7u8; 32];
        let (entrants, hash, winners) = decide(&seed, "draw-1", "beacon-42", letters('a'..='j'), 3);
        DrawRecord {
            algorithm: ALGORITHM.to_string(),
            room_id: "room-1".to_string(),
            draw_id: "draw-1".to_string(),
            prize: "A sample case".to_string(),
            winners_count: 3,
            eligibility: serde_json::json!({"kind": "everyone"}),
            opened_ms: 1_700_000_000_000,
            closes_ms: 1_700_000_300_000,
            closed_ms: Some(1_700_000_300_000),
            drawn_ms: Some(1_700_000_360_000),
            commitment: commitment(&seed),
            seed: Some(hex::encode(seed)),
            entrants,
            entrants_hash: Some(hash),
            beacon_source: "the test beacon, one minute after close".to_string(),
            beacon: "beacon-42".to_string(),
            winners,
        }
    }

    /// Whether some problem names `field` as a whole word (so `entrants_hash` does not count
    /// as naming `entrants`).
    fn names(problems: &[String], field: &str) -> bool {
        problems.iter().any(|p| {
            p.match_indices(field).any(|(at, _)| {
                let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
                let before = p[..at].chars().next_back().is_none_or(|c| !word(c));
                let after = p[at + field.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !word(c));
                before && after
            })
        })
    }

    #[test]
    fn the_same_inputs_give_the_same_winners() {
        let entrants = letters('a'..='j');
        let hash = entrants_hash(&entrants);
        let a = pick_winners(&[1; 32], &hash, "d", "b", &entrants, 4);
        let b = pick_winners(&[1; 32], &hash, "d", "b", &entrants, 4);
        assert_eq!(a, b);
        assert_ne!(a, pick_winners(&[2; 32], &hash, "d", "b", &entrants, 4));
    }

    #[test]
    fn known_answer() {
        // These values are also the worked example of docs/draws.md.
        let seed = [7u8; 32];
        let entrants = letters('a'..='j');
        assert_eq!(
            commitment(&seed),
            "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0"
        );
        let hash = entrants_hash(&entrants);
        assert_eq!(
            hash,
            "d5730523030057c61a3cb9f3f338ec9b7198aca2c07bd3f89370509b06073831"
        );
        let winners = pick_winners(&seed, &hash, "draw-1", "beacon-42", &entrants, 3);
        assert_eq!(winners, ["c", "f", "g"]);
        assert_eq!(
            hex::encode(draw_key(&seed, &hash, "draw-1", "beacon-42")),
            "d123612d6edbc492859c606d13845c1e74187dee91120cf479d4711a8d05d93c"
        );

        // An independent recomputation of the key and the first block with plain sha2/hmac.
        let mut lp = Vec::new();
        for e in &entrants {
            lp.extend_from_slice(&(e.len() as u32).to_be_bytes());
            lp.extend_from_slice(e.as_bytes());
        }
        assert_eq!(hex::encode(Sha256::digest(&lp)), hash);
        let mut message = Vec::new();
        for part in [hash.as_str(), "draw-1", "beacon-42"] {
            message.extend_from_slice(&(part.len() as u32).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        let mut mac = HmacSha256::new_from_slice(&seed).unwrap();
        mac.update(&message);
        let key = mac.finalize().into_bytes();
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let block0 = mac.finalize().into_bytes();
        assert_eq!(
            hex::encode(block0),
            "bfe4dc77ee5f3fd03e8a71ce27ee589eabd10f2b70892e54d94461d81b69338b"
        );
        let mut stream = DrawStream::new(draw_key(&seed, &hash, "draw-1", "beacon-42"));
        for word in block0.chunks(8) {
            assert_eq!(
                stream.next_u64(),
                u64::from_be_bytes(word.try_into().unwrap())
            );
        }
        // Block 1 follows block 0.
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(&1u64.to_be_bytes());
        let block1 = mac.finalize().into_bytes();
        assert_eq!(
            stream.next_u64(),
            u64::from_be_bytes(block1[..8].try_into().unwrap())
        );
    }

    #[test]
    fn winners_are_distinct_entrants() {
        let entrants: Vec<String> = (0..50).map(|i| format!("viewer-{i:02}")).collect();
        let hash = entrants_hash(&entrants);
        for d in 0..200 {
            let winners = pick_winners(&[3; 32], &hash, &format!("d{d}"), "", &entrants, 20);
            assert_eq!(winners.len(), 20);
            let mut unique = winners.clone();
            sort_entrants(&mut unique);
            assert_eq!(unique.len(), 20, "duplicate winner in {winners:?}");
            assert!(winners.iter().all(|w| entrants.contains(w)));
        }
    }

    #[test]
    fn asking_for_more_winners_than_entrants_gives_every_entrant() {
        let entrants = letters('a'..='e');
        let hash = entrants_hash(&entrants);
        let mut winners = pick_winners(&[9; 32], &hash, "d", "", &entrants, 8);
        assert_eq!(winners.len(), 5);
        sort_entrants(&mut winners);
        assert_eq!(winners, entrants);
    }

    #[test]
    fn no_entrants_gives_no_winners() {
        let (entrants, hash, winners) = decide(&[9; 32], "d", "", Vec::new(), 3);
        assert!(entrants.is_empty());
        assert_eq!(hash, hex::encode(Sha256::digest(b"")));
        assert!(winners.is_empty());
    }

    #[test]
    fn canonical_order_is_bytewise_without_duplicates() {
        let mut v: Vec<String> = ["b", "B", "a", "é", "b", "aa"]
            .into_iter()
            .map(String::from)
            .collect();
        sort_entrants(&mut v);
        assert_eq!(v, ["B", "a", "aa", "b", "é"]);
    }

    #[test]
    fn length_prefixes_keep_entrant_boundaries() {
        let ab_c = ["ab".to_string(), "c".to_string()];
        let a_bc = ["a".to_string(), "bc".to_string()];
        assert_ne!(entrants_hash(&ab_c), entrants_hash(&a_bc));
    }

    #[test]
    fn each_of_three_entrants_wins_about_a_third_of_the_time() {
        let entrants = letters('a'..='c');
        let hash = entrants_hash(&entrants);
        let mut wins = [0u32; 3];
        let draws = 30_000;
        for d in 0..draws {
            let winner = pick_winners(&[5; 32], &hash, &format!("draw-{d}"), "", &entrants, 1);
            wins[(winner[0].as_bytes()[0] - b'a') as usize] += 1;
        }
        for (i, w) in wins.iter().enumerate() {
            let share = f64::from(*w) / f64::from(draws);
            assert!(
                (0.30..=0.367).contains(&share),
                "entrant {i} won {share:.4} of {draws} draws: {wins:?}"
            );
        }
    }

    #[test]
    fn uniform_rejects_the_biased_zone() {
        // m = 2^63 + 1: zone = m, so about half of all u64 are rejected; results stay < m.
        let mut stream = DrawStream::new([1; 32]);
        let m = (1u64 << 63) + 1;
        for _ in 0..100 {
            assert!(stream.uniform(m) < m);
        }
    }

    #[test]
    fn a_good_record_verifies() {
        let record = good_record();
        assert_eq!(verify(&record), Vec::<String>::new());
        let json = serde_json::to_string(&record).unwrap();
        let back: DrawRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(verify(&back), Vec::<String>::new());
    }

    #[test]
    fn an_open_draw_cannot_be_verified() {
        let mut record = good_record();
        record.seed = None;
        record.closed_ms = None;
        let problems = verify(&record);
        assert!(names(&problems, "seed"), "{problems:#?}");
        assert!(
            problems.iter().any(|p| p.contains("not drawn yet")),
            "{problems:#?}"
        );
    }

    /// Applies `tamper` to a good record and asserts that `verify` reports a problem naming
    /// each of `fields`.
    fn assert_caught(what: &str, tamper: impl FnOnce(&mut DrawRecord), fields: &[&str]) {
        let mut record = good_record();
        tamper(&mut record);
        assert_ne!(record, good_record(), "{what}: the tamper changed nothing");
        let problems = verify(&record);
        for field in fields {
            assert!(
                names(&problems, field),
                "{what}: no problem names {field}: {problems:#?}"
            );
        }
    }

    /// Applies `tamper` to a good record and asserts that `verify` does not notice.
    fn assert_not_detected(what: &str, tamper: impl FnOnce(&mut DrawRecord)) {
        let mut record = good_record();
        tamper(&mut record);
        assert_ne!(record, good_record(), "{what}: the tamper changed nothing");
        assert_eq!(verify(&record), Vec::<String>::new(), "{what}");
    }

    #[test]
    fn every_input_to_the_winners_is_checked() {
        assert_caught(
            "algorithm",
            |r| r.algorithm = "showfloor-draw-v2".into(),
            &["algorithm"],
        );
        assert_caught(
            "seed",
            |r| r.seed = Some(hex::encode([8u8; 32])),
            &["seed", "commitment"],
        );
        assert_caught(
            "seed not hex",
            |r| r.seed = Some("07".repeat(31) + "zz"),
            &["seed"],
        );
        assert_caught(
            "seed too short",
            |r| r.seed = Some("07".repeat(31)),
            &["seed"],
        );
        assert_caught(
            "seed upper case",
            |r| r.seed = Some("0A".repeat(32)),
            &["seed"],
        );
        assert_caught(
            "commitment",
            |r| r.commitment = commitment(&[8; 32]),
            &["commitment", "seed"],
        );
        assert_caught(
            "entrant added",
            |r| {
                r.entrants.push("k".into());
            },
            &["entrants", "entrants_hash"],
        );
        assert_caught(
            "entrant removed",
            |r| {
                // Not a winner, so only the hash and the recomputed draw can tell.
                let loser = r
                    .entrants
                    .iter()
                    .position(|e| !r.winners.contains(e))
                    .unwrap();
                r.entrants.remove(loser);
            },
            &["entrants", "entrants_hash"],
        );
        assert_caught(
            "entrants reordered",
            |r| r.entrants.swap(0, 1),
            &["entrants"],
        );
        assert_caught(
            "entrant duplicated",
            |r| {
                let first = r.entrants[0].clone();
                r.entrants.insert(0, first);
            },
            &["entrants"],
        );
        assert_caught(
            "entrants_hash",
            |r| r.entrants_hash = Some(entrants_hash(&letters('a'..='i'))),
            &["entrants_hash"],
        );
        assert_caught(
            "entrants_hash missing",
            |r| r.entrants_hash = None,
            &["entrants_hash"],
        );
        assert_caught(
            "beacon",
            |r| r.beacon = "beacon-43".into(),
            &["winners", "beacon"],
        );
        assert_caught(
            "beacon dropped",
            |r| r.beacon = String::new(),
            &["winners", "beacon"],
        );
        assert_caught(
            "beacon without a declared source",
            |r| r.beacon_source = String::new(),
            &["beacon", "beacon_source"],
        );
        assert_caught(
            "drawn before closing",
            |r| r.drawn_ms = Some(r.closed_ms.unwrap() - 1),
            &["drawn_ms", "closed_ms"],
        );
        assert_caught(
            "draw_id",
            |r| r.draw_id = "draw-2".into(),
            &["winners", "draw_id"],
        );
        assert_caught("winners swapped", |r| r.winners.swap(0, 1), &["winners"]);
        assert_caught(
            "winner replaced",
            |r| {
                let outsider = r.entrants.iter().find(|e| !r.winners.contains(e)).unwrap();
                r.winners[2] = outsider.clone();
            },
            &["winners"],
        );
        assert_caught("winner dropped", |r| r.winners.truncate(2), &["winners"]);
        assert_caught(
            "winners_count raised",
            |r| r.winners_count = 4,
            &["winners", "winners_count"],
        );
        assert_caught(
            "winners_count lowered",
            |r| r.winners_count = 2,
            &["winners", "winners_count"],
        );
        assert_caught("closed_ms missing", |r| r.closed_ms = None, &["closed_ms"]);
        assert_caught(
            "closed_ms before opening",
            |r| r.closed_ms = Some(r.opened_ms - 1),
            &["closed_ms", "opened_ms"],
        );
        assert_caught(
            "opened_ms after closing",
            |r| r.opened_ms = r.closed_ms.unwrap() + 1,
            &["closed_ms", "opened_ms"],
        );
    }

    #[test]
    fn informational_fields_are_not_checked() {
        // Not inputs to the winner computation: bound only by what was published at open.
        assert_not_detected("room_id", |r| r.room_id = "room-2".into());
        assert_not_detected("prize", |r| r.prize = "A car".into());
        assert_not_detected("eligibility", |r| {
            r.eligibility = serde_json::json!({"kind": "dealers"})
        });
        assert_not_detected("opened_ms", |r| r.opened_ms -= 60_000);
        assert_not_detected("closes_ms", |r| r.closes_ms += 60_000);
        assert_not_detected("closed_ms (still after opening)", |r| {
            r.closed_ms = Some(r.closed_ms.unwrap() - 1)
        });
        assert_not_detected("beacon_source (still declared)", |r| {
            r.beacon_source = "another lottery".into()
        });
        assert_not_detected("drawn_ms (still after closing)", |r| {
            r.drawn_ms = Some(r.drawn_ms.unwrap() + 1)
        });
    }
}
