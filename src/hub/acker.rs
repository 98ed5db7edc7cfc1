//! A room's acknowledgements: sent in submission order as their store writes become durable,
//! or withdrawn (with the room's state undone) when a write fails.

use super::owner::RoomMsg;
use super::{deliver_now, HostReplyTx};
use crate::metrics::Metrics;
use crate::model::{now_ms, HostReply};
use crate::room::core::Undo;
use crate::room::event::envelope;
use crate::rooms::{RoomsError, SessionSink};
use crate::store::{Durable, Violation};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

/// A frame to send once the writes before it are durable.
pub(super) struct Deferred {
    pub sink: SessionSink,
    pub frame: Bytes,
    pub undo: Option<Undo>,
}

/// One store submission of a room and what waits for it.
pub(super) struct AckBatch {
    pub durable: Durable,
    pub sends: Vec<Deferred>,
    pub replies: Vec<(HostReplyTx, HostReply)>,
    /// One of the room's slots for writes in flight, given back once this batch lands.
    pub slot: OwnedSemaphorePermit,
}

/// Sends a room's acknowledgements in submission order as their writes become durable. The
/// store commits submissions in order, so waiting on each in turn never delays a later one
/// that is already durable by more than the earlier one's commit.
pub(super) async fn acker(
    mut rx: mpsc::UnboundedReceiver<AckBatch>,
    room: mpsc::WeakSender<RoomMsg>,
    metrics: Arc<Metrics>,
    lost: CancellationToken,
) {
    while let Some(batch) = rx.recv().await {
        let AckBatch {
            durable,
            sends,
            replies,
            slot,
        } = batch;
        match durable.wait().await {
            Ok(()) => {
                for d in sends {
                    deliver_now(&d.sink, d.frame, &metrics);
                }
                for (reply, r) in replies {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                if e.violation() == Some(Violation::Fenced) {
                    // A newer owner has written: this node must stop running the room.
                    lost.cancel();
                }
                tracing::error!(error = %e, "store write failed; acknowledgements withdrawn");
                let failed = envelope(
                    "error",
                    0,
                    now_ms(),
                    &serde_json::json!({
                        "code": "store_failed",
                        "message": "the server could not record this; nothing was taken, try again",
                    }),
                );
                for d in sends {
                    deliver_now(&d.sink, failed.clone(), &metrics);
                    if let (Some(undo), Some(tx)) = (d.undo, room.upgrade()) {
                        let _ = tx.send(RoomMsg::Undo { undo }).await;
                    }
                }
                let e = Arc::new(e);
                for (reply, _) in replies {
                    let _ = reply.send(Err(RoomsError::Store(e.clone())));
                }
            }
        }
        drop(slot);
    }
}
