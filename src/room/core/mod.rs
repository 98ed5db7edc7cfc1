//! The room state machine: inputs plus `now` in, outputs out. No runtime, no sockets, no locks.
//!
//! `Room` is one struct; its jobs live in the modules below, each an `impl Room` block:
//! audience (sessions, resume, heartbeats), moderation (kicks, revoked tokens, mutes, media
//! sessions), chat, catalog, dealers, program (room state and brand on air), host command
//! dispatch, and the commerce glue that turns the pure decisions of `room::commerce` into
//! events, frames and store writes. `tick` does the timed work; `next_deadline` says when.

mod audience;
mod catalog;
mod chat;
mod commerce;
mod dealers;
mod draws;
mod engagement;
mod flash_sales;
mod host;
mod moderation;
mod orders;
mod program;
mod red_packets;
mod registration;
mod validate;

#[cfg(test)]
mod tests;

pub use chat::mask_banned;
pub use engagement::{PRODUCT_EVENTS_PER_WINDOW, PRODUCT_EVENT_WINDOW_MS};
pub use validate::{
    check_brand_name, product_problems, ProductField, ProductProblem, MAX_BRANDS, MAX_PRODUCTS,
};

use super::event::{envelope, render, ClassView, Frames, RoomEvent, SeqEvent};
use crate::model::*;
use bytes::Bytes;
use commerce::Commerce;
// Room state is keyed by viewer ids and keys on every input: foldhash (randomly seeded per
// process) instead of SipHash. Sessions, whose ids the server hands out, are kept ordered so
// the outputs of one input come in the same order on every run.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Coalescing interval of online/like counters.
const COUNTER_INTERVAL_MS: i64 = 1000;
/// Interval of the host console's stats while a host watches.
const STATS_INTERVAL_MS: i64 = 1000;

/// What the owner task must do after an input.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send to every session: each picks the bytes of its class.
    Broadcast(Arc<Frames>),
    /// The sequenced event itself, for the bus.
    Published(Arc<SeqEvent>),
    /// A frame for one session only.
    Send {
        session: SessionId,
        frame: Bytes,
    },
    /// A frame for one session, sent only once this input's store writes are durable (an
    /// acknowledgement). If they fail, the session gets a `store_failed` error instead and
    /// `undo` (if any) goes back to the room.
    SendDurable {
        session: SessionId,
        frame: Bytes,
        undo: Option<Undo>,
    },
    /// A session's audience class changed (later broadcasts use the new class).
    ClassChanged {
        session: SessionId,
        class: AudienceClass,
    },
    /// Close one session, saying why.
    Close {
        session: SessionId,
        why: Refusal,
    },
    /// End these WHIP/WHEP sessions (ids as given to `attach_media`), saying why; the room has
    /// forgotten them already.
    EndMedia {
        ids: Vec<String>,
        why: Refusal,
    },
    Persist(StoreOp),
    Watch(WatchEvent),
}

/// What to take back in the room if an acknowledged-after-durable write fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    Order {
        order_id: String,
    },
    SaleGrant {
        sale_id: String,
        order_id: String,
    },
    RedPacketGrab {
        packet_id: String,
        viewer_id: String,
        /// The position of the split the viewer got.
        index: u32,
    },
}

struct Session {
    viewer_id: String,
    display_name: String,
    inviter_id: Option<String>,
    token_tier: Option<String>,
    jti: String,
    expires_ms: i64,
    class: AudienceClass,
    joined_ms: i64,
    last_heartbeat_ms: i64,
    /// When `tick` next has work for this session: its key in `session_timers`.
    due_ms: i64,
    /// The token's expiry was acted on (its close is on the way).
    expiry_told: bool,
    error_strikes: u32,
    strike_window_start: i64,
    /// product_view / product_click messages in the current window (rate limit).
    product_events: u32,
    product_window_start: i64,
}

#[derive(Default)]
struct ViewerState {
    /// The viewer's open connections (a handful at most).
    sessions: Vec<SessionId>,
    chat_times: VecDeque<i64>,
    flood_strikes: u32,
    flood_window_start: i64,
}

