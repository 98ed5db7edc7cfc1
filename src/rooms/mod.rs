//! The routing seam: the only way the edge, the control plane and media reach a room.
//!
//! A room has one owner somewhere. [`Rooms`] hides where: the local implementation (the hub)
//! runs the owner task in this process; a cluster implementation forwards to the owning
//! node. Everything that crosses the seam is serialisable (commands, replies, join requests,
//! refusals) except the node-local ends of a session — its [`SessionSink`] and the streams a
//! caller reads — which stay on the node that serves the client.

pub mod ownership;
pub mod sink;

use crate::auth::{self, AuthError, PresenterClaims, Role};
use crate::model::{
    AudienceClass, ClientMessage, EndReason, HostCommand, HostReply, JoinRequest, MediaSession,
    NewRoom, ProtocolError, Refusal, RoomError, RoomState, RoomSummary, Secret, SessionId, Viewer,
    WatchEvent,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
pub use sink::{CloseRequest, CloseSignal, FrameQueue, QueueFull, SessionQueue, SessionSink, Text};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a call on a room failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomsError {
    /// The room refused the command (validation, not found inside the room, wrong state).
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("room {0} not found")]
    RoomNotFound(String),
    /// The room cannot take commands now (restarting, shutting down); try again.
    #[error("room {0} is not available: {1}")]
    Unavailable(String, &'static str),
    /// The store could not persist or load; nothing was applied durably.
    #[error("the store failed")]
    Store(#[source] Arc<crate::store::StoreError>),
    /// Another node runs the room, or who does cannot be settled now.
    #[error(transparent)]
    NotOwned(#[from] ownership::OwnershipError),
}

/// A viewer session served by another node joined this node's room: what that node needs to
/// serve it. The room keeps the session (presence, limits, its private frames go back to the
/// serving node); the serving node renders the room's events for it from the bus.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RemoteJoined {
    pub class: AudienceClass,
    /// The room's sequence number when the session joined: the serving node gives it the
    /// events after this one.
    pub seq: u64,
    pub epoch: String,
    /// The room's dealer tiers and currency, to render events per class.
    pub tiers: Vec<String>,
    pub currency: String,
    /// How many events the room keeps for resume (its `history_window`).
    pub window: u32,
    /// The welcome (or the resumed welcome and the replayed frames), in order: the first
    /// frames of the session.
    pub initial: Vec<String>,
    /// Set when the session resumed with `ResumeFrom::replayed_by_node`: `initial` is the
    /// resumed welcome alone, and the serving node gives the events after this seq from its
    /// own window.
    pub replay_after: Option<u64>,
}

/// What the media layer hears of a room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaSignal {
    /// The brand on air: the current value first, then every change.
    OnAir(Option<String>),
    /// End these media sessions (a kick, a revoked token, the room ended).
    End { ids: Vec<String>, why: Refusal },
}

#[async_trait]
pub trait Rooms: Send + Sync + 'static {
    /// A session id no other session of the cluster has.
    fn new_session_id(&self) -> SessionId;

    /// Validates and stores a new room durably, then makes it available.
    async fn create_room(&self, new: NewRoom) -> Result<RoomSummary, RoomsError>;

    /// Rooms, newest first, optionally of one state.
    async fn list_rooms(&self, state: Option<RoomState>) -> Result<Vec<RoomSummary>, RoomsError>;

    /// The room's key for viewer and presenter tokens (immutable for the room's life).
    async fn token_key(&self, room: &str) -> Result<Secret, RoomsError>;

    /// A viewer session joins; frames for it go to `sink` until it leaves or is closed.
    /// On success the welcome (or the resumed events) is the first thing queued.
    async fn join(
        &self,
        room: &str,
        session: SessionId,
        req: JoinRequest,
        sink: SessionSink,
    ) -> Result<AudienceClass, Refusal>;

    async fn leave(&self, room: &str, session: SessionId);

    /// A message from a viewer (or why it could not be parsed: the room answers either).
    async fn viewer_message(
        &self,
        room: &str,
        session: SessionId,
        msg: Result<ClientMessage, ProtocolError>,
    );

    /// A host command; its writes are durable before this returns.
    async fn host(&self, room: &str, cmd: HostCommand) -> Result<HostReply, RoomsError>;

    /// The host console's stream of the room (chat, applications, orders, stats). It ends
    /// when the room ends.
    async fn watch(&self, room: &str) -> Result<BoxStream<'static, WatchEvent>, RoomsError>;

    /// A WHIP or WHEP session starts: refused like a join (ended room, revoked token);
    /// otherwise the room knows it, so a kick or the room's end reaches it.
    async fn attach_media(&self, room: &str, media: MediaSession) -> Result<(), Refusal>;

    async fn detach_media(&self, room: &str, id: &str);

    /// The brands whose presenter feed is live on this node (viewers get `program`).
    async fn set_live_feeds(&self, room: &str, brands: BTreeSet<String>);

    /// What the media layer must follow: the brand on air, and media sessions to end.
    async fn follow_media(&self, room: &str)
        -> Result<BoxStream<'static, MediaSignal>, RoomsError>;

    /// Where a WHIP or WHEP request for the room must go when another node runs it and media
    /// is not relayed to this node: that node's advertised `HOST:PORT`. `None`: here (or
    /// nobody known).
    async fn media_home(&self, _room: &str) -> Option<String> {
        None
    }

    /// Checks a viewer token for a room: the viewer it names, or why it is refused.
    async fn check_viewer_token(&self, room: &str, token: &str) -> Result<Viewer, Refusal> {
        let key = self.token_key(room).await.map_err(refusal_of)?;
        let claims = auth::verify_viewer_token(token, room, key.expose()).map_err(auth_refusal)?;
        Ok(Viewer {
            display_name: if claims.name.trim().is_empty() {
                claims.sub.clone()
            } else {
                claims.name.chars().take(64).collect()
            },
            viewer_id: claims.sub,
            inviter_id: claims.inv,
            token_tier: match claims.role {
                Role::Dealer => claims.tier,
                Role::Viewer | Role::Presenter => None,
            },
            jti: claims.jti,
            expires_ms: claims.exp.saturating_mul(1000),
        })
    }

    /// Checks a presenter token for a room's brand.
    async fn check_presenter_token(
        &self,
        room: &str,
        brand: &str,
        token: &str,
    ) -> Result<PresenterClaims, Refusal> {
        let key = self.token_key(room).await.map_err(refusal_of)?;
        auth::verify_presenter_token(token, room, brand, key.expose()).map_err(auth_refusal)
    }
}

/// A failed room lookup as a refusal for a client that is connecting.
pub fn refusal_of(e: RoomsError) -> Refusal {
    match e {
        RoomsError::RoomNotFound(room) => {
            Refusal::new(EndReason::RoomNotFound, format!("room {room} not found"))
        }
        other => Refusal::new(EndReason::RoomUnavailable, other.to_string()),
    }
}

/// The one place where a token problem becomes a refusal.
pub fn auth_refusal(e: AuthError) -> Refusal {
    match e {
        AuthError::WrongRoom | AuthError::NotPresenter | AuthError::WrongBrand => {
            Refusal::new(EndReason::Forbidden, e.to_string())
        }
        _ => Refusal::new(EndReason::Unauthenticated, e.to_string()),
    }
}
