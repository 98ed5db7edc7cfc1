//! One WHIP or WHEP resource: its PeerConnection (built per session on the shared UDP port),
//! the offer/answer exchange with the DTLS role the offer calls for, trickle and ICE restart
//! by PATCH, and the connection events that drive the session's life.

use super::room::RoomMedia;
use super::sfu::Subscriber;
use super::udp::Endpoint;
use super::{codecs, internal, rtcp, sdp, stun, Media, MediaError};
use crate::model::Refusal;
use parking_lot::Mutex;
use rtc::peer_connection::transport::RTCDtlsRole;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder,
};

/// How long ICE gathering may take before the answer is sent anyway.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) enum Role {
    Publisher { brand: String },
    Viewer { subscriber: Arc<Subscriber> },
}

/// One WHIP or WHEP resource.
pub struct Session {
    pub id: String,
    pub room: String,
    pub(super) role: Role,
    pub(super) pc: Arc<dyn PeerConnection>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) room_media: Arc<RoomMedia>,
    pub(super) created: Instant,
    /// When the token it was opened with expires (kicks and revocations reach it through
    /// its room's `End` signal).
    pub(super) token_expires_ms: i64,
    pub(super) connected: AtomicBool,
    pub(super) closed: AtomicBool,
    /// Why its room ended it, if it did: a session ended while it was being answered is
    /// refused for that reason, not for the closed connection it left.
    pub(super) ended_by: Mutex<Option<Refusal>>,
    /// Its feed readers, PLI sender and RTCP reader; aborted when it closes.
    pub(super) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(super) _permit: Option<OwnedSemaphorePermit>,
    /// For viewers: the audio and the video track.
    pub(super) tracks: Vec<Arc<TrackLocalStaticRTP>>,
}

impl Session {
    pub(super) fn new(
        id: String,
        room: &str,
        role: Role,
        peer: &Peer,
        room_media: Arc<RoomMedia>,
        token_expires_ms: i64,
    ) -> Session {
        Session {
            id,
            room: room.to_string(),
            role,
            pc: peer.pc.clone(),
            endpoint: peer.endpoint.clone(),
            room_media,
            created: Instant::now(),
            token_expires_ms,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            ended_by: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            _permit: None,
            tracks: Vec::new(),
        }
    }

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

/// A session's PeerConnection before its answer: the connection, its virtual socket on the
/// shared port, and whether ICE gathering is complete.
pub(super) struct Peer {
    pub(super) pc: Arc<dyn PeerConnection>,
    pub(super) endpoint: Arc<Endpoint>,
    gathered: watch::Receiver<bool>,
}

impl Peer {
    /// Closes a connection that never became a session.
    pub(super) async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing a peer connection");
        }
    }
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
                // Not from inside the connection's own event: closing it waits for its driver.
                let id = self.session.clone();
                let m = media.clone();
                media.spawn(async move { m.close_session(&id).await });
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

impl Media {
    /// A PeerConnection for session `id` on the shared UDP port, answering DTLS as
    /// `dtls_role`; a publisher's tracks go to `publish` (its room and brand).
    pub(super) async fn build_peer(
        self: &Arc<Self>,
        id: &str,
        dtls_role: RTCDtlsRole,
        publish: Option<(Arc<RoomMedia>, String)>,
    ) -> Result<Peer, MediaError> {
        let (endpoint, runtime) = self.mux.endpoint();
        let viewer = publish.is_none();
        let (gathered_tx, gathered) = watch::channel(false);
        let events = Events {
            media: Arc::downgrade(self),
            session: id.to_string(),
            gathered: gathered_tx,
            publish,
        };
        let mut engine = MediaEngine::default();
        codecs::register_sfu_codecs(&mut engine).map_err(|e| internal("codecs", e))?;
        let registry = if viewer {
            rtcp::viewer_interceptors(Registry::new(), &mut engine)
                .map_err(|e| internal("interceptors", e))?
        } else {
            webrtc::peer_connection::register_default_interceptors(Registry::new(), &mut engine)
                .map_err(|e| internal("interceptors", e))?
        }
        .with(
            rtc::interceptor::Slot::from(14_000),
            rtcp::KeyframeRequestForwarder::default(),
        );
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_answering_dtls_role(dtls_role)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(events))
            .with_runtime(runtime)
            .with_udp_addrs(vec![self.mux.bind_addr()])
            .build()
            .await
            .map_err(|e| internal("peer connection", e))?;
        Ok(Peer {
            pc: Arc::new(pc),
            endpoint,
            gathered,
        })
    }

    /// Applies the offer, answers, waits for gathering; returns the answer SDP with the
    /// shared media port advertised.
    pub(super) async fn answer(
        &self,
        peer: &mut Peer,
        offer: String,
    ) -> Result<String, MediaError> {
        let pc = &peer.pc;
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
        let _ = tokio::time::timeout(GATHER_TIMEOUT, peer.gathered.wait_for(|g| *g)).await;
        let local = pc
            .local_description()
            .await
            .ok_or_else(|| MediaError::Internal("no local description".into()))?;
        peer.endpoint.register_ufrags(&stun::sdp_ufrags(&local.sdp));
        Ok(stun::advertise_shared_port(
            &local.sdp,
            &peer.endpoint.local_addrs(),
            self.mux.local_addr().port(),
            &self.config.public_ips,
        ))
    }

    /// PATCH with a trickle-ice-sdpfrag: new remote candidates (→ `None`, 204), or new ICE
    /// credentials, which restart ICE (→ our new credentials and candidates, 200).
    pub async fn patch_ice(&self, s: &Session, frag: &str) -> Result<Option<String>, MediaError> {
        let remote =
            s.pc.remote_description()
                .await
                .ok_or_else(|| MediaError::Conflict("the session has no offer yet".into()))?;
        let current = stun::sdp_ufrags(&remote.sdp);
        let mid = sdp::fragment_value(frag, "a=mid:");
        match (
            sdp::fragment_value(frag, "a=ice-ufrag:"),
            sdp::fragment_value(frag, "a=ice-pwd:"),
        ) {
            (Some(ufrag), Some(pwd)) if !current.contains(&ufrag) => {
                let offer = sdp::with_ice_credentials(&remote.sdp, &ufrag, &pwd);
                let offer = RTCSessionDescription::offer(offer)
                    .map_err(|e| MediaError::BadRequest(format!("ICE restart: {e}")))?;
                s.pc.set_remote_description(offer)
                    .await
                    .map_err(|e| MediaError::BadRequest(format!("ICE restart refused: {e}")))?;
                // The connection's setting engine answers with the DTLS role the first offer
                // called for, so the restart keeps it.
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
                let answer = stun::advertise_shared_port(
                    &local.sdp,
                    &s.endpoint.local_addrs(),
                    self.mux.local_addr().port(),
                    &self.config.public_ips,
                );
                Ok(Some(sdp::ice_fragment(&answer)))
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
}
