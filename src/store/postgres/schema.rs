//! The PostgreSQL schema and its migrations, applied at start under an advisory lock so that
//! nodes starting together migrate once.
//
// The tables mirror the SQLite ones (same names and columns) so reports read alike; integers
// are BIGINT, JSON is JSONB, and `pos` (an identity column) keeps insertion order where
// SQLite uses its rowid. Keys (room, ids, idempotency keys) compare bytewise (`COLLATE "C"`):
// they are identifiers, not words, and with a locale's collation the comparisons of index
// inserts (`varstr_cmp`, `pg_newlocale_from_collation`) were a visible part of a flash-sale
// grant's cost in the writer backend's profile. Bytewise is also SQLite's default order.

use super::error::pg_error;
use crate::store::StoreError;
use tokio_postgres::Client;

/// Any constant works, as long as every node uses the same one.
const MIGRATION_LOCK: i64 = 0x5348_4f57_464c_4f52; // "SHOWFLOR"

pub(super) const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

/// Personal data erased on request (issue 15): when a host erased a registrant.
const SCHEMA_V5: &str = r#"
ALTER TABLE registrations ADD COLUMN erased_ms BIGINT;
"#;

/// CRM webhooks (issue 15): a room's endpoint, the outbox of deliveries (queued in the
/// transaction of the change each reports; `claimed_until` hands a due one to one node at a
/// time) and the log of attempts.
const SCHEMA_V4: &str = r#"
CREATE TABLE webhooks (
    room       TEXT COLLATE "C" PRIMARY KEY REFERENCES rooms(id),
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TABLE webhook_outbox (
    room            TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id              TEXT COLLATE "C" NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT COLLATE "C" NOT NULL,
    state           TEXT NOT NULL,
    occurred_ms     BIGINT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_ms         BIGINT,
    last_attempt_ms BIGINT,
    last_code       BIGINT,
    last_error      TEXT NOT NULL,
    delivered_ms    BIGINT,
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    pos             BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_ms) WHERE status = 'pending';
CREATE INDEX webhook_outbox_room ON webhook_outbox(room, occurred_ms);
CREATE TABLE webhook_attempts (
    room        TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    delivery_id TEXT COLLATE "C" NOT NULL,
    at_ms       BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    code        BIGINT,
    error       TEXT NOT NULL,
    pos         BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(room, delivery_id, pos);
"#;

/// Engagement and reports (issue 15): batched engagement counts, the log of brands on air
/// and each room's lead-score weights.
const SCHEMA_V3: &str = r#"
CREATE TABLE engagement (
    room      TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    viewer_id TEXT COLLATE "C" NOT NULL,
    kind      TEXT NOT NULL,
    target    TEXT COLLATE "C" NOT NULL,
    count     BIGINT NOT NULL,
    at_ms     BIGINT NOT NULL,
    pos       BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX engagement_room ON engagement(room, at_ms, pos);
CREATE TABLE program_log (
    room     TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    brand_id TEXT COLLATE "C",
    at_ms    BIGINT NOT NULL,
    pos      BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX program_log_room ON program_log(room, at_ms, pos);
CREATE TABLE lead_weights (
    room       TEXT COLLATE "C" PRIMARY KEY REFERENCES rooms(id),
    weights    JSONB NOT NULL,
    updated_ms BIGINT NOT NULL
);
"#;

const SCHEMA_V1: &str = r#"
CREATE TABLE rooms (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    title              TEXT NOT NULL,
    state              TEXT NOT NULL,
    scheduled_start_ms BIGINT NOT NULL,
    chat_rate_limit    JSONB NOT NULL,
    banned_words       JSONB NOT NULL,
    history_window     BIGINT NOT NULL,
    tiers              JSONB NOT NULL,
    currency           TEXT NOT NULL,
    token_key          TEXT NOT NULL,
    brand_on_air       TEXT,
    pinned_product     TEXT,
    created_ms         BIGINT NOT NULL,
    opened_ms          BIGINT,
    ended_ms           BIGINT,
    next_id            BIGINT NOT NULL
);
CREATE INDEX rooms_created ON rooms(created_ms DESC, id);
-- The highest lease revision that has written to each room: a write with a lower one is
-- refused (no foreign key: a new owner claims a room before it may exist).
CREATE TABLE room_fences (
    room  TEXT COLLATE "C" PRIMARY KEY,
    token BIGINT NOT NULL
);
CREATE TABLE brands (
    room     TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id       TEXT COLLATE "C" NOT NULL,
    name     TEXT NOT NULL,
    logo_url TEXT NOT NULL,
    position BIGINT NOT NULL,
    pos      BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
CREATE TABLE products (
    room               TEXT COLLATE "C" NOT NULL,
    id                 TEXT COLLATE "C" NOT NULL,
    brand_id           TEXT COLLATE "C" NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    image_urls         JSONB NOT NULL,
    link               TEXT NOT NULL,
    min_order_quantity BIGINT NOT NULL,
    prices             JSONB NOT NULL,
    pos                BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id),
    FOREIGN KEY (room, brand_id) REFERENCES brands(room, id) ON DELETE CASCADE
);
CREATE INDEX products_brand ON products(room, brand_id);
CREATE TABLE dealers (
    room       TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    viewer_id  TEXT COLLATE "C" NOT NULL,
    tier       TEXT,
    company    TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    pos        BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, viewer_id)
);
CREATE TABLE applications (
    room           TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id             TEXT COLLATE "C" NOT NULL,
    viewer_id      TEXT COLLATE "C" NOT NULL,
    display_name   TEXT NOT NULL,
    company        TEXT NOT NULL,
    licence_number TEXT NOT NULL,
    contact        TEXT NOT NULL,
    status         TEXT NOT NULL,
    tier           TEXT,
    reason         TEXT,
    created_ms     BIGINT NOT NULL,
    decided_ms     BIGINT,
    pos            BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
CREATE TABLE kicked_tokens (
    room       TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    jti        TEXT COLLATE "C" NOT NULL,
    expires_ms BIGINT NOT NULL,
    pos        BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, jti)
);
CREATE TABLE mutes (
    room      TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    viewer_id TEXT COLLATE "C" NOT NULL,
    until_ms  BIGINT NOT NULL,
    pos       BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, viewer_id)
);
CREATE TABLE chat (
    room         TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id           TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    viewer_id    TEXT COLLATE "C" NOT NULL,
    display_name TEXT NOT NULL,
    text         TEXT NOT NULL,
    at_ms        BIGINT NOT NULL,
    is_dealer    BOOLEAN NOT NULL,
    deleted_ms   BIGINT,
    PRIMARY KEY (room, id)
);
CREATE INDEX chat_room_seq ON chat(room, seq);
CREATE TABLE audience (
    room       TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    viewer_id  TEXT COLLATE "C" NOT NULL,
    session    BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    inviter_id TEXT COLLATE "C",
    tier       TEXT,
    at_ms      BIGINT NOT NULL,
    pos        BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX audience_room_at ON audience(room, at_ms, pos);
CREATE INDEX audience_room_viewer ON audience(room, viewer_id, at_ms, pos);
CREATE TABLE orders (
    room             TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id               TEXT COLLATE "C" NOT NULL,
    viewer_id        TEXT COLLATE "C" NOT NULL,
    display_name     TEXT NOT NULL,
    tier             TEXT NOT NULL,
    brand_id         TEXT COLLATE "C" NOT NULL,
    product_id       TEXT COLLATE "C" NOT NULL,
    product_name     TEXT NOT NULL,
    quantity         BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    total_cents      BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_reason    TEXT,
    sale_id          TEXT COLLATE "C",
    inviter_id       TEXT COLLATE "C",
    idempotency_key  TEXT COLLATE "C" NOT NULL,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    pos              BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
-- One order per key and viewer, per flash sale or outside any sale.
CREATE UNIQUE INDEX orders_idempotency
    ON orders(room, viewer_id, COALESCE(sale_id, ''), idempotency_key);
CREATE INDEX orders_room_created ON orders(room, created_ms, pos);
CREATE TABLE flash_sales (
    room             TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id               TEXT COLLATE "C" NOT NULL,
    product_id       TEXT COLLATE "C" NOT NULL,
    brand_id         TEXT COLLATE "C" NOT NULL,
    stock            BIGINT NOT NULL,
    remaining        BIGINT NOT NULL,
    per_dealer_limit BIGINT NOT NULL,
    prices           JSONB NOT NULL,
    start_ms         BIGINT NOT NULL,
    end_ms           BIGINT NOT NULL,
    ended_ms         BIGINT,
    created_ms       BIGINT NOT NULL,
    pos              BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id),
    CHECK (remaining >= 0 AND remaining <= stock)
);
CREATE TABLE draws (
    room          TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id            TEXT COLLATE "C" NOT NULL,
    prize         TEXT NOT NULL,
    winners_count BIGINT NOT NULL,
    eligibility   JSONB NOT NULL,
    opened_ms     BIGINT NOT NULL,
    closes_ms     BIGINT NOT NULL,
    closed_ms     BIGINT,
    drawn_ms      BIGINT,
    seed          TEXT NOT NULL,
    commitment    TEXT NOT NULL,
    beacon_source TEXT NOT NULL,
    beacon        TEXT NOT NULL,
    entrants_hash TEXT,
    winners       JSONB NOT NULL,
    pos           BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
CREATE TABLE draw_entrants (
    room      TEXT COLLATE "C" NOT NULL,
    draw_id   TEXT COLLATE "C" NOT NULL,
    viewer_id TEXT COLLATE "C" NOT NULL,
    at_ms     BIGINT NOT NULL,
    pos       BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, draw_id, viewer_id),
    FOREIGN KEY (room, draw_id) REFERENCES draws(room, id)
);
CREATE TABLE red_packets (
    room        TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id          TEXT COLLATE "C" NOT NULL,
    total_cents BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    tiers       JSONB NOT NULL,
    message     TEXT NOT NULL,
    amounts     JSONB NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    pos         BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id)
);
CREATE TABLE red_packet_grabs (
    room         TEXT COLLATE "C" NOT NULL,
    packet_id    TEXT COLLATE "C" NOT NULL,
    viewer_id    TEXT COLLATE "C" NOT NULL,
    idx          BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL,
    PRIMARY KEY (room, packet_id, viewer_id),
    UNIQUE (room, packet_id, idx),
    FOREIGN KEY (room, packet_id) REFERENCES red_packets(room, id)
);
"#;

/// Registration (issue 15): a room's registration mode and phone country; registrations (a
/// phone and an invite code unique per room) and the hosts' channel links.
const SCHEMA_V2: &str = r#"
ALTER TABLE rooms ADD COLUMN registration TEXT NOT NULL DEFAULT 'tokens_only';
ALTER TABLE rooms ADD COLUMN phone_country TEXT NOT NULL DEFAULT '';
CREATE TABLE registrations (
    room        TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    id          TEXT COLLATE "C" NOT NULL,
    viewer_id   TEXT COLLATE "C" NOT NULL,
    name        TEXT NOT NULL,
    company     TEXT NOT NULL,
    phone       TEXT COLLATE "C" NOT NULL,
    status      TEXT NOT NULL,
    source      TEXT NOT NULL,
    invite_code TEXT COLLATE "C" NOT NULL,
    secret      TEXT NOT NULL,
    inviter_id  TEXT COLLATE "C",
    channel     TEXT COLLATE "C",
    created_ms  BIGINT NOT NULL,
    decided_ms  BIGINT,
    pos         BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, id),
    UNIQUE (room, phone),
    UNIQUE (room, invite_code),
    UNIQUE (room, viewer_id)
);
CREATE INDEX registrations_inviter ON registrations(room, inviter_id);
CREATE TABLE channels (
    room       TEXT COLLATE "C" NOT NULL REFERENCES rooms(id),
    code       TEXT COLLATE "C" NOT NULL,
    name       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    pos        BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (room, code),
    UNIQUE (room, name)
);
"#;

/// Brings the schema to the latest version in one transaction, holding a lock every node
/// takes first; refuses a database migrated by a newer build.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error("migrate"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error("migrate"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS showfloor_schema (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error("migrate"))?;
    let version: i64 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM showfloor_schema",
            &[],
        )
        .await
        .map_err(pg_error("migrate"))?
        .get(0);
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(pg_error("migrate"))?;
        tx.execute(
            "INSERT INTO showfloor_schema (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await
        .map_err(pg_error("migrate"))?;
    }
    tx.commit().await.map_err(pg_error("migrate"))
}
