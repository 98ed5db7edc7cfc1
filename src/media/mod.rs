//! Media: WHIP ingest, WHEP egress and the SFU that keeps each viewer's stream continuous
//! across brand switches. This file holds the node's SFU (`Media`): its sessions and rooms,
//! their lifecycle and the drain. See docs/media.md.

pub mod admission;
mod cascade;
mod codecs;
pub mod http;
pub mod keyframe;
mod publish;
pub mod relay_crypto;
pub mod rewrite;
mod room;
pub mod rtcp;
pub mod sdp;
mod session;
pub mod sfu;
pub mod stun;
mod subscribe;
mod tasks;
pub mod udp;

pub use cascade::{RelayedCodec, RelayedFeed, SUBSCRIPTION_TTL};
pub use relay_crypto::SubKey;
pub use room::{Feed, ProgramState, RoomMedia};
pub use session::Session;

use crate::auth;
use crate::model::{EndReason, HostCommand, HostReply, MediaSession, Refusal, RoomState};
use crate::rooms::{refusal_of, MediaSignal, Rooms};
use dashmap::DashMap;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use session::Role;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use udp::UdpMux;

/// How long `shutdown` waits for media's tasks after closing every session.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub udp_addr: SocketAddr,
    /// The machine's public addresses behind a 1:1 NAT, announced instead of its own.
    pub public_ips: Vec<std::net::IpAddr>,
    pub max_subscribers: usize,
    pub publisher_idle: Duration,
    /// A room's media with no session, feed or viewer on this node and no request for it
    /// this long is dropped from memory (made again by its next request).
    pub room_idle: Duration,
    /// The relay socket that carries media between the nodes of a cluster (`None`: alone).
    pub relay_addr: Option<SocketAddr>,
    /// New viewers are refused while the runtime runs due tasks later than this (`None`:
    /// never; see `admission.rs`).
    pub shed_lag: Option<Duration>,
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
    pub relay_sent: Counter,
    pub relay_received: Counter,
    pub relay_resent: Counter,
    pub dropped: Counter,
    pub keyframe_requests: Counter,
    pub switches: Counter,
    pub shed: Counter,
    pub publishers: Gauge,
    pub viewers: Gauge,
    pub rooms: Gauge,
}

impl MediaStats {
    pub fn from_metrics(m: &crate::metrics::Metrics) -> MediaStats {
        MediaStats {
            forwarded: m.media_rtp_forwarded.clone(),
            relay_sent: m.media_relay_sent.clone(),
            relay_received: m.media_relay_received.clone(),
            relay_resent: m.media_relay_resent.clone(),
            dropped: m.media_rtp_dropped.clone(),
            keyframe_requests: m.media_keyframe_requests.clone(),
            switches: m.media_switches.clone(),
            shed: m.media_viewers_shed.clone(),
            publishers: m.media_publishers.clone(),
            viewers: m.media_viewers.clone(),
            rooms: m.media_rooms.clone(),
        }
    }
}

/// The node's SFU.
pub struct Media {
    rooms_seam: Arc<dyn Rooms>,
    mux: Arc<UdpMux>,
    relay: Option<Arc<cascade::Relay>>,
    config: MediaConfig,
    rooms: DashMap<String, Arc<RoomMedia>>,
    sessions: DashMap<String, Arc<Session>>,
    slots: Arc<Semaphore>,
    admission: Arc<admission::Admission>,
    next_id: AtomicU64,
    pub stats: Arc<MediaStats>,
    /// Cancelled by the node's drain or by `shutdown`: every media task ends.
    stop: CancellationToken,
    /// Media's own tasks, which `shutdown` waits for…
    tasks: TaskTracker,
    /// …and which the node's drain waits for too.
    node_tasks: TaskTracker,
}

impl Media {
    /// The routing seam media reaches rooms through.
    pub fn rooms_seam(&self) -> &Arc<dyn Rooms> {
        &self.rooms_seam
    }

