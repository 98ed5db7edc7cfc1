//! Media across nodes: the control plane of the cascade (its data plane is
//! `media::cascade`). See docs/cluster.md, "Media across nodes".
//
// Presenters publish on any node: that node is the origin of their brand's feed. Every node
// with media of a room (a presenter, WHEP viewers) runs one follower of the room's media
// (`Edge`):
// - its WHEP and WHIP sessions are attached to the room at the owner (`Attach`/`Detach`), so a
//   kick, a revoked token or the room's end reaches them;
// - on a node that does not run the room it follows the room's media signals (brand on air,
//   sessions to end) on the room's media subject, and every `SYNC_EVERY` syncs with the owner
//   (`Sync`): the brand on air (versioned, so a lost signal is repaired and an older one never
//   applied after a newer), its sessions the owner no longer has attached (a lost `End`, a new
//   owner: attached again, or ended if refused), the brands it publishes itself (the owner
//   tells the room the union of every origin's) and, while it has viewers, the renewal of its
//   relay subscription at the owner, whose answer also names the other origins;
// - on the room's node it follows the room's own signals, and the origins are its own table;
// - while it has viewers it keeps a relay subscription at every origin but itself (`Relay`,
//   or inline in `Sync` for the owner): the origin answers with its relay address and feeds,
//   and sends their packets to this node's relay socket until the subscription lapses.

use crate::hub::Hub;
use crate::media::{Media, RelayedFeed, SUBSCRIPTION_TTL};
use crate::model::{EndReason, MediaRole, MediaSession, Refusal};
use crate::rooms::ownership::OwnershipError;
use crate::rooms::{MediaSignal, Rooms, RoomsError};
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
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
/// An origin that has not synced for this long no longer counts (its brands are not live).
const ORIGIN_TTL: Duration = Duration::from_secs(3);

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
        node: String,
        media: MediaSession,
    },
    Detach {
        room: String,
        id: String,
    },
    /// The room's media state, which of `ids` are no longer attached, and (with `relay`)
    /// the renewal of that relay subscription; `live` are the brands `node` publishes itself,
    /// reached at its relay address `address`.
    Sync {
        room: String,
        node: String,
        ids: Vec<String>,
        relay: Option<u64>,
        live: BTreeSet<String>,
        address: Option<String>,
    },
    /// Subscribes (or renews subscription `sub`) to the feeds this node publishes in `room`;
    /// answered by any origin, whether or not it runs the room.
    Relay {
        room: String,
        sub: u64,
    },
}

#[derive(Serialize, Deserialize)]
enum Answer {
    Attached(Result<(), Refusal>),
    Detached,
    Synced(Synced),
    Relayed(Offer),
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
    /// The owner's relay address and feeds, or why there are none.
    relay: Option<Offer>,
    /// The other origins of the room: (node, relay address), the asker and the owner left out.
    origins: Vec<(String, String)>,
}

/// An origin's relay address and feeds, or why there are none.
type Offer = Result<(String, Vec<RelayedFeed>), String>;

/// A node publishing brands of a room, as its owner knows it.
struct Origin {
    brands: BTreeSet<String>,
    address: Option<String>,
    seen: Instant,
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
    /// Owner side: the nodes publishing brands of each room this node runs (itself included).
    origins: DashMap<String, HashMap<String, Origin>>,
    /// Owner side: each room's presenter session per brand, and the node it publishes on.
    presenters: DashMap<String, HashMap<String, (String, String)>>,
    /// Owner side: the live brands last told to each room.
    told_live: DashMap<String, BTreeSet<String>>,
    /// Wakes a room's follower for a sync now (its node's own feeds changed).
    pokes: DashMap<String, Arc<tokio::sync::Notify>>,
    node_id: String,
    stop: CancellationToken,
}

