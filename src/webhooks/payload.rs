//! The JSON body of a delivery (docs/webhooks.md): the event, its room and time, and the
//! record it is about as stored when it is sent, with the state the event reported (an order
//! shipped after it was placed is still sent as placed in its `order.placed` delivery).
//! Personal data a host erased is sent erased.

use crate::model::{DueDelivery, Order, Registration, RegistrationKey, WebhookEvent};
use crate::store::Store;
use serde_json::{json, Value};

/// Why a body could not be made (the attempt fails with it, and is retried).
pub type Missing = String;

/// The body of `due`'s delivery, attempt number `attempt`.
pub async fn body(store: &dyn Store, due: &DueDelivery, attempt: u32) -> Result<Vec<u8>, Missing> {
    let d = &due.delivery;
    let data = match d.event {
        WebhookEvent::OrderPlaced | WebhookEvent::OrderStatus => {
            let order = store
                .order(&due.room, &d.subject)
                .await
                .map_err(|e| format!("reading order {}: {e}", d.subject))?
                .ok_or_else(|| format!("order {} is not in the store", d.subject))?;
            let buyer = registrant(
                store,
                &due.room,
                RegistrationKey::ViewerId(order.viewer_id.clone()),
            )
            .await?;
            json!({ "order": order_json(&order, &d.state), "buyer": buyer })
        }
        WebhookEvent::Registration => {
            let reg = registrant(store, &due.room, RegistrationKey::Id(d.subject.clone()))
                .await?
                .ok_or_else(|| format!("registration {} is not in the store", d.subject))?;
            let mut reg = reg;
            reg["status"] = Value::String(d.state.clone());
            json!({ "registration": reg })
        }
        WebhookEvent::LeadStage => {
            let who = registrant(
                store,
                &due.room,
                RegistrationKey::ViewerId(d.subject.clone()),
            )
            .await?;
            json!({ "lead": { "viewer_id": d.subject, "stage": d.state, "registration": who } })
        }
    };
    let body = json!({
        "id": d.id,
        "type": d.event.as_str(),
        "room_id": due.room,
        "occurred_ms": d.occurred_ms,
        "attempt": attempt,
        "data": data,
    });
    Ok(serde_json::to_vec(&body).expect("JSON values serialise"))
}

async fn registrant(
    store: &dyn Store,
    room: &str,
    key: RegistrationKey,
) -> Result<Option<Value>, Missing> {
    let found = store
        .registrations(room, key)
        .await
        .map_err(|e| format!("reading registrations: {e}"))?;
    Ok(found.into_iter().next().map(|r| registration_json(&r)))
}

/// A registration as the endpoint sees it: never its secret or personal link.
fn registration_json(r: &Registration) -> Value {
    json!({
        "id": r.id,
        "viewer_id": r.viewer_id,
        "name": r.name,
        "company": r.company,
        "phone": r.phone,
        "status": r.status.as_str(),
        "source": r.source.as_str(),
        "invite_code": r.invite_code,
        "inviter_id": r.inviter_id,
        "channel": r.channel,
        "created_ms": r.created_ms,
        "decided_ms": r.decided_ms,
    })
}

fn order_json(o: &Order, state: &str) -> Value {
    json!({
        "id": o.id,
        "viewer_id": o.viewer_id,
        "display_name": o.display_name,
        "tier": o.tier,
        "brand_id": o.brand_id,
        "product_id": o.product_id,
        "product_name": o.product_name,
        "quantity": o.quantity,
        "unit_price_cents": o.unit_price_cents,
        "total_cents": o.total_cents,
        "currency": o.currency,
        "status": state,
        "status_reason": if state == o.status.as_str() { o.status_reason.clone() } else { None },
        "sale_id": o.sale_id,
        "inviter_id": o.inviter_id,
        "created_ms": o.created_ms,
    })
}
