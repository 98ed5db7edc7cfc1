//! Who is in a room: session ids unique across nodes, audience classes, join requests, and
//! why a session is refused or ended — in the domain's terms, mapped to wire codes elsewhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's share of the session id space: 23 bits taken from a hash of its node id, so two
/// nodes of a cluster hand out different ids without talking to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeTag(u32);

impl NodeTag {
    const BITS: u32 = 23;

    /// The tag of a node id: the first 23 bits of its SHA-256 (stable across builds and
    /// platforms, unlike `std`'s hasher, and well mixed for names that differ in one letter).
    pub fn of(node_id: &str) -> NodeTag {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(node_id.as_bytes());
        let top = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        NodeTag(top >> (32 - Self::BITS))
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

/// One viewer connection, unique across the nodes of a cluster: the node's tag in bits 40–62,
/// that node's counter in the low 40 (a trillion sessions per process). The top bit stays
/// clear so the id fits a signed 64-bit column (SQL `BIGINT`, SQLite `INTEGER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(u64);

impl SessionId {
    const COUNTER_BITS: u32 = 40;
    const COUNTER_MASK: u64 = (1 << Self::COUNTER_BITS) - 1;

    pub fn new(node: NodeTag, n: u64) -> SessionId {
        SessionId(((node.0 as u64) << Self::COUNTER_BITS) | (n & Self::COUNTER_MASK))
    }

    /// The id as one number (how the audience log stores it).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub fn from_u64(v: u64) -> SessionId {
        SessionId(v)
    }

    pub fn node(self) -> NodeTag {
        NodeTag((self.0 >> Self::COUNTER_BITS) as u32)
    }

    pub fn counter(self) -> u64 {
        self.0 & Self::COUNTER_MASK
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06x}-{}", self.node().0, self.counter())
    }
}

/// Who a frame is rendered for. Public frames never carry a price or a product link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceClass {
    Public,
    /// Index into the room's tier list.
    Dealer(u8),
}

/// Who is joining, as the auth layer established from a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub viewer_id: String,
    pub display_name: String,
    pub inviter_id: Option<String>,
    /// Tier claimed by a host-minted token (`role: dealer`); a dealer record overrides it.
    pub token_tier: Option<String>,
    pub jti: String,
    pub expires_ms: i64,
}

/// Where a joining viewer was: the last sequence number it saw, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeFrom {
    pub last_seq: u64,
    /// `None`: the client did not say (then it cannot be resumed; it gets a snapshot).
    pub epoch: Option<String>,
    /// Set by a node serving the session for a room another node owns, when that node holds
    /// the events after `last_seq` itself: the room then only checks that it would have
    /// replayed them (same epoch, still in its window) and answers the resumed welcome
    /// alone; the serving node replays the events from its own window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed_by_node: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub viewer: Viewer,
    pub resume: Option<ResumeFrom>,
}

/// What a media session does in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MediaRole {
    /// A viewer playing the room's program by WHEP.
    Viewer,
    /// A brand's presenter publishing by WHIP.
    Presenter { brand_id: String },
}

/// A WHIP or WHEP session as the room knows it, so that a kick, a revoked token or the end of
/// the room reaches it like any WebSocket session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSession {
    /// The media session's id (the last segment of its WHIP/WHEP resource URL).
    pub id: String,
    /// The token's subject: the viewer id, or the presenter id of a presenter token.
    pub identity: String,
    pub jti: String,
    pub expires_ms: i64,
    pub role: MediaRole,
}

/// Why a session is refused or ended. The edge maps each to a WebSocket close code and media
/// to an HTTP status, each in one place; the message says the rest in the client's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The node is draining.
    ShuttingDown,
    /// Nothing arrived from the client for too long.
    IdleTimeout,
    /// The node is at its connection limit.
    ServerFull,
    /// The room cannot take the request now (restarting, overloaded); try again.
    RoomUnavailable,
    RoomNotFound,
    RoomEnded,
    /// No usable credentials: missing, malformed, badly signed or expired token.
    Unauthenticated,
    /// Valid credentials that do not allow this (another room, another role or brand).
    Forbidden,
    /// The host kicked this identity or revoked this token.
    Revoked,
    /// The client could not keep up with what the room sends.
    SlowConsumer,
    /// Persistent abuse (chat flood, a stream of invalid messages).
    Abuse,
    /// The client broke the wire protocol (reserved opcode, oversized control frame…).
    Protocol,
    /// A message larger than the node's hard limit.
    MessageTooBig,
    /// A text frame that is not valid UTF-8.
    InvalidData,
    /// The request itself is malformed (a bad query parameter).
    BadRequest,
}

/// A refusal or the end of a session: the domain reason and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: EndReason,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: EndReason, message: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_of_two_nodes_differ_and_keep_their_parts() {
        let (a, b) = (NodeTag::of("node-a"), NodeTag::of("node-b"));
        assert_ne!(a, b);
        let s = SessionId::new(a, 42);
        assert_eq!((s.node(), s.counter()), (a, 42));
        assert_ne!(SessionId::new(a, 42), SessionId::new(b, 42));
        assert_eq!(SessionId::from_u64(s.as_u64()), s);
        let max = SessionId::new(NodeTag(u32::MAX >> (32 - NodeTag::BITS)), u64::MAX);
        assert!(
            max.as_u64() <= i64::MAX as u64,
            "fits a signed 64-bit column"
        );
        let back: SessionId = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn node_tags_are_stable() {
        // The tag is part of ids kept in the audience log: it must not change between builds.
        assert_eq!(NodeTag::of("local").value(), NodeTag::of("local").value());
        assert_eq!(NodeTag::of("").value(), 0x71d862);
    }
}