    /// Starts the SFU on its UDP port; its tasks end when `drain` is cancelled and are counted
    /// by `tasks` (the node's drain waits for them).
    pub fn start_in(
        rooms: Arc<dyn Rooms>,
        metrics: &crate::metrics::Metrics,
        config: MediaConfig,
        drain: CancellationToken,
        tasks: TaskTracker,
    ) -> std::io::Result<Arc<Media>> {
        let mux = UdpMux::bind(config.udp_addr)?;
        let stats = Arc::new(MediaStats::from_metrics(metrics));
        let relay = config
            .relay_addr
            .map(|a| cascade::Relay::bind(a, &stats))
            .transpose()?;
        let media = Arc::new(Media {
            rooms_seam: rooms,
            mux,
            relay: relay.clone(),
            slots: Arc::new(Semaphore::new(config.max_subscribers)),
            admission: admission::Admission::new(config.shed_lag, metrics.runtime_lag.clone()),
            config,
            rooms: DashMap::new(),
            sessions: DashMap::new(),
            next_id: AtomicU64::new(1),
            stats,
            // A child: `shutdown` stops media without draining the rest of the node.
            stop: drain.child_token(),
            tasks: TaskTracker::new(),
            node_tasks: tasks,
        });
        media.spawn(tasks::janitor(Arc::downgrade(&media)));
        media.spawn(admission::Admission::probe(Arc::downgrade(
            &media.admission,
        )));
        if let Some(relay) = relay {
            media.spawn(cascade::recv_loop(Arc::downgrade(&media), relay));
        }
        Ok(media)
    }

    /// Spawns a media task: it ends when its work is done or on the drain, whichever comes
    /// first, and both media's and the node's trackers count it until then.
    fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let task = async move {
            stop.run_until_cancelled_owned(task).await;
        };
        self.node_tasks.spawn(self.tasks.track_future(task))
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.mux.local_addr()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Media tasks still running (per session, per room, the janitor).
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    pub fn room_media(&self, room: &str) -> Option<Arc<RoomMedia>> {
        self.rooms.get(room).map(|r| r.clone())
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.get(id).map(|s| s.clone())
    }

    fn new_id(&self) -> String {
        format!(
            "{}{}",
            self.next_id.fetch_add(1, Ordering::Relaxed),
            auth::random_id(10)
        )
    }

    /// The media side of a room, created on first use; it follows the room's signals (the
    /// brand on air, sessions to end) and reports which brands have a live feed.
    async fn room_for(self: &Arc<Self>, room: &str) -> Result<Arc<RoomMedia>, MediaError> {
        if let Some(r) = self.rooms.get(room) {
            r.touch();
            return Ok(r.clone());
        }
        let mut signals = self
            .rooms_seam
            .follow_media(room)
            .await
            .map_err(|e| MediaError::from(refusal_of(e)))?;
        // The room tells the brand on air first; the program starts from it, so the first
        // answer about a room already names its brand.
        let on_air = match signals.next().await {
            Some(MediaSignal::OnAir(brand)) => brand,
            Some(other) => {
                signals = futures_util::stream::iter([other]).chain(signals).boxed();
                None
            }
            None => {
                return Err(MediaError::from(Refusal::new(
                    EndReason::RoomUnavailable,
                    format!("room {room} is not available"),
                )))
            }
        };
        let mut created = None;
        let r = self
            .rooms
            .entry(room.to_string())
            .or_insert_with(|| {
                let (r, live) = RoomMedia::new(room, on_air, self.stats.clone());
                created = Some(live);
                r
            })
            .clone();
        // Only the caller that created it starts its tasks; a racing one drops its stream.
        if let Some(live) = created {
            self.stats.rooms.set(self.rooms.len() as i64);
            // Both end when the room's media is dropped (idle), dropping the signals stream.
            let follow = tasks::follow_room(Arc::downgrade(self), Arc::downgrade(&r), signals);
            let report = tasks::report_live_feeds(live, self.rooms_seam.clone(), room.to_string());
            let gone = r.gone.clone();
            self.spawn(async move {
                gone.run_until_cancelled(async move {
                    tokio::join!(follow, report);
                })
                .await;
            });
        }
        Ok(r)
    }

    /// The room a new session goes into, unless it has ended or the node is draining.
    async fn open_room(self: &Arc<Self>, room: &str) -> Result<Arc<RoomMedia>, MediaError> {
        if self.stop.is_cancelled() {
            return Err(shutting_down().into());
        }
        let r = self.room_for(room).await?;
        if r.is_ended() {
            return Err(Refusal::new(EndReason::RoomEnded, "room ended").into());
        }
        Ok(r)
    }

