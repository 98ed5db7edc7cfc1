//! Plain data of a room: settings, brands, products, dealers, commerce — what the store persists.

use serde::{Deserialize, Serialize};

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

    /// The value [`RoomState::as_str`] names.
    pub fn parse(s: &str) -> Option<RoomState> {
        [RoomState::Scheduled, RoomState::Live, RoomState::Ended]
            .into_iter()
            .find(|v| v.as_str() == s)
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
    pub token_key: crate::model::Secret,
    pub brand_on_air: Option<String>,
    pub pinned_product: Option<String>,
    pub created_ms: i64,
    pub opened_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// Highest id counter handed out for brands/products/messages/applications.
    pub next_id: u64,
    /// Who may register by themselves (docs/registration.md).
    #[serde(default)]
    pub registration: crate::model::RegistrationMode,
    /// ISO 3166 country (`CN`) for phone numbers registrants type without `+`; empty: they
    /// must type the international form.
    #[serde(default)]
    pub phone_country: String,
}

impl RoomRecord {
    pub fn tier_index(&self, name: &str) -> Option<u8> {
        self.tiers.iter().position(|t| t == name).map(|i| i as u8)
    }
}

/// Fields in name order: frames serialise a brand as it is, with keys in the order viewers
/// have always seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    pub id: String,
    pub logo_url: String,
    pub name: String,
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

    /// The value [`ApplicationStatus::as_str`] names.
    pub fn parse(s: &str) -> Option<ApplicationStatus> {
        [
            ApplicationStatus::Pending,
            ApplicationStatus::Approved,
            ApplicationStatus::Rejected,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
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

    /// The value [`AudienceKind::as_str`] names.
    pub fn parse(s: &str) -> Option<AudienceKind> {
        [
            AudienceKind::Join,
            AudienceKind::Leave,
            AudienceKind::Heartbeat,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
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
    /// Oldest first.
    pub orders: Vec<Order>,
    /// `remaining` as committed with the grants.
    pub sales: Vec<FlashSale>,
    /// With their entrants, in entry order while open.
    pub draws: Vec<Draw>,
    /// With their grabs.
    pub red_packets: Vec<RedPacket>,
}

// ------------------------------------------------------------------------------ commerce

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Shipped,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Placed,
            OrderStatus::Confirmed,
            OrderStatus::Shipped,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// placed → confirmed → shipped; placed or confirmed → cancelled.
    pub fn can_become(self, next: OrderStatus) -> bool {
        matches!(
            (self, next),
            (OrderStatus::Placed, OrderStatus::Confirmed)
                | (OrderStatus::Confirmed, OrderStatus::Shipped)
                | (OrderStatus::Placed, OrderStatus::Cancelled)
                | (OrderStatus::Confirmed, OrderStatus::Cancelled)
        )
    }
}

/// An order placed inside the live by a verified dealer, at their tier's price (or a flash
/// sale's price when `sale_id` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub viewer_id: String,
    pub display_name: String,
    pub tier: String,
    pub brand_id: String,
    pub product_id: String,
    pub product_name: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub total_cents: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub status_reason: Option<String>,
    /// Set when the order is a flash-sale win.
    pub sale_id: Option<String>,
    /// Who invited the dealer (from the viewer token), for referral conversion.
    pub inviter_id: Option<String>,
    pub idempotency_key: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A flash sale: `stock` units of one product at a price per tier, one unit per grab, at
/// most `per_dealer_limit` per dealer, from `start_ms` until `end_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashSale {
    pub id: String,
    pub product_id: String,
    pub brand_id: String,
    pub stock: u32,
    pub remaining: u32,
    pub per_dealer_limit: u32,
    /// (tier name, sale price in cents) for each tier that may take part.
    pub prices: Vec<(String, i64)>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Set when the host ends the sale before `end_ms`.
    pub ended_ms: Option<i64>,
    pub created_ms: i64,
}

impl FlashSale {
    pub fn price_for(&self, tier: &str) -> Option<i64> {
        self.prices.iter().find(|(t, _)| t == tier).map(|(_, p)| *p)
    }

    pub fn phase(&self, now: i64) -> SalePhase {
        if self.ended_ms.is_some() || now >= self.end_ms {
            SalePhase::Ended
        } else if self.remaining == 0 {
            SalePhase::SoldOut
        } else if now < self.start_ms {
            SalePhase::Scheduled
        } else {
            SalePhase::Live
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalePhase {
    Scheduled,
    Live,
    SoldOut,
    Ended,
}

impl SalePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            SalePhase::Scheduled => "scheduled",
            SalePhase::Live => "live",
            SalePhase::SoldOut => "sold_out",
            SalePhase::Ended => "ended",
        }
    }
}

/// Who may enter a lucky draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DrawEligibility {
    /// Everyone connected to the room.
    Everyone,
    /// Verified dealers of any tier.
    Dealers,
    /// Verified dealers of these tiers.
    Tiers { tiers: Vec<String> },
    /// Viewers who chat a message containing the keyword (that chat is their entry).
    Keyword { keyword: String },
    /// Viewers who have watched this room for at least this many minutes.
    WatchedMinutes { minutes: u32 },
}

