//! What a host does with a room's webhook: set it (checked), read it, remove it, read the
//! delivery log and retry a delivery. Any node does it: it is all in the store.

use super::{guard, Settings};
use crate::model::{
    now_ms, DeliveryFilter, DeliveryStatus, Secret, StoreOp, Webhook, WebhookAttempt,
    WebhookDelivery, WebhookEvent,
};
use crate::store::{Store, StoreError};
use rand::Rng as _;
use std::sync::Arc;

/// Why a host's request was not done, in the host's terms.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("room {0:?} not found")]
    NoRoom(String),
    #[error("room {0:?} has no webhook")]
    NoWebhook(String),
    #[error("delivery {0:?} not found")]
    NoDelivery(String),
    #[error("delivery {0:?} was delivered already")]
    Delivered(String),
    /// Names the field at fault.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A webhook as set: the secret only when this call generated it.
pub struct SetOutcome {
    pub webhook: Webhook,
    pub generated_secret: Option<Secret>,
}

/// What a host asks for.
pub struct SetRequest {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub disabled: bool,
    pub rotate_secret: bool,
}

pub struct Hooks {
    store: Arc<dyn Store>,
    settings: Settings,
}

/// A fresh signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> Secret {
    let bytes: [u8; 32] = rand::rng().random();
    Secret::new(format!("whsec_{}", hex::encode(bytes)))
}

/// Most deliveries listed at once.
pub const MAX_LIST: u32 = 1000;

impl Hooks {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Hooks {
        Hooks { store, settings }
    }

    async fn need_room(&self, room: &str) -> Result<(), HookError> {
        let filter = crate::store::RoomFilter {
            id: Some(room.to_string()),
            ..Default::default()
        };
        if !self.store.list_rooms(filter).await?.is_empty() {
            Ok(())
        } else {
            Err(HookError::NoRoom(room.to_string()))
        }
    }

    pub async fn set(&self, room: &str, req: SetRequest) -> Result<SetOutcome, HookError> {
        let url = guard::check_url(req.url.trim(), self.settings.allow_private)
            .map_err(HookError::Invalid)?;
        let mut events = Vec::new();
        for name in &req.events {
            let e = WebhookEvent::parse(name.trim()).ok_or_else(|| {
                HookError::Invalid(format!(
                    "events: unknown event {name:?} (known: {})",
                    WebhookEvent::ALL.map(|e| e.as_str()).join(", ")
                ))
            })?;
            if !events.contains(&e) {
                events.push(e);
            }
        }
        if events.is_empty() {
            events = WebhookEvent::ALL.to_vec();
        }
        events.sort();
        let given = req.secret.trim();
        if !given.is_empty() && !(16..=256).contains(&given.chars().count()) {
            return Err(HookError::Invalid(
                "secret: 16 to 256 characters (or empty to keep or generate one)".into(),
            ));
        }
        if !given.is_empty() && req.rotate_secret {
            return Err(HookError::Invalid(
                "secret: give a secret or ask for a new one (rotate_secret), not both".into(),
            ));
        }
        self.need_room(room).await?;
        let current = self.store.webhook(room).await?;
        let (secret, generated) = match (given, current) {
            (s, _) if !s.is_empty() => (Secret::new(s), None),
            (_, Some(w)) if !req.rotate_secret => (w.secret, None),
            _ => {
                let s = new_secret();
                (s.clone(), Some(s))
            }
        };
        let webhook = Webhook {
            url: url.to_string(),
            secret,
            events,
            enabled: !req.disabled,
            updated_ms: now_ms(),
        };
        self.store
            .submit(vec![StoreOp::PutWebhook {
                room: room.to_string(),
                webhook: Box::new(webhook.clone()),
            }])
            .wait()
            .await?;
        Ok(SetOutcome {
            webhook,
            generated_secret: generated,
        })
    }

    pub async fn get(&self, room: &str) -> Result<Webhook, HookError> {
        match self.store.webhook(room).await? {
            Some(w) => Ok(w),
            None => {
                self.need_room(room).await?;
                Err(HookError::NoWebhook(room.to_string()))
            }
        }
    }

    pub async fn delete(&self, room: &str) -> Result<(), HookError> {
        self.get(room).await?;
        self.store
            .submit(vec![StoreOp::DeleteWebhook {
                room: room.to_string(),
                at_ms: now_ms(),
            }])
            .wait()
            .await?;
        Ok(())
    }

    /// The log, newest first; `status` as the host wrote it (empty: all).
    pub async fn deliveries(
        &self,
        room: &str,
        status: &str,
        limit: u32,
    ) -> Result<Vec<(WebhookDelivery, Vec<WebhookAttempt>)>, HookError> {
        let status = match status.trim() {
            "" => None,
            s => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                HookError::Invalid(format!(
                    "status: {s:?} is not one of pending, delivered, failed"
                ))
            })?),
        };
        let limit = match limit {
            0 => 100,
            n if n <= MAX_LIST => n,
            n => {
                return Err(HookError::Invalid(format!(
                    "limit: at most {MAX_LIST}, not {n}"
                )))
            }
        };
        self.need_room(room).await?;
        let filter = DeliveryFilter { status, id: None };
        Ok(self.store.webhook_deliveries(room, filter, limit).await?)
    }

    pub async fn retry(
        &self,
        room: &str,
        id: &str,
    ) -> Result<(WebhookDelivery, Vec<WebhookAttempt>), HookError> {
        let find = || async {
            let filter = DeliveryFilter {
                status: None,
                id: Some(id.to_string()),
            };
            self.store
                .webhook_deliveries(room, filter, 1)
                .await
                .map(|mut v| v.pop())
        };
        let Some((d, _)) = find().await? else {
            self.need_room(room).await?;
            return Err(HookError::NoDelivery(id.to_string()));
        };
        if d.status == DeliveryStatus::Delivered {
            return Err(HookError::Delivered(id.to_string()));
        }
        self.store
            .submit(vec![StoreOp::RetryWebhook {
                room: room.to_string(),
                delivery_id: id.to_string(),
                at_ms: now_ms(),
            }])
            .wait()
            .await?;
        find()
            .await?
            .ok_or_else(|| HookError::NoDelivery(id.to_string()))
    }
}
