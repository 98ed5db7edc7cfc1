//! A node's follower of one room's media (`Edge`): the room's signals from its owner (or its
//! own, on the room's node), the sync with the owner, and the relay subscriptions at the
//! room's origins while this node has viewers.

use super::*;

pub(super) fn rx_stream(rx: mpsc::Receiver<MediaSignal>) -> BoxStream<'static, MediaSignal> {
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

/// A relay subscription at one origin.
struct Upstream {
    sub: SubKey,
    /// When it was last renewed.
    ok: Option<Instant>,
}

/// A node's follower of one room's media.
pub(super) struct Edge {
    link: Arc<MediaLink>,
    room: String,
    /// The last signal taken from the owner: (epoch, version).
    seen: Option<(u64, u64)>,
    /// When the room last had a viewer here.
    viewers_seen: Instant,
    /// When the room last had any media session or feed here.
    active_seen: Instant,
    /// Relay subscriptions by origin node.
    upstreams: HashMap<String, Upstream>,
}

impl Edge {
    pub(super) fn new(link: Arc<MediaLink>, room: &str) -> Edge {
        Edge {
            link,
            room: room.to_string(),
            seen: None,
            viewers_seen: Instant::now(),
            active_seen: Instant::now(),
            upstreams: HashMap::new(),
        }
    }

