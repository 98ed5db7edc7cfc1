//! The tasks media runs: per publisher track a feed reader and a PLI sender, per viewer an
//! RTCP reader, per room a follower of its signals and a reporter of its live
//! feeds, and one janitor. All are spawned by `Media::spawn`, so they end on the drain and
//! are accounted for.

use super::room::{Feed, RoomMedia};
use super::session::Role;
use super::{rtcp, Media};
use crate::model::EndReason;
use crate::rooms::{MediaSignal, Rooms};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// A connection that has not connected by then is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often idle publishers and stuck connections are looked for.
const JANITOR_EVERY: Duration = Duration::from_secs(1);

/// Closes sessions whose token expired, that never connected, or (publishers) that sent no
/// media for `publisher_idle`.
pub(super) async fn janitor(media: Weak<Media>) {
    let mut every = tokio::time::interval(JANITOR_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(m) = media.upgrade() else { return };
        m.sweep().await;
    }
}

impl Media {
    async fn sweep(&self) {
        self.expire_relay();
        let now_ms = crate::model::now_ms();
        let idle_ms = self.config.publisher_idle.as_millis() as i64;
        let mut stale = Vec::new();
        let mut in_use = std::collections::HashSet::new();
        for s in self.sessions.iter() {
            in_use.insert(s.room.clone());
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
                let since = match s.room_media.last_packet_ms(brand, &s.id) {
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
        self.drop_idle_rooms(&in_use);
    }

    /// Drops the media of rooms nothing here uses any more: no session (`in_use` lists the
    /// rooms that had one at the start of the sweep, and the check is made again under the
    /// map's lock), no feed, no viewer, no request for `room_idle`. Its follower and reporter
    /// end with it; a session admitted meanwhile finds it gone and is refused (try again).
    fn drop_idle_rooms(&self, in_use: &std::collections::HashSet<String>) {
        let idle: Vec<Arc<RoomMedia>> = self
            .rooms
            .iter()
            .filter(|r| !in_use.contains(r.key()))
            .filter(|r| r.idle_for() >= self.config.room_idle)
            .map(|r| r.value().clone())
            .collect();
        for r in idle {
            let dropped = self.rooms.remove_if(&r.id, |_, x| {
                Arc::ptr_eq(x, &r) && !self.sessions.iter().any(|s| s.room == r.id)
            });
            if dropped.is_some() {
                tracing::debug!(room = %r.id, "room media idle: dropped");
                r.gone.cancel();
            }
        }
        self.stats.rooms.set(self.rooms.len() as i64);
    }
}

/// Follows a room's signals: the brand on air retargets the program; `End` closes the named
/// media sessions (a kick, a revoked token), and the room's end closes all of them.
pub(super) async fn follow_room(
    media: Weak<Media>,
    room: Weak<RoomMedia>,
    mut signals: BoxStream<'static, MediaSignal>,
) {
    while let Some(signal) = signals.next().await {
        match signal {
            MediaSignal::OnAir(brand) => {
                let Some(r) = room.upgrade() else { return };
                r.set_on_air(brand);
            }
            MediaSignal::End { ids, why } => {
                let (Some(m), Some(r)) = (media.upgrade(), room.upgrade()) else {
                    return;
                };
                for id in &ids {
                    m.end_session(id, &why).await;
                }
                if why.reason == EndReason::RoomEnded {
                    m.end_room(&r).await;
                }
            }
        }
    }
}

/// Tells the room which of its brands have a live feed on this node.
pub(super) async fn report_live_feeds(
    mut live: watch::Receiver<BTreeSet<String>>,
    rooms: Arc<dyn Rooms>,
    room: String,
) {
    while live.changed().await.is_ok() {
        let brands = live.borrow_and_update().clone();
        rooms.set_live_feeds(&room, brands).await;
    }
}

pub(super) async fn read_feed(room: Arc<RoomMedia>, feed: Arc<Feed>, track: Arc<dyn TrackRemote>) {
    while let Some(evt) = track.poll().await {
        match evt {
            TrackRemoteEvent::OnRtpPacket(p) => room.on_packet(&feed, &p),
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

pub(super) async fn send_plis(
    track: Arc<dyn TrackRemote>,
    mut rx: mpsc::Receiver<()>,
    media_ssrc: u32,
) {
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

/// Relays a viewer's key-frame requests to the room's source on air.
pub(super) async fn rtcp_loop(video: Arc<TrackLocalStaticRTP>, room: Weak<RoomMedia>) {
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
