//! Room leases on JetStream KV against a real nats-server: one owner per room, renewal, loss before anyone else can take over, release, fencing tokens that only grow, server restarts.

mod common;

use common::nats::NatsServer;
use common::WAIT;
use futures_util::future::join_all;
use showfloor::cluster::lease::lease_key;
use showfloor::cluster::{Acquired, ClusterError, Lease, Leases, LossReason};
use std::time::Duration;
use tokio::time::{sleep, timeout, Instant};

async fn node(server: &NatsServer, bucket: &str, id: &str, ttl: Duration) -> Leases {
    Leases::open(server.jetstream().await, bucket, id, ttl)
        .await
        .unwrap_or_else(|e| panic!("open {bucket} as {id}: {e:?}"))
}

#[track_caller]
fn owned(outcome: Acquired) -> Lease {
    match outcome {
        Acquired::Owned(lease) => lease,
        Acquired::HeldBy { node, revision } => {
            panic!("expected to own the room; held by {node} at revision {revision}")
        }
    }
}

/// Tries until the room is taken (its previous key must expire first), within [`WAIT`].
async fn acquire_eventually(leases: &Leases, room: &str) -> Lease {
    let deadline = Instant::now() + WAIT;
    loop {
        match leases.try_acquire(room).await {
            Ok(Acquired::Owned(lease)) => return lease,
            Ok(Acquired::HeldBy { .. }) | Err(_) if Instant::now() < deadline => {
                sleep(Duration::from_millis(50)).await
            }
            other => panic!("{} could not take {room}: {other:?}", leases.node_id()),
        }
    }
}

async fn loss_of(lease: &Lease) -> LossReason {
    timeout(WAIT, lease.lost())
        .await
        .unwrap_or_else(|_| panic!("lease of {} still held after {WAIT:?}", lease.room()))
}

#[tokio::test]
async fn racing_nodes_get_exactly_one_owner_per_room() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(5);
    let a = node(&server, "race", "a", ttl).await;
    let b = node(&server, "race", "b", ttl).await;
    let mut leases = Vec::new();
    for i in 0..25 {
        let room = format!("r{i}");
        // Three attempts from each node at once; a node's own second attempt must lose too.
        let attempts = [&a, &b, &a, &b, &a, &b].map(|n| n.try_acquire(&room));
        let outcomes: Vec<Acquired> = join_all(attempts)
            .await
            .into_iter()
            .map(|o| o.expect("try_acquire"))
            .collect();
        let (won, lost): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .enumerate()
            .partition(|(_, o)| matches!(o, Acquired::Owned(_)));
        assert_eq!(won.len(), 1, "room {room}: {won:?}");
        let (winner_index, Acquired::Owned(lease)) = won.into_iter().next().unwrap() else {
            unreachable!()
        };
        let winner = if winner_index % 2 == 0 { "a" } else { "b" };
        for (_, outcome) in lost {
            let Acquired::HeldBy { node, revision } = outcome else {
                unreachable!()
            };
            assert_eq!(node, winner, "room {room}");
            assert!(revision >= lease.token(), "room {room}");
        }
        assert_eq!(
            a.holder(&room).await.unwrap(),
            b.holder(&room).await.unwrap()
        );
        leases.push(lease);
    }
    let mut tokens: Vec<u64> = leases.iter().map(Lease::token).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 25, "every tenure has its own token");
}

#[tokio::test]
async fn owner_keeps_the_room_across_many_ttls() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(1);
    let a = node(&server, "renew", "a", ttl).await;
    let b = node(&server, "renew", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    sleep(ttl * 4).await;
    assert_eq!(lease.loss(), None);
    let (holder, revision) = b.holder("r1").await.unwrap().expect("key present");
    assert_eq!(holder, "a");
    assert!(revision > lease.token(), "renewals wrote new revisions");
    match b.try_acquire("r1").await.unwrap() {
        Acquired::HeldBy { node, .. } => assert_eq!(node, "a"),
        Acquired::Owned(l) => panic!("b took a renewed room: {l:?}"),
    }
}

