//! Back-pressure instead of memory growth: with a store made slow on purpose, a room keeps
//! at most `WRITES_IN_FLIGHT` submissions waiting on it and stops taking input until writes
//! land; nothing acknowledged is lost and every order is answered once the store catches up.

mod common;
use async_trait::async_trait;
use common::*;
use serde_json::json;
use showfloor::app::App;
use showfloor::config::Config;
use showfloor::hub::WRITES_IN_FLIGHT;
use showfloor::model::{
    AudienceRecord, Channel, ChatRecord, EngagementRecord, LeadWeights, LoadedRoom, ProgramRecord,
    Registration, RegistrationKey, RoomRecord, StoreOp,
};
use showfloor::store::sqlite::SqliteStore;
use showfloor::store::testing::SlowStore;
use showfloor::store::{Durable, RoomFilter, Store, StoreError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts the submissions waiting on the store it wraps, and the most ever at once.
struct Counting {
    inner: Arc<dyn Store>,
    waiting: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[async_trait]
impl Store for Counting {
    fn submit(&self, ops: Vec<StoreOp>) -> Durable {
        let now = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let inner = self.inner.submit(ops);
        let (done, durable) = Durable::pair();
        let waiting = self.waiting.clone();
        tokio::spawn(async move {
            let r = inner.await;
            waiting.fetch_sub(1, Ordering::SeqCst);
            done.send(r);
        });
        durable
    }
    async fn load_room(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError> {
        self.inner.load_room(id).await
    }
    async fn list_rooms(&self, f: RoomFilter) -> Result<Vec<RoomRecord>, StoreError> {
        self.inner.list_rooms(f).await
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

    async fn order(
        &self,
        room: &str,
        id: &str,
    ) -> Result<Option<showfloor::model::Order>, StoreError> {
        self.inner.order(room, id).await
    }
    async fn webhook(&self, room: &str) -> Result<Option<showfloor::model::Webhook>, StoreError> {
        self.inner.webhook(room).await
    }
    async fn due_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<showfloor::model::DueDelivery>, StoreError> {
        self.inner.due_webhooks(now_ms, lease_ms, limit).await
    }
    async fn webhook_deliveries(
        &self,
        room: &str,
        filter: showfloor::model::DeliveryFilter,
        limit: u32,
    ) -> Result<
        Vec<(
            showfloor::model::WebhookDelivery,
            Vec<showfloor::model::WebhookAttempt>,
        )>,
        StoreError,
    > {
        self.inner.webhook_deliveries(room, filter, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_holds_the_room_back_instead_of_queueing_without_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = Arc::new(SlowStore::new(
        SqliteStore::open(tmp.path()).unwrap(),
        Duration::ZERO,
    ));
    let most = Arc::new(AtomicUsize::new(0));
    let store = Arc::new(Counting {
        inner: slow.clone(),
        waiting: Arc::new(AtomicUsize::new(0)),
        most: most.clone(),
    });
    let app = App::start_with_store(Config::for_tests(tmp.path().to_path_buf(), KEY), store)
        .await
        .unwrap();
    let mut server = Server::of(app, tmp.path());
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr.to_string();
    let mut dealer = connect(
        &addr,
        &show.room,
        &dealer_token(&show.room, &show.key, "d1", "gold"),
    )
    .await;
    dealer.expect("welcome").await;

    // Every commit now takes a second. Orders arrive one by one, each its own submission:
    // far more than the bound would be waiting at once if the room kept taking them.
    slow.set_delay(Duration::from_secs(1));
    let orders = 3 * WRITES_IN_FLIGHT;
    for i in 0..orders {
        dealer
            .send(
                json!({"type": "place_order", "product_id": show.products[0].id,
                         "quantity": 10, "key": format!("o{i}")}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Every order is answered, once its write is durable.
    let mut placed = HashSet::new();
    while placed.len() < orders {
        let f = tokio::time::timeout(Duration::from_secs(60), dealer.expect("order_placed"))
            .await
            .expect("every order is answered");
        placed.insert(f["order"]["id"].as_str().unwrap().to_string());
    }
    let seen = most.load(Ordering::SeqCst);
    assert!(
        seen <= WRITES_IN_FLIGHT,
        "{seen} submissions waited on the store at once; the bound is {WRITES_IN_FLIGHT}"
    );
    // The bound was reached (192 orders against 64 slots), and the metric says so.
    assert!(
        server.app().metrics.room_write_waits.get() > 0,
        "showfloor_room_write_waits counts the room's waits for a write slot"
    );
    slow.set_delay(Duration::ZERO);
    server.stop().await;
    let stored = SqliteStore::open(tmp.path())
        .unwrap()
        .load_room(&show.room)
        .await
        .unwrap()
        .unwrap();
    let ids: HashSet<String> = stored.orders.iter().map(|o| o.id.clone()).collect();
    assert!(placed.is_subset(&ids), "every acknowledged order is stored");
}
