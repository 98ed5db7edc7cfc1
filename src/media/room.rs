//! The media side of one room: its publishers' feeds per brand, the program (the on-air
//! brand's feeds) and the viewers that follow it. Synchronous: locks here are short and never
//! held across `.await`.

use super::cascade::{Relay, SentPackets, Targets};
use super::keyframe::{self, VideoCodec};
use super::rewrite::{Incoming, SourceId};
use super::sfu::{self, MediaKind, SourceCodec, Subscriber};
use super::MediaStats;
use parking_lot::{Mutex, RwLock};
use rtc::rtp;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Least time between two key-frame requests to one source.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

/// A room's program as viewers see it (also shown by `GET /whep/{room}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgramState {
    /// Brand on air, if any.
    pub brand: Option<String>,
    /// Whether that brand has a live feed (otherwise viewers see nothing new, and stay).
    pub live: bool,
    /// The room has ended: no media any more, new WHIP/WHEP requests get 409.
    pub ended: bool,
}

/// One ingested track of a publisher.
pub struct Feed {
    pub source: SourceId,
    pub brand: String,
    pub session: String,
    pub codec: SourceCodec,
    /// Wakes the task that sends the publisher a PLI.
    pli: mpsc::Sender<()>,
    last_pli: Mutex<Option<Instant>>,
    last_packet_ms: AtomicI64,
    /// Carried from another node (the cascade): never relayed again.
    relayed: bool,
    /// A local feed's last packets, kept while it is relayed (edges may ask for them again).
    pub(super) relay_sent: SentPackets,
}

impl Feed {
    pub(super) fn new(
        source: SourceId,
        brand: String,
        session: String,
        codec: SourceCodec,
        pli: mpsc::Sender<()>,
    ) -> Feed {
        Feed {
            source,
            brand,
            session,
            codec,
            pli,
            last_pli: Mutex::new(None),
            last_packet_ms: AtomicI64::new(crate::model::now_ms()),
            relayed: false,
            relay_sent: SentPackets::default(),
        }
    }

    /// The same feed, carried from another node.
    pub(super) fn relayed(mut self) -> Feed {
        self.relayed = true;
        self
    }

    /// Asks the publisher for a key frame, at most once per `PLI_INTERVAL` unless `force`.
    fn request_keyframe(&self, force: bool, stats: &MediaStats) {
        let now = Instant::now();
        let mut last = self.last_pli.lock();
        if !force && last.is_some_and(|t| now.duration_since(t) < PLI_INTERVAL) {
            return;
        }
        *last = Some(now);
        drop(last);
        if self.pli.try_send(()).is_ok() {
            stats.keyframe_requests.inc();
        }
    }
}

#[derive(Default)]
struct BrandFeeds {
    session: String,
    audio: Option<Arc<Feed>>,
    video: Option<Arc<Feed>>,
}

/// The media side of one room: its feeds, its program and its viewers.
pub struct RoomMedia {
    pub id: String,
    feeds: Mutex<HashMap<String, BrandFeeds>>,
    on_air: Mutex<Option<String>>,
    ended: AtomicBool,
    program_audio: AtomicU64,
    program_video: AtomicU64,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    state: watch::Sender<ProgramState>,
    /// Brands with a live feed, followed by a task that tells the room (its `program` event).
    live: watch::Sender<BTreeSet<String>>,
    stats: Arc<MediaStats>,
    /// The other nodes this node's own feeds of the room are relayed to (the cascade).
    relay: RwLock<Option<(Arc<Relay>, Targets)>>,
    /// When a request last asked for the room's media, or the room last had a session, a
    /// feed or a viewer here.
    used: Mutex<Instant>,
    /// Cancelled when the node drops the room's media (idle): its tasks end.
    pub(super) gone: CancellationToken,
}

impl RoomMedia {
    /// A room's media with `on_air` as the brand on air; the receiver follows the brands
    /// that have a live feed.
    pub(super) fn new(
        id: &str,
        on_air: Option<String>,
        stats: Arc<MediaStats>,
    ) -> (Arc<RoomMedia>, watch::Receiver<BTreeSet<String>>) {
        let (state, _) = watch::channel(ProgramState {
            brand: on_air.clone(),
            live: false,
            ended: false,
        });
        let (live, live_rx) = watch::channel(BTreeSet::new());
        let room = RoomMedia {
            id: id.to_string(),
            feeds: Mutex::new(HashMap::new()),
            on_air: Mutex::new(on_air),
            ended: AtomicBool::new(false),
            program_audio: AtomicU64::new(0),
            program_video: AtomicU64::new(0),
            subscribers: RwLock::new(Vec::new()),
            state,
            live,
            stats,
            relay: RwLock::new(None),
            used: Mutex::new(Instant::now()),
            gone: CancellationToken::new(),
        };
        (Arc::new(room), live_rx)
    }

