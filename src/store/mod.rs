//! Persistence behind one small trait: embedded SQLite by default, PostgreSQL for clusters later.

pub mod sqlite;

use crate::room::types::{
    AudienceRecord, Brand, ChatRecord, DealerApplication, DealerRecord, Draw, FlashSale,
    LoadedRoom, Order, Product, RedPacket, RoomRecord,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O: {0}")]
    Io(String),
    #[error("store is closed")]
    Closed,
}

/// One write. Writes are applied in the order they were submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreOp {
    PutRoom(RoomRecord),
    PutBrand {
        room: String,
        brand: Brand,
    },
    DeleteBrand {
        room: String,
        brand_id: String,
    },
    PutProduct {
        room: String,
        product: Product,
    },
    DeleteProduct {
        room: String,
        product_id: String,
    },
    PutDealer {
        room: String,
        dealer: DealerRecord,
    },
    PutApplication {
        room: String,
        application: DealerApplication,
    },
    KickToken {
        room: String,
        jti: String,
        expires_ms: i64,
    },
    PutMute {
        room: String,
        viewer_id: String,
        until_ms: i64,
    },
    AppendChat {
        room: String,
        chat: ChatRecord,
    },
    DeleteChat {
        room: String,
        message_id: String,
        at_ms: i64,
    },
    AppendAudience {
        room: String,
        record: AudienceRecord,
    },
    /// Inserts a new order or updates its status.
    PutOrder {
        room: String,
        order: Order,
    },
    /// Creates a flash sale, or records that it ended early (stock is never overwritten).
    PutSale {
        room: String,
        sale: FlashSale,
    },
    /// A won grab: inserts the order and takes one unit off the sale's stock, atomically.
    GrantSale {
        room: String,
        sale_id: String,
        order: Order,
    },
    /// Creates a draw, or records its close (entrants hash, beacon, winners).
    PutDraw {
        room: String,
        draw: Draw,
    },
    AddDrawEntrant {
        room: String,
        draw_id: String,
        viewer_id: String,
        at_ms: i64,
    },
    /// Creates a red packet with its split (grabs are added one by one).
    PutRedPacket {
        room: String,
        packet: RedPacket,
    },
    GrabRedPacket {
        room: String,
        packet_id: String,
        viewer_id: String,
        /// Position in the split (0-based).
        index: u32,
        amount_cents: i64,
        at_ms: i64,
    },
}

/// Resolves once the writes it belongs to are durable (committed and synced).
pub struct Durable(oneshot::Receiver<Result<(), String>>);

impl Durable {
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Io(e)),
            Err(_) => Err(StoreError::Closed),
        }
    }

    pub(crate) fn channel() -> (oneshot::Sender<Result<(), String>>, Durable) {
        let (tx, rx) = oneshot::channel();
        (tx, Durable(rx))
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Queue writes without waiting. The returned handle resolves when they are durable;
    /// dropping it is fine (the writes still happen). Concurrent submissions are committed
    /// together (group commit).
    fn submit(&self, ops: Vec<StoreOp>) -> Durable;

    /// Every room with its catalog, dealers, applications and moderation state.
    async fn load_rooms(&self) -> Result<Vec<LoadedRoom>, StoreError>;

    /// The most recent chat messages of a room, oldest first (deleted ones excluded).
    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError>;

    /// The audience log of a room, oldest first.
    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError>;

    /// Wait until everything submitted so far is durable.
    async fn flush(&self) -> Result<(), StoreError> {
        self.submit(Vec::new()).wait().await
    }
}
