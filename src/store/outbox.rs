//! The webhook outbox's rules, shared by every backend: which writes queue a delivery (in
//! the same transaction as the write, so a change is never stored without its delivery nor
//! a delivery sent for a change that was rolled back), and when a failed one is tried again.
//!
//! A backend inserts each [`Queued`] of a submission after the submission's other writes,
//! only if the room has an enabled webhook taking the event, and only if its check still
//! holds then (a registration refused as a duplicate queues nothing). Ids are stable
//! (`order.status:o12:shipped`), so a write applied twice queues one delivery.

use crate::model::{Order, OrderStatus, StoreOp, WebhookDelivery, WebhookEvent};

/// Attempts before a delivery is given up: 1 + the retries of [`RETRY_AFTER_S`].
pub const MAX_ATTEMPTS: u32 = RETRY_AFTER_S.len() as u32 + 1;

/// Seconds after each failed attempt until the next one (about a day and a half in all),
/// before jitter and [`Schedule::base_ms`] scaling.
pub const RETRY_AFTER_S: [i64; 11] = [
    10, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 43_200,
];

/// When a failed attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The first retry's delay in ms; later ones scale with [`RETRY_AFTER_S`]. 10 s by
    /// default; tests make it short.
    pub base_ms: i64,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule { base_ms: 10_000 }
    }
}

impl Schedule {
    /// After attempt number `attempts` (1-based) failed at `now_ms`: the time of the next,
    /// or `None` if that was the last. `jitter` in [0, 1) spreads retries by up to 20 %.
    pub fn next_after(&self, attempts: u32, now_ms: i64, jitter: f64) -> Option<i64> {
        let i = usize::try_from(attempts).ok()?.checked_sub(1)?;
        let secs = *RETRY_AFTER_S.get(i)?;
        let delay = secs.saturating_mul(self.base_ms) / 10;
        let spread = (delay as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as i64;
        Some(now_ms.saturating_add(delay).saturating_add(spread))
    }
}

/// What a queued delivery must find true when its transaction gets to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Nothing,
    /// The registration `subject` exists with status `state` (it was not refused as a
    /// duplicate, and the decision was applied).
    Registration,
}

/// A delivery a write queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued<'o> {
    pub room: &'o str,
    pub delivery: WebhookDelivery,
    pub check: Check,
}

fn delivery(event: WebhookEvent, subject: &str, state: &str, at_ms: i64) -> WebhookDelivery {
    WebhookDelivery {
        id: format!("{}:{subject}:{state}", event.as_str()),
        event,
        subject: subject.to_string(),
        state: state.to_string(),
        occurred_ms: at_ms,
        status: crate::model::DeliveryStatus::Pending,
        attempts: 0,
        next_ms: Some(at_ms),
        last_attempt_ms: None,
        last_code: None,
        last_error: String::new(),
        delivered_ms: None,
    }
}

fn order_delivery(order: &Order) -> WebhookDelivery {
    if order.status == OrderStatus::Placed {
        let mut d = delivery(
            WebhookEvent::OrderPlaced,
            &order.id,
            "placed",
            order.created_ms,
        );
        d.id = format!("order.placed:{}", order.id);
        d
    } else {
        delivery(
            WebhookEvent::OrderStatus,
            &order.id,
            order.status.as_str(),
            order.updated_ms,
        )
    }
}

/// The delivery `op` queues, if any.
pub fn queued(op: &StoreOp) -> Option<Queued<'_>> {
    let (room, delivery, check) = match op {
        StoreOp::PutOrder { room, order } | StoreOp::GrantSale { room, order, .. } => {
            (room, order_delivery(order), Check::Nothing)
        }
        StoreOp::PutRegistration { room, registration } => (
            room,
            delivery(
                WebhookEvent::Registration,
                &registration.id,
                registration.status.as_str(),
                registration.created_ms,
            ),
            Check::Registration,
        ),
        StoreOp::DecideRegistration {
            room,
            id,
            status,
            at_ms,
        } => (
            room,
            delivery(WebhookEvent::Registration, id, status.as_str(), *at_ms),
            Check::Registration,
        ),
        StoreOp::QueueWebhook { room, delivery } => {
            (room, delivery.as_ref().clone(), Check::Nothing)
        }
        _ => return None,
    };
    Some(Queued {
        room,
        delivery,
        check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_end() {
        let s = Schedule::default();
        assert_eq!(s.next_after(1, 1_000, 0.0), Some(11_000));
        assert_eq!(s.next_after(2, 1_000, 0.0), Some(31_000));
        // Jitter adds at most a fifth.
        assert_eq!(s.next_after(1, 0, 0.999_999), Some(11_999));
        assert_eq!(s.next_after(MAX_ATTEMPTS - 1, 0, 0.0), Some(43_200_000));
        assert_eq!(s.next_after(MAX_ATTEMPTS, 0, 0.0), None);
        assert_eq!(s.next_after(0, 0, 0.0), None);
        let fast = Schedule { base_ms: 100 };
        assert_eq!(fast.next_after(1, 0, 0.0), Some(100));
        assert_eq!(fast.next_after(3, 0, 0.0), Some(1_200));
    }
}
