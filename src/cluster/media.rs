//! Media across nodes: the control plane of the cascade (its data plane is
//! `media::cascade`). See docs/cluster.md, "Media across nodes".
//
// Presenters publish on the room's owner (WHIP elsewhere is redirected there): the owner is
// the origin of every feed. A node with WHEP viewers of a room it does not run is an edge:
// - its WHEP sessions are attached to the room at the owner (`Attach`/`Detach`), so a kick,
//   a revoked token or the room's end reaches them;
// - it follows the room's media signals (brand on air, sessions to end) on the room's media
//   subject, and every `SYNC_EVERY` asks the owner for the current state (`Sync`), which
//   repairs a lost signal: the brand on air is versioned, and each of its sessions the owner
//   no longer has attached (a lost `End`, a new owner) is attached again or ended;
// - while it has viewers, the same `Sync` renews its relay subscription: the owner answers
//   with its relay address and its feeds, and sends their packets to the edge's relay
//   socket until the subscription is not renewed.

use crate::hub::Hub;
use crate::media::{Media, RelayedFeed, SUBSCRIPTION_TTL};
use crate::model::{EndReason, MediaSession, Refusal};
use crate::rooms::ownership::OwnershipError;
use crate::rooms::{MediaSignal, Rooms, RoomsError};
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often an edge syncs with the owner (and renews its relay subscription).
const SYNC_EVERY: Duration = Duration::from_millis(500);
/// How long a media request to the owner may take.
const DEADLINE: Duration = Duration::from_secs(3);
/// An edge keeps its relay subscription this long after its last viewer left.
const LINGER: Duration = Duration::from_secs(5);
/// An owner stops publishing a room's signals when no edge synced for this long.
const IDLE: Duration = Duration::from_secs(30);
/// Ended media session ids an owner remembers per room (to repair a lost `End`).
const ENDED_KEPT: usize = 10_000;

fn node_subject(node: &str) -> String {
    format!("showfloor.node.{}.media", hex::encode(node))
}

fn room_subject(room: &str) -> String {
    format!("showfloor.room.{}.media", hex::encode(room))
}

#[derive(Serialize, Deserialize)]
enum Request {
    Attach {
        room: String,
        media: MediaSession,
    },
    Detach {
        room: String,
        id: String,
    },
    /// The room's media state, which of `ids` are no longer attached, and (with `relay`)
    /// the renewal of that relay subscription.
    Sync {
        room: String,
        ids: Vec<String>,
        relay: Option<u64>,
    },
}

#[derive(Serialize, Deserialize)]
enum Answer {
    Attached(Result<(), Refusal>),
    Detached,
    Synced(Synced),
    /// This node does not run the room (the lease's holder, if known).
    NotHere(Option<String>),
    Failed(String),
}

#[derive(Serialize, Deserialize)]
struct Synced {
    /// The owner's signal publisher: a new one numbers its signals afresh.
    epoch: u64,
    version: u64,
    on_air: Option<String>,
    gone: Vec<String>,
    /// The relay address and feeds, or why there are none.
    relay: Option<Result<(String, Vec<RelayedFeed>), String>>,
}

/// A signal on a room's media subject.
#[derive(Serialize, Deserialize)]
struct Published {
    epoch: u64,
    version: u64,
    signal: MediaSignal,
}

/// The owner's publisher of one room's media signals.
struct Publisher {
    epoch: u64,
    state: Mutex<PublisherState>,
    stop: CancellationToken,
}

struct PublisherState {
    version: u64,
    on_air: Option<String>,
    ended: HashSet<String>,
    ended_order: std::collections::VecDeque<String>,
    last_sync: Instant,
}

/// The media link of a node of a cluster: both the owner's answers and the edge's side.
pub struct MediaLink {
    client: async_nats::Client,
    local: Arc<Hub>,
    /// Set once media has started (media is built on the rooms this link serves).
    media: OnceLock<Weak<Media>>,
    /// Where other nodes send relay datagrams to this node (`None`: no relaying).
    relay_address: OnceLock<Option<String>>,
    publishers: DashMap<String, Arc<Publisher>>,
    /// Edge side: the WHEP sessions attached at other nodes, per room.
    attached: DashMap<String, Arc<Mutex<HashMap<String, MediaSession>>>>,
    /// Edge side: the owner last seen per room.
    owners: DashMap<String, String>,
    stop: CancellationToken,
}

