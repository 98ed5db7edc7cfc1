//! The local implementation of [`Rooms`]: this node's rooms, each loaded from the store on
//! first use and run by one owner task fed by a bounded mailbox (`owner.rs`), supervised
//! (`supervisor.rs`), with a task that releases acknowledgements as their writes become
//! durable (`acker.rs`). An ended room's task stops after a grace period.

mod acker;
mod owner;
mod supervisor;

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::model::{
    now_ms, AudienceClass, ClientMessage, EndReason, HostCommand, HostReply, JoinRequest,
    MediaSession, NewRoom, NodeTag, ProtocolError, Refusal, RoomRecord, RoomState, RoomSummary,
    Secret, SessionId, StoreOp, WatchEvent,
};
use crate::room::core::Room;
use crate::rooms::ownership::Ownership;
use crate::rooms::{refusal_of, MediaSignal, Rooms, RoomsError, SessionSink, Text};
use crate::store::{RoomFilter, Store};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use owner::RoomMsg;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Room mailbox capacity. Senders wait when it is full (back-pressure on that viewer's
/// reads or that host call), the room never does.
const MAILBOX: usize = 8192;
/// Host console stream buffer; a console that does not read loses events, counted.
const WATCH_BUFFER: usize = 1024;
/// Signals buffered per media follower of a room (brand switches, ended sessions).
const MEDIA_SIGNALS: usize = 1024;
/// Store submissions of one room in flight at once. Each holds up to a batch of inputs'
/// writes; with all of them waiting on the store the room takes no further input.
pub const WRITES_IN_FLIGHT: usize = 64;
/// Room ids are short; anything longer is not looked up in the store.
const MAX_ROOM_ID: usize = 64;

type HostReplyTx = oneshot::Sender<Result<HostReply, RoomsError>>;

/// Frames are JSON rendered by the room, so always UTF-8; anything else is a bug, logged and
/// not sent.
fn text(frame: Bytes) -> Option<Text> {
    match Text::try_from(frame) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "a rendered frame is not UTF-8; not sent");
            None
        }
    }
}

/// An answer for one session, sent at once; a session that cannot take it is closed.
fn deliver_now(sink: &SessionSink, frame: Bytes, metrics: &Metrics) {
    let Some(frame) = text(frame) else { return };
    if sink.offer_now(frame).is_err() {
        metrics.queue_drops.inc();
        metrics.slow_consumer_closes.inc();
        // The session's tasks end and tell the room it left.
        sink.close(
            Refusal::new(EndReason::SlowConsumer, "slow consumer"),
            false,
        );
    }
}

/// Who is attached to a room, kept beside its owner task so that a restarted owner can take
/// them all back (the owner's own copy dies with it).
#[derive(Default)]
struct Attached {
    sessions: DashMap<SessionId, (JoinRequest, SessionSink)>,
    /// Sessions other nodes serve: after a restart they are told to reconnect (their node
    /// renders events by sequence number, which a new incarnation starts afresh).
    remote: DashMap<SessionId, SessionSink>,
    media: DashMap<String, MediaSession>,
    followers: Mutex<Vec<mpsc::Sender<MediaSignal>>>,
    watchers: Mutex<Vec<mpsc::Sender<WatchEvent>>>,
}

/// A handle on a room's owner task.
#[derive(Clone)]
struct RoomHandle {
    id: String,
    /// The viewer-token key; immutable for the room's life, so read without a round trip.
    token_key: Secret,
    tx: mpsc::Sender<RoomMsg>,
    attached: Arc<Attached>,
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames queued per viewer before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Audience-log heartbeat interval per viewer.
    pub heartbeat_ms: i64,
    /// This node's tag in session ids (from its node id).
    pub node: NodeTag,
    /// This node's id (`--node-id`), reported as the owner of the rooms it runs.
    pub node_id: String,
    /// How long an ended room with nobody attached stays loaded before its task stops.
    pub ended_room_grace: Duration,
}

