//! WebRTC peers for the media scenarios, signalling-agnostic (WHIP/WHEP or the Janus API hand
//! SDP back and forth): a publisher that sends synthetic VP8 at a set packet rate and size
//! (key frames at an interval and on PLI), and a lean subscriber that counts what arrives.
//!
//! Every packet the publisher sends ends with a mark — source number, packet index and send
//! time on the harness's clock — so a subscriber can tell loss against what was *sent* (an SFU
//! that renumbers gaplessly hides its drops from sequence numbers), one-way delay, which
//! brand's feed it is watching and when a switch reached it. The payload is not decodable
//! video: SFUs forward without decoding, and every SFU under test sees the same bytes.

use crate::Clock;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use showfloor::media::keyframe::vp8_starts_keyframe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
};

/// The mark at the end of every synthetic payload: magic, source, packet index, send time.
const MAGIC: &[u8; 4] = b"SFLT";
const MARK_LEN: usize = 4 + 1 + 4 + 8;
/// RTP clock of video.
const VIDEO_CLOCK: u32 = 90_000;
/// ICE gathering and connection set-up bound.
const CONNECT_WITHIN: Duration = Duration::from_secs(20);

/// What a publisher sends.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Video packets per second (spread over `fps` frames, sent as a burst per frame).
    pub packets_per_s: u32,
    /// RTP payload size in bytes.
    pub payload_bytes: usize,
    pub fps: u32,
    /// A key frame at least this often (as an encoder's keyint); PLIs bring one sooner.
    pub keyframe_interval: Duration,
    /// Tells this publisher's packets apart at the subscribers (a brand's number).
    pub source: u8,
}

impl Default for Stream {
    /// ≈ 2.2 Mbit/s of 720p-like video: 250 packets/s × 1,100 bytes, 25 fps, keyint 2 s.
    fn default() -> Stream {
        Stream {
            packets_per_s: 250,
            payload_bytes: 1100,
            fps: 25,
            keyframe_interval: Duration::from_secs(2),
            source: 0,
        }
    }
}

/// A span of send times (µs on the harness clock): packets sent in it are counted by the
/// publisher and, when they arrive, by every subscriber. Loss is the difference.
#[derive(Default)]
pub struct Window {
    from: AtomicU64,
    to: AtomicU64,
}

impl Window {
    pub fn set(&self, from_us: u64, to_us: u64) {
        self.to.store(0, Ordering::SeqCst);
        self.from.store(from_us, Ordering::SeqCst);
        self.to.store(to_us, Ordering::SeqCst);
    }
    fn contains(&self, us: u64) -> bool {
        us >= self.from.load(Ordering::Relaxed) && us < self.to.load(Ordering::Relaxed)
    }
}

/// The mark of a synthetic packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub source: u8,
    pub index: u32,
    pub sent_us: u64,
}

/// Builds a synthetic VP8 payload: the payload descriptor (S=1, PID=0 on a frame's first
/// packet), on a frame's first packet a VP8 frame tag (P=0 on a key frame), padding, the mark.
pub fn payload(len: usize, frame_start: bool, keyframe: bool, mark: Mark) -> bytes::Bytes {
    let len = len.max(MARK_LEN + 2);
    let mut b = vec![0u8; len];
    if frame_start {
        b[0] = 0x10;
        // Frame tag: bit 0 is P, the inverse key frame flag; then a key frame's start code.
        b[1] = if keyframe { 0x10 } else { 0x11 };
        if keyframe && len >= MARK_LEN + 7 {
            b[4..7].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        }
    }
    let m = len - MARK_LEN;
    b[m..m + 4].copy_from_slice(MAGIC);
    b[m + 4] = mark.source;
    b[m + 5..m + 9].copy_from_slice(&mark.index.to_be_bytes());
    b[m + 9..].copy_from_slice(&mark.sent_us.to_be_bytes());
    bytes::Bytes::from(b)
}

/// Reads the mark back; `None` for a payload without one.
pub fn read_mark(payload: &[u8]) -> Option<Mark> {
    let m = payload.len().checked_sub(MARK_LEN)?;
    let p = &payload[m..];
    if &p[..4] != MAGIC {
        return None;
    }
    Some(Mark {
        source: p[4],
        index: u32::from_be_bytes(p[5..9].try_into().ok()?),
        sent_us: u64::from_be_bytes(p[9..].try_into().ok()?),
    })
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    codec(MIME_TYPE_VP8, VIDEO_CLOCK, 0, "")
}