impl MediaLink {
    pub fn new(client: async_nats::Client, local: Arc<Hub>, stop: CancellationToken) -> Arc<Self> {
        Arc::new(MediaLink {
            client,
            local,
            media: OnceLock::new(),
            relay_address: OnceLock::new(),
            publishers: DashMap::new(),
            attached: DashMap::new(),
            owners: DashMap::new(),
            stop,
        })
    }

    /// Media has started: this node relays (to and from other nodes) when it has a relay
    /// address others can reach.
    pub fn media_started(&self, media: &Arc<Media>, relay_address: Option<String>) {
        let _ = self.media.set(Arc::downgrade(media));
        let _ = self
            .relay_address
            .set(relay_address.filter(|_| media.relays()));
    }

    fn media(&self) -> Option<Arc<Media>> {
        self.media.get()?.upgrade()
    }

    /// Whether WHEP viewers of rooms run elsewhere are served here (else redirected).
    pub fn relays(&self) -> bool {
        self.relay_address.get().is_some_and(|a| a.is_some())
    }

    /// Answers other nodes' media requests until the drain.
    pub async fn serve(self: &Arc<Self>, node_id: &str) -> Result<(), super::ClusterError> {
        let mut requests = self
            .client
            .subscribe(node_subject(node_id))
            .await
            .map_err(|e| super::ClusterError::jet_stream("subscribe to media requests", e))?;
        let link = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = super::next_or_stop(&mut requests, &link.stop).await {
                let Some(reply_to) = msg.reply.clone() else {
                    continue;
                };
                let link = link.clone();
                tokio::spawn(async move {
                    let answer = match serde_json::from_slice::<Request>(&msg.payload) {
                        Ok(req) => link.answer(req).await,
                        Err(e) => Answer::Failed(format!("undecodable media request: {e}")),
                    };
                    let body = serde_json::to_vec(&answer).expect("answers serialise");
                    if let Err(e) = link.client.publish(reply_to, body.into()).await {
                        tracing::debug!(error = %e, "could not answer a media request");
                    }
                });
            }
        });
        Ok(())
    }

    async fn answer(self: &Arc<Self>, req: Request) -> Answer {
        let room = match &req {
            Request::Attach { room, .. }
            | Request::Detach { room, .. }
            | Request::Sync { room, .. } => room.clone(),
        };
        // Only the room's node answers; it never forwards again.
        if !self.local.runs(&room) {
            return match self.local.locate(&room).await {
                Ok(()) => self.answer_here(req).await,
                Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                    Answer::NotHere(Some(node))
                }
                Err(RoomsError::RoomNotFound(_)) => Answer::Attached(Err(Refusal::new(
                    EndReason::RoomUnavailable,
                    format!("room {room} does not exist"),
                ))),
                Err(_) => Answer::NotHere(None),
            };
        }
        self.answer_here(req).await
    }

    async fn answer_here(self: &Arc<Self>, req: Request) -> Answer {
        match req {
            Request::Attach { room, media } => {
                Answer::Attached(self.local.attach_media(&room, media).await)
            }
            Request::Detach { room, id } => {
                self.local.detach_media(&room, &id).await;
                Answer::Detached
            }
            Request::Sync { room, ids, relay } => {
                let p = match self.publisher(&room).await {
                    Ok(p) => p,
                    Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                        return Answer::NotHere(Some(node))
                    }
                    Err(e) => return Answer::Failed(crate::error_chain(&e)),
                };
                let (version, on_air, gone) = {
                    let mut st = p.state.lock();
                    st.last_sync = Instant::now();
                    let gone = ids
                        .into_iter()
                        .filter(|id| st.ended.contains(id) || !self.local.media_attached(&room, id))
                        .collect();
                    (st.version, st.on_air.clone(), gone)
                };
                let relay = match relay {
                    None => None,
                    Some(sub) => Some(self.offer(&room, sub).await),
                };
                Answer::Synced(Synced {
                    epoch: p.epoch,
                    version,
                    on_air,
                    gone,
                    relay,
                })
            }
        }
    }

    async fn offer(&self, room: &str, sub: u64) -> Result<(String, Vec<RelayedFeed>), String> {
        let (Some(media), Some(Some(address))) = (self.media(), self.relay_address.get()) else {
            return Err("the room's node does not relay media (no relay address)".into());
        };
        let feeds = media
            .relay_offer(room, sub)
            .await
            .map_err(|e| e.to_string())?;
        Ok((address.clone(), feeds))
    }

    /// The room's signal publisher, started on first use: it follows the room's media
    /// signals here and publishes each, numbered, on the room's media subject.
    async fn publisher(self: &Arc<Self>, room: &str) -> Result<Arc<Publisher>, RoomsError> {
        if let Some(p) = self.publishers.get(room) {
            if !p.stop.is_cancelled() {
                return Ok(p.clone());
            }
        }
        let mut signals = self.local.follow_media(room).await?;
        let on_air = match signals.next().await {
            Some(MediaSignal::OnAir(b)) => b,
            _ => {
                return Err(RoomsError::Unavailable(
                    room.to_string(),
                    "its media signals ended",
                ))
            }
        };
        let p = Arc::new(Publisher {
            epoch: rand::random(),
            state: Mutex::new(PublisherState {
                version: 0,
                on_air,
                ended: HashSet::new(),
                ended_order: Default::default(),
                last_sync: Instant::now(),
            }),
            stop: self.stop.child_token(),
        });
        self.publishers.insert(room.to_string(), p.clone());
        let (link, room, publisher) = (self.clone(), room.to_string(), p.clone());
        tokio::spawn(async move {
            link.publish_signals(&room, &publisher, signals).await;
            publisher.stop.cancel();
            link.publishers
                .remove_if(&room, |_, p| Arc::ptr_eq(p, &publisher));
        });
        Ok(p)
    }

    async fn publish_signals(
        &self,
        room: &str,
        p: &Publisher,
        mut signals: BoxStream<'static, MediaSignal>,
    ) {
        let mut idle = tokio::time::interval(IDLE);
        idle.tick().await;
        loop {
            let signal = tokio::select! {
                _ = p.stop.cancelled() => return,
                _ = idle.tick() => {
                    if p.state.lock().last_sync.elapsed() >= IDLE {
                        return;
                    }
                    continue;
                }
                s = signals.next() => match s {
                    Some(s) => s,
                    None => return,
                },
            };
            let version = {
                let mut st = p.state.lock();
                st.version += 1;
                match &signal {
                    MediaSignal::OnAir(b) => st.on_air.clone_from(b),
                    MediaSignal::End { ids, .. } => {
                        for id in ids {
                            if st.ended.insert(id.clone()) {
                                st.ended_order.push_back(id.clone());
                            }
                        }
                        while st.ended_order.len() > ENDED_KEPT {
                            if let Some(old) = st.ended_order.pop_front() {
                                st.ended.remove(&old);
                            }
                        }
                    }
                }
                st.version
            };
            let body = serde_json::to_vec(&Published {
                epoch: p.epoch,
                version,
                signal,
            })
            .expect("signals serialise");
            if let Err(e) = self.client.publish(room_subject(room), body.into()).await {
                tracing::warn!(room, error = %e, "could not publish a media signal");
            }
        }
    }

    // ----- edge side -----

    /// Who runs the room: `None` if this node does (or takes it now).
    async fn owner(&self, room: &str) -> Result<Option<String>, RoomsError> {
        if self.local.runs(room) {
            return Ok(None);
        }
        if let Some(o) = self.owners.get(room) {
            return Ok(Some(o.clone()));
        }
        match self.local.locate(room).await {
            Ok(()) => Ok(None),
            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                self.owners.insert(room.to_string(), node.clone());
                Ok(Some(node))
            }
            Err(e) => Err(e),
        }
    }

    async fn request(&self, node: &str, req: &Request) -> Result<Answer, String> {
        let body = serde_json::to_vec(req).expect("requests serialise");
        match tokio::time::timeout(
            DEADLINE,
            self.client.request(node_subject(node), body.into()),
        )
        .await
        {
            Ok(Ok(msg)) => serde_json::from_slice(&msg.payload)
                .map_err(|e| format!("undecodable answer from node {node}: {e}")),
            Ok(Err(e)) => Err(format!("node {node}: {e}")),
            Err(_) => Err(format!("node {node} did not answer in time")),
        }
    }

    /// Attaches a WHEP session to a room another node runs (`Ok(false)`: this node runs
    /// it, attach it here).
    pub async fn attach(&self, room: &str, media: &MediaSession) -> Result<bool, Refusal> {
        for _ in 0..3 {
            let node = match self.owner(room).await {
                Ok(Some(node)) => node,
                Ok(None) => return Ok(false),
                Err(e) => return Err(crate::rooms::refusal_of(e)),
            };
            let req = Request::Attach {
                room: room.to_string(),
                media: media.clone(),
            };
            match self.request(&node, &req).await {
                Ok(Answer::Attached(Ok(()))) => {
                    self.attached
                        .entry(room.to_string())
                        .or_default()
                        .lock()
                        .insert(media.id.clone(), media.clone());
                    return Ok(true);
                }
                Ok(Answer::Attached(Err(r))) => return Err(r),
                Ok(Answer::NotHere(next)) => match next {
                    Some(n) => {
                        self.owners.insert(room.to_string(), n);
                    }
                    None => {
                        self.owners.remove(room);
                    }
                },
                Ok(_) | Err(_) => {
                    self.owners.remove(room);
                }
            }
        }
        Err(Refusal::new(
            EndReason::RoomUnavailable,
            format!("room {room} is moving between servers; try again"),
        ))
    }

    /// Detaches a session attached at another node (`false`: it was not).
    pub async fn detach(&self, room: &str, id: &str) -> bool {
        let known = self
            .attached
            .get(room)
            .is_some_and(|a| a.lock().remove(id).is_some());
        if !known {
            return false;
        }
        if let Some(node) = self.owners.get(room).map(|n| n.clone()) {
            let req = Request::Detach {
                room: room.to_string(),
                id: id.to_string(),
            };
            // The owner's answer changes nothing here: a session it missed it drops at the
            // next `Sync`, which no longer names it.
            let _ = self.request(&node, &req).await;
        }
        true
    }

    /// The media signals of a room another node runs (`None`: this node runs it).
    pub async fn follow(
        self: &Arc<Self>,
        room: &str,
    ) -> Result<Option<BoxStream<'static, MediaSignal>>, RoomsError> {
        let Some(node) = self.owner(room).await? else {
            return Ok(None);
        };
        let subscription = self
            .client
            .subscribe(room_subject(room))
            .await
            .map_err(|_| RoomsError::Unavailable(room.to_string(), "NATS is unreachable"))?;
        let sub: u64 = rand::random();
        let mut edge = Edge {
            link: self.clone(),
            room: room.to_string(),
            sub,
            seen: None,
            viewers_seen: Instant::now(),
            relay_ok: None,
        };
        // The first answer names the brand on air, as the room's own stream does.
        let synced = match self.request(&node, &edge.sync_request()).await {
            Ok(Answer::Synced(s)) => s,
            Ok(Answer::NotHere(_)) => {
                self.owners.remove(room);
                return Err(RoomsError::Unavailable(
                    room.to_string(),
                    "it is moving between servers",
                ));
            }
            Ok(Answer::Attached(Err(_))) => return Err(RoomsError::RoomNotFound(room.into())),
            _ => {
                return Err(RoomsError::Unavailable(
                    room.to_string(),
                    "its server is not answering",
                ))
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let _ = tx.try_send(MediaSignal::OnAir(synced.on_air.clone()));
        edge.seen = Some((synced.epoch, synced.version));
        tokio::spawn(async move {
            edge.apply_relay(synced.relay).await;
            edge.run(subscription, tx).await;
            edge.stop_relay();
        });
        Ok(Some(rx_stream(rx)))
    }
}

