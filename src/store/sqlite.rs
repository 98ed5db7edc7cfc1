//! Embedded SQLite store: one writer thread with group commit, a separate connection for reads.
//
// Durability: the database runs in WAL mode with `synchronous=FULL`, so a commit is fsynced
// before any `Durable` of its batch resolves; an acknowledged write survives `kill -9` and
// power loss. All writes go through one OS thread ("showfloor-store") that owns the write
// connection. It blocks for the first submission, drains whatever else is already queued (up
// to `MAX_BATCH_OPS` operations), applies the batch in one transaction and commits once. If
// any operation fails, the batch is rolled back and its submissions are replayed one by one in
// their own transactions, so only the failing submission sees the error (and none of its
// operations are applied).
//
// The submission channel is unbounded: `submit` never blocks the async caller, and callers
// are bounded upstream (room mailboxes).

use super::{Durable, Store, StoreError, StoreOp};
use crate::room::types::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRecord, DealerApplication,
    DealerRecord, LoadedRoom, Product, RoomRecord, RoomState,
};
use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "showfloor.db";

/// A batch stops draining the queue once it holds this many operations.
pub const MAX_BATCH_OPS: usize = 4096;

/// Schema migrations; `PRAGMA user_version` is the number applied so far.
const MIGRATIONS: &[&str] = &[SCHEMA_V1];

