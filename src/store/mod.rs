//! Persistence behind one small trait: embedded SQLite by default, PostgreSQL for clusters.
//!
//! Every backend implements [`Store`] and passes the `conformance` suite; nothing above this
//! module names a backend except where the server is built.

mod columns;
#[doc(hidden)]
pub mod conformance;
mod durable;
mod error;
pub mod outbox;
pub mod postgres;
pub mod sqlite;
pub mod testing;
mod watch_time;

pub use crate::model::StoreOp;
pub use durable::{Durable, DurableSender};
pub use error::{BoxError, StoreError, Violation};
pub use watch_time::WatchTime;

use crate::model::{
    AudienceRecord, Channel, ChatRecord, EngagementRecord, LeadWeights, LoadedRoom, ProgramRecord,
    Registration, RegistrationKey, RoomRecord, RoomState,
};
use crate::model::{DeliveryFilter, DueDelivery, Order, Webhook, WebhookAttempt, WebhookDelivery};
use async_trait::async_trait;

/// Which rooms [`Store::list_rooms`] returns. The default is every room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomFilter {
    /// Only rooms in this state; `None`: any state.
    pub state: Option<RoomState>,
    /// Only rooms created after this time (ms since the Unix epoch, exclusive).
    pub created_after_ms: Option<i64>,
    /// At most this many (the newest); `None`: no limit.
    pub limit: Option<u32>,
    /// Only the room with this id (an index lookup: whether a room exists).
    pub id: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Queue writes without waiting. The returned handle resolves when they are durable;
    /// dropping it is fine (the writes still happen). Submissions are applied in the order
    /// they were made, each all or nothing: one that fails fails only itself. Concurrent
    /// submissions are committed together (group commit).
    fn submit(&self, ops: Vec<StoreOp>) -> Durable;

    /// One room with its catalog, dealers, applications, moderation state (kicked tokens and
    /// mutes that have run out are left out) and commerce; `None` if it was never stored.
    async fn load_room(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError>;

    /// The rooms that pass `filter`, newest first (by creation time, then id).
    async fn list_rooms(&self, filter: RoomFilter) -> Result<Vec<RoomRecord>, StoreError>;

    /// Every room as [`Store::load_room`] gives it, oldest first. For the hub's start-up
    /// until it loads rooms on first use; then this goes.
    async fn load_rooms(&self) -> Result<Vec<LoadedRoom>, StoreError> {
        let mut rooms = Vec::new();
        for record in self.list_rooms(RoomFilter::default()).await?.iter().rev() {
            // A room is never deleted, so one listed is there to load.
            rooms.extend(self.load_room(&record.id).await?);
        }
        Ok(rooms)
    }

    /// The most recent chat messages of a room, oldest first (deleted ones excluded).
    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError>;

    /// The audience log of a room, oldest first.
    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError>;

    /// How long each viewer of a room has watched, from its audience log (see [`WatchTime`]).
    async fn watch_time(&self, room: &str) -> Result<Vec<(String, i64)>, StoreError>;

    /// A room's registrations that `key` selects, oldest first. Registrations are written
    /// with `StoreOp::PutRegistration` by any node (not only the room's owner) and are not
    /// part of a loaded room.
    async fn registrations(
        &self,
        room: &str,
        key: RegistrationKey,
    ) -> Result<Vec<Registration>, StoreError>;

    /// A room's channel links, oldest first.
    async fn channels(&self, room: &str) -> Result<Vec<Channel>, StoreError>;

    /// A room's engagement batches (`StoreOp::AppendEngagement`), oldest first.
    async fn engagement(&self, room: &str) -> Result<Vec<EngagementRecord>, StoreError>;

    /// A room's log of brands on air (`StoreOp::AppendProgram`), oldest first.
    async fn program_log(&self, room: &str) -> Result<Vec<ProgramRecord>, StoreError>;

    /// Every chat message of a room that was not deleted, oldest first.
    async fn chat_log(&self, room: &str) -> Result<Vec<ChatRecord>, StoreError>;

    /// A room's lead-score weights, if a host set them (`StoreOp::PutLeadWeights`).
    async fn lead_weights(&self, room: &str) -> Result<Option<LeadWeights>, StoreError>;

    /// One order of a room, as stored.
    async fn order(&self, room: &str, id: &str) -> Result<Option<Order>, StoreError>;

    /// A room's webhook (`StoreOp::PutWebhook`), if one is set.
    async fn webhook(&self, room: &str) -> Result<Option<Webhook>, StoreError>;

    /// Up to `limit` deliveries due at `now_ms` (pending, their next attempt reached, their
    /// room's webhook enabled), oldest due first, each with its webhook. A backend shared by
    /// several nodes hands a delivery to one caller at a time: it is not due again for
    /// `lease_ms` unless an attempt is recorded (`StoreOp::RecordWebhookAttempt`) first.
    async fn due_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// A room's deliveries (with `status` only, if given), newest first, each with its
    /// attempts oldest first.
    async fn webhook_deliveries(
        &self,
        room: &str,
        filter: DeliveryFilter,
        limit: u32,
    ) -> Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>, StoreError>;

    /// Whether the backend answers now (readiness): an embedded one always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Wait until everything submitted so far is durable.
    async fn flush(&self) -> Result<(), StoreError> {
        self.submit(Vec::new()).wait().await
    }
}
