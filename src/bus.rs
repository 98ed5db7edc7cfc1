//! Where room events go beyond their owner task: in-process by default, NATS for clusters later.

use crate::room::event::SeqEvent;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Followers may lag this many events behind before they are told they missed some.
const FOLLOWER_BUFFER: usize = 1024;

pub trait Bus: Send + Sync + 'static {
    /// Publish a sequenced event of a room to everyone following that room. Never blocks.
    fn publish(&self, event: Arc<SeqEvent>);

    /// Follow a room's events. A follower that falls more than a buffer behind receives
    /// `RecvError::Lagged` (and so knows it must resynchronise) instead of slowing the room.
    fn follow(&self, room: &str) -> broadcast::Receiver<Arc<SeqEvent>>;
}

/// One process: a broadcast channel per followed room.
#[derive(Default)]
pub struct LocalBus {
    rooms: DashMap<String, broadcast::Sender<Arc<SeqEvent>>>,
}

impl LocalBus {
    pub fn new() -> LocalBus {
        LocalBus::default()
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Arc<SeqEvent>) {
        let mut drop_room = false;
        if let Some(tx) = self.rooms.get(&event.room) {
            // No follower left: forget the channel.
            drop_room = tx.send(event.clone()).is_err();
        }
        if drop_room {
            self.rooms
                .remove_if(&event.room, |_, tx| tx.receiver_count() == 0);
        }
    }

    fn follow(&self, room: &str) -> broadcast::Receiver<Arc<SeqEvent>> {
        self.rooms
            .entry(room.to_string())
            .or_insert_with(|| broadcast::channel(FOLLOWER_BUFFER).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::event::RoomEvent;

    fn ev(room: &str, seq: u64) -> Arc<SeqEvent> {
        Arc::new(SeqEvent {
            room: room.into(),
            seq,
            at_ms: 0,
            event: RoomEvent::Announce { text: "x".into() },
        })
    }

    #[tokio::test]
    async fn followers_get_their_room_in_order_and_events_cross_as_json() {
        let bus = LocalBus::new();
        let mut a = bus.follow("a");
        bus.publish(ev("b", 1));
        bus.publish(ev("a", 1));
        bus.publish(ev("a", 2));
        assert_eq!(a.recv().await.unwrap().seq, 1);
        let second = a.recv().await.unwrap();
        assert_eq!(second.seq, 2);
        let wire = serde_json::to_string(&*second).unwrap();
        let back: SeqEvent = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, *second);
    }

    #[tokio::test]
    async fn a_lagging_follower_is_told_not_waited_for() {
        let bus = LocalBus::new();
        let mut a = bus.follow("a");
        for i in 0..(FOLLOWER_BUFFER as u64 + 10) {
            bus.publish(ev("a", i));
        }
        assert!(matches!(
            a.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }
}
