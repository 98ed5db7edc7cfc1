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
//! Those kept events are also the node's own resume window: a resume whose events it holds
//! is replayed here, and the owner only checks it and sends the resumed welcome
//! (`ResumeFrom::replayed_by_node`). A `resume` message on an open connection is replayed by
//! the owner.
//! A class change of a remote session travels on the room's subject in order with the events.
//! When the follower cannot vouch for the stream (a gap, the owner's lease gone or moved,
//! NATS lost), its sessions are closed with 1013 and a reason: they reconnect and resume.

mod owner;
mod serving;

pub use owner::serve_owner;
pub use serving::RemoteViewers;

use super::bus::NatsBus;
use super::lease::Leases;
use crate::bus::Followed;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::model::{
    AudienceClass, ClientMessage, EndReason, JoinRequest, ProtocolError, Refusal, ResumeFrom,
    SeqEvent, SessionId, WatchEvent,
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
