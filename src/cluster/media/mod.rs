//! Media across nodes: the control plane of the cascade (its data plane is
//! `media::cascade`). See docs/cluster.md, "Media across nodes". Here: the wire, the link and
//! its requests to the owner; `owner.rs`: the owner's answers; `edge.rs`: a node's follower.
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

mod edge;
mod owner;

use edge::{rx_stream, Edge};

use crate::hub::Hub;
use crate::media::{Media, RelayedFeed, SubKey, SUBSCRIPTION_TTL};
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
        relay: Option<SubKey>,
        live: BTreeSet<String>,
        address: Option<String>,
    },
    /// Subscribes (or renews subscription `sub`, with its key) to the feeds this node
    /// publishes in `room`; answered by any origin, whether or not it runs the room.
    Relay {
        room: String,
        sub: SubKey,
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
            match self.request(&node, &self.attach_request(room, media)).await {
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

    /// Attaches `media` (served here) to `room` at its owner.
    fn attach_request(&self, room: &str, media: &MediaSession) -> Request {
        Request::Attach {
            room: room.to_string(),
            node: self.node_id.clone(),
            media: media.clone(),
        }
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
        let mut edge = Edge::new(self.clone(), room);
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
                edge.newer(synced.epoch, synced.version);
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
