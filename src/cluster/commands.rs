//! Host commands for a room that another node owns: sent to that node over NATS
//! request/reply, answered there by its own rooms, with a deadline.
//
// Each node answers on one subject of its own (`showfloor.node.<hex node id>.host`); a node
// that is not a room's owner learns the owner from the lease (`OwnershipError::HeldBy`) and
// asks it. The owner answers through its local rooms only, never forwarding again, so a
// command moves at most once; if the room changed hands meanwhile, the caller hears "owned
// by …" and may try again.

use super::viewers::{RemoteJoin, RemoteViewers};
use crate::hub::Hub;
use crate::model::{
    AudienceClass, ClientMessage, HostCommand, HostReply, JoinRequest, MediaSession, NewRoom,
    ProtocolError, Refusal, RoomError, RoomState, RoomSummary, Secret, SessionId, WatchEvent,
};
use crate::rooms::ownership::OwnershipError;
use crate::rooms::{MediaSignal, Rooms, RoomsError, SessionSink};
use async_trait::async_trait;
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long a forwarded command may take, the owner's store write included.
const DEADLINE: Duration = Duration::from_secs(5);
/// Forwarded commands a node works on at once; more wait for a slot.
const CONCURRENT: usize = 256;

fn node_subject(node: &str) -> String {
    // Node ids may hold `.`, a subject separator: hex keeps the subject one token.
    format!("showfloor.node.{}.host", hex::encode(node))
}

#[derive(Serialize, Deserialize)]
struct Request {
    room: String,
    cmd: HostCommand,
}

/// A forwarded command's outcome as it crosses the wire.
#[derive(Serialize, Deserialize)]
enum Answer {
    Done(HostReply),
    Refused(RoomError),
    NotFound,
    OwnedBy(String),
    Unavailable(String),
}

impl Answer {
    fn of(result: Result<HostReply, RoomsError>) -> Answer {
        match result {
            Ok(reply) => Answer::Done(reply),
            Err(RoomsError::Room(e)) => Answer::Refused(e),
            Err(RoomsError::RoomNotFound(_)) => Answer::NotFound,
            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => Answer::OwnedBy(node),
            Err(e) => Answer::Unavailable(crate::error_chain(&e)),
        }
    }

    fn into_result(self, room: &str) -> Result<HostReply, RoomsError> {
        match self {
            Answer::Done(reply) => Ok(reply),
            Answer::Refused(e) => Err(RoomsError::Room(e)),
            Answer::NotFound => Err(RoomsError::RoomNotFound(room.to_string())),
            Answer::OwnedBy(node) => Err(RoomsError::NotOwned(OwnershipError::HeldBy {
                room: room.to_string(),
                node,
            })),
            Answer::Unavailable(why) => Err(unsettled(room, why)),
        }
    }
}

fn unsettled(room: &str, why: String) -> RoomsError {
    RoomsError::NotOwned(OwnershipError::Unsettled {
        room: room.to_string(),
        why,
    })
}

