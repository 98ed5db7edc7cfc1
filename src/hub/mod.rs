//! The local implementation of [`Rooms`]: this node's rooms, one owner task each, fed by a
//! bounded mailbox (`owner.rs`), with a task that releases acknowledgements as their writes
//! become durable (`acker.rs`).

mod acker;
mod owner;

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::model::{
    now_ms, AudienceClass, ClientMessage, EndReason, HostCommand, HostReply, JoinRequest,
    MediaSession, NewRoom, NodeTag, ProtocolError, Refusal, RoomRecord, RoomState, RoomSummary,
    SessionId, StoreOp, WatchEvent,
};
use crate::room::core::Room;
use crate::rooms::{MediaSignal, Rooms, RoomsError, SessionSink, Text};
use crate::store::Store;
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use owner::{RoomMsg, RoomOwner};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Room mailbox capacity. Senders wait when it is full (back-pressure on that viewer's
/// reads or that host call), the room never does.
const MAILBOX: usize = 8192;
/// Host console stream buffer; a console that does not read loses events, counted.
const WATCH_BUFFER: usize = 1024;
/// Signals buffered per media follower of a room (brand switches, ended sessions).
const MEDIA_SIGNALS: usize = 1024;
/// Chat messages reloaded per room at start-up (welcome snapshot, deletable by the host).
const RECENT_CHAT_ON_LOAD: u32 = 200;
/// Store submissions of one room in flight at once. Each holds up to a batch of inputs'
/// writes; with all of them waiting on the store the room takes no further input.
pub const WRITES_IN_FLIGHT: usize = 64;

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

/// A handle on a room's owner task.
#[derive(Clone)]
struct RoomHandle {
    id: String,
    /// The viewer-token key; immutable for the room's life, so read without a round trip.
    token_key: Arc<str>,
    tx: mpsc::Sender<RoomMsg>,
}

impl RoomHandle {
    async fn send(&self, msg: RoomMsg) -> Result<(), RoomsError> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| RoomsError::Unavailable(self.id.clone(), "it is shutting down"))
    }

    async fn ask<T>(
        &self,
        msg: impl FnOnce(oneshot::Sender<T>) -> RoomMsg,
    ) -> Result<T, RoomsError> {
        let (tx, rx) = oneshot::channel();
        self.send(msg(tx)).await?;
        rx.await
            .map_err(|_| RoomsError::Unavailable(self.id.clone(), "it is shutting down"))
    }
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames queued per viewer before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Audience-log heartbeat interval per viewer.
    pub heartbeat_ms: i64,
    /// This node's tag in session ids (from its node id).
    pub node: NodeTag,
}

/// All rooms of the node.
pub struct Hub {
    rooms: DashMap<String, RoomHandle>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    config: HubConfig,
    next_session: AtomicU64,
    epoch: String,
    /// Cancelled when the node drains: every room closes its sessions and stops.
    stop: CancellationToken,
    /// Every room task (owner and acker); the drain waits for them.
    tasks: TaskTracker,
}

impl Hub {
    /// Loads every room from the store and starts its owner task. Room tasks stop when
    /// `stop` is cancelled; `tasks` tracks them.
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        config: HubConfig,
        stop: CancellationToken,
        tasks: TaskTracker,
    ) -> Result<Arc<Hub>, RoomsError> {
        // Distinguishes this process's sequence numbers from a previous one's.
        let epoch = format!("{:x}", now_ms());
        let hub = Arc::new(Hub {
            rooms: DashMap::new(),
            store: store.clone(),
            bus,
            metrics,
            config,
            next_session: AtomicU64::new(1),
            epoch,
            stop,
            tasks,
        });
        let store_err = |e| RoomsError::Store(Arc::new(e));
        let loaded = store.load_rooms().await.map_err(store_err)?;
        let now = now_ms();
        for l in loaded {
            if let Some(mut room) =
                Room::restore(l, hub.epoch.clone(), hub.config.heartbeat_ms, now)
            {
                let chat = store
                    .recent_chat(room.id(), RECENT_CHAT_ON_LOAD)
                    .await
                    .map_err(store_err)?;
                room.restore_chat(chat);
                if room.summary().record.state != RoomState::Ended {
                    let watched = store.watch_time(room.id()).await.map_err(store_err)?;
                    room.restore_watch_time(watched);
                }
                hub.spawn(room);
            }
        }
        Ok(hub)
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The ids of the rooms loaded on this node.
    pub fn loaded_rooms(&self) -> Vec<String> {
        self.rooms.iter().map(|r| r.key().clone()).collect()
    }

    fn room(&self, id: &str) -> Result<RoomHandle, RoomsError> {
        self.rooms
            .get(id)
            .map(|r| r.clone())
            .ok_or_else(|| RoomsError::RoomNotFound(id.to_string()))
    }

    fn spawn(&self, mut room: Room) {
        room.set_watched(false);
        let (tx, rx) = mpsc::channel(MAILBOX);
        let weak = tx.downgrade();
        let handle = RoomHandle {
            id: room.id().to_string(),
            token_key: Arc::from(room.record().token_key.as_str()),
            tx,
        };
        let span = tracing::info_span!("room", room = %handle.id);
        self.rooms.insert(handle.id.clone(), handle);
        self.metrics.rooms.set(self.rooms.len() as i64);
        // Bounded by the slots: at most WRITES_IN_FLIGHT batches are ever queued here.
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let in_flight = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
        let acker = self
            .tasks
            .spawn(acker::acker(acks_rx, weak, self.metrics.clone()).instrument(span.clone()));
        let owner = RoomOwner::new(
            room,
            self.store.clone(),
            self.bus.clone(),
            self.metrics.clone(),
            acks,
            in_flight,
        );
        let stop = self.stop.clone();
        self.tasks.spawn(
            async move {
                owner.run(rx, stop).await;
                // The owner dropped its sender: the acker finishes what is in flight, then ends.
                let _ = acker.await;
            }
            .instrument(span),
        );
    }

    /// Waits until every room has stopped (after `stop` was cancelled) and everything
    /// submitted is durable.
    pub async fn drained(&self) {
        self.rooms.clear();
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
    }
}

