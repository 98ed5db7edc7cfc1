//! Plain data of a room: settings, brands, products, dealers — what the store persists.

use serde::{Deserialize, Serialize};

/// Identifies one WebSocket session inside a node.
pub type SessionId = u64;

/// Who a frame is rendered for. Public frames never carry a price or a product link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceClass {
    Public,
    /// Index into the room's tier list.
    Dealer(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomState {
    Scheduled,
    Live,
    Ended,
}

impl RoomState {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Scheduled => "scheduled",
            RoomState::Live => "live",
            RoomState::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRateLimit {
    pub messages: u32,
    pub per_seconds: u32,
}

impl Default for ChatRateLimit {
    fn default() -> Self {
        ChatRateLimit {
            messages: 5,
            per_seconds: 10,
        }
    }
}

/// Everything about a room that is not catalog, audience or moderation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    pub id: String,
    pub title: String,
    pub state: RoomState,
    pub scheduled_start_ms: i64,
    pub chat_rate_limit: ChatRateLimit,
    pub banned_words: Vec<String>,
    pub history_window: u32,
    pub tiers: Vec<String>,
    pub currency: String,
    /// HS256 secret for viewer tokens (base64url, no padding).
    pub token_key: String,
    pub brand_on_air: Option<String>,
    pub pinned_product: Option<String>,
    pub created_ms: i64,
    pub opened_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// Highest id counter handed out for brands/products/messages/applications.
    pub next_id: u64,
}

impl RoomRecord {
    pub fn tier_index(&self, name: &str) -> Option<u8> {
        self.tiers.iter().position(|t| t == name).map(|i| i as u8)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    pub id: String,
    pub name: String,
    pub logo_url: String,
    pub position: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub brand_id: String,
    pub name: String,
    pub description: String,
    pub image_urls: Vec<String>,
    pub link: String,
    pub min_order_quantity: u32,
    /// (tier name, price in cents), one per tier of the room, in the room's tier order.
    pub prices: Vec<(String, i64)>,
}

impl Product {
    pub fn price_for(&self, tier: &str) -> Option<i64> {
        self.prices.iter().find(|(t, _)| t == tier).map(|(_, p)| *p)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealerRecord {
    pub viewer_id: String,
    /// `None` once revoked.
    pub tier: Option<String>,
    pub company: String,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    Pending,
    Approved,
    Rejected,
}

impl ApplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealerApplication {
    pub id: String,
    pub viewer_id: String,
    pub display_name: String,
    pub company: String,
    pub licence_number: String,
    pub contact: String,
    pub status: ApplicationStatus,
    pub tier: Option<String>,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub decided_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub id: String,
    pub seq: u64,
    pub viewer_id: String,
    pub display_name: String,
    pub text: String,
    pub at_ms: i64,
    pub is_dealer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudienceKind {
    Join,
    Leave,
    Heartbeat,
}

impl AudienceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AudienceKind::Join => "join",
            AudienceKind::Leave => "leave",
            AudienceKind::Heartbeat => "heartbeat",
        }
    }
}

/// One line of the audience log, from which watch time and referrals are computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceRecord {
    pub viewer_id: String,
    pub session: u64,
    pub kind: AudienceKind,
    pub inviter_id: Option<String>,
    pub tier: Option<String>,
    pub at_ms: i64,
}

/// A room as loaded from the store at start-up.
#[derive(Debug, Clone, Default)]
pub struct LoadedRoom {
    pub record: Option<RoomRecord>,
    pub brands: Vec<Brand>,
    pub products: Vec<Product>,
    pub dealers: Vec<DealerRecord>,
    pub applications: Vec<DealerApplication>,
    /// (jti, token expiry ms)
    pub kicked_tokens: Vec<(String, i64)>,
    /// (viewer id, muted until ms)
    pub mutes: Vec<(String, i64)>,
}
