//! Where a room's sequenced events go beyond their owner: in-process by default; a NATS
//! implementation fits the same trait for clusters.
//!
//! What crosses between nodes is the [`SeqEvent`] itself — the room's plain event with its
//! sequence number, which may carry prices — never rendered frames. The node that serves a
//! viewer renders each event once per audience class for its own viewers (so a public viewer
//! on any node never receives a price) and keeps its own resume window.

use crate::model::{AudienceClass, SeqEvent, SessionId};
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

/// Followers may lag this many events behind before they are told they missed some.
const FOLLOWER_BUFFER: usize = 1024;

/// Where a publication landed in its room's stream: publications of one room are numbered
/// from 1 in the order the bus accepted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(pub u64);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot take more right now (its outgoing buffer is full); the event was not
    /// published.
    #[error("the bus is full; the event was not published")]
    Full,
    /// The bus is not connected.
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// What a follower receives: the next event, a change of one session's audience class (in
/// order with the events, so the events after it render for the new class), or word that it
/// fell behind and missed some (it must then resynchronise: an explicit snapshot for its
/// viewers, never a silent gap).
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    Event(Arc<SeqEvent>),
    Class {
        session: SessionId,
        class: AudienceClass,
    },
    Missed(u64),
}

pub trait Bus: Send + Sync + 'static {
    /// Publishes a sequenced event of a room to every follower of that room. Never waits:
    /// an implementation queues internally and refuses with [`BusError::Full`] when it
    /// cannot.
    fn publish(&self, event: Arc<SeqEvent>) -> Result<Position, BusError>;

    /// Tells the followers of `room` that a session they serve changed audience class: the
    /// events published after this render for the new class. In order with `publish`.
    fn publish_class(
        &self,
        room: &str,
        session: SessionId,
        class: AudienceClass,
    ) -> Result<(), BusError>;

    /// Follows a room's events from now on, in publication order.
    fn follow(&self, room: &str) -> BoxStream<'static, Followed>;
}

struct Channel {
    tx: broadcast::Sender<Followed>,
    published: u64,
}

impl Channel {
    fn new() -> Channel {
        Channel {
            tx: broadcast::channel(FOLLOWER_BUFFER).0,
            published: 0,
        }
    }
}

/// One process: a broadcast channel per followed room.
#[derive(Default)]
pub struct LocalBus {
    rooms: DashMap<String, Channel>,
}

impl LocalBus {
    pub fn new() -> LocalBus {
        LocalBus::default()
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Arc<SeqEvent>) -> Result<Position, BusError> {
        // The room's entry exists after its first event: no key copy on the hot path.
        let mut ch = match self.rooms.get_mut(&event.room) {
            Some(ch) => ch,
            None => self
                .rooms
                .entry(event.room.clone())
                .or_insert_with(Channel::new),
        };
        ch.published += 1;
        // No follower: nothing to deliver (a room nobody follows costs a counter).
        let _ = ch.tx.send(Followed::Event(event));
        Ok(Position(ch.published))
    }

    fn publish_class(
        &self,
        room: &str,
        session: SessionId,
        class: AudienceClass,
    ) -> Result<(), BusError> {
        if let Some(ch) = self.rooms.get(room) {
            let _ = ch.tx.send(Followed::Class { session, class });
        }
        Ok(())
    }

    fn follow(&self, room: &str) -> BoxStream<'static, Followed> {
        let rx = self
            .rooms
            .entry(room.to_string())
            .or_insert_with(Channel::new)
            .tx
            .subscribe();
        BroadcastStream::new(rx)
            .map(|r| match r {
                Ok(followed) => followed,
                Err(BroadcastStreamRecvError::Lagged(n)) => Followed::Missed(n),
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RoomEvent;

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
        bus.publish(ev("b", 1)).unwrap();
        assert_eq!(bus.publish(ev("a", 1)).unwrap(), Position(1));
        assert_eq!(bus.publish(ev("a", 2)).unwrap(), Position(2));
        let Some(Followed::Event(first)) = a.next().await else {
            panic!("an event")
        };
        assert_eq!(first.seq, 1);
        let Some(Followed::Event(second)) = a.next().await else {
            panic!("an event")
        };
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
            bus.publish(ev("a", i)).unwrap();
        }
        assert_eq!(a.next().await, Some(Followed::Missed(10)));
    }
}