/// A media engine with Opus, VP8 and (for subscribers, which take whatever a brand sends)
/// H.264 — the codecs the SFUs under test forward.
fn engine(with_h264: bool) -> anyhow::Result<MediaEngine> {
    let mut e = MediaEngine::default();
    let mut add = |c: RTCRtpCodec, pt: u8, kind| {
        e.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: c,
                payload_type: pt,
            },
            kind,
        )
    };
    add(
        codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
        111,
        RtpCodecKind::Audio,
    )?;
    add(vp8(), 96, RtpCodecKind::Video)?;
    if with_h264 {
        add(
            codec(
                MIME_TYPE_H264,
                VIDEO_CLOCK,
                0,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            125,
            RtpCodecKind::Video,
        )?;
    }
    Ok(e)
}

struct Events {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    broke: Arc<AtomicBool>,
    received: Option<Arc<Received>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if matches!(
            state,
            RTCPeerConnectionState::Failed
                | RTCPeerConnectionState::Closed
                | RTCPeerConnectionState::Disconnected
        ) {
            self.broke.store(true, Ordering::SeqCst);
        }
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(received) = self.received.clone() else {
            return;
        };
        let video = track.kind().await == RtpCodecKind::Video;
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                match evt {
                    TrackRemoteEvent::OnRtpPacket(p) if video => received.video(&p),
                    TrackRemoteEvent::OnRtpPacket(_) => {
                        received.audio.fetch_add(1, Ordering::Relaxed);
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// One PeerConnection and what is needed to signal it.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    broke: Arc<AtomicBool>,
}

impl Peer {
    /// `interceptors`: the default chain (NACK, reports) and PLI forwarding, as a real
    /// encoder has; a subscriber goes without, so it costs the harness as little as possible
    /// and its counts are what the SFU sent, unrepaired.
    async fn build(
        engine: MediaEngine,
        interceptors: bool,
        received: Option<Arc<Received>>,
    ) -> anyhow::Result<Peer> {
        let mut engine = engine;
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let broke = Arc::new(AtomicBool::new(false));
        let registry = if interceptors {
            webrtc::peer_connection::register_default_interceptors(Registry::new(), &mut engine)?
                .with(
                    rtc::interceptor::Slot::from(14_000),
                    showfloor::media::rtcp::KeyframeRequestForwarder::default(),
                )
        } else {
            Registry::new()
        };
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events {
                gathered: gathered_tx,
                state: state_tx,
                broke: broke.clone(),
                received,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await?;
        Ok(Peer {
            pc: Arc::new(pc),
            gathered,
            state,
            broke,
        })
    }

    /// The local description once ICE gathering is complete (no trickle needed).
    async fn gathered_local(&mut self) -> anyhow::Result<String> {
        let _ = tokio::time::timeout(CONNECT_WITHIN, self.gathered.wait_for(|g| *g)).await;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or_else(|| anyhow::anyhow!("no local description"))?
            .sdp)
    }

    async fn offer(&mut self) -> anyhow::Result<String> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.gathered_local().await
    }

    async fn answer(&mut self, offer: &str) -> anyhow::Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer.to_string())?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.gathered_local().await
    }

    async fn accept(&self, answer: &str) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer.to_string())?)
            .await?;
        Ok(())
    }

    async fn connected(&mut self) -> anyhow::Result<()> {
        tokio::time::timeout(
            CONNECT_WITHIN,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .map_err(|_| anyhow::anyhow!("not connected within {CONNECT_WITHIN:?}"))??;
        Ok(())
    }
}

