//! Media: WHIP ingest, WHEP egress and the SFU that keeps each viewer's stream continuous
//! across brand switches. See docs/media.md.

pub mod http;
pub mod keyframe;
pub mod rewrite;
pub mod rtcp;
pub mod sfu;
pub mod stun;
pub mod udp;

use crate::auth;
use crate::model::{MediaRole, MediaSession};
use crate::rooms::{MediaSignal, Rooms};
use dashmap::DashMap;
use futures_util::StreamExt;
use keyframe::VideoCodec;
use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rewrite::{Downtrack, Incoming, SourceId};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use sfu::{MediaKind, Outbound, PayloadTypes, SourceCodec, Subscriber};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use udp::{Endpoint, UdpMux};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

/// Least time between two key-frame requests to one source.
const PLI_INTERVAL: Duration = Duration::from_millis(300);
/// How long ICE gathering may take before the answer is sent anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that has not connected by then is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle publishers and stuck connections are looked for.
const JANITOR_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub udp_addr: SocketAddr,
    pub max_subscribers: usize,
    pub queue: usize,
    pub publisher_idle: Duration,
}

/// Why a WHIP/WHEP request was refused; `http.rs` maps each to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The room's own refusal (ended room, revoked token…), in the domain's terms.
    #[error("{}", .0.message)]
    Refused(crate::model::Refusal),
}

impl From<crate::model::Refusal> for MediaError {
    fn from(r: crate::model::Refusal) -> MediaError {
        MediaError::Refused(r)
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Internal(format!("{what}: {e}"))
}

/// The media counters of the node's Prometheus metrics (`/metrics`), shared by reference.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub forwarded: Counter,
    pub dropped: Counter,
    pub keyframe_requests: Counter,
    pub switches: Counter,
    pub publishers: Gauge,
    pub viewers: Gauge,
}

impl MediaStats {
    pub fn from_metrics(m: &crate::metrics::Metrics) -> MediaStats {
        MediaStats {
            forwarded: m.media_rtp_forwarded.clone(),
            dropped: m.media_rtp_dropped.clone(),
            keyframe_requests: m.media_keyframe_requests.clone(),
            switches: m.media_switches.clone(),
            publishers: m.media_publishers.clone(),
            viewers: m.media_viewers.clone(),
        }
    }
}

/// A room's program as viewers see it (also shown by `GET /whep/{room}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgramState {
    /// Brand on air, if any.
    pub brand: Option<String>,
    /// Whether that brand has a live feed (otherwise viewers see nothing new, and stay).
    pub live: bool,
}

/// One ingested track of a publisher.
pub struct Feed {
    pub source: SourceId,
    pub brand: String,
    pub session: String,
    pub codec: SourceCodec,
    pli: mpsc::Sender<()>,
    last_pli: Mutex<Option<Instant>>,
    last_packet_ms: AtomicI64,
}

impl Feed {
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
    program_audio: AtomicU64,
    program_video: AtomicU64,
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    state: watch::Sender<ProgramState>,
    /// Brands with a live feed, followed by a task that tells the room (its `program` event).
    live: watch::Sender<BTreeSet<String>>,
    stats: Arc<MediaStats>,
}

impl RoomMedia {
    fn feed_of(&self, kind: MediaKind) -> Option<Arc<Feed>> {
        let brand = self.on_air.lock().clone()?;
        let feeds = self.feeds.lock();
        let f = feeds.get(&brand)?;
        match kind {
            MediaKind::Audio => f.audio.clone(),
            MediaKind::Video => f.video.clone(),
        }
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
        let live = audio.is_some() || video.is_some();
        self.state.send_if_modified(|s| {
            let new = ProgramState {
                brand: brand.clone(),
                live,
            };
            if *s != new {
                tracing::debug!(room = %self.id, brand = ?new.brand, live, "program");
                *s = new;
                true
            } else {
                false
            }
        });
    }

