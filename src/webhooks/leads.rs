//! `lead.stage` deliveries: the node that runs a live room checks its leads every
//! [`super::Settings::lead_check`] and queues one delivery the first time a viewer's lead
//! reaches `warm` and the first time it reaches `hot` (`lead.stage:VIEWER:STAGE`; the store
//! keeps one per id, so a node that restarts, or a new owner, does not send one twice).
//! Scores decay, so a lead may drop back a stage; that is not sent.

use crate::model::{now_ms, DeliveryStatus, RoomState, StoreOp, WebhookDelivery, WebhookEvent};
use crate::report::LeadStage;
use crate::reports::Reports;
use crate::rooms::Rooms;
use crate::store::Store;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Checks the live rooms this node runs until `stop`.
pub fn spawn(
    hub: Arc<dyn Rooms>,
    reports: Arc<Reports>,
    store: Arc<dyn Store>,
    node_id: String,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // (room, viewer, stage) queued by this node already: not submitted again.
        let mut queued: HashSet<(String, String, LeadStage)> = HashSet::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(rooms) = hub.list_rooms(Some(RoomState::Live)).await else {
                continue;
            };
            for room in rooms {
                // Only rooms running here (a room no node runs changes no lead).
                if room.owner_node.as_deref() != Some(node_id.as_str()) {
                    continue;
                }
                let id = room.record.id;
                if let Err(e) = check(&*store, &reports, &id, &mut queued).await {
                    tracing::warn!(room = %id, error = %e, "checking leads for webhooks");
                }
            }
        }
    })
}

async fn check(
    store: &dyn Store,
    reports: &Reports,
    room: &str,
    queued: &mut HashSet<(String, String, LeadStage)>,
) -> Result<(), String> {
    let webhook = store.webhook(room).await.map_err(|e| e.to_string())?;
    if !webhook.is_some_and(|w| w.enabled && w.events.contains(&WebhookEvent::LeadStage)) {
        return Ok(());
    }
    let leads = reports.leads(room).await.map_err(|e| e.to_string())?;
    let now = now_ms();
    let mut ops = Vec::new();
    let mut new = Vec::new();
    for lead in &leads.leads {
        for stage in [LeadStage::Warm, LeadStage::Hot] {
            if lead.stage < stage {
                continue;
            }
            let key = (room.to_string(), lead.viewer_id.clone(), stage);
            if queued.contains(&key) {
                continue;
            }
            ops.push(StoreOp::QueueWebhook {
                room: room.to_string(),
                delivery: Box::new(WebhookDelivery {
                    id: format!("lead.stage:{}:{}", lead.viewer_id, stage.as_str()),
                    event: WebhookEvent::LeadStage,
                    subject: lead.viewer_id.clone(),
                    state: stage.as_str().to_string(),
                    occurred_ms: now,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_ms: Some(now),
                    last_attempt_ms: None,
                    last_code: None,
                    last_error: String::new(),
                    delivered_ms: None,
                }),
            });
            new.push(key);
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    store
        .submit(ops)
        .wait()
        .await
        .map_err(|e| crate::error_chain(&e))?;
    queued.extend(new);
    Ok(())
}
