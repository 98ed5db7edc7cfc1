//! Viewers on a node that does not own their room.
//!
//! The owner keeps every session of its room, wherever it is served: presence, the online
//! count and peak, per-viewer limits, kicks and the audience log stay where they are today.
//! A session served by another node joins the owner by request/reply (`ToOwner::Join`); the
//! owner answers with the session's first frames (its welcome, or the resumed welcome and
//! the replayed events) and the room's sequence number at that moment. From then on:
//!
//! - the room's events reach the serving node on the bus (`NatsBus`), and the serving node
//!   renders each once per audience class for its own viewers (a [`Follower`] per room), so a
//!   public viewer on any node never receives a price;
//! - the session's private frames (answers, errors, durable acknowledgements) and its close
//!   are relayed by the owner to the serving node's subject (`ToServing`);
//! - the viewer's messages go to the owner (`ToOwner::Message`, in order on one connection).
//!
//! A follower subscribes to the room's events before it asks to join, and keeps the last
//! events it received: the events after the joining seq that arrived before the answer are
//! given to the session right after its first frames, so it sees no gap and no duplicate.
//! A class change of a remote session travels on the room's subject in order with the events.
//! When the follower cannot vouch for the stream (a gap, the owner's lease gone or moved,
//! NATS lost), its sessions are closed with 1013 and a reason: they reconnect and resume.

use super::bus::NatsBus;
use super::lease::Leases;
use crate::bus::Followed;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::model::{
    AudienceClass, ClientMessage, EndReason, JoinRequest, ProtocolError, Refusal, SeqEvent,
    SessionId, WatchEvent,
};
use crate::room::event::render;
use crate::rooms::ownership::OwnershipError;
use crate::rooms::{RemoteJoined, Rooms, RoomsError, SessionQueue, SessionSink, Text};
use dashmap::DashMap;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a remote join may take.
const JOIN_DEADLINE: Duration = Duration::from_secs(5);
/// Events a follower keeps for sessions whose join answer is on its way.
const KEPT_EVENTS: usize = 1024;
/// How often a follower checks that its room's owner still holds the lease, and an owner
/// that the nodes serving its remote sessions still answer.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often an owner tells a remote watcher its watch is open, and how long a watcher waits
/// without hearing anything before it gives the watch up.
const WATCH_ALIVE: Duration = Duration::from_secs(2);
const WATCH_SILENCE: Duration = Duration::from_secs(7);
/// Events a remote watch buffers (as a local watch does).
const WATCH_BUFFER: usize = 1024;
/// How often the serving side checks its NATS connection for an interruption.
const CONNECTION_CHECK: Duration = Duration::from_millis(250);
/// Checks with no session after which a follower stops following its room.
const IDLE_CHECKS: u32 = 10;
/// Missed liveness answers after which an owner drops a serving node's sessions.
const MISSED_PINGS: u32 = 3;

fn owner_subject(node: &str) -> String {
    format!("showfloor.node.{}.viewers", hex::encode(node))
}

fn serving_subject(node: &str) -> String {
    format!("showfloor.node.{}.frames", hex::encode(node))
}

fn moved() -> Refusal {
    Refusal::new(
        EndReason::RoomUnavailable,
        "the room moved to another server; reconnect",
    )
}

/// From a serving node to a room's owner.
#[derive(Serialize, Deserialize)]
enum ToOwner {
    Join {
        room: String,
        session: SessionId,
        /// The serving node, where the session's private frames go.
        node: String,
        req: JoinRequest,
    },
    Message {
        room: String,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    },
    Leave {
        room: String,
        session: SessionId,
    },
    /// The host console's stream of the room, to `node` under `id`.
    Watch {
        room: String,
        id: String,
        node: String,
    },
    Unwatch {
        id: String,
    },
}

#[derive(Serialize, Deserialize)]
enum WatchAnswer {
    Watching,
    NotFound,
    OwnedBy(String),
    Unavailable(String),
}

#[derive(Serialize, Deserialize)]
enum JoinAnswer {
    Joined(RemoteJoined),
    Refused(Refusal),
    NotFound,
    OwnedBy(String),
    Unavailable(String),
    /// The first frames (a long resume) do not fit in one NATS message: the session was
    /// taken out again; join without resume.
    TooLarge,
}

