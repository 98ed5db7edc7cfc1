//! webrtc-rs clients for the media tests: a WHIP publisher that streams the VP8 + Opus
//! fixtures (restarting at a key frame when asked by PLI), and a WHEP viewer that records
//! every RTP packet it receives. Plus a minimal HTTP/1.1 client for WHIP/WHEP requests.
#![allow(dead_code)]

use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use showfloor::media::keyframe::{starts_keyframe, VideoCodec};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A response of the minimal HTTP client.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `a=rtpmap:<pt> VP8/90000` and `H264/90000` lines of an SDP.
pub fn video_payload_types(sdp: &str) -> Vec<(u8, VideoCodec)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|l| {
            let (pt, name) = l.split_once(' ')?;
            let codec = VideoCodec::from_mime(&format!("video/{}", name.split('/').next()?))?;
            Some((pt.parse().ok()?, codec))
        })
        .collect()
}

struct Events {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    /// Set when the connection ever reached failed/closed/disconnected.
    broke: Arc<AtomicBool>,
    on_track: Option<Arc<Received>>,
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
        let Some(rx) = self.on_track.clone() else {
            return;
        };
        let kind = track.kind().await;
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = evt {
                    rx.record(kind, &p);
                }
            }
        });
    }
}

/// One received RTP packet, as the viewer saw it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub keyframe: bool,
    pub at: Instant,
    /// A hash of the payload, which the server forwards unchanged: the same packet as another
    /// viewer received has the same one.
    pub fingerprint: u64,
}

/// Everything a viewer received.
#[derive(Default)]
pub struct Received {
    /// Video payload types of the negotiated session and their codecs.
    pub video_codecs: parking_lot::Mutex<Vec<(u8, VideoCodec)>>,
    pub audio: parking_lot::Mutex<Vec<Seen>>,
    pub video: parking_lot::Mutex<Vec<Seen>>,
    pub audio_count: AtomicU64,
    pub video_count: AtomicU64,
}

impl Received {
    /// What one viewer received across switches is one stream per kind: one SSRC, sequence
    /// numbers without jumps and with at most 1 % never arriving, timestamps moving forward.
    pub fn assert_continuous(&self, who: &str) {
        for (kind, seen) in [("video", &self.video), ("audio", &self.audio)] {
            let seen = seen.lock();
            let ssrc = seen[0].ssrc;
            assert!(
                seen.iter().all(|s| s.ssrc == ssrc),
                "{who}: one {kind} SSRC"
            );
            // In arrival order the sequence never jumps (a switch without rewriting jumps
            // by thousands); retransmissions may step back a little.
            let jumps = seen
                .windows(2)
                .filter(|w| !(-64..=64).contains(&(w[1].seq.wrapping_sub(w[0].seq) as i16)))
                .count();
            assert_eq!(jumps, 0, "{who}: {kind} sequence jumped");
            // And the numbers received cover their range without holes.
            let mut offsets: Vec<i64> = Vec::with_capacity(seen.len());
            let (mut ext, mut prev) = (0i64, seen[0].seq);
            for s in seen.iter() {
                ext += s.seq.wrapping_sub(prev) as i16 as i64;
                prev = s.seq;
                offsets.push(ext);
            }
            offsets.sort_unstable();
            offsets.dedup();
            let span = offsets.last().unwrap() - offsets.first().unwrap() + 1;
            let missing = span - offsets.len() as i64;
            assert!(
                missing * 100 <= span,
                "{who}: {missing} of {span} {kind} sequence numbers never arrived"
            );
            // Timestamps move forward across switches too.
            let back = seen
                .windows(2)
                .filter(|w| w[1].seq.wrapping_sub(w[0].seq) as i16 == 1)
                .filter(|w| (w[1].ts.wrapping_sub(w[0].ts) as i32) < 0)
                .count();
            assert_eq!(back, 0, "{who}: {kind} timestamps went backwards");
        }
    }

