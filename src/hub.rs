//! The rooms of this node: a registry, and one owner task per room fed by a bounded mailbox.

use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::model::{
    AudienceClass, ClientMessage, EndReason, HostCommand, HostReply, JoinRequest, NewRoom, NodeTag,
    ProtocolError, Refusal, RoomError, RoomRecord, RoomState, RoomSummary, SessionId, StoreOp,
    WatchEvent,
};
use crate::room::core::{Output, Room, Undo};
use crate::room::event::envelope;
use crate::store::Store;
use bytes::Bytes;
use dashmap::DashMap;
use foldhash::{HashMap, HashMapExt};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

/// Room mailbox capacity. Senders wait when it is full (back-pressure on that viewer's
/// reads or that host call), the room never does.
const MAILBOX: usize = 8192;
/// Host console stream buffer; a console that does not read loses events, counted.
const WATCH_BUFFER: usize = 1024;
/// Chat messages reloaded per room at start-up (welcome snapshot, deletable by the host).
const RECENT_CHAT_ON_LOAD: u32 = 200;
/// How often a room runs its periodic work.
const TICK: Duration = Duration::from_millis(250);
/// Inputs a room applies before handing their writes to the store as one submission.
const BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("room {0} not found")]
    RoomNotFound(String),
    #[error("room {0} is shutting down")]
    Unavailable(String),
    #[error("the store failed: {0}")]
    Store(String),
}

pub use crate::model::now_ms;

/// How the room asks a session to close. Set once; the session task reads it.
#[derive(Default)]
pub struct CloseSignal {
    notify: Notify,
    reason: Mutex<Option<CloseRequest>>,
}

#[derive(Debug, Clone)]
pub struct CloseRequest {
    pub why: Refusal,
    /// Send what is already queued first (a kick's explanation); not for slow consumers.
    pub drain: bool,
}

impl CloseSignal {
    pub fn request(&self, req: CloseRequest) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some(req);
            // Both the reader and the writer of the session wait on this.
            self.notify.notify_waiters();
        }
    }

    pub async fn wait(&self) -> CloseRequest {
        loop {
            // Registered before checking, so a request in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.reason.lock().clone() {
                return r;
            }
            notified.await;
        }
    }

    pub fn get(&self) -> Option<CloseRequest> {
        self.reason.lock().clone()
    }
}

/// A frame as a session's writer takes it: checked as UTF-8 once per event and class, then
/// shared by every viewer of the class by reference count (the socket writes it as is).
pub type Text = axum::extract::ws::Utf8Bytes;

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

/// The room's side of a session: its bounded queue and close signal.
#[derive(Clone)]
pub struct SessionLink {
    pub frames: mpsc::Sender<Text>,
    pub close: Arc<CloseSignal>,
    /// Wakes the session's writer out of its coalescing wait once the queue is half full, so
    /// that waiting to batch never turns a viewer who keeps up into a slow consumer.
    pub urge: Arc<tokio::sync::Notify>,
}

/// The session's queue is full: it did not keep up.
pub struct QueueFull;

