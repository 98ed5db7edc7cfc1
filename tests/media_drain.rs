//! Media joins the node's drain: every task it spawns (per session, per room, the janitor)
//! is counted by the node's task tracker and ends when the drain is cancelled; shutdown
//! closes every session.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, Server};
use showfloor::media::{Media, MediaConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < within, "{what} (waited {within:?})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sees_it_end(broke: &AtomicBool, who: &str) {
    // The server closed the connection; at the latest, ICE consent stops being answered.
    until(
        &format!("the {who}'s connection ends"),
        Duration::from_secs(30),
        || broke.load(Ordering::SeqCst),
    )
    .await;
}

/// Media started as the node will start it: under the node's drain token and task tracker
/// (here the test's own), serving WHIP/WHEP on a listener of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_tasks_are_tracked_by_the_node_and_end_on_the_drain() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let drain = CancellationToken::new();
    let tracker = TaskTracker::new();
    let media = Media::start_in(
        server.app().hub.clone(),
        &server.app().metrics,
        MediaConfig {
            udp_addr: "127.0.0.1:0".parse().unwrap(),
            public_ips: Vec::new(),
            max_subscribers: 10,
            publisher_idle: Duration::from_secs(30),
            room_idle: Duration::from_secs(30),
            relay_addr: None,
            shed_lag: Some(Duration::from_millis(50)),
        },
        drain.clone(),
        tracker.clone(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = showfloor::media::http::router(media.clone());
    let http = tokio::spawn(async move { axum::serve(listener, router).await });

    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "watcher").await;
    let mut viewer = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    viewer.wait_connected().await;
    until("the viewer receives the program", common::WAIT, || {
        viewer.received.video_count.load(Ordering::SeqCst) > 0
    })
    .await;

    // The janitor and the load probe; the room's follower and live-feed reporter (one task); the publisher's
    // two feed readers and PLI senders; the viewer's RTCP reader (the SFU writes to its
    // tracks itself) — each counted by the node's tracker as by media's own.
    assert!(
        tracker.len() >= 8,
        "media tasks the node tracks: {}",
        tracker.len()
    );
    assert_eq!(tracker.len(), media.task_count());

    // The drain alone ends every media task…
    drain.cancel();
    until("media tasks end on the drain", common::WAIT, || {
        tracker.is_empty()
    })
    .await;
    assert_eq!(media.task_count(), 0);
    // …and shutdown closes every session.
    tracker.close();
    media.shutdown().await;
    tokio::time::timeout(common::WAIT, tracker.wait())
        .await
        .expect("the node's tracker drains");
    assert_eq!(media.session_count(), 0);
    sees_it_end(&viewer.broke, "viewer").await;
    sees_it_end(&publisher.broke, "publisher").await;
    let _ = viewer.pc.close().await;
    let _ = publisher.pc.close().await;
    http.abort();
}

/// The node's shutdown closes every media session and leaves no media task behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_media_session() {
    let mut server = Server::start().await;
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
    let media: Arc<Media> = server.app().media.clone();
    assert!(media.task_count() > 0);

    server.stop().await;
    assert_eq!(media.session_count(), 0);
    assert_eq!(media.task_count(), 0, "media tasks left after shutdown");
    assert_eq!(media.stats.viewers.get(), 0);
    assert_eq!(media.stats.publishers.get(), 0);
    sees_it_end(&viewer.broke, "viewer").await;
    sees_it_end(&publisher.broke, "publisher").await;
    let _ = viewer.pc.close().await;
    let _ = publisher.pc.close().await;
}
