//! Room events as plain values: what a room's owner publishes, and what crosses between
//! nodes. Rendering per audience class happens where the viewers are (`room::event`).

use crate::model::records::{Brand, ChatRecord, DrawEligibility, FlashSale, Product, RoomState};
use serde::{Deserialize, Serialize};

/// A sequenced room event. Plain, serialisable data (it may carry prices: it is the internal
/// form that crosses the bus, never sent to a viewer as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqEvent {
    pub room: String,
    pub seq: u64,
    pub at_ms: i64,
    pub event: RoomEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    Chat {
        message: ChatRecord,
    },
    ChatDeleted {
        id: String,
    },
    Announce {
        text: String,
    },
    OnlineCount {
        online: u32,
    },
    LikeCount {
        likes: u64,
    },
    BrandSwitched {
        brand: Brand,
        shelf: Vec<Product>,
        pinned_product: Option<String>,
    },
    RunningOrder {
        brands: Vec<Brand>,
    },
    ProductPinned {
        product: Product,
    },
    ProductUnpinned {
        product_id: String,
    },
    ProductUpdated {
        product: Product,
    },
    ProductRemoved {
        product_id: String,
    },
    RoomState {
        state: RoomState,
    },
    /// The brand on air and whether its presenter's feed is live (media keeps flowing to
    /// WHEP viewers only when it is).
    Program {
        brand_id: Option<String>,
        live: bool,
    },
    SaleScheduled {
        sale: FlashSale,
        product_name: String,
    },
    SaleStarted {
        sale: FlashSale,
        product_name: String,
    },
    StockLeft {
        sale_id: String,
        remaining: u32,
        stock: u32,
    },
    SoldOut {
        sale_id: String,
        stock: u32,
    },
    SaleEnded {
        sale_id: String,
        sold: u32,
        stock: u32,
        /// "time" or "host".
        reason: String,
    },
    DrawOpened {
        draw_id: String,
        prize: String,
        winners_count: u32,
        eligibility: DrawEligibility,
        closes_ms: i64,
        commitment: String,
        beacon_source: String,
        algorithm: String,
    },
    DrawClosed {
        draw_id: String,
        entrant_count: u32,
        entrants_hash: String,
        beacon_source: String,
    },
    DrawResult {
        draw_id: String,
        prize: String,
        seed: String,
        entrants_hash: String,
        beacon: String,
        /// (viewer id, display name), in draw order.
        winners: Vec<(String, String)>,
    },
    RedPacketDropped {
        packet_id: String,
        count: u32,
        total_cents: i64,
        currency: String,
        tiers: Vec<String>,
        message: String,
        expires_ms: i64,
    },
    RedPacketGone {
        packet_id: String,
        /// "empty" or "expired".
        reason: String,
        grabbed: u32,
    },
}

impl RoomEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            RoomEvent::Chat { .. } => "chat",
            RoomEvent::ChatDeleted { .. } => "chat_deleted",
            RoomEvent::Announce { .. } => "announce",
            RoomEvent::OnlineCount { .. } => "online_count",
            RoomEvent::LikeCount { .. } => "like_count",
            RoomEvent::BrandSwitched { .. } => "brand_switched",
            RoomEvent::RunningOrder { .. } => "running_order",
            RoomEvent::ProductPinned { .. } => "product_pinned",
            RoomEvent::ProductUnpinned { .. } => "product_unpinned",
            RoomEvent::ProductUpdated { .. } => "product_updated",
            RoomEvent::ProductRemoved { .. } => "product_removed",
            RoomEvent::RoomState { .. } => "room_state",
            RoomEvent::Program { .. } => "program",
            RoomEvent::SaleScheduled { .. } => "sale_scheduled",
            RoomEvent::SaleStarted { .. } => "sale_started",
            RoomEvent::StockLeft { .. } => "stock_left",
            RoomEvent::SoldOut { .. } => "sold_out",
            RoomEvent::SaleEnded { .. } => "sale_ended",
            RoomEvent::DrawOpened { .. } => "draw_opened",
            RoomEvent::DrawClosed { .. } => "draw_closed",
            RoomEvent::DrawResult { .. } => "draw_result",
            RoomEvent::RedPacketDropped { .. } => "red_packet",
            RoomEvent::RedPacketGone { .. } => "red_packet_gone",
        }
    }

    /// Whether the rendering differs between audience classes.
    pub fn carries_products(&self) -> bool {
        matches!(
            self,
            RoomEvent::BrandSwitched { .. }
                | RoomEvent::ProductPinned { .. }
                | RoomEvent::ProductUpdated { .. }
                | RoomEvent::SaleScheduled { .. }
                | RoomEvent::SaleStarted { .. }
        )
    }
}
