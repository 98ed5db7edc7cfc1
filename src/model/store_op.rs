//! The writes a room asks of the store: one enum, applied in order, serialisable.

use crate::model::records::*;
use serde::{Deserialize, Serialize};

/// One write. Writes are applied in the order they were submitted. Records are boxed so an
/// op stays small: a batch holds hundreds of them, moved through vectors on the hot path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreOp {
    /// The writer owns `room` under this fencing token (the revision its lease was taken
    /// at). The store keeps the highest token it has seen per room and refuses the whole
    /// submission (`Violation::Fenced`) if a higher one was recorded: a former owner that
    /// was paused or cut off can never write after the next owner has. Put it first in
    /// every submission of a fenced room; a single node (no leases) never sends it.
    Fence {
        room: String,
        token: u64,
    },
    PutRoom(Box<RoomRecord>),
    PutBrand {
        room: String,
        brand: Box<Brand>,
    },
    DeleteBrand {
        room: String,
        brand_id: String,
    },
    PutProduct {
        room: String,
        product: Box<Product>,
    },
    DeleteProduct {
        room: String,
        product_id: String,
    },
    PutDealer {
        room: String,
        dealer: Box<DealerRecord>,
    },
    PutApplication {
        room: String,
        application: Box<DealerApplication>,
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
        chat: Box<ChatRecord>,
    },
    DeleteChat {
        room: String,
        message_id: String,
        at_ms: i64,
    },
    AppendAudience {
        room: String,
        record: Box<AudienceRecord>,
    },
    /// Inserts a new order or updates its status.
    PutOrder {
        room: String,
        order: Box<Order>,
    },
    /// Creates a flash sale, or records that it ended early (stock is never overwritten).
    PutSale {
        room: String,
        sale: Box<FlashSale>,
    },
    /// A won grab: inserts the order and takes one unit off the sale's stock, atomically.
    GrantSale {
        room: String,
        sale_id: String,
        order: Box<Order>,
    },
    /// Creates a draw, or records its close (entrants hash, beacon, winners).
    PutDraw {
        room: String,
        draw: Box<Draw>,
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
        packet: Box<RedPacket>,
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
    /// A new registration, unless its phone, invite code, viewer id or id is taken in the
    /// room (then nothing is written: read it back by phone to learn which one stands).
    /// Registrations are not the room owner's state: they are written by whichever node takes
    /// the request, never fenced.
    PutRegistration {
        room: String,
        registration: Box<crate::model::Registration>,
    },
    /// A pending registration is approved or rejected; an approved one may be rejected (the
    /// host revokes it); a rejected one stays rejected.
    DecideRegistration {
        room: String,
        id: String,
        status: crate::model::RegistrationStatus,
        at_ms: i64,
    },
    /// A new channel link, unless its code or name is taken in the room (then nothing is
    /// written).
    PutChannel {
        room: String,
        channel: Box<crate::model::Channel>,
    },
    /// Engagement counted by the room since its last batch (one write per interval).
    AppendEngagement {
        room: String,
        records: Vec<crate::model::EngagementRecord>,
    },
    /// A brand went on air (the running order's log, from which segments are cut).
    AppendProgram {
        room: String,
        record: crate::model::ProgramRecord,
    },
    /// A room's lead-score weights (written by any node, like registrations: not fenced).
    PutLeadWeights {
        room: String,
        weights: Box<crate::model::LeadWeights>,
        at_ms: i64,
    },
    /// A host erased a registrant's personal data: their registration's name, company and
    /// phone, and the name and company on their orders, chat messages, dealer record and
    /// applications (the records and counts stay).
    EraseViewer {
        room: String,
        viewer_id: String,
        at_ms: i64,
    },
    /// A room's webhook is set or replaced (any node; not fenced).
    PutWebhook {
        room: String,
        webhook: Box<crate::model::Webhook>,
    },
    /// A room's webhook is removed; its queued deliveries fail with "webhook removed" and its
    /// log is kept.
    DeleteWebhook {
        room: String,
        at_ms: i64,
    },
    /// Queues a delivery in the outbox unless one with its id is there. Written by the store
    /// itself beside the change it reports (see `store::outbox`), and for lead stages by the
    /// node that noticed the change; nothing is queued without an enabled webhook taking the
    /// event.
    QueueWebhook {
        room: String,
        delivery: Box<crate::model::WebhookDelivery>,
    },
    /// An attempt to deliver and what became of the delivery.
    RecordWebhookAttempt {
        room: String,
        attempt: Box<crate::model::WebhookAttempt>,
        outcome: crate::model::AttemptOutcome,
    },
    /// A host asks for a failed (or pending) delivery to be tried again now, with a full
    /// set of attempts.
    RetryWebhook {
        room: String,
        delivery_id: String,
        at_ms: i64,
    },
}
