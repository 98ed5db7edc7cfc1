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

use super::{Durable, Store, StoreError, StoreOp, WatchTime};
use crate::model::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRecord, DealerApplication,
    DealerRecord, Draw, FlashSale, LoadedRoom, Order, OrderStatus, PacketGrab, Product, RedPacket,
    RoomRecord, RoomState,
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
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

/// Two-step draws: a beacon source declared at open, winners drawn after entry closes.
const SCHEMA_V3: &str = "
ALTER TABLE draws ADD COLUMN beacon_source TEXT NOT NULL DEFAULT '';
ALTER TABLE draws ADD COLUMN drawn_ms INTEGER;
UPDATE draws SET drawn_ms = closed_ms WHERE closed_ms IS NOT NULL;
";

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

/// Commerce: orders, flash sales, lucky draws and red packets.
const SCHEMA_V2: &str = "
CREATE TABLE orders (
    room             TEXT NOT NULL REFERENCES rooms(id),
    id               TEXT NOT NULL,
    viewer_id        TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    tier             TEXT NOT NULL,
    brand_id         TEXT NOT NULL,
    product_id       TEXT NOT NULL,
    product_name     TEXT NOT NULL,
    quantity         INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    total_cents      INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    sale_id          TEXT,
    inviter_id       TEXT,
    idempotency_key  TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (room, id)
);
-- One order per key and viewer, per flash sale or outside any sale (NULLs never collide in a
-- plain UNIQUE constraint, hence the COALESCE).
CREATE UNIQUE INDEX orders_idempotency
    ON orders(room, viewer_id, COALESCE(sale_id, ''), idempotency_key);
CREATE INDEX orders_room_created ON orders(room, created_ms);
CREATE TABLE flash_sales (
    room             TEXT NOT NULL REFERENCES rooms(id),
    id               TEXT NOT NULL,
    product_id       TEXT NOT NULL,
    brand_id         TEXT NOT NULL,
    stock            INTEGER NOT NULL,
    remaining        INTEGER NOT NULL,
    per_dealer_limit INTEGER NOT NULL,
    prices           TEXT NOT NULL, -- JSON [[tier, cents], ...]
    start_ms         INTEGER NOT NULL,
    end_ms           INTEGER NOT NULL,
    ended_ms         INTEGER,
    created_ms       INTEGER NOT NULL,
    PRIMARY KEY (room, id),
    CHECK (remaining >= 0 AND remaining <= stock)
);
CREATE TABLE draws (
    room          TEXT NOT NULL REFERENCES rooms(id),
    id            TEXT NOT NULL,
    prize         TEXT NOT NULL,
    winners_count INTEGER NOT NULL,
    eligibility   TEXT NOT NULL, -- JSON
    opened_ms     INTEGER NOT NULL,
    closes_ms     INTEGER NOT NULL,
    closed_ms     INTEGER,
    seed          TEXT NOT NULL,
    commitment    TEXT NOT NULL,
    beacon        TEXT NOT NULL,
    entrants_hash TEXT,
    winners       TEXT NOT NULL, -- JSON
    PRIMARY KEY (room, id)
);
CREATE TABLE draw_entrants (
    room      TEXT NOT NULL,
    draw_id   TEXT NOT NULL,
    viewer_id TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (room, draw_id, viewer_id),
    FOREIGN KEY (room, draw_id) REFERENCES draws(room, id)
);
CREATE TABLE red_packets (
    room        TEXT NOT NULL REFERENCES rooms(id),
    id          TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    tiers       TEXT NOT NULL, -- JSON
    message     TEXT NOT NULL,
    amounts     TEXT NOT NULL, -- JSON
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    PRIMARY KEY (room, id)
);
CREATE TABLE red_packet_grabs (
    room         TEXT NOT NULL,
    packet_id    TEXT NOT NULL,
    viewer_id    TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    PRIMARY KEY (room, packet_id, viewer_id),
    UNIQUE (room, packet_id, idx),
    FOREIGN KEY (room, packet_id) REFERENCES red_packets(room, id)
);
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

