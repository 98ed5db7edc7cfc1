//! CRM webhooks in PostgreSQL: the statements the writer plans (the endpoint, attempts, and
//! one insert per batch for every delivery the batch queues) and the reads, including the
//! claim that hands a due delivery to one node at a time.

use super::error::pg_error;
use crate::model::{
    DeliveryFilter, DeliveryStatus, DueDelivery, Secret, Webhook, WebhookAttempt, WebhookDelivery,
    WebhookEvent,
};
use crate::store::outbox::{Check, Queued};
use crate::store::StoreError;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

/// Every delivery a batch queues, in one statement after the batch's other writes: only for
/// a room whose webhook is enabled and takes the event, and (for registrations) only if the
/// registration stands with the state reported.
pub(super) const QUEUE: &str = r#"
INSERT INTO webhook_outbox
    (room, id, event, subject, state, occurred_ms, status, attempts, next_ms, last_error)
SELECT t.room, t.id, t.event, t.subject, t.state, t.at, 'pending', 0, t.at, ''
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::bool[]) AS t(room, id, event, subject, state, at, registration)
WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.room = t.room AND w.enabled
              AND position(',' || t.event || ',' in w.events) > 0)
  AND (NOT t.registration OR EXISTS (
          SELECT 1 FROM registrations r
          WHERE r.room = t.room AND r.id = t.subject AND r.status = t.state))