/// A lucky draw. `seed` is secret until the draw closes; its SHA-256 is published at open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub id: String,
    pub prize: String,
    pub winners_count: u32,
    pub eligibility: DrawEligibility,
    pub opened_ms: i64,
    pub closes_ms: i64,
    /// Entry closed and the entrants hash was published.
    pub closed_ms: Option<i64>,
    /// The winners were drawn (after the beacon arrived, for a draw with a beacon source).
    pub drawn_ms: Option<i64>,
    /// Hex of the 32-byte server seed.
    pub seed: String,
    pub commitment: String,
    /// Declared at open; empty: the draw uses no beacon and is drawn when entry closes.
    pub beacon_source: String,
    pub beacon: String,
    /// Canonical order once closed; entry order while open.
    pub entrants: Vec<String>,
    pub entrants_hash: Option<String>,
    pub winners: Vec<String>,
}

/// Who may grab a red packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedPacket {
    pub id: String,
    pub total_cents: i64,
    pub count: u32,
    /// Empty: everyone connected; otherwise dealers of these tiers.
    pub tiers: Vec<String>,
    pub message: String,
    /// The fair split, fixed when the packet is dropped; the n-th grabber gets `amounts[n]`.
    pub amounts: Vec<i64>,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// The grabs so far, by position in the split.
    pub grabs: Vec<PacketGrab>,
}

/// One opened share of a red packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketGrab {
    pub viewer_id: String,
    /// Position in the split: this grab got `amounts[index]`.
    pub index: u32,
    pub amount_cents: i64,
}

/// Everything about one draw that a third party needs to re-check it. This is the JSON that
/// `GetDrawRecord` returns in `record_json` and that `showfloor verify-draw` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawRecord {
    /// Always `showfloor-draw-v1` (`draw::ALGORITHM`) for records this code writes.
    pub algorithm: String,
    pub room_id: String,
    pub draw_id: String,
    pub prize: String,
    /// How many winners the host asked for; fewer are drawn when there are fewer entrants.
    pub winners_count: u32,
    /// Who could enter. Informational: not an input to the winner computation.
    pub eligibility: serde_json::Value,
    pub opened_ms: i64,
    pub closes_ms: i64,
    /// When entry closed and the entrants hash was published; `None` while it is open.
    pub closed_ms: Option<i64>,
    /// When the winners were drawn and the seed revealed (after the beacon, for a draw with a
    /// beacon source; otherwise the same as `closed_ms`). `None` until then.
    #[serde(default)]
    pub drawn_ms: Option<i64>,
    /// `hex(SHA-256(seed))`, published when the draw opened.
    pub commitment: String,
    /// Hex of the 32-byte seed; `None` while the draw is open.
    pub seed: Option<String>,
    /// Entrant ids in canonical order (bytewise ascending, no duplicates).
    pub entrants: Vec<String>,
    /// `None` while the draw is open.
    pub entrants_hash: Option<String>,
    /// Where the beacon comes from, declared when the draw opened; empty for a draw without
    /// a beacon.
    #[serde(default)]
    pub beacon_source: String,
    /// The public value from `beacon_source`, supplied after the entrants hash was published;
    /// empty for a draw without a beacon source.
    pub beacon: String,
    /// In draw order.
    pub winners: Vec<String>,
}