pub struct Room {
    record: RoomRecord,
    epoch: String,
    brands: Vec<Brand>,
    /// Products in creation order.
    products: Vec<Product>,
    dealers: HashMap<String, DealerRecord>,
    applications: BTreeMap<String, DealerApplication>,
    /// Refused token ids → the token's expiry; `kicked_expiries` orders them by expiry.
    kicked: HashMap<String, i64>,
    kicked_expiries: BTreeSet<(i64, String)>,
    mutes: HashMap<String, i64>,
    sessions: BTreeMap<SessionId, Session>,
    viewers: HashMap<String, ViewerState>,
    /// (due, session): when each session next needs `tick` (heartbeat or token expiry).
    session_timers: BTreeSet<(i64, SessionId)>,
    /// WHIP/WHEP sessions by id.
    media: BTreeMap<String, MediaSession>,
    /// Watch time of closed sessions, per viewer (this process's life and the store's log).
    watch_time: HashMap<String, i64>,
    peak_online: u32,
    heartbeat_ms: i64,
    seq: u64,
    history: VecDeque<Arc<Frames>>,
    recent_chat: VecDeque<ChatRecord>,
    deletable_chat: VecDeque<String>,
    deletable_set: HashSet<String>,
    /// Chat times of the last minute (host stats).
    chat_minute: VecDeque<i64>,
    likes: u64,
    likes_sent: u64,
    online_sent: u32,
    counters_sent_ms: i64,
    stats_sent_ms: i64,
    /// Time of the input being applied (stamped on private frames).
    now: i64,
    /// Whether anyone watches the room (WatchRoom): host stats and order events are not
    /// built otherwise.
    watched: bool,
    commerce: Commerce,
    /// Engagement counted but not yet written (see `engagement.rs`).
    engagement: engagement::OpenCounts,
    /// Brands whose presenter feed is live (told by the media module).
    live_feeds: BTreeSet<String>,
    /// The program state viewers were last told of: (brand on air, its feed is live).
    program_sent: (Option<String>, bool),
    /// Where draw seeds and red-packet splits come from.
    entropy: Box<dyn RngCore + Send>,
}

impl Room {
    /// Rebuilds a room from the store. `epoch` distinguishes this incarnation's sequence
    /// numbers from an earlier process's. Randomness comes from a generator seeded by the
    /// operating system; tests replace it with `set_entropy`.
    pub fn restore(loaded: LoadedRoom, epoch: String, heartbeat_ms: i64, now: i64) -> Option<Room> {
        let record = loaded.record?;
        let mut brands = loaded.brands;
        brands.sort_by_key(|b| b.position);
        let commerce = Commerce::restore(
            loaded.orders,
            loaded.sales,
            loaded.draws,
            loaded.red_packets,
            now,
        );
        let kicked: HashMap<String, i64> = loaded
            .kicked_tokens
            .into_iter()
            .filter(|(_, exp)| *exp > now)
            .collect();
        Some(Room {
            history: VecDeque::with_capacity((record.history_window as usize).min(4096)),
            program_sent: (record.brand_on_air.clone(), false),
            record,
            epoch,
            brands,
            products: loaded.products,
            dealers: loaded
                .dealers
                .into_iter()
                .map(|d| (d.viewer_id.clone(), d))
                .collect(),
            applications: loaded
                .applications
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
            kicked_expiries: kicked.iter().map(|(j, e)| (*e, j.clone())).collect(),
            kicked,
            mutes: loaded.mutes.into_iter().filter(|(_, u)| *u > now).collect(),
            sessions: BTreeMap::new(),
            viewers: HashMap::new(),
            session_timers: BTreeSet::new(),
            media: BTreeMap::new(),
            watch_time: HashMap::new(),
            peak_online: 0,
            heartbeat_ms: heartbeat_ms.max(1),
            seq: 0,
            recent_chat: VecDeque::new(),
            deletable_chat: VecDeque::new(),
            deletable_set: HashSet::new(),
            chat_minute: VecDeque::new(),
            likes: 0,
            likes_sent: 0,
            online_sent: 0,
            counters_sent_ms: 0,
            stats_sent_ms: 0,
            now,
            watched: true,
            commerce,
            engagement: Default::default(),
            live_feeds: BTreeSet::new(),
            entropy: Box::new(StdRng::from_os_rng()),
        })
    }

    pub fn new(record: RoomRecord, epoch: String, heartbeat_ms: i64) -> Room {
        Room::restore(
            LoadedRoom {
                record: Some(record),
                ..Default::default()
            },
            epoch,
            heartbeat_ms,
            0,
        )
        .expect("record is present")
    }

    /// Replaces the room's source of randomness (draw seeds, red-packet splits). Production
    /// keeps the default, a CSPRNG seeded by the operating system, so draw seeds stay
    /// unpredictable; tests pass a seeded generator to replay exactly.
    pub fn set_entropy(&mut self, entropy: Box<dyn RngCore + Send>) {
        self.entropy = entropy;
    }

    /// Tells the room whether a host watches it; without watchers it skips the host stats
    /// and the per-order watch events (an order clone each) on the grab and order paths.
    pub fn set_watched(&mut self, watched: bool) {
        self.watched = watched;
    }

