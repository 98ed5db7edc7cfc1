//! The task that owns one room: applies inputs to the state machine and carries out its
//! outputs. It never awaits a viewer; it waits for the store only when the room's writes in
//! flight reach their bound (back-pressure instead of memory growth).

use super::acker::{AckBatch, Deferred};
use super::{text, HostReplyTx};
use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::model::{
    now_ms, AudienceClass, ClientMessage, EndReason, HostCommand, JoinRequest, MediaSession,
    ProtocolError, Refusal, RoomState, SessionId, StoreOp, WatchEvent,
};
use crate::room::core::{Output, Room, Undo};
use crate::rooms::{MediaSignal, SessionSink};
use crate::store::Store;
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

/// The least time between two ticks of a room.
const MIN_TICK: Duration = Duration::from_millis(5);
/// An ended room with something still attached checks again this often whether it is idle.
const MIN_IDLE_CHECK: Duration = Duration::from_secs(1);

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}
/// Inputs a room applies before handing their writes to the store as one submission.
const BATCH: usize = 512;

pub(super) enum RoomMsg {
    Join {
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
        reply: oneshot::Sender<Result<AudienceClass, Refusal>>,
    },
    /// A session another node serves: its broadcasts are rendered there from the bus, its
    /// private frames go to `sink` (relayed to that node).
    JoinRemote {
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
        reply: oneshot::Sender<Result<crate::rooms::RemoteJoined, Refusal>>,
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
        reply: HostReplyTx,
    },
    Watch {
        tx: mpsc::Sender<WatchEvent>,
    },
    /// A write the room acknowledged after durability failed.
    Undo {
        undo: Undo,
    },
    AttachMedia {
        media: MediaSession,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    DetachMedia {
        id: String,
    },
    FollowMedia {
        tx: mpsc::Sender<MediaSignal>,
    },
    /// The brands whose presenter feed is live (from the media module).
    LiveFeeds {
        brands: BTreeSet<String>,
    },
    /// Test hook (`Hub::inject_panic`): the owner panics, as a bug would make it.
    Panic,
}

/// Why an owner task stopped.
pub(super) enum Stopped {
    /// The node is draining.
    Drained,
    /// The room ended and nobody was attached for the grace period: unloaded.
    Retired,
    /// Every handle on the room is gone.
    Orphaned,
    /// This node no longer owns the room (its lease was lost, or a write was fenced): it
    /// stopped at once, out of the registry, its sessions told to reconnect.
    SteppedDown,
}

struct SessionEntry {
    sink: SessionSink,
    class: AudienceClass,
    /// Served by another node: no broadcasts here (that node renders them from the bus), and
    /// class changes go out on the bus.
    remote: bool,
}

pub(super) struct RoomOwner {
    room: Room,
    sessions: HashMap<SessionId, SessionEntry>,
    watchers: Vec<mpsc::Sender<WatchEvent>>,
    media_followers: Vec<mpsc::Sender<MediaSignal>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    acks: mpsc::UnboundedSender<AckBatch>,
    /// Slots for store submissions in flight; a submission waits for one.
    in_flight: Arc<Semaphore>,
    /// Writes carried out early (before a session left), submitted with the next flush.
    pending_ops: Vec<StoreOp>,
    /// Acknowledgements of the inputs applied since the last flush.
    deferred: Vec<Deferred>,
    /// Host replies of the inputs applied since the last flush.
    replies: Vec<(HostReplyTx, crate::model::HostReply)>,
    /// The brand on air last told to media followers.
    on_air_sent: Option<String>,
    /// How long an ended room with nobody attached stays loaded.
    ended_grace: Duration,
    /// Takes the room out of the registry before its task stops.
    retire: Option<Box<dyn FnOnce() + Send>>,
    /// The fencing token every submission carries first, when the room is leased.
    fence: Option<u64>,
    /// Cancelled when this node no longer owns the room.
    lost: CancellationToken,
    last_input: tokio::time::Instant,
    last_tick: tokio::time::Instant,
}

impl RoomOwner {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        room: Room,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        metrics: Arc<Metrics>,
        acks: mpsc::UnboundedSender<AckBatch>,
        in_flight: Arc<Semaphore>,
        ended_grace: Duration,
        retire: Box<dyn FnOnce() + Send>,
        fence: Option<u64>,
        lost: CancellationToken,
    ) -> RoomOwner {
        RoomOwner {
            ended_grace,
            retire: Some(retire),
            fence,
            lost,
            last_input: tokio::time::Instant::now(),
            last_tick: tokio::time::Instant::now(),
            on_air_sent: room.record().brand_on_air.clone(),
            room,
            sessions: HashMap::new(),
            watchers: Vec::new(),
            media_followers: Vec::new(),
            store,
            bus,
            metrics,
            acks,
            in_flight,
            pending_ops: Vec::new(),
            deferred: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Runs until every handle is gone, the node drains (`stop`), or the room has ended and
    /// nobody was attached for the grace period.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<RoomMsg>,
        stop: CancellationToken,
    ) -> Stopped {
        let mut out = Vec::with_capacity(64);
        let stopped = loop {
            // The room names its next deadline; with nothing due it sleeps until an input.
            let wake = self.next_wake();
            let msg = tokio::select! {
                biased;
                _ = stop.cancelled() => break Stopped::Drained,
                _ = self.lost.cancelled() => break Stopped::SteppedDown,
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => break Stopped::Orphaned,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                    self.last_tick = tokio::time::Instant::now();
                    self.room.tick(now_ms(), &mut out);
                    self.flush(&mut out).await;
                    if self.idle_and_ended() {
                        // Out of the registry first, so new users load it afresh; then
                        // what is already in the mailbox is still answered.
                        if let Some(retire) = self.retire.take() {
                            retire();
                        }
                        rx.close();
                        while let Ok(m) = rx.try_recv() {
                            self.handle(m, &mut out);
                        }
                        self.flush(&mut out).await;
                        break Stopped::Retired;
                    }
                    continue;
                }
            };
            self.last_input = tokio::time::Instant::now();
            // Everything already waiting is applied before the writes go to the store
            // together: one submission, one commit, however many grabs it holds.
            let mut next = Some(msg);
            let mut n = 0;
            while let Some(msg) = next.take() {
                self.handle(msg, &mut out);
                n += 1;
                if n < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.flush(&mut out).await;
        };
        if let Stopped::SteppedDown = stopped {
            // Nothing more is written (it would be fenced) and nothing more is answered:
            // the next owner loads the room from what is durable.
            tracing::warn!("this node no longer owns the room; stepping down");
            out.clear();
            if let Some(retire) = self.retire.take() {
                retire();
            }
            rx.close();
            for (_, s) in self.sessions.drain() {
                s.sink.close(
                    Refusal::new(
                        EndReason::RoomUnavailable,
                        "the room moved to another server; reconnect",
                    ),
                    true,
                );
            }
            return stopped;
        }
        // Engagement counted since the last batch is written with the last submission.
        self.room.flush_engagement(&mut out);
        self.flush(&mut out).await;
        if let Stopped::Drained = stopped {
            for (_, s) in self.sessions.drain() {
                s.sink.close(
                    Refusal::new(EndReason::ShuttingDown, "server shutting down"),
                    true,
                );
            }
        }
        stopped
    }

    /// When the owner must wake without an input: the room's next deadline, or the end of an
    /// ended room's grace period.
    fn next_wake(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        // Never sooner than MIN_TICK after the last tick: a deadline the tick did not clear
        // (a bug) must cost a little CPU, not a core.
        let room = self.room.next_deadline().map(|at| {
            let due = now + Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64);
            due.max(self.last_tick + MIN_TICK)
        });
        let retire = (self.room.record().state == RoomState::Ended)
            .then(|| (self.last_input + self.ended_grace).max(now + MIN_IDLE_CHECK));
        room.into_iter().chain(retire).min()
    }

