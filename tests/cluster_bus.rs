//! Room events over NATS between two nodes (real nats-server): a follower gets its room's
//! events in order and only its room's; a gap or a new incarnation is reported, never
//! skipped silently; the publisher's positions count per room.

mod common;

use common::nats::NatsServer;
use common::WAIT;
use futures_util::StreamExt;
use showfloor::bus::{Bus, Followed, Position};
use showfloor::cluster::NatsBus;
use showfloor::model::{RoomEvent, SeqEvent};
use std::sync::Arc;
use std::time::Duration;

fn ev(room: &str, seq: u64, text: &str) -> Arc<SeqEvent> {
    Arc::new(SeqEvent {
        room: room.into(),
        seq,
        at_ms: 1_000 + seq as i64,
        event: RoomEvent::Announce { text: text.into() },
    })
}

async fn next(s: &mut futures_util::stream::BoxStream<'static, Followed>) -> Followed {
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("an event within the wait")
        .expect("the stream goes on")
}

/// A follower subscribes when first polled: publishes probes (seq 1) until one arrives, then
/// drains the ones that crossed with it.
async fn subscribed(
    owner: &NatsBus,
    follower: &mut futures_util::stream::BoxStream<'static, Followed>,
    room: &str,
) {
    for _ in 0..50 {
        owner.publish(ev(room, 1, "probe")).unwrap();
        if let Ok(Some(f)) = tokio::time::timeout(Duration::from_millis(100), follower.next()).await
        {
            assert!(matches!(f, Followed::Event(e) if e.seq == 1 && e.room == room));
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(200), follower.next()).await
            {
            }
            return;
        }
    }
    panic!("{room}: the follower never received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_on_another_node_get_their_room_in_order_and_gaps_reported() {
    let nats = NatsServer::start().await;
    let owner = NatsBus::new(nats.jetstream().await.client());
    let edge = NatsBus::new(nats.jetstream().await.client());
    let mut follower = edge.follow("r1");
    // A room id that is not subject-safe follows and publishes all the same.
    let mut odd = edge.follow("r.2 *>");
    subscribed(&owner, &mut follower, "r1").await;
    subscribed(&owner, &mut odd, "r.2 *>").await;

    owner.publish(ev("other", 2, "not yours")).unwrap();
    for seq in 2..=50 {
        owner.publish(ev("r1", seq, &format!("m{seq}"))).unwrap();
    }
    for seq in 2..=50 {
        match next(&mut follower).await {
            Followed::Event(e) => {
                assert_eq!((e.room.as_str(), e.seq), ("r1", seq));
                assert_eq!(
                    e.event,
                    RoomEvent::Announce {
                        text: format!("m{seq}")
                    }
                );
            }
            other => panic!("expected event {seq}, got {other:?}"),
        }
    }
    // A gap (53 after 50) and a new incarnation (1 after 53) are reported before the event.
    owner.publish(ev("r1", 53, "after a gap")).unwrap();
    owner.publish(ev("r1", 1, "new owner")).unwrap();
    assert_eq!(next(&mut follower).await, Followed::Missed(2));
    assert!(matches!(next(&mut follower).await, Followed::Event(e) if e.seq == 53));
    assert_eq!(next(&mut follower).await, Followed::Missed(0));
    assert!(matches!(next(&mut follower).await, Followed::Event(e) if e.seq == 1));

    // Positions count per room, from 1, on the publishing node.
    let odd_before = owner.publish(ev("r.2 *>", 2, "odd")).unwrap();
    assert!(odd_before > Position(1));
    assert!(matches!(next(&mut odd).await, Followed::Event(e) if e.room == "r.2 *>" && e.seq == 2));
    let fresh = NatsBus::new(nats.jetstream().await.client());
    assert_eq!(fresh.publish(ev("r9", 1, "x")).unwrap(), Position(1));
    assert_eq!(fresh.publish(ev("r9", 2, "x")).unwrap(), Position(2));
}