const SCHEMA_V1: &str = "
CREATE TABLE rooms (
    id                 TEXT PRIMARY KEY NOT NULL,
    title              TEXT NOT NULL,
    state              TEXT NOT NULL,
    scheduled_start_ms INTEGER NOT NULL,
    chat_rate_limit    TEXT NOT NULL, -- JSON
    banned_words       TEXT NOT NULL, -- JSON
    history_window     INTEGER NOT NULL,
    tiers              TEXT NOT NULL, -- JSON
    currency           TEXT NOT NULL,
    token_key          TEXT NOT NULL,
    brand_on_air       TEXT,
    pinned_product     TEXT,
    created_ms         INTEGER NOT NULL,
    opened_ms          INTEGER,
    ended_ms           INTEGER,
    next_id            INTEGER NOT NULL
);
CREATE TABLE brands (
    room     TEXT NOT NULL REFERENCES rooms(id),
    id       TEXT NOT NULL,
    name     TEXT NOT NULL,
    logo_url TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (room, id)
);
CREATE TABLE products (
    room               TEXT NOT NULL,
    id                 TEXT NOT NULL,
    brand_id           TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    image_urls         TEXT NOT NULL, -- JSON
    link               TEXT NOT NULL,
    min_order_quantity INTEGER NOT NULL,
    prices             TEXT NOT NULL, -- JSON [[tier, cents], ...]
    PRIMARY KEY (room, id),
    FOREIGN KEY (room, brand_id) REFERENCES brands(room, id) ON DELETE CASCADE
);
CREATE INDEX products_brand ON products(room, brand_id);
CREATE TABLE dealers (
    room       TEXT NOT NULL REFERENCES rooms(id),
    viewer_id  TEXT NOT NULL,
    tier       TEXT,
    company    TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (room, viewer_id)
);
CREATE TABLE applications (
    room           TEXT NOT NULL REFERENCES rooms(id),
    id             TEXT NOT NULL,
    viewer_id      TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    company        TEXT NOT NULL,
    licence_number TEXT NOT NULL,
    contact        TEXT NOT NULL,
    status         TEXT NOT NULL,
    tier           TEXT,
    reason         TEXT,
    created_ms     INTEGER NOT NULL,
    decided_ms     INTEGER,
    PRIMARY KEY (room, id)
);
CREATE TABLE kicked_tokens (
    room       TEXT NOT NULL REFERENCES rooms(id),
    jti        TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (room, jti)
);
CREATE TABLE mutes (
    room      TEXT NOT NULL REFERENCES rooms(id),
    viewer_id TEXT NOT NULL,
    until_ms  INTEGER NOT NULL,
    PRIMARY KEY (room, viewer_id)
);
CREATE TABLE chat (
    room         TEXT NOT NULL REFERENCES rooms(id),
    id           TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    viewer_id    TEXT NOT NULL,
    display_name TEXT NOT NULL,
    text         TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    is_dealer    INTEGER NOT NULL,
    deleted_ms   INTEGER,
    PRIMARY KEY (room, id)
);
CREATE INDEX chat_room_seq ON chat(room, seq);
CREATE TABLE audience (
    room       TEXT NOT NULL REFERENCES rooms(id),
    viewer_id  TEXT NOT NULL,
    session    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    inviter_id TEXT,
    tier       TEXT,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX audience_room_at ON audience(room, at_ms);
";

const SQL_PUT_ROOM: &str = "
INSERT INTO rooms (id, title, state, scheduled_start_ms, chat_rate_limit, banned_words,
                   history_window, tiers, currency, token_key, brand_on_air, pinned_product,
                   created_ms, opened_ms, ended_ms, next_id)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
ON CONFLICT (id) DO UPDATE SET
    title = excluded.title, state = excluded.state,
    scheduled_start_ms = excluded.scheduled_start_ms,
    chat_rate_limit = excluded.chat_rate_limit, banned_words = excluded.banned_words,
    history_window = excluded.history_window, tiers = excluded.tiers,
    currency = excluded.currency, token_key = excluded.token_key,
    brand_on_air = excluded.brand_on_air, pinned_product = excluded.pinned_product,
    created_ms = excluded.created_ms, opened_ms = excluded.opened_ms,
    ended_ms = excluded.ended_ms, next_id = excluded.next_id";

const SQL_PUT_BRAND: &str = "
INSERT INTO brands (room, id, name, logo_url, position) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (room, id) DO UPDATE SET
    name = excluded.name, logo_url = excluded.logo_url, position = excluded.position";

const SQL_DELETE_BRAND_PRODUCTS: &str = "DELETE FROM products WHERE room = ?1 AND brand_id = ?2";
const SQL_DELETE_BRAND: &str = "DELETE FROM brands WHERE room = ?1 AND id = ?2";

const SQL_PUT_PRODUCT: &str = "
INSERT INTO products (room, id, brand_id, name, description, image_urls, link,
                      min_order_quantity, prices)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (room, id) DO UPDATE SET
    brand_id = excluded.brand_id, name = excluded.name, description = excluded.description,
    image_urls = excluded.image_urls, link = excluded.link,
    min_order_quantity = excluded.min_order_quantity, prices = excluded.prices";

const SQL_DELETE_PRODUCT: &str = "DELETE FROM products WHERE room = ?1 AND id = ?2";

const SQL_PUT_DEALER: &str = "
INSERT INTO dealers (room, viewer_id, tier, company, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (room, viewer_id) DO UPDATE SET
    tier = excluded.tier, company = excluded.company, updated_ms = excluded.updated_ms";

const SQL_PUT_APPLICATION: &str = "
INSERT INTO applications (room, id, viewer_id, display_name, company, licence_number, contact,
                          status, tier, reason, created_ms, decided_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (room, id) DO UPDATE SET
    viewer_id = excluded.viewer_id, display_name = excluded.display_name,
    company = excluded.company, licence_number = excluded.licence_number,
    contact = excluded.contact, status = excluded.status, tier = excluded.tier,
    reason = excluded.reason, created_ms = excluded.created_ms,
    decided_ms = excluded.decided_ms";

const SQL_KICK_TOKEN: &str = "
INSERT INTO kicked_tokens (room, jti, expires_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (room, jti) DO UPDATE SET expires_ms = excluded.expires_ms";

const SQL_PUT_MUTE: &str = "
INSERT INTO mutes (room, viewer_id, until_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (room, viewer_id) DO UPDATE SET until_ms = excluded.until_ms";

const SQL_APPEND_CHAT: &str = "
INSERT INTO chat (room, id, seq, viewer_id, display_name, text, at_ms, is_dealer)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const SQL_DELETE_CHAT: &str = "
UPDATE chat SET deleted_ms = ?3 WHERE room = ?1 AND id = ?2 AND deleted_ms IS NULL";

const SQL_APPEND_AUDIENCE: &str = "
INSERT INTO audience (room, viewer_id, session, kind, inviter_id, tier, at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// One `submit` call as seen by the writer thread.
struct Submission {
    ops: Vec<StoreOp>,
    done: oneshot::Sender<Result<(), String>>,
}

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
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("create {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let mut writer = open_connection(&path).map_err(io)?;
        migrate(&mut writer).map_err(io)?;
        let reader = open_connection(&path).map_err(io)?;
        reader.pragma_update(None, "query_only", true).map_err(io)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("showfloor-store".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| StoreError::Io(format!("spawn store writer: {e}")))?;
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
                StoreError::Io("store writer thread panicked".into())
            }),
            None => Ok(()),
        }
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn).map_err(io)
        })
        .await
        .map_err(|e| StoreError::Io(format!("store read task: {e}")))?
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
        let (done, durable) = Durable::channel();
        if let Some(tx) = &self.tx {
            // On failure the writer is gone; the dropped sender resolves `durable` as Closed.
            let _ = tx.send(Submission { ops, done });
        }
        durable
    }

    async fn load_rooms(&self) -> Result<Vec<LoadedRoom>, StoreError> {
        let now = now_ms();
        self.read(move |conn| load_all(conn, now)).await
    }

    async fn recent_chat(&self, room: &str, limit: u32) -> Result<Vec<ChatRecord>, StoreError> {
        let room = room.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, seq, viewer_id, display_name, text, at_ms, is_dealer FROM (
                     SELECT * FROM chat WHERE room = ?1 AND deleted_ms IS NULL
                     ORDER BY seq DESC LIMIT ?2
                 ) ORDER BY seq ASC",
            )?;
            let rows = stmt.query_map(params![room, limit], |r| {
                Ok(ChatRecord {
                    id: r.get(0)?,
                    seq: r.get(1)?,
                    viewer_id: r.get(2)?,
                    display_name: r.get(3)?,
                    text: r.get(4)?,
                    at_ms: r.get(5)?,
                    is_dealer: r.get(6)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn audience_log(&self, room: &str) -> Result<Vec<AudienceRecord>, StoreError> {
        let room = room.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT viewer_id, session, kind, inviter_id, tier, at_ms FROM audience
                 WHERE room = ?1 ORDER BY at_ms, rowid",
            )?;
            let rows = stmt.query_map([room], |r| {
                Ok(AudienceRecord {
                    viewer_id: r.get(0)?,
                    session: r.get(1)?,
                    kind: parse_enum(r, 2, audience_kind)?,
                    inviter_id: r.get(3)?,
                    tier: r.get(4)?,
                    at_ms: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::ToSqlConversionFailure(
            format!("journal_mode is {mode}, expected wal").into(),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if !(0..=known).contains(&version) {
        return Err(rusqlite::Error::ToSqlConversionFailure(
            format!("database schema version {version} is not supported (this build: {known})")
                .into(),
        ));
    }
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Submission>) {
    let mut batch = Vec::new();
    // `recv` fails only once every sender is gone and the queue is empty.
    while let Ok(first) = rx.recv() {
        let mut n = first.ops.len();
        batch.push(first);
        while n < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(s) => {
                    n += s.ops.len();
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        write_batch(&mut conn, &mut batch);
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "store checkpoint at shutdown failed");
    }
}

/// Applies and resolves every submission of `batch` (left empty).
fn write_batch(conn: &mut Connection, batch: &mut Vec<Submission>) {
    if batch.iter().all(|s| s.ops.is_empty()) {
        // Flush barriers only: everything before them was committed by earlier batches.
        for s in batch.drain(..) {
            let _ = s.done.send(Ok(()));
        }
        return;
    }
    let all = batch.iter().flat_map(|s| s.ops.iter());
    match apply_in_transaction(conn, all) {
        Ok(()) => {
            for s in batch.drain(..) {
                let _ = s.done.send(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            let s = batch.pop().expect("one submission");
            tracing::error!(ops = s.ops.len(), error = %e, "store write failed");
            let _ = s.done.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(
                submissions = batch.len(),
                error = %e,
                "store batch failed; retrying submissions one by one"
            );
            for s in batch.drain(..) {
                let res = apply_in_transaction(conn, s.ops.iter());
                if let Err(e) = &res {
                    tracing::error!(ops = s.ops.len(), error = %e, "store write failed");
                }
                let _ = s.done.send(res);
            }
        }
    }
}

/// All of `ops` in one transaction, or none of them.
fn apply_in_transaction<'a>(
    conn: &mut Connection,
    ops: impl Iterator<Item = &'a StoreOp>,
) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("begin: {e}"))?;
    for op in ops {
        apply_op(&tx, op).map_err(|e| format!("{}: {e}", op_name(op)))?;
    }
    // On failure the dropped transaction rolls back.
    tx.commit().map_err(|e| format!("commit: {e}"))
}

fn op_name(op: &StoreOp) -> &'static str {
    match op {
        StoreOp::PutRoom(_) => "PutRoom",
        StoreOp::PutBrand { .. } => "PutBrand",
        StoreOp::DeleteBrand { .. } => "DeleteBrand",
        StoreOp::PutProduct { .. } => "PutProduct",
        StoreOp::DeleteProduct { .. } => "DeleteProduct",
        StoreOp::PutDealer { .. } => "PutDealer",
        StoreOp::PutApplication { .. } => "PutApplication",
        StoreOp::KickToken { .. } => "KickToken",
        StoreOp::PutMute { .. } => "PutMute",
        StoreOp::AppendChat { .. } => "AppendChat",
        StoreOp::DeleteChat { .. } => "DeleteChat",
        StoreOp::AppendAudience { .. } => "AppendAudience",
    }
}

fn apply_op(conn: &Connection, op: &StoreOp) -> rusqlite::Result<()> {
    match op {
        StoreOp::PutRoom(r) => {
            conn.prepare_cached(SQL_PUT_ROOM)?.execute(params![
                r.id,
                r.title,
                r.state.as_str(),
                r.scheduled_start_ms,
                to_json(&r.chat_rate_limit)?,
                to_json(&r.banned_words)?,
                r.history_window,
                to_json(&r.tiers)?,
                r.currency,
                r.token_key,
                r.brand_on_air,
                r.pinned_product,
                r.created_ms,
                r.opened_ms,
                r.ended_ms,
                r.next_id,
            ])?;
        }
        StoreOp::PutBrand { room, brand } => {
            conn.prepare_cached(SQL_PUT_BRAND)?.execute(params![
                room,
                brand.id,
                brand.name,
                brand.logo_url,
                brand.position,
            ])?;
        }
        StoreOp::DeleteBrand { room, brand_id } => {
            conn.prepare_cached(SQL_DELETE_BRAND_PRODUCTS)?
                .execute(params![room, brand_id])?;
            conn.prepare_cached(SQL_DELETE_BRAND)?
                .execute(params![room, brand_id])?;
        }
        StoreOp::PutProduct { room, product: p } => {
            conn.prepare_cached(SQL_PUT_PRODUCT)?.execute(params![
                room,
                p.id,
                p.brand_id,
                p.name,
                p.description,
                to_json(&p.image_urls)?,
                p.link,
                p.min_order_quantity,
                to_json(&p.prices)?,
            ])?;
        }
        StoreOp::DeleteProduct { room, product_id } => {
            conn.prepare_cached(SQL_DELETE_PRODUCT)?
                .execute(params![room, product_id])?;
        }
        StoreOp::PutDealer { room, dealer: d } => {
            conn.prepare_cached(SQL_PUT_DEALER)?.execute(params![
                room,
                d.viewer_id,
                d.tier,
                d.company,
                d.updated_ms,
            ])?;
        }
        StoreOp::PutApplication {
            room,
            application: a,
        } => {
            conn.prepare_cached(SQL_PUT_APPLICATION)?.execute(params![
                room,
                a.id,
                a.viewer_id,
                a.display_name,
                a.company,
                a.licence_number,
                a.contact,
                a.status.as_str(),
                a.tier,
                a.reason,
                a.created_ms,
                a.decided_ms,
            ])?;
        }
        StoreOp::KickToken {
            room,
            jti,
            expires_ms,
        } => {
            conn.prepare_cached(SQL_KICK_TOKEN)?
                .execute(params![room, jti, expires_ms])?;
        }
        StoreOp::PutMute {
            room,
            viewer_id,
            until_ms,
        } => {
            conn.prepare_cached(SQL_PUT_MUTE)?
                .execute(params![room, viewer_id, until_ms])?;
        }
        StoreOp::AppendChat { room, chat: c } => {
            conn.prepare_cached(SQL_APPEND_CHAT)?.execute(params![
                room,
                c.id,
                c.seq,
                c.viewer_id,
                c.display_name,
                c.text,
                c.at_ms,
                c.is_dealer,
            ])?;
        }
        StoreOp::DeleteChat {
            room,
            message_id,
            at_ms,
        } => {
            conn.prepare_cached(SQL_DELETE_CHAT)?
                .execute(params![room, message_id, at_ms])?;
        }
        StoreOp::AppendAudience { room, record: a } => {
            conn.prepare_cached(SQL_APPEND_AUDIENCE)?.execute(params![
                room,
                a.viewer_id,
                a.session,
                a.kind.as_str(),
                a.inviter_id,
                a.tier,
                a.at_ms,
            ])?;
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: DeserializeOwned>(r: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn parse_enum<T>(r: &Row<'_>, idx: usize, f: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    f(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            format!("unknown value {s:?}").into(),
        )
    })
}

fn room_state(s: &str) -> Option<RoomState> {
    [RoomState::Scheduled, RoomState::Live, RoomState::Ended]
        .into_iter()
        .find(|v| v.as_str() == s)
}

fn application_status(s: &str) -> Option<ApplicationStatus> {
    [
        ApplicationStatus::Pending,
        ApplicationStatus::Approved,
        ApplicationStatus::Rejected,
    ]
    .into_iter()
    .find(|v| v.as_str() == s)
}

fn audience_kind(s: &str) -> Option<AudienceKind> {
    [
        AudienceKind::Join,
        AudienceKind::Leave,
        AudienceKind::Heartbeat,
    ]
    .into_iter()
    .find(|v| v.as_str() == s)
}

/// Every room with its rows, read from one snapshot.
fn load_all(conn: &mut Connection, now: i64) -> rusqlite::Result<Vec<LoadedRoom>> {
    let tx = conn.transaction()?;
    let mut rooms: Vec<LoadedRoom> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    {
        let mut stmt = tx.prepare(
            "SELECT id, title, state, scheduled_start_ms, chat_rate_limit, banned_words,
                    history_window, tiers, currency, token_key, brand_on_air, pinned_product,
                    created_ms, opened_ms, ended_ms, next_id
             FROM rooms ORDER BY created_ms, rowid",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let record = RoomRecord {
                id: r.get(0)?,
                title: r.get(1)?,
                state: parse_enum(r, 2, room_state)?,
                scheduled_start_ms: r.get(3)?,
                chat_rate_limit: from_json(r, 4)?,
                banned_words: from_json(r, 5)?,
                history_window: r.get(6)?,
                tiers: from_json(r, 7)?,
                currency: r.get(8)?,
                token_key: r.get(9)?,
                brand_on_air: r.get(10)?,
                pinned_product: r.get(11)?,
                created_ms: r.get(12)?,
                opened_ms: r.get(13)?,
                ended_ms: r.get(14)?,
                next_id: r.get(15)?,
            };
            index.insert(record.id.clone(), rooms.len());
            rooms.push(LoadedRoom {
                record: Some(record),
                ..LoadedRoom::default()
            });
        }
    }

    // Runs `sql` (first column: room id) and hands each row to `add` with its room.
    fn each<F>(
        tx: &Connection,
        sql: &str,
        now: Option<i64>,
        rooms: &mut [LoadedRoom],
        index: &HashMap<String, usize>,
        mut add: F,
    ) -> rusqlite::Result<()>
    where
        F: FnMut(&mut LoadedRoom, &Row<'_>) -> rusqlite::Result<()>,
    {
        let mut stmt = tx.prepare(sql)?;
        let mut rows = match now {
            Some(now) => stmt.query([now])?,
            None => stmt.query([])?,
        };
        while let Some(r) = rows.next()? {
            let room: String = r.get(0)?;
            if let Some(&i) = index.get(&room) {
                add(&mut rooms[i], r)?;
            }
        }
        Ok(())
    }

    each(
        &tx,
        "SELECT room, id, name, logo_url, position FROM brands ORDER BY room, position, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.brands.push(Brand {
                id: r.get(1)?,
                name: r.get(2)?,
                logo_url: r.get(3)?,
                position: r.get(4)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, id, brand_id, name, description, image_urls, link, min_order_quantity,
                prices
         FROM products ORDER BY rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.products.push(Product {
                id: r.get(1)?,
                brand_id: r.get(2)?,
                name: r.get(3)?,
                description: r.get(4)?,
                image_urls: from_json(r, 5)?,
                link: r.get(6)?,
                min_order_quantity: r.get(7)?,
                prices: from_json(r, 8)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, viewer_id, tier, company, updated_ms FROM dealers ORDER BY rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.dealers.push(DealerRecord {
                viewer_id: r.get(1)?,
                tier: r.get(2)?,
                company: r.get(3)?,
                updated_ms: r.get(4)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, id, viewer_id, display_name, company, licence_number, contact, status,
                tier, reason, created_ms, decided_ms
         FROM applications ORDER BY created_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.applications.push(DealerApplication {
                id: r.get(1)?,
                viewer_id: r.get(2)?,
                display_name: r.get(3)?,
                company: r.get(4)?,
                licence_number: r.get(5)?,
                contact: r.get(6)?,
                status: parse_enum(r, 7, application_status)?,
                tier: r.get(8)?,
                reason: r.get(9)?,
                created_ms: r.get(10)?,
                decided_ms: r.get(11)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, jti, expires_ms FROM kicked_tokens WHERE expires_ms >= ?1 ORDER BY rowid",
        Some(now),
        &mut rooms,
        &index,
        |l, r| {
            l.kicked_tokens.push((r.get(1)?, r.get(2)?));
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, viewer_id, until_ms FROM mutes ORDER BY rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.mutes.push((r.get(1)?, r.get(2)?));
            Ok(())
        },
    )?;
    tx.finish()?;
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::types::ChatRateLimit;

    fn room(id: &str) -> RoomRecord {
        RoomRecord {
            id: id.into(),
            title: format!("Room {id}"),
            state: RoomState::Scheduled,
            scheduled_start_ms: 1_000,
            chat_rate_limit: ChatRateLimit::default(),
            banned_words: vec!["spam".into()],
            history_window: 50,
            tiers: vec!["gold".into(), "silver".into()],
            currency: "EUR".into(),
            token_key: "a2V5".into(),
            brand_on_air: None,
            pinned_product: None,
            created_ms: 10,
            opened_ms: None,
            ended_ms: None,
            next_id: 1,
        }
    }

    fn brand(id: &str, position: u32) -> Brand {
        Brand {
            id: id.into(),
            name: format!("Brand {id}"),
            logo_url: format!("https://x/{id}.png"),
            position,
        }
    }

    fn product(id: &str, brand_id: &str) -> Product {
        Product {
            id: id.into(),
            brand_id: brand_id.into(),
            name: format!("Product {id}"),
            description: "desc".into(),
            image_urls: vec!["https://x/1.jpg".into(), "https://x/2.jpg".into()],
            link: "https://shop/x".into(),
            min_order_quantity: 6,
            prices: vec![("gold".into(), 900), ("silver".into(), 1_000)],
        }
    }

    fn chat(id: &str, seq: u64) -> ChatRecord {
        ChatRecord {
            id: id.into(),
            seq,
            viewer_id: "v1".into(),
            display_name: "Viv".into(),
            text: format!("hello {seq}"),
            at_ms: 100 + seq as i64,
            is_dealer: seq.is_multiple_of(2),
        }
    }

    fn audience(viewer: &str, session: u64, kind: AudienceKind, at_ms: i64) -> AudienceRecord {
        AudienceRecord {
            viewer_id: viewer.into(),
            session,
            kind,
            inviter_id: Some("host".into()),
            tier: None,
            at_ms,
        }
    }

    fn application(id: &str, created_ms: i64) -> DealerApplication {
        DealerApplication {
            id: id.into(),
            viewer_id: format!("viewer-{id}"),
            display_name: "Dee".into(),
            company: "Acme".into(),
            licence_number: "L-1".into(),
            contact: "dee@acme".into(),
            status: ApplicationStatus::Pending,
            tier: None,
            reason: None,
            created_ms,
            decided_ms: None,
        }
    }

    async fn put(store: &SqliteStore, ops: Vec<StoreOp>) {
        store.submit(ops).wait().await.expect("write");
    }

    fn r(s: &str) -> String {
        s.to_string()
    }

    #[tokio::test]
    async fn every_op_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut rec = room("r1");
        put(&store, vec![StoreOp::PutRoom(rec.clone())]).await;
        put(&store, vec![StoreOp::PutRoom(room("r2"))]).await;

        let mut b2 = brand("b2", 0);
        let mut p3 = product("p3", "b1");
        let mut d1 = DealerRecord {
            viewer_id: "v9".into(),
            tier: Some("gold".into()),
            company: "Acme".into(),
            updated_ms: 5,
        };
        let mut a2 = application("a2", 20);
        put(
            &store,
            vec![
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: brand("b1", 1),
                },
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: b2.clone(),
                },
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: brand("b3", 2),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: product("p2", "b2"),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: product("p1", "b1"),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: p3.clone(),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: product("p4", "b3"),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: product("p5", "b3"),
                },
                StoreOp::PutDealer {
                    room: r("r1"),
                    dealer: d1.clone(),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: a2.clone(),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: application("a1", 10),
                },
                StoreOp::KickToken {
                    room: r("r1"),
                    jti: r("j-live"),
                    expires_ms: i64::MAX,
                },
                StoreOp::KickToken {
                    room: r("r1"),
                    jti: r("j-expired"),
                    expires_ms: 1,
                },
                StoreOp::PutMute {
                    room: r("r1"),
                    viewer_id: r("v2"),
                    until_ms: 50,
                },
                StoreOp::AppendChat {
                    room: r("r1"),
                    chat: chat("m1", 1),
                },
                StoreOp::AppendAudience {
                    room: r("r1"),
                    record: audience("v1", 7, AudienceKind::Join, 100),
                },
            ],
        )
        .await;

        // Overwrites, deletes and the brand cascade.
        rec.state = RoomState::Live;
        rec.opened_ms = Some(99);
        rec.brand_on_air = Some("b1".into());
        rec.next_id = 42;
        b2.name = "Renamed".into();
        b2.position = 3;
        p3.prices = vec![("gold".into(), 1), ("silver".into(), 2)];
        p3.brand_id = "b2".into();
        d1.tier = None;
        a2.status = ApplicationStatus::Approved;
        a2.tier = Some("gold".into());
        a2.decided_ms = Some(30);
        put(
            &store,
            vec![
                StoreOp::PutRoom(rec.clone()),
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: b2.clone(),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: p3.clone(),
                },
                StoreOp::DeleteProduct {
                    room: r("r1"),
                    product_id: r("p2"),
                },
                StoreOp::DeleteBrand {
                    room: r("r1"),
                    brand_id: r("b3"),
                },
                StoreOp::PutDealer {
                    room: r("r1"),
                    dealer: d1.clone(),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: a2.clone(),
                },
                StoreOp::PutMute {
                    room: r("r1"),
                    viewer_id: r("v2"),
                    until_ms: 500,
                },
                StoreOp::KickToken {
                    room: r("r1"),
                    jti: r("j-live"),
                    expires_ms: i64::MAX - 1,
                },
            ],
        )
        .await;

        let check = |rooms: Vec<LoadedRoom>| {
            assert_eq!(rooms.len(), 2);
            let l = &rooms[0];
            assert_eq!(l.record.as_ref(), Some(&rec));
            assert_eq!(l.brands, vec![brand("b1", 1), b2.clone()]);
            let ids: Vec<&str> = l.products.iter().map(|p| p.id.as_str()).collect();
            assert_eq!(ids, ["p1", "p3"]);
            assert_eq!(l.products[0], product("p1", "b1"));
            assert_eq!(l.products[1], p3);
            assert_eq!(l.dealers, vec![d1.clone()]);
            assert_eq!(l.applications, vec![application("a1", 10), a2.clone()]);
            assert_eq!(l.kicked_tokens, vec![(r("j-live"), i64::MAX - 1)]);
            assert_eq!(l.mutes, vec![(r("v2"), 500)]);
            let other = &rooms[1];
            assert_eq!(other.record.as_ref().map(|r| r.id.as_str()), Some("r2"));
            assert!(other.brands.is_empty() && other.products.is_empty());
        };
        check(store.load_rooms().await.unwrap());
        drop(store);

        let store = SqliteStore::open(dir.path()).unwrap();
        check(store.load_rooms().await.unwrap());
        assert_eq!(
            store.recent_chat("r1", 10).await.unwrap(),
            vec![chat("m1", 1)]
        );
        assert_eq!(
            store.audience_log("r1").await.unwrap(),
            vec![audience("v1", 7, AudienceKind::Join, 100)]
        );
        store.close().unwrap();
    }

    #[tokio::test]
    async fn recent_chat_skips_deleted_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut ops = vec![StoreOp::PutRoom(room("r1")), StoreOp::PutRoom(room("r2"))];
        for seq in 1..=10 {
            ops.push(StoreOp::AppendChat {
                room: r("r1"),
                chat: chat(&format!("m{seq}"), seq),
            });
        }
        ops.push(StoreOp::AppendChat {
            room: r("r2"),
            chat: chat("m11", 11),
        });
        ops.push(StoreOp::DeleteChat {
            room: r("r1"),
            message_id: r("m9"),
            at_ms: 500,
        });
        put(&store, ops).await;

        let seqs = |v: Vec<ChatRecord>| v.iter().map(|c| c.seq).collect::<Vec<_>>();
        assert_eq!(seqs(store.recent_chat("r1", 3).await.unwrap()), [7, 8, 10]);
        assert_eq!(seqs(store.recent_chat("r1", 100).await.unwrap()).len(), 9);
        assert!(store.recent_chat("r1", 0).await.unwrap().is_empty());
        assert_eq!(seqs(store.recent_chat("r2", 5).await.unwrap()), [11]);
        assert!(store.recent_chat("nope", 5).await.unwrap().is_empty());
        assert_eq!(
            store.recent_chat("r1", 1).await.unwrap(),
            vec![chat("m10", 10)]
        );
    }

    #[tokio::test]
    async fn audience_log_is_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(&store, vec![StoreOp::PutRoom(room("r1"))]).await;
        let records = [
            audience("a", 1, AudienceKind::Join, 300),
            audience("b", 2, AudienceKind::Join, 100),
            audience("b", 2, AudienceKind::Heartbeat, 200),
            audience("a", 1, AudienceKind::Leave, 300),
        ];
        for rec in &records {
            put(
                &store,
                vec![StoreOp::AppendAudience {
                    room: r("r1"),
                    record: rec.clone(),
                }],
            )
            .await;
        }
        let log = store.audience_log("r1").await.unwrap();
        assert_eq!(
            log,
            vec![
                records[1].clone(),
                records[2].clone(),
                records[0].clone(),
                records[3].clone()
            ]
        );
        assert!(store.audience_log("r2").await.unwrap().is_empty());
    }

    fn bad_submission() -> Vec<StoreOp> {
        vec![
            StoreOp::PutBrand {
                room: r("r1"),
                brand: brand("from-bad", 9),
            },
            // Violates the products -> brands foreign key.
            StoreOp::PutProduct {
                room: r("r1"),
                product: product("orphan", "no-such-brand"),
            },
        ]
    }

    #[tokio::test]
    async fn failing_submission_does_not_sink_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(room("r1")),
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: brand("b1", 0),
                },
            ],
        )
        .await;
        // Submitted back to back, so usually in one batch; the outcome holds either way.
        let good1 = store.submit(vec![StoreOp::PutProduct {
            room: r("r1"),
            product: product("p1", "b1"),
        }]);
        let bad = store.submit(bad_submission());
        let good2 = store.submit(vec![StoreOp::PutMute {
            room: r("r1"),
            viewer_id: r("v"),
            until_ms: 9,
        }]);
        good1.wait().await.unwrap();
        let err = bad.wait().await.unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        good2.wait().await.unwrap();
        // A chat room that does not exist violates the rooms foreign key too.
        assert!(store
            .submit(vec![StoreOp::AppendChat {
                room: r("ghost"),
                chat: chat("m1", 1),
            }])
            .wait()
            .await
            .is_err());

        let l = &store.load_rooms().await.unwrap()[0];
        assert_eq!(l.brands, vec![brand("b1", 0)]);
        assert_eq!(l.products, vec![product("p1", "b1")]);
        assert_eq!(l.mutes, vec![(r("v"), 9)]);
    }

    #[test]
    fn failed_batch_is_replayed_per_submission() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
        migrate(&mut conn).unwrap();
        let mut batch = Vec::new();
        let mut results = Vec::new();
        for ops in [
            vec![StoreOp::PutRoom(room("r1"))],
            bad_submission(),
            vec![],
            vec![StoreOp::PutBrand {
                room: r("r1"),
                brand: brand("b1", 0),
            }],
        ] {
            let (done, rx) = oneshot::channel();
            batch.push(Submission { ops, done });
            results.push(rx);
        }
        write_batch(&mut conn, &mut batch);
        assert!(batch.is_empty());
        let results: Vec<_> = results
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap())
            .collect();
        assert!(results[0].is_ok());
        assert!(results[1].as_ref().unwrap_err().contains("PutProduct"));
        assert!(results[2].is_ok());
        assert!(results[3].is_ok());
        let brands: Vec<String> = conn
            .prepare("SELECT id FROM brands")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(brands, ["b1"]);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }

    #[tokio::test]
    async fn flush_waits_for_earlier_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Handles dropped on purpose: the writes still happen.
        drop(store.submit(vec![StoreOp::PutRoom(room("r1"))]));
        drop(store.submit(vec![StoreOp::AppendChat {
            room: r("r1"),
            chat: chat("m1", 1),
        }]));
        store.flush().await.unwrap();
        assert_eq!(store.recent_chat("r1", 5).await.unwrap().len(), 1);
        store.flush().await.unwrap();
    }

    #[tokio::test]
    async fn drop_applies_queued_writes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            drop(store.submit(vec![StoreOp::PutRoom(room("r1"))]));
            for seq in 1..=100 {
                drop(store.submit(vec![StoreOp::AppendChat {
                    room: r("r1"),
                    chat: chat(&format!("m{seq}"), seq),
                }]));
            }
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.recent_chat("r1", 1000).await.unwrap().len(), 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_concurrent_submissions_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        put(&store, vec![StoreOp::PutRoom(room("r1"))]).await;
        const TASKS: u64 = 8;
        const EACH: u64 = 1_250;
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut pending = Vec::new();
                for i in 0..EACH {
                    pending.push(store.submit(vec![StoreOp::AppendAudience {
                        room: r("r1"),
                        record: audience("v", t, AudienceKind::Heartbeat, i as i64),
                    }]));
                    if pending.len() == 100 {
                        for d in pending.drain(..) {
                            d.wait().await.unwrap();
                        }
                        tokio::task::yield_now().await;
                    }
                }
                for d in pending {
                    d.wait().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = store.audience_log("r1").await.unwrap();
        assert_eq!(log.len() as u64, TASKS * EACH);
    }

    #[tokio::test]
    async fn closed_store_reports_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.shutdown().unwrap();
        assert!(matches!(
            store.submit(vec![]).wait().await,
            Err(StoreError::Closed)
        ));
    }
}