#[async_trait]
impl Rooms for Hub {
    fn new_session_id(&self) -> SessionId {
        SessionId::new(
            self.config.node,
            self.next_session.fetch_add(1, Ordering::Relaxed),
        )
    }

    async fn create_room(&self, new: NewRoom) -> Result<RoomSummary, RoomsError> {
        let record: RoomRecord = Room::create(new, now_ms())?;
        self.store
            .submit(vec![StoreOp::PutRoom(Box::new(record.clone()))])
            .wait()
            .await
            .map_err(|e| RoomsError::Store(Arc::new(e)))?;
        let room = Room::new(record, self.epoch.clone(), self.config.heartbeat_ms);
        let summary = room.summary();
        self.spawn(room);
        Ok(summary)
    }

    async fn list_rooms(&self, state: Option<RoomState>) -> Result<Vec<RoomSummary>, RoomsError> {
        let mut rooms = Vec::new();
        for id in self.loaded_rooms() {
            // A room that shut down in between is skipped.
            if let Ok(HostReply::Room(s)) = self.host(&id, HostCommand::GetRoom).await {
                if state.is_none_or(|st| st == s.record.state) {
                    rooms.push(*s);
                }
            }
        }
        rooms.sort_by_key(|r| std::cmp::Reverse(r.record.created_ms));
        Ok(rooms)
    }

    async fn token_key(&self, room: &str) -> Result<Arc<str>, RoomsError> {
        Ok(self.room(room)?.token_key)
    }

    async fn join(
        &self,
        room: &str,
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
    ) -> Result<AudienceClass, Refusal> {
        let h = self.room(room).map_err(crate::rooms::refusal_of)?;
        h.ask(|reply| RoomMsg::Join {
            session,
            req,
            sink,
            reply,
        })
        .await
        .map_err(crate::rooms::refusal_of)?
    }

    async fn leave(&self, room: &str, session: SessionId) {
        if let Ok(h) = self.room(room) {
            let _ = h.send(RoomMsg::Leave { session }).await;
        }
    }

    async fn viewer_message(
        &self,
        room: &str,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    ) {
        if let Ok(h) = self.room(room) {
            let _ = h.send(RoomMsg::Client { session, msg }).await;
        }
    }

    async fn host(&self, room: &str, cmd: HostCommand) -> Result<HostReply, RoomsError> {
        self.room(room)?
            .ask(|reply| RoomMsg::Host { cmd, reply })
            .await?
    }

    async fn watch(&self, room: &str) -> Result<BoxStream<'static, WatchEvent>, RoomsError> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        self.room(room)?.send(RoomMsg::Watch { tx }).await?;
        Ok(ReceiverStream::new(rx)
            .take_while(|e| std::future::ready(!matches!(e, WatchEvent::Ended)))
            .boxed())
    }

    async fn attach_media(&self, room: &str, media: MediaSession) -> Result<(), Refusal> {
        let h = self.room(room).map_err(crate::rooms::refusal_of)?;
        h.ask(|reply| RoomMsg::AttachMedia { media, reply })
            .await
            .map_err(crate::rooms::refusal_of)?
    }

    async fn detach_media(&self, room: &str, id: &str) {
        if let Ok(h) = self.room(room) {
            let _ = h.send(RoomMsg::DetachMedia { id: id.to_string() }).await;
        }
    }

    async fn set_live_feeds(&self, room: &str, brands: BTreeSet<String>) {
        if let Ok(h) = self.room(room) {
            let _ = h.send(RoomMsg::LiveFeeds { brands }).await;
        }
    }

    async fn follow_media(
        &self,
        room: &str,
    ) -> Result<BoxStream<'static, MediaSignal>, RoomsError> {
        let (tx, rx) = mpsc::channel(MEDIA_SIGNALS);
        self.room(room)?.send(RoomMsg::FollowMedia { tx }).await?;
        Ok(ReceiverStream::new(rx).boxed())
    }
}
