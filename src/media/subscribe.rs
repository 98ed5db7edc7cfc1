//! WHEP egress: a viewer plays the room's program on one PeerConnection with one audio and
//! one video track for its whole life; forwarding to it starts once it is connected and
//! pauses while it is disconnected.

use super::rewrite::Downtrack;
use super::session::{Role, Session};
use super::sfu::{Egress, MediaKind, PayloadTypes, Subscriber};
use super::{codecs, internal, sdp, tasks, Media, MediaError};
use crate::model::{MediaRole, MediaSession};
use futures_util::FutureExt;
use parking_lot::Mutex;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;

/// A viewer's two tracks as the SFU's egress. `write_rtp` only puts the packet on the
/// PeerConnection driver's queue, so it completes at once unless that queue is full (the
/// viewer is behind): then the packet is dropped there and then, and the SFU asks for a key
/// frame. No task of ours stands between the SFU and the driver: a hop through one cost a
/// task wake-up per packet per viewer.
struct Tracks {
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
}

impl Egress for Tracks {
    fn offer(&self, kind: MediaKind, packet: rtp::Packet) -> bool {
        let track = match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        };
        matches!(track.write_rtp(packet).now_or_never(), Some(Ok(())))
    }
}

/// A local track with a fixed SSRC for one viewer.
fn track(
    room: &str,
    session: &str,
    kind: RtpCodecKind,
    label: &str,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("showfloor-{room}"),
        format!("{label}-{session}"),
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
}

impl Media {
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
        if self.admission.overloaded() {
            self.stats.shed.inc();
            return Err(MediaError::Unavailable(
                "this node is overloaded and takes no new media viewers for now; try again \
                 after the Retry-After delay"
                    .into(),
            ));
        }
        let room_media = self.open_room(room).await?;
        let dtls_role = sdp::answering_role(&offer).map_err(MediaError::BadRequest)?;
        let id = self.new_id();
        let mut peer = self.build_peer(&id, dtls_role, None).await?;
        let video = room_media.program_video_codec();
        let audio_ssrc = rand::random::<u32>();
        let video_ssrc = rand::random::<u32>();
        let audio_track = track(
            room,
            &id,
            RtpCodecKind::Audio,
            "audio",
            audio_ssrc,
            codecs::opus(),
        );
        let video_track = track(
            room,
            &id,
            RtpCodecKind::Video,
            "video",
            video_ssrc,
            codecs::video_codec(video),
        );
        let mut senders = Vec::new();
        for t in [&audio_track, &video_track] {
            match peer.pc.add_track(t.clone() as Arc<dyn TrackLocal>).await {
                Ok(sender) => senders.push(sender),
                Err(e) => {
                    peer.close().await;
                    return Err(internal("add track", e));
                }
            }
        }
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
            egress: Box::new(Tracks {
                audio: audio_track.clone(),
                video: video_track.clone(),
            }),
            dropped: AtomicU64::new(0),
        });
        let role = Role::Viewer {
            subscriber: subscriber.clone(),
        };
        let session = Arc::new(Session {
            _permit: Some(permit),
            tracks: vec![audio_track, video_track],
            ..Session::new(id.clone(), room, role, &peer, room_media, viewer.expires_ms)
        });
        let attach = MediaSession {
            id: id.clone(),
            identity: viewer.viewer_id.clone(),
            jti: viewer.jti.clone(),
            expires_ms: viewer.expires_ms,
            role: MediaRole::Viewer,
        };
        self.admit(session.clone(), attach).await?;
        let answer = self.answer(&mut peer, offer).await;
        let sdp = self.answered(&session, answer).await?;
        for s in &senders {
            if let Ok(p) = s.get_parameters().await {
                codecs::record_payload_types(&p, &subscriber.payload_types);
            }
        }
        tracing::debug!(room, session = %id, "viewer subscribed by WHEP");
        Ok((session, sdp))
    }

    /// The connection is up: viewers start receiving the program now (a key frame sent
    /// before DTLS is done would be lost).
    pub(super) fn connected(self: &Arc<Self>, id: &str) {
        let Some(s) = self.session(id) else {
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
        let rtcp = self.spawn(tasks::rtcp_loop(
            s.tracks[1].clone(),
            Arc::downgrade(&s.room_media),
        ));
        s.tasks.lock().push(rtcp);
        s.room_media.add_subscriber(subscriber.clone());
    }

    /// A viewer's connection lost consent (a phone in a tunnel, a tab killed without a
    /// goodbye): nothing is forwarded to it until it is connected again, so a viewer that
    /// will never come back costs nothing while ICE decides it failed.
    pub(super) fn disconnected(&self, id: &str) {
        let Some(s) = self.session(id) else {
            return;
        };
        if let (true, Role::Viewer { subscriber }) = (s.connected.load(Ordering::Acquire), &s.role)
        {
            s.room_media.remove_subscriber(subscriber.id);
        }
    }
}
