//! CRM webhooks (docs/webhooks.md): every node sends the deliveries the store's outbox holds
//! to each room's endpoint, signed, and records every attempt.
//!
//! A delivery is queued by the store in the transaction of the change it reports (see
//! `store::outbox`), so nothing is lost across a crash or restart: it stays pending until an
//! attempt succeeds or none is left. Delivery is at least once (a node that dies between the
//! endpoint's answer and the record of it sends again); receivers drop repeats by the
//! `Showfloor-Delivery` id. With several nodes on one PostgreSQL, the store hands each due
//! delivery to one node at a time (a claim with a lease longer than an attempt can take).

pub mod guard;
pub mod host;
pub mod leads;
pub mod payload;
pub mod sign;

use crate::metrics::Metrics;
use crate::model::{now_ms, AttemptOutcome, DueDelivery, StoreOp, WebhookAttempt};
use crate::store::outbox::{Schedule, MAX_ATTEMPTS};
use crate::store::Store;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How webhooks are sent (from the server's config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whether endpoints on internal addresses may be called ([`guard`]).
    pub allow_private: bool,
    pub schedule: Schedule,
    /// How often the node checks the leads of the live rooms it runs for `lead.stage`.
    pub lead_check: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            allow_private: false,
            schedule: Schedule::default(),
            lead_check: Duration::from_secs(30),
        }
    }
}

/// How long one attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is held for this node: well past an attempt.
const LEASE_MS: i64 = 60_000;
/// How often the outbox is read for due deliveries.
const POLL: Duration = Duration::from_millis(500);
/// Most attempts in flight on one node.
const CONCURRENCY: usize = 16;
/// The endpoint's answer kept in the log, at most.
const ERROR_CHARS: usize = 300;

/// Sends due deliveries until `stop`.
pub fn spawn(
    store: Arc<dyn Store>,
    settings: Settings,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        // A redirect could lead anywhere, internal addresses included; it counts as a failure.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(guard::Resolver::shared(settings.allow_private))
        .user_agent(concat!("Showfloor-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds");
    let sender = Arc::new(Sender {
        store,
        settings,
        metrics,
        client,
        in_flight: Mutex::new(HashSet::new()),
        slots: Arc::new(Semaphore::new(CONCURRENCY)),
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => sender.clone().round().await,
            }
        }
    })
}

struct Sender {
    store: Arc<dyn Store>,
    settings: Settings,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    /// (room, delivery id) of attempts under way here: an embedded store hands them out
    /// again until their outcome is recorded.
    in_flight: Mutex<HashSet<(String, String)>>,
    slots: Arc<Semaphore>,
}

impl Sender {
    /// Starts an attempt for each due delivery not already under way, as slots allow.
    async fn round(self: Arc<Self>) {
        let free = self.slots.available_permits();
        if free == 0 {
            return;
        }
        let due = match self
            .store
            .due_webhooks(now_ms(), LEASE_MS, free as u32)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "reading the webhook outbox");
                return;
            }
        };
        for d in due {
            let key = (d.room.clone(), d.delivery.id.clone());
            if !self.in_flight.lock().insert(key.clone()) {
                continue;
            }
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                self.in_flight.lock().remove(&key);
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.attempt(d).await;
                me.in_flight.lock().remove(&key);
                drop(permit);
            });
        }
    }

    /// One attempt, recorded durably before the delivery can be handed out again.
    async fn attempt(&self, d: DueDelivery) {
        let number = d.delivery.attempts.saturating_add(1);
        let started = Instant::now();
        let at_ms = now_ms();
        let (code, error) = match self.send(&d, number, at_ms).await {
            Ok(code) if (200..300).contains(&code) => (Some(code), String::new()),
            Ok(code) => (Some(code), format!("HTTP {code}")),
            Err(e) => (None, e),
        };
        let outcome = if error.is_empty() {
            AttemptOutcome::Delivered
        } else if number >= MAX_ATTEMPTS {
            AttemptOutcome::Failed
        } else {
            let jitter = rand::random::<f64>();
            match self.settings.schedule.next_after(number, now_ms(), jitter) {
                Some(t) => AttemptOutcome::RetryAt(t),
                None => AttemptOutcome::Failed,
            }
        };
        self.metrics.webhook_attempt(match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::Failed => "failed",
        });
        if !error.is_empty() {
            tracing::info!(room = %d.room, delivery = %d.delivery.id, attempt = number,
                error = %error, "webhook attempt failed");
        }
        let op = StoreOp::RecordWebhookAttempt {
            room: d.room.clone(),
            attempt: Box::new(WebhookAttempt {
                delivery_id: d.delivery.id.clone(),
                at_ms,
                duration_ms: started.elapsed().as_millis() as i64,
                code,
                error,
            }),
            outcome,
        };
        if let Err(e) = self.store.submit(vec![op]).wait().await {
            // Not recorded: the delivery is sent again when its claim runs out.
            tracing::warn!(room = %d.room, delivery = %d.delivery.id,
                error = %crate::error_chain(&e), "recording a webhook attempt");
        }
    }

    /// POSTs the delivery: the endpoint's status, or why there was none.
    async fn send(&self, d: &DueDelivery, number: u32, at_ms: i64) -> Result<u16, String> {
        // Checked again: the server's policy may have changed since the URL was set.
        let url = guard::check_url(&d.webhook.url, self.settings.allow_private)?;
        let body = payload::body(&*self.store, d, number).await?;
        let timestamp = at_ms / 1000;
        let signature = sign::signature(d.webhook.secret.expose(), timestamp, &body);
        let response = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("Showfloor-Event", d.delivery.event.as_str())
            .header("Showfloor-Delivery", &d.delivery.id)
            .header("Showfloor-Timestamp", timestamp.to_string())
            .header("Showfloor-Signature", signature)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        let code = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(format!("HTTP {code}: redirects are not followed"));
        }
        Ok(code)
    }
}

/// A failed request in a line: the innermost causes say what happened.
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs())
    } else if e.is_connect() {
        format!("could not connect: {}", crate::error_chain(&e))
    } else {
        crate::error_chain(&e)
    };
    what.chars().take(ERROR_CHARS).collect()
}