    pub fn record(&self) -> &RoomRecord {
        &self.record
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Unique viewers with at least one WebSocket session.
    pub fn online(&self) -> u32 {
        self.viewers.len() as u32
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            record: self.record.clone(),
            brands: self.brands.clone(),
            online: self.online(),
            peak_online: self.peak_online,
            // The room does not know where it runs; the node that runs it says.
            owner_node: None,
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{}", self.record.next_id);
        self.record.next_id += 1;
        id
    }

    fn tier_name(&self, class: AudienceClass) -> Option<String> {
        match class {
            AudienceClass::Dealer(i) => self.record.tiers.get(i as usize).cloned(),
            AudienceClass::Public => None,
        }
    }

    fn class_view(&self, class: AudienceClass) -> ClassView<'_> {
        ClassView {
            tier: match class {
                AudienceClass::Public => None,
                AudienceClass::Dealer(i) => self.record.tiers.get(i as usize).map(|s| s.as_str()),
            },
            currency: &self.record.currency,
        }
    }

    /// A frame for one session: it carries the latest seq and takes none of its own.
    fn private(&self, kind: &str, body: impl serde::Serialize) -> Bytes {
        envelope(kind, self.seq, self.now, &body)
    }

    fn error_frame(&self, code: &str, message: &str) -> Bytes {
        self.private(
            "error",
            serde_json::json!({ "code": code, "message": message }),
        )
    }

    /// Emits a sequenced event to everyone and keeps it for resume.
    fn broadcast(&mut self, event: RoomEvent, now: i64, out: &mut Vec<Output>) -> u64 {
        self.seq += 1;
        let ev = SeqEvent {
            room: self.record.id.clone(),
            seq: self.seq,
            at_ms: now,
            event,
        };
        let frames = Arc::new(render(&ev, &self.record.tiers, &self.record.currency));
        if self.history.len() >= self.record.history_window as usize {
            self.history.pop_front();
        }
        self.history.push_back(frames.clone());
        out.push(Output::Broadcast(frames));
        out.push(Output::Published(Arc::new(ev)));
        self.seq
    }

    fn persist_room(&self, out: &mut Vec<Output>) {
        out.push(Output::Persist(StoreOp::PutRoom(Box::new(
            self.record.clone(),
        ))));
    }

    /// A line for the host console.
    fn action(&self, action: &'static str, viewer_id: &str, detail: String, now: i64) -> Output {
        Output::Watch(WatchEvent::Action {
            action: action.to_string(),
            viewer_id: viewer_id.to_string(),
            detail,
            at_ms: now,
        })
    }

    /// The earliest time (ms) at which `tick` has work, or `None` when nothing is pending.
    /// Cheap enough to ask after every batch of inputs: each part is a counter comparison or
    /// the first entry of an ordered set, never a walk over the sessions.
    pub fn next_deadline(&self) -> Option<i64> {
        let counters = (self.online() != self.online_sent || self.likes != self.likes_sent)
            .then_some(self.counters_sent_ms + COUNTER_INTERVAL_MS);
        let stats = self
            .watched
            .then_some(self.stats_sent_ms + STATS_INTERVAL_MS);
        [
            counters,
            stats,
            self.next_session_deadline(),
            self.kicked_expiries.first().map(|(at, _)| *at),
            self.next_commerce_deadline(),
            self.engagement_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Timed work: coalesced counters, host stats, audience heartbeats, token expiries,
    /// flash-sale phases, draw closes, red-packet expiries. Correct whenever it is called:
    /// early it finds nothing due, late it does everything that came due.
    pub fn tick(&mut self, now: i64, out: &mut Vec<Output>) {
        self.now = now;
        if now - self.counters_sent_ms >= COUNTER_INTERVAL_MS {
            let online = self.online();
            let mut sent = false;
            if online != self.online_sent {
                self.online_sent = online;
                self.broadcast(RoomEvent::OnlineCount { online }, now, out);
                sent = true;
            }
            if self.likes != self.likes_sent {
                self.likes_sent = self.likes;
                self.broadcast(RoomEvent::LikeCount { likes: self.likes }, now, out);
                sent = true;
            }
            if sent {
                self.counters_sent_ms = now;
            }
        }
        if self.watched && now - self.stats_sent_ms >= STATS_INTERVAL_MS {
            self.stats_sent_ms = now;
            out.push(Output::Watch(WatchEvent::Stats(self.stats(now))));
        }
        self.sessions_tick(now, out);
        self.forget_expired_kicks(now);
        self.commerce_tick(now, out);
        if self.engagement_deadline().is_some_and(|due| due <= now) {
            self.flush_engagement(out);
        }
    }

    fn stats(&mut self, now: i64) -> RoomStats {
        self.forget_old_chat_times(now);
        let dealers_online = self
            .viewers
            .values()
            .filter(|v| {
                v.sessions
                    .iter()
                    .any(|id| self.sessions[id].class != AudienceClass::Public)
            })
            .count() as u32;
        RoomStats {
            online: self.online(),
            peak_online: self.peak_online,
            dealers_online,
            chat_per_minute: self.chat_minute.len() as u32,
            likes: self.likes,
            seq: self.seq,
            at_ms: now,
        }
    }
}
