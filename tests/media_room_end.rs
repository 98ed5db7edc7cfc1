//! Closing a room ends its media: the publisher's and the viewer's sessions end promptly,
//! `GET /whep/{room}` says the room ended, and new WHIP/WHEP requests get 409.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{authed, setup_show, Server};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The value of a gauge on `/metrics`.
async fn gauge(addr: SocketAddr, name: &str) -> i64 {
    let m = http(addr, "GET", "/metrics", &[], "").await.body;
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{m}"))
}

async fn program(addr: SocketAddr, room: &str) -> serde_json::Value {
    let r = http(addr, "GET", &format!("/whep/{room}"), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// Waits (bounded by `within`) until `broke` is set.
async fn sees_it_end(broke: &AtomicBool, within: Duration, who: &str) {
    let t = Instant::now();
    while !broke.load(Ordering::SeqCst) {
        assert!(
            t.elapsed() < within,
            "the {who}'s connection still looks up {within:?} after the room closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_room_ends_its_media() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "watcher").await;
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    let t = Instant::now();
    while viewer.received.video_count.load(Ordering::SeqCst) == 0 {
        assert!(
            t.elapsed() < common::WAIT,
            "the viewer receives the program"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = program(addr, &show.room).await;
    assert_eq!(p["live"], true, "{p}");
    assert_eq!(p["ended"], false, "{p}");
    assert_eq!(gauge(addr, "showfloor_media_viewers").await, 1);
    assert_eq!(gauge(addr, "showfloor_media_publishers").await, 1);

    c.client
        .close_room(authed(showfloor::pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();

    // Both sessions end on the server…
    let t = Instant::now();
    loop {
        let viewers = gauge(addr, "showfloor_media_viewers").await;
        let publishers = gauge(addr, "showfloor_media_publishers").await;
        if viewers == 0 && publishers == 0 {
            break;
        }
        assert!(
            t.elapsed() < common::WAIT,
            "media sessions left after the room closed: {viewers} viewers, {publishers} publishers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.app().media.session_count(), 0);
    // …their resources are gone…
    let r = http(addr, "DELETE", &viewer.location, &[], "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = http(addr, "DELETE", &publisher.location, &[], "").await;
    assert_eq!(r.status, 404, "{}", r.body);
    // …and the peers see their connections end (the server closed them; at the latest, ICE
    // consent stops being answered).
    let within = Duration::from_secs(30);
    sees_it_end(&viewer.broke, within, "viewer").await;
    sees_it_end(&publisher.broke, within, "publisher").await;

    // The program says the room ended; nothing new gets in.
    let p = program(addr, &show.room).await;
    assert_eq!(p["ended"], true, "{p}");
    assert_eq!(p["live"], false, "{p}");
    let (status, body) = WhepViewer::connect(addr, &show.room, &token)
        .await
        .err()
        .expect("no WHEP into an ended room");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ended"), "{body}");
    let (status, body) = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .err()
        .expect("no WHIP into an ended room");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ended"), "{body}");
    let _ = viewer.pc.close().await;
    publisher.stop().await;
}

/// A room that ends with no media session attached still tells `GET /whep/{room}` so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_ended_without_media_says_so() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    // The very first answer about a room already names its brand on air.
    let p = program(addr, &show.room).await;
    assert_eq!(p["brand"], show.brand_a.as_str(), "{p}");
    assert_eq!(p["ended"], false, "{p}");
    c.client
        .close_room(authed(showfloor::pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        let p = program(addr, &show.room).await;
        if p["ended"] == true {
            assert_eq!(p["live"], false, "{p}");
            break;
        }
        assert!(t.elapsed() < common::WAIT, "still not ended: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
