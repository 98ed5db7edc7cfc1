//! Loading a room on first use, running its owner task, and restarting it from the store if
//! it panics: its viewers, media sessions and watchers are re-attached and get a fresh
//! snapshot, so a bug in one room never leaves it answering "shutting down" forever.

use super::acker;
use super::owner::{RoomMsg, RoomOwner, Stopped};
use super::{Attached, RoomHandle, Shared, MAILBOX};
use crate::model::{now_ms, EndReason, Refusal, RoomState};
use crate::room::core::Room;
use crate::rooms::ownership::Tenure;
use crate::rooms::RoomsError;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::Instrument;

/// Chat messages reloaded per room (welcome snapshot, deletable by the host).
const RECENT_CHAT_ON_LOAD: u32 = 200;
/// A room that panics this often within `RESTART_WINDOW` is left down for that long.
const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// A fresh epoch for each incarnation of a room: its sequence numbers start again at 1, so
/// they must not be confused with an earlier incarnation's (in this process or another).
fn new_epoch() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:x}{:x}", now_ms(), N.fetch_add(1, Ordering::Relaxed))
}

fn store_err(e: crate::store::StoreError) -> RoomsError {
    RoomsError::Store(Arc::new(e))
}

/// Reads a room and what it keeps in memory (recent chat, watch time) from the store.
pub(super) async fn load(shared: &Shared, id: &str) -> Result<Option<Room>, RoomsError> {
    let Some(loaded) = shared.store.load_room(id).await.map_err(store_err)? else {
        return Ok(None);
    };
    let Some(mut room) = Room::restore(loaded, new_epoch(), shared.config.heartbeat_ms, now_ms())
    else {
        return Ok(None);
    };
    let chat = shared
        .store
        .recent_chat(id, RECENT_CHAT_ON_LOAD)
        .await
        .map_err(store_err)?;
    room.restore_chat(chat);
    if room.record().state != RoomState::Ended {
        let watched = shared.store.watch_time(id).await.map_err(store_err)?;
        room.restore_watch_time(watched);
    }
    Ok(Some(room))
}

/// Makes a room available: registers its handle and starts its supervised owner, which runs
/// it for as long as `tenure` lasts.
pub(super) fn start(shared: &Arc<Shared>, room: Room, tenure: Tenure) -> RoomHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let handle = RoomHandle {
        id: room.id().to_string(),
        token_key: room.record().token_key.clone(),
        tx,
        attached: Arc::new(Attached::default()),
    };
    shared.rooms.insert(handle.id.clone(), handle.clone());
    shared.metrics.rooms.set(shared.rooms.len() as i64);
    let span = tracing::info_span!("room", room = %handle.id);
    shared
        .tasks
        .spawn(supervise(shared.clone(), handle.clone(), room, rx, tenure).instrument(span));
    handle
}

