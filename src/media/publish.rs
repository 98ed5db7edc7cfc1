//! WHIP ingest: a brand's presenter publishes; each of its tracks becomes the brand's feed of
//! that kind, read by its own task.

use super::keyframe::VideoCodec;
use super::room::{Feed, RoomMedia};
use super::session::{Role, Session};
use super::sfu::{MediaKind, SourceCodec};
use super::{internal, sdp, tasks, Media, MediaError};
use crate::model::{MediaRole, MediaSession};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;

impl Media {
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
        let room_media = self.open_room(room).await?;
        let dtls_role = sdp::answering_role(&offer).map_err(MediaError::BadRequest)?;
        let id = self.new_id();
        let publish = Some((room_media.clone(), brand.to_string()));
        let mut peer = self.build_peer(&id, dtls_role, publish).await?;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            };
            if let Err(e) = peer.pc.add_transceiver_from_kind(kind, Some(init)).await {
                peer.close().await;
                return Err(internal("transceiver", e));
            }
        }
        let role = Role::Publisher {
            brand: brand.to_string(),
        };
        let expires_ms = claims.exp.saturating_mul(1000);
        let session = Arc::new(Session::new(
            id.clone(),
            room,
            role,
            &peer,
            room_media,
            expires_ms,
        ));
        let attach = MediaSession {
            id: id.clone(),
            identity: claims.sub.clone(),
            jti: claims.jti.clone(),
            expires_ms,
            role: MediaRole::Presenter {
                brand_id: brand.to_string(),
            },
        };
        self.admit(session.clone(), attach).await?;
        let answer = self.answer(&mut peer, offer).await;
        let sdp = self.answered(&session, answer).await?;
        tracing::info!(room, brand, session = %id, "publisher connected by WHIP");
        Ok((session, sdp))
    }

    /// A publisher's track arrived: it becomes its brand's feed of that kind, read by its own
    /// task, with a task that sends it the PLIs viewers (and switches) ask for.
    pub(super) async fn add_feed(
        self: &Arc<Self>,
        room: Arc<RoomMedia>,
        brand: String,
        session: &str,
        track: Arc<dyn TrackRemote>,
    ) {
        let Some(s) = self.session(session) else {
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
        let feed = Arc::new(Feed::new(
            self.next_id.fetch_add(1, Ordering::Relaxed),
            brand.clone(),
            session.to_string(),
            SourceCodec { kind, video },
            pli_tx,
        ));
        tracing::debug!(session, brand = %brand, mime = %codec.mime_type, "feed");
        let reader = self.spawn(tasks::read_feed(room.clone(), feed.clone(), track.clone()));
        let pli = self.spawn(tasks::send_plis(track, pli_rx, ssrc));
        s.tasks.lock().extend([reader, pli]);
        if let Some(old) = room.add_feed(feed) {
            tracing::info!(brand = %brand, old = %old, "publisher replaced");
            let media = self.clone();
            self.spawn(async move { media.close_session(&old).await });
        }
    }
}
