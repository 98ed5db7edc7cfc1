//! CRM webhook RPCs: the room's endpoint and its delivery log (work in `webhooks::host`).

use super::*;
use crate::model::{Webhook, WebhookAttempt, WebhookDelivery};
use crate::webhooks::host::{HookError, Hooks, SetRequest};

fn status(e: HookError) -> Status {
    match e {
        HookError::NoRoom(_) | HookError::NoWebhook(_) | HookError::NoDelivery(_) => {
            Status::not_found(e.to_string())
        }
        HookError::Delivered(_) => Status::failed_precondition(e.to_string()),
        HookError::Invalid(why) => Status::invalid_argument(why),
        HookError::Store(e) => {
            Status::unavailable(format!("the store: {}", crate::error_chain(&e)))
        }
    }
}

/// The last four characters of a secret.
fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

fn webhook_pb(room: &str, w: &Webhook, secret: Option<&str>) -> pb::Webhook {
    pb::Webhook {
        room_id: room.to_string(),
        url: w.url.clone(),
        events: w.events.iter().map(|e| e.as_str().to_string()).collect(),
        enabled: w.enabled,
        updated_ms: w.updated_ms,
        secret: secret.unwrap_or_default().to_string(),
        secret_hint: hint(w.secret.expose()),
    }
}

fn delivery_pb(d: &WebhookDelivery, log: &[WebhookAttempt]) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        id: d.id.clone(),
        event: d.event.as_str().to_string(),
        subject: d.subject.clone(),
        state: d.state.clone(),
        occurred_ms: d.occurred_ms,
        status: d.status.as_str().to_string(),
        attempts: d.attempts,
        next_ms: d.next_ms.unwrap_or(0),
        last_attempt_ms: d.last_attempt_ms.unwrap_or(0),
        last_code: d.last_code.map(u32::from).unwrap_or(0),
        last_error: d.last_error.clone(),
        delivered_ms: d.delivered_ms.unwrap_or(0),
        log: log
            .iter()
            .map(|a| pb::WebhookAttempt {
                at_ms: a.at_ms,
                duration_ms: a.duration_ms,
                code: a.code.map(u32::from).unwrap_or(0),
                error: a.error.clone(),
            })
            .collect(),
    }
}

pub(super) async fn set_webhook(
    hooks: Arc<Hooks>,
    r: pb::SetWebhookRequest,
) -> Result<pb::Webhook, Status> {
    need("room_id", &r.room_id)?;
    need("url", &r.url)?;
    let set = hooks
        .set(
            &r.room_id,
            SetRequest {
                url: r.url,
                secret: r.secret,
                events: r.events,
                disabled: r.disabled,
                rotate_secret: r.rotate_secret,
            },
        )
        .await
        .map_err(status)?;
    Ok(webhook_pb(
        &r.room_id,
        &set.webhook,
        set.generated_secret.as_ref().map(|s| s.expose()),
    ))
}

pub(super) async fn get_webhook(hooks: Arc<Hooks>, r: pb::RoomRef) -> Result<pb::Webhook, Status> {
    need("room_id", &r.room_id)?;
    let w = hooks.get(&r.room_id).await.map_err(status)?;
    Ok(webhook_pb(&r.room_id, &w, None))
}

pub(super) async fn delete_webhook(hooks: Arc<Hooks>, r: pb::RoomRef) -> Result<pb::Empty, Status> {
    need("room_id", &r.room_id)?;
    hooks.delete(&r.room_id).await.map_err(status)?;
    Ok(pb::Empty {})
}

pub(super) async fn list_deliveries(
    hooks: Arc<Hooks>,
    r: pb::ListWebhookDeliveriesRequest,
) -> Result<pb::ListWebhookDeliveriesResponse, Status> {
    need("room_id", &r.room_id)?;
    let list = hooks
        .deliveries(&r.room_id, &r.status, r.limit)
        .await
        .map_err(status)?;
    Ok(pb::ListWebhookDeliveriesResponse {
        deliveries: list.iter().map(|(d, log)| delivery_pb(d, log)).collect(),
    })
}

pub(super) async fn retry_delivery(
    hooks: Arc<Hooks>,
    r: pb::WebhookDeliveryRef,
) -> Result<pb::WebhookDelivery, Status> {
    need("room_id", &r.room_id)?;
    need("delivery_id", &r.delivery_id)?;
    let (d, log) = hooks
        .retry(&r.room_id, &r.delivery_id)
        .await
        .map_err(status)?;
    Ok(delivery_pb(&d, &log))
}