fn rx_stream(rx: mpsc::Receiver<MediaSignal>) -> BoxStream<'static, MediaSignal> {
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

/// An edge's follower of one room's media.
struct Edge {
    link: Arc<MediaLink>,
    room: String,
    /// Its relay subscription at the origin.
    sub: u64,
    /// The last signal taken: (epoch, version).
    seen: Option<(u64, u64)>,
    /// When the room last had a viewer here.
    viewers_seen: Instant,
    /// When the relay was last renewed.
    relay_ok: Option<Instant>,
}

impl Edge {
    fn attached_ids(&self) -> Vec<String> {
        self.link
            .attached
            .get(&self.room)
            .map(|a| a.lock().keys().cloned().collect())
            .unwrap_or_default()
    }

    fn wants_relay(&mut self) -> bool {
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

    fn sync_request(&mut self) -> Request {
        Request::Sync {
            room: self.room.clone(),
            ids: self.attached_ids(),
            relay: self.wants_relay().then_some(self.sub),
        }
    }

    /// A newer signal than the last one taken (a new epoch starts afresh).
    fn newer(&mut self, epoch: u64, version: u64) -> bool {
        match self.seen {
            Some((e, v)) if e == epoch && v >= version => false,
            _ => {
                self.seen = Some((epoch, version));
                true
            }
        }
    }

    async fn run(
        &mut self,
        mut subscription: async_nats::Subscriber,
        tx: mpsc::Sender<MediaSignal>,
    ) {
        let mut every = tokio::time::interval(SYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = self.link.stop.cancelled() => return,
                m = subscription.next() => {
                    let Some(m) = m else { return };
                    let Ok(p) = serde_json::from_slice::<Published>(&m.payload) else {
                        continue;
                    };
                    // An `End` is taken even if older: ending a session twice is harmless.
                    let take = self.newer(p.epoch, p.version)
                        || matches!(p.signal, MediaSignal::End { .. });
                    if take && tx.send(p.signal).await.is_err() {
                        return;
                    }
                }
                _ = every.tick() => {
                    if self.link.local.runs(&self.room) {
                        // This node took the room over: its own signals from now on.
                        self.stop_relay();
                        let Ok(mut local) = self.link.local.follow_media(&self.room).await else {
                            continue;
                        };
                        while let Some(s) = local.next().await {
                            if tx.send(s).await.is_err() {
                                return;
                            }
                        }
                        self.seen = None;
                        continue;
                    }
                    if !self.sync(&tx).await {
                        return;
                    }
                }
            }
        }
    }

