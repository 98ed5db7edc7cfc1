//! The serving node's side: following the rooms other nodes own for this node's viewers,
//! rendering their events per class, and forwarding the viewers' messages and watches.

use super::*;

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
    /// The last events received (a contiguous run: a gap ends the follower): for sessions
    /// whose join answer is on its way, and the node's own resume window.
    kept: VecDeque<Arc<SeqEvent>>,
    /// How many events `kept` holds at most: the room's `history_window`, and never fewer
    /// than `KEPT_EVENTS`.
    window: usize,
    /// Tiers and currency of the room (from the first join answer).
    render: Option<(Vec<String>, String)>,
    /// The room's epoch, from the first join answer: the kept events are of that epoch.
    epoch: Option<String>,
}

impl FollowState {
    fn deliver(&mut self, ev: Arc<SeqEvent>, metrics: &Metrics) {
        while self.kept.len() >= self.window.max(KEPT_EVENTS) {
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

    /// The kept events after `seq`, in order; `None` if the first of them is no longer kept
    /// (the session would miss it).
    fn kept_after(&self, seq: u64) -> Option<Vec<Arc<SeqEvent>>> {
        let newer: Vec<Arc<SeqEvent>> = self.kept.iter().filter(|e| e.seq > seq).cloned().collect();
        match newer.first() {
            Some(first) if first.seq != seq + 1 => None,
            _ => Some(newer),
        }
    }

    /// Whether this node can replay a resume itself: it follows the room in that epoch and
    /// still keeps the event right after `last_seq` (or an earlier one). The owner still
    /// decides whether the session resumes at all.
    fn replays(&self, r: &ResumeFrom) -> bool {
        self.epoch.is_some()
            && r.epoch == self.epoch
            && self.kept.front().is_some_and(|e| e.seq <= r.last_seq + 1)
    }

    /// One event rendered for one class (a session catching up alone).
    fn frame_for(&self, ev: &SeqEvent, class: AudienceClass) -> Option<Text> {
        let (tiers, currency) = self.render.as_ref()?;
        Text::try_from(render(ev, tiers, currency).for_class(class).clone()).ok()
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
    ) -> Result<Arc<RemoteViewers>, crate::cluster::ClusterError> {
        let mut inbox = client
            .subscribe(serving_subject(node_id))
            .await
            .map_err(|e| {
                crate::cluster::ClusterError::jet_stream("subscribe to relayed frames", e)
            })?;
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
                let Some(msg) = crate::cluster::next_or_stop(&mut inbox, &stop).await else {
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

    /// The node holding the room's lease now, if any (and NATS answers).
    pub async fn holder(&self, room: &str) -> Option<String> {
        self.leases
            .holder(room)
            .await
            .ok()
            .flatten()
            .map(|(node, _)| node)
    }

    /// Where clients reach `node`, if it advertises an address.
    pub async fn address_of(&self, node: &str) -> Option<String> {
        self.leases.address_of(node).await
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
                if let Some(r) = req.resume.as_mut() {
                    r.replayed_by_node = state.replays(r);
                }
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
        let (outcome, left) = self.settle_join(&f, room, owner, session, &sink, answer);
        if f.stop.is_cancelled()
            && self
                .rooms
                .remove_if(room, |_, x| Arc::ptr_eq(x, &f))
                .is_some()
        {
            self.metrics.rooms_followed.set(self.rooms.len() as i64);
        }
        for session in left {
            self.send_leave(owner, room, session).await;
        }
        outcome
    }

    /// Applies a join's answer to the follower's state: the session's first frames and the
    /// events it needs queued, or why not. Also returns the sessions the owner must hear
    /// left (joined there but cannot be served here).
    fn settle_join(
        &self,
        f: &Follower,
        room: &str,
        owner: &str,
        session: SessionId,
        sink: &SessionSink,
        answer: JoinAnswer,
    ) -> (RemoteJoin, Vec<SessionId>) {
        let mut state = f.state.lock();
        let joined = match answer {
            JoinAnswer::Joined(j) => j,
            other => {
                state.sessions.remove(&session);
                let outcome = match other {
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
                return (outcome, Vec::new());
            }
        };
        if state.epoch.as_ref().is_some_and(|e| *e != joined.epoch) {
            // The room restarted on its owner since this follower began: the events it keeps
            // are of the earlier incarnation, and so are its sessions. They all reconnect.
            f.stop.cancel();
            let why = Refusal::new(EndReason::RoomUnavailable, "the room restarted; reconnect");
            let mut left = state.close_all(why.clone());
            if !left.contains(&session) {
                left.push(session);
            }
            return (RemoteJoin::Refused(why), left);
        }
        state.epoch = Some(joined.epoch);
        state.window = joined.window as usize;
        state.render = Some((joined.tiers, joined.currency));
        // Closed or gone while the answer was on its way: whoever closed it tells the owner.
        if !state.sessions.contains_key(&session) {
            return (RemoteJoin::Refused(moved()), Vec::new());
        }
        // The events after the joining seq that came before the answer; for a resume this
        // node replays, every event after the session's `last_seq`.
        let from = joined.replay_after.unwrap_or(joined.seq);
        let Some(missed) = state.kept_after(from) else {
            state.sessions.remove(&session);
            let why = Refusal::new(
                EndReason::RoomUnavailable,
                "the room moved on faster than this server could follow; reconnect",
            );
            return (RemoteJoin::Refused(why), vec![session]);
        };
        if joined.replay_after.is_some() {
            self.metrics.resumes_replayed_here.inc();
        }
        for frame in joined.initial {
            let _ = sink.offer_now(Text::from(frame));
        }
        for ev in missed {
            if let Some(t) = state.frame_for(&ev, joined.class) {
                let _ = sink.offer(t);
            }
        }
        if let Some(s) = state.sessions.get_mut(&session) {
            // Every event up to the newest kept one is queued: later ones come from the bus.
            s.after = Some(from);
            s.class = joined.class;
        }
        (RemoteJoin::Joined(joined.class), Vec::new())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Product, RoomEvent};

    fn ev(seq: u64, event: RoomEvent) -> Arc<SeqEvent> {
        Arc::new(SeqEvent {
            room: "r".into(),
            seq,
            at_ms: 0,
            event,
        })
    }

    fn announce(seq: u64) -> Arc<SeqEvent> {
        ev(
            seq,
            RoomEvent::Announce {
                text: format!("a{seq}"),
            },
        )
    }

    fn product_update(seq: u64) -> Arc<SeqEvent> {
        ev(
            seq,
            RoomEvent::ProductUpdated {
                product: Product {
                    id: "p".into(),
                    brand_id: "b".into(),
                    name: "tent".into(),
                    description: String::new(),
                    image_urls: vec![],
                    link: "https://shop.example/p".into(),
                    min_order_quantity: 1,
                    prices: vec![("gold".into(), 111), ("silver".into(), 222)],
                },
            },
        )
    }

    fn state() -> FollowState {
        FollowState {
            render: Some((vec!["gold".into(), "silver".into()], "EUR".into())),
            ..FollowState::default()
        }
    }

    fn session(
        st: &mut FollowState,
        id: u64,
        class: AudienceClass,
        after: Option<u64>,
    ) -> SessionQueue {
        let (sink, q) = SessionSink::new(16);
        st.sessions.insert(
            SessionId::new(crate::model::NodeTag::of("n"), id),
            Local { sink, class, after },
        );
        q
    }

    fn frames(q: &mut SessionQueue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = q.frames.try_recv() {
            out.push(f.as_str().to_string());
        }
        out
    }

    #[test]
    fn events_render_per_class_and_only_after_each_sessions_seq() {
        let metrics = Metrics::new();
        let mut st = state();
        let mut public = session(&mut st, 1, AudienceClass::Public, Some(0));
        let mut silver = session(&mut st, 2, AudienceClass::Dealer(1), Some(0));
        let mut joining = session(&mut st, 3, AudienceClass::Public, None);
        let mut ahead = session(&mut st, 4, AudienceClass::Dealer(0), Some(1));
        st.deliver(product_update(1), &metrics);
        let p = frames(&mut public);
        assert_eq!(p.len(), 1);
        assert!(
            !p[0].contains("price") && !p[0].contains("shop.example"),
            "{p:?}"
        );
        let s = frames(&mut silver);
        assert!(s[0].contains("\"price_cents\":222"), "{s:?}");
        assert!(
            frames(&mut joining).is_empty(),
            "a joining session waits for its answer"
        );
        assert!(
            frames(&mut ahead).is_empty(),
            "its first frames already hold seq 1"
        );
        st.deliver(announce(2), &metrics);
        assert_eq!(frames(&mut ahead).len(), 1);
    }

    #[test]
    fn a_joiner_gets_the_kept_events_after_its_seq_or_hears_of_a_gap() {
        let metrics = Metrics::new();
        let mut st = state();
        for seq in 5..=9 {
            st.deliver(announce(seq), &metrics);
        }
        let seqs =
            |v: Option<Vec<Arc<SeqEvent>>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(st.kept_after(6)), Some(vec![7, 8, 9]));
        assert_eq!(seqs(st.kept_after(9)), Some(vec![]));
        assert_eq!(
            seqs(st.kept_after(12)),
            Some(vec![]),
            "nothing newer arrived yet"
        );
        assert_eq!(seqs(st.kept_after(3)), None, "seq 4 is not kept: a gap");
        assert_eq!(seqs(st.kept_after(4)), Some(vec![5, 6, 7, 8, 9]));
        // The window is bounded.
        for seq in 10..(10 + KEPT_EVENTS as u64) {
            st.deliver(announce(seq), &metrics);
        }
        assert_eq!(st.kept.len(), KEPT_EVENTS);
        assert_eq!(seqs(st.kept_after(6)), None);
    }

    #[test]
    fn a_node_replays_a_resume_only_from_its_own_unbroken_window_of_that_epoch() {
        let metrics = Metrics::new();
        let mut st = state();
        let r = |last_seq: u64, epoch: Option<&str>| ResumeFrom {
            last_seq,
            epoch: epoch.map(str::to_string),
            replayed_by_node: false,
        };
        for seq in 5..=9 {
            st.deliver(announce(seq), &metrics);
        }
        assert!(
            !st.replays(&r(6, Some("e1"))),
            "no join answer yet: the epoch of the kept events is unknown"
        );
        st.epoch = Some("e1".into());
        assert!(st.replays(&r(6, Some("e1"))));
        assert!(st.replays(&r(4, Some("e1"))), "seq 5 onwards is kept");
        assert!(st.replays(&r(9, Some("e1"))), "nothing missed");
        assert!(!st.replays(&r(3, Some("e1"))), "seq 4 is not kept");
        assert!(!st.replays(&r(6, Some("e0"))), "another incarnation");
        assert!(!st.replays(&r(6, None)));
        // The window follows the room's history_window, never below KEPT_EVENTS.
        st.window = KEPT_EVENTS + 100;
        for seq in 10..(10 + KEPT_EVENTS as u64 + 200) {
            st.deliver(announce(seq), &metrics);
        }
        assert_eq!(st.kept.len(), KEPT_EVENTS + 100);
    }

    #[test]
    fn a_full_session_queue_closes_it_as_a_slow_consumer() {
        let metrics = Metrics::new();
        let mut st = state();
        let (sink, q) = SessionSink::new(1);
        st.sessions.insert(
            SessionId::new(crate::model::NodeTag::of("n"), 1),
            Local {
                sink,
                class: AudienceClass::Public,
                after: Some(0),
            },
        );
        st.deliver(announce(1), &metrics);
        st.deliver(announce(2), &metrics);
        assert_eq!(
            q.close.get().map(|c| c.why.reason),
            Some(EndReason::SlowConsumer)
        );
    }
}