    /// Registers a session that is about to be answered, then attaches it to its room, so a
    /// kick, a revocation or the room's end that comes from then on finds it. Refused (and
    /// closed) if the room refuses it or the node is draining.
    async fn admit(&self, session: Arc<Session>, attach: MediaSession) -> Result<(), MediaError> {
        let (id, room) = (session.id.clone(), session.room.clone());
        match &session.role {
            Role::Publisher { .. } => self.stats.publishers.inc(),
            Role::Viewer { .. } => self.stats.viewers.inc(),
        };
        let room_media = session.room_media.clone();
        self.sessions.insert(id.clone(), session);
        // Dropped as idle between its lookup and now (the sweep saw no session then).
        if !self
            .rooms
            .get(&room)
            .is_some_and(|r| Arc::ptr_eq(&r, &room_media))
        {
            self.close_session(&id).await;
            return Err(MediaError::Unavailable(format!(
                "the media of room {room} was being reset on this server; try again"
            )));
        }
        let refused = match self.rooms_seam.attach_media(&room, attach).await {
            Err(why) => Some(why),
            // `shutdown` may have listed the sessions before this one was registered.
            Ok(()) if self.stop.is_cancelled() => Some(shutting_down()),
            Ok(()) => None,
        };
        let Some(why) = refused else {
            return Ok(());
        };
        self.close_session(&id).await;
        if why.reason == EndReason::RoomEnded {
            self.end_room(&room_media).await;
        }
        Err(why.into())
    }

    /// The outcome of answering an admitted session. If its room ended it meanwhile the
    /// client hears the room's reason (not the closed connection's, nor a 201 for a session
    /// that is gone); a session that could not be answered closes.
    async fn answered(
        &self,
        session: &Session,
        answer: Result<String, MediaError>,
    ) -> Result<String, MediaError> {
        let ended = session.ended_by.lock().clone();
        match (answer, ended) {
            (Ok(sdp), None) => Ok(sdp),
            (Err(e), None) => {
                self.close_session(&session.id).await;
                Err(e)
            }
            (_, Some(why)) => Err(why.into()),
        }
    }

    /// Its room ended a session (a kick, a revoked token, the room's end, a newer publisher
    /// of its brand on another node).
    pub async fn end_session(&self, id: &str, why: &Refusal) {
        if let Some(s) = self.session(id) {
            tracing::info!(session = %id, why = %why.message, "media session ended by its room");
            *s.ended_by.lock() = Some(why.clone());
            self.close_session(id).await;
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
                s.room_media.remove_feeds(brand, &s.id);
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

    /// The room has ended: its program is no longer live, for good, and every media session
    /// still open in it closes (the room names them in its `End`; this also catches one that
    /// was being attached as the room ended).
    async fn end_room(&self, room: &RoomMedia) {
        room.end();
        let ids: Vec<String> = self
            .sessions
            .iter()
            .filter(|s| s.room == room.id)
            .map(|s| s.id.clone())
            .collect();
        let why = Refusal::new(EndReason::RoomEnded, "room ended");
        for id in ids {
            self.end_session(&id, &why).await;
        }
    }

    /// The program state of a room (404 for an unknown room).
    pub async fn program_state(self: &Arc<Self>, room: &str) -> Result<ProgramState, MediaError> {
        let r = self.room_for(room).await?;
        if !r.is_ended() {
            // A room that ended with no media session open had no `End` to send: ask it.
            let reply = self
                .rooms_seam
                .host(room, HostCommand::GetRoom)
                .await
                .map_err(|e| MediaError::from(refusal_of(e)))?;
            if let HostReply::Room(s) = reply {
                if s.record.state == RoomState::Ended {
                    self.end_room(&r).await;
                }
            }
        }
        Ok(r.program())
    }

    /// Stops media: every task is told to end, every session closes, then it waits (a few
    /// seconds at most) for its tasks and closes the shared socket.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let ids: Vec<String> = self.sessions.iter().map(|s| s.key().clone()).collect();
        for id in ids {
            self.close_session(&id).await;
        }
        self.rooms.clear();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.tasks.len(),
                "media tasks still running after the drain"
            );
        }
        self.mux.close();
    }
}

fn shutting_down() -> Refusal {
    Refusal::new(EndReason::ShuttingDown, "the server is shutting down")
}
