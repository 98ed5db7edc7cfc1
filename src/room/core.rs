//! The room state machine: `apply(input, now) -> outputs`. No tokio, no sockets, no locks.

mod commerce;

use commerce::Commerce;
pub use commerce::Undo;

use super::event::{envelope, render, ClassView, Frames, RoomEvent, SeqEvent};
use crate::model::*;
use bytes::Bytes;
use serde_json::json;
// Room state is keyed by viewer ids and keys on every input: foldhash (randomly seeded per
// process) instead of SipHash.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Chat messages kept in memory for the welcome snapshot.
const RECENT_CHAT: usize = 30;
/// Chat ids remembered for DeleteMessage.
const DELETABLE_CHAT: usize = 10_000;
/// Rate-limited messages per minute after which a viewer is closed for flooding.
const FLOOD_STRIKES: u32 = 30;
/// Errors (bad messages) per minute after which a viewer is closed for abuse.
const ERROR_STRIKES: u32 = 30;
/// The longest lifetime of a token the control plane issues (30 days).
const MAX_TOKEN_TTL_MS: i64 = 30 * 86_400_000;
/// Coalescing interval of online/like counters.
const COUNTER_INTERVAL_MS: i64 = 1000;

fn invalid(msg: impl Into<String>) -> RoomError {
    RoomError::InvalidArgument(msg.into())
}

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
    Persist(StoreOp),
    Watch(WatchEvent),
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
    error_strikes: u32,
    strike_window_start: i64,
}

#[derive(Default)]
struct ViewerState {
    sessions: u32,
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
    kicked: HashMap<String, i64>,
    mutes: HashMap<String, i64>,
    sessions: HashMap<SessionId, Session>,
    viewers: HashMap<String, ViewerState>,
    seq: u64,
    history: VecDeque<Arc<Frames>>,
    recent_chat: VecDeque<ChatRecord>,
    deletable_chat: VecDeque<String>,
    deletable_set: HashSet<String>,
    chat_minute: VecDeque<i64>,
    likes: u64,
    likes_sent: u64,
    online_sent: u32,
    counters_sent_ms: i64,
    stats_sent_ms: i64,
    peak_online: u32,
    heartbeat_ms: i64,
    /// Time of the input being applied (stamped on private frames).
    now: i64,
    /// Whether anyone watches the room (WatchRoom): order events are not built otherwise.
    watched: bool,
    commerce: Commerce,
    /// Brands whose presenter feed is live (told by the media module).
    live_feeds: BTreeSet<String>,
    /// The program state viewers were last told of: (brand on air, its feed is live).
    program_sent: (Option<String>, bool),
}

