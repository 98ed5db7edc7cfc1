//! A brand on air without a live feed: WHEP viewers connect and stay connected, WebSocket
//! viewers get a `program` event saying the feed is not live, and media flows (continuously)
//! as soon as the brand's presenter publishes or the host switches to a live brand.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn program_of(addr: std::net::SocketAddr, room: &str) -> Value {
    let r = http(addr, "GET", &format!("/whep/{room}"), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

async fn wait_keyframe_after(v: &WhepViewer, t: Instant) {
    loop {
        if v.received
            .video
            .lock()
            .iter()
            .any(|s| s.at >= t && s.keyframe)
        {
            return;
        }
        assert!(t.elapsed() < WAIT, "a key frame arrives");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_stay_connected_while_the_brand_on_air_has_no_feed() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;

    let token = c.token(&show.room, "watcher").await;
    let mut ws = server.viewer(&show.room, &token).await;
    let welcome = ws.expect("welcome").await;
    assert_eq!(welcome["program"]["brand_id"], show.brand_a.as_str());
    assert_eq!(welcome["program"]["live"], false);

    // Nothing is published yet: the viewer still connects and stays.
    let mut v = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    v.wait_connected().await;
    let p = program_of(addr, &show.room).await;
    assert_eq!(p["brand"], show.brand_a.as_str());
    assert_eq!(p["live"], false);

    // A's presenter publishes: viewers are told, media flows from a key frame.
    let t = Instant::now();
    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let pub_a = WhipPublisher::connect(addr, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let e = ws.expect("program").await;
    assert_eq!(
        (e["brand_id"].as_str(), e["live"].as_bool()),
        (Some(show.brand_a.as_str()), Some(true))
    );
    wait_keyframe_after(&v, t).await;

    // Switch to B, which has no feed: a `program` event, the connection stays.
    c.switch(&show.room, &show.brand_b).await;
    ws.expect("brand_switched").await;
    let e = ws.expect("program").await;
    assert_eq!(
        (e["brand_id"].as_str(), e["live"].as_bool()),
        (Some(show.brand_b.as_str()), Some(false))
    );
    assert_eq!(program_of(addr, &show.room).await["live"], false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let video_before = v.received.video_count.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        v.received.video_count.load(Ordering::SeqCst),
        video_before,
        "nothing is forwarded while the brand on air has no feed"
    );
    assert!(!v.broke.load(Ordering::SeqCst));

    // Back to A: media resumes on the same connection, from a key frame, continuously.
    let t = Instant::now();
    c.switch(&show.room, &show.brand_a).await;
    let e = ws.expect("program").await;
    assert_eq!(e["live"], true);
    wait_keyframe_after(&v, t).await;
    {
        let video = v.received.video.lock();
        let jumps = video
            .windows(2)
            .filter(|w| !(-64..=64).contains(&(w[1].seq.wrapping_sub(w[0].seq) as i16)))
            .count();
        assert_eq!(jumps, 0, "sequence numbers continue across the pause");
    }

    // The presenter leaves: not live any more, the viewer stays.
    assert_eq!(pub_a.stop().await, 200);
    let e = ws.expect("program").await;
    assert_eq!(e["live"], false);
    assert!(!v.broke.load(Ordering::SeqCst));
    assert_eq!(server.app().media.session_count(), 1);
    assert_eq!(v.leave().await, 200);
}