impl Drop for Peer {
    /// webrtc 0.21 detaches a dropped PeerConnection's driver onto the runtime, where it keeps
    /// receiving media: a peer lost on an error path (a failed join, a step that gave up)
    /// would go on loading the server under test for the rest of the run. Closing it is
    /// best effort and a no-op after an explicit close.
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pc = self.pc.clone();
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// What a publisher has sent.
#[derive(Default)]
pub struct Sent {
    pub packets: AtomicU64,
    pub in_window: AtomicU64,
    pub keyframes: AtomicU64,
    pub keyframe_requests: AtomicU64,
}

/// A publisher before and after its answer: `offer()` → signalling → `start(answer)`.
pub struct Publisher {
    peer: Peer,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn webrtc::rtp_transceiver::RtpSender>,
    stream: Stream,
    pub sent: Arc<Sent>,
    stop: Arc<AtomicBool>,
}

impl Publisher {
    pub async fn new(stream: Stream) -> anyhow::Result<Publisher> {
        anyhow::ensure!(stream.fps >= 1 && stream.packets_per_s >= stream.fps);
        let peer = Peer::build(engine(false)?, true, None).await?;
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("loadtest-{}", stream.source),
            format!("video-{}", stream.source),
            "video".to_string(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(rand::random()),
                    ..Default::default()
                },
                codec: vp8(),
                ..Default::default()
            }],
        )));
        let sender = peer
            .pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await?;
        Ok(Publisher {
            peer,
            track,
            sender,
            stream,
            sent: Arc::new(Sent::default()),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub async fn offer(&mut self) -> anyhow::Result<String> {
        self.peer.offer().await
    }

    /// Takes the answer, waits for the connection and starts sending.
    pub async fn start(
        &mut self,
        answer: &str,
        clock: Clock,
        window: Arc<Window>,
    ) -> anyhow::Result<()> {
        self.peer.accept(answer).await?;
        self.peer.connected().await?;
        let params = self.sender.get_parameters().await?;
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
            .map(|c| c.payload_type)
            .ok_or_else(|| anyhow::anyhow!("the answer has no VP8"))?;
        let ssrc = params
            .encodings
            .first()
            .and_then(|e| e.rtp_coding_parameters.ssrc)
            .ok_or_else(|| anyhow::anyhow!("the track has no SSRC"))?;
        let asked = Arc::new(AtomicBool::new(true));
        {
            let (track, asked, sent) = (self.track.clone(), asked.clone(), self.sent.clone());
            tokio::spawn(async move {
                while let Some(evt) = track.poll().await {
                    if let TrackLocalEvent::OnRtcpPacket(_) = evt {
                        sent.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                        asked.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
        tokio::spawn(send_video(
            self.track.clone(),
            self.stream.clone(),
            (pt, ssrc),
            asked,
            self.stop.clone(),
            self.sent.clone(),
            clock,
            window,
        ));
        Ok(())
    }

    pub fn broke(&self) -> bool {
        self.peer.broke.load(Ordering::SeqCst)
    }

    pub async fn close(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.peer.pc.close().await;
    }
}

/// Sends frames at `fps`, each a burst of its packets, until stopped. A key frame every
/// `keyframe_interval`, and at once after a key-frame request.
#[allow(clippy::too_many_arguments)]
async fn send_video(
    track: Arc<TrackLocalStaticRTP>,
    s: Stream,
    (pt, ssrc): (u8, u32),
    asked: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sent: Arc<Sent>,
    clock: Clock,
    window: Arc<Window>,
) {
    let per_frame = (s.packets_per_s / s.fps).max(1);
    let extra = s.packets_per_s % s.fps;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / s.fps);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut seq, mut ts, mut index) = (rand::random::<u16>(), rand::random::<u32>(), 0u32);
    let mut last_key: Option<tokio::time::Instant> = None;
    let mut frame = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let at = tick.tick().await;
        let key = asked.swap(false, Ordering::SeqCst)
            || last_key.is_none_or(|k| at.duration_since(k) >= s.keyframe_interval);
        if key {
            last_key = Some(at);
            sent.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        // Spread the remainder so the rate comes out exact over a second.
        let n = per_frame + u32::from(frame % s.fps < extra);
        for i in 0..n {
            let now = clock.now_us();
            let mark = Mark {
                source: s.source,
                index,
                sent_us: now,
            };
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    marker: i + 1 == n,
                    payload_type: pt,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc,
                    ..Default::default()
                },
                payload: payload(s.payload_bytes, i == 0, key, mark),
            };
            if track.write_rtp(packet).await.is_err() {
                return;
            }
            sent.packets.fetch_add(1, Ordering::Relaxed);
            if window.contains(now) {
                sent.in_window.fetch_add(1, Ordering::Relaxed);
            }
            seq = seq.wrapping_add(1);
            index = index.wrapping_add(1);
        }
        ts = ts.wrapping_add(VIDEO_CLOCK / s.fps);
        frame = frame.wrapping_add(1);
    }
}

/// The arrival of a new source's video at a subscriber (a brand switch reaching it).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub source: u8,
    /// When its first packet arrived (µs, harness clock).
    pub first_us: u64,
    /// When the last packet of the previous source had arrived.
    pub previous_last_us: Option<u64>,
    /// Whether that first packet starts a key frame (an SFU should hold video until one).
    pub keyframe: bool,
}

/// What a subscriber has received.
pub struct Received {
    clock: Clock,
    window: Arc<Window>,
    pub video: AtomicU64,
    pub audio: AtomicU64,
    pub in_window: AtomicU64,
    tally: Mutex<Tally>,
}

struct Tally {
    /// RFC 3550 interarrival jitter (the running estimate J += (|D| − J) / 16), in RTP units.
    jitter: f64,
    last_transit: Option<i64>,
    /// One-way delay (µs) of packets sent inside the window.
    delay: Histogram<u64>,
    source: Option<u8>,
    last_us: u64,
    arrivals: Vec<Arrival>,
}

impl Received {
    fn new(clock: Clock, window: Arc<Window>) -> Received {
        Received {
            clock,
            window,
            video: AtomicU64::new(0),
            audio: AtomicU64::new(0),
            in_window: AtomicU64::new(0),
            tally: Mutex::new(Tally {
                jitter: 0.0,
                last_transit: None,
                delay: crate::histogram(),
                source: None,
                last_us: 0,
                arrivals: Vec::new(),
            }),
        }
    }

    fn video(&self, p: &rtc::rtp::Packet) {
        let now = self.clock.now_us();
        self.video.fetch_add(1, Ordering::Relaxed);
        let Some(mark) = read_mark(&p.payload) else {
            return;
        };
        let inside = self.window.contains(mark.sent_us);
        if inside {
            self.in_window.fetch_add(1, Ordering::Relaxed);
        }
        let mut t = self.tally.lock();
        // Jitter against the RTP clock: transit = arrival (in RTP units) − RTP timestamp.
        let transit =
            (now as i64 * i64::from(VIDEO_CLOCK) / 1_000_000) - i64::from(p.header.timestamp);
        if let Some(last) = t.last_transit.replace(transit) {
            let d = (transit - last).abs() as f64;
            // A switch changes the timestamp base; such a jump is not jitter.
            if d < f64::from(VIDEO_CLOCK) {
                t.jitter += (d - t.jitter) / 16.0;
            }
        }
        if inside {
            let _ = t.delay.record(now.saturating_sub(mark.sent_us).max(1));
        }
        if t.source != Some(mark.source) {
            let previous_last_us = t.source.map(|_| t.last_us);
            t.source = Some(mark.source);
            t.arrivals.push(Arrival {
                source: mark.source,
                first_us: now,
                previous_last_us,
                keyframe: vp8_starts_keyframe(&p.payload),
            });
        }
        t.last_us = now;
    }

    /// Jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.tally.lock().jitter / f64::from(VIDEO_CLOCK) * 1000.0
    }

    /// The delays recorded so far; the subscriber starts afresh.
    pub fn take_delay(&self) -> Histogram<u64> {
        std::mem::replace(&mut self.tally.lock().delay, crate::histogram())
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.tally.lock().arrivals.clone()
    }
}

