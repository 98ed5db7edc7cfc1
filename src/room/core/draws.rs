//! Room glue for lucky draws: opening one with a seed from the room's entropy, entries, closing, the result.

use super::commerce::{lookup, Due};
use super::validate::{check_text, invalid};
use super::{Output, Room};
use crate::draw;
use crate::model::*;
use crate::room::commerce::lucky_draw::{Candidate, DrawSpec, LuckyDraw};
use crate::room::commerce::number;
use crate::room::event::RoomEvent;
use rand::RngCore;
use serde_json::json;

/// Draws a room may hold, and run open at once.
const MAX_DRAWS: usize = 1000;
const MAX_OPEN_DRAWS: usize = 20;

impl Room {
    /// The draws not yet drawn (welcome snapshot).
    pub(super) fn open_draws_view(&self) -> Vec<serde_json::Value> {
        self.commerce
            .draws
            .values()
            .filter(|d| !d.is_drawn())
            .map(|d| {
                let r = d.draw();
                json!({
                    "draw_id": r.id,
                    "state": if d.is_closed() { "awaiting_beacon" } else { "open" },
                    "prize": r.prize,
                    "winners_count": r.winners_count,
                    "eligibility": r.eligibility,
                    "closes_ms": r.closes_ms,
                    "commitment": r.commitment,
                    "beacon_source": r.beacon_source,
                    "entrants_hash": r.entrants_hash,
                    "algorithm": draw::ALGORITHM,
                    "entrant_count": d.entrant_count(),
                })
            })
            .collect()
    }