/// Runs a room's owner; after a panic, waits for the writes in flight, reloads the room from
/// the store, re-attaches everyone, and runs it again.
async fn supervise(
    shared: Arc<Shared>,
    mut handle: RoomHandle,
    mut room: Room,
    mut rx: mpsc::Receiver<RoomMsg>,
    tenure: Tenure,
) {
    let mut restarts: Vec<Instant> = Vec::new();
    loop {
        let (acks, acks_rx) = mpsc::unbounded_channel();
        // Bounded by the slots: at most WRITES_IN_FLIGHT batches are ever queued there.
        let in_flight = Arc::new(Semaphore::new(super::WRITES_IN_FLIGHT));
        let acker = tokio::spawn(
            acker::acker(
                acks_rx,
                handle.tx.downgrade(),
                shared.metrics.clone(),
                tenure.lost.clone(),
            )
            .in_current_span(),
        );
        let retire = {
            let (shared, handle) = (shared.clone(), handle.clone());
            Box::new(move || shared.retire(&handle)) as Box<dyn FnOnce() + Send>
        };
        room.set_watched(false);
        let owner = RoomOwner::new(
            room,
            shared.store.clone(),
            shared.bus.clone(),
            shared.metrics.clone(),
            acks,
            in_flight,
            shared.config.ended_room_grace,
            retire,
            tenure.fence,
            tenure.lost.clone(),
        );
        let stop = shared.stop.clone();
        let outcome = AssertUnwindSafe(owner.run(rx, stop)).catch_unwind().await;
        // Every acknowledgement in flight is sent (or withdrawn) before anything else: a
        // reloaded room must see every write its predecessor made durable.
        let _ = acker.await;
        match outcome {
            Ok(Stopped::Drained | Stopped::Retired | Stopped::Orphaned | Stopped::SteppedDown) => {
                break
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                tracing::error!(room = %handle.id, panic = %what, "room task panicked; reloading it from the store");
                shared.metrics.room_restarts.inc();
                let now = Instant::now();
                restarts.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
                restarts.push(now);
                if restarts.len() > MAX_RESTARTS {
                    tracing::error!(room = %handle.id, "room keeps panicking; left down");
                    shared.fail(&handle, now + RESTART_WINDOW);
                    tenure.release().await;
                    return;
                }
                let reloaded = match load(&shared, &handle.id).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        tracing::error!(room = %handle.id, "room vanished from the store");
                        shared.fail(&handle, now + RESTART_WINDOW);
                        tenure.release().await;
                        return;
                    }
                    Err(e) => {
                        tracing::error!(room = %handle.id, error = %e, "cannot reload the room");
                        shared.fail(&handle, now + RESTART_WINDOW);
                        tenure.release().await;
                        return;
                    }
                };
                room = reloaded;
                // A new mailbox: what was queued in the old one died with the panic (its
                // callers hear "unavailable" and may try again).
                let (tx, new_rx) = mpsc::channel(MAILBOX);
                rx = new_rx;
                handle = RoomHandle {
                    tx,
                    ..handle.clone()
                };
                shared.rooms.insert(handle.id.clone(), handle.clone());
                // Answered by the new owner, which starts at the top of the loop.
                let h = handle.clone();
                tokio::spawn(async move { reattach(&h).await }.in_current_span());
            }
        }
    }
    shared.metrics.rooms.set(shared.rooms.len() as i64);
    // Retired, drained or stepped down: another node may take the room at once.
    tenure.release().await;
}

/// After a restart: everyone who was attached to the room is attached again. Viewers join
/// without resume, so they get a fresh snapshot (`welcome` with `resumed: false`): the new
/// incarnation's epoch differs, nothing they hold can be trusted.
async fn reattach(handle: &RoomHandle) {
    // Sessions other nodes serve reconnect: their nodes follow sequence numbers, which the
    // new incarnation starts afresh.
    for e in handle.attached.remote.iter() {
        e.value().close(
            Refusal::new(EndReason::RoomUnavailable, "the room restarted; reconnect"),
            true,
        );
    }
    handle.attached.remote.clear();
    let sessions: Vec<_> = handle
        .attached
        .sessions
        .iter()
        .map(|e| (*e.key(), e.value().clone()))
        .collect();
    for (session, (mut req, sink)) in sessions {
        req.resume = None;
        let (reply, rx) = oneshot::channel();
        let msg = RoomMsg::Join {
            session,
            req,
            sink: sink.clone(),
            reply,
        };
        if handle.tx.send(msg).await.is_err() {
            return;
        }
        if let Ok(Err(why)) = rx.await {
            handle.attached.sessions.remove(&session);
            sink.close(why, true);
        }
    }
    let media: Vec<_> = handle
        .attached
        .media
        .iter()
        .map(|e| e.value().clone())
        .collect();
    for m in media {
        let (reply, _) = oneshot::channel();
        let _ = handle
            .tx
            .send(RoomMsg::AttachMedia { media: m, reply })
            .await;
    }
    let followers: Vec<_> = handle.attached.followers.lock().clone();
    for tx in followers.into_iter().filter(|f| !f.is_closed()) {
        let _ = handle.tx.send(RoomMsg::FollowMedia { tx }).await;
    }
    let watchers: Vec<_> = handle.attached.watchers.lock().clone();
    for tx in watchers.into_iter().filter(|w| !w.is_closed()) {
        let _ = handle.tx.send(RoomMsg::Watch { tx }).await;
    }
}

/// What a caller of a room that is left down hears.
pub(super) fn down(id: &str) -> Refusal {
    Refusal::new(
        EndReason::RoomUnavailable,
        format!("room {id} failed and is being kept down for a minute; try again later"),
    )
}