/// What the room tasks share with the registry.
struct Shared {
    rooms: DashMap<String, RoomHandle>,
    /// Token keys of rooms another node runs (immutable for a room's life).
    token_keys: DashMap<String, Secret>,
    /// One lock per room being loaded, so two first users load it once.
    loading: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Rooms left down after repeated panics, until when.
    failed: DashMap<String, Instant>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Whether this node may run a room (always, on a single node; by lease in a cluster).
    ownership: Arc<dyn Ownership>,
    metrics: Arc<Metrics>,
    config: HubConfig,
    /// Cancelled when the node drains: every room closes its sessions and stops.
    stop: CancellationToken,
    /// Every room task; the drain waits for them.
    tasks: TaskTracker,
}

impl Shared {
    /// An ended room's task is stopping: later users load it again.
    fn retire(&self, handle: &RoomHandle) {
        self.rooms
            .remove_if(&handle.id, |_, h| h.tx.same_channel(&handle.tx));
        self.metrics.rooms.set(self.rooms.len() as i64);
        tracing::debug!(room = %handle.id, "ended room unloaded");
    }

    /// A room that keeps failing is left down until `until`; everyone attached is told.
    fn fail(&self, handle: &RoomHandle, until: Instant) {
        self.rooms
            .remove_if(&handle.id, |_, h| h.tx.same_channel(&handle.tx));
        self.failed.insert(handle.id.clone(), until);
        self.metrics.rooms.set(self.rooms.len() as i64);
        for e in handle.attached.sessions.iter() {
            e.value().1.close(supervisor::down(&handle.id), true);
        }
        for e in handle.attached.remote.iter() {
            e.value().close(supervisor::down(&handle.id), true);
        }
    }
}

/// All rooms of the node.
pub struct Hub {
    shared: Arc<Shared>,
    next_session: AtomicU64,
}

