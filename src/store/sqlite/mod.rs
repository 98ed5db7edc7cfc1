//! Embedded SQLite store: one writer thread with group commit, a separate connection for reads.
//
// Durability: the database runs in WAL mode with `synchronous=FULL`, so a commit is fsynced
// before any `Durable` of its batch resolves; an acknowledged write survives `kill -9` and
// power loss. All writes go through one OS thread ("showfloor-store", `writer.rs`) that owns
// the write connection. The submission channel is unbounded: `submit` never blocks the async
// caller, and callers are bounded upstream (room mailboxes).
//
// Layout: `schema` (DDL, migrations, connection settings), `writer` (group commit and replay),
// `apply` (one op as SQL), `rows` (each record's columns, bound and decoded in one place),
// `load` (reads), `error` (SQLite's errors in the store's terms).

mod apply;
mod engagement;
mod error;
mod load;
mod rows;
mod schema;
#[cfg(test)]
mod tests;
mod webhooks;
mod writer;

use crate::model::{
    now_ms, AudienceRecord, Channel, ChatRecord, EngagementRecord, LeadWeights, LoadedRoom,
    ProgramRecord, Registration, RegistrationKey, RoomRecord,
};
use crate::model::{DeliveryFilter, DueDelivery, Order, Webhook, WebhookAttempt, WebhookDelivery};
use crate::store::{Durable, RoomFilter, Store, StoreError, StoreOp};
use async_trait::async_trait;
use error::sql_error;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use writer::Submission;

pub use writer::MAX_BATCH_OPS;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "showfloor.db";

/// The embedded store. Dropping it (or calling [`SqliteStore::close`]) lets the writer apply
/// everything already submitted, then joins it; this blocks the dropping thread meanwhile.
pub struct SqliteStore {
    tx: Option<mpsc::Sender<Submission>>,
    writer: Option<JoinHandle<()>>,
    reader: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/showfloor.db`, migrates the schema and starts the writer.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
            op: "create the data directory",
            source: Box::new(e),
        })?;
        let path = dir.join(DB_FILE);
        let mut writer = schema::open_connection(&path)?;
        schema::migrate(&mut writer)?;
        let reader = schema::open_connection(&path)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(sql_error("open"))?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("showfloor-store".into())
            .spawn(move || writer::writer_loop(writer, rx))
            .map_err(|e| StoreError::Backend {
                op: "start the writer",
                source: Box::new(e),
            })?;
        Ok(SqliteStore {
            tx: Some(tx),
            writer: Some(handle),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Applies everything submitted so far, stops the writer and waits for it.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        // Dropping the only sender ends the writer loop once the queue is drained.
        self.tx.take();
        match self.writer.take() {
            Some(h) => h.join().map_err(|_| {
                tracing::error!("store writer thread panicked");
                StoreError::Backend {
                    op: "stop the writer",
                    source: "the writer thread panicked".into(),
                }
            }),
            None => Ok(()),
        }
    }

    /// Runs `f` on the read connection off the async threads; `op` names it in errors.
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = reader.lock();
            f(&mut conn).map_err(sql_error(op))
        })
        .await
        .map_err(|e| StoreError::Backend {
            op,
            source: Box::new(e),
        })?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn submit(&self, ops: Vec<StoreOp>) -> Durable {
        let (done, durable) = Durable::pair();
        if let Some(tx) = &self.tx {
            // On failure the writer is gone; the dropped sender resolves `durable` as Closed.
            let _ = tx.send(Submission { ops, done });
        }
        durable
    }

    async fn load_room(&self, id: &str) -> Result<Option<LoadedRoom>, StoreError> {
        let (id, now) = (id.to_string(), now_ms());
        self.read("load_room", move |conn| load::load_room(conn, &id, now))
            .await
    }

    async fn list_rooms(&self, filter: RoomFilter) -> Result<Vec<RoomRecord>, StoreError> {
        self.read("list_rooms", move |conn| load::list_rooms(conn, &filter))
            .await
    }

    /// All of them from one snapshot.
    async fn load_rooms(&self) -> Result<Vec<LoadedRoom>, StoreError> {
        let now = now_ms();
        self.read("load_rooms", move |conn| load::load_rooms(conn, now))
            .await
    }

    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError> {
        let room = room.to_string();
        self.read("recent_chat", move |conn| {
            load::recent_chat(conn, &room, limit)
        })
        .await
    }

    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError> {
        let room = room.to_string();
        self.read("audience_log", move |conn| load::audience_log(conn, &room))
            .await
    }

    async fn watch_time(&self, room: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let room = room.to_string();
        self.read("watch_time", move |conn| load::watch_time(conn, &room))
            .await
    }

    async fn registrations(
        &self,
        room: &str,
        key: RegistrationKey,
    ) -> Result<Vec<Registration>, StoreError> {
        let room = room.to_string();
        self.read("registrations", move |conn| {
            load::registrations(conn, &room, &key)
        })
        .await
    }

    async fn channels(&self, room: &str) -> Result<Vec<Channel>, StoreError> {
        let room = room.to_string();
        self.read("channels", move |conn| load::channels(conn, &room))
            .await
    }

    async fn engagement(&self, room: &str) -> Result<Vec<EngagementRecord>, StoreError> {
        let room = room.to_string();
        self.read("engagement", move |conn| {
            engagement::engagement(conn, &room)
        })
        .await
    }

    async fn program_log(&self, room: &str) -> Result<Vec<ProgramRecord>, StoreError> {
        let room = room.to_string();
        self.read("program_log", move |conn| {
            engagement::program_log(conn, &room)
        })
        .await
    }

    async fn chat_log(&self, room: &str) -> Result<Vec<ChatRecord>, StoreError> {
        let room = room.to_string();
        self.read("chat_log", move |conn| engagement::chat_log(conn, &room))
            .await
    }

    async fn lead_weights(&self, room: &str) -> Result<Option<LeadWeights>, StoreError> {
        let room = room.to_string();
        self.read("lead_weights", move |conn| {
            engagement::lead_weights(conn, &room)
        })
        .await
    }

    async fn order(&self, room: &str, id: &str) -> Result<Option<Order>, StoreError> {
        let (room, id) = (room.to_string(), id.to_string());
        self.read("order", move |conn| load::order(conn, &room, &id))
            .await
    }

    async fn webhook(&self, room: &str) -> Result<Option<Webhook>, StoreError> {
        let room = room.to_string();
        self.read("webhook", move |conn| webhooks::webhook(conn, &room))
            .await
    }

    /// One process uses an embedded store: nothing to claim, the caller keeps what it has in
    /// flight.
    async fn due_webhooks(
        &self,
        now_ms: i64,
        _lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.read("due_webhooks", move |conn| {
            webhooks::due(conn, now_ms, limit)
        })
        .await
    }

    async fn webhook_deliveries(
        &self,
        room: &str,
        filter: DeliveryFilter,
        limit: u32,
    ) -> Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>, StoreError> {
        let room = room.to_string();
        self.read("webhook_deliveries", move |conn| {
            webhooks::deliveries(conn, &room, &filter, limit)
        })
        .await
    }
}
