//! Media across nodes (issue 14, failure tests 8 and 5): presenters publish and viewers watch
//! on any node; each node gets the feeds published elsewhere relayed from their origin. With
//! brand A published on the room's node A and brand B on B, viewers on A, B and C stay
//! continuous across switches (one SSRC, no sequence jump), get a key frame after every switch
//! and never reconnect; a kick made on A ends a WHEP session on C; the origin stops relaying to
//! a node without viewers; a viewer whose node goes away plays from a key frame on another.
//! Timings are printed, never asserted.

mod common;

use common::cluster::{two_nodes_with_a_show, TwoNodes};
use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{authed, WAIT};
use showfloor::pb;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const VIEWERS: usize = 6;
const SWITCHES: usize = 6;

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < WAIT, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A WHEP viewer on the node at `at`, connected and getting video.
async fn watching(at: std::net::SocketAddr, room: &str, token: &str) -> WhepViewer {
    let mut v = WhepViewer::connect(at, room, token).await.unwrap();
    v.wait_connected().await;
    until("the viewer gets video", || {
        v.received.video_count.load(Ordering::SeqCst) >= 10
    })
    .await;
    v
}

/// Two nodes with a show that A runs; presenters publish on A.
struct Setup {
    nodes: TwoNodes,
    c: common::Control,
    room: String,
}

async fn setup() -> Setup {
    let nodes = two_nodes_with_a_show().await;
    let c = nodes.a.server.control().await;
    let room = nodes.show.room.clone();
    Setup { nodes, c, room }
}

impl Setup {
    /// A presenter of `brand` publishing on A.
    async fn publish(&mut self, brand: &str) -> WhipPublisher {
        let at = self.nodes.a.server.app().http_addr;
        self.publish_at(at, brand).await
    }