    fn record(&self, kind: RtpCodecKind, p: &rtc::rtp::Packet) {
        let pt = p.header.payload_type;
        let codec = self
            .video_codecs
            .lock()
            .iter()
            .find(|(x, _)| *x == pt)
            .map(|(_, c)| *c);
        let keyframe =
            kind == RtpCodecKind::Video && codec.is_some_and(|c| starts_keyframe(c, &p.payload));
        let seen = Seen {
            pt,
            seq: p.header.sequence_number,
            ts: p.header.timestamp,
            ssrc: p.header.ssrc,
            keyframe,
            at: Instant::now(),
            fingerprint: {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                p.payload.hash(&mut h);
                h.finish()
            },
        };
        match kind {
            RtpCodecKind::Audio => {
                self.audio.lock().push(seen);
                self.audio_count.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                self.video.lock().push(seen);
                self.video_count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// `only`: offer just Opus and this video codec, as an encoder such as OBS does.
async fn build(
    events: Events,
    forward_plis: bool,
    only: Option<VideoCodec>,
) -> Arc<dyn PeerConnection> {
    let mut engine = MediaEngine::default();
    match only {
        None => engine.register_default_codecs().unwrap(),
        Some(video) => {
            use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
            let mut opus = codec(MIME_TYPE_OPUS, 48_000, 2);
            opus.sdp_fmtp_line = "minptime=10;useinbandfec=1".into();
            engine
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: opus,
                        payload_type: 111,
                    },
                    RtpCodecKind::Audio,
                )
                .unwrap();
            let (v, pt) = match video {
                VideoCodec::Vp8 => (codec(MIME_TYPE_VP8, 90_000, 0), 96),
                VideoCodec::H264 => (h264(), 125),
            };
            engine
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: v,
                        payload_type: pt,
                    },
                    RtpCodecKind::Video,
                )
                .unwrap();
        }
    }
    let mut registry =
        webrtc::peer_connection::register_default_interceptors(Registry::new(), &mut engine)
            .unwrap();
    if forward_plis {
        registry = registry.with(
            rtc::interceptor::Slot::from(14_000),
            showfloor::media::rtcp::KeyframeRequestForwarder::default(),
        );
    }
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(events))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await
        .unwrap();
    Arc::new(pc)
}

/// Edits of the SDP on the wire, as another client or a relay would make them.
#[derive(Default)]
pub struct Tweaks<'a> {
    /// Applied to our offer as sent (our own local description keeps what it was).
    pub offer: Option<&'a (dyn Fn(&str) -> String + Sync)>,
    /// Applied to the server's answer before we use it (a test that puts a relay between the
    /// peers points the server's candidate at it).
    pub answer: Option<&'a (dyn Fn(&str) -> String + Sync)>,
}

/// The DTLS role an offer claims (`a=setup:`): browsers and OBS offer `actpass`, FFmpeg
/// offers `passive`, some encoders `active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Actpass,
    Active,
    Passive,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Actpass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
        }
    }

    /// `sdp` with every `a=setup:` line claiming this role.
    pub fn claim(self, sdp: &str) -> String {
        sdp.split_inclusive('\n')
            .map(|l| {
                if l.starts_with("a=setup:") {
                    format!("a=setup:{}\r\n", self.as_str())
                } else {
                    l.to_string()
                }
            })
            .collect()
    }
}

/// The `a=setup:` values of an SDP, in order.
pub fn setup_roles(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=setup:"))
        .map(str::to_string)
        .collect()
}

/// Offer → POST → answer, with the offer and the answer edited on the wire. Returns the HTTP
/// response (the caller checks the status).
async fn negotiate_with(
    pc: &Arc<dyn PeerConnection>,
    mut gathered: watch::Receiver<bool>,
    http_addr: SocketAddr,
    path: &str,
    token: &str,
    tweaks: &Tweaks<'_>,
) -> HttpResponse {
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g)).await;
    let mut offer = pc.local_description().await.unwrap().sdp;
    if let Some(edit) = tweaks.offer {
        offer = edit(&offer);
    }
    let auth = format!("Bearer {token}");
    let r = http(
        http_addr,
        "POST",
        path,
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &auth),
        ],
        &offer,
    )
    .await;
    if r.status == 201 {
        let answer = match tweaks.answer {
            Some(edit) => edit(&r.body),
            None => r.body.clone(),
        };
        pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
    }
    r
}

/// A WHEP viewer.
pub struct WhepViewer {
    pub pc: Arc<dyn PeerConnection>,
    /// The server's SDP answer.
    pub answer: String,
    pub received: Arc<Received>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub broke: Arc<AtomicBool>,
    pub location: String,
    pub http_addr: SocketAddr,
}

