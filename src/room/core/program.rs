//! What is on: the room's state (scheduled, live, ended), the brand on air and whether its feed is live.

use super::{Output, Room};
use crate::model::*;
use crate::room::event::RoomEvent;
use std::collections::BTreeSet;

impl Room {
    /// The media module reports which brands have a live feed; viewers get `program` when
    /// the brand on air gains or loses its feed.
    pub fn set_live_feeds(&mut self, live: BTreeSet<String>, now: i64, out: &mut Vec<Output>) {
        self.now = now;
        self.live_feeds = live;
        self.update_program(now, out);
    }

    /// (brand on air, its feed is live).
    pub(super) fn program(&self) -> (Option<String>, bool) {
        let brand = self.record.brand_on_air.clone();
        let live = brand.as_ref().is_some_and(|b| self.live_feeds.contains(b));
        (brand, live)
    }

    /// Viewers hear of the program only when its liveness changes: a switch between two
    /// brands without feeds changes nothing they can see (`brand_switched` tells the brand).
    pub(super) fn update_program(&mut self, now: i64, out: &mut Vec<Output>) {
        let p = self.program();
        if p.1 != self.program_sent.1 {
            self.program_sent = p.clone();
            self.broadcast(
                RoomEvent::Program {
                    brand_id: p.0,
                    live: p.1,
                },
                now,
                out,
            );
        }
    }

    pub(super) fn open_room(
        &mut self,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        if self.record.state == RoomState::Live {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} is already live",
                self.record.id
            )));
        }
        self.record.state = RoomState::Live;
        self.record.opened_ms = Some(now);
        self.persist_room(out);
        self.broadcast(
            RoomEvent::RoomState {
                state: RoomState::Live,
            },
            now,
            out,
        );
        out.push(self.action("room_state", "", "live".into(), now));
        Ok(HostReply::Room(Box::new(self.summary())))
    }

    /// The room ends: commerce is wound up, and every session — WebSocket, WHIP and WHEP —
    /// is closed.
    pub(super) fn close_room(
        &mut self,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.end_commerce(now, out);
        self.flush_engagement(out);
        self.record.state = RoomState::Ended;
        self.record.ended_ms = Some(now);
        self.persist_room(out);
        self.broadcast(
            RoomEvent::RoomState {
                state: RoomState::Ended,
            },
            now,
            out,
        );
        out.push(self.action("room_state", "", "ended".into(), now));
        let ended = || Refusal::new(EndReason::RoomEnded, "room ended");
        for &session in self.sessions.keys() {
            out.push(Output::Close {
                session,
                why: ended(),
            });
        }
        if !self.media.is_empty() {
            let ids = std::mem::take(&mut self.media).into_keys().collect();
            out.push(Output::EndMedia { ids, why: ended() });
        }
        out.push(Output::Watch(WatchEvent::Ended));
        Ok(HostReply::Room(Box::new(self.summary())))
    }

    pub(super) fn switch_brand(
        &mut self,
        brand_id: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let brand = self.brand(&brand_id)?.clone();
        self.log_program(Some(brand_id.clone()), now, out);
        self.record.brand_on_air = Some(brand_id.clone());
        if let Some(p) = &self.record.pinned_product {
            if !self
                .products
                .iter()
                .any(|x| &x.id == p && x.brand_id == brand_id)
            {
                self.record.pinned_product = None;
            }
        }
        self.persist_room(out);
        let shelf = self.shelf();
        self.broadcast(
            RoomEvent::BrandSwitched {
                brand: brand.clone(),
                shelf,
                pinned_product: self.record.pinned_product.clone(),
            },
            now,
            out,
        );
        out.push(self.action("brand_switched", "", brand.name, now));
        self.update_program(now, out);
        Ok(HostReply::Room(Box::new(self.summary())))
    }
}
