//! CRM webhooks: a room's endpoint, the events it takes, and the deliveries of the durable
//! outbox with their attempts (docs/webhooks.md).

use crate::model::Secret;
use serde::{Deserialize, Serialize};

/// What a delivery tells the endpoint about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A registration was made, approved or rejected (`registration`).
    Registration,
    /// A viewer's lead stage changed (`lead.stage`).
    LeadStage,
    /// An order was placed, in the live or by a flash-sale win (`order.placed`).
    OrderPlaced,
    /// An order was confirmed, shipped or cancelled (`order.status`).
    OrderStatus,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::Registration,
        WebhookEvent::LeadStage,
        WebhookEvent::OrderPlaced,
        WebhookEvent::OrderStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Registration => "registration",
            WebhookEvent::LeadStage => "lead.stage",
            WebhookEvent::OrderPlaced => "order.placed",
            WebhookEvent::OrderStatus => "order.status",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Events as stored: `,registration,order.placed,` (a comma on each side of every name,
    /// so SQL finds one with a substring search).
    pub fn join(events: &[WebhookEvent]) -> String {
        let mut s = String::from(",");
        for e in events {
            s.push_str(e.as_str());
            s.push(',');
        }
        s
    }

    /// The stored form back; unknown names are left out.
    pub fn split(s: &str) -> Vec<WebhookEvent> {
        s.split(',').filter_map(WebhookEvent::parse).collect()
    }
}

/// A room's webhook: where deliveries go and the secret they are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// `https://…` (or `http://…`).
    pub url: String,
    /// The HMAC-SHA256 key of the `Showfloor-Signature` header.
    pub secret: Secret,
    /// The events sent; never empty.
    pub events: Vec<WebhookEvent>,
    /// A disabled webhook keeps its deliveries and log but queues and sends nothing.
    pub enabled: bool,
    pub updated_ms: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (`next_ms`).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; a host may retry it.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One event for the endpoint, held in the store's outbox from the moment the change it
/// reports is written (in the same transaction) until the endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Unique in the room and stable across attempts (`order.placed:o12`): receivers drop
    /// repeats by it.
    pub id: String,
    pub event: WebhookEvent,
    /// The order id, registration id or viewer id the event is about.
    pub subject: String,
    /// The state reported: the order's or registration's status, the lead's stage.
    pub state: String,
    pub occurred_ms: i64,
    pub status: DeliveryStatus,
    /// Attempts since it was queued or last retried by a host.
    pub attempts: u32,
    /// When it is tried next (pending only).
    pub next_ms: Option<i64>,
    pub last_attempt_ms: Option<i64>,
    /// The endpoint's HTTP status at the last attempt, if it answered.
    pub last_code: Option<u16>,
    /// Why the last attempt failed; empty after a success.
    pub last_error: String,
    pub delivered_ms: Option<i64>,
}

/// One attempt to deliver, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub delivery_id: String,
    pub at_ms: i64,
    pub duration_ms: i64,
    /// The endpoint's HTTP status, if it answered.
    pub code: Option<u16>,
    /// Empty when the endpoint answered 2xx.
    pub error: String,
}

/// A delivery due now, with what sending it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub room: String,
    pub delivery: WebhookDelivery,
    pub webhook: Webhook,
}

/// Which of a room's deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    /// Only the delivery with this id.
    pub id: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    Delivered,
    /// Tried again at this time.
    RetryAt(i64),
    /// No attempt is left.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_stored_form() {
        let all = WebhookEvent::ALL.to_vec();
        assert_eq!(
            WebhookEvent::join(&all),
            ",registration,lead.stage,order.placed,order.status,"
        );
        assert_eq!(WebhookEvent::split(&WebhookEvent::join(&all)), all);
        assert_eq!(
            WebhookEvent::split(",order.status,nonsense,"),
            vec![WebhookEvent::OrderStatus]
        );
        assert_eq!(WebhookEvent::parse("order"), None);
        for d in ["pending", "delivered", "failed"] {
            assert_eq!(DeliveryStatus::parse(d).unwrap().as_str(), d);
        }
    }
}
