//! Conformance: the webhook outbox — deliveries queued in the transaction of the change they
//! report (and only then), attempts and their outcome, retries, removal, and the claim.

use super::fixtures::*;
use super::registrations::{put_registration, registration};
use super::{reopen, Storage};
use crate::model::{
    AttemptOutcome, DeliveryFilter, DeliveryStatus, RegistrationStatus, Secret, StoreOp, Webhook,
    WebhookAttempt, WebhookDelivery, WebhookEvent,
};
use crate::store::{Store, Violation};

pub fn put_webhook(room: &str, events: &[WebhookEvent], enabled: bool) -> StoreOp {
    StoreOp::PutWebhook {
        room: r(room),
        webhook: Box::new(Webhook {
            url: "https://crm.example/hook".into(),
            secret: Secret::new("whsec-0123456789abcdef"),
            events: events.to_vec(),
            enabled,
            updated_ms: 10,
        }),
    }
}

fn attempt(
    room: &str,
    id: &str,
    at_ms: i64,
    code: Option<u16>,
    outcome: AttemptOutcome,
) -> StoreOp {
    StoreOp::RecordWebhookAttempt {
        room: r(room),
        attempt: Box::new(WebhookAttempt {
            delivery_id: id.into(),
            at_ms,
            duration_ms: 12,
            code,
            error: match outcome {
                AttemptOutcome::Delivered => String::new(),
                _ => "HTTP 500".into(),
            },
        }),
        outcome,
    }
}

async fn log(store: &dyn Store, room: &str) -> Vec<(WebhookDelivery, Vec<WebhookAttempt>)> {
    store
        .webhook_deliveries(room, DeliveryFilter::default(), 100)
        .await
        .expect("webhook_deliveries")
}

async fn ids(store: &dyn Store, room: &str) -> Vec<String> {
    let mut ids: Vec<String> = log(store, room)
        .await
        .into_iter()
        .map(|(d, _)| d.id)
        .collect();
    ids.sort();
    ids
}

/// Orders and registrations queue deliveries only for a room whose webhook is enabled and
/// takes their event; a registration refused as a duplicate queues nothing; a write applied
/// twice queues once; a failed submission queues nothing; the webhook reads back (secret
/// included) and everything survives a reopen.
pub async fn writes_queue_webhook_deliveries_with_them(storage: &dyn Storage) {
    use WebhookEvent::*;
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;
    // Nothing is queued before a webhook is set.
    put(&*store, vec![put_order(order("o0", "v1", "k0", None, 50))]).await;
    assert!(ids(&*store, "r1").await.is_empty());
    assert_eq!(store.webhook("r1").await.unwrap(), None);

    put(
        &*store,
        vec![
            put_webhook("r1", &[Registration, OrderPlaced, OrderStatus], true),
            // r2's webhook takes no order events, and is disabled besides.
            put_webhook("r2", &[Registration], false),
        ],
    )
    .await;
    let w = store.webhook("r1").await.unwrap().expect("set");
    assert_eq!(w.secret.expose(), "whsec-0123456789abcdef");
    assert_eq!(w.events, vec![Registration, OrderPlaced, OrderStatus]);
    assert!(w.enabled);

    let mut shipped = order("o1", "v1", "k1", None, 100);
    shipped.status = crate::model::OrderStatus::Shipped;
    shipped.updated_ms = 300;
    let dup = registration("g9", "+8613800138000", "code9");
    put(
        &*store,
        vec![
            put_order(order("o1", "v1", "k1", None, 100)),
            put_sale(sale("s1", 5)),
            grant("s1", order("o2", "v2", "k2", Some("s1"), 110)),
            put_registration("r1", registration("g1", "+8613800138000", "code1")),
            // Same phone: refused as a duplicate, so nothing is queued for it.
            put_registration("r1", dup),
            put_registration("r2", registration("g2", "+8613900139000", "code2")),
        ],
    )
    .await;
    put(&*store, vec![put_order(shipped.clone())]).await;
    // The same status again queues nothing more.
    put(&*store, vec![put_order(shipped)]).await;
    // A submission that fails queues nothing.
    let err = refused(
        &*store,
        vec![
            put_order(order("o3", "v3", "k3", None, 400)),
            grant("nope", order("o4", "v4", "k4", Some("nope"), 400)),
        ],
        Violation::SoldOut,
    )
    .await;
    drop(err);
    let want = [
        "order.placed:o1",
        "order.placed:o2",
        "order.status:o1:shipped",
        "registration:g1:pending",
    ];
    assert_eq!(ids(&*store, "r1").await, want);
    assert!(ids(&*store, "r2").await.is_empty());

    let list = log(&*store, "r1").await;
    // Newest first.
    assert_eq!(list[0].0.id, "order.status:o1:shipped");
    let placed = list
        .iter()
        .find(|(d, _)| d.id == "order.placed:o2")
        .unwrap();
    assert_eq!(placed.0.event, OrderPlaced);
    assert_eq!(placed.0.subject, "o2");
    assert_eq!(placed.0.state, "placed");
    assert_eq!(placed.0.occurred_ms, 110);
    assert_eq!(placed.0.status, DeliveryStatus::Pending);
    assert_eq!(placed.0.next_ms, Some(110));
    assert_eq!(placed.0.attempts, 0);
    assert!(placed.1.is_empty());

    // A decision queues the registration again, with its new state.
    put(
        &*store,
        vec![StoreOp::DecideRegistration {
            room: r("r1"),
            id: "g1".into(),
            status: RegistrationStatus::Approved,
            at_ms: 500,
        }],
    )
    .await;
    // A submission that removes the webhook, writes an order (which then queues nothing) and
    // fails is undone entirely: the webhook stays and later writes queue again.
    refused(
        &*store,
        vec![
            StoreOp::DeleteWebhook {
                room: r("r1"),
                at_ms: 600,
            },
            put_order(order("o5", "v5", "k5", None, 600)),
            grant("nope", order("o6", "v6", "k6", Some("nope"), 600)),
        ],
        Violation::SoldOut,
    )
    .await;
    put(&*store, vec![put_order(order("o7", "v7", "k7", None, 700))]).await;
    assert!(store.webhook("r1").await.unwrap().is_some());
    assert!(ids(&*store, "r1")
        .await
        .contains(&"order.placed:o7".to_string()));
    let store = reopen(storage, store).await;
    assert_eq!(ids(&*store, "r1").await.len(), 6);
    assert!(ids(&*store, "r1")
        .await
        .contains(&"registration:g1:approved".to_string()));
    let o1 = store.order("r1", "o1").await.unwrap().expect("o1");
    assert_eq!(o1.status, crate::model::OrderStatus::Shipped);
    assert_eq!(store.order("r1", "o9").await.unwrap(), None);
}