/// Answers the host commands other nodes forward to this one, with `local` (this node's own
/// rooms), until `stop`.
pub async fn serve(
    client: async_nats::Client,
    node_id: &str,
    local: Arc<dyn Rooms>,
    stop: CancellationToken,
) -> Result<(), super::ClusterError> {
    let mut requests = client.subscribe(node_subject(node_id)).await.map_err(|e| {
        super::ClusterError::JetStream {
            what: "subscribe to forwarded host commands".into(),
            source: Box::new(e),
        }
    })?;
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    tokio::spawn(async move {
        loop {
            let Some(msg) = super::next_or_stop(&mut requests, &stop).await else {
                break;
            };
            let Some(reply_to) = msg.reply.clone() else {
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (client, local) = (client.clone(), local.clone());
            tokio::spawn(async move {
                let answer = match serde_json::from_slice::<Request>(&msg.payload) {
                    Ok(req) => Answer::of(local.host(&req.room, req.cmd).await),
                    Err(e) => Answer::Unavailable(format!("undecodable forwarded command: {e}")),
                };
                let body = serde_json::to_vec(&answer).expect("answers serialise");
                if let Err(e) = client.publish(reply_to, body.into()).await {
                    tracing::debug!(error = %e, "could not answer a forwarded command");
                }
                drop(slot);
            });
        }
    });
    Ok(())
}

/// This node's rooms, with host commands for rooms owned elsewhere forwarded to their owner
/// and viewers of those rooms served here (`viewers`).
pub struct ClusterRooms {
    local: Arc<Hub>,
    viewers: Arc<RemoteViewers>,
    media: Arc<super::MediaLink>,
    client: async_nats::Client,
    /// The owner last seen of rooms owned elsewhere: commands go there directly, without
    /// asking the lease first. Only a hint — the owner's own answer is authoritative, and
    /// any answer but a result or a refusal of the command drops it.
    owners: DashMap<String, String>,
}

impl ClusterRooms {
    pub fn new(
        local: Arc<Hub>,
        viewers: Arc<RemoteViewers>,
        media: Arc<super::MediaLink>,
        client: async_nats::Client,
    ) -> ClusterRooms {
        ClusterRooms {
            local,
            viewers,
            media,
            client,
            owners: DashMap::new(),
        }
    }

    /// Who runs the room: `None` if this node does (loading it, or taking it if nobody
    /// holds it), else the node holding its lease.
    async fn owner_elsewhere(&self, room: &str) -> Result<Option<String>, RoomsError> {
        match self.local.locate(room).await {
            Ok(()) => Ok(None),
            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => Ok(Some(node)),
            Err(e) => Err(e),
        }
    }

    async fn forward(
        &self,
        node: &str,
        room: &str,
        cmd: HostCommand,
    ) -> Result<HostReply, RoomsError> {
        let body = serde_json::to_vec(&Request {
            room: room.to_string(),
            cmd,
        })
        .expect("commands serialise");
        let request = self.client.request(node_subject(node), body.into());
        let msg = match tokio::time::timeout(DEADLINE, request).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(unsettled(
                    room,
                    format!(
                        "its owner, node {node}, is not answering; the room moves to another \
                         node once its lease expires, try again"
                    ),
                ))
            }
            Ok(Err(e)) => return Err(unsettled(room, format!("forwarding to node {node}: {e}"))),
            Err(_) => {
                return Err(unsettled(
                    room,
                    format!("node {node} did not answer within {}s", DEADLINE.as_secs()),
                ))
            }
        };
        serde_json::from_slice::<Answer>(&msg.payload)
            .map_err(|e| unsettled(room, format!("undecodable answer from node {node}: {e}")))?
            .into_result(room)
    }
}

#[async_trait]
impl Rooms for ClusterRooms {
    fn new_session_id(&self) -> SessionId {
        self.local.new_session_id()
    }

    async fn create_room(&self, new: NewRoom) -> Result<RoomSummary, RoomsError> {
        self.local.create_room(new).await
    }

    /// Rooms running elsewhere are reported by their owners (live counts, owner node), all
    /// asked at once; a room whose owner does not answer keeps what the store says.
    async fn list_rooms(&self, state: Option<RoomState>) -> Result<Vec<RoomSummary>, RoomsError> {
        let mut rooms = self.local.list_rooms(state).await?;
        let elsewhere = rooms
            .iter_mut()
            .filter(|r| r.owner_node.is_none() && r.record.state != RoomState::Ended)
            .map(|r| async move {
                let Some(node) = self.viewers.holder(&r.record.id).await else {
                    return;
                };
                if let Ok(HostReply::Room(s)) = self
                    .forward(&node, &r.record.id, HostCommand::GetRoom)
                    .await
                {
                    *r = *s;
                }
            });
        futures_util::future::join_all(elsewhere).await;
        if let Some(st) = state {
            rooms.retain(|r| r.record.state == st);
        }
        Ok(rooms)
    }

    async fn token_key(&self, room: &str) -> Result<Secret, RoomsError> {
        self.local.token_key(room).await
    }