/// From a room's owner to the node serving a session.
#[derive(Serialize, Deserialize)]
enum ToServing {
    Frame {
        room: String,
        session: SessionId,
        frame: String,
    },
    Close {
        room: String,
        session: SessionId,
        why: Refusal,
        drain: bool,
    },
    /// Are you there? (answered on the request's inbox)
    Ping,
    /// An event of the watch `id`.
    Watched { id: String, event: WatchEvent },
    /// The watch `id` is still open (sent every `WATCH_ALIVE`).
    WatchAlive { id: String },
    /// The watch `id` stopped without the room ending: the room left its owner.
    WatchLost { id: String, why: String },
}

/// How a remote join ended.
pub enum RemoteJoin {
    Joined(AudienceClass),
    Refused(Refusal),
    /// The asked node does not run the room (now): find the owner again.
    NotThere(Option<String>),
}

// ---------------------------------------------------------------------------------------
// The owner's side.

/// Answers the viewer traffic other nodes send to this node's rooms, until `stop`.
pub async fn serve_owner(
    client: async_nats::Client,
    node_id: &str,
    hub: Arc<Hub>,
    stop: CancellationToken,
) -> Result<(), super::ClusterError> {
    let mut inbox = client
        .subscribe(owner_subject(node_id))
        .await
        .map_err(|e| super::ClusterError::jet_stream("subscribe to remote viewers", e))?;
    let serving: Arc<DashMap<String, HashSet<(String, SessionId)>>> = Arc::new(DashMap::new());
    let watches: Watches = Arc::new(DashMap::new());
    tokio::spawn(watch_serving_nodes(
        client.clone(),
        hub.clone(),
        serving.clone(),
        watches.clone(),
        stop.clone(),
    ));
    let queue = hub.config().outbound_queue;
    tokio::spawn(close_remote_sessions_on_interruption(
        client.clone(),
        hub.clone(),
        stop.clone(),
    ));
    tokio::spawn(async move {
        loop {
            let Some(msg) = super::next_or_stop(&mut inbox, &stop).await else {
                break;
            };
            let req = match serde_json::from_slice::<ToOwner>(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable remote viewer message");
                    continue;
                }
            };
            match req {
                ToOwner::Join {
                    room,
                    session,
                    node,
                    req,
                } => {
                    let Some(reply_to) = msg.reply.clone() else {
                        continue;
                    };
                    let (client, hub, serving) = (client.clone(), hub.clone(), serving.clone());
                    tokio::spawn(async move {
                        let (sink, q) = SessionSink::new(queue);
                        tokio::spawn(relay(
                            client.clone(),
                            serving_subject(&node),
                            room.clone(),
                            session,
                            q,
                        ));
                        let answer = match hub.join_remote(&room, session, req, sink).await {
                            Ok(Ok(joined)) => JoinAnswer::Joined(joined),
                            Ok(Err(refusal)) => JoinAnswer::Refused(refusal),
                            Err(RoomsError::RoomNotFound(_)) => JoinAnswer::NotFound,
                            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                                JoinAnswer::OwnedBy(node)
                            }
                            Err(e) => JoinAnswer::Unavailable(crate::error_chain(&e)),
                        };
                        let joined = matches!(answer, JoinAnswer::Joined(_));
                        let mut body = serde_json::to_vec(&answer).expect("answers serialise");
                        if body.len() + 1024 > client.server_info().max_payload {
                            hub.leave_remote(&room, session).await;
                            body = serde_json::to_vec(&JoinAnswer::TooLarge).expect("serialises");
                        } else if joined {
                            serving.entry(node).or_default().insert((room, session));
                        }
                        if let Err(e) = client.publish(reply_to, body.into()).await {
                            tracing::debug!(error = %e, "could not answer a remote join");
                        }
                    });
                }
                // In order, as they came: a viewer's messages are applied in its order.
                ToOwner::Message { room, session, msg } => {
                    hub.viewer_message(&room, session, msg).await;
                }
                ToOwner::Leave { room, session } => {
                    for mut e in serving.iter_mut() {
                        e.value_mut().remove(&(room.clone(), session));
                    }
                    hub.leave_remote(&room, session).await;
                }
                ToOwner::Watch { room, id, node } => {
                    let Some(reply_to) = msg.reply.clone() else {
                        continue;
                    };
                    let (client, hub, watches) = (client.clone(), hub.clone(), watches.clone());
                    tokio::spawn(async move {
                        let answer = match hub.watch_until_gone(&room).await {
                            Ok(events) => {
                                let open = CancellationToken::new();
                                watches.insert(id.clone(), (node.clone(), open.clone()));
                                tokio::spawn(forward_watch(
                                    client.clone(),
                                    serving_subject(&node),
                                    id,
                                    events,
                                    open,
                                    watches,
                                ));
                                WatchAnswer::Watching
                            }
                            Err(RoomsError::RoomNotFound(_)) => WatchAnswer::NotFound,
                            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                                WatchAnswer::OwnedBy(node)
                            }
                            Err(e) => WatchAnswer::Unavailable(crate::error_chain(&e)),
                        };
                        let body = serde_json::to_vec(&answer).expect("answers serialise");
                        if let Err(e) = client.publish(reply_to, body.into()).await {
                            tracing::debug!(error = %e, "could not answer a remote watch");
                        }
                    });
                }
                ToOwner::Unwatch { id } => {
                    if let Some((_, (_, open))) = watches.remove(&id) {
                        open.cancel();
                    }
                }
            }
        }
    });
    Ok(())
}

