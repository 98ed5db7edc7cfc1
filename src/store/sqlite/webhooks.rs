//! CRM webhooks in SQLite: the room's endpoint, the outbox (queued inside the writer's
//! transaction beside the change each delivery reports) and the attempts log.

use crate::model::{
    AttemptOutcome, DeliveryFilter, DeliveryStatus, DueDelivery, Secret, Webhook, WebhookAttempt,
    WebhookDelivery, WebhookEvent,
};
use crate::store::outbox::{Check, Queued};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A delivery is queued only if the room's webhook is enabled and takes its event.
const QUEUE: &str = "
INSERT OR IGNORE INTO webhook_outbox
    (room, id, event, subject, state, occurred_ms, status, attempts, next_ms, last_error)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?6, ''
WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.room = ?1 AND w.enabled = 1
              AND instr(w.events, ',' || ?3 || ',') > 0)";
const QUEUE_REGISTRATION: &str = "
INSERT OR IGNORE INTO webhook_outbox
    (room, id, event, subject, state, occurred_ms, status, attempts, next_ms, last_error)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?6, ''
WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.room = ?1 AND w.enabled = 1
              AND instr(w.events, ',' || ?3 || ',') > 0)
  AND EXISTS (SELECT 1 FROM registrations r WHERE r.room = ?1 AND r.id = ?4
              AND r.status = ?5)";
const PUT_WEBHOOK: &str = "
INSERT INTO webhooks (room, url, secret, events, enabled, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (room) DO UPDATE SET url = excluded.url, secret = excluded.secret,
    events = excluded.events, enabled = excluded.enabled, updated_ms = excluded.updated_ms";
const DELETE_WEBHOOK: &str = "DELETE FROM webhooks WHERE room = ?1";
const FAIL_QUEUED: &str = "
UPDATE webhook_outbox SET status = 'failed', next_ms = NULL, last_error = 'webhook removed'
WHERE room = ?1 AND status = 'pending'";
const LOG_ATTEMPT: &str = "
INSERT INTO webhook_attempts (room, delivery_id, at_ms, duration_ms, code, error)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const AFTER_ATTEMPT: &str = "
UPDATE webhook_outbox SET status = ?3, attempts = attempts + 1, next_ms = ?4,
    last_attempt_ms = ?5, last_code = ?6, last_error = ?7, delivered_ms = ?8, claimed_until = 0
WHERE room = ?1 AND id = ?2 AND status = 'pending'";
const RETRY: &str = "
UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_ms = ?3, claimed_until = 0
WHERE room = ?1 AND id = ?2 AND status <> 'delivered'";

/// The columns [`delivery`] reads, in its order.
pub(super) const DELIVERY_COLUMNS: &str = "id, event, subject, state, occurred_ms, status, \
     attempts, next_ms, last_attempt_ms, last_code, last_error, delivered_ms";

fn conversion(i: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, why.into())
}

/// Queues `q` (after the write it reports, in the same transaction).
pub(super) fn queue(conn: &Connection, q: &Queued<'_>) -> rusqlite::Result<()> {
    let sql = match q.check {
        Check::Nothing => QUEUE,
        Check::Registration => QUEUE_REGISTRATION,
    };
    let d = &q.delivery;
    conn.prepare_cached(sql)?.execute(params![
        q.room,
        d.id,
        d.event.as_str(),
        d.subject,
        d.state,
        d.occurred_ms
    ])?;
    Ok(())
}

pub(super) fn put_webhook(conn: &Connection, room: &str, w: &Webhook) -> rusqlite::Result<()> {
    conn.prepare_cached(PUT_WEBHOOK)?.execute(params![
        room,
        w.url,
        w.secret.expose(),
        WebhookEvent::join(&w.events),
        w.enabled,
        w.updated_ms
    ])?;
    Ok(())
}

pub(super) fn delete_webhook(conn: &Connection, room: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(DELETE_WEBHOOK)?.execute([room])?;
    conn.prepare_cached(FAIL_QUEUED)?.execute([room])?;
    Ok(())
}

pub(super) fn record_attempt(
    conn: &Connection,
    room: &str,
    a: &WebhookAttempt,
    outcome: AttemptOutcome,
) -> rusqlite::Result<()> {
    conn.prepare_cached(LOG_ATTEMPT)?.execute(params![
        room,
        a.delivery_id,
        a.at_ms,
        a.duration_ms,
        a.code,
        a.error
    ])?;
    let (status, next, delivered) = match outcome {
        AttemptOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(a.at_ms)),
        AttemptOutcome::RetryAt(t) => (DeliveryStatus::Pending, Some(t), None),
        AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
    };
    conn.prepare_cached(AFTER_ATTEMPT)?.execute(params![
        room,
        a.delivery_id,
        status.as_str(),
        next,
        a.at_ms,
        a.code,
        a.error,
        delivered
    ])?;
    Ok(())
}