fn check_text(field: &str, v: &str, min: usize, max: usize) -> Result<(), RoomError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(invalid(format!(
            "{field} must be {min} to {max} characters (got {n})"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(())
}

fn check_url(field: &str, v: &str, required: bool) -> Result<(), RoomError> {
    if v.is_empty() {
        return if required {
            Err(invalid(format!("{field} is required")))
        } else {
            Ok(())
        };
    }
    if v.len() > 2048 {
        return Err(invalid(format!("{field} is longer than 2048 bytes")));
    }
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => Ok(()),
        Ok(u) => Err(invalid(format!(
            "{field} must be an http(s) URL, not {}:",
            u.scheme()
        ))),
        Err(e) => Err(invalid(format!("{field} is not a valid URL: {e}"))),
    }
}

fn is_tier_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 32
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Masks every banned word (case-insensitive) with asterisks of the same length.
pub fn mask_banned(text: &str, banned: &[String]) -> String {
    if banned.is_empty() {
        return text.to_string();
    }
    let lower: Vec<char> = text.chars().flat_map(|c| c.to_lowercase()).collect();
    let orig: Vec<char> = text.chars().collect();
    // Lowercasing may change the length for a few scripts; fall back to the simple path.
    if lower.len() != orig.len() {
        let mut out = text.to_string();
        for w in banned {
            out = out.replace(w.as_str(), &"*".repeat(w.chars().count()));
        }
        return out;
    }
    let mut mask = vec![false; orig.len()];
    for w in banned {
        let w: Vec<char> = w.chars().flat_map(|c| c.to_lowercase()).collect();
        if w.is_empty() || w.len() > lower.len() {
            continue;
        }
        for i in 0..=(lower.len() - w.len()) {
            if lower[i..i + w.len()] == w[..] {
                mask[i..i + w.len()].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    orig.iter()
        .zip(mask)
        .map(|(c, m)| if m { '*' } else { *c })
        .collect()
}

impl Room {
    /// Validates the settings of a new room and returns its record.
    pub fn create(new: NewRoom, now: i64) -> Result<RoomRecord, RoomError> {
        check_text("title", new.title.trim(), 1, 200)?;
        let rate = new.chat_rate_limit.unwrap_or_default();
        if rate.messages == 0
            || rate.messages > 1000
            || rate.per_seconds == 0
            || rate.per_seconds > 3600
        {
            return Err(invalid(
                "chat_rate_limit must allow 1 to 1000 messages per 1 to 3600 seconds",
            ));
        }
        let history_window = new.history_window.unwrap_or(1000);
        if !(1..=100_000).contains(&history_window) {
            return Err(invalid("history_window must be 1 to 100000 events"));
        }
        let tiers = if new.tiers.is_empty() {
            vec!["gold".into(), "silver".into(), "bronze".into()]
        } else {
            new.tiers
        };
        if tiers.len() > 16 {
            return Err(invalid("at most 16 dealer tiers"));
        }
        for t in &tiers {
            if !is_tier_name(t) {
                return Err(invalid(format!(
                    "tier name {t:?} must be 1 to 32 characters of a-z, 0-9, _ or -"
                )));
            }
        }
        let distinct: HashSet<&String> = tiers.iter().collect();
        if distinct.len() != tiers.len() {
            return Err(invalid("tier names must be distinct"));
        }
        if new.banned_words.len() > 1000 {
            return Err(invalid("at most 1000 banned words"));
        }
        let mut banned = Vec::new();
        for w in new.banned_words {
            let w = w.trim().to_lowercase();
            check_text("banned word", &w, 1, 100)?;
            banned.push(w);
        }
        let currency = new.currency.unwrap_or_else(|| "CNY".into());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "currency {currency:?} must be a three-letter ISO 4217 code such as CNY"
            )));
        }
        if new.scheduled_start_ms < 0 {
            return Err(invalid("scheduled_start_ms must not be negative"));
        }
        Ok(RoomRecord {
            id: new.id,
            title: new.title.trim().to_string(),
            state: RoomState::Scheduled,
            scheduled_start_ms: new.scheduled_start_ms,
            chat_rate_limit: rate,
            banned_words: banned,
            history_window,
            tiers,
            currency,
            token_key: new.token_key,
            brand_on_air: None,
            pinned_product: None,
            created_ms: now,
            opened_ms: None,
            ended_ms: None,
            next_id: 1,
        })
    }

    /// Rebuilds a room from the store. `epoch` distinguishes this incarnation's sequence
    /// numbers from an earlier process's.
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
        Some(Room {
            history: VecDeque::with_capacity((record.history_window as usize).min(4096)),
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
            kicked: loaded
                .kicked_tokens
                .into_iter()
                .filter(|(_, exp)| *exp > now)
                .collect(),
            mutes: loaded.mutes.into_iter().filter(|(_, u)| *u > now).collect(),
            sessions: HashMap::new(),
            viewers: HashMap::new(),
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
            peak_online: 0,
            heartbeat_ms,
            now,
            watched: true,
            commerce,
            live_feeds: BTreeSet::new(),
            program_sent: (None, false),
        })
        .map(|mut r| {
            r.program_sent = (r.record.brand_on_air.clone(), false);
            r
        })
    }

    /// Puts watch time from before a restart back, for watched-minutes draws.
    pub fn restore_watch_time(&mut self, watched: Vec<(String, i64)>) {
        self.commerce.restore_watched(watched);
    }

    /// Puts chat from the store (oldest first) back into the snapshot and the deletable set.
    pub fn restore_chat(&mut self, chat: Vec<ChatRecord>) {
        for m in chat {
            self.remember_chat(m);
        }
    }

    fn remember_chat(&mut self, message: ChatRecord) {
        if self.deletable_chat.len() >= DELETABLE_CHAT {
            if let Some(old) = self.deletable_chat.pop_front() {
                self.deletable_set.remove(&old);
            }
        }
        self.deletable_chat.push_back(message.id.clone());
        self.deletable_set.insert(message.id.clone());
        if self.recent_chat.len() >= RECENT_CHAT {
            self.recent_chat.pop_front();
        }
        self.recent_chat.push_back(message);
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

    /// Tells the room whether a host watches it; without watchers it skips building the
    /// per-order watch events (an order clone each) on the grab and order paths.
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
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{}", self.record.next_id);
        self.record.next_id += 1;
        id
    }

    fn shelf(&self) -> Vec<Product> {
        match &self.record.brand_on_air {
            Some(b) => self
                .products
                .iter()
                .filter(|p| &p.brand_id == b)
                .cloned()
                .collect(),
            None => Vec::new(),
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

    /// The class a viewer gets: a dealer record decides; without one, a host-minted
    /// token's tier.
    fn class_for(&self, viewer_id: &str, token_tier: Option<&str>) -> AudienceClass {
        let tier = match self.dealers.get(viewer_id) {
            Some(rec) => rec.tier.as_deref(),
            None => token_tier,
        };
        tier.and_then(|t| self.record.tier_index(t))
            .map(AudienceClass::Dealer)
            .unwrap_or(AudienceClass::Public)
    }

    fn private(&self, kind: &str, body: impl serde::Serialize) -> Bytes {
        envelope(kind, self.seq, self.now, &body)
    }

    fn you(&self, s: &Session) -> serde_json::Value {
        let tier = match s.class {
            AudienceClass::Dealer(i) => self.record.tiers.get(i as usize).cloned(),
            AudienceClass::Public => None,
        };
        json!({
            "viewer_id": s.viewer_id,
            "display_name": s.display_name,
            "role": if tier.is_some() { "dealer" } else { "viewer" },
            "tier": tier,
            "muted_until_ms": self.mutes.get(&s.viewer_id).copied(),
        })
    }

    fn welcome(&self, s: &Session, now: i64) -> Bytes {
        let view = self.class_view(s.class);
        let shelf = self.shelf();
        let on_air = self
            .record
            .brand_on_air
            .as_ref()
            .and_then(|id| self.brands.iter().find(|b| &b.id == id));
        let r = &self.record;
        self.private(
            "welcome",
            json!({
                "resumed": false,
                "epoch": self.epoch,
                "server_time_ms": now,
                "room": {
                    "id": r.id,
                    "title": r.title,
                    "state": r.state.as_str(),
                    "scheduled_start_ms": r.scheduled_start_ms,
                    "currency": r.currency,
                    "chat_rate_limit": r.chat_rate_limit,
                },
                "brand_on_air": on_air,
                "program": {
                    "brand_id": self.record.brand_on_air,
                    "live": self.program().1,
                },
                "running_order": self.brands,
                "shelf": view.shelf(&shelf),
                "pinned_product": r.pinned_product,
                "online": self.online(),
                "likes": self.likes,
                "recent_chat": self.recent_chat.iter().map(|m| json!({
                    "id": m.id, "seq": m.seq, "viewer_id": m.viewer_id,
                    "display_name": m.display_name, "text": m.text, "is_dealer": m.is_dealer,
                    "at": m.at_ms,
                })).collect::<Vec<_>>(),
                "you": self.you(s),
                "sales": self.sales_view(view, now),
                "draws": self.open_draws_view(),
                "red_packets": self.red_packets_view(now),
            }),
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

    fn error_frame(&self, code: &str, message: &str) -> Bytes {
        self.private("error", json!({ "code": code, "message": message }))
    }

    // ---------------------------------------------------------------- sessions

    /// How many token ids are refused (kicked and not yet expired); changes when a kick
    /// happens, so other holders of the room's tokens (media) know to check theirs again.
    pub fn kicked_tokens(&self) -> usize {
        self.kicked.len()
    }

    /// Whether a (signature-checked) token may join or use the room's media: not once the
    /// room has ended, not with a token id that was kicked.
    pub fn admits(&self, jti: &str) -> Result<(), Refusal> {
        if self.record.state == RoomState::Ended {
            return Err(Refusal::new(EndReason::RoomEnded, "room ended"));
        }
        if self.kicked.contains_key(jti) {
            return Err(Refusal::new(
                EndReason::Revoked,
                "kicked: this token was revoked",
            ));
        }
        Ok(())
    }

    /// A viewer with a valid token joins. On success the welcome (or the resumed events)
    /// is among the outputs, before anything else for this session.
    pub fn join(
        &mut self,
        session: SessionId,
        req: JoinRequest,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<AudienceClass, Refusal> {
        self.now = now;
        self.admits(&req.viewer.jti)?;
        if let Some(tier) = &req.viewer.token_tier {
            if self.record.tier_index(tier).is_none() {
                return Err(Refusal::new(
                    EndReason::Forbidden,
                    format!(
                        "the token names dealer tier {tier:?}, which room {} does not have \
                         (its tiers: {})",
                        self.record.id,
                        self.record.tiers.join(", ")
                    ),
                ));
            }
        }
        let v = req.viewer;
        let class = self.class_for(&v.viewer_id, v.token_tier.as_deref());
        let s = Session {
            viewer_id: v.viewer_id.clone(),
            display_name: v.display_name,
            inviter_id: v.inviter_id,
            token_tier: v.token_tier,
            jti: v.jti,
            expires_ms: v.expires_ms,
            class,
            joined_ms: now,
            last_heartbeat_ms: now,
            error_strikes: 0,
            strike_window_start: now,
        };
        // Counted before the welcome, so the viewer sees itself in `online`.
        self.viewers.entry(v.viewer_id).or_default().sessions += 1;
        self.sessions.insert(session, s);
        self.peak_online = self.peak_online.max(self.online());
        let s = &self.sessions[&session];
        let resumed = req
            .resume
            .and_then(|r| self.replay(s, r.last_seq, r.epoch.as_deref()));
        match resumed {
            Some(frames) => {
                out.push(Output::Send {
                    session,
                    frame: self.private(
                        "welcome",
                        json!({
                            "resumed": true,
                            "epoch": self.epoch,
                            "server_time_ms": now,
                            "replayed": frames.len(),
                            "you": self.you(s),
                        }),
                    ),
                });
                // The welcome carries the current seq; replayed frames are older. Clients
                // apply frames in arrival order.
                out.extend(
                    frames
                        .into_iter()
                        .map(|frame| Output::Send { session, frame }),
                );
            }
            None => out.push(Output::Send {
                session,
                frame: self.welcome(s, now),
            }),
        }
        out.push(Output::Persist(StoreOp::AppendAudience {
            room: self.record.id.clone(),
            record: Box::new(AudienceRecord {
                viewer_id: s.viewer_id.clone(),
                session: session.as_u64(),
                kind: AudienceKind::Join,
                inviter_id: s.inviter_id.clone(),
                tier: self.tier_name(class),
                at_ms: now,
            }),
        }));
        Ok(class)
    }

    fn tier_name(&self, class: AudienceClass) -> Option<String> {
        match class {
            AudienceClass::Dealer(i) => self.record.tiers.get(i as usize).cloned(),
            AudienceClass::Public => None,
        }
    }

    /// The frames after `last_seq`, if the history still has all of them. Sequence numbers
    /// mean something only within their epoch: without the client's epoch, or with another
    /// one (a restart, another owner), nothing is replayed and the client gets a snapshot.
    fn replay(&self, s: &Session, last_seq: u64, epoch: Option<&str>) -> Option<Vec<Bytes>> {
        if epoch != Some(self.epoch.as_str()) || last_seq > self.seq {
            return None;
        }
        if last_seq == self.seq {
            return Some(Vec::new());
        }
        let oldest = self.history.front()?.seq;
        if last_seq + 1 < oldest {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|f| f.seq > last_seq)
                .map(|f| f.for_class(s.class).clone())
                .collect(),
        )
    }

    pub fn leave(&mut self, session: SessionId, now: i64, out: &mut Vec<Output>) {
        self.now = now;
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        self.commerce.watched(&s.viewer_id, now - s.joined_ms);
        if let Some(vs) = self.viewers.get_mut(&s.viewer_id) {
            vs.sessions -= 1;
            if vs.sessions == 0 {
                self.viewers.remove(&s.viewer_id);
            }
        }
        out.push(Output::Persist(StoreOp::AppendAudience {
            room: self.record.id.clone(),
            record: Box::new(AudienceRecord {
                viewer_id: s.viewer_id,
                session: session.as_u64(),
                kind: AudienceKind::Leave,
                inviter_id: s.inviter_id,
                tier: self.tier_name(s.class),
                at_ms: now,
            }),
        }));
    }

    /// A message from a viewer's connection.
    pub fn client(
        &mut self,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        self.now = now;
        if !self.sessions.contains_key(&session) {
            return;
        }
        let result = match msg {
            Ok(m) => self.client_message(session, m, now, out),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let frame = self.error_frame(&e.code, &e.message);
            out.push(Output::Send { session, frame });
            let s = self.sessions.get_mut(&session).expect("checked above");
            if now - s.strike_window_start > 60_000 {
                s.strike_window_start = now;
                s.error_strikes = 0;
            }
            s.error_strikes += 1;
            if s.error_strikes > ERROR_STRIKES {
                out.push(Output::Close {
                    session,
                    why: Refusal::new(EndReason::Abuse, "too many invalid messages"),
                });
            }
        }
    }

    fn client_message(
        &mut self,
        session: SessionId,
        msg: ClientMessage,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        match msg {
            ClientMessage::Ping { t } => {
                let frame = self.private("pong", json!({ "t": t, "server_time_ms": now }));
                out.push(Output::Send { session, frame });
                Ok(())
            }
            ClientMessage::Like { count } => {
                self.likes += count as u64;
                Ok(())
            }
            ClientMessage::Chat { text } => self.chat(session, text, now, out),
            ClientMessage::PlaceOrder {
                product_id,
                quantity,
                key,
            } => self.place_order(session, product_id, quantity, key, now, out),
            ClientMessage::Grab { sale_id, key } => self.grab(session, sale_id, key, now, out),
            ClientMessage::EnterDraw { draw_id } => self.enter_draw(session, &draw_id, now, out),
            ClientMessage::GrabRedPacket { packet_id } => {
                self.grab_red_packet(session, &packet_id, now, out)
            }
            ClientMessage::Resume { last_seq, epoch } => {
                let s = &self.sessions[&session];
                match self.replay(s, last_seq, epoch.as_deref()) {
                    Some(frames) => out.extend(
                        frames
                            .into_iter()
                            .map(|frame| Output::Send { session, frame }),
                    ),
                    None => {
                        let frame = self.welcome(s, now);
                        out.push(Output::Send { session, frame });
                    }
                }
                Ok(())
            }
            ClientMessage::DealerApplication {
                company,
                licence_number,
                contact,
            } => {
                let s = &self.sessions[&session];
                if s.class != AudienceClass::Public {
                    return Err(ProtocolError::new(
                        "already_dealer",
                        "you are already a verified dealer in this room",
                    ));
                }
                let viewer_id = s.viewer_id.clone();
                let display_name = s.display_name.clone();
                if self
                    .applications
                    .values()
                    .any(|a| a.viewer_id == viewer_id && a.status == ApplicationStatus::Pending)
                {
                    return Err(ProtocolError::new(
                        "already_pending",
                        "your dealer application is already waiting for review",
                    ));
                }
                if self.applications.len() >= 100_000 {
                    return Err(ProtocolError::new(
                        "not_allowed",
                        "this room accepts no more applications",
                    ));
                }
                let id = self.next_id("a");
                let app = DealerApplication {
                    id: id.clone(),
                    viewer_id,
                    display_name,
                    company,
                    licence_number,
                    contact,
                    status: ApplicationStatus::Pending,
                    tier: None,
                    reason: None,
                    created_ms: now,
                    decided_ms: None,
                };
                self.applications.insert(id.clone(), app.clone());
                out.push(Output::Persist(StoreOp::PutRoom(Box::new(
                    self.record.clone(),
                ))));
                out.push(Output::Persist(StoreOp::PutApplication {
                    room: self.record.id.clone(),
                    application: Box::new(app.clone()),
                }));
                out.push(Output::Watch(WatchEvent::Application(Box::new(app))));
                let frame = self.private(
                    "dealer_application_received",
                    json!({ "application_id": id, "status": "pending" }),
                );
                out.push(Output::Send { session, frame });
                Ok(())
            }
        }
    }

    fn chat(
        &mut self,
        session: SessionId,
        text: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let s = &self.sessions[&session];
        let viewer_id = s.viewer_id.clone();
        if let Some(until) = self.mutes.get(&viewer_id).copied() {
            if until > now {
                return Err(ProtocolError::new(
                    "muted",
                    format!(
                        "you are muted for {} more seconds",
                        (until - now + 999) / 1000
                    ),
                ));
            }
            self.mutes.remove(&viewer_id);
        }
        let rate = self.record.chat_rate_limit;
        let window = rate.per_seconds as i64 * 1000;
        let vs = self.viewers.get_mut(&viewer_id).expect("session's viewer");
        while vs.chat_times.front().is_some_and(|t| now - t >= window) {
            vs.chat_times.pop_front();
        }
        if vs.chat_times.len() >= rate.messages as usize {
            if now - vs.flood_window_start > 60_000 {
                vs.flood_window_start = now;
                vs.flood_strikes = 0;
            }
            vs.flood_strikes += 1;
            let retry = window - (now - vs.chat_times.front().copied().unwrap_or(now));
            if vs.flood_strikes > FLOOD_STRIKES {
                out.push(Output::Close {
                    session,
                    why: Refusal::new(EndReason::Abuse, "chat flood"),
                });
            }
            return Err(ProtocolError::new(
                "rate_limited",
                format!(
                    "at most {} messages per {} s; retry in {} ms",
                    rate.messages, rate.per_seconds, retry
                ),
            ));
        }
        vs.chat_times.push_back(now);
        self.keyword_entries(session, &text, now, out);
        let s = &self.sessions[&session];
        let text = mask_banned(&text, &self.record.banned_words);
        let message = ChatRecord {
            id: format!("m{}.{}", self.epoch, self.seq + 1),
            seq: self.seq + 1,
            viewer_id,
            display_name: s.display_name.clone(),
            text,
            at_ms: now,
            is_dealer: s.class != AudienceClass::Public,
        };
        self.broadcast(
            RoomEvent::Chat {
                message: message.clone(),
            },
            now,
            out,
        );
        self.chat_minute.push_back(now);
        self.remember_chat(message.clone());
        out.push(Output::Persist(StoreOp::AppendChat {
            room: self.record.id.clone(),
            chat: Box::new(message.clone()),
        }));
        out.push(Output::Watch(WatchEvent::Chat(Box::new(message))));
        Ok(())
    }

    /// The media module reports which brands have a live feed; viewers get `program` when
    /// the brand on air gains or loses its feed.
    pub fn set_live_feeds(&mut self, live: BTreeSet<String>, now: i64, out: &mut Vec<Output>) {
        self.live_feeds = live;
        self.update_program(now, out);
    }

    fn program(&self) -> (Option<String>, bool) {
        let brand = self.record.brand_on_air.clone();
        let live = brand.as_ref().is_some_and(|b| self.live_feeds.contains(b));
        (brand, live)
    }

    /// Viewers hear of the program only when its liveness changes: a switch between two
    /// brands without feeds changes nothing they can see (`brand_switched` tells the brand).
    fn update_program(&mut self, now: i64, out: &mut Vec<Output>) {
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

    /// Periodic work: coalesced counters, host stats, audience heartbeats, expiries.
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
        if now - self.stats_sent_ms >= 1000 {
            self.stats_sent_ms = now;
            while self.chat_minute.front().is_some_and(|t| now - t >= 60_000) {
                self.chat_minute.pop_front();
            }
            let dealers_online = self
                .sessions
                .values()
                .filter(|s| s.class != AudienceClass::Public)
                .map(|s| s.viewer_id.as_str())
                .collect::<HashSet<_>>()
                .len() as u32;
            out.push(Output::Watch(WatchEvent::Stats(RoomStats {
                online: self.online(),
                peak_online: self.peak_online,
                dealers_online,
                chat_per_minute: self.chat_minute.len() as u32,
                likes: self.likes,
                seq: self.seq,
                at_ms: now,
            })));
        }
        let room = self.record.id.clone();
        let tiers = &self.record.tiers;
        for (id, s) in self.sessions.iter_mut() {
            if now - s.last_heartbeat_ms >= self.heartbeat_ms {
                s.last_heartbeat_ms = now;
                out.push(Output::Persist(StoreOp::AppendAudience {
                    room: room.clone(),
                    record: Box::new(AudienceRecord {
                        viewer_id: s.viewer_id.clone(),
                        session: id.as_u64(),
                        kind: AudienceKind::Heartbeat,
                        inviter_id: s.inviter_id.clone(),
                        tier: match s.class {
                            AudienceClass::Dealer(i) => tiers.get(i as usize).cloned(),
                            AudienceClass::Public => None,
                        },
                        at_ms: now,
                    }),
                }));
            }
            if s.expires_ms <= now {
                out.push(Output::Close {
                    session: *id,
                    why: Refusal::new(EndReason::Unauthenticated, "token expired"),
                });
            }
        }
        self.kicked.retain(|_, exp| *exp > now);
        self.commerce_tick(now, out);
    }

    // ---------------------------------------------------------------- host commands

    fn require_not_ended(&self) -> Result<(), RoomError> {
        if self.record.state == RoomState::Ended {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} has ended; it can no longer be changed",
                self.record.id
            )));
        }
        Ok(())
    }

    fn brand(&self, id: &str) -> Result<&Brand, RoomError> {
        self.brands.iter().find(|b| b.id == id).ok_or_else(|| {
            RoomError::NotFound(format!("brand {id} not found in room {}", self.record.id))
        })
    }

    fn product_index(&self, id: &str) -> Result<usize, RoomError> {
        self.products
            .iter()
            .position(|p| p.id == id)
            .ok_or_else(|| {
                RoomError::NotFound(format!("product {id} not found in room {}", self.record.id))
            })
    }

    fn persist_room(&self, out: &mut Vec<Output>) {
        out.push(Output::Persist(StoreOp::PutRoom(Box::new(
            self.record.clone(),
        ))));
    }

    fn action(&self, action: &'static str, viewer_id: &str, detail: String, now: i64) -> Output {
        Output::Watch(WatchEvent::Action {
            action: action.to_string(),
            viewer_id: viewer_id.to_string(),
            detail,
            at_ms: now,
        })
    }

    /// Reorders the running order after a change and persists every moved brand.
    fn renumber_brands(&mut self, out: &mut Vec<Output>) {
        for (i, b) in self.brands.iter_mut().enumerate() {
            if b.position != i as u32 {
                b.position = i as u32;
                out.push(Output::Persist(StoreOp::PutBrand {
                    room: self.record.id.clone(),
                    brand: Box::new(b.clone()),
                }));
            }
        }
    }

    fn sessions_of(&self, viewer_id: &str) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.viewer_id == viewer_id)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Re-evaluates a viewer's class on every open connection after a dealer change.
    fn reclassify(&mut self, viewer_id: &str, out: &mut Vec<Output>) {
        for id in self.sessions_of(viewer_id) {
            let s = &self.sessions[&id];
            let class = self.class_for(viewer_id, s.token_tier.as_deref());
            if class == s.class {
                continue;
            }
            self.sessions.get_mut(&id).expect("listed").class = class;
            let s = &self.sessions[&id];
            let shelf = self.shelf();
            let view = self.class_view(class);
            let frame = self.private(
                "role_changed",
                json!({
                    "you": self.you(s),
                    "shelf": view.shelf(&shelf),
                    "pinned_product": self.record.pinned_product,
                }),
            );
            out.push(Output::ClassChanged { session: id, class });
            out.push(Output::Send { session: id, frame });
        }
    }

    fn validate_product(&self, p: &ProductInput) -> Result<Vec<(String, i64)>, RoomError> {
        self.brand(&p.brand_id)?;
        check_text("name", p.name.trim(), 1, 200)?;
        check_text("description", &p.description, 0, 5000)?;
        if p.image_urls.len() > 20 {
            return Err(invalid("at most 20 image_urls"));
        }
        for u in &p.image_urls {
            check_url("image_url", u, true)?;
        }
        check_url("link", &p.link, true)?;
        if p.min_order_quantity == 0 || p.min_order_quantity > 1_000_000 {
            return Err(invalid("min_order_quantity must be 1 to 1000000"));
        }
        let mut prices = Vec::with_capacity(self.record.tiers.len());
        for (t, _) in &p.prices {
            if self.record.tier_index(t).is_none() {
                return Err(invalid(format!(
                    "price for unknown tier {t:?}; the room's tiers are {}",
                    self.record.tiers.join(", ")
                )));
            }
        }
        for tier in &self.record.tiers {
            let mine: Vec<i64> = p
                .prices
                .iter()
                .filter(|(t, _)| t == tier)
                .map(|(_, c)| *c)
                .collect();
            match mine[..] {
                [c] if (0..=100_000_000_000).contains(&c) => prices.push((tier.clone(), c)),
                [c] => {
                    return Err(invalid(format!(
                        "price for tier {tier} must be 0 to 100000000000 cents (got {c})"
                    )))
                }
                [] => return Err(invalid(format!("missing the price for tier {tier}"))),
                _ => return Err(invalid(format!("more than one price for tier {tier}"))),
            }
        }
        Ok(prices)
    }

    /// A host command. Reads change nothing; writes emit events and store writes.
    pub fn host(
        &mut self,
        cmd: HostCommand,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        self.now = now;
        if !cmd.is_read() {
            self.require_not_ended()?;
        }
        let room = self.record.id.clone();
        match cmd {
            HostCommand::GetRoom => Ok(HostReply::Room(Box::new(self.summary()))),
            HostCommand::ListProducts { brand_id } => {
                if let Some(b) = &brand_id {
                    self.brand(b)?;
                }
                Ok(HostReply::Products(
                    self.products
                        .iter()
                        .filter(|p| brand_id.as_ref().is_none_or(|b| &p.brand_id == b))
                        .cloned()
                        .collect(),
                ))
            }
            HostCommand::ListDealers => {
                let mut d: Vec<DealerRecord> = self.dealers.values().cloned().collect();
                d.sort_by(|a, b| a.viewer_id.cmp(&b.viewer_id));
                Ok(HostReply::Dealers(d))
            }
            HostCommand::ListApplications { status } => {
                let mut a: Vec<DealerApplication> = self
                    .applications
                    .values()
                    .filter(|a| status.is_none_or(|s| a.status == s))
                    .cloned()
                    .collect();
                a.sort_by_key(|a| a.created_ms);
                Ok(HostReply::Applications(a))
            }
            HostCommand::Open => {
                if self.record.state == RoomState::Live {
                    return Err(RoomError::FailedPrecondition(format!(
                        "room {room} is already live"
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
            HostCommand::Close => {
                self.end_commerce(now, out);
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
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for session in ids {
                    out.push(Output::Close {
                        session,
                        why: Refusal::new(EndReason::RoomEnded, "room ended"),
                    });
                }
                out.push(Output::Watch(WatchEvent::Ended));
                Ok(HostReply::Room(Box::new(self.summary())))
            }
            HostCommand::AddBrand {
                name,
                logo_url,
                position,
            } => {
                check_text("name", name.trim(), 1, 100)?;
                check_url("logo_url", &logo_url, false)?;
                if self.brands.len() >= 64 {
                    return Err(invalid("a room has at most 64 brands"));
                }
                let id = self.next_id("b");
                let brand = Brand {
                    id,
                    name: name.trim().to_string(),
                    logo_url,
                    position: 0,
                };
                let at = position
                    .map(|p| (p as usize).min(self.brands.len()))
                    .unwrap_or(self.brands.len());
                self.brands.insert(at, brand.clone());
                self.persist_room(out);
                out.push(Output::Persist(StoreOp::PutBrand {
                    room: room.clone(),
                    brand: Box::new(Brand {
                        position: at as u32,
                        ..brand
                    }),
                }));
                self.renumber_brands(out);
                let brands = self.brands.clone();
                self.broadcast(RoomEvent::RunningOrder { brands }, now, out);
                Ok(HostReply::Brand(self.brands[at].clone()))
            }
            HostCommand::UpdateBrand {
                brand_id,
                name,
                logo_url,
                position,
            } => {
                let idx = self
                    .brands
                    .iter()
                    .position(|b| b.id == brand_id)
                    .ok_or_else(|| {
                        RoomError::NotFound(format!("brand {brand_id} not found in room {room}"))
                    })?;
                if let Some(n) = &name {
                    check_text("name", n.trim(), 1, 100)?;
                }
                if let Some(u) = &logo_url {
                    check_url("logo_url", u, false)?;
                }
                let mut brand = self.brands.remove(idx);
                if let Some(n) = name {
                    brand.name = n.trim().to_string();
                }
                if let Some(u) = logo_url {
                    brand.logo_url = u;
                }
                let at = position
                    .map(|p| (p as usize).min(self.brands.len()))
                    .unwrap_or(idx);
                self.brands.insert(at, brand);
                out.push(Output::Persist(StoreOp::PutBrand {
                    room: room.clone(),
                    brand: Box::new(self.brands[at].clone()),
                }));
                self.renumber_brands(out);
                let brands = self.brands.clone();
                self.broadcast(RoomEvent::RunningOrder { brands }, now, out);
                Ok(HostReply::Brand(self.brands[at].clone()))
            }
            HostCommand::RemoveBrand { brand_id } => {
                self.brand(&brand_id)?;
                if self.record.brand_on_air.as_deref() == Some(brand_id.as_str()) {
                    return Err(RoomError::FailedPrecondition(format!(
                        "brand {brand_id} is on air; switch to another brand first"
                    )));
                }
                self.brands.retain(|b| b.id != brand_id);
                self.products.retain(|p| p.brand_id != brand_id);
                out.push(Output::Persist(StoreOp::DeleteBrand {
                    room: room.clone(),
                    brand_id,
                }));
                self.renumber_brands(out);
                let brands = self.brands.clone();
                self.broadcast(RoomEvent::RunningOrder { brands }, now, out);
                Ok(HostReply::Done)
            }
            HostCommand::SwitchBrand { brand_id } => {
                let brand = self.brand(&brand_id)?.clone();
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
            HostCommand::UpsertProduct(input) => {
                let prices = self.validate_product(&input)?;
                let (id, old_brand) = match &input.product_id {
                    Some(id) => {
                        let i = self.product_index(id)?;
                        (id.clone(), Some(self.products[i].brand_id.clone()))
                    }
                    None => {
                        if self.products.len() >= 10_000 {
                            return Err(invalid("a room has at most 10000 products"));
                        }
                        (self.next_id("p"), None)
                    }
                };
                let product = Product {
                    id: id.clone(),
                    brand_id: input.brand_id,
                    name: input.name.trim().to_string(),
                    description: input.description,
                    image_urls: input.image_urls,
                    link: input.link,
                    min_order_quantity: input.min_order_quantity,
                    prices,
                };
                match self.products.iter_mut().find(|p| p.id == id) {
                    Some(p) => *p = product.clone(),
                    None => self.products.push(product.clone()),
                }
                self.persist_room(out);
                out.push(Output::Persist(StoreOp::PutProduct {
                    room: room.clone(),
                    product: Box::new(product.clone()),
                }));
                let on_air = self.record.brand_on_air.clone();
                let now_on_shelf = on_air.as_ref() == Some(&product.brand_id);
                let was_on_shelf = old_brand.is_some() && on_air.as_ref() == old_brand.as_ref();
                if now_on_shelf {
                    self.broadcast(
                        RoomEvent::ProductUpdated {
                            product: product.clone(),
                        },
                        now,
                        out,
                    );
                } else if was_on_shelf {
                    self.take_off_shelf(&id, now, out);
                }
                Ok(HostReply::Product(product))
            }
            HostCommand::RemoveProduct { product_id } => {
                let i = self.product_index(&product_id)?;
                let p = self.products.remove(i);
                out.push(Output::Persist(StoreOp::DeleteProduct {
                    room: room.clone(),
                    product_id: product_id.clone(),
                }));
                if self.record.brand_on_air.as_ref() == Some(&p.brand_id) {
                    self.take_off_shelf(&product_id, now, out);
                }
                Ok(HostReply::Done)
            }
            HostCommand::PinProduct { product_id } => {
                let i = self.product_index(&product_id)?;
                if self.record.brand_on_air.as_ref() != Some(&self.products[i].brand_id) {
                    return Err(RoomError::FailedPrecondition(format!(
                        "product {product_id} belongs to a brand that is not on air"
                    )));
                }
                self.record.pinned_product = Some(product_id);
                self.persist_room(out);
                let product = self.products[i].clone();
                self.broadcast(RoomEvent::ProductPinned { product }, now, out);
                Ok(HostReply::Done)
            }
            HostCommand::UnpinProduct => {
                let Some(p) = self.record.pinned_product.take() else {
                    return Err(RoomError::FailedPrecondition(format!(
                        "room {room} has no pinned product"
                    )));
                };
                self.persist_room(out);
                self.broadcast(RoomEvent::ProductUnpinned { product_id: p }, now, out);
                Ok(HostReply::Done)
            }
            HostCommand::VerifyDealer {
                viewer_id,
                tier,
                company,
            } => {
                crate::auth::check_viewer_id(&viewer_id).map_err(invalid)?;
                if self.record.tier_index(&tier).is_none() {
                    return Err(invalid(format!(
                        "unknown tier {tier:?}; the room's tiers are {}",
                        self.record.tiers.join(", ")
                    )));
                }
                check_text("company", &company, 0, 200)?;
                let dealer = self.set_dealer(&viewer_id, Some(tier.clone()), company, now, out);
                out.push(self.action("dealer_verified", &viewer_id, tier, now));
                Ok(HostReply::Dealer(dealer))
            }
            HostCommand::RevokeDealer { viewer_id } => {
                let known =
                    self.dealers
                        .get(&viewer_id)
                        .is_some_and(|d| d.tier.is_some())
                        || (!self.dealers.contains_key(&viewer_id)
                            && self.sessions.values().any(|s| {
                                s.viewer_id == viewer_id && s.class != AudienceClass::Public
                            }));
                if !known {
                    return Err(RoomError::NotFound(format!(
                        "viewer {viewer_id} is not a verified dealer of room {room}"
                    )));
                }
                let company = self
                    .dealers
                    .get(&viewer_id)
                    .map(|d| d.company.clone())
                    .unwrap_or_default();
                let dealer = self.set_dealer(&viewer_id, None, company, now, out);
                out.push(self.action("dealer_revoked", &viewer_id, String::new(), now));
                Ok(HostReply::Dealer(dealer))
            }
            HostCommand::ApproveApplication {
                application_id,
                tier,
            } => {
                if self.record.tier_index(&tier).is_none() {
                    return Err(invalid(format!(
                        "unknown tier {tier:?}; the room's tiers are {}",
                        self.record.tiers.join(", ")
                    )));
                }
                let app = self.decide(
                    &application_id,
                    ApplicationStatus::Approved,
                    Some(tier.clone()),
                    None,
                    now,
                )?;
                out.push(Output::Persist(StoreOp::PutApplication {
                    room: room.clone(),
                    application: Box::new(app.clone()),
                }));
                self.set_dealer(
                    &app.viewer_id,
                    Some(tier.clone()),
                    app.company.clone(),
                    now,
                    out,
                );
                self.notify_application(&app, out);
                out.push(self.action("dealer_verified", &app.viewer_id, tier, now));
                Ok(HostReply::Application(app))
            }
            HostCommand::RejectApplication {
                application_id,
                reason,
            } => {
                check_text("reason", reason.trim(), 1, 500)?;
                let app = self.decide(
                    &application_id,
                    ApplicationStatus::Rejected,
                    None,
                    Some(reason.trim().to_string()),
                    now,
                )?;
                out.push(Output::Persist(StoreOp::PutApplication {
                    room: room.clone(),
                    application: Box::new(app.clone()),
                }));
                self.notify_application(&app, out);
                Ok(HostReply::Application(app))
            }
            HostCommand::Mute {
                viewer_id,
                duration_seconds,
            } => {
                crate::auth::check_viewer_id(&viewer_id).map_err(invalid)?;
                if duration_seconds > 30 * 86_400 {
                    return Err(invalid(
                        "duration_seconds must be at most 30 days (2592000)",
                    ));
                }
                let until = if duration_seconds == 0 {
                    0
                } else {
                    now + duration_seconds as i64 * 1000
                };
                if until == 0 {
                    self.mutes.remove(&viewer_id);
                } else {
                    self.mutes.insert(viewer_id.clone(), until);
                }
                out.push(Output::Persist(StoreOp::PutMute {
                    room: room.clone(),
                    viewer_id: viewer_id.clone(),
                    until_ms: until,
                }));
                for session in self.sessions_of(&viewer_id) {
                    let frame = if until == 0 {
                        self.private("unmuted", json!({}))
                    } else {
                        self.private("muted", json!({ "until_ms": until }))
                    };
                    out.push(Output::Send { session, frame });
                }
                out.push(self.action(
                    if until == 0 { "unmuted" } else { "muted" },
                    &viewer_id,
                    format!("{duration_seconds}s"),
                    now,
                ));
                Ok(HostReply::Done)
            }
            HostCommand::Kick { viewer_id, reason } => {
                check_text("reason", &reason, 0, 200)?;
                let sessions = self.sessions_of(&viewer_id);
                if sessions.is_empty() {
                    return Err(RoomError::NotFound(format!(
                        "viewer {viewer_id} is not connected to room {room}"
                    )));
                }
                let reason = if reason.is_empty() {
                    "kicked".to_string()
                } else {
                    format!("kicked: {reason}")
                };
                for session in sessions {
                    let s = &self.sessions[&session];
                    self.kicked.insert(s.jti.clone(), s.expires_ms);
                    out.push(Output::Persist(StoreOp::KickToken {
                        room: room.clone(),
                        jti: s.jti.clone(),
                        expires_ms: s.expires_ms,
                    }));
                    let frame = self.private("kicked", json!({ "reason": reason }));
                    out.push(Output::Send { session, frame });
                    out.push(Output::Close {
                        session,
                        why: Refusal::new(EndReason::Revoked, reason.clone()),
                    });
                }
                out.push(self.action("kicked", &viewer_id, reason, now));
                Ok(HostReply::Done)
            }
            HostCommand::RevokeToken { jti, reason } => {
                check_text("reason", &reason, 0, 200)?;
                if jti.is_empty() || jti.len() > 128 {
                    return Err(invalid("jti must be 1 to 128 characters"));
                }
                let reason = if reason.is_empty() {
                    "kicked: this token was revoked".to_string()
                } else {
                    format!("kicked: {reason}")
                };
                let sessions: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.jti == jti)
                    .map(|(id, _)| *id)
                    .collect();
                // A token's expiry is known only from a session that used it; otherwise it is
                // refused for the longest lifetime a token can have.
                let expires_ms = sessions
                    .first()
                    .map(|id| self.sessions[id].expires_ms)
                    .unwrap_or(now + MAX_TOKEN_TTL_MS);
                self.kicked.insert(jti.clone(), expires_ms);
                out.push(Output::Persist(StoreOp::KickToken {
                    room: room.clone(),
                    jti: jti.clone(),
                    expires_ms,
                }));
                for session in sessions {
                    let frame = self.private("kicked", json!({ "reason": reason }));
                    out.push(Output::Send { session, frame });
                    out.push(Output::Close {
                        session,
                        why: Refusal::new(EndReason::Revoked, reason.clone()),
                    });
                }
                out.push(self.action("token_revoked", "", format!("{jti}: {reason}"), now));
                Ok(HostReply::Done)
            }
            HostCommand::DeleteMessage { message_id } => {
                if !self.deletable_set.remove(&message_id) {
                    return Err(RoomError::NotFound(format!(
                        "message {message_id} not found in room {room} (or deleted already)"
                    )));
                }
                self.recent_chat.retain(|m| m.id != message_id);
                out.push(Output::Persist(StoreOp::DeleteChat {
                    room: room.clone(),
                    message_id: message_id.clone(),
                    at_ms: now,
                }));
                self.broadcast(
                    RoomEvent::ChatDeleted {
                        id: message_id.clone(),
                    },
                    now,
                    out,
                );
                out.push(self.action("chat_deleted", "", message_id, now));
                Ok(HostReply::Done)
            }
            HostCommand::Commerce(c) => self.commerce_command(c, now, out),
            HostCommand::Announce { text } => {
                check_text("text", text.trim(), 1, 1000)?;
                let text = text.trim().to_string();
                self.broadcast(RoomEvent::Announce { text: text.clone() }, now, out);
                out.push(self.action("announce", "", text, now));
                Ok(HostReply::Done)
            }
        }
    }

    fn take_off_shelf(&mut self, product_id: &str, now: i64, out: &mut Vec<Output>) {
        if self.record.pinned_product.as_deref() == Some(product_id) {
            self.record.pinned_product = None;
            self.persist_room(out);
            self.broadcast(
                RoomEvent::ProductUnpinned {
                    product_id: product_id.to_string(),
                },
                now,
                out,
            );
        }
        self.broadcast(
            RoomEvent::ProductRemoved {
                product_id: product_id.to_string(),
            },
            now,
            out,
        );
    }

    fn set_dealer(
        &mut self,
        viewer_id: &str,
        tier: Option<String>,
        company: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> DealerRecord {
        let dealer = DealerRecord {
            viewer_id: viewer_id.to_string(),
            tier,
            company,
            updated_ms: now,
        };
        self.dealers.insert(viewer_id.to_string(), dealer.clone());
        out.push(Output::Persist(StoreOp::PutDealer {
            room: self.record.id.clone(),
            dealer: Box::new(dealer.clone()),
        }));
        self.reclassify(viewer_id, out);
        dealer
    }

    fn decide(
        &mut self,
        id: &str,
        status: ApplicationStatus,
        tier: Option<String>,
        reason: Option<String>,
        now: i64,
    ) -> Result<DealerApplication, RoomError> {
        let room = &self.record.id;
        let app = self.applications.get_mut(id).ok_or_else(|| {
            RoomError::NotFound(format!("dealer application {id} not found in room {room}"))
        })?;
        if app.status != ApplicationStatus::Pending {
            return Err(RoomError::FailedPrecondition(format!(
                "dealer application {id} was already {}",
                app.status.as_str()
            )));
        }
        app.status = status;
        app.tier = tier;
        app.reason = reason;
        app.decided_ms = Some(now);
        Ok(app.clone())
    }

    fn notify_application(&self, app: &DealerApplication, out: &mut Vec<Output>) {
        for session in self.sessions_of(&app.viewer_id) {
            let frame = self.private(
                "application_result",
                json!({
                    "application_id": app.id,
                    "status": app.status.as_str(),
                    "tier": app.tier,
                    "reason": app.reason,
                }),
            );
            out.push(Output::Send { session, frame });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Room {
        let rec = Room::create(
            NewRoom {
                id: "r1".into(),
                title: "Show".into(),
                scheduled_start_ms: 0,
                chat_rate_limit: None,
                banned_words: vec!["Darn".into()],
                history_window: Some(4),
                tiers: vec!["gold".into(), "silver".into()],
                currency: None,
                token_key: "k".into(),
            },
            0,
        )
        .unwrap();
        Room::new(rec, "e1".into(), 60_000)
    }

    fn sid(n: u64) -> SessionId {
        SessionId::new(NodeTag::of("test"), n)
    }

    fn viewer(id: &str) -> JoinRequest {
        JoinRequest {
            viewer: Viewer {
                viewer_id: id.into(),
                display_name: id.into(),
                inviter_id: Some("inviter".into()),
                token_tier: None,
                jti: format!("jti-{id}"),
                expires_ms: i64::MAX,
            },
            resume: None,
        }
    }

    fn broadcasts(out: &[Output]) -> Vec<serde_json::Value> {
        out.iter()
            .filter_map(|o| match o {
                Output::Broadcast(f) => Some(serde_json::from_slice(&f.public).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn program_event_follows_the_on_air_brands_feed() {
        let mut r = room();
        let mut out = Vec::new();
        let brand = |r: &mut Room, name: &str, out: &mut Vec<Output>| match r
            .host(
                HostCommand::AddBrand {
                    name: name.into(),
                    logo_url: String::new(),
                    position: None,
                },
                1,
                out,
            )
            .unwrap()
        {
            HostReply::Brand(b) => b.id,
            _ => unreachable!(),
        };
        let a = brand(&mut r, "Alpha", &mut out);
        let b = brand(&mut r, "Bravo", &mut out);
        let programs = |out: &[Output]| -> Vec<serde_json::Value> {
            broadcasts(out)
                .into_iter()
                .filter(|e| e["type"] == "program")
                .collect()
        };
        out.clear();
        r.host(
            HostCommand::SwitchBrand {
                brand_id: a.clone(),
            },
            2,
            &mut out,
        )
        .unwrap();
        assert!(
            programs(&out).is_empty(),
            "no feed before or after: nothing to tell"
        );
        out.clear();
        // A's and B's feeds go live: one event, about A (the brand on air).
        r.set_live_feeds([a.clone(), b.clone()].into(), 3, &mut out);
        let p = programs(&out);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["live"], true);
        out.clear();
        r.set_live_feeds([a.clone(), b.clone()].into(), 4, &mut out);
        assert!(programs(&out).is_empty(), "no change, no event");
        // Live A to live B: still live, nothing to tell; B's feed dropping is told.
        r.host(
            HostCommand::SwitchBrand {
                brand_id: b.clone(),
            },
            5,
            &mut out,
        )
        .unwrap();
        assert!(programs(&out).is_empty());
        out.clear();
        r.set_live_feeds([a.clone()].into(), 6, &mut out);
        let p = programs(&out);
        assert_eq!(
            (p[0]["brand_id"].as_str(), p[0]["live"].as_bool()),
            (Some(b.as_str()), Some(false))
        );
        // The welcome tells a joining viewer the same.
        out.clear();
        r.join(sid(7), viewer("late"), 7, &mut out).unwrap();
        let welcome = out
            .iter()
            .find_map(|o| match o {
                Output::Send { frame, .. } => {
                    let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
                    (v["type"] == "welcome").then_some(v)
                }
                _ => None,
            })
            .expect("welcome");
        assert_eq!(welcome["program"]["brand_id"], b.as_str());
        assert_eq!(welcome["program"]["live"], false);
    }

    #[test]
    fn online_and_likes_are_coalesced_to_one_event_per_second() {
        let mut r = room();
        let mut out = Vec::new();
        for i in 0..100 {
            r.join(sid(i), viewer(&format!("v{i}")), 10, &mut out)
                .unwrap();
            r.client(sid(i), Ok(ClientMessage::Like { count: 3 }), 10, &mut out);
        }
        assert!(
            broadcasts(&out).is_empty(),
            "no per-join or per-like fan-out"
        );
        out.clear();
        r.tick(1000, &mut out);
        let b = broadcasts(&out);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["online"], 100);
        assert_eq!(b[1]["likes"], 300);
        out.clear();
        r.leave(sid(5), 1100, &mut out);
        r.tick(1200, &mut out);
        assert!(broadcasts(&out).is_empty(), "at most one per second");
        r.tick(2000, &mut out);
        assert_eq!(broadcasts(&out)[0]["online"], 99);
    }

    #[test]
    fn every_broadcast_gets_the_next_seq_and_history_is_bounded() {
        let mut r = room();
        let mut out = Vec::new();
        for i in 0..6 {
            r.host(
                HostCommand::Announce {
                    text: format!("a{i}"),
                },
                i,
                &mut out,
            )
            .unwrap();
        }
        let seqs: Vec<u64> = broadcasts(&out)
            .iter()
            .map(|b| b["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
        let s = Session {
            viewer_id: "x".into(),
            display_name: "x".into(),
            inviter_id: None,
            token_tier: None,
            jti: "j".into(),
            expires_ms: i64::MAX,
            class: AudienceClass::Public,
            joined_ms: 0,
            last_heartbeat_ms: 0,
            error_strikes: 0,
            strike_window_start: 0,
        };
        assert_eq!(r.replay(&s, 2, Some("e1")).unwrap().len(), 4);
        assert!(
            r.replay(&s, 1, Some("e1")).is_none(),
            "seq 2 fell out of the window"
        );
        assert!(r.replay(&s, 7, Some("e1")).is_none());
        assert!(
            r.replay(&s, 2, None).is_none(),
            "without an epoch a seq cannot be trusted"
        );
        assert!(r.replay(&s, 6, Some("other-epoch")).is_none());
        assert_eq!(r.replay(&s, 6, Some("e1")).unwrap().len(), 0);
    }

    #[test]
    fn chat_is_rate_limited_per_viewer_and_masked() {
        let mut r = room();
        let mut out = Vec::new();
        r.join(sid(1), viewer("a"), 0, &mut out).unwrap();
        r.join(sid(2), viewer("a"), 0, &mut out).unwrap();
        out.clear();
        for i in 0..6 {
            // Two connections of the same viewer share one limit.
            r.client(
                sid(1 + (i % 2)),
                Ok(ClientMessage::Chat {
                    text: "oh darn".into(),
                }),
                100,
                &mut out,
            );
        }
        let chats = broadcasts(&out);
        assert_eq!(chats.len(), 5);
        assert_eq!(chats[0]["text"], "oh ****");
        let errors = out
            .iter()
            .filter(|o| matches!(o, Output::Send { frame, .. } if frame.starts_with(b"{\"type\":\"error\"")))
            .count();
        assert_eq!(errors, 1);
        out.clear();
        r.client(
            sid(1),
            Ok(ClientMessage::Chat {
                text: "later".into(),
            }),
            10_200,
            &mut out,
        );
        assert_eq!(broadcasts(&out).len(), 1, "the window moved on");
    }

    #[test]
    fn audience_log_records_join_leave_and_heartbeat_with_inviter() {
        let mut r = room();
        let mut out = Vec::new();
        r.join(sid(1), viewer("a"), 0, &mut out).unwrap();
        r.tick(60_000, &mut out);
        r.leave(sid(1), 61_000, &mut out);
        let kinds: Vec<(AudienceKind, Option<String>)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Persist(StoreOp::AppendAudience { record, .. }) => {
                    Some((record.kind, record.inviter_id.clone()))
                }
                _ => None,
            })
            .collect();
        let inv = Some("inviter".to_string());
        assert_eq!(
            kinds,
            vec![
                (AudienceKind::Join, inv.clone()),
                (AudienceKind::Heartbeat, inv.clone()),
                (AudienceKind::Leave, inv)
            ]
        );
    }

    // Defect: a signed token naming a tier the room does not have joined as a public viewer.
    #[test]
    fn a_token_naming_a_tier_the_room_does_not_have_is_refused() {
        let mut r = room();
        let mut out = Vec::new();
        let mut req = viewer("d1");
        req.viewer.token_tier = Some("platinum".into());
        let refusal = r.join(sid(1), req, 0, &mut out).unwrap_err();
        assert_eq!(refusal.reason, EndReason::Forbidden);
        assert!(
            refusal.message.contains("platinum") && refusal.message.contains("gold, silver"),
            "{}",
            refusal.message
        );
        assert_eq!(r.session_count(), 0);
        let mut req = viewer("d2");
        req.viewer.token_tier = Some("silver".into());
        assert_eq!(
            r.join(sid(2), req, 0, &mut out),
            Ok(AudienceClass::Dealer(1))
        );
    }

    #[test]
    fn banned_words_mask_keeps_length_and_other_text() {
        assert_eq!(mask_banned("DARN darn x", &["darn".into()]), "**** **** x");
        assert_eq!(mask_banned("no match", &["darn".into()]), "no match");
        assert_eq!(mask_banned("价格太贵了", &["太贵".into()]), "价格**了");
    }

    #[test]
    fn red_packet_positions_survive_a_restart_with_a_hole_from_an_undone_grab() {
        // Position 1 was handed out, its write failed and was undone, and position 2 was
        // committed: after a restart v1 and v3 keep their shares and the hole is reused.
        let rec = room().record;
        let grab = |v: &str, index: u32, amount_cents: i64| PacketGrab {
            viewer_id: v.into(),
            index,
            amount_cents,
        };
        let loaded = LoadedRoom {
            record: Some(rec),
            red_packets: vec![RedPacket {
                id: "r1".into(),
                total_cents: 100,
                count: 4,
                tiers: Vec::new(),
                message: "luck".into(),
                amounts: vec![10, 20, 30, 40],
                created_ms: 0,
                expires_ms: 60_000,
                grabs: vec![grab("v1", 0, 10), grab("v3", 2, 30)],
            }],
            ..LoadedRoom::default()
        };
        let mut r = Room::restore(loaded, "e2".into(), 60_000, 10).unwrap();
        let mut out = Vec::new();
        let mut grabs = Vec::new();
        for (session, v) in [(1, "v1"), (2, "v4"), (3, "v5"), (4, "v6")] {
            r.join(sid(session), viewer(v), 10, &mut out).unwrap();
            let result = r.grab_red_packet(sid(session), "r1", 20, &mut out);
            grabs.push(result.map_err(|e| e.code.to_string()));
        }
        let written: Vec<(String, u32, i64)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Persist(StoreOp::GrabRedPacket {
                    viewer_id,
                    index,
                    amount_cents,
                    ..
                }) => Some((viewer_id.clone(), *index, *amount_cents)),
                _ => None,
            })
            .collect();
        assert_eq!(
            grabs,
            vec![
                Err("already_grabbed".to_string()),
                Ok(()),
                Ok(()),
                Err("packet_empty".to_string())
            ]
        );
        assert_eq!(written, vec![("v4".into(), 1, 20), ("v5".into(), 3, 40)]);
    }
}