    async fn join(
        &self,
        room: &str,
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
    ) -> Result<AudienceClass, Refusal> {
        // Here if this node runs the room (or takes it now); else at its owner, with the
        // events rendered here. An owner that turns out not to be one is looked up again.
        let mut owner = match self.viewers.owner_of(room) {
            Some(node) if !self.local.runs(room) => Some(node),
            _ => None,
        };
        for _ in 0..3 {
            let node = match owner.take() {
                Some(node) => node,
                None => match self.owner_elsewhere(room).await {
                    Ok(Some(node)) => node,
                    Ok(None) => return self.local.join(room, session, req, sink).await,
                    Err(e) => return Err(crate::rooms::refusal_of(e)),
                },
            };
            match self
                .viewers
                .join(room, &node, session, req.clone(), sink.clone())
                .await
            {
                RemoteJoin::Joined(class) => return Ok(class),
                RemoteJoin::Refused(r) => return Err(r),
                RemoteJoin::NotThere(next) => {
                    self.viewers.forget(room);
                    owner = next;
                }
            }
        }
        Err(Refusal::new(
            crate::model::EndReason::RoomUnavailable,
            format!("room {room} is moving between servers; reconnect"),
        ))
    }

    async fn leave(&self, room: &str, session: SessionId) {
        if !self.viewers.leave(room, session).await {
            self.local.leave(room, session).await
        }
    }

    async fn viewer_message(
        &self,
        room: &str,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    ) {
        if let Err(msg) = self.viewers.message(room, session, msg).await {
            self.local.viewer_message(room, session, msg).await
        }
    }

    /// Runs on the room's owner: the one last seen if there is one, else here if this node
    /// owns the room (or can take it), else the lease's holder.
    async fn host(&self, room: &str, cmd: HostCommand) -> Result<HostReply, RoomsError> {
        let known = self.owners.get(room).map(|n| n.clone());
        if let Some(node) = known {
            match self.forward(&node, room, cmd.clone()).await {
                r @ (Ok(_) | Err(RoomsError::Room(_)) | Err(RoomsError::RoomNotFound(_))) => {
                    return r
                }
                // Moved, gone or unreachable: ask the lease again.
                Err(_) => {
                    self.owners.remove(room);
                }
            }
        }
        match self.local.host(room, cmd.clone()).await {
            Err(RoomsError::NotOwned(OwnershipError::HeldBy { node, .. })) => {
                let result = self.forward(&node, room, cmd).await;
                if matches!(
                    result,
                    Ok(_) | Err(RoomsError::Room(_)) | Err(RoomsError::RoomNotFound(_))
                ) {
                    self.owners.insert(room.to_string(), node);
                }
                result
            }
            other => other,
        }
    }

    /// The owner's advertised address when another node runs the room and this node does
    /// not relay media (with the relay, presenters publish and viewers watch on any node).
    async fn media_home(&self, room: &str) -> Option<String> {
        if self.media.relays() {
            return None;
        }
        let node = self.owner_elsewhere(room).await.ok()??;
        self.viewers.address_of(&node).await
    }

    /// From this node if it runs the room (or takes it now), else from its owner.
    async fn watch(&self, room: &str) -> Result<BoxStream<'static, WatchEvent>, RoomsError> {
        let Some(owner) = self.owner_elsewhere(room).await? else {
            return self.local.watch(room).await;
        };
        Ok(self
            .viewers
            .watch(room, &owner)
            .await?
            .take_while(|e| std::future::ready(!matches!(e, WatchEvent::Ended)))
            .boxed())
    }

    /// At the room's node, wherever it runs.
    async fn attach_media(&self, room: &str, media: MediaSession) -> Result<(), Refusal> {
        if self.media.attach(room, &media).await? {
            return Ok(());
        }
        self.local.attach_media(room, media.clone()).await?;
        self.media
            .presenter_attached(room, &media, self.media.node_id())
            .await;
        Ok(())
    }

    async fn detach_media(&self, room: &str, id: &str) {
        if !self.media.detach(room, id).await {
            self.local.detach_media(room, id).await;
            self.media.media_detached(room, id);
        }
    }

    /// The room hears of the brands published on every node: this node's own feeds go into
    /// that union (here if it runs the room, else at its owner); relayed ones do not count.
    async fn set_live_feeds(&self, room: &str, _brands: BTreeSet<String>) {
        self.media.own_feeds_changed(room).await
    }

    /// From the room's node, wherever it runs, through the media link (which also relays
    /// the room's feeds from their origins to this node while it has viewers).
    async fn follow_media(
        &self,
        room: &str,
    ) -> Result<BoxStream<'static, MediaSignal>, RoomsError> {
        self.media.follow(room).await
    }
}
