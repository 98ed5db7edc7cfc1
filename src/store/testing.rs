//! Test doubles built on any store: [`SlowStore`], whose writes become durable late.

use crate::model::{
    AudienceRecord, Channel, ChatRecord, EngagementRecord, LeadWeights, LoadedRoom, ProgramRecord,
    Registration, RegistrationKey, RoomRecord,
};
use crate::store::{Durable, DurableSender, RoomFilter, Store, StoreError, StoreOp};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Wraps a store so that each submission resolves no earlier than a set delay after it was
/// made (and never before the inner store made it durable), like a disk whose syncs are slow:
/// for testing back-pressure. Submissions still resolve in order, and a failure still carries
/// the inner store's cause. Writes are handed to the inner store at once (reads may see them
/// before they resolve); reads are not delayed.
///
/// The delay is measured on tokio's clock (`tokio::time`), so paused test time applies to it.
pub struct SlowStore<S> {
    inner: S,
    delay_us: AtomicU64,
    queue: mpsc::UnboundedSender<Pending>,
}

struct Pending {
    inner: Durable,
    due: Instant,
    done: DurableSender,
}

impl<S: Store> SlowStore<S> {
    /// Must be called inside a tokio runtime: it starts the task that releases durability.
    pub fn new(inner: S, delay: Duration) -> SlowStore<S> {
        let (queue, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            // One at a time, in submission order; the delays overlap, as a slow disk's would.
            while let Some(p) = rx.recv().await {
                let result = p.inner.await;
                tokio::time::sleep_until(p.due).await;
                p.done.send(result);
            }
        });
        let store = SlowStore {
            inner,
            delay_us: AtomicU64::new(0),
            queue,
        };
        store.set_delay(delay);
        store
    }

    /// The delay for submissions made from now on.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(us, Ordering::Relaxed);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Store> Store for SlowStore<S> {
    fn submit(&self, ops: Vec<StoreOp>) -> Durable {
        let (done, durable) = Durable::pair();
        let pending = Pending {
            inner: self.inner.submit(ops),
            due: Instant::now() + self.delay(),
            done,
        };
        // Fails only once the runtime is gone; the dropped sender then resolves as Closed.
        let _ = self.queue.send(pending);
        durable
    }

    async fn load_room(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError> {
        self.inner.load_room(id).await
    }

    async fn list_rooms(&self, filter: RoomFilter) -> Result<Vec<RoomRecord>, StoreError> {
        self.inner.list_rooms(filter).await
    }

    async fn load_rooms(&self) -> Result<Vec<LoadedRoom>, StoreError> {
        self.inner.load_rooms().await
    }

    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError> {
        self.inner.recent_chat(room, limit).await
    }

    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError> {
        self.inner.audience_log(room).await
    }

    async fn watch_time(&self, room: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.watch_time(room).await
    }

    async fn registrations(
        &self,
        room: &str,
        key: RegistrationKey,
    ) -> Result<Vec<Registration>, StoreError> {
        self.inner.registrations(room, key).await
    }

    async fn channels(&self, room: &str) -> Result<Vec<Channel>, StoreError> {
        self.inner.channels(room).await
    }
    async fn engagement(&self, room: &str) -> Result<Vec<EngagementRecord>, StoreError> {
        self.inner.engagement(room).await
    }
    async fn program_log(&self, room: &str) -> Result<Vec<ProgramRecord>, StoreError> {
        self.inner.program_log(room).await
    }
    async fn chat_log(&self, room: &str) -> Result<Vec<ChatRecord>, StoreError> {
        self.inner.chat_log(room).await
    }
    async fn lead_weights(&self, room: &str) -> Result<Option<LeadWeights>, StoreError> {
        self.inner.lead_weights(room).await
    }

    async fn order(&self, room: &str, id: &str) -> Result<Option<crate::model::Order>, StoreError> {
        self.inner.order(room, id).await
    }
    async fn webhook(&self, room: &str) -> Result<Option<crate::model::Webhook>, StoreError> {
        self.inner.webhook(room).await
    }
    async fn due_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<crate::model::DueDelivery>, StoreError> {
        self.inner.due_webhooks(now_ms, lease_ms, limit).await
    }
    async fn webhook_deliveries(
        &self,
        room: &str,
        filter: crate::model::DeliveryFilter,
        limit: u32,
    ) -> Result<
        Vec<(
            crate::model::WebhookDelivery,
            Vec<crate::model::WebhookAttempt>,
        )>,
        StoreError,
    > {
        self.inner.webhook_deliveries(room, filter, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatRateLimit, RoomState};
    use crate::store::sqlite::SqliteStore;
    use crate::store::Violation;
    use futures_util::FutureExt;

    fn room(id: &str) -> StoreOp {
        StoreOp::PutRoom(Box::new(RoomRecord {
            id: id.into(),
            title: "Slow".into(),
            state: RoomState::Scheduled,
            scheduled_start_ms: 0,
            chat_rate_limit: ChatRateLimit::default(),
            banned_words: Vec::new(),
            history_window: 10,
            tiers: vec!["gold".into()],
            currency: "EUR".into(),
            token_key: "a2V5".into(),
            brand_on_air: None,
            pinned_product: None,
            created_ms: 1,
            opened_ms: None,
            ended_ms: None,
            next_id: 1,
            registration: Default::default(),
            phone_country: String::new(),
        }))
    }

    #[tokio::test]
    async fn durability_lags_by_the_delay_in_order_and_keeps_failures() {
        let dir = tempfile::tempdir().unwrap();
        let delay = Duration::from_millis(300);
        let store = SlowStore::new(SqliteStore::open(dir.path()).unwrap(), delay);

        let start = Instant::now();
        store.submit(vec![room("r1")]).await.unwrap();
        assert!(
            start.elapsed() >= delay,
            "resolved after {:?}",
            start.elapsed()
        );
        assert!(store.load_room("r1").await.unwrap().is_some());

        // A later submission with no delay still resolves after the earlier, slower one.
        let slow = store.submit(vec![room("r2")]);
        store.set_delay(Duration::ZERO);
        let fast = store.submit(vec![room("r3")]);
        fast.await.unwrap();
        assert!(
            slow.now_or_never().is_some(),
            "resolved in submission order"
        );

        // The inner store's refusal comes through, after the delay.
        store.set_delay(delay);
        let start = Instant::now();
        let err = store
            .submit(vec![StoreOp::PutMute {
                room: "ghost".into(),
                viewer_id: "v".into(),
                until_ms: 1,
            }])
            .await
            .unwrap_err();
        assert_eq!(err.violation(), Some(Violation::Missing));
        assert!(start.elapsed() >= delay);
        let start = Instant::now();
        store.flush().await.unwrap();
        assert!(start.elapsed() >= delay, "a flush is a submission too");
    }
}