/// Carries a remote session's private frames and its close to the node serving it.
async fn relay(
    client: async_nats::Client,
    subject: String,
    room: String,
    session: SessionId,
    mut q: SessionQueue,
) {
    let publish = |m: &ToServing| {
        let body = serde_json::to_vec(m).expect("frames serialise");
        client.publish(subject.clone(), body.into())
    };
    loop {
        tokio::select! {
            biased;
            f = q.frames.recv() => match f {
                Some(frame) => {
                    let m = ToServing::Frame {
                        room: room.clone(),
                        session,
                        frame: frame.as_str().to_string(),
                    };
                    if publish(&m).await.is_err() {
                        return;
                    }
                }
                // The room let go of the session.
                None => return,
            },
            req = q.close.wait() => {
                if req.drain {
                    while let Ok(frame) = q.frames.try_recv() {
                        let m = ToServing::Frame {
                            room: room.clone(),
                            session,
                            frame: frame.as_str().to_string(),
                        };
                        let _ = publish(&m).await;
                    }
                }
                let m = ToServing::Close {
                    room: room.clone(),
                    session,
                    why: req.why,
                    drain: req.drain,
                };
                let _ = publish(&m).await;
                return;
            }
        }
    }
}

/// Whether the NATS connection was interrupted since the last call (it is down now, or it
/// reconnected meanwhile), polled every `CONNECTION_CHECK`. Returns when it was, or `None`
/// once `stop` is cancelled.
async fn interrupted(
    client: &async_nats::Client,
    connects: &mut u64,
    stop: &CancellationToken,
) -> Option<()> {
    let stats = client.statistics();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(CONNECTION_CHECK) => {}
        }
        let now = stats.connects.load(Ordering::Relaxed);
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if now != *connects || !connected {
            *connects = now;
            return Some(());
        }
    }
}

/// Frames relayed to other nodes while this node's NATS connection was down are lost: the
/// sessions they were for are closed (the close itself is relayed once connected again), so
/// they reconnect and resume rather than wait for answers that will not come.
async fn close_remote_sessions_on_interruption(
    client: async_nats::Client,
    hub: Arc<Hub>,
    stop: CancellationToken,
) {
    let mut connects = client.statistics().connects.load(Ordering::Relaxed);
    while interrupted(&client, &mut connects, &stop).await.is_some() {
        hub.close_remote_sessions(Refusal::new(
            EndReason::RoomUnavailable,
            "the room's server lost contact with this server; reconnect",
        ));
    }
}

/// Open remote watches: id → (the watching node, cancelled when the watch closes).
type Watches = Arc<DashMap<String, (String, CancellationToken)>>;

/// Carries a watch's events to the node that asked, with a sign of life every `WATCH_ALIVE`,
/// until the room ends, the watcher lets go (`open` cancelled), or the room stops here.
async fn forward_watch(
    client: async_nats::Client,
    subject: String,
    id: String,
    mut events: tokio_stream::wrappers::ReceiverStream<WatchEvent>,
    open: CancellationToken,
    watches: Watches,
) {
    let publish = |m: ToServing| {
        let body = serde_json::to_vec(&m).expect("watch events serialise");
        client.publish(subject.clone(), body.into())
    };
    let mut alive = tokio::time::interval(WATCH_ALIVE);
    loop {
        tokio::select! {
            _ = open.cancelled() => break,
            _ = alive.tick() => {
                let _ = publish(ToServing::WatchAlive { id: id.clone() }).await;
            }
            e = events.next() => match e {
                Some(event) => {
                    let ended = matches!(event, WatchEvent::Ended);
                    let _ = publish(ToServing::Watched { id: id.clone(), event }).await;
                    if ended {
                        break;
                    }
                }
                None => {
                    let why = "the room moved to another server; watch it again".to_string();
                    let _ = publish(ToServing::WatchLost { id: id.clone(), why }).await;
                    break;
                }
            },
        }
    }
    watches.remove(&id);
}