pub(super) fn retry(conn: &Connection, room: &str, id: &str, at_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(RETRY)?
        .execute(params![room, id, at_ms])?;
    Ok(())
}

/// A row of [`DELIVERY_COLUMNS`] from column `at` on.
pub(super) fn delivery(row: &Row<'_>, at: usize) -> rusqlite::Result<WebhookDelivery> {
    let event: String = row.get(at + 1)?;
    let status: String = row.get(at + 5)?;
    let attempts: i64 = row.get(at + 6)?;
    let code: Option<i64> = row.get(at + 9)?;
    Ok(WebhookDelivery {
        id: row.get(at)?,
        event: WebhookEvent::parse(&event)
            .ok_or_else(|| conversion(at + 1, format!("unknown webhook event {event:?}")))?,
        subject: row.get(at + 2)?,
        state: row.get(at + 3)?,
        occurred_ms: row.get(at + 4)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| conversion(at + 5, format!("unknown delivery status {status:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_ms: row.get(at + 7)?,
        last_attempt_ms: row.get(at + 8)?,
        last_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.get(at + 10)?,
        delivered_ms: row.get(at + 11)?,
    })
}

fn webhook_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Webhook> {
    let secret: String = row.get(at + 1)?;
    let events: String = row.get(at + 2)?;
    Ok(Webhook {
        url: row.get(at)?,
        secret: Secret::new(secret),
        events: WebhookEvent::split(&events),
        enabled: row.get(at + 3)?,
        updated_ms: row.get(at + 4)?,
    })
}

const WEBHOOK_COLUMNS: &str = "w.url, w.secret, w.events, w.enabled, w.updated_ms";

pub(super) fn webhook(conn: &Connection, room: &str) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.room = ?1"
    ))?
    .query_row([room], |row| webhook_row(row, 0))
    .optional()
}

/// Pending deliveries due at `now_ms` whose webhook is enabled, oldest due first.
pub(super) fn due(
    conn: &Connection,
    now_ms: i64,
    limit: u32,
) -> rusqlite::Result<Vec<DueDelivery>> {
    let sql = format!(
        "SELECT o.room, {WEBHOOK_COLUMNS}, {} FROM webhook_outbox o
         JOIN webhooks w ON w.room = o.room AND w.enabled = 1
         WHERE o.status = 'pending' AND o.next_ms <= ?1
         ORDER BY o.next_ms, o.rowid LIMIT ?2",
        prefixed("o.")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now_ms, limit], |row| {
        Ok(DueDelivery {
            room: row.get(0)?,
            webhook: webhook_row(row, 1)?,
            delivery: delivery(row, 6)?,
        })
    })?;
    rows.collect()
}

/// [`DELIVERY_COLUMNS`] with a table prefix.
pub(super) fn prefixed(p: &str) -> String {
    DELIVERY_COLUMNS
        .split(", ")
        .map(|c| format!("{p}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A room's deliveries, newest first, with each one's attempts (oldest first).
pub(super) fn deliveries(
    conn: &Connection,
    room: &str,
    filter: &DeliveryFilter,
    limit: u32,
) -> rusqlite::Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox
         WHERE room = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id = ?3)
         ORDER BY occurred_ms DESC, rowid DESC LIMIT ?4"
    );
    let status = filter.status.map(|s| s.as_str());
    let list: Vec<WebhookDelivery> = conn
        .prepare_cached(&sql)?
        .query_map(params![room, status, filter.id, limit], |row| {
            delivery(row, 0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut attempts = conn.prepare_cached(
        "SELECT delivery_id, at_ms, duration_ms, code, error FROM webhook_attempts
         WHERE room = ?1 AND delivery_id = ?2 ORDER BY at_ms, rowid",
    )?;
    list.into_iter()
        .map(|d| {
            let log = attempts
                .query_map(params![room, d.id], |row| {
                    let code: Option<i64> = row.get(3)?;
                    Ok(WebhookAttempt {
                        delivery_id: row.get(0)?,
                        at_ms: row.get(1)?,
                        duration_ms: row.get(2)?,
                        code: code.and_then(|c| u16::try_from(c).ok()),
                        error: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((d, log))
        })
        .collect()
}
