//! The SQLite schema, its migrations, and how a connection is opened (WAL, synced commits).

use super::error::sql_error;
use crate::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Schema migrations; `PRAGMA user_version` is the number applied so far.
pub(super) const MIGRATIONS: &[&str] = &[
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
];

/// Personal data erased on request (issue 15): when a host erased a registrant.
pub(super) const SCHEMA_V8: &str = "
ALTER TABLE registrations ADD COLUMN erased_ms INTEGER;
";

/// CRM webhooks (issue 15): a room's endpoint, the outbox of deliveries (queued in the
/// transaction of the change each reports) and the log of attempts.
pub(super) const SCHEMA_V7: &str = "
CREATE TABLE webhooks (
    room       TEXT PRIMARY KEY NOT NULL REFERENCES rooms(id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL, -- ,registration,order.placed,
    enabled    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE webhook_outbox (
    room            TEXT NOT NULL REFERENCES rooms(id),
    id              TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    state           TEXT NOT NULL,
    occurred_ms     INTEGER NOT NULL,
    status          TEXT NOT NULL, -- pending, delivered, failed
    attempts        INTEGER NOT NULL,
    next_ms         INTEGER,
    last_attempt_ms INTEGER,
    last_code       INTEGER,
    last_error      TEXT NOT NULL,
    delivered_ms    INTEGER,
    claimed_until   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room, id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_ms) WHERE status = 'pending';
CREATE INDEX webhook_outbox_room ON webhook_outbox(room, occurred_ms);
CREATE TABLE webhook_attempts (
    room        TEXT NOT NULL REFERENCES rooms(id),
    delivery_id TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    code        INTEGER,
    error       TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(room, delivery_id, at_ms);
";

/// Engagement and reports (issue 15): the room's batched engagement counts, the log of
/// brands on air (segments of the running order) and each room's lead-score weights.
pub(super) const SCHEMA_V6: &str = "
CREATE TABLE engagement (
    room      TEXT NOT NULL REFERENCES rooms(id),
    viewer_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    target    TEXT NOT NULL,
    count     INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL
);
CREATE INDEX engagement_room ON engagement(room, at_ms);
CREATE TABLE program_log (
    room     TEXT NOT NULL REFERENCES rooms(id),
    brand_id TEXT,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX program_log_room ON program_log(room, at_ms);
CREATE TABLE lead_weights (
    room       TEXT PRIMARY KEY NOT NULL REFERENCES rooms(id),
    weights    TEXT NOT NULL, -- JSON
    updated_ms INTEGER NOT NULL
);
";

/// Registration (issue 15): a room's registration mode and phone country; registrations (a
/// phone and an invite code unique per room) and the hosts' channel links.
pub(super) const SCHEMA_V5: &str = "
ALTER TABLE rooms ADD COLUMN registration TEXT NOT NULL DEFAULT 'tokens_only';
ALTER TABLE rooms ADD COLUMN phone_country TEXT NOT NULL DEFAULT '';
CREATE TABLE registrations (
    room        TEXT NOT NULL REFERENCES rooms(id),
    id          TEXT NOT NULL,
    viewer_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    company     TEXT NOT NULL,
    phone       TEXT NOT NULL,
    status      TEXT NOT NULL,
    source      TEXT NOT NULL,
    invite_code TEXT NOT NULL,
    secret      TEXT NOT NULL,
    inviter_id  TEXT,
    channel     TEXT,
    created_ms  INTEGER NOT NULL,
    decided_ms  INTEGER,
    PRIMARY KEY (room, id),
    UNIQUE (room, phone),
    UNIQUE (room, invite_code),
    UNIQUE (room, viewer_id)
);
CREATE INDEX registrations_inviter ON registrations(room, inviter_id);
CREATE TABLE channels (
    room       TEXT NOT NULL REFERENCES rooms(id),
    code       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (room, code),
    UNIQUE (room, name)
);
";

/// Fencing tokens: the highest lease revision that has written to each room (no foreign key:
/// a new owner claims the room before it may exist).
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE room_fences (
    room  TEXT PRIMARY KEY NOT NULL,
    token INTEGER NOT NULL
);
";

/// Two-step draws: a beacon source declared at open, winners drawn after entry closes.
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE draws ADD COLUMN beacon_source TEXT NOT NULL DEFAULT '';
ALTER TABLE draws ADD COLUMN drawn_ms INTEGER;
UPDATE draws SET drawn_ms = closed_ms WHERE closed_ms IS NOT NULL;
";

pub(super) const SCHEMA_V1: &str = "
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
pub(super) const SCHEMA_V2: &str = "
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

/// Opens `path` for the store: WAL with `synchronous=FULL`, so a commit is fsynced before it
/// returns and survives `kill -9` and power loss; foreign keys enforced.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(sql_error("open"))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sql_error("open"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_error("open"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend {
            op: "open",
            source: format!("journal_mode is {mode}, expected wal").into(),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
        .map_err(sql_error("open"))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Brings the schema to the latest version, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("migrate"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error("migrate"))?;
    let known = MIGRATIONS.len() as i64;
    if !(0..=known).contains(&version) {
        return Err(StoreError::Backend {
            op: "migrate",
            source: format!(
                "database schema version {version} is not supported (this build: {known})"
            )
            .into(),
        });
    }
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql).map_err(sql_error("migrate"))?;
    }
    tx.pragma_update(None, "user_version", known)
        .map_err(sql_error("migrate"))?;
    tx.commit().map_err(sql_error("migrate"))
}