/// Due deliveries come oldest first with their webhook; an attempt is logged and moves the
/// delivery on (retry later, delivered, failed); a host's retry makes a failed one due again
/// with its attempts reset; removing the webhook fails what is queued and keeps the log.
/// (Claimed with no lease, so each read sees every due one.)
pub async fn attempts_move_deliveries_and_are_logged(storage: &dyn Storage) {
    use WebhookEvent::*;
    let store = storage.open().await;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_webhook("r1", &[OrderPlaced, LeadStage], true),
        ],
    )
    .await;
    put(
        &*store,
        vec![
            put_order(order("o1", "v1", "k1", None, 100)),
            put_order(order("o2", "v2", "k2", None, 200)),
            StoreOp::QueueWebhook {
                room: r("r1"),
                delivery: Box::new(WebhookDelivery {
                    id: "lead.stage:v1:hot".into(),
                    event: LeadStage,
                    subject: "v1".into(),
                    state: "hot".into(),
                    occurred_ms: 300,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_ms: Some(300),
                    last_attempt_ms: None,
                    last_code: None,
                    last_error: String::new(),
                    delivered_ms: None,
                }),
            },
        ],
    )
    .await;
    let due = store.due_webhooks(250, 0, 10).await.unwrap();
    let due_ids: Vec<&str> = due.iter().map(|d| d.delivery.id.as_str()).collect();
    assert_eq!(due_ids, ["order.placed:o1", "order.placed:o2"]);
    assert_eq!(due[0].room, "r1");
    assert_eq!(due[0].webhook.url, "https://crm.example/hook");
    assert_eq!(due[0].webhook.secret.expose(), "whsec-0123456789abcdef");

    put(
        &*store,
        vec![
            attempt(
                "r1",
                "order.placed:o1",
                400,
                Some(500),
                AttemptOutcome::RetryAt(10_000),
            ),
            attempt(
                "r1",
                "order.placed:o2",
                400,
                Some(200),
                AttemptOutcome::Delivered,
            ),
        ],
    )
    .await;
    let due = store.due_webhooks(1_000, 0, 10).await.unwrap();
    let due_ids: Vec<&str> = due.iter().map(|d| d.delivery.id.as_str()).collect();
    assert_eq!(due_ids, ["lead.stage:v1:hot"]);
    let list = log(&*store, "r1").await;
    let get = |id: &str| list.iter().find(|(d, _)| d.id == id).unwrap().clone();
    let (o1, o1_log) = get("order.placed:o1");
    assert_eq!(o1.status, DeliveryStatus::Pending);
    assert_eq!((o1.attempts, o1.next_ms), (1, Some(10_000)));
    assert_eq!((o1.last_attempt_ms, o1.last_code), (Some(400), Some(500)));
    assert_eq!(o1.last_error, "HTTP 500");
    assert_eq!(o1_log.len(), 1);
    assert_eq!(o1_log[0].duration_ms, 12);
    let (o2, _) = get("order.placed:o2");
    assert_eq!(o2.status, DeliveryStatus::Delivered);
    assert_eq!((o2.delivered_ms, o2.next_ms), (Some(400), None));

    // Out of attempts, then retried by a host.
    put(
        &*store,
        vec![attempt(
            "r1",
            "order.placed:o1",
            10_000,
            None,
            AttemptOutcome::Failed,
        )],
    )
    .await;
    let failed = store
        .webhook_deliveries(
            "r1",
            DeliveryFilter {
                status: Some(DeliveryStatus::Failed),
                id: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0.attempts, 2);
    assert_eq!(failed[0].1.len(), 2);
    assert_eq!(failed[0].1[1].code, None);
    put(
        &*store,
        vec![
            StoreOp::RetryWebhook {
                room: r("r1"),
                delivery_id: "order.placed:o1".into(),
                at_ms: 11_000,
            },
            // A delivered one stays delivered.
            StoreOp::RetryWebhook {
                room: r("r1"),
                delivery_id: "order.placed:o2".into(),
                at_ms: 11_000,
            },
        ],
    )
    .await;
    let due = store.due_webhooks(11_000, 0, 10).await.unwrap();
    let mut due_ids: Vec<&str> = due.iter().map(|d| d.delivery.id.as_str()).collect();
    due_ids.sort();
    assert_eq!(due_ids, ["lead.stage:v1:hot", "order.placed:o1"]);
    let o1 = due
        .iter()
        .find(|d| d.delivery.id == "order.placed:o1")
        .unwrap();
    assert_eq!(o1.delivery.attempts, 0);

    // Disabled: nothing is due or queued. Removed: what was queued fails, the log stays.
    put(&*store, vec![put_webhook("r1", &[OrderPlaced], false)]).await;
    put(
        &*store,
        vec![put_order(order("o5", "v5", "k5", None, 12_000))],
    )
    .await;
    assert!(store.due_webhooks(20_000, 0, 10).await.unwrap().is_empty());
    put(
        &*store,
        vec![StoreOp::DeleteWebhook {
            room: r("r1"),
            at_ms: 20_000,
        }],
    )
    .await;
    let store = reopen(storage, store).await;
    assert_eq!(store.webhook("r1").await.unwrap(), None);
    let list = log(&*store, "r1").await;
    assert_eq!(list.len(), 3);
    for (d, _) in &list {
        if d.id == "order.placed:o2" {
            assert_eq!(d.status, DeliveryStatus::Delivered);
        } else {
            assert_eq!(d.status, DeliveryStatus::Failed, "{}", d.id);
            assert_eq!(d.last_error, "webhook removed");
        }
    }
    let o1 = list
        .iter()
        .find(|(d, _)| d.id == "order.placed:o1")
        .unwrap();
    assert_eq!(o1.1.len(), 2);
    let one = store
        .webhook_deliveries(
            "r1",
            DeliveryFilter {
                status: None,
                id: Some("order.placed:o2".into()),
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0.id, "order.placed:o2");
}

/// A due delivery handed out with a lease is not handed out again until the lease ends or
/// an attempt is recorded (so two nodes never send it at once). An embedded store, used by
/// one process, may hand it out again: the caller keeps what it has in flight.
pub async fn a_claimed_delivery_waits_for_its_lease(storage: &dyn Storage) {
    let store = storage.open().await;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_webhook("r1", &[WebhookEvent::OrderPlaced], true),
        ],
    )
    .await;
    put(&*store, vec![put_order(order("o1", "v1", "k1", None, 100))]).await;
    assert_eq!(store.due_webhooks(100, 5_000, 10).await.unwrap().len(), 1);
    if storage.shared() {
        assert!(store.due_webhooks(200, 5_000, 10).await.unwrap().is_empty());
        assert_eq!(store.due_webhooks(5_100, 5_000, 10).await.unwrap().len(), 1);
        put(
            &*store,
            vec![attempt(
                "r1",
                "order.placed:o1",
                5_200,
                Some(503),
                AttemptOutcome::RetryAt(5_300),
            )],
        )
        .await;
        // Recorded: due again at its retry time, lease or not.
        assert_eq!(store.due_webhooks(5_300, 5_000, 10).await.unwrap().len(), 1);
    }
}