/// A subscriber: `offer()` → signalling → `accept(answer)` (WHEP), or `answer(offer)`
/// (a server that offers, as Janus does).
pub struct Subscriber {
    peer: Peer,
    pub received: Arc<Received>,
    /// What the server calls this subscription (a WHEP resource path, a Janus handle), so
    /// that it can be ended the way a client ends it.
    pub resource: Option<String>,
}

impl Subscriber {
    pub async fn new(clock: Clock, window: Arc<Window>) -> anyhow::Result<Subscriber> {
        let received = Arc::new(Received::new(clock, window));
        let peer = Peer::build(engine(true)?, false, Some(received.clone())).await?;
        Ok(Subscriber {
            peer,
            received,
            resource: None,
        })
    }

    /// A receive-only offer for one audio and one video track.
    pub async fn offer(&mut self) -> anyhow::Result<String> {
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            self.peer
                .pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await?;
        }
        self.peer.offer().await
    }

    pub async fn accept(&mut self, answer: &str) -> anyhow::Result<()> {
        self.peer.accept(answer).await?;
        self.peer.connected().await
    }

    /// Answers a server's offer; call [`Subscriber::connected`] once the answer was sent.
    pub async fn answer(&mut self, offer: &str) -> anyhow::Result<String> {
        self.peer.answer(offer).await
    }

    pub async fn connected(&mut self) -> anyhow::Result<()> {
        self.peer.connected().await
    }

    /// Whether the connection ever failed, closed or disconnected.
    pub fn broke(&self) -> bool {
        self.peer.broke.load(Ordering::SeqCst)
    }

    pub async fn close(self) {
        let _ = self.peer.pc.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_survives_and_key_frames_are_recognised() {
        let mark = Mark {
            source: 3,
            index: 0xdead_beef,
            sent_us: 123_456_789,
        };
        let key = payload(1100, true, true, mark);
        assert_eq!(key.len(), 1100);
        assert_eq!(read_mark(&key), Some(mark));
        assert!(vp8_starts_keyframe(&key));
        assert!(!vp8_starts_keyframe(&payload(1100, true, false, mark)));
        assert!(!vp8_starts_keyframe(&payload(1100, false, true, mark)));
        assert_eq!(read_mark(b"short"), None);
        assert_eq!(read_mark(&[0u8; 64]), None);
    }

    #[test]
    fn the_window_counts_send_times_inside_it() {
        let w = Window::default();
        assert!(!w.contains(5));
        w.set(10, 20);
        assert!(w.contains(10) && w.contains(19));
        assert!(!w.contains(9) && !w.contains(20));
    }
}