    /// One sync with the owner; `false` once nobody listens any more.
    async fn sync(&mut self, tx: &mpsc::Sender<MediaSignal>) -> bool {
        let node = match self.link.owner(&self.room).await {
            Ok(Some(node)) => node,
            Ok(None) => return true,
            Err(_) => {
                self.relay_lost();
                return true;
            }
        };
        let req = self.sync_request();
        let synced = match self.link.request(&node, &req).await {
            Ok(Answer::Synced(s)) => s,
            Ok(Answer::NotHere(next)) => {
                match next {
                    Some(n) => self.link.owners.insert(self.room.clone(), n),
                    None => self.link.owners.remove(&self.room).map(|(_, n)| n),
                };
                self.relay_lost();
                return true;
            }
            other => {
                if let Err(e) = other {
                    tracing::debug!(room = %self.room, error = %e, "media sync");
                }
                self.link.owners.remove(&self.room);
                self.relay_lost();
                return true;
            }
        };
        if self.newer(synced.epoch, synced.version)
            && tx
                .send(MediaSignal::OnAir(synced.on_air.clone()))
                .await
                .is_err()
        {
            return false;
        }
        self.reattach(&node, synced.gone, tx).await;
        self.apply_relay(synced.relay).await;
        true
    }

    /// Sessions the owner no longer has attached are attached again (a new owner admits
    /// them as the old one did) or, if refused, ended.
    async fn reattach(&self, node: &str, gone: Vec<String>, tx: &mpsc::Sender<MediaSignal>) {
        for id in gone {
            let Some(m) = self
                .link
                .attached
                .get(&self.room)
                .and_then(|a| a.lock().get(&id).cloned())
            else {
                continue;
            };
            let req = Request::Attach {
                room: self.room.clone(),
                media: m,
            };
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

    async fn apply_relay(&mut self, relay: Option<Result<(String, Vec<RelayedFeed>), String>>) {
        let Some(media) = self.link.media() else {
            return;
        };
        match relay {
            None => {
                if self.relay_ok.is_some() {
                    media.drop_relay(&self.room, self.sub);
                    self.relay_ok = None;
                }
            }
            Some(Err(why)) => {
                tracing::debug!(room = %self.room, why, "no relay");
                self.relay_lost();
            }
            Some(Ok((address, feeds))) => {
                let origin = match tokio::net::lookup_host(&address).await {
                    Ok(mut a) => a.next(),
                    Err(_) => None,
                };
                let Some(origin) = origin else {
                    tracing::warn!(room = %self.room, %address, "cannot resolve the origin's relay address");
                    self.relay_lost();
                    return;
                };
                match media
                    .follow_relay(&self.room, self.sub, origin, feeds)
                    .await
                {
                    Ok(()) => self.relay_ok = Some(Instant::now()),
                    Err(e) => {
                        tracing::debug!(room = %self.room, error = %e, "relay");
                        self.relay_lost();
                    }
                }
            }
        }
    }

    /// The relay was not renewed: once the origin has stopped sending, its feeds leave.
    fn relay_lost(&mut self) {
        if self
            .relay_ok
            .is_some_and(|t| t.elapsed() >= SUBSCRIPTION_TTL)
        {
            self.stop_relay();
        }
    }

    fn stop_relay(&mut self) {
        if let Some(media) = self.link.media() {
            media.drop_relay(&self.room, self.sub);
        }
        self.relay_ok = None;
    }
}