#[tokio::test]
async fn owner_that_cannot_renew_steps_down_before_the_key_expires() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(2);
    let a = node(&server, "stall", "a", ttl).await;
    let b = node(&server, "stall", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    a.set_renewals_paused(true);
    assert_eq!(loss_of(&lease).await, LossReason::Unconfirmed);
    // a has given up, yet its key is still there: nobody else could have taken the room.
    assert_eq!(
        b.holder("r1").await.unwrap(),
        Some(("a".to_string(), lease.token()))
    );
    // a's own lost lease blocks a like anyone else's until the key expires.
    match a.try_acquire("r1").await.unwrap() {
        Acquired::HeldBy { node, revision } => {
            assert_eq!((node.as_str(), revision), ("a", lease.token()))
        }
        Acquired::Owned(l) => panic!("a silently regained its lost lease: {l:?}"),
    }
    let taken = acquire_eventually(&b, "r1").await;
    assert!(taken.token() > lease.token());
    assert_eq!(lease.loss(), Some(LossReason::Unconfirmed));
}

#[tokio::test]
async fn released_room_is_taken_at_once_with_a_greater_token() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(5);
    let a = node(&server, "release", "a", ttl).await;
    let b = node(&server, "release", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    let lost = lease.lost();
    let token = lease.token();
    lease.release().await.unwrap();
    assert_eq!(timeout(WAIT, lost).await.unwrap(), LossReason::Released);
    assert_eq!(b.holder("r1").await.unwrap(), None);
    let taken = owned(b.try_acquire("r1").await.unwrap());
    assert!(taken.token() > token);
    // A dropped lease also stops renewing; its key stays until it expires.
    let dropped = owned(a.try_acquire("r2").await.unwrap());
    let lost = dropped.lost();
    drop(dropped);
    assert_eq!(timeout(WAIT, lost).await.unwrap(), LossReason::Released);
}

