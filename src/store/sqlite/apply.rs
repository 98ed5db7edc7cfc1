//! One [`StoreOp`] as SQL, inside the writer's transaction.

use super::rows::{execute, insert_sql, Stored};
use super::webhooks;
use crate::model::{
    Brand, ChatRecord, DealerApplication, DealerRecord, Draw, FlashSale, Order, Product, RedPacket,
    RoomRecord,
};
use crate::model::{Channel, Registration};
use crate::store::{StoreOp, Violation};
use rusqlite::{params, Connection};
use std::sync::LazyLock;

/// Why an op failed: SQLite's error, or a rule the store checks itself.
#[derive(Debug)]
pub(super) enum Failure {
    Sql(rusqlite::Error),
    Refused(Violation),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

/// Upserts that replace every column but the key.
fn upsert<T: Stored>(key: &str) -> String {
    insert_sql::<T>(&crate::store::columns::upsert_tail(T::COLUMNS, key))
}

static PUT_ROOM: LazyLock<String> = LazyLock::new(|| upsert::<RoomRecord>("id"));
static PUT_BRAND: LazyLock<String> = LazyLock::new(|| upsert::<Brand>("room, id"));
static PUT_PRODUCT: LazyLock<String> = LazyLock::new(|| upsert::<Product>("room, id"));
static PUT_DEALER: LazyLock<String> = LazyLock::new(|| upsert::<DealerRecord>("room, viewer_id"));
static PUT_APPLICATION: LazyLock<String> =
    LazyLock::new(|| upsert::<DealerApplication>("room, id"));
static APPEND_CHAT: LazyLock<String> = LazyLock::new(|| insert_sql::<ChatRecord>(""));
static APPEND_AUDIENCE: LazyLock<String> =
    LazyLock::new(|| insert_sql::<crate::model::AudienceRecord>(""));
/// Only the status moves after an order is created.
static PUT_ORDER: LazyLock<String> = LazyLock::new(|| {
    insert_sql::<Order>(
        "ON CONFLICT (room, id) DO UPDATE SET status = excluded.status,
             status_reason = excluded.status_reason, updated_ms = excluded.updated_ms",
    )
});
/// A flash-sale win: a duplicate must fail, not update.
static INSERT_ORDER: LazyLock<String> = LazyLock::new(|| insert_sql::<Order>(""));
/// Stock is owned by `TAKE_SALE_UNIT` once the sale exists; a later put only ends it.
static PUT_SALE: LazyLock<String> = LazyLock::new(|| {
    insert_sql::<FlashSale>("ON CONFLICT (room, id) DO UPDATE SET ended_ms = excluded.ended_ms")
});
/// The seed, commitment and beacon source are fixed at open; closing and drawing fill in
/// the rest.
static PUT_DRAW: LazyLock<String> = LazyLock::new(|| {
    insert_sql::<Draw>(
        "ON CONFLICT (room, id) DO UPDATE SET closed_ms = excluded.closed_ms,
             beacon = excluded.beacon, entrants_hash = excluded.entrants_hash,
             winners = excluded.winners, drawn_ms = excluded.drawn_ms",
    )
});
/// The split is fixed when the packet is dropped.
static PUT_RED_PACKET: LazyLock<String> =
    LazyLock::new(|| insert_sql::<RedPacket>("ON CONFLICT (room, id) DO NOTHING"));

/// A phone, invite code or viewer id already registered in the room keeps its registration.
static PUT_REGISTRATION: LazyLock<String> =
    LazyLock::new(|| insert_sql::<Registration>("ON CONFLICT DO NOTHING"));
static PUT_CHANNEL: LazyLock<String> =
    LazyLock::new(|| insert_sql::<Channel>("ON CONFLICT DO NOTHING"));
const DECIDE_REGISTRATION: &str = "
UPDATE registrations SET status = ?3, decided_ms = ?4
WHERE room = ?1 AND id = ?2
  AND (status = 'pending' OR (status = 'approved' AND ?3 = 'rejected'))";

/// A registrant's personal data erased: the registration (`?3` the time), their name on
/// records (`?3` the name left), the dealer record's company.
const ERASE_REGISTRATION: &str = "
UPDATE registrations SET name = '', company = '', phone = 'erased:' || id, erased_ms = ?3
WHERE room = ?1 AND viewer_id = ?2 AND erased_ms IS NULL";
const ERASE_NAMES: [&str; 3] = [
    "UPDATE orders SET display_name = ?3 WHERE room = ?1 AND viewer_id = ?2",
    "UPDATE chat SET display_name = ?3 WHERE room = ?1 AND viewer_id = ?2",
    "UPDATE applications SET display_name = ?3, company = '', licence_number = '', contact = ''
     WHERE room = ?1 AND viewer_id = ?2",
];
const ERASE_DEALER: &str = "UPDATE dealers SET company = '' WHERE room = ?1 AND viewer_id = ?2";

const DELETE_BRAND_PRODUCTS: &str = "DELETE FROM products WHERE room = ?1 AND brand_id = ?2";
const DELETE_BRAND: &str = "DELETE FROM brands WHERE room = ?1 AND id = ?2";
const DELETE_PRODUCT: &str = "DELETE FROM products WHERE room = ?1 AND id = ?2";
const KICK_TOKEN: &str = "
INSERT INTO kicked_tokens (room, jti, expires_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (room, jti) DO UPDATE SET expires_ms = excluded.expires_ms";
const PUT_MUTE: &str = "
INSERT INTO mutes (room, viewer_id, until_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (room, viewer_id) DO UPDATE SET until_ms = excluded.until_ms";
const DELETE_CHAT: &str = "
UPDATE chat SET deleted_ms = ?3 WHERE room = ?1 AND id = ?2 AND deleted_ms IS NULL";
const TAKE_SALE_UNIT: &str = "
UPDATE flash_sales SET remaining = remaining - 1 WHERE room = ?1 AND id = ?2 AND remaining > 0";
const ADD_DRAW_ENTRANT: &str = "
INSERT OR IGNORE INTO draw_entrants (room, draw_id, viewer_id, at_ms) VALUES (?1, ?2, ?3, ?4)";
/// Records the token unless a higher one is stored (then nothing changes).
const FENCE: &str = "
INSERT INTO room_fences (room, token) VALUES (?1, ?2)
ON CONFLICT (room) DO UPDATE SET token = excluded.token WHERE room_fences.token <= excluded.token";
const GRAB_RED_PACKET: &str = "
INSERT INTO red_packet_grabs (room, packet_id, viewer_id, idx, amount_cents, at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The op's name in error reports.
pub(super) fn op_name(op: &StoreOp) -> &'static str {
    match op {
        StoreOp::Fence { .. } => "Fence",
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
        StoreOp::PutRegistration { .. } => "PutRegistration",
        StoreOp::DecideRegistration { .. } => "DecideRegistration",
        StoreOp::PutChannel { .. } => "PutChannel",
        StoreOp::AppendEngagement { .. } => "AppendEngagement",
        StoreOp::AppendProgram { .. } => "AppendProgram",
        StoreOp::PutLeadWeights { .. } => "PutLeadWeights",
        StoreOp::EraseViewer { .. } => "EraseViewer",
        StoreOp::PutWebhook { .. } => "PutWebhook",
        StoreOp::DeleteWebhook { .. } => "DeleteWebhook",
        StoreOp::QueueWebhook { .. } => "QueueWebhook",
        StoreOp::RecordWebhookAttempt { .. } => "RecordWebhookAttempt",
        StoreOp::RetryWebhook { .. } => "RetryWebhook",
    }
}

/// Puts `record` with the cached statement `sql`.
fn put<T: Stored>(conn: &Connection, sql: &str, room: &str, record: &T) -> rusqlite::Result<()> {
    execute(&mut *conn.prepare_cached(sql)?, Some(room), record).map(drop)
}

pub(super) fn apply(conn: &Connection, op: &StoreOp) -> Result<(), Failure> {
    match op {
        StoreOp::Fence { room, token } => {
            let token = i64::try_from(*token).map_err(|_| Failure::Refused(Violation::Other))?;
            if conn.prepare_cached(FENCE)?.execute(params![room, token])? == 0 {
                return Err(Failure::Refused(Violation::Fenced));
            }
        }
        StoreOp::PutRoom(r) => {
            execute(&mut *conn.prepare_cached(&PUT_ROOM)?, None, r.as_ref())?;
        }
        StoreOp::PutBrand { room, brand } => put(conn, &PUT_BRAND, room, brand.as_ref())?,
        StoreOp::DeleteBrand { room, brand_id } => {
            conn.prepare_cached(DELETE_BRAND_PRODUCTS)?
                .execute(params![room, brand_id])?;
            conn.prepare_cached(DELETE_BRAND)?
                .execute(params![room, brand_id])?;
        }
        StoreOp::PutProduct { room, product } => put(conn, &PUT_PRODUCT, room, product.as_ref())?,
        StoreOp::DeleteProduct { room, product_id } => {
            conn.prepare_cached(DELETE_PRODUCT)?
                .execute(params![room, product_id])?;
        }
        StoreOp::PutDealer { room, dealer } => put(conn, &PUT_DEALER, room, dealer.as_ref())?,
        StoreOp::PutApplication { room, application } => {
            put(conn, &PUT_APPLICATION, room, application.as_ref())?
        }
        StoreOp::KickToken {
            room,
            jti,
            expires_ms,
        } => {
            conn.prepare_cached(KICK_TOKEN)?
                .execute(params![room, jti, expires_ms])?;
        }
        StoreOp::PutMute {
            room,
            viewer_id,
            until_ms,
        } => {
            conn.prepare_cached(PUT_MUTE)?
                .execute(params![room, viewer_id, until_ms])?;
        }
        StoreOp::AppendChat { room, chat } => put(conn, &APPEND_CHAT, room, chat.as_ref())?,
        StoreOp::DeleteChat {
            room,
            message_id,
            at_ms,
        } => {
            conn.prepare_cached(DELETE_CHAT)?
                .execute(params![room, message_id, at_ms])?;
        }
        StoreOp::AppendAudience { room, record } => {
            put(conn, &APPEND_AUDIENCE, room, record.as_ref())?
        }
        StoreOp::PutOrder { room, order } => put(conn, &PUT_ORDER, room, order.as_ref())?,
        StoreOp::PutSale { room, sale } => put(conn, &PUT_SALE, room, sale.as_ref())?,
        StoreOp::GrantSale {
            room,
            sale_id,
            order,
        } => {
            // The hot path of a flash sale: two cached statements, nothing else.
            let taken = conn
                .prepare_cached(TAKE_SALE_UNIT)?
                .execute(params![room, sale_id])?;
            if taken == 0 {
                // Fails the whole submission, so no order is kept without its unit.
                return Err(Failure::Refused(Violation::SoldOut));
            }
            put(conn, &INSERT_ORDER, room, order.as_ref())?;
        }
        StoreOp::PutDraw { room, draw } => {
            put(conn, &PUT_DRAW, room, draw.as_ref())?;
            // Entrants normally arrive one by one (`AddDrawEntrant`); recording the ones a
            // put carries keeps the stored set equal to the one `entrants_hash` covers even
            // if an earlier entry write was lost. Empty at open, so this costs nothing then.
            if !draw.entrants.is_empty() {
                let at_ms = draw.closed_ms.unwrap_or(draw.opened_ms);
                let mut add = conn.prepare_cached(ADD_DRAW_ENTRANT)?;
                for viewer_id in &draw.entrants {
                    add.execute(params![room, draw.id, viewer_id, at_ms])?;
                }
            }
        }
        StoreOp::AddDrawEntrant {
            room,
            draw_id,
            viewer_id,
            at_ms,
        } => {
            conn.prepare_cached(ADD_DRAW_ENTRANT)?
                .execute(params![room, draw_id, viewer_id, at_ms])?;
        }
        StoreOp::PutRedPacket { room, packet } => {
            put(conn, &PUT_RED_PACKET, room, packet.as_ref())?
        }
        StoreOp::GrabRedPacket {
            room,
            packet_id,
            viewer_id,
            index,
            amount_cents,
            at_ms,
        } => {
            conn.prepare_cached(GRAB_RED_PACKET)?.execute(params![
                room,
                packet_id,
                viewer_id,
                index,
                amount_cents,
                at_ms,
            ])?;
        }
        StoreOp::PutRegistration { room, registration } => {
            put(conn, &PUT_REGISTRATION, room, registration.as_ref())?
        }
        StoreOp::DecideRegistration {
            room,
            id,
            status,
            at_ms,
        } => {
            conn.prepare_cached(DECIDE_REGISTRATION)?.execute(params![
                room,
                id,
                status.as_str(),
                at_ms
            ])?;
        }
        StoreOp::PutChannel { room, channel } => put(conn, &PUT_CHANNEL, room, channel.as_ref())?,
        StoreOp::AppendEngagement { room, records } => {
            super::engagement::append_engagement(conn, room, records)?
        }
        StoreOp::AppendProgram { room, record } => {
            super::engagement::append_program(conn, room, record)?
        }
        StoreOp::PutLeadWeights {
            room,
            weights,
            at_ms,
        } => super::engagement::put_lead_weights(conn, room, weights, *at_ms)?,
        StoreOp::EraseViewer {
            room,
            viewer_id,
            at_ms,
        } => {
            conn.prepare_cached(ERASE_REGISTRATION)?
                .execute(params![room, viewer_id, at_ms])?;
            for sql in ERASE_NAMES {
                conn.prepare_cached(sql)?.execute(params![
                    room,
                    viewer_id,
                    crate::model::ERASED_NAME
                ])?;
            }
            conn.prepare_cached(ERASE_DEALER)?
                .execute(params![room, viewer_id])?;
        }
        StoreOp::PutWebhook { room, webhook } => webhooks::put_webhook(conn, room, webhook)?,
        StoreOp::DeleteWebhook { room, .. } => webhooks::delete_webhook(conn, room)?,
        // Queued below, like the deliveries other writes queue.
        StoreOp::QueueWebhook { .. } => {}
        StoreOp::RecordWebhookAttempt {
            room,
            attempt,
            outcome,
        } => webhooks::record_attempt(conn, room, attempt, *outcome)?,
        StoreOp::RetryWebhook {
            room,
            delivery_id,
            at_ms,
        } => webhooks::retry(conn, room, delivery_id, *at_ms)?,
    }
    if let Some(q) = crate::store::outbox::queued(op) {
        webhooks::queue(conn, &q)?;
    }
    Ok(())
}