    /// Checks what the host asked for and returns the rules as they will be kept.
    pub(super) fn check_eligibility(
        &self,
        eligibility: DrawEligibility,
    ) -> Result<DrawEligibility, RoomError> {
        Ok(match eligibility {
            DrawEligibility::Tiers { tiers } => {
                if tiers.is_empty() {
                    return Err(invalid("a tiers rule needs at least one tier"));
                }
                for t in &tiers {
                    self.check_tier(t)?;
                }
                DrawEligibility::Tiers { tiers }
            }
            DrawEligibility::Keyword { keyword } => {
                let keyword = keyword.trim().to_lowercase();
                check_text("keyword", &keyword, 1, 50)?;
                DrawEligibility::Keyword { keyword }
            }
            DrawEligibility::WatchedMinutes { minutes } => {
                if !(1..=1440).contains(&minutes) {
                    return Err(invalid(format!(
                        "watched_minutes must be 1 to 1440 (got {minutes})"
                    )));
                }
                DrawEligibility::WatchedMinutes { minutes }
            }
            e => e,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_draw(
        &mut self,
        prize: String,
        winners: u32,
        eligibility: DrawEligibility,
        entry_seconds: u32,
        beacon_source: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.require_live("lucky draws run")?;
        let prize = prize.trim().to_string();
        check_text("prize", &prize, 1, 200)?;
        let beacon_source = beacon_source.trim().to_string();
        check_text("beacon_source", &beacon_source, 0, 200)?;
        if !(1..=10_000).contains(&winners) {
            return Err(invalid(format!(
                "winners must be 1 to 10000 (got {winners})"
            )));
        }
        if !(5..=86_400).contains(&entry_seconds) {
            return Err(invalid(format!(
                "entry_seconds must be 5 to 86400 (got {entry_seconds})"
            )));
        }
        let eligibility = self.check_eligibility(eligibility)?;
        let open = self
            .commerce
            .draws
            .values()
            .filter(|d| !d.is_closed())
            .count();
        if open >= MAX_OPEN_DRAWS || self.commerce.draws.len() >= MAX_DRAWS {
            return Err(RoomError::FailedPrecondition(format!(
                "a room runs at most {MAX_OPEN_DRAWS} open draws and {MAX_DRAWS} in all"
            )));
        }
        let mut seed = [0u8; 32];
        self.entropy.fill_bytes(&mut seed);
        let id = self.next_id("d");
        let n = number(&id, 'd').expect("made here");
        let spec = DrawSpec {
            prize,
            winners_count: winners,
            eligibility,
            entry_ms: entry_seconds as i64 * 1000,
            beacon_source,
        };
        let lucky = LuckyDraw::open(id.clone(), spec, seed, now);
        let d = lucky.draw();
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutDraw {
            room: self.record.id.clone(),
            draw: Box::new(d.clone()),
        }));
        let event = RoomEvent::DrawOpened {
            draw_id: d.id.clone(),
            prize: d.prize.clone(),
            winners_count: d.winners_count,
            eligibility: d.eligibility.clone(),
            closes_ms: d.closes_ms,
            commitment: d.commitment.clone(),
            beacon_source: d.beacon_source.clone(),
            algorithm: draw::ALGORITHM.into(),
        };
        self.broadcast(event, now, out);
        out.push(self.action("draw_opened", "", id, now));
        self.commerce
            .agenda
            .insert((lucky.draw().closes_ms, Due::DrawClose(n)));
        let record = lucky.record(&self.record.id);
        self.commerce.draws.insert(n, lucky);
        Ok(HostReply::Draw(Box::new(record)))
    }

    /// Puts a session's viewer in draw `n`; the answer leaves once the entry is written.
    pub(super) fn enter(&mut self, n: u64, session: SessionId, now: i64, out: &mut Vec<Output>) {
        let s = &self.sessions[&session];
        let d = self.commerce.draws.get_mut(&n).expect("caller checked");
        let fresh = d.enter(&s.viewer_id, &s.display_name);
        if fresh {
            out.push(Output::Persist(StoreOp::AddDrawEntrant {
                room: self.record.id.clone(),
                draw_id: d.draw().id.clone(),
                viewer_id: s.viewer_id.clone(),
                at_ms: now,
            }));
        }
        let body = json!({
            "draw_id": d.draw().id,
            "entered": true,
            "already": !fresh,
            "entrant_count": d.entrant_count(),
        });
        let frame = self.private("draw_entered", body);
        out.push(Output::SendDurable {
            session,
            frame,
            undo: None,
        });
    }

    pub(super) fn enter_draw(
        &mut self,
        session: SessionId,
        draw_id: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Ok((n, d)) = lookup(
            &self.commerce.draws,
            draw_id,
            'd',
            "lucky draw",
            &self.record.id,
        ) else {
            return Err(ProtocolError::new(
                "unknown_draw",
                format!("lucky draw {draw_id} is not in this room"),
            ));
        };
        if !d.takes_entries(now) {
            return Err(ProtocolError::new(
                "draw_closed",
                format!("lucky draw {draw_id} is closed"),
            ));
        }
        let tier = self.dealer_tier(session);
        let candidate = Candidate {
            tier: tier.as_deref(),
            watched_ms: self.watched_ms(&self.sessions[&session].viewer_id, now),
        };
        if let Some(why) = d.refusal(candidate) {
            return Err(ProtocolError::new("not_eligible", why));
        }
        self.enter(n, session, now, out);
        Ok(())
    }

    /// A chat containing an open keyword draw's keyword is an entry.
    pub(super) fn keyword_entries(
        &mut self,
        session: SessionId,
        text: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let lower = text.to_lowercase();
        let viewer = &self.sessions[&session].viewer_id;
        let hits: Vec<u64> = self
            .commerce
            .draws
            .iter()
            .filter(|(_, d)| d.takes_entries(now) && !d.has_entered(viewer) && d.keyword_in(&lower))
            .map(|(n, _)| *n)
            .collect();
        for n in hits {
            self.enter(n, session, now, out);
        }
    }

    /// Entry closes: the canonical entrants and their hash are fixed and published.
    pub(super) fn close_entry(&mut self, n: u64, now: i64, out: &mut Vec<Output>) {
        let d = self.commerce.draws.get_mut(&n).expect("caller checked");
        let hash = d.close_entry(now).to_string();
        let r = d.draw();
        let event = RoomEvent::DrawClosed {
            draw_id: r.id.clone(),
            entrant_count: r.entrants.len() as u32,
            entrants_hash: hash,
            beacon_source: r.beacon_source.clone(),
        };
        out.push(Output::Persist(StoreOp::PutDraw {
            room: self.record.id.clone(),
            draw: Box::new(r.clone()),
        }));
        self.commerce
            .agenda
            .remove(&(r.closes_ms, Due::DrawClose(n)));
        self.broadcast(event, now, out);
    }

    /// The winners of a closed draw, from its published entrants hash and the beacon.
    pub(super) fn draw_winners(
        &mut self,
        n: u64,
        beacon: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> DrawRecord {
        let d = self.commerce.draws.get_mut(&n).expect("caller checked");
        let winners = d.pick_winners(beacon, now);
        let r = d.draw().clone();
        out.push(Output::Persist(StoreOp::PutDraw {
            room: self.record.id.clone(),
            draw: Box::new(r.clone()),
        }));
        self.broadcast(
            RoomEvent::DrawResult {
                draw_id: r.id.clone(),
                prize: r.prize.clone(),
                seed: r.seed.clone(),
                entrants_hash: r.entrants_hash.clone().unwrap_or_default(),
                beacon: r.beacon.clone(),
                winners: winners.clone(),
            },
            now,
            out,
        );
        for (w, _) in &winners {
            for session in self.sessions_of(w) {
                let frame = self.private("draw_won", json!({ "draw_id": r.id, "prize": r.prize }));
                out.push(Output::Send { session, frame });
            }
        }
        out.push(self.action(
            "draw_closed",
            "",
            format!("{}: {}", r.id, r.winners.join(", ")),
            now,
        ));
        self.commerce.draws[&n].record(&self.record.id)
    }

    /// Entry ends (window over, host, room closing): a draw without a beacon source is drawn
    /// at once; one with a source waits for its beacon.
    pub(super) fn end_entry(&mut self, n: u64, now: i64, out: &mut Vec<Output>) -> DrawRecord {
        self.close_entry(n, now, out);
        if self.commerce.draws[&n].draw().beacon_source.is_empty() {
            self.draw_winners(n, String::new(), now, out)
        } else {
            self.commerce.draws[&n].record(&self.record.id)
        }
    }

    pub(super) fn close_draw(
        &mut self,
        draw_id: &str,
        beacon: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let (n, d) = lookup(
            &self.commerce.draws,
            draw_id,
            'd',
            "lucky draw",
            &self.record.id,
        )?;
        let beacon = beacon.trim().to_string();
        check_text("beacon", &beacon, 0, 200)?;
        let source = &d.draw().beacon_source;
        if d.is_drawn() {
            return Err(RoomError::FailedPrecondition(format!(
                "lucky draw {draw_id} is already drawn"
            )));
        }
        if !d.is_closed() {
            if !beacon.is_empty() {
                return Err(RoomError::FailedPrecondition(if source.is_empty() {
                    format!(
                        "lucky draw {draw_id} declared no beacon source when it opened; \
                         a beacon chosen now could pick the winners, so it is refused"
                    )
                } else {
                    format!(
                        "close entry of lucky draw {draw_id} first (without a beacon): \
                         its entrants hash must be public before the beacon from \
                         {source:?} is known"
                    )
                }));
            }
            let r = self.end_entry(n, now, out);
            return Ok(HostReply::Draw(Box::new(r)));
        }
        if beacon.is_empty() {
            return Err(invalid(format!(
                "lucky draw {draw_id} is closed and waits for its beacon from {source:?}"
            )));
        }
        let r = self.draw_winners(n, beacon, now, out);
        Ok(HostReply::Draw(Box::new(r)))
    }
}