/// Drops the sessions of a serving node that stopped answering (killed, partitioned): they
/// would otherwise count as online for ever.
async fn watch_serving_nodes(
    client: async_nats::Client,
    hub: Arc<Hub>,
    serving: Arc<DashMap<String, HashSet<(String, SessionId)>>>,
    watches: Watches,
    stop: CancellationToken,
) {
    let mut missed: HashMap<String, u32> = HashMap::new();
    let ping = serde_json::to_vec(&ToServing::Ping).expect("serialises");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        serving.retain(|_, sessions| !sessions.is_empty());
        let mut nodes: Vec<String> = serving.iter().map(|e| e.key().clone()).collect();
        nodes.extend(watches.iter().map(|e| e.value().0.clone()));
        nodes.sort();
        nodes.dedup();
        missed.retain(|n, _| nodes.contains(n));
        for node in nodes {
            let asked = client.request(serving_subject(&node), ping.clone().into());
            let answered = matches!(tokio::time::timeout(CHECK_EVERY, asked).await, Ok(Ok(_)));
            let n = missed.entry(node.clone()).or_default();
            *n = if answered { 0 } else { *n + 1 };
            if *n >= MISSED_PINGS {
                tracing::warn!(%node, "a node serving viewers of our rooms stopped answering; its sessions leave");
                missed.remove(&node);
                if let Some((_, sessions)) = serving.remove(&node) {
                    for (room, session) in sessions {
                        hub.leave_remote(&room, session).await;
                    }
                }
                watches.retain(|_, (n, open)| {
                    if *n == node {
                        open.cancel();
                    }
                    *n != node
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The serving node's side.

struct Local {
    sink: SessionSink,
    class: AudienceClass,
    /// The last seq the session has (from its first frames); `None` while its join is on
    /// its way (it gets nothing from the bus yet).
    after: Option<u64>,
}

#[derive(Default)]
struct FollowState {
    sessions: HashMap<SessionId, Local>,
    /// The last events received, for sessions whose join answer is on its way.
    kept: VecDeque<Arc<SeqEvent>>,
    /// Tiers and currency of the room (from the first join answer).
    render: Option<(Vec<String>, String)>,
}

impl FollowState {
    fn deliver(&mut self, ev: Arc<SeqEvent>, metrics: &Metrics) {
        if self.kept.len() >= KEPT_EVENTS {
            self.kept.pop_front();
        }
        self.kept.push_back(ev.clone());
        let Some((tiers, currency)) = &self.render else {
            return;
        };
        if !self
            .sessions
            .values()
            .any(|s| s.after.is_some_and(|a| a < ev.seq))
        {
            return;
        }
        let frames = render(&ev, tiers, currency).map(|b| Text::try_from(b.clone()).ok());
        for s in self.sessions.values() {
            if s.after.is_none_or(|a| a >= ev.seq) {
                continue;
            }
            let Some(t) = frames.for_class(s.class).clone() else {
                continue;
            };
            if s.sink.offer(t).is_err() {
                metrics.queue_drops.inc();
                metrics.slow_consumer_closes.inc();
                // Its session ends and leaves the room (here and at the owner).
                s.sink.close(
                    Refusal::new(EndReason::SlowConsumer, "slow consumer"),
                    false,
                );
            }
        }
    }

    /// Closes every session; returns them, to be told to the owner.
    fn close_all(&mut self, why: Refusal) -> Vec<SessionId> {
        self.sessions
            .drain()
            .map(|(id, s)| {
                s.sink.close(why.clone(), true);
                id
            })
            .collect()
    }
}

/// One room another node owns, followed for this node's viewers of it.
struct Follower {
    owner: String,
    state: Mutex<FollowState>,
    stop: CancellationToken,
}

/// The viewers this node serves of rooms other nodes own.
pub struct RemoteViewers {
    client: async_nats::Client,
    node_id: String,
    bus: Arc<NatsBus>,
    leases: Leases,
    metrics: Arc<Metrics>,
    rooms: DashMap<String, Arc<Follower>>,
    /// Watches of rooms owned elsewhere, by id: where their events go (`None`: a sign of
    /// life; `Some(Err)`: lost).
    watches: DashMap<String, tokio::sync::mpsc::Sender<Watched>>,
}

/// What a remote watch's stream receives.
enum Watched {
    Event(WatchEvent),
    Alive,
    Lost(String),
}

/// Closes a remote watch at its owner when its stream is dropped.
struct WatchGuard {
    viewers: Arc<RemoteViewers>,
    id: String,
    owner: String,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.viewers.watches.remove(&self.id);
        let (client, subject) = (self.viewers.client.clone(), owner_subject(&self.owner));
        let body = serde_json::to_vec(&ToOwner::Unwatch {
            id: self.id.clone(),
        })
        .expect("serialises");
        tokio::spawn(async move {
            let _ = client.publish(subject, body.into()).await;
        });
    }
}

impl RemoteViewers {
    /// Starts taking the frames owners relay to this node's sessions, until `stop`.
    pub async fn start(
        client: async_nats::Client,
        node_id: &str,
        bus: Arc<NatsBus>,
        leases: Leases,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Result<Arc<RemoteViewers>, super::ClusterError> {
        let mut inbox = client
            .subscribe(serving_subject(node_id))
            .await
            .map_err(|e| super::ClusterError::jet_stream("subscribe to relayed frames", e))?;
        metrics.rooms_followed.set(0);
        let viewers = Arc::new(RemoteViewers {
            client: client.clone(),
            node_id: node_id.to_string(),
            bus,
            leases,
            metrics,
            rooms: DashMap::new(),
            watches: DashMap::new(),
        });
        tokio::spawn(viewers.clone().watch_connection(stop.clone()));
        let me = viewers.clone();
        tokio::spawn(async move {
            loop {
                let Some(msg) = super::next_or_stop(&mut inbox, &stop).await else {
                    break;
                };
                match serde_json::from_slice::<ToServing>(&msg.payload) {
                    Ok(ToServing::Frame {
                        room,
                        session,
                        frame,
                    }) => me.private_frame(&room, session, frame),
                    Ok(ToServing::Close {
                        room,
                        session,
                        why,
                        drain,
                    }) => {
                        if let Some(f) = me.rooms.get(&room) {
                            if let Some(s) = f.state.lock().sessions.remove(&session) {
                                s.sink.close(why, drain);
                            }
                        }
                    }
                    Ok(ToServing::Watched { id, event }) => me.to_watch(&id, Watched::Event(event)),
                    Ok(ToServing::WatchAlive { id }) => me.to_watch(&id, Watched::Alive),
                    Ok(ToServing::WatchLost { id, why }) => me.to_watch(&id, Watched::Lost(why)),
                    Ok(ToServing::Ping) => {
                        if let Some(reply) = msg.reply {
                            let _ = client.publish(reply, bytes::Bytes::new()).await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "undecodable relayed frame"),
                }
            }
            // The node is draining: its sessions are closed by the drain itself.
            for f in me.rooms.iter() {
                f.stop.cancel();
            }
        });
        Ok(viewers)
    }

    /// NATS keeps no history: whatever was published while this node was disconnected (the
    /// rooms' events, relayed frames) is gone. On any disconnect or reconnect every followed
    /// room is given up, so its viewers here reconnect and resume instead of missing events
    /// silently until the next one shows the gap.
    async fn watch_connection(self: Arc<Self>, stop: CancellationToken) {
        let mut connects = self.client.statistics().connects.load(Ordering::Relaxed);
        while interrupted(&self.client, &mut connects, &stop)
            .await
            .is_some()
        {
            let rooms: Vec<(String, Arc<Follower>)> = self
                .rooms
                .iter()
                .map(|e| (e.key().clone(), e.value().clone()))
                .collect();
            if !rooms.is_empty() {
                tracing::warn!(
                    rooms = rooms.len(),
                    "NATS connection interrupted; viewers of followed rooms reconnect"
                );
            }
            for (room, f) in rooms {
                if self
                    .rooms
                    .remove_if(&room, |_, x| Arc::ptr_eq(x, &f))
                    .is_some()
                {
                    self.retire(
                        &room,
                        &f,
                        Refusal::new(
                            EndReason::RoomUnavailable,
                            "this server lost contact with the room; reconnect",
                        ),
                    );
                }
            }
            self.metrics.rooms_followed.set(self.rooms.len() as i64);
            // Console events may have been lost too: those watches end, to be opened again.
            for w in self.watches.iter() {
                let _ = w.try_send(Watched::Lost(
                    "this server lost contact with the room; watch it again".into(),
                ));
            }
        }
    }

    fn to_watch(&self, id: &str, w: Watched) {
        if let Some(tx) = self.watches.get(id) {
            if tx.try_send(w).is_err() {
                // A console that does not read loses events, as on the owner.
                self.metrics.queue_drops.inc();
            }
        }
    }

    /// The host console's stream of a room `owner` runs: its events as the owner's own
    /// watchers get them (up to `WatchEvent::Ended`), or `WatchEvent::Lost` last if the room
    /// left that owner or the owner went silent.
    pub async fn watch(
        self: &Arc<Self>,
        room: &str,
        owner: &str,
    ) -> Result<futures_util::stream::BoxStream<'static, WatchEvent>, RoomsError> {
        let id = crate::auth::random_id(16);
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        self.watches.insert(id.clone(), tx);
        let guard = WatchGuard {
            viewers: self.clone(),
            id: id.clone(),
            owner: owner.to_string(),
        };
        let body = serde_json::to_vec(&ToOwner::Watch {
            room: room.to_string(),
            id,
            node: self.node_id.clone(),
        })
        .expect("serialises");
        let unsettled = |why: String| {
            RoomsError::NotOwned(OwnershipError::Unsettled {
                room: room.to_string(),
                why,
            })
        };
        let asked = self.client.request(owner_subject(owner), body.into());
        let answer = match tokio::time::timeout(JOIN_DEADLINE, asked).await {
            Ok(Ok(msg)) => serde_json::from_slice::<WatchAnswer>(&msg.payload)
                .unwrap_or_else(|e| WatchAnswer::Unavailable(format!("undecodable: {e}"))),
            Ok(Err(e)) => WatchAnswer::Unavailable(format!("node {owner}: {e}")),
            Err(_) => WatchAnswer::Unavailable(format!("node {owner} did not answer")),
        };
        match answer {
            WatchAnswer::Watching => {}
            WatchAnswer::NotFound => return Err(RoomsError::RoomNotFound(room.to_string())),
            WatchAnswer::OwnedBy(node) => {
                return Err(RoomsError::NotOwned(OwnershipError::HeldBy {
                    room: room.to_string(),
                    node,
                }))
            }
            WatchAnswer::Unavailable(why) => return Err(unsettled(why)),
        }
        // The state is dropped with the last item: the guard then tells the owner.
        let events = futures_util::stream::unfold(Some((rx, guard)), |state| async move {
            let (mut rx, guard) = state?;
            loop {
                let (event, last) = match tokio::time::timeout(WATCH_SILENCE, rx.recv()).await {
                    Ok(Some(Watched::Alive)) => continue,
                    Ok(Some(Watched::Event(WatchEvent::Ended))) => (WatchEvent::Ended, true),
                    Ok(Some(Watched::Event(e))) => (e, false),
                    Ok(Some(Watched::Lost(why))) => (WatchEvent::Lost { why }, true),
                    Ok(None) | Err(_) => (
                        WatchEvent::Lost {
                            why: "the room's owner stopped answering; watch it again".into(),
                        },
                        true,
                    ),
                };
                return Some((event, (!last).then_some((rx, guard))));
            }
        });
        Ok(events.boxed())
    }

    fn private_frame(&self, room: &str, session: SessionId, frame: String) {
        let Some(f) = self.rooms.get(room).map(|f| f.clone()) else {
            return;
        };
        let state = f.state.lock();
        let Some(s) = state.sessions.get(&session) else {
            return;
        };
        if s.sink.offer_now(Text::from(frame)).is_err() {
            self.metrics.queue_drops.inc();
            self.metrics.slow_consumer_closes.inc();
            s.sink.close(
                Refusal::new(EndReason::SlowConsumer, "slow consumer"),
                false,
            );
        }
    }

    /// The owner this node follows the room from, if it follows it.
    pub fn owner_of(&self, room: &str) -> Option<String> {
        self.rooms.get(room).map(|f| f.owner.clone())
    }

    /// Stops following the room (its owner moved): its sessions reconnect.
    pub fn forget(self: &Arc<Self>, room: &str) {
        if let Some((_, f)) = self.rooms.remove(room) {
            self.retire(room, &f, moved());
        }
        self.metrics.rooms_followed.set(self.rooms.len() as i64);
    }

    /// A follower is done: its sessions reconnect, and its owner hears they left.
    fn retire(self: &Arc<Self>, room: &str, f: &Arc<Follower>, why: Refusal) {
        f.stop.cancel();
        let gone = f.state.lock().close_all(why);
        if gone.is_empty() {
            return;
        }
        let (me, room, owner) = (self.clone(), room.to_string(), f.owner.clone());
        tokio::spawn(async move {
            for session in gone {
                me.send_leave(&owner, &room, session).await;
            }
        });
    }

    /// The room's follower from `owner`, subscribed to its events when this returns.
    async fn follower(self: &Arc<Self>, room: &str, owner: &str) -> Result<Arc<Follower>, String> {
        if let Some(f) = self.rooms.get(room) {
            if f.owner == owner {
                return Ok(f.clone());
            }
        }
        let events = self
            .bus
            .subscribe(room)
            .await
            .map_err(|e| format!("cannot follow the room's events: {e}"))?;
        let f = Arc::new(Follower {
            owner: owner.to_string(),
            state: Mutex::new(FollowState::default()),
            stop: CancellationToken::new(),
        });
        if let Some(old) = self.rooms.insert(room.to_string(), f.clone()) {
            self.retire(room, &old, moved());
        }
        self.metrics.rooms_followed.set(self.rooms.len() as i64);
        tokio::spawn(self.clone().follow(room.to_string(), f.clone(), events));
        Ok(f)
    }

    async fn follow(
        self: Arc<Self>,
        room: String,
        f: Arc<Follower>,
        mut events: futures_util::stream::BoxStream<'static, Followed>,
    ) {
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_checks = 0;
        let why = loop {
            tokio::select! {
                _ = f.stop.cancelled() => return,
                e = events.next() => match e {
                    Some(Followed::Event(ev)) => f.state.lock().deliver(ev, &self.metrics),
                    Some(Followed::Class { session, class }) => {
                        if let Some(s) = f.state.lock().sessions.get_mut(&session) {
                            s.class = class;
                        }
                    }
                    Some(Followed::Missed(_)) => {
                        break Refusal::new(
                            EndReason::RoomUnavailable,
                            "this server missed some of the room's events; reconnect",
                        )
                    }
                    None => break Refusal::new(
                        EndReason::RoomUnavailable,
                        "this server lost the room's events; reconnect",
                    ),
                },
                _ = check.tick() => {
                    if f.state.lock().sessions.is_empty() {
                        // Nobody here watches it any more: stop following (the entry goes
                        // first, so a join from now on starts a new follower).
                        idle_checks += 1;
                        if idle_checks >= IDLE_CHECKS
                            && self.rooms.remove_if(&room, |_, x| Arc::ptr_eq(x, &f)).is_some()
                        {
                            self.retire(&room, &f, moved());
                            self.metrics.rooms_followed.set(self.rooms.len() as i64);
                            return;
                        }
                        continue;
                    }
                    idle_checks = 0;
                    match self.leases.holder(&room).await {
                        Ok(Some((node, _))) if node == f.owner => {}
                        Ok(_) => break moved(),
                        // NATS is unsure: the owner may be fine; the next check decides.
                        Err(e) => tracing::debug!(error = %e, %room, "cannot read the room's lease"),
                    }
                }
            }
        };
        tracing::info!(%room, owner = %f.owner, reason = %why.message, "no longer following the room; its viewers here reconnect");
        self.rooms.remove_if(&room, |_, x| Arc::ptr_eq(x, &f));
        self.metrics.rooms_followed.set(self.rooms.len() as i64);
        self.retire(&room, &f, why);
    }

    /// A viewer of this node joins a room `owner` runs.
    pub async fn join(
        self: &Arc<Self>,
        room: &str,
        owner: &str,
        session: SessionId,
        mut req: JoinRequest,
        sink: SessionSink,
    ) -> RemoteJoin {
        let mut attempts = 0;
        let f = loop {
            let f = match self.follower(room, owner).await {
                Ok(f) => f,
                Err(why) => {
                    return RemoteJoin::Refused(Refusal::new(EndReason::RoomUnavailable, why))
                }
            };
            let mut state = f.state.lock();
            state.sessions.insert(
                session,
                Local {
                    sink: sink.clone(),
                    class: AudienceClass::Public,
                    after: None,
                },
            );
            // A follower retired in between (idle, or its owner moved) takes no sessions.
            if !f.stop.is_cancelled() {
                drop(state);
                break f;
            }
            state.sessions.remove(&session);
            drop(state);
            self.rooms.remove_if(room, |_, x| Arc::ptr_eq(x, &f));
            attempts += 1;
            if attempts > 2 {
                return RemoteJoin::Refused(moved());
            }
        };
        // At most twice: a resume too long for one message is retried as a fresh join.
        let answer = loop {
            let body = serde_json::to_vec(&ToOwner::Join {
                room: room.to_string(),
                session,
                node: self.node_id.clone(),
                req: req.clone(),
            })
            .expect("joins serialise");
            let asked = self.client.request(owner_subject(owner), body.into());
            let answer = match tokio::time::timeout(JOIN_DEADLINE, asked).await {
                Ok(Ok(msg)) => serde_json::from_slice::<JoinAnswer>(&msg.payload)
                    .unwrap_or_else(|e| JoinAnswer::Unavailable(format!("undecodable: {e}"))),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    JoinAnswer::OwnedBy(String::new())
                }
                Ok(Err(e)) => JoinAnswer::Unavailable(e.to_string()),
                Err(_) => {
                    // It may have joined after all: make sure it leaves.
                    self.send_leave(owner, room, session).await;
                    JoinAnswer::Unavailable(format!(
                        "node {owner} did not answer within {}s",
                        JOIN_DEADLINE.as_secs()
                    ))
                }
            };
            match answer {
                JoinAnswer::TooLarge if req.resume.is_some() => req.resume = None,
                other => break other,
            }
        };
        let mut state = f.state.lock();
        let joined = match answer {
            JoinAnswer::Joined(j) => j,
            other => {
                state.sessions.remove(&session);
                return match other {
                    JoinAnswer::Refused(r) => RemoteJoin::Refused(r),
                    JoinAnswer::NotFound => RemoteJoin::Refused(Refusal::new(
                        EndReason::RoomNotFound,
                        format!("room {room} not found"),
                    )),
                    JoinAnswer::OwnedBy(node) => {
                        RemoteJoin::NotThere(Some(node).filter(|n| !n.is_empty() && n != owner))
                    }
                    JoinAnswer::Unavailable(why) => RemoteJoin::Refused(Refusal::new(
                        EndReason::RoomUnavailable,
                        format!("room {room} is not available: {why}"),
                    )),
                    JoinAnswer::TooLarge | JoinAnswer::Joined(_) => RemoteJoin::Refused(
                        Refusal::new(EndReason::RoomUnavailable, "the join could not complete"),
                    ),
                };
            }
        };
        state.render = Some((joined.tiers, joined.currency));
        // Closed or gone while the answer was on its way: it leaves at the owner too (its
        // session's own leave does that).
        if !state.sessions.contains_key(&session) {
            return RemoteJoin::Refused(moved());
        }
        for frame in joined.initial {
            let _ = sink.offer_now(Text::from(frame));
        }
        // The events after the joining seq that came before the answer.
        let next = joined.seq + 1;
        let have_next = state.kept.iter().any(|e| e.seq == next);
        let newer = state.kept.iter().any(|e| e.seq > next);
        if newer && !have_next {
            drop(state);
            return RemoteJoin::Refused(Refusal::new(
                EndReason::RoomUnavailable,
                "the room moved on faster than this server could follow; reconnect",
            ));
        }
        let (tiers, currency) = state.render.clone().expect("set above");
        for ev in state.kept.iter().filter(|e| e.seq > joined.seq) {
            let frames = render(ev, &tiers, &currency);
            if let Ok(t) = Text::try_from(frames.for_class(joined.class).clone()) {
                let _ = sink.offer(t);
            }
        }
        if let Some(s) = state.sessions.get_mut(&session) {
            s.after = Some(joined.seq);
            s.class = joined.class;
        }
        RemoteJoin::Joined(joined.class)
    }

    async fn send_leave(&self, owner: &str, room: &str, session: SessionId) {
        let body = serde_json::to_vec(&ToOwner::Leave {
            room: room.to_string(),
            session,
        })
        .expect("serialises");
        if let Err(e) = self.client.publish(owner_subject(owner), body.into()).await {
            tracing::debug!(error = %e, "could not tell the owner a session left");
        }
    }

    /// A message of a session this node serves for another owner; given back if the session
    /// is not one of those.
    pub async fn message(
        &self,
        room: &str,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    ) -> Result<(), Result<ClientMessage, ProtocolError>> {
        let Some(owner) = self.rooms.get(room).and_then(|f| {
            f.state
                .lock()
                .sessions
                .contains_key(&session)
                .then(|| f.owner.clone())
        }) else {
            return Err(msg);
        };
        let body = serde_json::to_vec(&ToOwner::Message {
            room: room.to_string(),
            session,
            msg,
        })
        .expect("messages serialise");
        if let Err(e) = self
            .client
            .publish(owner_subject(&owner), body.into())
            .await
        {
            tracing::debug!(error = %e, "could not forward a viewer message");
        }
        Ok(())
    }

    /// A session this node serves for another owner left; false if it is not one of those.
    pub async fn leave(&self, room: &str, session: SessionId) -> bool {
        let Some(f) = self.rooms.get(room).map(|f| f.clone()) else {
            return false;
        };
        let removed = f.state.lock().sessions.remove(&session).is_some();
        if !removed {
            return false;
        }
        self.send_leave(&f.owner, room, session).await;
        true
    }
}
