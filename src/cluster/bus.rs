//! The [`Bus`] over NATS: a room's sequenced events published on a subject of their own, and
//! followed there by every node that serves viewers of the room.
//
// A room has one publisher (its owner), so the per-room position is a counter kept by the
// publishing node. NATS core delivers a subject's messages in order from one publisher, but
// drops for a slow subscriber and keeps no history: a follower detects a gap from the events'
// own sequence numbers and reports it (`Followed::Missed`) so that its viewers get an
// explicit snapshot, never a silent gap. A sequence number that goes back means a new
// incarnation of the room (a new owner, a new epoch): reported the same way.

use super::lease::lease_key;
use crate::bus::{Bus, BusError, Followed, Position};
use crate::model::{AudienceClass, SeqEvent, SessionId};
use dashmap::DashMap;
use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events queued for NATS before `publish` refuses with `Full`.
const OUTGOING: usize = 8192;

/// The subject of a room's events.
pub fn events_subject(room: &str) -> String {
    format!("showfloor.events.{}", lease_key(room))
}

/// What crosses on a room's subject: its events, and the audience-class changes of sessions
/// served by other nodes, in the order the owner produced them.
#[derive(serde::Deserialize)]
enum Carried {
    Event(Box<SeqEvent>),
    Class {
        session: SessionId,
        class: AudienceClass,
    },
}

/// [`Carried`] as it is sent: the event by reference (same JSON).
#[derive(serde::Serialize)]
enum Sent<'a> {
    Event(&'a SeqEvent),
    Class {
        session: SessionId,
        class: AudienceClass,
    },
}

/// A bus on a NATS connection.
pub struct NatsBus {
    client: async_nats::Client,
    outgoing: mpsc::Sender<(String, bytes::Bytes)>,
    published: DashMap<String, u64>,
}

impl NatsBus {
    /// A bus on `client`; its publisher task runs until the bus is dropped.
    pub fn new(client: async_nats::Client) -> NatsBus {
        let (outgoing, mut rx) = mpsc::channel::<(String, bytes::Bytes)>(OUTGOING);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some((subject, body)) = rx.recv().await {
                if let Err(e) = publisher.publish(subject, body).await {
                    tracing::warn!(error = %e, "an event could not be published on NATS");
                }
            }
        });
        NatsBus {
            client,
            outgoing,
            published: DashMap::new(),
        }
    }
}

impl NatsBus {
    fn queue(&self, room: &str, carried: &Sent<'_>) -> Result<(), BusError> {
        let body = serde_json::to_vec(carried).expect("events serialise");
        self.outgoing
            .try_send((events_subject(room), body.into()))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => BusError::Full,
                mpsc::error::TrySendError::Closed(_) => {
                    BusError::Unavailable("the publisher task is gone".into())
                }
            })
    }

    /// Follows a room's events, subscribed when this returns: everything the room publishes
    /// after a later request of this connection reaches the owner is delivered. (`follow`
    /// subscribes only when first polled.)
    pub async fn subscribe(
        &self,
        room: &str,
    ) -> Result<BoxStream<'static, Followed>, async_nats::SubscribeError> {
        let messages = self.client.subscribe(events_subject(room)).await?;
        Ok(decode(messages.boxed()))
    }
}

/// A room subject's messages as followed events, gaps and new incarnations reported.
fn decode(messages: BoxStream<'static, async_nats::Message>) -> BoxStream<'static, Followed> {
    messages
        .scan(None::<u64>, |last, msg| {
            let out = match serde_json::from_slice::<Carried>(&msg.payload) {
                Ok(Carried::Event(ev)) => {
                    let gap = match *last {
                        Some(l) if ev.seq == l + 1 => None,
                        Some(l) if ev.seq > l + 1 => Some(ev.seq - l - 1),
                        // Back to an earlier number: a new incarnation of the room.
                        Some(_) => Some(0),
                        None => None,
                    };
                    *last = Some(ev.seq);
                    let ev = Followed::Event(Arc::from(ev));
                    match gap {
                        Some(n) => vec![Followed::Missed(n), ev],
                        None => vec![ev],
                    }
                }
                Ok(Carried::Class { session, class }) => vec![Followed::Class { session, class }],
                Err(e) => {
                    // Cannot happen between nodes of one build; say so rather than skip
                    // silently: the follower resynchronises.
                    tracing::error!(error = %e, "undecodable room event on NATS");
                    vec![Followed::Missed(1)]
                }
            };
            futures_util::future::ready(Some(stream::iter(out)))
        })
        .flatten()
        .boxed()
}

impl Bus for NatsBus {
    fn publish(&self, event: Arc<SeqEvent>) -> Result<Position, BusError> {
        self.queue(&event.room, &Sent::Event(&event))?;
        let mut n = match self.published.get_mut(&event.room) {
            Some(n) => n,
            None => self.published.entry(event.room.clone()).or_insert(0),
        };
        *n += 1;
        Ok(Position(*n))
    }

    fn publish_class(
        &self,
        room: &str,
        session: SessionId,
        class: AudienceClass,
    ) -> Result<(), BusError> {
        self.queue(room, &Sent::Class { session, class })
    }

    fn follow(&self, room: &str) -> BoxStream<'static, Followed> {
        let (client, subject) = (self.client.clone(), events_subject(room));
        stream::once(async move { client.subscribe(subject).await })
            .flat_map(|subscribed| match subscribed {
                Ok(messages) => decode(messages.boxed()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow a room's events");
                    stream::empty().boxed()
                }
            })
            .boxed()
    }
}