#[tokio::test]
async fn superseded_owner_learns_at_its_next_renewal() {
    let server = NatsServer::start().await;
    // A long TTL, so that the loss below comes from the revision check, not the deadline.
    let ttl = Duration::from_secs(10);
    let a = node(&server, "supersede", "a", ttl).await;
    let b = node(&server, "supersede", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    a.set_renewals_paused(true);
    // An operator deletes the key (`nats kv del`) while a is stalled; b takes the room.
    let js = server.jetstream().await;
    let raw = js.get_key_value("supersede").await.unwrap();
    raw.delete(lease_key("r1")).await.unwrap();
    let taken = owned(b.try_acquire("r1").await.unwrap());
    assert!(taken.token() > lease.token());
    a.set_renewals_paused(false);
    assert_eq!(loss_of(&lease).await, LossReason::Superseded);
    // a's renewal did not overwrite b's key, and releasing a lost lease leaves it alone.
    lease.release().await.unwrap();
    let (holder, _) = a.holder("r1").await.unwrap().expect("b's key");
    assert_eq!(holder, "b");
    assert_eq!(taken.loss(), None);
}

#[tokio::test]
async fn stopped_owner_that_resumes_after_a_takeover_stays_out() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(1);
    let a = node(&server, "resume", "a", ttl).await;
    let b = node(&server, "resume", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    a.set_renewals_paused(true);
    assert_eq!(loss_of(&lease).await, LossReason::Unconfirmed);
    let taken = acquire_eventually(&b, "r1").await;
    a.set_renewals_paused(false);
    // Several renewal periods: a must not write the key again.
    sleep(ttl * 2).await;
    assert_eq!(taken.loss(), None);
    assert_eq!(a.holder("r1").await.unwrap().unwrap().0, "b");
    match a.try_acquire("r1").await.unwrap() {
        Acquired::HeldBy { node, .. } => assert_eq!(node, "b"),
        Acquired::Owned(l) => panic!("a took the room back from b: {l:?}"),
    }
    assert_eq!(lease.loss(), Some(LossReason::Unconfirmed));
}

#[tokio::test]
async fn lease_survives_a_short_server_restart() {
    let mut server = NatsServer::start().await;
    let ttl = Duration::from_secs(5);
    let a = node(&server, "restart", "a", ttl).await;
    let b = node(&server, "restart", "b", ttl).await;
    let lease = owned(a.try_acquire("r1").await.unwrap());
    // Hold renewals so the key's revision is known across the restart.
    a.set_renewals_paused(true);
    let before = b.holder("r1").await.unwrap().expect("key present");
    assert_eq!(before, ("a".to_string(), lease.token()));
    server.kill();
    server.restart().await;
    // The file store kept the key at the same revision (b's connection reconnects by itself).
    let deadline = Instant::now() + WAIT;
    let after = loop {
        match b.holder("r1").await {
            Ok(h) => break h,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("server not back yet: {e}");
                sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("holder after restart: {e}"),
        }
    };
    assert_eq!(after, Some(before.clone()));
    // Renewals resume over a's reconnected client and the lease is kept.
    a.set_renewals_paused(false);
    let deadline = Instant::now() + WAIT;
    loop {
        let (holder, revision) = b.holder("r1").await.unwrap().expect("key present");
        assert_eq!(holder, "a");
        if revision > before.1 {
            break;
        }
        assert!(Instant::now() < deadline, "no renewal after the restart");
        sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lease.loss(), None);
    assert_eq!(lease.token(), before.1);
}

#[tokio::test]
async fn owner_gives_up_during_a_long_outage_and_tokens_still_grow() {
    let mut server = NatsServer::start().await;
    let ttl = Duration::from_secs(1);
    let a = node(&server, "outage", "a", ttl).await;
    let b = node(&server, "outage", "b", ttl).await;
    // Some history first, so a sequence that restarted from 1 would show.
    for i in 0..5 {
        owned(b.try_acquire(&format!("warm{i}")).await.unwrap())
            .release()
            .await
            .unwrap();
    }
    let lease = owned(a.try_acquire("r1").await.unwrap());
    server.stop();
    // Nothing can be confirmed while the server is down: a steps down by its own clock.
    assert_eq!(loss_of(&lease).await, LossReason::Unconfirmed);
    // Down for longer than the TTL, so every key in the bucket is past max_age at restart.
    sleep(ttl * 2).await;
    server.restart().await;
    // The stream is empty now (the server expires old messages as it recovers), yet it keeps
    // its last sequence, so the next token is still greater.
    let mut stream = server
        .jetstream()
        .await
        .get_stream("KV_outage")
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while stream.info().await.unwrap().state.messages > 0 {
        assert!(
            Instant::now() < deadline,
            "keys never expired after the restart"
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert!(stream.cached_info().state.last_sequence >= lease.token());
    let taken = acquire_eventually(&b, "r1").await;
    assert!(
        taken.token() > lease.token(),
        "token {} after the restart, {} before",
        taken.token(),
        lease.token()
    );
}

#[tokio::test]
async fn expired_deleted_and_purged_keys_can_be_taken_again() {
    let server = NatsServer::start().await;
    let ttl = Duration::from_secs(1);
    let a = node(&server, "free", "a", ttl).await;
    let js = server.jetstream().await;
    let raw = js.get_key_value("free").await.unwrap();
    let key = lease_key("r1");

    // async-nats's own `create`: revision 0 fails on a delete or purge marker, so it reads the
    // marker's revision and writes expecting that.
    let r1 = raw.create(&key, "x".into()).await.unwrap();
    assert!(raw.create(&key, "x".into()).await.is_err());
    raw.delete(&key).await.unwrap();
    let r2 = raw.create(&key, "x".into()).await.unwrap();
    raw.purge(&key).await.unwrap();
    let r3 = raw.create(&key, "x".into()).await.unwrap();
    assert!(r1 < r2 && r2 < r3);
    // After max_age the key is gone entirely (no marker), and plain revision 0 works again.
    let deadline = Instant::now() + WAIT;
    while raw.entry(key.as_str()).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "key never expired");
        sleep(Duration::from_millis(50)).await;
    }
    let r4 = raw.create(&key, "x".into()).await.unwrap();
    assert!(r4 > r3);

    // The same through leases: a purge marker, then expiry.
    raw.purge(&key).await.unwrap();
    let lease = owned(a.try_acquire("r1").await.unwrap());
    assert!(lease.token() > r4);
    drop(lease);
    let again = acquire_eventually(&a, "r1").await;
    assert_eq!(a.holder("r1").await.unwrap().unwrap().0, "a");
    assert!(again.token() > r4);
}

#[tokio::test]
async fn nodes_must_agree_on_the_ttl() {
    let server = NatsServer::start().await;
    let _a = node(&server, "ttl", "a", Duration::from_secs(5)).await;
    let _b = node(&server, "ttl", "b", Duration::from_secs(5)).await;
    let err = Leases::open(server.jetstream().await, "ttl", "c", Duration::from_secs(2))
        .await
        .expect_err("a different TTL is refused");
    match err {
        ClusterError::TtlMismatch {
            found, expected, ..
        } => {
            assert_eq!(found, Duration::from_secs(5));
            assert_eq!(expected, Duration::from_secs(2));
        }
        other => panic!("expected TtlMismatch, got {other:?}"),
    }
}