    pub(super) fn attached_ids(&self) -> Vec<String> {
        self.link
            .attached
            .get(&self.room)
            .map(|a| a.lock().keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn wants_relay(&mut self) -> bool {
        let viewers = self
            .link
            .media()
            .and_then(|m| m.room_media(&self.room))
            .map_or(0, |r| r.subscriber_count());
        if viewers > 0 {
            self.viewers_seen = Instant::now();
        }
        self.link.relays() && self.viewers_seen.elapsed() < LINGER
    }

    /// Whether this node has (or had within `LINGER`) a media session or a feed of the room.
    /// A room without either here is not synced: nothing here needs it, and a sync could
    /// make this node take a room nobody runs any more.
    pub(super) fn active(&mut self) -> bool {
        let media = self.link.media();
        let viewers = media
            .as_ref()
            .and_then(|m| m.room_media(&self.room))
            .is_some_and(|r| r.subscriber_count() > 0);
        let feeds = media.is_some_and(|m| !m.local_brands(&self.room).is_empty());
        if viewers || feeds || !self.attached_ids().is_empty() {
            self.active_seen = Instant::now();
        }
        self.active_seen.elapsed() < LINGER
    }

    /// The room's media here has ended (the room ended): nothing more to follow.
    pub(super) fn ended(&self) -> bool {
        self.link
            .media()
            .and_then(|m| m.room_media(&self.room))
            .is_some_and(|r| r.is_ended())
    }

    pub(super) fn sub_of(&mut self, origin: &str) -> SubKey {
        self.upstreams
            .entry(origin.to_string())
            .or_insert_with(|| Upstream {
                sub: SubKey::random(),
                ok: None,
            })
            .sub
    }

    pub(super) fn sync_request(&mut self) -> Request {
        let owner = self.link.owners.get(&self.room).map(|o| o.clone());
        let relay = match owner {
            Some(o) if self.wants_relay() => Some(self.sub_of(&o)),
            _ => None,
        };
        Request::Sync {
            room: self.room.clone(),
            node: self.link.node_id.clone(),
            ids: self.attached_ids(),
            relay,
            live: self
                .link
                .media()
                .map(|m| m.local_brands(&self.room))
                .unwrap_or_default(),
            address: self.link.relay_address(),
        }
    }

    /// A newer signal than the last one taken (a new epoch starts afresh).
    pub(super) fn newer(&mut self, epoch: u64, version: u64) -> bool {
        match self.seen {
            Some((e, v)) if e == epoch && v >= version => false,
            _ => {
                self.seen = Some((epoch, version));
                true
            }
        }
    }

    pub(super) async fn run(
        &mut self,
        mut subscription: async_nats::Subscriber,
        mut local: Option<BoxStream<'static, MediaSignal>>,
        poke: Arc<tokio::sync::Notify>,
        tx: mpsc::Sender<MediaSignal>,
    ) {
        let mut every = tokio::time::interval(SYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if local.is_none() && self.link.local.runs(&self.room) {
                // This node took the room over: its own signals from now on.
                if let Ok(s) = self.link.local.follow_media(&self.room).await {
                    self.link.owners.remove(&self.room);
                    self.seen = None;
                    local = Some(s);
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = self.link.stop.cancelled() => return,
                s = next_local(&mut local) => match s {
                    Some(s) => {
                        if tx.send(s).await.is_err() {
                            return;
                        }
                    }
                    // The room left this node (or ended): the owner's, wherever it is, next.
                    None => local = None,
                },
                m = subscription.next() => {
                    let Some(m) = m else { return };
                    // On the room's node its own stream is followed (and this is its echo).
                    if local.is_some() {
                        continue;
                    }
                    let Ok(p) = serde_json::from_slice::<Published>(&m.payload) else {
                        continue;
                    };
                    // An `End` is taken even if older: ending a session twice is harmless.
                    let take = matches!(p.signal, MediaSignal::End { .. })
                        || self.newer(p.epoch, p.version);
                    if take && tx.send(p.signal).await.is_err() {
                        return;
                    }
                }
                _ = every.tick() => {
                    if !self.tick(local.is_some(), &tx).await {
                        return;
                    }
                }
                _ = poke.notified() => {
                    if !self.tick(local.is_some(), &tx).await {
                        return;
                    }
                }
            }
        }
    }

    /// One round: on the room's node, the relays from the other origins; elsewhere, a sync
    /// with the owner. `false` once nobody listens any more.
    pub(super) async fn tick(&mut self, owner_here: bool, tx: &mpsc::Sender<MediaSignal>) -> bool {
        if self.ended() {
            return false;
        }
        if !owner_here && !self.active() {
            // Dormant until a session comes: then the next sync brings the state back.
            self.stop_all();
            return true;
        }
        if owner_here {
            let origins = self.link.origins_of(&self.room, &self.link.node_id);
            self.follow_origins(origins).await;
            return true;
        }
        let node = match self.link.owner(&self.room).await {
            Ok(Some(node)) => node,
            Ok(None) => return true,
            Err(_) => {
                self.lapse_all();
                return true;
            }
        };
        let req = self.sync_request();
        match self.link.request(&node, &req).await {
            Ok(Answer::Synced(s)) => {
                if self.newer(s.epoch, s.version)
                    && tx.send(MediaSignal::OnAir(s.on_air.clone())).await.is_err()
                {
                    return false;
                }
                self.apply(&node, s, tx).await;
            }
            Ok(Answer::NotHere(next)) => {
                match next {
                    Some(n) => self.link.owners.insert(self.room.clone(), n),
                    None => self.link.owners.remove(&self.room).map(|(_, n)| n),
                };
                self.lapse_all();
            }
            other => {
                if let Err(e) = other {
                    tracing::debug!(room = %self.room, error = %e, "media sync");
                }
                self.link.owners.remove(&self.room);
                self.lapse_all();
            }
        }
        true
    }

    /// What a sync with the owner `node` answered, beyond the brand on air.
    pub(super) async fn apply(&mut self, node: &str, s: Synced, tx: &mpsc::Sender<MediaSignal>) {
        self.reattach(node, s.gone, tx).await;
        match s.relay {
            Some(offer) => self.take_offer(node, offer).await,
            None => self.stop(node),
        }
        let wanted: Vec<(String, String)> = s.origins;
        // Origins the owner no longer names (but the owner itself) are let go.
        let gone: Vec<String> = self
            .upstreams
            .keys()
            .filter(|n| *n != node && !wanted.iter().any(|(w, _)| w == *n))
            .cloned()
            .collect();
        for n in gone {
            self.stop(&n);
        }
        self.follow_origins(wanted).await;
    }

    /// Keeps a relay subscription at each of `origins` (not this node) while there are
    /// viewers here.
    pub(super) async fn follow_origins(&mut self, origins: Vec<(String, String)>) {
        let wants = self.wants_relay();
        let gone: Vec<String> = self
            .upstreams
            .keys()
            .filter(|n| !wants || !origins.iter().any(|(o, _)| o == *n))
            .filter(|n| {
                self.link
                    .owners
                    .get(&self.room)
                    .is_none_or(|o| o.as_str() != n.as_str())
            })
            .cloned()
            .collect();
        for n in gone {
            self.stop(&n);
        }
        if !wants {
            return;
        }
        for (origin, _) in origins {
            if origin == self.link.node_id {
                continue;
            }
            let sub = self.sub_of(&origin);
            let req = Request::Relay {
                room: self.room.clone(),
                sub,
            };
            let offer = match self.link.request(&origin, &req).await {
                Ok(Answer::Relayed(offer)) => offer,
                Ok(_) => Err(format!("node {origin} answered out of turn")),
                Err(e) => Err(e),
            };
            self.take_offer(&origin, offer).await;
        }
    }

    /// Sessions the owner no longer has attached are attached again (a new owner admits
    /// them as the old one did) or, if refused, ended.
    pub(super) async fn reattach(
        &self,
        node: &str,
        gone: Vec<String>,
        tx: &mpsc::Sender<MediaSignal>,
    ) {
        for id in gone {
            let Some(m) = self
                .link
                .attached
                .get(&self.room)
                .and_then(|a| a.lock().get(&id).cloned())
            else {
                continue;
            };
            let req = self.link.attach_request(&self.room, &m);
            let why = match self.link.request(node, &req).await {
                Ok(Answer::Attached(Ok(()))) => continue,
                Ok(Answer::Attached(Err(r))) => r,
                // Not settled: the next sync tries again.
                _ => continue,
            };
            if let Some(a) = self.link.attached.get(&self.room) {
                a.lock().remove(&id);
            }
            let _ = tx.send(MediaSignal::End { ids: vec![id], why }).await;
        }
    }

    /// An origin's answer: its feeds become the room's here, or the subscription lapses.
    pub(super) async fn take_offer(&mut self, origin: &str, offer: Offer) {
        let Some(media) = self.link.media() else {
            return;
        };
        let sub = self.sub_of(origin);
        let (address, feeds) = match offer {
            Ok(x) => x,
            Err(why) => {
                tracing::debug!(room = %self.room, origin, why, "no relay");
                self.lapse(origin);
                return;
            }
        };
        let resolved = match tokio::net::lookup_host(&address).await {
            Ok(mut a) => a.next(),
            Err(_) => None,
        };
        let Some(at) = resolved else {
            tracing::warn!(room = %self.room, %address, "cannot resolve an origin's relay address");
            self.lapse(origin);
            return;
        };
        match media.follow_relay(&self.room, sub, at, feeds) {
            Ok(()) => {
                if let Some(u) = self.upstreams.get_mut(origin) {
                    u.ok = Some(Instant::now());
                }
            }
            Err(e) => {
                tracing::debug!(room = %self.room, error = %e, "relay");
                self.lapse(origin);
            }
        }
    }

    /// A subscription was not renewed: once its origin has stopped sending, its feeds leave.
    pub(super) fn lapse(&mut self, origin: &str) {
        let expired = self
            .upstreams
            .get(origin)
            .is_some_and(|u| u.ok.is_some_and(|t| t.elapsed() >= SUBSCRIPTION_TTL));
        if expired {
            self.stop(origin);
        }
    }

    pub(super) fn lapse_all(&mut self) {
        let origins: Vec<String> = self.upstreams.keys().cloned().collect();
        for o in origins {
            self.lapse(&o);
        }
    }

    /// Ends the subscription at `origin`: its feeds leave the room here.
    pub(super) fn stop(&mut self, origin: &str) {
        if let Some(u) = self.upstreams.remove(origin) {
            if let Some(media) = self.link.media() {
                media.drop_relay(&self.room, u.sub.id);
            }
        }
    }

    pub(super) fn stop_all(&mut self) {
        let origins: Vec<String> = self.upstreams.keys().cloned().collect();
        for o in origins {
            self.stop(&o);
        }
    }
}

/// The next signal of the room's own stream; never, without one.
async fn next_local(local: &mut Option<BoxStream<'static, MediaSignal>>) -> Option<MediaSignal> {
    match local {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