impl SessionLink {
    /// Queues a frame without waiting.
    pub fn offer(&self, frame: Text) -> Result<(), QueueFull> {
        match self.frames.try_send(frame) {
            Ok(()) => {
                if self.frames.capacity() < self.frames.max_capacity() / 2 {
                    self.urge.notify_one();
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
            // The session is gone; the room hears of it through its leave.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }
}

enum RoomMsg {
    Join {
        session: SessionId,
        req: JoinRequest,
        link: SessionLink,
        reply: oneshot::Sender<Result<AudienceClass, Refusal>>,
    },
    Leave {
        session: SessionId,
    },
    Client {
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    },
    Host {
        cmd: HostCommand,
        reply: oneshot::Sender<Result<HostReply, HubError>>,
    },
    Watch {
        tx: mpsc::Sender<WatchEvent>,
    },
    Drain {
        done: oneshot::Sender<()>,
    },
    /// A write the room acknowledged after durability failed.
    Undo {
        undo: Undo,
    },
    /// May this token id use the room's media (room not ended, token not kicked)?
    Admits {
        jti: String,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// The brands whose presenter feed is live (from the media module).
    LiveFeeds {
        brands: std::collections::BTreeSet<String>,
    },
}

/// A handle on a room's owner task.
#[derive(Clone)]
pub struct RoomHandle {
    pub id: String,
    /// The viewer-token key; immutable for the room's life, so checked without a round trip.
    pub token_key: Arc<str>,
    /// The brand on air, kept current by the owner task (media follows it).
    on_air: watch::Receiver<Option<String>>,
    /// Count of refused token ids; changes on every kick.
    kicks: watch::Receiver<usize>,
    tx: mpsc::Sender<RoomMsg>,
}

impl RoomHandle {
    async fn send(&self, msg: RoomMsg) -> Result<(), HubError> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| HubError::Unavailable(self.id.clone()))
    }

    pub async fn join(
        &self,
        session: SessionId,
        req: JoinRequest,
        link: SessionLink,
    ) -> Result<AudienceClass, Refusal> {
        let (reply, rx) = oneshot::channel();
        let unavailable = || Refusal::new(EndReason::RoomUnavailable, "room is shutting down");
        self.send(RoomMsg::Join {
            session,
            req,
            link,
            reply,
        })
        .await
        .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    pub async fn leave(&self, session: SessionId) {
        let _ = self.send(RoomMsg::Leave { session }).await;
    }

    pub async fn client(&self, session: SessionId, msg: Result<ClientMessage, ProtocolError>) {
        let _ = self.send(RoomMsg::Client { session, msg }).await;
    }

    /// Runs a host command; writes are durable before this returns.
    pub async fn host(&self, cmd: HostCommand) -> Result<HostReply, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send(RoomMsg::Host { cmd, reply }).await?;
        rx.await
            .map_err(|_| HubError::Unavailable(self.id.clone()))?
    }

    /// Checks a token id against the room's rules for joining (ended room, kicked tokens).
    pub async fn admits(&self, jti: &str) -> Result<(), Refusal> {
        let (reply, rx) = oneshot::channel();
        let unavailable = || Refusal::new(EndReason::RoomUnavailable, "room is shutting down");
        self.send(RoomMsg::Admits {
            jti: jti.to_string(),
            reply,
        })
        .await
        .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }

    /// Tells the room which brands have a live presenter feed (viewers get `program`).
    pub async fn set_live_feeds(&self, brands: std::collections::BTreeSet<String>) {
        let _ = self.send(RoomMsg::LiveFeeds { brands }).await;
    }

    /// Changes whenever a token is kicked: holders of tokens outside the room's own sessions
    /// (media) check theirs again with `admits`.
    pub fn kicks(&self) -> watch::Receiver<usize> {
        self.kicks.clone()
    }

    /// Follows the brand on air: the current value at once, then every change.
    pub fn on_air(&self) -> watch::Receiver<Option<String>> {
        self.on_air.clone()
    }

    pub async fn watch(&self) -> Result<mpsc::Receiver<WatchEvent>, HubError> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        self.send(RoomMsg::Watch { tx }).await?;
        Ok(rx)
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
    tasks: Mutex<Vec<JoinHandle<()>>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    config: HubConfig,
    next_session: AtomicU64,
    node: NodeTag,
    epoch: String,
}

impl Hub {
    /// Loads every room from the store and starts its owner task.
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        config: HubConfig,
    ) -> Result<Arc<Hub>, HubError> {
        // Distinguishes this process's sequence numbers from a previous one's.
        let epoch = format!("{:x}", now_ms());
        let hub = Arc::new(Hub {
            rooms: DashMap::new(),
            tasks: Mutex::new(Vec::new()),
            store: store.clone(),
            bus,
            metrics,
            next_session: AtomicU64::new(1),
            node: config.node,
            config,
            epoch,
        });
        let loaded = store
            .load_rooms()
            .await
            .map_err(|e| HubError::Store(e.to_string()))?;
        let now = now_ms();
        for l in loaded {
            if let Some(mut room) =
                Room::restore(l, hub.epoch.clone(), hub.config.heartbeat_ms, now)
            {
                let chat = store
                    .recent_chat(room.id(), RECENT_CHAT_ON_LOAD)
                    .await
                    .map_err(|e| HubError::Store(e.to_string()))?;
                room.restore_chat(chat);
                if room.summary().record.state != RoomState::Ended {
                    let watched = store
                        .watch_time(room.id())
                        .await
                        .map_err(|e| HubError::Store(e.to_string()))?;
                    room.restore_watch_time(watched);
                }
                hub.spawn(room);
            }
        }
        Ok(hub)
    }

    pub fn next_session_id(&self) -> SessionId {
        SessionId::new(self.node, self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    pub fn room(&self, id: &str) -> Option<RoomHandle> {
        self.rooms.get(id).map(|r| r.clone())
    }

    pub fn room_ids(&self) -> Vec<String> {
        self.rooms.iter().map(|r| r.key().clone()).collect()
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

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Validates, persists durably, then starts a new room.
    pub async fn create_room(&self, new: NewRoom) -> Result<RoomSummary, HubError> {
        let record: RoomRecord = Room::create(new, now_ms())?;
        self.store
            .submit(vec![StoreOp::PutRoom(Box::new(record.clone()))])
            .wait()
            .await
            .map_err(|e| HubError::Store(e.to_string()))?;
        let room = Room::new(record, self.epoch.clone(), self.config.heartbeat_ms);
        let summary = room.summary();
        self.spawn(room);
        Ok(summary)
    }

    pub async fn host(&self, room: &str, cmd: HostCommand) -> Result<HostReply, HubError> {
        let h = self
            .room(room)
            .ok_or_else(|| HubError::RoomNotFound(room.to_string()))?;
        h.host(cmd).await
    }

    fn spawn(&self, mut room: Room) {
        room.set_watched(false);
        let (tx, rx) = mpsc::channel(MAILBOX);
        let weak = tx.downgrade();
        let (on_air, on_air_rx) = watch::channel(room.record().brand_on_air.clone());
        let (kicks, kicks_rx) = watch::channel(room.kicked_tokens());
        let handle = RoomHandle {
            id: room.id().to_string(),
            token_key: Arc::from(room.record().token_key.as_str()),
            on_air: on_air_rx,
            kicks: kicks_rx,
            tx,
        };
        self.rooms.insert(handle.id.clone(), handle);
        self.metrics.rooms.set(self.rooms.len() as i64);
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker(acks_rx, weak, self.metrics.clone()));
        let owner = RoomOwner {
            room,
            sessions: HashMap::new(),
            watchers: Vec::new(),
            store: self.store.clone(),
            bus: self.bus.clone(),
            metrics: self.metrics.clone(),
            acks,
            pending_ops: Vec::new(),
            deferred: Vec::new(),
            replies: Vec::new(),
            on_air,
            kicks,
        };
        let task = tokio::spawn(async move {
            owner.run(rx).await;
            // The owner dropped its sender: the acker finishes what is in flight, then ends.
            let _ = acker.await;
        });
        self.tasks.lock().push(task);
    }

    /// Drain: every room closes its viewers with "going away" and stops; then the store
    /// is flushed.
    pub async fn shutdown(&self) {
        let handles: Vec<RoomHandle> = self.rooms.iter().map(|r| r.clone()).collect();
        for h in handles {
            let (done, rx) = oneshot::channel();
            if h.send(RoomMsg::Drain { done }).await.is_ok() {
                let _ = rx.await;
            }
        }
        self.rooms.clear();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at shutdown failed");
        }
    }
}

struct SessionEntry {
    link: SessionLink,
    class: AudienceClass,
}

/// A frame to send once the writes before it are durable.
struct Deferred {
    link: SessionLink,
    frame: Bytes,
    undo: Option<Undo>,
}

type Reply = oneshot::Sender<Result<HostReply, HubError>>;

/// One store submission of a room and what waits for it.
struct AckBatch {
    durable: crate::store::Durable,
    sends: Vec<Deferred>,
    replies: Vec<(Reply, HostReply)>,
}

fn deliver(link: &SessionLink, frame: Bytes, metrics: &Metrics) {
    let Some(frame) = text(frame) else { return };
    if link.offer(frame).is_err() {
        metrics.queue_drops.inc();
        metrics.slow_consumer_closes.inc();
        // The session's tasks end and tell the room it left.
        link.close.request(CloseRequest {
            why: Refusal::new(EndReason::SlowConsumer, "slow consumer"),
            drain: false,
        });
    }
}

/// Sends a room's acknowledgements in submission order as their writes become durable. The
/// store commits submissions in order, so waiting on each in turn never delays a later one
/// that is already durable by more than the earlier one's commit.
async fn acker(
    mut rx: mpsc::UnboundedReceiver<AckBatch>,
    room: mpsc::WeakSender<RoomMsg>,
    metrics: Arc<Metrics>,
) {
    while let Some(batch) = rx.recv().await {
        match batch.durable.wait().await {
            Ok(()) => {
                for d in batch.sends {
                    deliver(&d.link, d.frame, &metrics);
                }
                for (reply, r) in batch.replies {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store write failed; acknowledgements withdrawn");
                let failed = envelope(
                    "error",
                    0,
                    now_ms(),
                    &serde_json::json!({
                        "code": "store_failed",
                        "message": "the server could not record this; nothing was taken, try again",
                    }),
                );
                for d in batch.sends {
                    deliver(&d.link, failed.clone(), &metrics);
                    if let (Some(undo), Some(tx)) = (d.undo, room.upgrade()) {
                        let _ = tx.send(RoomMsg::Undo { undo }).await;
                    }
                }
                for (reply, _) in batch.replies {
                    let _ = reply.send(Err(HubError::Store(e.to_string())));
                }
            }
        }
    }
}

/// The task that owns one room: applies inputs to the state machine and carries out its
/// outputs. It never awaits a viewer.
struct RoomOwner {
    room: Room,
    sessions: HashMap<SessionId, SessionEntry>,
    watchers: Vec<mpsc::Sender<WatchEvent>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    acks: mpsc::UnboundedSender<AckBatch>,
    /// Writes carried out early (before a session left), submitted with the next flush.
    pending_ops: Vec<StoreOp>,
    /// Acknowledgements of the inputs applied since the last flush.
    deferred: Vec<Deferred>,
    /// Host replies of the inputs applied since the last flush.
    replies: Vec<(Reply, HostReply)>,
    /// Publishes the brand on air whenever a command changes it.
    on_air: watch::Sender<Option<String>>,
    /// Publishes the count of kicked tokens whenever a command changes it.
    kicks: watch::Sender<usize>,
}

impl RoomOwner {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomMsg>) {
        let span = tracing::info_span!("room", room = %self.room.id());
        let _enter = span.enter();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut out = Vec::with_capacity(64);
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = tick.tick() => {
                    self.room.tick(now_ms(), &mut out);
                    self.flush(&mut out);
                    continue;
                }
            };
            // Everything already waiting is applied before the writes go to the store
            // together: one submission, one commit, however many grabs it holds.
            let mut next = Some(msg);
            let mut n = 0;
            while let Some(msg) = next.take() {
                if let RoomMsg::Drain { done } = msg {
                    self.flush(&mut out);
                    for (_, s) in self.sessions.drain() {
                        s.link.close.request(CloseRequest {
                            why: Refusal::new(EndReason::ShuttingDown, "server shutting down"),
                            drain: true,
                        });
                    }
                    let _ = done.send(());
                    return;
                }
                self.handle(msg, &mut out);
                n += 1;
                if n < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.flush(&mut out);
        }
        self.flush(&mut out);
    }

    /// Carries out the outputs of the inputs applied so far and submits their writes; the
    /// acknowledgements and host replies wait for those writes in the acker.
    fn flush(&mut self, out: &mut Vec<Output>) {
        let ops = self.carry_out(out);
        if ops.is_empty() && self.deferred.is_empty() {
            for (reply, r) in self.replies.drain(..) {
                let _ = reply.send(Ok(r));
            }
            return;
        }
        // With no writes of its own, the (empty) submission is a barrier: it resolves once
        // everything submitted before is durable (a repeated key's answer waits for the
        // first write).
        let durable = self.store.submit(ops);
        // The next batch is likely as large as this one: no regrowing from empty.
        let next = Vec::with_capacity(self.deferred.len());
        let sends = std::mem::replace(&mut self.deferred, next);
        let batch = AckBatch {
            durable,
            sends,
            replies: std::mem::take(&mut self.replies),
        };
        if self.acks.send(batch).is_err() {
            tracing::error!("acknowledgement task is gone");
        }
    }

    fn handle(&mut self, msg: RoomMsg, out: &mut Vec<Output>) {
        let now = now_ms();
        match msg {
            RoomMsg::Join {
                session,
                req,
                link,
                reply,
            } => {
                // Registered first so the welcome produced below reaches it.
                self.sessions.insert(
                    session,
                    SessionEntry {
                        link,
                        class: AudienceClass::Public,
                    },
                );
                match self.room.join(session, req, now, out) {
                    Ok(class) => {
                        if let Some(s) = self.sessions.get_mut(&session) {
                            s.class = class;
                        }
                        let _ = reply.send(Ok(class));
                    }
                    Err(refusal) => {
                        // Outputs already queued for it are dropped with it.
                        self.carry_out_now(out);
                        self.sessions.remove(&session);
                        let _ = reply.send(Err(refusal));
                    }
                }
            }
            RoomMsg::Leave { session } => {
                // Frames queued for it before it left still go out in order first.
                self.carry_out_now(out);
                self.sessions.remove(&session);
                self.room.leave(session, now, out);
            }
            RoomMsg::Client { session, msg } => {
                self.room.client(session, msg, now, out);
            }
            RoomMsg::Undo { undo } => self.room.undo(undo),
            RoomMsg::Admits { jti, reply } => {
                let _ = reply.send(self.room.admits(&jti));
            }
            RoomMsg::LiveFeeds { brands } => self.room.set_live_feeds(brands, now, out),
            RoomMsg::Host { cmd, reply } => {
                match self.room.host(cmd, now, out) {
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                    // The reply waits for durability, the room does not.
                    Ok(r) => self.replies.push((reply, r)),
                }
                let brand = &self.room.record().brand_on_air;
                self.on_air.send_if_modified(|b| {
                    if b != brand {
                        b.clone_from(brand);
                        true
                    } else {
                        false
                    }
                });
                let kicked = self.room.kicked_tokens();
                self.kicks
                    .send_if_modified(|k| std::mem::replace(k, kicked) != kicked);
            }
            RoomMsg::Watch { tx } => {
                if self.room.record().state == RoomState::Ended {
                    let _ = tx.try_send(WatchEvent::Ended);
                } else {
                    self.watchers.push(tx);
                    self.room.set_watched(true);
                }
            }
            RoomMsg::Drain { .. } => unreachable!("handled by run"),
        }
    }

    fn slow_consumer(&mut self, session: SessionId, out: &mut Vec<Output>) {
        if let Some(s) = self.sessions.remove(&session) {
            self.metrics.queue_drops.inc();
            self.metrics.slow_consumer_closes.inc();
            s.link.close.request(CloseRequest {
                why: Refusal::new(EndReason::SlowConsumer, "slow consumer"),
                drain: false,
            });
            self.room.leave(session, now_ms(), out);
        }
    }

    /// Carries out what is queued so far, keeping its writes for the next flush.
    fn carry_out_now(&mut self, out: &mut Vec<Output>) {
        let ops = self.carry_out(out);
        self.pending_ops.extend(ops);
    }

    /// Carries out the outputs (and any they cause). Returns the store writes, in order.
    fn carry_out(&mut self, out: &mut Vec<Output>) -> Vec<StoreOp> {
        let mut ops = std::mem::take(&mut self.pending_ops);
        // Sized once: a batch of grabs holds hundreds of writes; regrowing from empty in
        // every batch costs more than their bookkeeping.
        ops.reserve(out.len());
        let mut more = Vec::new();
        while !out.is_empty() {
            for o in out.drain(..) {
                match o {
                    Output::Broadcast(frames) => {
                        let mut slow = Vec::new();
                        let texts = frames.map(|b| text(b.clone()));
                        for (id, s) in &self.sessions {
                            let Some(t) = texts.for_class(s.class).clone() else {
                                continue;
                            };
                            if s.link.offer(t).is_err() {
                                slow.push(*id);
                            }
                        }
                        for id in slow {
                            self.slow_consumer(id, &mut more);
                        }
                    }
                    Output::Published(ev) => self.bus.publish(ev),
                    Output::Send { session, frame } => {
                        let (Some(s), Some(frame)) = (self.sessions.get(&session), text(frame))
                        else {
                            continue;
                        };
                        if s.link.offer(frame).is_err() {
                            self.slow_consumer(session, &mut more);
                        }
                    }
                    Output::ClassChanged { session, class } => {
                        if let Some(s) = self.sessions.get_mut(&session) {
                            s.class = class;
                        }
                    }
                    Output::Close { session, why } => {
                        if let Some(s) = self.sessions.remove(&session) {
                            s.link.close.request(CloseRequest { why, drain: true });
                            self.room.leave(session, now_ms(), &mut more);
                        }
                    }
                    // This hub never calls `Room::attach_media` (media re-checks its tokens
                    // when `kicks` changes), so its rooms know no media session to end.
                    // Wiring WHIP/WHEP sessions to the room is the hub's change to make.
                    Output::EndMedia { ids, why } => {
                        tracing::debug!(?ids, %why, "media sessions to end are not attached here");
                    }
                    Output::Persist(op) => ops.push(op),
                    Output::SendDurable {
                        session,
                        frame,
                        undo,
                    } => {
                        // A session gone before its answer: the write stands, nobody to tell.
                        if let Some(s) = self.sessions.get(&session) {
                            self.deferred.push(Deferred {
                                link: s.link.clone(),
                                frame,
                                undo,
                            });
                        }
                    }
                    Output::Watch(ev) => {
                        let metrics = &self.metrics;
                        self.watchers.retain(|w| match w.try_send(ev.clone()) {
                            Ok(()) => true,
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                metrics.queue_drops.inc();
                                true
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => false,
                        });
                        if self.watchers.is_empty() {
                            self.room.set_watched(false);
                        }
                    }
                }
            }
            // `out` keeps its capacity for the next batch.
            out.append(&mut more);
        }
        ops
    }
}