impl WhepViewer {
    /// Subscribes; `Err` carries a refusal's status and body.
    pub async fn connect(
        http_addr: SocketAddr,
        room: &str,
        token: &str,
    ) -> Result<WhepViewer, (u16, String)> {
        Self::connect_tweaked(http_addr, room, token, &Tweaks::default()).await
    }

    /// As [`WhepViewer::connect`], rewriting the server's answer before applying it.
    pub async fn connect_with(
        http_addr: SocketAddr,
        room: &str,
        token: &str,
        answer: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<WhepViewer, (u16, String)> {
        let tweaks = Tweaks {
            answer: Some(answer),
            ..Tweaks::default()
        };
        Self::connect_tweaked(http_addr, room, token, &tweaks).await
    }

    /// As [`WhepViewer::connect`], with the offer and the answer edited on the wire.
    pub async fn connect_tweaked(
        http_addr: SocketAddr,
        room: &str,
        token: &str,
        tweaks: &Tweaks<'_>,
    ) -> Result<WhepViewer, (u16, String)> {
        let (gathered, gathered_rx) = watch::channel(false);
        let (state, state_rx) = watch::channel(RTCPeerConnectionState::New);
        let received = Arc::new(Received::default());
        let broke = Arc::new(AtomicBool::new(false));
        let pc = build(
            Events {
                gathered,
                state,
                broke: broke.clone(),
                on_track: Some(received.clone()),
            },
            false,
            None,
        )
        .await;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        }
        let r = negotiate_with(
            &pc,
            gathered_rx,
            http_addr,
            &format!("/whep/{room}"),
            token,
            tweaks,
        )
        .await;
        if r.status != 201 {
            let _ = pc.close().await;
            return Err((r.status, r.body));
        }
        *received.video_codecs.lock() = video_payload_types(&r.body);
        Ok(WhepViewer {
            pc,
            answer: r.body.clone(),
            received,
            state: state_rx,
            broke,
            location: r.header("location").unwrap_or_default().to_string(),
            http_addr,
        })
    }

    pub async fn wait_connected(&mut self) {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("viewer connects")
        .expect("state channel");
    }

    /// DELETE the resource and close the connection.
    pub async fn leave(self) -> u16 {
        let r = http(self.http_addr, "DELETE", &self.location, &[], "").await;
        let _ = self.pc.close().await;
        r.status
    }
}

/// A WHIP publisher streaming the fixtures in a loop.
pub struct WhipPublisher {
    pub pc: Arc<dyn PeerConnection>,
    /// The server's SDP answer.
    pub answer: String,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub broke: Arc<AtomicBool>,
    pub location: String,
    pub plis: Arc<AtomicU64>,
    pub keyframes_sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    http_addr: SocketAddr,
}

fn codec(mime: &str, clock_rate: u32, channels: u16) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

fn h264() -> RTCRtpCodec {
    let mut c = codec(MIME_TYPE_H264, 90_000, 0);
    c.sdp_fmtp_line =
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into();
    c
}

fn sample_track(kind: RtpCodecKind, name: &str, c: RTCRtpCodec) -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                format!("{name}-stream"),
                format!("{name}-track"),
                name.to_owned(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(rand::random::<u32>()),
                        ..Default::default()
                    },
                    codec: c,
                    ..Default::default()
                }],
            ),
        )
        .unwrap(),
    )
}

impl WhipPublisher {
    /// Publishes the VP8 + Opus fixtures.
    pub async fn connect(
        http_addr: SocketAddr,
        room: &str,
        brand: &str,
        token: &str,
    ) -> Result<WhipPublisher, (u16, String)> {
        Self::connect_with(http_addr, room, brand, token, VideoCodec::Vp8).await
    }

    /// Publishes the VP8 or H.264 fixture, and Opus.
    pub async fn connect_with(
        http_addr: SocketAddr,
        room: &str,
        brand: &str,
        token: &str,
        video_codec: VideoCodec,
    ) -> Result<WhipPublisher, (u16, String)> {
        Self::connect_tweaked(
            http_addr,
            room,
            brand,
            token,
            video_codec,
            &Tweaks::default(),
        )
        .await
    }

