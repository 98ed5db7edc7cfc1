//! What hosts ask of a room and what it answers: commands, replies, the host console's
//! events. Serialisable, so a command can reach a room's owner on another node.

use crate::model::records::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RoomError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HostCommand {
    Open,
    Close,
    AddBrand {
        name: String,
        logo_url: String,
        position: Option<u32>,
    },
    UpdateBrand {
        brand_id: String,
        name: Option<String>,
        logo_url: Option<String>,
        position: Option<u32>,
    },
    RemoveBrand {
        brand_id: String,
    },
    SwitchBrand {
        brand_id: String,
    },
    UpsertProduct(ProductInput),
    RemoveProduct {
        product_id: String,
    },
    PinProduct {
        product_id: String,
    },
    UnpinProduct,
    VerifyDealer {
        viewer_id: String,
        tier: String,
        company: String,
    },
    RevokeDealer {
        viewer_id: String,
    },
    ApproveApplication {
        application_id: String,
        tier: String,
    },
    RejectApplication {
        application_id: String,
        reason: String,
    },
    Mute {
        viewer_id: String,
        duration_seconds: u32,
    },
    /// Ends every session of an identity (WebSocket, WHEP, WHIP) and refuses the tokens it
    /// used from then on.
    Kick {
        viewer_id: String,
        reason: String,
    },
    /// Refuses one token (viewer or presenter) by its id from then on, and ends every session
    /// that uses it, whether or not one is open.
    RevokeToken {
        jti: String,
        reason: String,
    },
    DeleteMessage {
        message_id: String,
    },
    Announce {
        text: String,
    },
    GetRoom,
    ListProducts {
        brand_id: Option<String>,
    },
    ListDealers,
    ListApplications {
        status: Option<ApplicationStatus>,
    },
    /// Who may register, and the default country of registrants' phone numbers (`None`:
    /// unchanged).
    SetRegistration {
        mode: crate::model::RegistrationMode,
        phone_country: Option<String>,
    },
    Commerce(CommerceCommand),
    /// Erases a registrant's personal data the room holds (`StoreOp::EraseViewer`): their
    /// name and company on orders, chat, dealer record and applications. Also after the
    /// room ended.
    EraseViewer {
        viewer_id: String,
    },
}

impl HostCommand {
    /// Whether the command may change a room that has ended: order fulfilment and erasure
    /// go on after the show.
    pub fn allowed_after_end(&self) -> bool {
        matches!(
            self,
            HostCommand::EraseViewer { .. }
                | HostCommand::Commerce(CommerceCommand::UpdateOrderStatus { .. })
        )
    }

    /// Whether the command only reads (changes nothing, writes nothing).
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            HostCommand::GetRoom
                | HostCommand::ListProducts { .. }
                | HostCommand::ListDealers
                | HostCommand::ListApplications { .. }
        ) || matches!(self, HostCommand::Commerce(c) if c.is_read())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductInput {
    pub product_id: Option<String>,
    pub brand_id: String,
    pub name: String,
    pub description: String,
    pub image_urls: Vec<String>,
    pub link: String,
    pub min_order_quantity: u32,
    pub prices: Vec<(String, i64)>,
}

/// A room as the control plane shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomSummary {
    pub record: RoomRecord,
    pub brands: Vec<Brand>,
    pub online: u32,
    pub peak_online: u32,
    /// The node running the room (its `--node-id`), filled in by that node; `None` when the
    /// summary was read from the store with the room not running here.
    #[serde(default)]
    pub owner_node: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HostReply {
    Room(Box<RoomSummary>),
    Brand(Brand),
    Product(Product),
    Products(Vec<Product>),
    Dealer(DealerRecord),
    Dealers(Vec<DealerRecord>),
    Application(DealerApplication),
    Applications(Vec<DealerApplication>),
    Order(Box<Order>),
    Orders(OrderPage),
    Sale(FlashSale),
    Sales(Vec<FlashSale>),
    Draw(Box<DrawRecord>),
    Draws(Vec<DrawRecord>),
    RedPacket(Box<RedPacket>),
    Done,
}

/// What the host console receives (gRPC WatchRoom).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WatchEvent {
    Chat(Box<ChatRecord>),
    Application(Box<DealerApplication>),
    /// A new order or a status change.
    Order(Box<Order>),
    Stats(RoomStats),
    Action {
        action: String,
        viewer_id: String,
        detail: String,
        at_ms: i64,
    },
    /// The room ended: the stream finishes.
    Ended,
    /// The node serving the stream lost the room (it moved to another node, or its owner
    /// cannot be reached): the stream finishes; watch again.
    Lost {
        why: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStats {
    pub online: u32,
    pub peak_online: u32,
    pub dealers_online: u32,
    pub chat_per_minute: u32,
    pub likes: u64,
    pub seq: u64,
    pub at_ms: i64,
}

/// Settings for a new room, validated by [`Room::create`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewRoom {
    pub id: String,
    pub title: String,
    pub scheduled_start_ms: i64,
    pub chat_rate_limit: Option<ChatRateLimit>,
    pub banned_words: Vec<String>,
    pub history_window: Option<u32>,
    pub tiers: Vec<String>,
    pub currency: Option<String>,
    pub token_key: crate::model::Secret,
    pub registration: crate::model::RegistrationMode,
    /// Checked by the caller against the phone-number metadata; the room checks its shape.
    pub phone_country: String,
}

/// Host commands about commerce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CommerceCommand {
    ListOrders(OrderFilter),
    GetOrder {
        order_id: String,
    },
    UpdateOrderStatus {
        order_id: String,
        status: OrderStatus,
        reason: String,
    },
    CreateFlashSale {
        product_id: String,
        stock: u32,
        per_dealer_limit: u32,
        prices: Vec<(String, i64)>,
        start_ms: Option<i64>,
        duration_seconds: u32,
        tiers: Vec<String>,
    },
    GetFlashSale {
        sale_id: String,
    },
    ListFlashSales,
    EndFlashSale {
        sale_id: String,
    },
    CreateDraw {
        prize: String,
        winners: u32,
        eligibility: DrawEligibility,
        entry_seconds: u32,
        /// Where the beacon will come from; empty for a draw without a beacon.
        beacon_source: String,
    },
    /// Closes entry of an open draw; draws the winners of a draw without a beacon source, or
    /// of a closed one whose beacon is given.
    CloseDraw {
        draw_id: String,
        beacon: String,
    },
    GetDrawRecord {
        draw_id: String,
    },
    ListDraws,
    DropRedPacket {
        total_cents: i64,
        count: u32,
        tiers: Vec<String>,
        message: String,
        duration_seconds: Option<u32>,
    },
    GetRedPacket {
        packet_id: String,
    },
}

impl CommerceCommand {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            CommerceCommand::ListOrders(_)
                | CommerceCommand::GetOrder { .. }
                | CommerceCommand::GetFlashSale { .. }
                | CommerceCommand::ListFlashSales
                | CommerceCommand::GetDrawRecord { .. }
                | CommerceCommand::ListDraws
                | CommerceCommand::GetRedPacket { .. }
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderFilter {
    pub brand_id: Option<String>,
    pub product_id: Option<String>,
    pub viewer_id: Option<String>,
    pub sale_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
    pub before_order_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderPage {
    /// Newest first.
    pub orders: Vec<Order>,
    pub total_count: u32,
    pub total_cents: i64,
}