/// Only the status moves after an order is created.
const SQL_PUT_ORDER: &str = "
INSERT INTO orders (room, id, viewer_id, display_name, tier, brand_id, product_id,
                    product_name, quantity, unit_price_cents, total_cents, currency, status,
                    status_reason, sale_id, inviter_id, idempotency_key, created_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
ON CONFLICT (room, id) DO UPDATE SET
    status = excluded.status, status_reason = excluded.status_reason,
    updated_ms = excluded.updated_ms";

/// A flash-sale win: a duplicate must fail, not update.
const SQL_INSERT_ORDER: &str = "
INSERT INTO orders (room, id, viewer_id, display_name, tier, brand_id, product_id,
                    product_name, quantity, unit_price_cents, total_cents, currency, status,
                    status_reason, sale_id, inviter_id, idempotency_key, created_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// Stock is owned by `SQL_TAKE_SALE_UNIT` once the sale exists; a later put only ends it.
const SQL_PUT_SALE: &str = "
INSERT INTO flash_sales (room, id, product_id, brand_id, stock, remaining, per_dealer_limit,
                         prices, start_ms, end_ms, ended_ms, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (room, id) DO UPDATE SET ended_ms = excluded.ended_ms";

const SQL_TAKE_SALE_UNIT: &str = "
UPDATE flash_sales SET remaining = remaining - 1 WHERE room = ?1 AND id = ?2 AND remaining > 0";

/// The seed, commitment and beacon source are fixed at open; closing and drawing fill in the
/// rest.
const SQL_PUT_DRAW: &str = "
INSERT INTO draws (room, id, prize, winners_count, eligibility, opened_ms, closes_ms,
                   closed_ms, seed, commitment, beacon, entrants_hash, winners,
                   beacon_source, drawn_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (room, id) DO UPDATE SET
    closed_ms = excluded.closed_ms, beacon = excluded.beacon,
    entrants_hash = excluded.entrants_hash, winners = excluded.winners,
    drawn_ms = excluded.drawn_ms";

const SQL_ADD_DRAW_ENTRANT: &str = "
INSERT OR IGNORE INTO draw_entrants (room, draw_id, viewer_id, at_ms) VALUES (?1, ?2, ?3, ?4)";

const SQL_PUT_RED_PACKET: &str = "
INSERT INTO red_packets (room, id, total_cents, count, tiers, message, amounts, created_ms,
                         expires_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (room, id) DO NOTHING";

const SQL_GRAB_RED_PACKET: &str = "
INSERT INTO red_packet_grabs (room, packet_id, viewer_id, idx, amount_cents, at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

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

    async fn watch_time(&self, room: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let room = room.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT viewer_id, session, kind, at_ms FROM audience
                 WHERE room = ?1 ORDER BY viewer_id, at_ms, rowid",
            )?;
            let mut rows = stmt.query([room])?;
            let mut fold = WatchTime::default();
            while let Some(r) = rows.next()? {
                let viewer: String = r.get(0)?;
                fold.add(
                    &viewer,
                    r.get(1)?,
                    parse_enum(r, 2, audience_kind)?,
                    r.get(3)?,
                );
            }
            Ok(fold.finish())
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
        StoreOp::PutOrder { .. } => "PutOrder",
        StoreOp::PutSale { .. } => "PutSale",
        StoreOp::GrantSale { .. } => "GrantSale",
        StoreOp::PutDraw { .. } => "PutDraw",
        StoreOp::AddDrawEntrant { .. } => "AddDrawEntrant",
        StoreOp::PutRedPacket { .. } => "PutRedPacket",
        StoreOp::GrabRedPacket { .. } => "GrabRedPacket",
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
        StoreOp::PutOrder { room, order } => {
            execute_order(conn, SQL_PUT_ORDER, room, order)?;
        }
        StoreOp::PutSale { room, sale: s } => {
            conn.prepare_cached(SQL_PUT_SALE)?.execute(params![
                room,
                s.id,
                s.product_id,
                s.brand_id,
                s.stock,
                s.remaining,
                s.per_dealer_limit,
                to_json(&s.prices)?,
                s.start_ms,
                s.end_ms,
                s.ended_ms,
                s.created_ms,
            ])?;
        }
        StoreOp::GrantSale {
            room,
            sale_id,
            order,
        } => {
            // The hot path of a flash sale: two cached statements, nothing else.
            let taken = conn
                .prepare_cached(SQL_TAKE_SALE_UNIT)?
                .execute(params![room, sale_id])?;
            if taken == 0 {
                // Fails the whole submission, so no order is kept without its unit.
                return Err(refused(format!(
                    "flash sale {sale_id} of room {room} is sold out or unknown"
                )));
            }
            execute_order(conn, SQL_INSERT_ORDER, room, order)?;
        }
        StoreOp::PutDraw { room, draw: d } => {
            conn.prepare_cached(SQL_PUT_DRAW)?.execute(params![
                room,
                d.id,
                d.prize,
                d.winners_count,
                to_json(&d.eligibility)?,
                d.opened_ms,
                d.closes_ms,
                d.closed_ms,
                d.seed,
                d.commitment,
                d.beacon,
                d.entrants_hash,
                to_json(&d.winners)?,
                d.beacon_source,
                d.drawn_ms,
            ])?;
            // Entrants normally arrive one by one (`AddDrawEntrant`); recording the ones a
            // put carries keeps the stored set equal to the one `entrants_hash` covers even
            // if an earlier entry write was lost. Empty at open, so this costs nothing then.
            if !d.entrants.is_empty() {
                let at_ms = d.closed_ms.unwrap_or(d.opened_ms);
                let mut add = conn.prepare_cached(SQL_ADD_DRAW_ENTRANT)?;
                for viewer_id in &d.entrants {
                    add.execute(params![room, d.id, viewer_id, at_ms])?;
                }
            }
        }
        StoreOp::AddDrawEntrant {
            room,
            draw_id,
            viewer_id,
            at_ms,
        } => {
            conn.prepare_cached(SQL_ADD_DRAW_ENTRANT)?
                .execute(params![room, draw_id, viewer_id, at_ms])?;
        }
        StoreOp::PutRedPacket { room, packet: p } => {
            conn.prepare_cached(SQL_PUT_RED_PACKET)?.execute(params![
                room,
                p.id,
                p.total_cents,
                p.count,
                to_json(&p.tiers)?,
                p.message,
                to_json(&p.amounts)?,
                p.created_ms,
                p.expires_ms,
            ])?;
        }
        StoreOp::GrabRedPacket {
            room,
            packet_id,
            viewer_id,
            index,
            amount_cents,
            at_ms,
        } => {
            conn.prepare_cached(SQL_GRAB_RED_PACKET)?.execute(params![
                room,
                packet_id,
                viewer_id,
                index,
                amount_cents,
                at_ms,
            ])?;
        }
    }
    Ok(())
}

/// Runs `SQL_PUT_ORDER` or `SQL_INSERT_ORDER` (same parameters) for `o`.
fn execute_order(conn: &Connection, sql: &str, room: &str, o: &Order) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params![
        room,
        o.id,
        o.viewer_id,
        o.display_name,
        o.tier,
        o.brand_id,
        o.product_id,
        o.product_name,
        o.quantity,
        o.unit_price_cents,
        o.total_cents,
        o.currency,
        o.status.as_str(),
        o.status_reason,
        o.sale_id,
        o.inviter_id,
        o.idempotency_key,
        o.created_ms,
        o.updated_ms,
    ])
}

/// An operation the data does not allow (as opposed to an SQLite failure).
fn refused(msg: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(msg.into())
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

/// (room id, item id) -> position of the item in its room's list, for attaching child rows.
fn position_by_id<'a, I>(
    rooms: &'a [LoadedRoom],
    ids: impl Fn(&'a LoadedRoom) -> I,
) -> HashMap<(String, String), usize>
where
    I: Iterator<Item = &'a str>,
{
    let mut at = HashMap::new();
    for l in rooms {
        let Some(room) = &l.record else { continue };
        for (i, id) in ids(l).enumerate() {
            at.insert((room.id.clone(), id.to_string()), i);
        }
    }
    at
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
    each(
        &tx,
        "SELECT room, id, viewer_id, display_name, tier, brand_id, product_id, product_name,
                quantity, unit_price_cents, total_cents, currency, status, status_reason,
                sale_id, inviter_id, idempotency_key, created_ms, updated_ms
         FROM orders ORDER BY created_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.orders.push(Order {
                id: r.get(1)?,
                viewer_id: r.get(2)?,
                display_name: r.get(3)?,
                tier: r.get(4)?,
                brand_id: r.get(5)?,
                product_id: r.get(6)?,
                product_name: r.get(7)?,
                quantity: r.get(8)?,
                unit_price_cents: r.get(9)?,
                total_cents: r.get(10)?,
                currency: r.get(11)?,
                status: parse_enum(r, 12, OrderStatus::parse)?,
                status_reason: r.get(13)?,
                sale_id: r.get(14)?,
                inviter_id: r.get(15)?,
                idempotency_key: r.get(16)?,
                created_ms: r.get(17)?,
                updated_ms: r.get(18)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, id, product_id, brand_id, stock, remaining, per_dealer_limit, prices,
                start_ms, end_ms, ended_ms, created_ms
         FROM flash_sales ORDER BY created_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.sales.push(FlashSale {
                id: r.get(1)?,
                product_id: r.get(2)?,
                brand_id: r.get(3)?,
                stock: r.get(4)?,
                remaining: r.get(5)?,
                per_dealer_limit: r.get(6)?,
                prices: from_json(r, 7)?,
                start_ms: r.get(8)?,
                end_ms: r.get(9)?,
                ended_ms: r.get(10)?,
                created_ms: r.get(11)?,
            });
            Ok(())
        },
    )?;
    each(
        &tx,
        "SELECT room, id, prize, winners_count, eligibility, opened_ms, closes_ms, closed_ms,
                seed, commitment, beacon, entrants_hash, winners, beacon_source, drawn_ms
         FROM draws ORDER BY opened_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.draws.push(Draw {
                id: r.get(1)?,
                prize: r.get(2)?,
                winners_count: r.get(3)?,
                eligibility: from_json(r, 4)?,
                opened_ms: r.get(5)?,
                closes_ms: r.get(6)?,
                closed_ms: r.get(7)?,
                drawn_ms: r.get(14)?,
                seed: r.get(8)?,
                commitment: r.get(9)?,
                beacon_source: r.get(13)?,
                beacon: r.get(10)?,
                entrants: Vec::new(),
                entrants_hash: r.get(11)?,
                winners: from_json(r, 12)?,
            });
            Ok(())
        },
    )?;
    let draw_at = position_by_id(&rooms, |l| l.draws.iter().map(|d| d.id.as_str()));
    each(
        &tx,
        "SELECT room, draw_id, viewer_id FROM draw_entrants ORDER BY at_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            let (room, draw_id): (String, String) = (r.get(0)?, r.get(1)?);
            if let Some(&i) = draw_at.get(&(room, draw_id)) {
                l.draws[i].entrants.push(r.get(2)?);
            }
            Ok(())
        },
    )?;
    for l in &mut rooms {
        for d in l.draws.iter_mut().filter(|d| d.closed_ms.is_some()) {
            // A closed draw's entrants are kept in the canonical order its hash covers.
            crate::draw::sort_entrants(&mut d.entrants);
        }
    }
    each(
        &tx,
        "SELECT room, id, total_cents, count, tiers, message, amounts, created_ms, expires_ms
         FROM red_packets ORDER BY created_ms, rowid",
        None,
        &mut rooms,
        &index,
        |l, r| {
            l.red_packets.push(RedPacket {
                id: r.get(1)?,
                total_cents: r.get(2)?,
                count: r.get(3)?,
                tiers: from_json(r, 4)?,
                message: r.get(5)?,
                amounts: from_json(r, 6)?,
                created_ms: r.get(7)?,
                expires_ms: r.get(8)?,
                grabs: Vec::new(),
            });
            Ok(())
        },
    )?;
    let packet_at = position_by_id(&rooms, |l| l.red_packets.iter().map(|p| p.id.as_str()));
    each(
        &tx,
        "SELECT room, packet_id, viewer_id, idx, amount_cents FROM red_packet_grabs
         ORDER BY room, packet_id, idx",
        None,
        &mut rooms,
        &index,
        |l, r| {
            let (room, packet_id): (String, String) = (r.get(0)?, r.get(1)?);
            if let Some(&i) = packet_at.get(&(room, packet_id)) {
                l.red_packets[i].grabs.push(PacketGrab {
                    viewer_id: r.get(2)?,
                    index: r.get(3)?,
                    amount_cents: r.get(4)?,
                });
            }
            Ok(())
        },
    )?;
    tx.finish()?;
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatRateLimit, DrawEligibility};

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
        put(&store, vec![StoreOp::PutRoom(Box::new(rec.clone()))]).await;
        put(&store, vec![StoreOp::PutRoom(Box::new(room("r2")))]).await;

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
                    brand: Box::new(brand("b1", 1)),
                },
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: Box::new(b2.clone()),
                },
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: Box::new(brand("b3", 2)),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(product("p2", "b2")),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(product("p1", "b1")),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(p3.clone()),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(product("p4", "b3")),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(product("p5", "b3")),
                },
                StoreOp::PutDealer {
                    room: r("r1"),
                    dealer: Box::new(d1.clone()),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: Box::new(a2.clone()),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: Box::new(application("a1", 10)),
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
                    chat: Box::new(chat("m1", 1)),
                },
                StoreOp::AppendAudience {
                    room: r("r1"),
                    record: Box::new(audience("v1", 7, AudienceKind::Join, 100)),
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
                StoreOp::PutRoom(Box::new(rec.clone())),
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: Box::new(b2.clone()),
                },
                StoreOp::PutProduct {
                    room: r("r1"),
                    product: Box::new(p3.clone()),
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
                    dealer: Box::new(d1.clone()),
                },
                StoreOp::PutApplication {
                    room: r("r1"),
                    application: Box::new(a2.clone()),
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
        let mut ops = vec![
            StoreOp::PutRoom(Box::new(room("r1"))),
            StoreOp::PutRoom(Box::new(room("r2"))),
        ];
        for seq in 1..=10 {
            ops.push(StoreOp::AppendChat {
                room: r("r1"),
                chat: Box::new(chat(&format!("m{seq}"), seq)),
            });
        }
        ops.push(StoreOp::AppendChat {
            room: r("r2"),
            chat: Box::new(chat("m11", 11)),
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
        put(&store, vec![StoreOp::PutRoom(Box::new(room("r1")))]).await;
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
                    record: Box::new(rec.clone()),
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
                brand: Box::new(brand("from-bad", 9)),
            },
            // Violates the products -> brands foreign key.
            StoreOp::PutProduct {
                room: r("r1"),
                product: Box::new(product("orphan", "no-such-brand")),
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
                StoreOp::PutRoom(Box::new(room("r1"))),
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: Box::new(brand("b1", 0)),
                },
            ],
        )
        .await;
        // Submitted back to back, so usually in one batch; the outcome holds either way.
        let good1 = store.submit(vec![StoreOp::PutProduct {
            room: r("r1"),
            product: Box::new(product("p1", "b1")),
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
                chat: Box::new(chat("m1", 1)),
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
            vec![StoreOp::PutRoom(Box::new(room("r1")))],
            bad_submission(),
            vec![],
            vec![StoreOp::PutBrand {
                room: r("r1"),
                brand: Box::new(brand("b1", 0)),
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
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn flush_waits_for_earlier_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Handles dropped on purpose: the writes still happen.
        drop(store.submit(vec![StoreOp::PutRoom(Box::new(room("r1")))]));
        drop(store.submit(vec![StoreOp::AppendChat {
            room: r("r1"),
            chat: Box::new(chat("m1", 1)),
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
            drop(store.submit(vec![StoreOp::PutRoom(Box::new(room("r1")))]));
            for seq in 1..=100 {
                drop(store.submit(vec![StoreOp::AppendChat {
                    room: r("r1"),
                    chat: Box::new(chat(&format!("m{seq}"), seq)),
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
        put(&store, vec![StoreOp::PutRoom(Box::new(room("r1")))]).await;
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
                        record: Box::new(audience("v", t, AudienceKind::Heartbeat, i as i64)),
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

    // ------------------------------------------------------------------------ commerce

    fn order(id: &str, viewer: &str, key: &str, sale_id: Option<&str>, created_ms: i64) -> Order {
        Order {
            id: id.into(),
            viewer_id: viewer.into(),
            display_name: format!("Dealer {viewer}"),
            tier: "gold".into(),
            brand_id: "b1".into(),
            product_id: "p1".into(),
            product_name: "Product p1".into(),
            quantity: 6,
            unit_price_cents: 900,
            total_cents: 5_400,
            currency: "EUR".into(),
            status: OrderStatus::Placed,
            status_reason: None,
            sale_id: sale_id.map(String::from),
            inviter_id: Some("host".into()),
            idempotency_key: key.into(),
            created_ms,
            updated_ms: created_ms,
        }
    }

    fn sale(id: &str, stock: u32) -> FlashSale {
        FlashSale {
            id: id.into(),
            product_id: "p1".into(),
            brand_id: "b1".into(),
            stock,
            remaining: stock,
            per_dealer_limit: 1,
            prices: vec![("gold".into(), 500), ("silver".into(), 600)],
            start_ms: 100,
            end_ms: 10_000,
            ended_ms: None,
            created_ms: 50,
        }
    }

    fn draw(id: &str, opened_ms: i64, eligibility: DrawEligibility) -> Draw {
        Draw {
            id: id.into(),
            prize: "A watch".into(),
            winners_count: 2,
            eligibility,
            opened_ms,
            closes_ms: opened_ms + 60_000,
            closed_ms: None,
            drawn_ms: None,
            seed: "ab".repeat(32),
            commitment: "cd".repeat(32),
            beacon_source: String::new(),
            beacon: String::new(),
            entrants: Vec::new(),
            entrants_hash: None,
            winners: Vec::new(),
        }
    }

    fn packet(id: &str, amounts: Vec<i64>) -> RedPacket {
        RedPacket {
            id: id.into(),
            total_cents: amounts.iter().sum(),
            count: amounts.len() as u32,
            tiers: vec!["gold".into()],
            message: "Gong xi".into(),
            amounts,
            created_ms: 70,
            expires_ms: 90_000,
            grabs: Vec::new(),
        }
    }

    fn grant(sale_id: &str, order: Order) -> StoreOp {
        StoreOp::GrantSale {
            room: r("r1"),
            sale_id: sale_id.into(),
            order: Box::new(order),
        }
    }

    fn put_order(order: Order) -> StoreOp {
        StoreOp::PutOrder {
            room: r("r1"),
            order: Box::new(order),
        }
    }

    fn put_sale(sale: FlashSale) -> StoreOp {
        StoreOp::PutSale {
            room: r("r1"),
            sale: Box::new(sale),
        }
    }

    fn enter(draw_id: &str, viewer_id: &str, at_ms: i64) -> StoreOp {
        StoreOp::AddDrawEntrant {
            room: r("r1"),
            draw_id: draw_id.into(),
            viewer_id: viewer_id.into(),
            at_ms,
        }
    }

    fn grab(packet_id: &str, viewer_id: &str, index: u32, amount_cents: i64) -> StoreOp {
        StoreOp::GrabRedPacket {
            room: r("r1"),
            packet_id: packet_id.into(),
            viewer_id: viewer_id.into(),
            index,
            amount_cents,
            at_ms: 400 + i64::from(index),
        }
    }

    async fn r1(store: &SqliteStore) -> LoadedRoom {
        let rooms = store.load_rooms().await.unwrap();
        rooms
            .into_iter()
            .find(|l| l.record.as_ref().unwrap().id == "r1")
            .unwrap()
    }

    #[tokio::test]
    async fn commerce_ops_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(Box::new(room("r1"))),
                StoreOp::PutRoom(Box::new(room("r2"))),
            ],
        )
        .await;

        let mut o1 = order("o1", "v1", "k1", None, 100);
        let o0 = order("o0", "v1", "k0", None, 90);
        let o2 = order("o2", "v2", "k1", Some("s1"), 110);
        let mut s1 = sale("s1", 3);
        let mut d1 = draw(
            "d1",
            200,
            DrawEligibility::Tiers {
                tiers: vec!["gold".into()],
            },
        );
        let mut d2 = draw(
            "d2",
            210,
            DrawEligibility::Keyword {
                keyword: "lucky".into(),
            },
        );
        d2.beacon_source = "the block after close".into();
        let mut p1 = packet("rp1", vec![10, 20, 30]);
        put(
            &store,
            vec![
                put_order(o1.clone()),
                put_order(o0.clone()),
                put_sale(s1.clone()),
                grant("s1", o2.clone()),
                StoreOp::PutDraw {
                    room: r("r1"),
                    draw: Box::new(d1.clone()),
                },
                StoreOp::PutDraw {
                    room: r("r1"),
                    draw: Box::new(d2.clone()),
                },
                enter("d1", "zed", 300),
                enter("d1", "amy", 301),
                enter("d1", "zed", 302),
                enter("d2", "bob", 303),
                enter("d2", "al", 304),
                StoreOp::PutRedPacket {
                    room: r("r1"),
                    packet: Box::new(p1.clone()),
                },
                grab("rp1", "v2", 1, 20),
                grab("rp1", "v1", 0, 10),
            ],
        )
        .await;

        // Only the status of an order moves after creation.
        o1.status = OrderStatus::Cancelled;
        o1.status_reason = Some("out of stock".into());
        o1.updated_ms = 500;
        let mut o1_put = o1.clone();
        o1_put.product_name = "Renamed".into();
        o1_put.quantity = 99;
        // Closing a draw records the outcome but never swaps the seed or the commitment.
        let mut d2_closed = d2.clone();
        d2_closed.closed_ms = Some(600);
        d2_closed.drawn_ms = Some(660);
        d2_closed.beacon = "block 42".into();
        d2_closed.entrants = vec![r("al"), r("bob")];
        d2_closed.entrants_hash = Some("ee".repeat(32));
        d2_closed.winners = vec![r("bob")];
        let mut d2_put = d2_closed.clone();
        d2_put.seed = "00".repeat(32);
        d2_put.commitment = "11".repeat(32);
        d2_put.beacon_source = "changed after open".into();
        // A stale copy of the sale (remaining 3) that ends it early.
        let mut s1_put = s1.clone();
        s1_put.ended_ms = Some(700);
        let mut p1_put = p1.clone();
        p1_put.message = "changed".into();
        put(
            &store,
            vec![
                put_order(o1_put),
                StoreOp::PutDraw {
                    room: r("r1"),
                    draw: Box::new(d2_put),
                },
                put_sale(s1_put),
                StoreOp::PutRedPacket {
                    room: r("r1"),
                    packet: Box::new(p1_put),
                },
            ],
        )
        .await;

        s1.remaining = 2;
        s1.ended_ms = Some(700);
        d1.entrants = vec![r("zed"), r("amy")];
        p1.grabs = vec![
            PacketGrab {
                viewer_id: r("v1"),
                index: 0,
                amount_cents: 10,
            },
            PacketGrab {
                viewer_id: r("v2"),
                index: 1,
                amount_cents: 20,
            },
        ];
        let check = |rooms: Vec<LoadedRoom>| {
            assert_eq!(rooms.len(), 2);
            let l = &rooms[0];
            assert_eq!(l.orders, vec![o0.clone(), o1.clone(), o2.clone()]);
            assert_eq!(l.sales, vec![s1.clone()]);
            assert_eq!(l.draws, vec![d1.clone(), d2_closed.clone()]);
            assert_eq!(l.red_packets, vec![p1.clone()]);
            let other = &rooms[1];
            assert!(other.orders.is_empty() && other.sales.is_empty());
            assert!(other.draws.is_empty() && other.red_packets.is_empty());
        };
        check(store.load_rooms().await.unwrap());
        drop(store);

        let store = SqliteStore::open(dir.path()).unwrap();
        check(store.load_rooms().await.unwrap());
        store.close().unwrap();
    }

    #[test]
    fn failed_grant_rolls_back_only_its_own_submission() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
        migrate(&mut conn).unwrap();
        let setup = [
            StoreOp::PutRoom(Box::new(room("r1"))),
            put_sale(sale("s1", 1)),
            put_sale(sale("s2", 5)),
        ];
        apply_in_transaction(&mut conn, setup.iter()).unwrap();

        let mut batch = Vec::new();
        let mut results = Vec::new();
        for ops in [
            vec![grant("s1", order("oA", "v1", "k", Some("s1"), 1))],
            // Sold out: the order put before it in the same submission goes too.
            vec![
                put_order(order("oX", "v9", "k", None, 2)),
                grant("s1", order("oB", "v2", "k", Some("s1"), 2)),
            ],
            vec![grant("s2", order("oC", "v3", "k", Some("s2"), 3))],
            vec![grant("nope", order("oD", "v4", "k", Some("nope"), 4))],
            // A duplicate order id: the unit taken from s2 is given back.
            vec![grant("s2", order("oA", "v5", "k", Some("s2"), 5))],
        ] {
            let (done, rx) = oneshot::channel();
            batch.push(Submission { ops, done });
            results.push(rx);
        }
        write_batch(&mut conn, &mut batch);
        let results: Vec<_> = results
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap())
            .collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err();
        assert!(
            err.contains("GrantSale") && err.contains("sold out"),
            "{err}"
        );
        assert!(results[2].is_ok());
        assert!(results[3].is_err());
        let err = results[4].as_ref().unwrap_err();
        assert!(err.contains("UNIQUE"), "{err}");

        let orders: Vec<String> = conn
            .prepare("SELECT id FROM orders ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(orders, ["oA", "oC"]);
        let remaining: Vec<(String, u32)> = conn
            .prepare("SELECT id, remaining FROM flash_sales ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(remaining, [(r("s1"), 0), (r("s2"), 4)]);
    }

    #[tokio::test]
    async fn sold_out_grant_fails_without_sinking_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(Box::new(room("r1"))),
                put_sale(sale("s1", 1)),
            ],
        )
        .await;
        // Queued back to back, so usually in one batch; the outcome holds either way.
        let won = store.submit(vec![grant("s1", order("o1", "v1", "k1", Some("s1"), 1))]);
        let lost = store.submit(vec![grant("s1", order("o2", "v2", "k1", Some("s1"), 2))]);
        let other = store.submit(vec![put_order(order("o3", "v3", "k1", None, 3))]);
        won.wait().await.unwrap();
        let err = lost.wait().await.unwrap_err();
        assert!(err.to_string().contains("sold out"), "{err}");
        other.wait().await.unwrap();

        let l = r1(&store).await;
        let ids: Vec<&str> = l.orders.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["o1", "o3"]);
        assert_eq!(l.sales[0].remaining, 0);
    }

    #[tokio::test]
    async fn put_sale_never_resets_stock() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(Box::new(room("r1"))),
                put_sale(sale("s1", 2)),
                grant("s1", order("o1", "v1", "k1", Some("s1"), 1)),
            ],
        )
        .await;
        // Re-putting the sale as created, or with other stock, leaves the stock as granted.
        put(&store, vec![put_sale(sale("s1", 2))]).await;
        put(&store, vec![put_sale(sale("s1", 10))]).await;
        let mut ended = sale("s1", 2);
        ended.ended_ms = Some(900);
        put(&store, vec![put_sale(ended)]).await;
        drop(store);

        let store = SqliteStore::open(dir.path()).unwrap();
        let s = &r1(&store).await.sales[0];
        assert_eq!((s.stock, s.remaining, s.ended_ms), (2, 1, Some(900)));
        // The last unit can still be granted, then no more.
        put(
            &store,
            vec![grant("s1", order("o2", "v2", "k1", Some("s1"), 2))],
        )
        .await;
        assert!(store
            .submit(vec![grant("s1", order("o3", "v3", "k1", Some("s1"), 3))])
            .wait()
            .await
            .is_err());
        assert_eq!(r1(&store).await.sales[0].remaining, 0);
    }

    #[tokio::test]
    async fn order_keys_are_unique_per_viewer_and_sale() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(Box::new(room("r1"))),
                put_order(order("o1", "v1", "k1", None, 1)),
                // Same key: another viewer, or a flash sale, is a different order.
                put_order(order("o2", "v2", "k1", None, 2)),
                put_order(order("o3", "v1", "k1", Some("s1"), 3)),
            ],
        )
        .await;
        for dup in [
            order("o4", "v1", "k1", None, 4),
            order("o5", "v1", "k1", Some("s1"), 5),
        ] {
            let err = store.submit(vec![put_order(dup)]).wait().await.unwrap_err();
            assert!(err.to_string().contains("UNIQUE"), "{err}");
        }
        assert_eq!(r1(&store).await.orders.len(), 3);
    }

    #[tokio::test]
    async fn second_red_packet_grab_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        put(
            &store,
            vec![
                StoreOp::PutRoom(Box::new(room("r1"))),
                StoreOp::PutRedPacket {
                    room: r("r1"),
                    packet: Box::new(packet("rp1", vec![5, 7])),
                },
                grab("rp1", "v1", 0, 5),
            ],
        )
        .await;
        // The same viewer again, or another viewer on a taken share.
        for dup in [grab("rp1", "v1", 1, 7), grab("rp1", "v2", 0, 5)] {
            let err = store.submit(vec![dup]).wait().await.unwrap_err();
            assert!(err.to_string().contains("UNIQUE"), "{err}");
        }
        // A grab of a packet that does not exist.
        assert!(store
            .submit(vec![grab("nope", "v1", 0, 5)])
            .wait()
            .await
            .is_err());
        assert_eq!(
            r1(&store).await.red_packets[0].grabs,
            vec![PacketGrab {
                viewer_id: r("v1"),
                index: 0,
                amount_cents: 5
            }]
        );
    }

    #[tokio::test]
    async fn v1_database_migrates_to_the_latest_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for op in [
                StoreOp::PutRoom(Box::new(room("r1"))),
                StoreOp::PutBrand {
                    room: r("r1"),
                    brand: Box::new(brand("b1", 0)),
                },
                StoreOp::AppendChat {
                    room: r("r1"),
                    chat: Box::new(chat("m1", 1)),
                },
            ] {
                apply_op(&conn, &op).unwrap();
            }
        }

        let store = SqliteStore::open(dir.path()).unwrap();
        let l = r1(&store).await;
        assert_eq!(l.record, Some(room("r1")));
        assert_eq!(l.brands, vec![brand("b1", 0)]);
        assert!(l.orders.is_empty() && l.sales.is_empty());
        assert!(l.draws.is_empty() && l.red_packets.is_empty());
        assert_eq!(
            store.recent_chat("r1", 10).await.unwrap(),
            vec![chat("m1", 1)]
        );
        put(
            &store,
            vec![
                put_sale(sale("s1", 1)),
                grant("s1", order("o1", "v1", "k1", Some("s1"), 1)),
            ],
        )
        .await;
        assert_eq!(r1(&store).await.orders.len(), 1);
        store.close().unwrap();

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
        assert_eq!(MIGRATIONS.len(), 3);
    }

    #[tokio::test]
    async fn v2_draws_migrate_as_drawn_at_close_without_a_beacon_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(SCHEMA_V2).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            apply_op(&conn, &StoreOp::PutRoom(Box::new(room("r1")))).unwrap();
            conn.execute(
                "INSERT INTO draws (room, id, prize, winners_count, eligibility, opened_ms,
                     closes_ms, closed_ms, seed, commitment, beacon, entrants_hash, winners)
                 VALUES ('r1', 'd1', 'A watch', 1, '{\"kind\":\"everyone\"}', 100, 200, 150,
                     'ab', 'cd', '', 'ee', '[]'),
                        ('r1', 'd2', 'A watch', 1, '{\"kind\":\"everyone\"}', 300, 400, NULL,
                     'ab', 'cd', '', NULL, '[]')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let draws = r1(&store).await.draws;
        let got: Vec<_> = draws
            .iter()
            .map(|d| {
                (
                    d.id.as_str(),
                    d.closed_ms,
                    d.drawn_ms,
                    d.beacon_source.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![("d1", Some(150), Some(150), ""), ("d2", None, None, "")]
        );
    }
}