    pub(super) fn feed_of(&self, kind: MediaKind) -> Option<Arc<Feed>> {
        let brand = self.on_air.lock().clone()?;
        let feeds = self.feeds.lock();
        let f = feeds.get(&brand)?;
        match kind {
            MediaKind::Audio => f.audio.clone(),
            MediaKind::Video => f.video.clone(),
        }
    }

    /// The room's brand on air changed.
    pub(super) fn set_on_air(&self, brand: Option<String>) {
        *self.on_air.lock() = brand;
        self.retarget();
    }

    /// The room has ended: the program is no longer live, for good.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.retarget();
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Points the program (and every viewer) at the on-air brand's feeds.
    fn retarget(&self) {
        let brand = self.on_air.lock().clone();
        let (audio, video, live) = {
            let feeds = self.feeds.lock();
            let live: BTreeSet<String> = feeds
                .iter()
                .filter(|(_, f)| f.audio.is_some() || f.video.is_some())
                .map(|(b, _)| b.clone())
                .collect();
            match brand.as_ref().and_then(|b| feeds.get(b)) {
                Some(f) => (f.audio.clone(), f.video.clone(), live),
                None => (None, None, live),
            }
        };
        self.live.send_if_modified(|l| {
            if *l != live {
                *l = live;
                true
            } else {
                false
            }
        });
        let a = audio.as_ref().map(|f| f.source);
        let v = video.as_ref().map(|f| f.source);
        let old_a = self.program_audio.swap(a.unwrap_or(0), Ordering::AcqRel);
        let old_v = self.program_video.swap(v.unwrap_or(0), Ordering::AcqRel);
        if old_a != a.unwrap_or(0) || old_v != v.unwrap_or(0) {
            self.stats.switches.inc();
            for s in self.subscribers.read().iter() {
                s.switch_to(a, v);
            }
            if let Some(f) = &video {
                f.request_keyframe(true, &self.stats);
            }
        }
        let ended = self.is_ended();
        let live = !ended && (audio.is_some() || video.is_some());
        self.state.send_if_modified(|s| {
            let new = ProgramState {
                brand: brand.clone(),
                live,
                ended,
            };
            if *s != new {
                tracing::debug!(room = %self.id, brand = ?new.brand, live, ended, "program");
                *s = new;
                true
            } else {
                false
            }
        });
    }

    /// A publisher's track of `brand` starts: it becomes that brand's feed of its kind. A
    /// different session that published the brand until now is returned, to be closed.
    pub(super) fn add_feed(&self, feed: Arc<Feed>) -> Option<String> {
        let replaced = {
            let mut feeds = self.feeds.lock();
            let entry = feeds.entry(feed.brand.clone()).or_default();
            let replaced = (entry.session != feed.session && !entry.session.is_empty())
                .then(|| entry.session.clone());
            if replaced.is_some() {
                *entry = BrandFeeds::default();
            }
            entry.session.clone_from(&feed.session);
            match feed.codec.kind {
                MediaKind::Audio => entry.audio = Some(feed),
                MediaKind::Video => entry.video = Some(feed),
            }
            replaced
        };
        self.retarget();
        replaced
    }

    /// `session` stopped publishing `brand` (if it still was the brand's publisher).
    pub(super) fn remove_feeds(&self, brand: &str, session: &str) {
        let removed = {
            let mut feeds = self.feeds.lock();
            if feeds.get(brand).is_some_and(|f| f.session == session) {
                feeds.remove(brand);
                true
            } else {
                false
            }
        };
        if removed {
            self.retarget();
        }
    }