    fn on_packet(&self, feed: &Feed, p: &rtp::Packet) {
        feed.last_packet_ms
            .store(crate::model::now_ms(), Ordering::Relaxed);
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

    fn add_subscriber(&self, s: Arc<Subscriber>) {
        let a = self.program_audio.load(Ordering::Acquire);
        let v = self.program_video.load(Ordering::Acquire);
        s.switch_to((a != 0).then_some(a), (v != 0).then_some(v));
        self.subscribers.write().push(s);
        if let Some(f) = self.feed_of(MediaKind::Video) {
            f.request_keyframe(false, &self.stats);
        }
    }

    fn remove_subscriber(&self, id: u64) {
        self.subscribers.write().retain(|s| s.id != id);
    }

    /// A viewer whose connection came back after being disconnected: forwarding resumes at
    /// the next key frame (asked for), numbering continues without a gap.
    fn resume_subscriber(&self, s: Arc<Subscriber>) {
        if self.subscribers.read().iter().any(|x| x.id == s.id) {
            return;
        }
        s.video.lock().drop_and_hold();
        self.add_subscriber(s);
    }

    /// A viewer asked for a key frame (PLI/FIR): relay to the source on air, throttled.
    fn viewer_keyframe_request(&self) {
        if let Some(f) = self.feed_of(MediaKind::Video) {
            f.request_keyframe(false, &self.stats);
        }
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
}

enum Role {
    Publisher { brand: String },
    Viewer { subscriber: Arc<Subscriber> },
}

/// One WHIP or WHEP resource.
pub struct Session {
    pub id: String,
    pub room: String,
    role: Role,
    pc: Arc<dyn PeerConnection>,
    endpoint: Arc<Endpoint>,
    room_media: Arc<RoomMedia>,
    created: Instant,
    /// When the token it was opened with expires (kicks and revocations reach it through
    /// its room's `End` signal).
    token_expires_ms: i64,
    connected: AtomicBool,
    closed: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    _permit: Option<OwnedSemaphorePermit>,
    /// For viewers: the queue's receiving end until the connection is up.
    pending_rx: Mutex<Option<mpsc::Receiver<Outbound>>>,
    tracks: Vec<Arc<TrackLocalStaticRTP>>,
}

impl Session {
    pub fn is_publisher(&self) -> bool {
        matches!(self.role, Role::Publisher { .. })
    }

    pub fn brand(&self) -> Option<&str> {
        match &self.role {
            Role::Publisher { brand } => Some(brand),
            Role::Viewer { .. } => None,
        }
    }
}

/// The node's SFU.
pub struct Media {
    rooms_seam: Arc<dyn Rooms>,
    mux: Arc<UdpMux>,
    config: MediaConfig,
    rooms: DashMap<String, Arc<RoomMedia>>,
    sessions: DashMap<String, Arc<Session>>,
    slots: Arc<Semaphore>,
    next_id: AtomicU64,
    pub stats: Arc<MediaStats>,
    janitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// PeerConnection events of one session.
struct Events {
    media: Weak<Media>,
    session: String,
    gathered: watch::Sender<bool>,
    /// Publisher sessions: where their tracks go.
    publish: Option<(Arc<RoomMedia>, String)>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let Some(media) = self.media.upgrade() else {
            return;
        };
        match state {
            RTCPeerConnectionState::Connected => media.connected(&self.session),
            RTCPeerConnectionState::Disconnected => media.disconnected(&self.session),
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                let id = self.session.clone();
                tokio::spawn(async move { media.close_session(&id).await });
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (Some((room, brand)), Some(media)) = (&self.publish, self.media.upgrade()) else {
            return;
        };
        media
            .add_feed(room.clone(), brand.clone(), &self.session, track)
            .await;
    }
}

/// Only what the SFU forwards: Opus, VP8 and H.264 (packetization mode 1, baseline and
/// constrained baseline). Offering VP9/AV1 to a publisher could leave a feed nobody can
/// switch to; without RTX, retransmissions come on the primary SSRC and are rewritten like
/// any other packet.
fn register_sfu_codecs(engine: &mut MediaEngine) -> webrtc::error::Result<()> {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("goog-remb", ""),
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let mut vp8 = video_codec(VideoCodec::Vp8);
    vp8.rtcp_feedback = video_feedback.clone();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8,
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    for (pt, profile) in [(102, "42001f"), (125, "42e01f")] {
        let mut h264 = video_codec(VideoCodec::H264);
        h264.sdp_fmtp_line =
            format!("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}");
        h264.rtcp_feedback = video_feedback.clone();
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: h264,
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )?;
    }
    Ok(())
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn video_codec(c: VideoCodec) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: match c {
            VideoCodec::Vp8 => MIME_TYPE_VP8,
            VideoCodec::H264 => MIME_TYPE_H264,
        }
        .to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: match c {
            VideoCodec::Vp8 => String::new(),
            VideoCodec::H264 => {
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into()
            }
        },
        rtcp_feedback: vec![],
    }
}

impl Media {
    pub fn start(
        rooms: Arc<dyn Rooms>,
        metrics: &crate::metrics::Metrics,
        config: MediaConfig,
    ) -> std::io::Result<Arc<Media>> {
        let mux = UdpMux::bind(config.udp_addr)?;
        let stats = Arc::new(MediaStats::from_metrics(metrics));
        let media = Arc::new(Media {
            rooms_seam: rooms,
            mux,
            slots: Arc::new(Semaphore::new(config.max_subscribers)),
            config,
            rooms: DashMap::new(),
            sessions: DashMap::new(),
            next_id: AtomicU64::new(1),
            stats,
            janitor: Mutex::new(None),
        });
        let janitor = tokio::spawn(janitor(Arc::downgrade(&media)));
        *media.janitor.lock() = Some(janitor);
        Ok(media)
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.mux.local_addr()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn room_media(&self, room: &str) -> Option<Arc<RoomMedia>> {
        self.rooms.get(room).map(|r| r.clone())
    }

    /// The media side of a room, created on first use; it follows the room's signals (the
    /// brand on air, sessions to end) and reports which brands have a live feed.
    async fn room_for(self: &Arc<Self>, room: &str) -> Result<Arc<RoomMedia>, MediaError> {
        if let Some(r) = self.rooms.get(room) {
            return Ok(r.clone());
        }
        let signals = self
            .rooms_seam
            .follow_media(room)
            .await
            .map_err(|e| MediaError::from(crate::rooms::refusal_of(e)))?;
        let mut created = None;
        let r = self
            .rooms
            .entry(room.to_string())
            .or_insert_with(|| {
                let (state, _) = watch::channel(ProgramState {
                    brand: None,
                    live: false,
                });
                let (live, live_rx) = watch::channel(BTreeSet::new());
                let rm = Arc::new(RoomMedia {
                    id: room.to_string(),
                    feeds: Mutex::new(HashMap::new()),
                    on_air: Mutex::new(None),
                    program_audio: AtomicU64::new(0),
                    program_video: AtomicU64::new(0),
                    subscribers: RwLock::new(Vec::new()),
                    state,
                    live,
                    stats: self.stats.clone(),
                });
                created = Some(live_rx);
                rm
            })
            .clone();
        // Only the caller that created it starts its tasks; a racing one drops its stream.
        if let Some(live_rx) = created {
            tokio::spawn(follow_room(
                Arc::downgrade(self),
                Arc::downgrade(&r),
                signals,
            ));
            tokio::spawn(report_live_feeds(
                live_rx,
                self.rooms_seam.clone(),
                room.to_string(),
            ));
        }
        Ok(r)
    }

    fn new_id(&self) -> String {
        format!(
            "{}{}",
            self.next_id.fetch_add(1, Ordering::Relaxed),
            auth::random_id(10)
        )
    }

    async fn build_pc(
        &self,
        events: Events,
        endpoint_rt: Arc<dyn webrtc::runtime::Runtime>,
    ) -> Result<Arc<dyn PeerConnection>, MediaError> {
        let mut engine = MediaEngine::default();
        register_sfu_codecs(&mut engine).map_err(|e| internal("codecs", e))?;
        let registry =
            webrtc::peer_connection::register_default_interceptors(Registry::new(), &mut engine)
                .map_err(|e| internal("interceptors", e))?
                .with(
                    rtc::interceptor::Slot::from(14_000),
                    rtcp::KeyframeRequestForwarder::default(),
                );
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(events))
            .with_runtime(endpoint_rt)
            .with_udp_addrs(vec![self.mux.bind_addr()])
            .build()
            .await
            .map_err(|e| internal("peer connection", e))?;
        Ok(Arc::new(pc))
    }