impl MediaLink {
    pub fn new(
        client: async_nats::Client,
        local: Arc<Hub>,
        node_id: &str,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(MediaLink {
            client,
            local,
            media: OnceLock::new(),
            relay_address: OnceLock::new(),
            publishers: DashMap::new(),
            attached: DashMap::new(),
            owners: DashMap::new(),
            origins: DashMap::new(),
            told_live: DashMap::new(),
            presenters: DashMap::new(),
            pokes: DashMap::new(),
            node_id: node_id.to_string(),
            stop,
        })
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn relay_address(&self) -> Option<String> {
        self.relay_address.get().cloned().flatten()
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
    pub async fn serve(self: &Arc<Self>) -> Result<(), super::ClusterError> {
        let mut requests = self
            .client
            .subscribe(node_subject(&self.node_id))
            .await
            .map_err(|e| super::ClusterError::jet_stream("subscribe to media requests", e))?;
        let sweeper = self.clone();
        tokio::spawn(async move { sweeper.sweep_origins().await });
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
            // Any origin relays its own feeds, whether or not it runs the room.
            Request::Relay { room, sub } => return Answer::Relayed(self.offer(room, *sub).await),
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
            Request::Attach { room, node, media } => {
                let answer = self.local.attach_media(&room, media.clone()).await;
                if answer.is_ok() {
                    self.presenter_attached(&room, &media, &node).await;
                }
                Answer::Attached(answer)
            }
            Request::Detach { room, id } => {
                self.local.detach_media(&room, &id).await;
                self.media_detached(&room, &id);
                Answer::Detached
            }
            Request::Relay { room, sub } => Answer::Relayed(self.offer(&room, sub).await),
            Request::Sync {
                room,
                node,
                ids,
                relay,
                live,
                address,
            } => {
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
                self.origin_synced(&room, &node, live, address).await;
                let relay = match relay {
                    None => None,
                    Some(sub) => Some(self.offer(&room, sub).await),
                };
                let origins = self.origins_of(&room, &node);
                Answer::Synced(Synced {
                    epoch: p.epoch,
                    version,
                    on_air,
                    gone,
                    relay,
                    origins,
                })
            }
        }
    }

    async fn offer(&self, room: &str, sub: u64) -> Offer {
        let (Some(media), Some(address)) = (self.media(), self.relay_address()) else {
            return Err("this node does not relay media (no relay address)".into());
        };
        let feeds = media
            .relay_offer(room, sub)
            .await
            .map_err(|e| e.to_string())?;
        Ok((address, feeds))
    }

    // ----- owner side: the room's origins -----

    /// `node` (perhaps this one) publishes `live` in a room this node runs: the room is told
    /// the union of every origin's brands when it changes.
    async fn origin_synced(
        &self,
        room: &str,
        node: &str,
        live: BTreeSet<String>,
        address: Option<String>,
    ) {
        {
            let mut origins = self.origins.entry(room.to_string()).or_default();
            if live.is_empty() {
                origins.remove(node);
            } else {
                origins.insert(
                    node.to_string(),
                    Origin {
                        brands: live,
                        address,
                        seen: Instant::now(),
                    },
                );
            }
        }
        self.tell_live(room).await;
    }

    /// Tells a room this node runs which brands are live on any node, if that changed.
    async fn tell_live(&self, room: &str) {
        let union: BTreeSet<String> = self
            .origins
            .get(room)
            .map(|o| {
                o.iter()
                    .filter(|(n, o)| **n == self.node_id || o.seen.elapsed() < ORIGIN_TTL)
                    .flat_map(|(_, o)| o.brands.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let changed = self.told_live.get(room).is_none_or(|t| *t != union);
        if changed && self.local.runs(room) {
            self.told_live.insert(room.to_string(), union.clone());
            self.local.set_live_feeds(room, union).await;
        }
    }

    /// The origins of a room this node runs, but `asker` and this node: (node, relay address).
    fn origins_of(&self, room: &str, asker: &str) -> Vec<(String, String)> {
        self.origins
            .get(room)
            .map(|o| {
                o.iter()
                    .filter(|(n, o)| {
                        *n != asker && **n != self.node_id && o.seen.elapsed() < ORIGIN_TTL
                    })
                    .filter_map(|(n, o)| Some((n.clone(), o.address.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Origins that stopped syncing leave their rooms' live brands.
    async fn sweep_origins(&self) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = every.tick() => {}
            }
            // A room that left this node is told afresh if it comes back.
            self.told_live.retain(|room, _| self.local.runs(room));
            let mut stale = Vec::new();
            self.origins.retain(|room, o| {
                let before = o.len();
                o.retain(|n, o| *n == self.node_id || o.seen.elapsed() < ORIGIN_TTL);
                if o.len() != before {
                    stale.push(room.clone());
                }
                !o.is_empty()
            });
            for room in stale {
                self.tell_live(&room).await;
            }
        }
    }

    /// This node's own feeds of a room changed: the room hears of it (here if this node runs
    /// it, else at the next sync, made now).
    pub async fn own_feeds_changed(&self, room: &str) {
        if self.local.runs(room) {
            let live = self
                .media()
                .map(|m| m.local_brands(room))
                .unwrap_or_default();
            // The owner's own entry never expires: it is this node's present state.
            self.origin_synced(room, &self.node_id.clone(), live, None)
                .await;
        } else if let Some(p) = self.pokes.get(room) {
            p.notify_one();
        }
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

    /// A media session was attached to a room this node runs, from `node`. A presenter
    /// replaces the brand's presenter on another node, as a newer publisher does on one node:
    /// the older one is ended, wherever it is.
    pub async fn presenter_attached(&self, room: &str, media: &MediaSession, node: &str) {
        let MediaRole::Presenter { brand_id } = &media.role else {
            return;
        };
        let old = self
            .presenters
            .entry(room.to_string())
            .or_default()
            .insert(brand_id.clone(), (media.id.clone(), node.to_string()));
        let Some((old_id, old_node)) = old else {
            return;
        };
        // On its own node a newer publisher replaces the older by itself.
        if old_node == node || old_id == media.id {
            return;
        }
        tracing::info!(room, brand = %brand_id, old = %old_id, %old_node, %node, "publisher replaced by one on another node");
        let why = Refusal::new(
            EndReason::Forbidden,
            "a newer publisher of this brand took over (on another server)",
        );
        if old_node == self.node_id {
            if let Some(m) = self.media() {
                m.end_media_session(&old_id, &why).await;
            }
            return;
        }
        // The older publisher's node takes an `End` from the room's media subject.
        let body = serde_json::to_vec(&Published {
            epoch: 0,
            version: 0,
            signal: MediaSignal::End {
                ids: vec![old_id],
                why,
            },
        })
        .expect("signals serialise");
        if let Err(e) = self.client.publish(room_subject(room), body.into()).await {
            tracing::warn!(room, error = %e, "could not end a replaced publisher");
        }
    }

    /// A media session left a room this node runs.
    pub fn media_detached(&self, room: &str, id: &str) {
        if let Some(mut p) = self.presenters.get_mut(room) {
            p.retain(|_, (s, _)| s != id);
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
                node: self.node_id.clone(),
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

    /// The media signals of a room, from its owner here or elsewhere, followed by the
    /// room's media follower on this node (which also keeps the relays from its origins).
    pub async fn follow(
        self: &Arc<Self>,
        room: &str,
    ) -> Result<BoxStream<'static, MediaSignal>, RoomsError> {
        let owner = self.owner(room).await?;
        let subscription = self
            .client
            .subscribe(room_subject(room))
            .await
            .map_err(|_| RoomsError::Unavailable(room.to_string(), "NATS is unreachable"))?;
        let poke = self
            .pokes
            .entry(room.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Notify::new()))
            .clone();
        let mut edge = Edge {
            link: self.clone(),
            room: room.to_string(),
            seen: None,
            viewers_seen: Instant::now(),
            active_seen: Instant::now(),
            upstreams: HashMap::new(),
        };
        let (tx, rx) = mpsc::channel(64);
        let mut first_sync = None;
        let local = match owner {
            // The room's own stream names the brand on air first.
            None => Some(self.local.follow_media(room).await?),
            Some(node) => {
                // So does the first sync's answer.
                let synced = match self.request(&node, &edge.sync_request()).await {
                    Ok(Answer::Synced(s)) => s,
                    Ok(Answer::NotHere(_)) => {
                        self.owners.remove(room);
                        return Err(RoomsError::Unavailable(
                            room.to_string(),
                            "it is moving between servers",
                        ));
                    }
                    Ok(Answer::Attached(Err(_))) => {
                        return Err(RoomsError::RoomNotFound(room.into()))
                    }
                    _ => {
                        return Err(RoomsError::Unavailable(
                            room.to_string(),
                            "its server is not answering",
                        ))
                    }
                };
                let _ = tx.try_send(MediaSignal::OnAir(synced.on_air.clone()));
                edge.seen = Some((synced.epoch, synced.version));
                first_sync = Some((node, synced));
                None
            }
        };
        tokio::spawn(async move {
            if let Some((node, synced)) = first_sync {
                edge.apply(&node, synced, &tx).await;
            }
            edge.run(subscription, local, poke, tx).await;
            edge.stop_all();
        });
        Ok(rx_stream(rx))
    }
}

fn rx_stream(rx: mpsc::Receiver<MediaSignal>) -> BoxStream<'static, MediaSignal> {
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

/// A relay subscription at one origin.
struct Upstream {
    sub: u64,
    /// When it was last renewed.
    ok: Option<Instant>,
}

/// A node's follower of one room's media.
struct Edge {
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

    /// Whether this node has (or had within `LINGER`) a media session or a feed of the room.
    /// A room without either here is not synced: nothing here needs it, and a sync could
    /// make this node take a room nobody runs any more.
    fn active(&mut self) -> bool {
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
    fn ended(&self) -> bool {
        self.link
            .media()
            .and_then(|m| m.room_media(&self.room))
            .is_some_and(|r| r.is_ended())
    }

    fn sub_of(&mut self, origin: &str) -> u64 {
        self.upstreams
            .entry(origin.to_string())
            .or_insert_with(|| Upstream {
                sub: rand::random(),
                ok: None,
            })
            .sub
    }

    fn sync_request(&mut self) -> Request {
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
    async fn tick(&mut self, owner_here: bool, tx: &mpsc::Sender<MediaSignal>) -> bool {
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
    async fn apply(&mut self, node: &str, s: Synced, tx: &mpsc::Sender<MediaSignal>) {
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
    async fn follow_origins(&mut self, origins: Vec<(String, String)>) {
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
                node: self.link.node_id.clone(),
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

    /// An origin's answer: its feeds become the room's here, or the subscription lapses.
    async fn take_offer(&mut self, origin: &str, offer: Offer) {
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
    fn lapse(&mut self, origin: &str) {
        let expired = self
            .upstreams
            .get(origin)
            .is_some_and(|u| u.ok.is_some_and(|t| t.elapsed() >= SUBSCRIPTION_TTL));
        if expired {
            self.stop(origin);
        }
    }

    fn lapse_all(&mut self) {
        let origins: Vec<String> = self.upstreams.keys().cloned().collect();
        for o in origins {
            self.lapse(&o);
        }
    }

    /// Ends the subscription at `origin`: its feeds leave the room here.
    fn stop(&mut self, origin: &str) {
        if let Some(u) = self.upstreams.remove(origin) {
            if let Some(media) = self.link.media() {
                media.drop_relay(&self.room, u.sub);
            }
        }
    }

    fn stop_all(&mut self) {
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