    /// When `session`'s feeds of `brand` last carried a packet (`None`: it has no feed yet).
    pub(super) fn last_packet_ms(&self, brand: &str, session: &str) -> Option<i64> {
        let feeds = self.feeds.lock();
        feeds.get(brand).filter(|f| f.session == session).map(|f| {
            [&f.audio, &f.video]
                .into_iter()
                .flatten()
                .map(|x| x.last_packet_ms.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        })
    }

    pub(super) fn on_packet(&self, feed: &Feed, p: &rtp::Packet) {
        feed.last_packet_ms
            .store(crate::model::now_ms(), Ordering::Relaxed);
        if !feed.relayed {
            if let Some((relay, targets)) = &*self.relay.read() {
                feed.relay_sent.keep(p);
                relay.send(targets, feed.source, p);
            }
        }
        let current = match feed.codec.kind {
            MediaKind::Audio => &self.program_audio,
            MediaKind::Video => &self.program_video,
        };
        if current.load(Ordering::Acquire) != feed.source || p.payload.is_empty() {
            return;
        }
        let incoming = Incoming {
            source: feed.source,
            seq: p.header.sequence_number,
            ts: p.header.timestamp,
            keyframe: feed
                .codec
                .video
                .is_some_and(|c| keyframe::starts_keyframe(c, &p.payload)),
        };
        let f = {
            let subs = self.subscribers.read();
            sfu::forward(&subs, feed.codec, p, &incoming, Instant::now())
        };
        self.stats.forwarded.inc_by(f.forwarded as u64);
        if f.dropped > 0 {
            self.stats.dropped.inc_by(f.dropped as u64);
        }
        if f.wants_keyframe {
            feed.request_keyframe(false, &self.stats);
        }
    }

    pub(super) fn add_subscriber(&self, s: Arc<Subscriber>) {
        let a = self.program_audio.load(Ordering::Acquire);
        let v = self.program_video.load(Ordering::Acquire);
        s.switch_to((a != 0).then_some(a), (v != 0).then_some(v));
        self.subscribers.write().push(s);
        if let Some(f) = self.feed_of(MediaKind::Video) {
            f.request_keyframe(false, &self.stats);
        }
    }

    pub(super) fn remove_subscriber(&self, id: u64) {
        self.subscribers.write().retain(|s| s.id != id);
    }

    /// A viewer whose connection came back after being disconnected: forwarding resumes at
    /// the next key frame (asked for), numbering continues without a gap.
    pub(super) fn resume_subscriber(&self, s: Arc<Subscriber>) {
        if self.subscribers.read().iter().any(|x| x.id == s.id) {
            return;
        }
        s.video.lock().drop_and_hold();
        self.add_subscriber(s);
    }

    /// A viewer asked for a key frame (PLI/FIR): relay to the source on air, throttled.
    pub(super) fn viewer_keyframe_request(&self) {
        if let Some(f) = self.feed_of(MediaKind::Video) {
            f.request_keyframe(false, &self.stats);
        }
    }

    /// The video codec a new viewer's track starts with: the program's, VP8 if none is on
    /// air (every codec both sides support is negotiated, so a later brand may use another).
    pub(super) fn program_video_codec(&self) -> VideoCodec {
        self.feed_of(MediaKind::Video)
            .and_then(|f| f.codec.video)
            .unwrap_or(VideoCodec::Vp8)
    }

    /// Whether `feed` may be its brand's feed without replacing another session's: the
    /// brand has no feed, or only feeds of the same session.
    pub(super) fn free_for(&self, feed: &Feed) -> bool {
        self.feeds
            .lock()
            .get(&feed.brand)
            .is_none_or(|f| f.session == feed.session || (f.audio.is_none() && f.video.is_none()))
    }

    /// Whether `feed` is its brand's feed of its kind in the room now.
    pub(super) fn carries(&self, feed: &Feed) -> bool {
        let feeds = self.feeds.lock();
        feeds.get(&feed.brand).is_some_and(|f| {
            let mine = match feed.codec.kind {
                MediaKind::Audio => &f.audio,
                MediaKind::Video => &f.video,
            };
            mine.as_ref().is_some_and(|m| m.source == feed.source)
        })
    }

    /// This node's own feeds of the room (not those relayed from another node).
    pub(super) fn local_feeds(&self) -> Vec<Arc<Feed>> {
        self.feeds
            .lock()
            .values()
            .flat_map(|f| [f.audio.clone(), f.video.clone()])
            .flatten()
            .filter(|f| !f.relayed)
            .collect()
    }

    /// Where this node's feeds of the room are relayed to (none: `targets` empty).
    pub(super) fn set_relay(&self, relay: Arc<Relay>, targets: Targets) {
        *self.relay.write() = (!targets.is_empty()).then_some((relay, targets));
    }

    /// An edge's viewer asked for a key frame of feed `source` (this node's own): throttled
    /// with every other request for it, so many edges' requests reach the publisher as one.
    pub(super) fn relayed_keyframe_request(&self, source: u64) {
        if let Some(f) = self.local_feed(source) {
            f.request_keyframe(false, &self.stats);
        }
    }

    /// This node's own feed `source` of the room.
    pub(super) fn local_feed(&self, source: u64) -> Option<Arc<Feed>> {
        self.local_feeds().into_iter().find(|f| f.source == source)
    }

    pub fn program(&self) -> ProgramState {
        self.state.borrow().clone()
    }

    /// Follows the program state (brand on air, whether it is live).
    pub fn watch_program(&self) -> watch::Receiver<ProgramState> {
        self.state.subscribe()
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.read().len()
    }

    /// Marks the room's media as in use now.
    pub(super) fn touch(&self) {
        *self.used.lock() = Instant::now();
    }

    /// How long the room's media has had no feed nor viewer here and no request for it (a
    /// media session of the room counts too, and is checked by the caller).
    pub(super) fn idle_for(&self) -> Duration {
        if self.subscriber_count() > 0 || !self.feeds.lock().is_empty() {
            self.touch();
        }
        self.used.lock().elapsed()
    }
}