    async fn publish_at(&mut self, at: std::net::SocketAddr, brand: &str) -> WhipPublisher {
        let token = self.c.presenter_token(&self.room, brand).await;
        WhipPublisher::connect(at, &self.room, brand, &token)
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_stays_seamless_on_every_node_with_brands_published_on_two_nodes() {
    common::raise_fd_limit();
    let mut s = setup().await;
    let show = s.nodes.show.clone();
    let third = common::cluster::node(&s.nodes.nats, &s.nodes.db, "node-c").await;
    // Brand A is published on the room's node A, brand B on B, which does not run the room.
    let pub_a = s.publish(&show.brand_a).await;
    let b_http = s.nodes.b.server.app().http_addr;
    let pub_b = s.publish_at(b_http, &show.brand_b).await;
    let Setup { nodes, mut c, room } = s;
    let (a, b) = (&nodes.a, &nodes.b);
    let servers = [&a.server, &b.server, &third.server];

    // Two viewers on each node; viewer i is on node i % 3.
    let mut viewers = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..VIEWERS {
        let token = c.token(&room, &format!("v{i}")).await;
        tokens.push(token.clone());
        let at = servers[i % 3].app().http_addr;
        let v = WhepViewer::connect(at, &room, &token)
            .await
            .unwrap_or_else(|e| panic!("viewer {i} plays on node {}: {e:?}", i % 3));
        viewers.push(v);
    }
    for v in viewers.iter_mut() {
        v.wait_connected().await;
    }
    for (i, v) in viewers.iter().enumerate() {
        until(&format!("viewer {i} gets video"), || {
            v.received.video_count.load(Ordering::SeqCst) >= 10
        })
        .await;
    }
    let sessions: Vec<usize> = servers
        .iter()
        .map(|s| s.app().media.session_count())
        .collect();
    assert_eq!(
        sessions,
        [3, 3, 2],
        "a presenter on A and on B, two viewers on each node"
    );

    let mut gaps_ms = Vec::new();
    let mut on = &show.brand_a;
    for round in 0..SWITCHES {
        on = if on == &show.brand_a {
            &show.brand_b
        } else {
            &show.brand_a
        };
        // Half the switches come from B: host commands reach the owner from any node.
        let t = Instant::now();
        if round % 2 == 0 {
            c.switch(&room, on).await;
        } else {
            b.server.control().await.switch(&room, on).await;
        }
        for (i, v) in viewers.iter().enumerate() {
            let mut at = None;
            until(
                &format!("viewer {i} gets a key frame after switch {round}"),
                || {
                    at = v
                        .received
                        .video
                        .lock()
                        .iter()
                        .find(|s| s.at >= t && s.keyframe)
                        .map(|s| s.at);
                    at.is_some()
                },
            )
            .await;
            gaps_ms.push(at.unwrap().duration_since(t).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let after: Vec<usize> = servers
        .iter()
        .map(|s| s.app().media.session_count())
        .collect();
    assert_eq!(after, sessions, "nobody reconnected");
    for (i, v) in viewers.iter().enumerate() {
        assert!(
            !v.broke.load(Ordering::SeqCst),
            "viewer {i}'s connection broke"
        );
        v.received
            .assert_continuous(&format!("viewer {i} on node {}", i % 3));
    }
    gaps_ms.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!(
        "switch gap (SwitchBrand → first key frame at a viewer, on any node), {} samples: \
         median {:.1} ms, max {:.1} ms; PLIs to the publishers on A / B: {} / {}",
        gaps_ms.len(),
        gaps_ms[gaps_ms.len() / 2],
        gaps_ms[gaps_ms.len() - 1],
        pub_a.plis.load(Ordering::SeqCst),
        pub_b.plis.load(Ordering::SeqCst),
    );

    // A kick made on A ends the kicked viewer's WHEP session on C; the others play on.
    let kicked = viewers.remove(2);
    c.client
        .kick_viewer(authed(pb::KickViewerRequest {
            room_id: room.clone(),
            viewer_id: "v2".into(),
            reason: "spam".into(),
        }))
        .await
        .unwrap();
    until("the kicked viewer's session on C ends", || {
        third.server.app().media.session_count() == 1
    })
    .await;
    let (status, body) = WhepViewer::connect(third.server.app().http_addr, &room, &tokens[2])
        .await
        .err()
        .expect("a kicked viewer cannot play again on C");
    assert_eq!(status, 403, "{body}");
    let before = viewers[0].received.video_count.load(Ordering::SeqCst);
    until("the others still get video", || {
        viewers[0].received.video_count.load(Ordering::SeqCst) > before + 10
    })
    .await;

    let _ = kicked.pc.close().await;
    for v in viewers {
        assert_eq!(v.leave().await, 200);
    }
    pub_a.stop().await;
    pub_b.stop().await;
}

/// The edge asks the origin for the room's feeds only while it has viewers: once the last one
/// leaves, the origin stops sending (its relay counter stops growing) within the linger time
/// and the subscription's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_stops_relaying_when_the_edge_has_no_viewer_left() {
    let mut s = setup().await;
    let brand = s.nodes.show.brand_a.clone();
    let publisher = s.publish(&brand).await;
    let Setup { nodes, mut c, room } = s;
    let (a, b) = (&nodes.a, &nodes.b);
    let b_http = b.server.app().http_addr;
    let token = c.token(&room, "only").await;
    let v = watching(b_http, &room, &token).await;
    let relayed = || a.server.app().media.relayed_packets();
    assert!(relayed() > 0, "A relays to B");
    assert_eq!(v.leave().await, 200);

    // Linger (5 s) + the subscription's time to live (3 s), with room to spare.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = relayed();
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(2) {
        assert!(
            Instant::now() < deadline,
            "A still relays to B with no viewer there"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = relayed();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    publisher.stop().await;
}

/// The relay ports taken from outside: junk, datagrams in the relay's own layout under
/// random subscription ids, and the plain (unsealed) layout of earlier builds, sent to both
/// nodes' relay sockets during a show. Nothing of it is taken (every relay datagram must open
/// with its subscription's key): the viewer on B plays on, continuous, and A keeps relaying
/// to B (a forged `HELLO` cannot move the flow elsewhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_junk_datagrams_at_the_relay_ports_change_nothing() {
    let mut s = setup().await;
    let brand = s.nodes.show.brand_a.clone();
    let publisher = s.publish(&brand).await;
    let token = s.c.token(&s.room, "steady").await;
    let v = watching(s.nodes.b.server.app().http_addr, &s.room, &token).await;
    let (a, b) = (&s.nodes.a.server, &s.nodes.b.server);
    let targets = [
        a.app().media.relay_addr().unwrap(),
        b.app().media.relay_addr().unwrap(),
    ];
    let received_on_b = || b.app().media.stats.relay_received.get();
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let video_before = v.received.video_count.load(Ordering::SeqCst);
    for i in 0..3000u32 {
        let len = (i as usize * 37) % 1400;
        let mut d: Vec<u8> = (0..len).map(|_| rand::random()).collect();
        if let Some(first) = d.first_mut() {
            *first = [0xC1, 0xC2, 0xC3, rand::random()][i as usize % 4];
        }
        if i % 10 == 0 {
            // The unsealed layout: `0xC1 | sub | feed | seq | ts | flags | payload`.
            d = vec![0xC1];
            d.extend_from_slice(&rand::random::<u64>().to_be_bytes());
            d.extend_from_slice(&1u64.to_be_bytes());
            d.extend_from_slice(&[0, 1, 0, 0, 0, 1, 1]);
            d.extend_from_slice(&[0x90; 200]);
        }
        let _ = junk.send_to(&d, targets[i as usize % 2]).await;
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let relayed_then = received_on_b();
    until("B keeps receiving A's packets", || {
        received_on_b() > relayed_then + 100
    })
    .await;
    until("the viewer on B plays on", || {
        v.received.video_count.load(Ordering::SeqCst) > video_before + 60
    })
    .await;
    v.received.assert_continuous("the viewer on B");
    assert!(!v.broke.load(Ordering::SeqCst));
    assert_eq!(v.leave().await, 200);
    publisher.stop().await;
}

/// The relay leg loses packets (every 20th datagram from A to B dropped on the way, as a
/// lossy path between cities would): B asks A for the missing ones again and its viewer still
/// gets a continuous stream (at most 1 % of the numbers missing, where the path alone loses 5 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_lost_between_nodes_are_sent_again() {
    let nats = common::nats::NatsServer::start().await;
    let db = showfloor::store::postgres::scratch::fresh_database();
    // A's relay socket on a known port, reached by B through the lossy path.
    let a_relay: std::net::SocketAddr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let path = common::udp_relay::lossy(
        "127.0.0.1:0".parse().unwrap(),
        a_relay,
        Default::default(),
        20,
    )
    .await;
    let a = common::cluster::node_with(&nats, &db, "node-a", |c| {
        c.relay_udp_addr = a_relay;
        c.relay_advertise = Some(path.to_string());
    })
    .await;
    let b = common::cluster::node(&nats, &db, "node-b").await;
    let mut c = a.server.control().await;
    let show = common::setup_show(&mut c).await;
    let token = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher =
        WhipPublisher::connect(a.server.app().http_addr, &show.room, &show.brand_a, &token)
            .await
            .unwrap();
    let token = c.token(&show.room, "far-away").await;
    let v = watching(b.server.app().http_addr, &show.room, &token).await;
    until("two hundred video packets on B", || {
        v.received.video_count.load(Ordering::SeqCst) >= 200
    })
    .await;
    v.received.assert_continuous("the viewer on B");
    assert!(
        a.server.app().media.stats.relay_resent.get() > 0,
        "A resent what the path lost"
    );
    assert_eq!(v.leave().await, 200);
    publisher.stop().await;
}

/// Issue 14, failure test 5 (media): an edge node goes away; its WHEP viewer posts again to
/// another edge and gets video there starting with a key frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_whose_edge_goes_away_plays_from_a_key_frame_on_another_edge() {
    let mut s = setup().await;
    let brand = s.nodes.show.brand_a.clone();
    let publisher = s.publish(&brand).await;
    let third = common::cluster::node(&s.nodes.nats, &s.nodes.db, "node-c").await;
    let token = s.c.token(&s.room, "wanderer").await;
    let v = watching(s.nodes.b.server.app().http_addr, &s.room, &token).await;

    s.nodes.b.server.stop().await;
    let _ = v.pc.close().await;
    let mut again = WhepViewer::connect(third.server.app().http_addr, &s.room, &token)
        .await
        .expect("the viewer posts again to C");
    again.wait_connected().await;
    until("the viewer gets video on C", || {
        again.received.video_count.load(Ordering::SeqCst) >= 10
    })
    .await;
    let first = again.received.video.lock()[0];
    assert!(first.keyframe, "video on C starts with a key frame");
    assert_eq!(third.server.app().media.session_count(), 1);
    assert_eq!(again.leave().await, 200);
    publisher.stop().await;
}

/// Closing a room ends its media on every node, and no node takes the ended room again to
/// follow its media (the node that served its viewers stops following it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_room_ends_media_on_every_node_and_no_node_takes_it_again() {
    let nats = common::nats::NatsServer::start().await;
    let db = showfloor::store::postgres::scratch::fresh_database();
    let quick = |c: &mut showfloor::config::Config| c.ended_room_grace_secs = 1;
    let a = common::cluster::node_with(&nats, &db, "node-a", quick).await;
    let b = common::cluster::node_with(&nats, &db, "node-b", quick).await;
    let mut c = a.server.control().await;
    let show = common::setup_show(&mut c).await;
    let room = show.room.clone();
    let token = c.presenter_token(&room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(a.server.app().http_addr, &room, &show.brand_a, &token)
        .await
        .unwrap();
    let token = c.token(&room, "viewer").await;
    let v = watching(b.server.app().http_addr, &room, &token).await;

    c.client
        .close_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
    until("the media sessions end on both nodes", || {
        a.server.app().media.session_count() == 0 && b.server.app().media.session_count() == 0
    })
    .await;
    until("A unloads the ended room", || {
        !a.server.app().hub.runs(&room)
    })
    .await;
    // Several syncs' worth of time: B, which served the room's viewer, does not take it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!b.server.app().hub.runs(&room), "B took the ended room");
    assert!(
        !a.server.app().hub.runs(&room),
        "A took the ended room again"
    );
    let _ = v.pc.close().await;
    let _ = publisher.pc.close().await;
}

/// A brand's presenter who publishes again on another node replaces the older publisher, as on
/// one node: the older session is ended on its node, and viewers keep playing the brand,
/// now from the newer publisher, without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_publisher_of_a_brand_on_another_node_replaces_the_older() {
    let mut s = setup().await;
    let show = s.nodes.show.clone();
    let third = common::cluster::node(&s.nodes.nats, &s.nodes.db, "node-c").await;
    s.c.switch(&s.room, &show.brand_b).await;
    let b_http = s.nodes.b.server.app().http_addr;
    let older = s.publish_at(b_http, &show.brand_b).await;
    let token = s.c.token(&s.room, "watcher").await;
    let v = watching(s.nodes.a.server.app().http_addr, &s.room, &token).await;
    assert_eq!(s.nodes.b.server.app().media.session_count(), 1);

    let newer = s
        .publish_at(third.server.app().http_addr, &show.brand_b)
        .await;
    until("the older publisher's session on B ends", || {
        s.nodes.b.server.app().media.session_count() == 0
    })
    .await;
    assert_eq!(third.server.app().media.session_count(), 1);
    let before = v.received.video_count.load(Ordering::SeqCst);
    until(
        "the viewer on A plays the brand from the newer publisher",
        || v.received.video_count.load(Ordering::SeqCst) > before + 20,
    )
    .await;
    assert!(
        !v.broke.load(Ordering::SeqCst),
        "the viewer did not reconnect"
    );
    v.received.assert_continuous("the viewer on A");
    assert_eq!(v.leave().await, 200);
    let _ = older.pc.close().await;
    newer.stop().await;
}
