//! PostgreSQL store for clusters: one writer connection with group commit, a pool for reads.
//
// Durability: a `Durable` resolves after PostgreSQL acknowledged the COMMIT of its batch,
// i.e. after its WAL was flushed — as long as the server keeps `synchronous_commit` on (its
// default), which `open` checks. Every write goes through one task ("writer.rs") that owns one
// connection; reads use a small pool. Several nodes may write to the same database: each
// room has one owner at a time, and the `Fence` op keeps a former owner out.
//
// Layout: `connect` (URL, TLS), `schema` (DDL, migrations), `writer` (group commit, replay,
// reconnection), `apply` (ops as statements), `rows` (each record's columns), `load` (reads),
// `error` (PostgreSQL's errors in the store's terms), `scratch` (a server for tests).

mod apply;
mod connect;
mod engagement;
mod error;
mod load;
mod rows;
mod schema;
#[doc(hidden)]
pub mod scratch;
#[cfg(test)]
mod tests;
mod webhooks;
mod writer;

pub use connect::PgTarget;
pub use writer::MAX_BATCH_OPS;

use crate::model::{
    now_ms, AudienceRecord, Channel, ChatRecord, EngagementRecord, LeadWeights, LoadedRoom,
    ProgramRecord, Registration, RegistrationKey, RoomRecord,
};
use crate::model::{DeliveryFilter, DueDelivery, Order, Webhook, WebhookAttempt, WebhookDelivery};
use crate::store::{Durable, RoomFilter, Store, StoreError, StoreOp};
use async_trait::async_trait;
use error::pg_error;
use tokio::sync::mpsc;
use writer::Submission;

/// Most read connections a node keeps.
const READ_POOL: usize = 8;

/// The PostgreSQL store. Dropping it lets the writer apply everything already submitted, then
/// the writer task ends on its own.
pub struct PgStore {
    tx: mpsc::UnboundedSender<Submission>,
    pool: deadpool_postgres::Pool,
}

