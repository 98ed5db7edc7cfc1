//! One lucky draw: who may enter, the entrants, closing entry and drawing the winners (via `crate::draw`).
//!
//! The secret seed comes in from outside (the room's entropy source) when the draw opens; its
//! SHA-256 is the published commitment. Entry closes at `closes_ms` (or when the host says),
//! which fixes the canonical entrant list and its hash; the winners follow from the seed, that
//! hash and the beacon, so anyone can recompute them from the record.

use crate::draw;
use crate::model::{Draw, DrawEligibility, DrawRecord};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// What a draw is opened with (validated by the room).
#[derive(Debug, Clone)]
pub struct DrawSpec {
    pub prize: String,
    pub winners_count: u32,
    pub eligibility: DrawEligibility,
    pub entry_ms: i64,
    pub beacon_source: String,
}

/// What the draw needs to know of someone who wants to enter.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Their dealer tier, if they are a verified dealer.
    pub tier: Option<&'a str>,
    /// How long they have watched this room.
    pub watched_ms: i64,
}

#[derive(Debug, Clone)]
pub struct LuckyDraw {
    draw: Draw,
    seed: [u8; 32],
    entered: HashSet<String>,
    /// Display names of entrants, for the result (this process's life only).
    names: HashMap<String, String>,
}

impl LuckyDraw {
    /// Opens a draw: the seed is secret, its commitment public from now on.
    pub fn open(id: String, spec: DrawSpec, seed: [u8; 32], now: i64) -> LuckyDraw {
        LuckyDraw {
            draw: Draw {
                id,
                prize: spec.prize,
                winners_count: spec.winners_count,
                eligibility: spec.eligibility,
                opened_ms: now,
                closes_ms: now + spec.entry_ms,
                closed_ms: None,
                drawn_ms: None,
                seed: hex::encode(seed),
                commitment: draw::commitment(&seed),
                beacon_source: spec.beacon_source,
                beacon: String::new(),
                entrants: Vec::new(),
                entrants_hash: None,
                winners: Vec::new(),
            },
            seed,
            entered: HashSet::new(),
            names: HashMap::new(),
        }
    }