impl Hub {
    /// A hub over a store; rooms are loaded on first use. Room tasks stop when `stop` is
    /// cancelled; `tasks` tracks them.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        ownership: Arc<dyn Ownership>,
        metrics: Arc<Metrics>,
        config: HubConfig,
        stop: CancellationToken,
        tasks: TaskTracker,
    ) -> Arc<Hub> {
        metrics.rooms.set(0);
        Arc::new(Hub {
            shared: Arc::new(Shared {
                rooms: DashMap::new(),
                token_keys: DashMap::new(),
                loading: DashMap::new(),
                failed: DashMap::new(),
                store,
                bus,
                ownership,
                metrics,
                config,
                stop,
                tasks,
            }),
            next_session: AtomicU64::new(1),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The ids of the rooms loaded on this node.
    pub fn loaded_rooms(&self) -> Vec<String> {
        self.shared.rooms.iter().map(|r| r.key().clone()).collect()
    }

    /// The room's handle, loading the room from the store if this node has not yet.
    async fn room(&self, id: &str) -> Result<RoomHandle, RoomsError> {
        if let Some(h) = self.shared.rooms.get(id) {
            return Ok(h.clone());
        }
        if id.is_empty() || id.len() > MAX_ROOM_ID {
            return Err(RoomsError::RoomNotFound(id.to_string()));
        }
        if let Some(until) = self.shared.failed.get(id).map(|u| *u) {
            if Instant::now() < until {
                return Err(RoomsError::Unavailable(
                    id.to_string(),
                    "it failed repeatedly and is kept down for a minute",
                ));
            }
            self.shared.failed.remove(id);
        }
        if self.shared.stop.is_cancelled() {
            return Err(RoomsError::Unavailable(
                id.to_string(),
                "the server is shutting down",
            ));
        }
        let lock = self
            .shared
            .loading
            .entry(id.to_string())
            .or_default()
            .clone();
        let _loading = lock.lock().await;
        if let Some(h) = self.shared.rooms.get(id) {
            return Ok(h.clone());
        }
        let result = self.take_and_load(id).await;
        self.shared.loading.remove(id);
        result
    }

    /// Takes the room for this node, then loads it (in that order: once the room is ours, no
    /// write of a former owner can land, so what is loaded is final) and starts it.
    async fn take_and_load(&self, id: &str) -> Result<RoomHandle, RoomsError> {
        let tenure = self.shared.ownership.acquire(id).await?;
        match supervisor::load(&self.shared, id).await {
            Ok(Some(room)) => Ok(supervisor::start(&self.shared, room, tenure)),
            Ok(None) => {
                tenure.release().await;
                Err(RoomsError::RoomNotFound(id.to_string()))
            }
            Err(e) => {
                tenure.release().await;
                Err(e)
            }
        }
    }

    /// Sends to a room's owner. A room that stopped in between (an ended room unloaded, a
    /// restart) is looked up again once.
    async fn send(&self, id: &str, mut msg: RoomMsg) -> Result<RoomHandle, RoomsError> {
        for _ in 0..2 {
            let h = self.room(id).await?;
            match h.tx.send(msg).await {
                Ok(()) => return Ok(h),
                Err(mpsc::error::SendError(m)) => {
                    msg = m;
                    self.shared
                        .rooms
                        .remove_if(id, |_, x| x.tx.same_channel(&h.tx));
                }
            }
        }
        Err(RoomsError::Unavailable(id.to_string(), "it is restarting"))
    }

    async fn ask<T>(
        &self,
        id: &str,
        msg: impl FnOnce(oneshot::Sender<T>) -> RoomMsg,
    ) -> Result<(RoomHandle, T), RoomsError> {
        let (tx, rx) = oneshot::channel();
        let h = self.send(id, msg(tx)).await?;
        let answer = rx
            .await
            .map_err(|_| RoomsError::Unavailable(id.to_string(), "it stopped; try again"))?;
        Ok((h, answer))
    }

    /// After the drain: everything submitted is durable.
    pub async fn drained(&self) {
        self.shared.rooms.clear();
        if let Err(e) = self.shared.store.flush().await {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
    }

    /// Whether this node runs the room (loading it, and taking it if nobody holds it), or
    /// who does (`RoomsError::NotOwned`).
    pub async fn locate(&self, room: &str) -> Result<(), RoomsError> {
        self.room(room).await.map(|_| ())
    }

    /// Whether a media session is attached to a room this node runs.
    pub fn media_attached(&self, room: &str, id: &str) -> bool {
        self.shared
            .rooms
            .get(room)
            .is_some_and(|h| h.attached.media.contains_key(id))
    }

    /// Whether the room is running on this node now (no loading, no lease).
    pub fn runs(&self, room: &str) -> bool {
        self.shared.rooms.contains_key(room)
    }

    /// A session served by another node joins a room this node runs. Its private frames go
    /// to `sink` (the relay to that node); the answer carries its first frames. The outer
    /// error says the room is not here (or not at all); the inner one is the room's refusal.
    pub async fn join_remote(
        &self,
        room: &str,
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
    ) -> Result<Result<crate::rooms::RemoteJoined, Refusal>, RoomsError> {
        let kept = sink.clone();
        let (h, answer) = self
            .ask(room, |reply| RoomMsg::JoinRemote {
                session,
                req,
                sink,
                reply,
            })
            .await?;
        if answer.is_ok() {
            h.attached.remote.insert(session, kept);
        }
        Ok(answer)
    }

    /// The host console's stream of a room this node runs, `WatchEvent::Ended` included when
    /// the room ends; a stream that stops without it was cut off (the room stepped down).
    pub async fn watch_until_gone(
        &self,
        room: &str,
    ) -> Result<ReceiverStream<WatchEvent>, RoomsError> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let h = self.send(room, RoomMsg::Watch { tx: tx.clone() }).await?;
        let mut w = h.attached.watchers.lock();
        w.retain(|w| !w.is_closed());
        w.push(tx);
        Ok(ReceiverStream::new(rx))
    }

    /// Closes every session other nodes serve (they reconnect): after this node's link to
    /// them was interrupted and frames for them may have been lost.
    pub fn close_remote_sessions(&self, why: Refusal) {
        for h in self.shared.rooms.iter() {
            for e in h.attached.remote.iter() {
                e.value().close(why.clone(), true);
            }
        }
    }

    /// A session served by another node left (or was closed there).
    pub async fn leave_remote(&self, room: &str, session: SessionId) {
        self.remove_remote(room, session, None).await
    }

    /// Takes a session another node serves out of the room, telling that node why (its
    /// close is relayed): the node stopped answering, and must not keep serving a viewer
    /// whose messages would go nowhere.
    pub async fn drop_remote(&self, room: &str, session: SessionId, why: Refusal) {
        self.remove_remote(room, session, Some(why)).await
    }

    async fn remove_remote(&self, room: &str, session: SessionId, why: Option<Refusal>) {
        if let Some(h) = self.shared.rooms.get(room).map(|h| h.clone()) {
            if let (Some((_, sink)), Some(why)) = (h.attached.remote.remove(&session), why) {
                sink.close(why, false);
            }
            let _ = h.tx.send(RoomMsg::Leave { session }).await;
        }
    }

    /// For tests of supervision only: makes the room's owner task panic.
    #[doc(hidden)]
    pub async fn inject_panic(&self, room: &str) -> Result<(), RoomsError> {
        self.send(room, RoomMsg::Panic).await.map(|_| ())
    }
}

#[async_trait]
impl Rooms for Hub {
    fn new_session_id(&self) -> SessionId {
        SessionId::new(
            self.shared.config.node,
            self.next_session.fetch_add(1, Ordering::Relaxed),
        )
    }

    async fn create_room(&self, new: NewRoom) -> Result<RoomSummary, RoomsError> {
        let record: RoomRecord = Room::create(new, now_ms())?;
        self.shared
            .store
            .submit(vec![StoreOp::PutRoom(Box::new(record.clone()))])
            .wait()
            .await
            .map_err(|e| RoomsError::Store(Arc::new(e)))?;
        // Loaded now: the host goes on to set it up.
        let h = self.room(&record.id).await?;
        let (_, reply) = self
            .ask(&h.id, |reply| RoomMsg::Host {
                cmd: HostCommand::GetRoom,
                reply,
            })
            .await?;
        match reply? {
            HostReply::Room(s) => Ok(*s),
            _ => Err(RoomsError::Unavailable(h.id, "it answered out of turn")),
        }
    }

    async fn list_rooms(&self, state: Option<RoomState>) -> Result<Vec<RoomSummary>, RoomsError> {
        let filter = RoomFilter {
            state,
            ..RoomFilter::default()
        };
        let records = self
            .shared
            .store
            .list_rooms(filter)
            .await
            .map_err(|e| RoomsError::Store(Arc::new(e)))?;
        let mut rooms = Vec::with_capacity(records.len());
        for record in records {
            // A loaded room answers with its live counts; another is read from the store
            // without loading it.
            if self.shared.rooms.contains_key(&record.id) {
                if let Ok(HostReply::Room(s)) = self.host(&record.id, HostCommand::GetRoom).await {
                    if state.is_none_or(|st| st == s.record.state) {
                        rooms.push(*s);
                    }
                    continue;
                }
            }
            let brands = match self.shared.store.load_room(&record.id).await {
                Ok(Some(l)) => {
                    let mut b = l.brands;
                    b.sort_by_key(|b| b.position);
                    b
                }
                _ => Vec::new(),
            };
            rooms.push(RoomSummary {
                record,
                brands,
                online: 0,
                peak_online: 0,
                owner_node: None,
            });
        }
        Ok(rooms)
    }

    async fn token_key(&self, room: &str) -> Result<Secret, RoomsError> {
        match self.room(room).await {
            Ok(h) => Ok(h.token_key),
            // Another node runs it: its key is read from the store once.
            Err(RoomsError::NotOwned(_)) => {
                if let Some(k) = self.shared.token_keys.get(room) {
                    return Ok(k.clone());
                }
                let loaded = self
                    .shared
                    .store
                    .load_room(room)
                    .await
                    .map_err(|e| RoomsError::Store(Arc::new(e)))?;
                match loaded.and_then(|l| l.record) {
                    Some(r) => {
                        self.shared
                            .token_keys
                            .insert(room.to_string(), r.token_key.clone());
                        Ok(r.token_key)
                    }
                    None => Err(RoomsError::RoomNotFound(room.to_string())),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn join(
        &self,
        room: &str,
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
    ) -> Result<AudienceClass, Refusal> {
        let kept = (req.clone(), sink.clone());
        let (h, answer) = self
            .ask(room, |reply| RoomMsg::Join {
                session,
                req,
                sink,
                reply,
            })
            .await
            .map_err(refusal_of)?;
        if answer.is_ok() {
            h.attached.sessions.insert(session, kept);
        }
        answer
    }

    async fn leave(&self, room: &str, session: SessionId) {
        if let Some(h) = self.shared.rooms.get(room).map(|h| h.clone()) {
            h.attached.sessions.remove(&session);
            let _ = h.tx.send(RoomMsg::Leave { session }).await;
        }
    }

    async fn viewer_message(
        &self,
        room: &str,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    ) {
        if let Some(h) = self.shared.rooms.get(room).map(|h| h.clone()) {
            let _ = h.tx.send(RoomMsg::Client { session, msg }).await;
        }
    }

    async fn host(&self, room: &str, cmd: HostCommand) -> Result<HostReply, RoomsError> {
        let reply = self
            .ask(room, |reply| RoomMsg::Host { cmd, reply })
            .await?
            .1;
        match reply {
            // This node runs the room: it says so (the summary may cross to another node).
            Ok(HostReply::Room(mut s)) => {
                s.owner_node = Some(self.shared.config.node_id.clone());
                Ok(HostReply::Room(s))
            }
            other => other,
        }
    }

    async fn watch(&self, room: &str) -> Result<BoxStream<'static, WatchEvent>, RoomsError> {
        Ok(self
            .watch_until_gone(room)
            .await?
            .take_while(|e| std::future::ready(!matches!(e, WatchEvent::Ended)))
            .boxed())
    }

    async fn attach_media(&self, room: &str, media: MediaSession) -> Result<(), Refusal> {
        let kept = media.clone();
        let (h, answer) = self
            .ask(room, |reply| RoomMsg::AttachMedia { media, reply })
            .await
            .map_err(refusal_of)?;
        if answer.is_ok() {
            h.attached.media.insert(kept.id.clone(), kept);
        }
        answer
    }

    async fn detach_media(&self, room: &str, id: &str) {
        if let Some(h) = self.shared.rooms.get(room).map(|h| h.clone()) {
            h.attached.media.remove(id);
            let _ = h.tx.send(RoomMsg::DetachMedia { id: id.to_string() }).await;
        }
    }

    async fn set_live_feeds(&self, room: &str, brands: BTreeSet<String>) {
        let _ = self.send(room, RoomMsg::LiveFeeds { brands }).await;
    }

    async fn follow_media(
        &self,
        room: &str,
    ) -> Result<BoxStream<'static, MediaSignal>, RoomsError> {
        let (tx, rx) = mpsc::channel(MEDIA_SIGNALS);
        let h = self
            .send(room, RoomMsg::FollowMedia { tx: tx.clone() })
            .await?;
        let mut f = h.attached.followers.lock();
        f.retain(|f| !f.is_closed());
        f.push(tx);
        Ok(ReceiverStream::new(rx).boxed())
    }
}