    /// As [`WhipPublisher::connect_with`], with the offer and the answer edited on the wire.
    pub async fn connect_tweaked(
        http_addr: SocketAddr,
        room: &str,
        brand: &str,
        token: &str,
        video_codec: VideoCodec,
        tweaks: &Tweaks<'_>,
    ) -> Result<WhipPublisher, (u16, String)> {
        let (gathered, gathered_rx) = watch::channel(false);
        let (state, mut state_rx) = watch::channel(RTCPeerConnectionState::New);
        let broke = Arc::new(AtomicBool::new(false));
        let pc = build(
            Events {
                gathered,
                state,
                broke: broke.clone(),
                on_track: None,
            },
            true,
            Some(video_codec),
        )
        .await;
        let video = match video_codec {
            VideoCodec::Vp8 => sample_track(
                RtpCodecKind::Video,
                "video",
                codec(MIME_TYPE_VP8, 90_000, 0),
            ),
            VideoCodec::H264 => sample_track(RtpCodecKind::Video, "video", h264()),
        };
        let audio = sample_track(
            RtpCodecKind::Audio,
            "audio",
            codec(MIME_TYPE_OPUS, 48_000, 2),
        );
        let vs = pc
            .add_track(video.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let as_ = pc
            .add_track(audio.clone() as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let r = negotiate_with(
            &pc,
            gathered_rx,
            http_addr,
            &format!("/whip/{room}/{brand}"),
            token,
            tweaks,
        )
        .await;
        if r.status != 201 {
            let _ = pc.close().await;
            return Err((r.status, r.body));
        }
        tokio::time::timeout(
            Duration::from_secs(10),
            state_rx.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("publisher connects")
        .expect("state channel");
        // The payload type negotiated for the codec this track carries.
        let pt = |p: rtc::rtp_transceiver::rtp_sender::RTCRtpSendParameters, mime: &str| {
            p.rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                .unwrap_or_else(|| {
                    panic!(
                        "{mime} not negotiated: {:?}",
                        p.rtp_parameters
                            .codecs
                            .iter()
                            .map(|c| (
                                c.payload_type,
                                c.rtp_codec.mime_type.clone(),
                                c.rtp_codec.sdp_fmtp_line.clone()
                            ))
                            .collect::<Vec<_>>()
                    )
                })
                .payload_type
        };
        let video_mime = match video_codec {
            VideoCodec::Vp8 => MIME_TYPE_VP8,
            VideoCodec::H264 => MIME_TYPE_H264,
        };
        let video_pt = pt(vs.get_parameters().await.unwrap(), video_mime);
        let audio_pt = pt(as_.get_parameters().await.unwrap(), MIME_TYPE_OPUS);
        let stop = Arc::new(AtomicBool::new(false));
        let restart = Arc::new(AtomicBool::new(false));
        let plis = Arc::new(AtomicU64::new(0));
        let keyframes_sent = Arc::new(AtomicU64::new(0));
        {
            let (video, restart, plis) = (video.clone(), restart.clone(), plis.clone());
            tokio::spawn(async move {
                while let Some(evt) = video.poll().await {
                    if let TrackLocalEvent::OnRtcpPacket(_) = evt {
                        plis.fetch_add(1, Ordering::SeqCst);
                        restart.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
        match video_codec {
            VideoCodec::Vp8 => {
                tokio::spawn(stream_video(
                    video,
                    video_pt,
                    stop.clone(),
                    restart,
                    keyframes_sent.clone(),
                ));
            }
            VideoCodec::H264 => {
                tokio::spawn(stream_h264(
                    video,
                    video_pt,
                    stop.clone(),
                    restart,
                    keyframes_sent.clone(),
                ));
            }
        }
        tokio::spawn(stream_audio(audio, audio_pt, stop.clone()));
        Ok(WhipPublisher {
            pc,
            answer: r.body.clone(),
            state: state_rx,
            broke,
            location: r.header("location").unwrap_or_default().to_string(),
            plis,
            keyframes_sent,
            stop,
            http_addr,
        })
    }

    /// Stops sending media but keeps the connection (an encoder that froze).
    pub fn pause_media(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub async fn stop(self) -> u16 {
        self.stop.store(true, Ordering::SeqCst);
        let r = http(self.http_addr, "DELETE", &self.location, &[], "").await;
        let _ = self.pc.close().await;
        r.status
    }
}

/// Plays the IVF file at its frame rate, looping; a PLI restarts it at its first (key)
/// frame, as an encoder would send a key frame.
async fn stream_video(
    track: Arc<TrackLocalStaticSample>,
    pt: u8,
    stop: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    keyframes: Arc<AtomicU64>,
) {
    let ssrc = *track.ssrcs().await.first().unwrap();
    let frame = Duration::from_micros(1_001_000 / 30);
    let mut tick = tokio::time::interval(frame);
    'file: while !stop.load(Ordering::SeqCst) {
        let file = std::fs::File::open(format!("{FIXTURES}/output_vp8.ivf")).unwrap();
        let (mut ivf, _) = IVFReader::new(std::io::BufReader::new(file)).unwrap();
        while let Ok((data, _)) = ivf.parse_next_frame() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if restart.swap(false, Ordering::SeqCst) {
                continue 'file;
            }
            if data.first().is_some_and(|b| b & 1 == 0) {
                keyframes.fetch_add(1, Ordering::SeqCst);
            }
            let sample = Sample {
                data: data.freeze(),
                duration: frame,
                ..Sample::new(Instant::now())
            };
            if track
                .sample_writer(ssrc, pt)
                .write_sample(&sample)
                .await
                .is_err()
            {
                return;
            }
            tick.tick().await;
        }
    }
}

/// Plays the H.264 Annex-B file at 30 fps, looping; a PLI restarts it at its first access
/// unit (SPS, PPS, IDR).
async fn stream_h264(
    track: Arc<TrackLocalStaticSample>,
    pt: u8,
    stop: Arc<AtomicBool>,
    restart: Arc<AtomicBool>,
    keyframes: Arc<AtomicU64>,
) {
    let ssrc = *track.ssrcs().await.first().unwrap();
    let frame = Duration::from_millis(33);
    let mut tick = tokio::time::interval(frame);
    'file: while !stop.load(Ordering::SeqCst) {
        let file = std::fs::File::open(format!("{FIXTURES}/output_h264.264")).unwrap();
        let mut reader = rtc::media::io::h26x_reader::H26xSampleReader::new(
            std::io::BufReader::new(file),
            1 << 20,
            false,
        );
        while let Ok(sample) = reader.next_sample() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if restart.swap(false, Ordering::SeqCst) {
                continue 'file;
            }
            // The sample may start with its Annex-B start code.
            let d = &sample.data[..];
            let nal = d
                .strip_prefix(&[0, 0, 0, 1])
                .or_else(|| d.strip_prefix(&[0, 0, 1]))
                .unwrap_or(d);
            if nal.first().is_some_and(|b| b & 0x1f == 7) {
                keyframes.fetch_add(1, Ordering::SeqCst);
            }
            let s = Sample {
                data: sample.data,
                duration: if sample.timed { frame } else { Duration::ZERO },
                ..Sample::new(Instant::now())
            };
            if track
                .sample_writer(ssrc, pt)
                .write_sample(&s)
                .await
                .is_err()
            {
                return;
            }
            if sample.timed {
                tick.tick().await;
            }
        }
    }
}

/// Plays the Ogg/Opus file page by page at real time, looping.
async fn stream_audio(track: Arc<TrackLocalStaticSample>, pt: u8, stop: Arc<AtomicBool>) {
    let ssrc = *track.ssrcs().await.first().unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !stop.load(Ordering::SeqCst) {
        let file = std::fs::File::open(format!("{FIXTURES}/output.ogg")).unwrap();
        let Ok((mut ogg, _)) = OggReader::new(std::io::BufReader::new(file), true) else {
            return;
        };
        let mut last_granule = 0u64;
        while let Ok((data, header)) = ogg.parse_next_page() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let samples = header.granule_position.saturating_sub(last_granule);
            last_granule = header.granule_position;
            if data.starts_with(b"OpusHead") || data.starts_with(b"OpusTags") {
                continue;
            }
            let sample = Sample {
                data: data.freeze(),
                duration: Duration::from_micros(samples * 1_000_000 / 48_000),
                ..Sample::new(Instant::now())
            };
            if track
                .sample_writer(ssrc, pt)
                .write_sample(&sample)
                .await
                .is_err()
            {
                return;
            }
            tick.tick().await;
        }
    }
}
