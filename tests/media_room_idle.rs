//! A room's media state lives on a node only while something there uses it: once its last
//! WHIP/WHEP session has left and no request came for `media_room_idle_secs`, it is dropped
//! with its tasks (a long-running node that served many shows does not keep them all), and
//! the next request makes it again, following the room as before.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn media_rooms_metric(addr: std::net::SocketAddr) -> String {
    let body = http(addr, "GET", "/metrics", &[], "").await.body;
    body.lines()
        .find(|l| l.starts_with("showfloor_media_rooms "))
        .unwrap_or_else(|| panic!("no showfloor_media_rooms in\n{body}"))
        .to_string()
}

async fn wait_video(v: &WhepViewer) {
    let t = Instant::now();
    while v.received.video_count.load(Ordering::SeqCst) == 0 {
        assert!(t.elapsed() < WAIT, "the viewer receives video");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_room_media_is_dropped_and_made_again_on_the_next_request() {
    let server = Server::start_with(|c| c.media_room_idle_secs = 1).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let (addr, media) = (server.app().http_addr, server.app().media.clone());
    let tasks_before = media.task_count();
    assert_eq!(media_rooms_metric(addr).await, "showfloor_media_rooms 0");

    let token = c.token(&show.room, "watcher").await;
    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    wait_video(&viewer).await;
    assert_eq!(media_rooms_metric(addr).await, "showfloor_media_rooms 1");

    // The presenter leaves; the viewer stays (no feed on air) well past the idle time: a
    // session in the room keeps its media.
    assert_eq!(publisher.stop().await, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(media.room_media(&show.room).is_some(), "a viewer is in it");
    assert!(!viewer.broke.load(Ordering::SeqCst));

    // The viewer leaves too: the room's media goes, with its tasks.
    assert_eq!(viewer.leave().await, 200);
    let t = Instant::now();
    while media.room_media(&show.room).is_some() {
        assert!(t.elapsed() < WAIT, "idle room media is dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(media_rooms_metric(addr).await, "showfloor_media_rooms 0");
    let t = Instant::now();
    while media.task_count() > tasks_before {
        assert!(
            t.elapsed() < WAIT,
            "media tasks back to {tasks_before}, still {}",
            media.task_count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The next request makes it again, following the room: the brand on air and its
    // changes, media to a new viewer.
    c.switch(&show.room, &show.brand_b).await;
    let tb = c.presenter_token(&show.room, &show.brand_b).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_b, &tb)
        .await
        .unwrap();
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    wait_video(&viewer).await;
    c.switch(&show.room, &show.brand_a).await;
    let t = Instant::now();
    loop {
        let r = http(addr, "GET", &format!("/whep/{}", show.room), &[], "").await;
        let p: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if p["brand"] == show.brand_a.as_str() {
            assert_eq!(p["live"], false, "A has no feed now: {p}");
            break;
        }
        assert!(
            t.elapsed() < WAIT,
            "the made-again media follows the switch: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(publisher.stop().await, 200);
    assert_eq!(viewer.leave().await, 200);
}