    /// A draw as the store has it, with its entrants; `None` if its seed cannot be read.
    pub fn restore(d: Draw) -> Option<LuckyDraw> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(&d.seed, &mut seed).ok()?;
        Some(LuckyDraw {
            entered: d.entrants.iter().cloned().collect(),
            names: HashMap::new(),
            draw: d,
            seed,
        })
    }

    pub fn draw(&self) -> &Draw {
        &self.draw
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Entry is open: not closed by the host and its window not over.
    pub fn takes_entries(&self, now: i64) -> bool {
        self.draw.closed_ms.is_none() && now < self.draw.closes_ms
    }

    pub fn is_closed(&self) -> bool {
        self.draw.closed_ms.is_some()
    }

    pub fn is_drawn(&self) -> bool {
        self.draw.drawn_ms.is_some()
    }

    pub fn entrant_count(&self) -> usize {
        self.entered.len()
    }

    pub fn has_entered(&self, viewer_id: &str) -> bool {
        self.entered.contains(viewer_id)
    }

    /// Why `who` may not enter by `enter_draw`, if it may not. Keyword draws are entered by
    /// chatting the keyword, never by `enter_draw`.
    pub fn refusal(&self, who: Candidate<'_>) -> Option<String> {
        match &self.draw.eligibility {
            DrawEligibility::Everyone => None,
            DrawEligibility::Dealers => who
                .tier
                .is_none()
                .then(|| "this draw is for verified dealers".into()),
            DrawEligibility::Tiers { tiers } => {
                (!who.tier.is_some_and(|t| tiers.iter().any(|x| x == t)))
                    .then(|| format!("this draw is for dealers of the tiers {}", tiers.join(", ")))
            }
            DrawEligibility::Keyword { keyword } => Some(format!(
                "enter this draw by chatting a message containing {keyword:?}"
            )),
            DrawEligibility::WatchedMinutes { minutes } => {
                let need = *minutes as i64 * 60_000;
                (who.watched_ms < need).then(|| {
                    format!(
                        "this draw is for viewers who watched {minutes} minutes; {} s to go",
                        (need - who.watched_ms + 999) / 1000
                    )
                })
            }
        }
    }

    /// Whether a chat message (lowercased) enters this keyword draw.
    pub fn keyword_in(&self, lowercase_text: &str) -> bool {
        matches!(&self.draw.eligibility, DrawEligibility::Keyword { keyword }
            if lowercase_text.contains(keyword.as_str()))
    }

    /// Adds an entrant. Returns false if it was in already.
    pub fn enter(&mut self, viewer_id: &str, display_name: &str) -> bool {
        if !self.entered.insert(viewer_id.to_string()) {
            return false;
        }
        self.draw.entrants.push(viewer_id.to_string());
        self.names
            .insert(viewer_id.to_string(), display_name.to_string());
        true
    }

    /// Entry closes: the entrants take their canonical order and their hash is fixed.
    pub fn close_entry(&mut self, now: i64) -> &str {
        draw::sort_entrants(&mut self.draw.entrants);
        self.draw.closed_ms = Some(now);
        self.draw
            .entrants_hash
            .insert(draw::entrants_hash(&self.draw.entrants))
    }

    /// Draws the winners of a closed draw with `beacon` (empty for a draw without a beacon
    /// source). Returns them in draw order with their display names.
    pub fn pick_winners(&mut self, beacon: String, now: i64) -> Vec<(String, String)> {
        let hash = self
            .draw
            .entrants_hash
            .clone()
            .unwrap_or_else(|| self.close_entry(now).to_string());
        let winners = draw::pick_winners(
            &self.seed,
            &hash,
            &self.draw.id,
            &beacon,
            &self.draw.entrants,
            self.draw.winners_count as usize,
        );
        self.draw.beacon = beacon;
        self.draw.drawn_ms = Some(now);
        self.draw.winners = winners.clone();
        winners
            .into_iter()
            .map(|w| {
                let name = self.names.get(&w).cloned().unwrap_or_default();
                (w, name)
            })
            .collect()
    }

    /// The record anyone can check the draw with; the seed and entrants only once public.
    pub fn record(&self, room_id: &str) -> DrawRecord {
        let d = &self.draw;
        DrawRecord {
            algorithm: draw::ALGORITHM.into(),
            room_id: room_id.to_string(),
            draw_id: d.id.clone(),
            prize: d.prize.clone(),
            winners_count: d.winners_count,
            eligibility: serde_json::to_value(&d.eligibility).unwrap_or_default(),
            opened_ms: d.opened_ms,
            closes_ms: d.closes_ms,
            closed_ms: d.closed_ms,
            drawn_ms: d.drawn_ms,
            commitment: d.commitment.clone(),
            seed: self.is_drawn().then(|| d.seed.clone()),
            entrants: if self.is_closed() {
                d.entrants.clone()
            } else {
                Vec::new()
            },
            entrants_hash: d.entrants_hash.clone(),
            beacon_source: d.beacon_source.clone(),
            beacon: d.beacon.clone(),
            winners: d.winners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(eligibility: DrawEligibility, winners: u32) -> DrawSpec {
        DrawSpec {
            prize: "Tour".into(),
            winners_count: winners,
            eligibility,
            entry_ms: 60_000,
            beacon_source: String::new(),
        }
    }

    fn anyone(watched_ms: i64) -> Candidate<'static> {
        Candidate {
            tier: None,
            watched_ms,
        }
    }

    #[test]
    fn entries_are_counted_once_and_close_with_the_window() {
        let mut d = LuckyDraw::open("d1".into(), spec(DrawEligibility::Everyone, 1), [7; 32], 0);
        assert!(d.enter("b", "B"));
        assert!(!d.enter("b", "B"));
        assert!(d.enter("a", "A"));
        assert_eq!(d.entrant_count(), 2);
        assert!(d.takes_entries(59_999));
        assert!(!d.takes_entries(60_000));
        let hash = d.close_entry(60_000).to_string();
        assert_eq!(d.draw().entrants, ["a", "b"], "canonical order");
        assert_eq!(hash, draw::entrants_hash(&["a".into(), "b".into()]));
        assert!(!d.takes_entries(1));
    }

    #[test]
    fn winners_are_what_anyone_recomputes_from_the_record() {
        let mut d = LuckyDraw::open("d1".into(), spec(DrawEligibility::Everyone, 2), [3; 32], 0);
        for v in ["v1", "v2", "v3", "v4", "v5"] {
            d.enter(v, &v.to_uppercase());
        }
        assert!(
            d.record("r").seed.is_none(),
            "the seed stays secret while open"
        );
        d.close_entry(10);
        let winners = d.pick_winners(String::new(), 10);
        assert_eq!(winners.len(), 2);
        assert!(winners.iter().all(|(id, name)| name == &id.to_uppercase()));
        let record = d.record("r");
        assert_eq!(record.seed.as_deref(), Some(hex::encode([3; 32]).as_str()));
        assert!(
            draw::verify(&record).is_empty(),
            "{:?}",
            draw::verify(&record)
        );
    }

    #[test]
    fn eligibility_says_why_not() {
        let open = |e| LuckyDraw::open("d1".into(), spec(e, 1), [0; 32], 0);
        let gold = Candidate {
            tier: Some("gold"),
            watched_ms: 0,
        };
        assert!(open(DrawEligibility::Everyone).refusal(anyone(0)).is_none());
        assert!(open(DrawEligibility::Dealers).refusal(anyone(0)).is_some());
        assert!(open(DrawEligibility::Dealers).refusal(gold).is_none());
        let tiers = open(DrawEligibility::Tiers {
            tiers: vec!["silver".into()],
        });
        assert!(tiers.refusal(gold).unwrap().contains("silver"));
        let keyword = open(DrawEligibility::Keyword {
            keyword: "lucky".into(),
        });
        assert!(keyword.refusal(gold).unwrap().contains("lucky"));
        assert!(keyword.keyword_in("i feel lucky"));
        assert!(!keyword.keyword_in("i feel fine"));
        let watched = open(DrawEligibility::WatchedMinutes { minutes: 2 });
        assert_eq!(
            watched.refusal(anyone(119_000)).as_deref(),
            Some("this draw is for viewers who watched 2 minutes; 1 s to go")
        );
        assert!(watched.refusal(anyone(120_000)).is_none());
    }

    #[test]
    fn restore_from_the_written_draw_equals_the_draw_before() {
        let mut d = LuckyDraw::open("d1".into(), spec(DrawEligibility::Everyone, 1), [9; 32], 0);
        d.enter("x", "X");
        d.enter("y", "Y");
        let back = LuckyDraw::restore(d.draw().clone()).unwrap();
        assert_eq!(back.draw(), d.draw());
        assert_eq!(back.seed(), d.seed());
        assert!(back.has_entered("x") && back.has_entered("y"));
        let mut bad = d.draw().clone();
        bad.seed = "not hex".into();
        assert!(LuckyDraw::restore(bad).is_none());
    }
}