ON CONFLICT (room, id) DO NOTHING"#;
pub(super) const PUT_WEBHOOK: &str = "
INSERT INTO webhooks (room, url, secret, events, enabled, updated_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (room) DO UPDATE SET url = excluded.url, secret = excluded.secret,
    events = excluded.events, enabled = excluded.enabled, updated_ms = excluded.updated_ms";
pub(super) const DELETE_WEBHOOK: &str = "
WITH gone AS (DELETE FROM webhooks WHERE room = $1)
UPDATE webhook_outbox SET status = 'failed', next_ms = NULL, last_error = 'webhook removed'
WHERE room = $1 AND status = 'pending'";
pub(super) const LOG_ATTEMPT: &str = "
INSERT INTO webhook_attempts (room, delivery_id, at_ms, duration_ms, code, error)
VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const AFTER_ATTEMPT: &str = "
UPDATE webhook_outbox SET status = $3, attempts = attempts + 1, next_ms = $4,
    last_attempt_ms = $5, last_code = $6, last_error = $7, delivered_ms = $8, claimed_until = 0
WHERE room = $1 AND id = $2 AND status = 'pending'";
pub(super) const RETRY: &str = "
UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_ms = $3, claimed_until = 0
WHERE room = $1 AND id = $2 AND status <> 'delivered'";

const DELIVERY_COLUMNS: &str = "o.id, o.event, o.subject, o.state, o.occurred_ms, o.status, \
     o.attempts, o.next_ms, o.last_attempt_ms, o.last_code, o.last_error, o.delivered_ms";
const WEBHOOK_COLUMNS: &str = "w.url, w.secret, w.events, w.enabled, w.updated_ms";

/// The columns of [`QUEUE`], gathered over a batch.
#[derive(Default)]
pub(super) struct QueueRows {
    room: Vec<String>,
    id: Vec<String>,
    event: Vec<String>,
    subject: Vec<String>,
    state: Vec<String>,
    at: Vec<i64>,
    registration: Vec<bool>,
}

impl QueueRows {
    pub(super) fn push(&mut self, q: Queued<'_>) {
        let d = q.delivery;
        self.room.push(q.room.to_string());
        self.id.push(d.id);
        self.event.push(d.event.as_str().to_string());
        self.subject.push(d.subject);
        self.state.push(d.state);
        self.at.push(d.occurred_ms);
        self.registration.push(q.check == Check::Registration);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub(super) fn into_params(self) -> Vec<super::rows::Param> {
        vec![
            Box::new(self.room),
            Box::new(self.id),
            Box::new(self.event),
            Box::new(self.subject),
            Box::new(self.state),
            Box::new(self.at),
            Box::new(self.registration),
        ]
    }
}

fn corrupt(op: &'static str, why: String) -> StoreError {
    StoreError::Corrupt {
        op,
        source: why.into(),
    }
}

fn delivery(op: &'static str, row: &Row, at: usize) -> Result<WebhookDelivery, StoreError> {
    let event: String = row.get(at + 1);
    let status: String = row.get(at + 5);
    let attempts: i64 = row.get(at + 6);
    let code: Option<i64> = row.get(at + 9);
    Ok(WebhookDelivery {
        id: row.get(at),
        event: WebhookEvent::parse(&event)
            .ok_or_else(|| corrupt(op, format!("unknown webhook event {event:?}")))?,
        subject: row.get(at + 2),
        state: row.get(at + 3),
        occurred_ms: row.get(at + 4),
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(op, format!("unknown delivery status {status:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_ms: row.get(at + 7),
        last_attempt_ms: row.get(at + 8),
        last_code: code.and_then(|c| u16::try_from(c).ok()),
        last_error: row.get(at + 10),
        delivered_ms: row.get(at + 11),
    })
}

fn webhook_row(row: &Row, at: usize) -> Webhook {
    let secret: String = row.get(at + 1);
    let events: String = row.get(at + 2);
    Webhook {
        url: row.get(at),
        secret: Secret::new(secret),
        events: WebhookEvent::split(&events),
        enabled: row.get(at + 3),
        updated_ms: row.get(at + 4),
    }
}

pub(super) async fn webhook(
    c: &impl GenericClient,
    room: &str,
) -> Result<Option<Webhook>, StoreError> {
    let op = "webhook";
    let st = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.room = $1"
        ))
        .await
        .map_err(pg_error(op))?;
    let row = c.query_opt(&st, &[&room]).await.map_err(pg_error(op))?;
    Ok(row.map(|r| webhook_row(&r, 0)))
}

/// Claims up to `limit` due deliveries for `lease_ms`: rows another node holds (locked now,
/// or claimed and not yet past their lease) are skipped.
pub(super) async fn claim_due(
    c: &impl GenericClient,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>, StoreError> {
    let op = "due_webhooks";
    let sql = format!(
        "WITH due AS (
             SELECT o.room, o.id FROM webhook_outbox o
             JOIN webhooks w ON w.room = o.room AND w.enabled
             WHERE o.status = 'pending' AND o.next_ms <= $1 AND o.claimed_until <= $1
             ORDER BY o.next_ms, o.pos LIMIT $3
             FOR UPDATE OF o SKIP LOCKED)
         UPDATE webhook_outbox o SET claimed_until = $1 + $2
         FROM due, webhooks w
         WHERE o.room = due.room AND o.id = due.id AND w.room = o.room
         RETURNING o.room, {WEBHOOK_COLUMNS}, {DELIVERY_COLUMNS}, o.pos"
    );
    let st = c.prepare_cached(&sql).await.map_err(pg_error(op))?;
    let rows = c
        .query(&st, &[&now_ms, &lease_ms, &i64::from(limit)])
        .await
        .map_err(pg_error(op))?;
    let mut due = rows
        .iter()
        .map(|row| {
            Ok((
                row.get::<_, i64>(18),
                DueDelivery {
                    room: row.get(0),
                    webhook: webhook_row(row, 1),
                    delivery: delivery(op, row, 6)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING keeps no order.
    due.sort_by_key(|(pos, d)| (d.delivery.next_ms, *pos));
    Ok(due.into_iter().map(|(_, d)| d).collect())
}

pub(super) async fn deliveries(
    c: &impl GenericClient,
    room: &str,
    filter: &DeliveryFilter,
    limit: u32,
) -> Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>, StoreError> {
    let op = "webhook_deliveries";
    let st = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_outbox o
             WHERE o.room = $1 AND ($2::text IS NULL OR o.status = $2)
               AND ($3::text IS NULL OR o.id = $3)
             ORDER BY o.occurred_ms DESC, o.pos DESC LIMIT $4"
        ))
        .await
        .map_err(pg_error(op))?;
    let status = filter.status.map(|s| s.as_str());
    let list = c
        .query(&st, &[&room, &status, &filter.id, &i64::from(limit)])
        .await
        .map_err(pg_error(op))?
        .iter()
        .map(|row| delivery(op, row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
    let st = c
        .prepare_cached(
            "SELECT delivery_id, at_ms, duration_ms, code, error FROM webhook_attempts
             WHERE room = $1 AND delivery_id = ANY($2) ORDER BY pos",
        )
        .await
        .map_err(pg_error(op))?;
    let attempts = c.query(&st, &[&room, &ids]).await.map_err(pg_error(op))?;
    let mut out: Vec<(WebhookDelivery, Vec<WebhookAttempt>)> =
        list.into_iter().map(|d| (d, Vec::new())).collect();
    for row in attempts {
        let id: String = row.get(0);
        let code: Option<i64> = row.get(3);
        if let Some((_, log)) = out.iter_mut().find(|(d, _)| d.id == id) {
            log.push(WebhookAttempt {
                delivery_id: id,
                at_ms: row.get(1),
                duration_ms: row.get(2),
                code: code.and_then(|c| u16::try_from(c).ok()),
                error: row.get(4),
            });
        }
    }
    Ok(out)
}