impl PgStore {
    /// Connects, migrates the schema and starts the writer. Fails if PostgreSQL cannot be
    /// reached, or would acknowledge commits before they are durable.
    pub async fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        let mut client = target.connect().await?;
        let sync: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(pg_error("open"))?
            .get(0);
        if sync == "off" {
            return Err(StoreError::Backend {
                op: "open",
                source: "the server runs with synchronous_commit=off, which can lose \
                         acknowledged orders; turn it on for this database or user"
                    .into(),
            });
        }
        schema::migrate(&mut client).await?;
        drop(client);
        let writer = writer::Connection::open(target).await?;
        let manager = deadpool_postgres::Manager::from_config(
            target.config.clone(),
            target.tls.clone(),
            deadpool_postgres::ManagerConfig {
                // Verified: a read after PostgreSQL restarted or cut connections gets a live one.
                recycling_method: deadpool_postgres::RecyclingMethod::Verified,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(READ_POOL)
            .build()
            .map_err(|e| StoreError::Backend {
                op: "open",
                source: Box::new(e),
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer::writer_loop(target.clone(), Some(writer), rx));
        Ok(PgStore { tx, pool })
    }

    /// [`PgStore::open`], retried with backoff while PostgreSQL is unreachable (starting,
    /// restarting, a network blip) for up to `patience`; a refusal that waiting cannot fix
    /// (a wrong password, a missing database, a bad certificate) fails at once.
    pub async fn open_with_retry(
        target: &PgTarget,
        patience: std::time::Duration,
    ) -> Result<PgStore, StoreError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = std::time::Duration::from_millis(250);
        loop {
            match PgStore::open(target).await {
                Ok(store) => return Ok(store),
                Err(e) if is_misconfiguration(&e) => return Err(e),
                Err(e) if tokio::time::Instant::now() + delay > deadline => return Err(e),
                Err(e) => {
                    tracing::warn!(
                        target_db = ?target,
                        error = &e as &dyn std::error::Error,
                        retry_in_ms = delay.as_millis() as u64,
                        "PostgreSQL is not reachable yet"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    async fn reader(&self, op: &'static str) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Backend {
            op,
            source: Box::new(e),
        })
    }
}

/// Whether `e` (from [`PgStore::open`]) is a setting to fix rather than an outage to wait
/// out: PostgreSQL refused us (authentication, no such database or role, a server setting
/// we refuse), or TLS failed on a certificate. Lost or refused connections are outages.
pub fn is_misconfiguration(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let mut source = std::error::Error::source(e);
    if source.is_some_and(|s| s.downcast_ref::<tokio_postgres::Error>().is_none())
        && matches!(e, StoreError::Backend { op: "open", .. })
    {
        // Our own check of the server's settings (synchronous_commit).
        return true;
    }
    while let Some(s) = source {
        if let Some(pg) = s.downcast_ref::<tokio_postgres::Error>() {
            if let Some(code) = pg.code() {
                return ![
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code);
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::PermissionDenied
            );
        }
        source = s.source();
    }
    false
}

#[async_trait]
impl Store for PgStore {
    fn submit(&self, ops: Vec<StoreOp>) -> Durable {
        let (done, durable) = Durable::pair();
        // On failure the writer is gone; the dropped sender resolves `durable` as Closed.
        let _ = self.tx.send(Submission { ops, done });
        durable
    }

    /// A pooled connection that answers a query (the pool verifies it on checkout).
    async fn ping(&self) -> Result<(), StoreError> {
        self.reader("ping").await.map(drop)
    }

    async fn load_room(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError> {
        let mut c = self.reader("load_room").await?;
        load::load_room(&mut c, id, now_ms()).await
    }

    async fn list_rooms(&self, filter: RoomFilter) -> Result<Vec<RoomRecord>, StoreError> {
        load::list_rooms(&self.reader("list_rooms").await?, &filter).await
    }

    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError> {
        load::recent_chat(&self.reader("recent_chat").await?, room, limit).await
    }

    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError> {
        load::audience_log(&self.reader("audience_log").await?, room).await
    }

    async fn watch_time(&self, room: &str) -> Result<Vec<(String, i64)>, StoreError> {
        load::watch_time(&self.reader("watch_time").await?, room).await
    }

    async fn registrations(
        &self,
        room: &str,
        key: RegistrationKey,
    ) -> Result<Vec<Registration>, StoreError> {
        load::registrations(&self.reader("registrations").await?, room, &key).await
    }

    async fn channels(&self, room: &str) -> Result<Vec<Channel>, StoreError> {
        load::channels(&self.reader("channels").await?, room).await
    }

    async fn engagement(&self, room: &str) -> Result<Vec<EngagementRecord>, StoreError> {
        engagement::engagement(&self.reader("engagement").await?, room).await
    }

    async fn program_log(&self, room: &str) -> Result<Vec<ProgramRecord>, StoreError> {
        engagement::program_log(&self.reader("program_log").await?, room).await
    }

    async fn chat_log(&self, room: &str) -> Result<Vec<ChatRecord>, StoreError> {
        load::chat_log(&self.reader("chat_log").await?, room).await
    }

    async fn lead_weights(&self, room: &str) -> Result<Option<LeadWeights>, StoreError> {
        engagement::lead_weights(&self.reader("lead_weights").await?, room).await
    }

    async fn order(&self, room: &str, id: &str) -> Result<Option<Order>, StoreError> {
        load::order(&self.reader("order").await?, room, id).await
    }

    async fn webhook(&self, room: &str) -> Result<Option<Webhook>, StoreError> {
        webhooks::webhook(&self.reader("webhook").await?, room).await
    }

    async fn due_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        webhooks::claim_due(&self.reader("due_webhooks").await?, now_ms, lease_ms, limit).await
    }

    async fn webhook_deliveries(
        &self,
        room: &str,
        filter: DeliveryFilter,
        limit: u32,
    ) -> Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>, StoreError> {
        webhooks::deliveries(
            &self.reader("webhook_deliveries").await?,
            room,
            &filter,
            limit,
        )
        .await
    }
}