    /// Applies the offer, answers, waits for gathering; returns the answer SDP with the
    /// shared media port advertised.
    async fn answer(
        &self,
        pc: &Arc<dyn PeerConnection>,
        endpoint: &Arc<Endpoint>,
        mut gathered: watch::Receiver<bool>,
        offer: String,
    ) -> Result<String, MediaError> {
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| MediaError::BadRequest(format!("the SDP offer is invalid: {e}")))?;
        pc.set_remote_description(offer)
            .await
            .map_err(|e| MediaError::BadRequest(format!("the SDP offer was refused: {e}")))?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(|e| MediaError::BadRequest(format!("cannot answer this offer: {e}")))?;
        pc.set_local_description(answer)
            .await
            .map_err(|e| internal("local description", e))?;
        let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|g| *g)).await;
        let local = pc
            .local_description()
            .await
            .ok_or_else(|| MediaError::Internal("no local description".into()))?;
        endpoint.register_ufrags(&stun::sdp_ufrags(&local.sdp));
        Ok(stun::advertise_shared_port(
            &local.sdp,
            &endpoint.local_addrs(),
            self.mux.local_addr().port(),
        ))
    }

    /// WHIP: a presenter publishes `brand`'s feed into `room`. A previous publisher of the
    /// same brand is replaced (an encoder that reconnects must not wait for a timeout).
    pub async fn publish(
        self: &Arc<Self>,
        room: &str,
        brand: &str,
        token: &str,
        offer: String,
    ) -> Result<(Arc<Session>, String), MediaError> {
        let claims = self
            .rooms_seam
            .check_presenter_token(room, brand, token)
            .await?;
        let room_media = self.room_for(room).await?;
        let id = self.new_id();
        self.rooms_seam
            .attach_media(
                room,
                MediaSession {
                    id: id.clone(),
                    identity: claims.sub.clone(),
                    jti: claims.jti.clone(),
                    expires_ms: claims.exp.saturating_mul(1000),
                    role: MediaRole::Presenter {
                        brand_id: brand.to_string(),
                    },
                },
            )
            .await?;
        let (endpoint, rt) = self.mux.endpoint();
        let (gathered_tx, gathered) = watch::channel(false);
        let pc = self
            .build_pc(
                Events {
                    media: Arc::downgrade(self),
                    session: id.clone(),
                    gathered: gathered_tx,
                    publish: Some((room_media.clone(), brand.to_string())),
                },
                rt,
            )
            .await?;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| internal("transceiver", e))?;
        }
        let session = Arc::new(Session {
            id: id.clone(),
            room: room.to_string(),
            role: Role::Publisher {
                brand: brand.to_string(),
            },
            pc: pc.clone(),
            endpoint: endpoint.clone(),
            room_media,
            created: Instant::now(),
            token_expires_ms: claims.exp.saturating_mul(1000),
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            _permit: None,
            pending_rx: Mutex::new(None),
            tracks: Vec::new(),
        });
        self.sessions.insert(id.clone(), session.clone());
        self.stats.publishers.inc();
        match self.answer(&pc, &endpoint, gathered, offer).await {
            Ok(sdp) => {
                tracing::info!(room, brand, session = %id, "publisher connected by WHIP");
                Ok((session, sdp))
            }
            Err(e) => {
                self.close_session(&id).await;
                Err(e)
            }
        }
    }

    /// WHEP: a viewer subscribes to `room`'s program.
    pub async fn subscribe(
        self: &Arc<Self>,
        room: &str,
        token: &str,
        offer: String,
    ) -> Result<(Arc<Session>, String), MediaError> {
        let viewer = self.rooms_seam.check_viewer_token(room, token).await?;
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| {
            MediaError::Unavailable("this node has no room for more media viewers".into())
        })?;
        let room_media = self.room_for(room).await?;
        let id = self.new_id();
        self.rooms_seam
            .attach_media(
                room,
                MediaSession {
                    id: id.clone(),
                    identity: viewer.viewer_id.clone(),
                    jti: viewer.jti.clone(),
                    expires_ms: viewer.expires_ms,
                    role: MediaRole::Viewer,
                },
            )
            .await?;
        let (endpoint, rt) = self.mux.endpoint();
        let (gathered_tx, gathered) = watch::channel(false);
        let pc = self
            .build_pc(
                Events {
                    media: Arc::downgrade(self),
                    session: id.clone(),
                    gathered: gathered_tx,
                    publish: None,
                },
                rt,
            )
            .await?;
        // The track's codec is the program's if one is on air, VP8 otherwise; every codec
        // both sides support is negotiated, so a later brand may use another.
        let video = room_media
            .feed_of(MediaKind::Video)
            .and_then(|f| f.codec.video)
            .unwrap_or(VideoCodec::Vp8);
        let audio_ssrc = rand::random::<u32>();
        let video_ssrc = rand::random::<u32>();
        let make = |kind, label: &str, ssrc, codec| {
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("showfloor-{room}"),
                format!("{label}-{id}"),
                label.to_string(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )))
        };
        let audio_track = make(RtpCodecKind::Audio, "audio", audio_ssrc, opus());
        let video_track = make(RtpCodecKind::Video, "video", video_ssrc, video_codec(video));
        let mut senders = Vec::new();
        for t in [&audio_track, &video_track] {
            senders.push(
                pc.add_track(t.clone() as Arc<dyn TrackLocal>)
                    .await
                    .map_err(|e| internal("add track", e))?,
            );
        }
        let (tx, rx) = mpsc::channel(self.config.queue);
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            audio: Mutex::new(Downtrack::new(
                audio_ssrc,
                48_000,
                false,
                rand::random(),
                rand::random(),
            )),
            video: Mutex::new(Downtrack::new(
                video_ssrc,
                90_000,
                true,
                rand::random(),
                rand::random(),
            )),
            payload_types: PayloadTypes::default(),
            queue: tx,
            dropped: AtomicU64::new(0),
        });
        let session = Arc::new(Session {
            id: id.clone(),
            room: room.to_string(),
            role: Role::Viewer {
                subscriber: subscriber.clone(),
            },
            pc: pc.clone(),
            endpoint: endpoint.clone(),
            room_media,
            created: Instant::now(),
            token_expires_ms: viewer.expires_ms,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            _permit: Some(permit),
            pending_rx: Mutex::new(Some(rx)),
            tracks: vec![audio_track, video_track],
        });
        self.sessions.insert(id.clone(), session.clone());
        self.stats.viewers.inc();
        let sdp = match self.answer(&pc, &endpoint, gathered, offer).await {
            Ok(sdp) => sdp,
            Err(e) => {
                self.close_session(&id).await;
                return Err(e);
            }
        };
        for s in &senders {
            if let Ok(p) = s.get_parameters().await {
                for c in p.rtp_parameters.codecs {
                    let m = c.rtp_codec.mime_type.to_ascii_lowercase();
                    let slot = if m == MIME_TYPE_OPUS.to_ascii_lowercase() {
                        &subscriber.payload_types.opus
                    } else if m == MIME_TYPE_VP8.to_ascii_lowercase() {
                        &subscriber.payload_types.vp8
                    } else if m == MIME_TYPE_H264.to_ascii_lowercase() {
                        &subscriber.payload_types.h264
                    } else {
                        continue;
                    };
                    // The first (preferred) payload type of a codec wins.
                    let _ = slot.compare_exchange(
                        0,
                        c.payload_type,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
        }
        tracing::debug!(room, session = %id, "viewer subscribed by WHEP");
        Ok((session, sdp))
    }

    /// The connection is up: viewers start receiving the program now (a key frame sent
    /// before DTLS is done would be lost).
    fn connected(&self, id: &str) {
        let Some(s) = self.sessions.get(id).map(|s| s.clone()) else {
            return;
        };
        if s.connected.swap(true, Ordering::AcqRel) {
            // Back after a disconnection (consent lost for a while, or an ICE restart).
            if let Role::Viewer { subscriber } = &s.role {
                s.room_media.resume_subscriber(subscriber.clone());
            }
            return;
        }
        let Role::Viewer { subscriber } = &s.role else {
            return;
        };
        let Some(rx) = s.pending_rx.lock().take() else {
            return;
        };
        let writer = tokio::spawn(write_loop(rx, s.tracks[0].clone(), s.tracks[1].clone()));
        let rtcp = tokio::spawn(rtcp_loop(
            s.tracks[1].clone(),
            Arc::downgrade(&s.room_media),
        ));
        s.tasks.lock().extend([writer, rtcp]);
        s.room_media.add_subscriber(subscriber.clone());
    }

    /// A viewer's connection lost consent (a phone in a tunnel, a tab killed without a
    /// goodbye): nothing is forwarded to it until it is connected again, so a viewer that
    /// will never come back costs nothing while ICE decides it failed.
    fn disconnected(&self, id: &str) {
        let Some(s) = self.sessions.get(id).map(|s| s.clone()) else {
            return;
        };
        if let (true, Role::Viewer { subscriber }) = (s.connected.load(Ordering::Acquire), &s.role)
        {
            s.room_media.remove_subscriber(subscriber.id);
        }
    }

    async fn add_feed(
        self: &Arc<Self>,
        room: Arc<RoomMedia>,
        brand: String,
        session: &str,
        track: Arc<dyn TrackRemote>,
    ) {
        let Some(s) = self.sessions.get(session).map(|s| s.clone()) else {
            return;
        };
        let Some(&ssrc) = track.ssrcs().await.first() else {
            tracing::warn!(session, "publisher track without an SSRC");
            return;
        };
        let Some(codec) = track.codec(ssrc).await else {
            tracing::warn!(session, "publisher track without a codec");
            return;
        };
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        let video = match kind {
            MediaKind::Video => match VideoCodec::from_mime(&codec.mime_type) {
                Some(v) => Some(v),
                None => {
                    tracing::warn!(session, mime = %codec.mime_type, "unsupported video codec");
                    return;
                }
            },
            MediaKind::Audio => None,
        };
        let (pli_tx, pli_rx) = mpsc::channel(1);
        let feed = Arc::new(Feed {
            source: self.next_id.fetch_add(1, Ordering::Relaxed),
            brand: brand.clone(),
            session: session.to_string(),
            codec: SourceCodec { kind, video },
            pli: pli_tx,
            last_pli: Mutex::new(None),
            last_packet_ms: AtomicI64::new(crate::model::now_ms()),
        });
        tracing::debug!(session, brand = %brand, mime = %codec.mime_type, "feed");
        let reader = tokio::spawn(read_feed(room.clone(), feed.clone(), track.clone()));
        let pli = tokio::spawn(send_plis(track, pli_rx, ssrc));
        s.tasks.lock().extend([reader, pli]);
        let replaced = {
            let mut feeds = room.feeds.lock();
            let entry = feeds.entry(brand.clone()).or_default();
            let replaced = (entry.session != session && !entry.session.is_empty())
                .then(|| entry.session.clone());
            if replaced.is_some() {
                *entry = BrandFeeds::default();
            }
            entry.session = session.to_string();
            match kind {
                MediaKind::Audio => entry.audio = Some(feed),
                MediaKind::Video => entry.video = Some(feed),
            }
            replaced
        };
        room.retarget();
        if let Some(old) = replaced {
            tracing::info!(brand = %brand, old = %old, "publisher replaced");
            let media = self.clone();
            tokio::spawn(async move { media.close_session(&old).await });
        }
    }

    /// Ends a session: stops forwarding, closes the PeerConnection. Idempotent.
    pub async fn close_session(&self, id: &str) {
        let Some((_, s)) = self.sessions.remove(id) else {
            return;
        };
        if s.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        match &s.role {
            Role::Publisher { .. } => self.stats.publishers.dec(),
            Role::Viewer { .. } => self.stats.viewers.dec(),
        };
        self.rooms_seam.detach_media(&s.room, &s.id).await;
        match &s.role {
            Role::Viewer { subscriber } => s.room_media.remove_subscriber(subscriber.id),
            Role::Publisher { brand } => {
                let removed = {
                    let mut feeds = s.room_media.feeds.lock();
                    if feeds.get(brand).is_some_and(|f| f.session == s.id) {
                        feeds.remove(brand);
                        true
                    } else {
                        false
                    }
                };
                if removed {
                    s.room_media.retarget();
                }
                tracing::info!(room = %s.room, brand = %brand, session = %s.id, "publisher left");
            }
        }
        let tasks: Vec<_> = std::mem::take(&mut *s.tasks.lock());
        for t in &tasks {
            t.abort();
        }
        if let Err(e) = s.pc.close().await {
            tracing::debug!(error = %e, "closing a peer connection");
        }
    }

    /// The program state of a room (404 for an unknown room).
    pub async fn program_state(self: &Arc<Self>, room: &str) -> Result<ProgramState, MediaError> {
        Ok(self.room_for(room).await?.program())
    }

    /// PATCH with a trickle-ice-sdpfrag: new remote candidates (→ `None`, 204), or new ICE
    /// credentials, which restart ICE (→ our new credentials and candidates, 200).
    pub async fn patch_ice(&self, s: &Session, frag: &str) -> Result<Option<String>, MediaError> {
        let value = |key: &str| {
            frag.lines()
                .find_map(|l| l.trim_end().strip_prefix(key).map(str::to_string))
        };
        let remote =
            s.pc.remote_description()
                .await
                .ok_or_else(|| MediaError::Conflict("the session has no offer yet".into()))?;
        let current = stun::sdp_ufrags(&remote.sdp);
        let mid = value("a=mid:");
        match (value("a=ice-ufrag:"), value("a=ice-pwd:")) {
            (Some(ufrag), Some(pwd)) if !current.contains(&ufrag) => {
                let offer: String = remote
                    .sdp
                    .split_inclusive('\n')
                    .map(|l| {
                        if l.starts_with("a=ice-ufrag:") {
                            format!("a=ice-ufrag:{ufrag}\r\n")
                        } else if l.starts_with("a=ice-pwd:") {
                            format!("a=ice-pwd:{pwd}\r\n")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                let offer = RTCSessionDescription::offer(offer)
                    .map_err(|e| MediaError::BadRequest(format!("ICE restart: {e}")))?;
                s.pc.set_remote_description(offer)
                    .await
                    .map_err(|e| MediaError::BadRequest(format!("ICE restart refused: {e}")))?;
                let answer =
                    s.pc.create_answer(None)
                        .await
                        .map_err(|e| internal("ICE restart answer", e))?;
                s.pc.set_local_description(answer)
                    .await
                    .map_err(|e| internal("ICE restart local description", e))?;
                let local =
                    s.pc.local_description()
                        .await
                        .ok_or_else(|| MediaError::Internal("no local description".into()))?;
                s.endpoint.register_ufrags(&stun::sdp_ufrags(&local.sdp));
                let sdp = stun::advertise_shared_port(
                    &local.sdp,
                    &s.endpoint.local_addrs(),
                    self.mux.local_addr().port(),
                );
                let mut out = String::new();
                let mut seen = std::collections::HashSet::new();
                for l in sdp.lines() {
                    let keep = l.starts_with("a=ice-ufrag:")
                        || l.starts_with("a=ice-pwd:")
                        || l.starts_with("a=candidate:");
                    if keep && seen.insert(l.to_string()) {
                        out.push_str(l);
                        out.push_str("\r\n");
                    }
                }
                Ok(Some(out))
            }
            _ => {
                for l in frag.lines().map(str::trim_end) {
                    let Some(c) = l.strip_prefix("a=") else {
                        continue;
                    };
                    if !c.starts_with("candidate:") {
                        continue;
                    }
                    s.pc.add_ice_candidate(webrtc::peer_connection::RTCIceCandidateInit {
                        candidate: c.to_string(),
                        sdp_mid: mid.clone(),
                        sdp_mline_index: Some(0),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| MediaError::BadRequest(format!("bad candidate {c:?}: {e}")))?;
                }
                Ok(None)
            }
        }
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.get(id).map(|s| s.clone())
    }

    /// Closes every session and the shared socket.
    pub async fn shutdown(&self) {
        if let Some(j) = self.janitor.lock().take() {
            j.abort();
        }
        let ids: Vec<String> = self.sessions.iter().map(|s| s.key().clone()).collect();
        for id in ids {
            self.close_session(&id).await;
        }
        self.rooms.clear();
        self.mux.close();
    }

    async fn sweep(&self) {
        let now_ms = crate::model::now_ms();
        let idle_ms = self.config.publisher_idle.as_millis() as i64;
        let mut stale = Vec::new();
        for s in self.sessions.iter() {
            if s.token_expires_ms <= now_ms {
                stale.push((s.id.clone(), "token expired"));
                continue;
            }
            if !s.connected.load(Ordering::Acquire) {
                if s.created.elapsed() > CONNECT_TIMEOUT {
                    stale.push((s.id.clone(), "never connected"));
                }
                continue;
            }
            if let Role::Publisher { brand } = &s.role {
                let last = {
                    let feeds = s.room_media.feeds.lock();
                    feeds.get(brand).filter(|f| f.session == s.id).map(|f| {
                        [&f.audio, &f.video]
                            .into_iter()
                            .flatten()
                            .map(|x| x.last_packet_ms.load(Ordering::Relaxed))
                            .max()
                            .unwrap_or(0)
                    })
                };
                let since = match last {
                    Some(ms) => now_ms - ms,
                    None => s.created.elapsed().as_millis() as i64,
                };
                if since > idle_ms {
                    stale.push((s.id.clone(), "idle publisher"));
                }
            }
        }
        for (id, why) in stale {
            tracing::info!(session = %id, why, "closing media session");
            self.close_session(&id).await;
        }
    }
}

async fn janitor(media: Weak<Media>) {
    let mut every = tokio::time::interval(JANITOR_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(m) = media.upgrade() else { return };
        m.sweep().await;
    }
}

/// Follows a room's signals: the brand on air retargets the program; `End` closes the named
/// media sessions (a kick, a revoked token, the room's end).
async fn follow_room(
    media: Weak<Media>,
    room: Weak<RoomMedia>,
    mut signals: futures_util::stream::BoxStream<'static, MediaSignal>,
) {
    while let Some(signal) = signals.next().await {
        match signal {
            MediaSignal::OnAir(brand) => {
                let Some(r) = room.upgrade() else { return };
                *r.on_air.lock() = brand;
                r.retarget();
            }
            MediaSignal::End { ids, why } => {
                let Some(m) = media.upgrade() else { return };
                for id in ids {
                    tracing::info!(session = %id, why = %why.message, "media session ended by its room");
                    m.close_session(&id).await;
                }
            }
        }
    }
}

async fn report_live_feeds(
    mut live: watch::Receiver<BTreeSet<String>>,
    rooms: Arc<dyn Rooms>,
    room: String,
) {
    while live.changed().await.is_ok() {
        let brands = live.borrow_and_update().clone();
        rooms.set_live_feeds(&room, brands).await;
    }
}

async fn read_feed(room: Arc<RoomMedia>, feed: Arc<Feed>, track: Arc<dyn TrackRemote>) {
    while let Some(evt) = track.poll().await {
        match evt {
            TrackRemoteEvent::OnRtpPacket(p) => room.on_packet(&feed, &p),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

async fn send_plis(track: Arc<dyn TrackRemote>, mut rx: mpsc::Receiver<()>, media_ssrc: u32) {
    while rx.recv().await.is_some() {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if track.write_rtcp(vec![Box::new(pli)]).await.is_err() {
            return;
        }
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Outbound>,
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
) {
    while let Some(o) = rx.recv().await {
        let track = match o.kind {
            MediaKind::Audio => &audio,
            MediaKind::Video => &video,
        };
        if track.write_rtp(o.packet).await.is_err() {
            return;
        }
    }
}

async fn rtcp_loop(video: Arc<TrackLocalStaticRTP>, room: Weak<RoomMedia>) {
    while let Some(evt) = video.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = evt else {
            continue;
        };
        if packets
            .iter()
            .any(|p| rtcp::is_keyframe_request(p.as_ref()))
        {
            match room.upgrade() {
                Some(r) => r.viewer_keyframe_request(),
                None => return,
            }
        }
    }
}
