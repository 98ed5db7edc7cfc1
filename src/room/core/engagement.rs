//! Engagement for reports and lead scores: product cards opened, product links followed,
//! likes and grab attempts are counted per viewer in the room and written in batches (one
//! store write per interval, never one per event); brand switches go to the program log.

use super::{Output, Room, SessionId};
use crate::model::*;
use std::collections::BTreeMap;

/// Open counts are written at least this often, so reports trail the show by seconds.
pub(super) const ENGAGEMENT_FLUSH_MS: i64 = 2_000;
/// Product messages (opened plus clicked) one connection may send per window.
pub const PRODUCT_EVENTS_PER_WINDOW: u32 = 30;
pub const PRODUCT_EVENT_WINDOW_MS: i64 = 10_000;
/// More distinct open counts than this are written at once: the room's memory stays bounded.
const MAX_OPEN_COUNTS: usize = 20_000;

/// Counts not yet written: (viewer, kind, target) → (how many, first at).
#[derive(Default)]
pub(super) struct OpenCounts {
    counts: BTreeMap<(String, EngagementKind, String), (u32, i64)>,
    /// When the oldest open count began.
    since_ms: i64,
}

impl Room {
    /// Counts `n` events; written with the next batch.
    pub(super) fn count_engagement(
        &mut self,
        viewer_id: &str,
        kind: EngagementKind,
        target: &str,
        n: u32,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let open = &mut self.engagement;
        if open.counts.is_empty() {
            open.since_ms = now;
        }
        let c = open
            .counts
            .entry((viewer_id.to_string(), kind, target.to_string()))
            .or_insert((0, now));
        c.0 = c.0.saturating_add(n);
        if open.counts.len() >= MAX_OPEN_COUNTS {
            self.flush_engagement(out);
        }
    }

    /// `product_view` / `product_click` from a viewer: checked, rate-limited per connection,
    /// counted. Nothing goes to other viewers.
    pub(super) fn product_event(
        &mut self,
        session: SessionId,
        product_id: &str,
        kind: EngagementKind,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        if !self.products.iter().any(|p| p.id == product_id) {
            return Err(ProtocolError::new(
                "unknown_product",
                format!("product {product_id} is not in this room"),
            ));
        }
        if kind == EngagementKind::ProductClick && self.dealer_tier(session).is_none() {
            return Err(ProtocolError::new(
                "not_dealer",
                "only verified dealers see product links",
            ));
        }
        let s = self.sessions.get_mut(&session).expect("the caller checked");
        if now - s.product_window_start >= PRODUCT_EVENT_WINDOW_MS {
            s.product_window_start = now;
            s.product_events = 0;
        }
        if s.product_events >= PRODUCT_EVENTS_PER_WINDOW {
            return Err(ProtocolError::new(
                "rate_limited",
                format!(
                    "at most {PRODUCT_EVENTS_PER_WINDOW} product_view and product_click \
                     messages per {} s",
                    PRODUCT_EVENT_WINDOW_MS / 1000
                ),
            ));
        }
        s.product_events += 1;
        let viewer_id = s.viewer_id.clone();
        self.count_engagement(&viewer_id, kind, product_id, 1, now, out);
        Ok(())
    }

    /// When the open counts are due to be written, if there are any.
    pub(super) fn engagement_deadline(&self) -> Option<i64> {
        (!self.engagement.counts.is_empty())
            .then_some(self.engagement.since_ms + ENGAGEMENT_FLUSH_MS)
    }

    /// Writes every open count as one store write. Called on its deadline, before a brand
    /// switch (a record never spans two segments), at the room's end and when the node
    /// drains.
    pub fn flush_engagement(&mut self, out: &mut Vec<Output>) {
        if self.engagement.counts.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.engagement.counts)
            .into_iter()
            .map(
                |((viewer_id, kind, target), (count, at_ms))| EngagementRecord {
                    viewer_id,
                    kind,
                    target,
                    count,
                    at_ms,
                },
            )
            .collect();
        out.push(Output::Persist(StoreOp::AppendEngagement {
            room: self.record.id.clone(),
            records,
        }));
    }

    /// The program log: from `now` on, `brand_id` is on air.
    pub(super) fn log_program(
        &mut self,
        brand_id: Option<String>,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        self.flush_engagement(out);
        out.push(Output::Persist(StoreOp::AppendProgram {
            room: self.record.id.clone(),
            record: ProgramRecord {
                brand_id,
                at_ms: now,
            },
        }));
    }
}