    fn idle_and_ended(&self) -> bool {
        self.room.record().state == RoomState::Ended
            && self.sessions.is_empty()
            && self.room.media_sessions() == 0
            && self.watchers.iter().all(|w| w.is_closed())
            && self.last_input.elapsed() >= self.ended_grace
    }

    /// Carries out the outputs of the inputs applied so far and submits their writes; the
    /// acknowledgements and host replies wait for those writes in the acker.
    async fn flush(&mut self, out: &mut Vec<Output>) {
        let ops = self.carry_out(out);
        self.tell_media();
        if ops.is_empty() && self.deferred.is_empty() {
            for (reply, r) in self.replies.drain(..) {
                let _ = reply.send(Ok(r));
            }
            return;
        }
        // The bound on writes in flight: with every slot taken the room stops here, takes no
        // further input, and its mailbox fills (its senders wait) until the store catches up.
        let slot = match self.in_flight.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                self.metrics.room_write_waits.inc();
                let Ok(slot) = self.in_flight.clone().acquire_owned().await else {
                    return;
                };
                slot
            }
        };
        // With no writes of its own, the (empty) submission is a barrier: it resolves once
        // everything submitted before is durable (a repeated key's answer waits for the
        // first write). Writes of a leased room carry its fence first.
        let ops = match self.fence {
            Some(token) if !ops.is_empty() => {
                let mut fenced = Vec::with_capacity(ops.len() + 1);
                fenced.push(StoreOp::Fence {
                    room: self.room.id().to_string(),
                    token,
                });
                fenced.extend(ops);
                fenced
            }
            _ => ops,
        };
        let durable = self.store.submit(ops);
        // The next batch is likely as large as this one: no regrowing from empty.
        let next = Vec::with_capacity(self.deferred.len());
        let sends = std::mem::replace(&mut self.deferred, next);
        let batch = AckBatch {
            durable,
            sends,
            replies: std::mem::take(&mut self.replies),
            slot,
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
                sink,
                reply,
            } => {
                // Registered first so the welcome produced below reaches it.
                self.sessions.insert(
                    session,
                    SessionEntry {
                        sink,
                        class: AudienceClass::Public,
                        remote: false,
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
            RoomMsg::JoinRemote {
                session,
                req,
                sink,
                reply,
            } => {
                // The session's first frames are caught here and returned with the answer, so
                // the serving node queues them before any event it renders from the bus.
                // Room for the welcome and the whole resume window.
                let window = self.room.record().history_window as usize;
                let (first, mut caught) = SessionSink::new(window + 16);
                self.sessions.insert(
                    session,
                    SessionEntry {
                        sink: first,
                        class: AudienceClass::Public,
                        remote: true,
                    },
                );
                // The node serving the session replays the missed events itself.
                let replay_after = req
                    .resume
                    .as_ref()
                    .filter(|r| r.replayed_by_node && self.room.resumable(r))
                    .map(|r| r.last_seq);
                let joined = self.room.join(session, req, now, out);
                self.carry_out_now(out);
                match joined {
                    Ok(class) => {
                        let mut initial = Vec::new();
                        while let Some(frame) = caught.frames.try_recv() {
                            initial.push(frame.as_str().to_string());
                        }
                        if let Some(s) = self.sessions.get_mut(&session) {
                            s.class = class;
                            s.sink = sink;
                        }
                        let record = self.room.record();
                        let _ = reply.send(Ok(crate::rooms::RemoteJoined {
                            class,
                            seq: self.room.seq(),
                            epoch: self.room.epoch().to_string(),
                            tiers: record.tiers.clone(),
                            currency: record.currency.clone(),
                            window: record.history_window,
                            initial,
                            replay_after,
                        }));
                    }
                    Err(refusal) => {
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
            RoomMsg::AttachMedia { media, reply } => {
                let _ = reply.send(self.room.attach_media(media, now));
            }
            RoomMsg::DetachMedia { id } => self.room.detach_media(&id),
            RoomMsg::FollowMedia { tx } => {
                if tx
                    .try_send(MediaSignal::OnAir(self.room.record().brand_on_air.clone()))
                    .is_ok()
                {
                    self.media_followers.push(tx);
                }
            }
            RoomMsg::LiveFeeds { brands } => self.room.set_live_feeds(brands, now, out),
            RoomMsg::Panic => panic!("panic injected by a test (Hub::inject_panic)"),
            RoomMsg::Host { cmd, reply } => match self.room.host(cmd, now, out) {
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
                // The reply waits for durability, the room does not.
                Ok(r) => self.replies.push((reply, r)),
            },
            RoomMsg::Watch { tx } => {
                if self.room.record().state == RoomState::Ended {
                    let _ = tx.try_send(WatchEvent::Ended);
                } else {
                    self.watchers.push(tx);
                    self.room.set_watched(true);
                }
            }
        }
    }

    /// Tells media followers when the brand on air changed.
    fn tell_media(&mut self) {
        let brand = &self.room.record().brand_on_air;
        if *brand != self.on_air_sent {
            self.on_air_sent.clone_from(brand);
            self.signal_media(MediaSignal::OnAir(brand.clone()));
        }
    }

    fn signal_media(&mut self, signal: MediaSignal) {
        let metrics = &self.metrics;
        self.media_followers
            .retain(|f| match f.try_send(signal.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics.queue_drops.inc();
                    tracing::error!("media follower is not keeping up; a signal was lost");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    fn slow_consumer(&mut self, session: SessionId, out: &mut Vec<Output>) {
        if let Some(s) = self.sessions.remove(&session) {
            self.metrics.queue_drops.inc();
            self.metrics.slow_consumer_closes.inc();
            s.sink.close(
                Refusal::new(EndReason::SlowConsumer, "slow consumer"),
                false,
            );
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
                            if s.remote {
                                continue;
                            }
                            let Some(t) = texts.for_class(s.class).clone() else {
                                continue;
                            };
                            if s.sink.offer(t).is_err() {
                                slow.push(*id);
                            }
                        }
                        for id in slow {
                            self.slow_consumer(id, &mut more);
                        }
                    }
                    Output::Published(ev) => {
                        if let Err(e) = self.bus.publish(ev) {
                            self.metrics.queue_drops.inc();
                            tracing::warn!(error = %e, "event not published on the bus");
                        }
                    }
                    Output::Send { session, frame } => {
                        let (Some(s), Some(frame)) = (self.sessions.get(&session), text(frame))
                        else {
                            continue;
                        };
                        // A frame for one session answers it (or tells it something about
                        // itself): no coalescing wait.
                        if s.sink.offer_now(frame).is_err() {
                            self.slow_consumer(session, &mut more);
                        }
                    }
                    Output::ClassChanged { session, class } => {
                        if let Some(s) = self.sessions.get_mut(&session) {
                            s.class = class;
                            if s.remote {
                                if let Err(e) =
                                    self.bus.publish_class(self.room.id(), session, class)
                                {
                                    // Its node would render for the old class: close it, it
                                    // rejoins with the new one.
                                    tracing::warn!(error = %e, "class change not published");
                                    s.sink.close(
                                        Refusal::new(
                                            EndReason::RoomUnavailable,
                                            "your access changed; reconnect",
                                        ),
                                        true,
                                    );
                                }
                            }
                        }
                    }
                    Output::Close { session, why } => {
                        if let Some(s) = self.sessions.remove(&session) {
                            s.sink.close(why, true);
                            self.room.leave(session, now_ms(), &mut more);
                        }
                    }
                    Output::EndMedia { ids, why } => {
                        self.signal_media(MediaSignal::End { ids, why });
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
                                sink: s.sink.clone(),
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
