//! A WHEP viewer whose network goes quiet (a phone in a tunnel, a tab killed without a
//! goodbye) stops costing the SFU once its connection is disconnected, well before ICE gives
//! up on it; when the network comes back the same connection plays again, from a key frame,
//! with continuous sequence numbers. The viewer reaches the server through a
//! UDP relay the test can silence.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, udp_relay, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn forwarded(server: &Server) -> u64 {
    server.app().media.stats.forwarded.get()
}

/// Waits until `f` holds, polling; panics with `what` after `within`.
async fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_viewer_costs_nothing_and_plays_again_when_it_is_back() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let http = server.app().http_addr;
    let token = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(http, &show.room, &show.brand_a, &token)
        .await
        .unwrap();

    let media = server.app().media.udp_addr();
    let silent = Arc::new(AtomicBool::new(false));
    let via = udp_relay::relay("127.0.0.1:0".parse().unwrap(), media, silent.clone()).await;
    let token = c.token(&show.room, "commuter").await;
    let point_at_relay = |answer: &str| {
        answer.replace(
            &format!(" {} {} typ host", media.ip(), media.port()),
            &format!(" {} {} typ host", via.ip(), via.port()),
        )
    };
    let mut viewer = WhepViewer::connect_with(http, &show.room, &token, &point_at_relay)
        .await
        .unwrap();
    viewer.wait_connected().await;
    let video = || viewer.received.video_count.load(Ordering::SeqCst);
    until(Duration::from_secs(10), "video through the relay", || {
        video() > 30
    })
    .await;
    let sessions = server.app().media.session_count();

    // The network goes quiet. Once the server sees the connection disconnected (about 5 s
    // without a packet), it forwards nothing more to this viewer.
    silent.store(true, Ordering::SeqCst);
    let quiet = Instant::now();
    let mut last = (forwarded(&server), Instant::now());
    let stalled = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = forwarded(&server);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(2) {
            break quiet.elapsed();
        }
        // ICE would declare the connection failed after ~25 s; the pause must come first.
        assert!(
            quiet.elapsed() < Duration::from_secs(15),
            "the SFU kept forwarding to a viewer it could not reach"
        );
    };
    println!("forwarding to the silent viewer stopped {stalled:?} after the network went quiet");

    // The network is back: the same connection plays again, starting at a key frame.
    let before = viewer.received.video.lock().len();
    silent.store(false, Ordering::SeqCst);
    until(
        Duration::from_secs(15),
        "video again after the network came back",
        || viewer.received.video.lock().len() > before + 30,
    )
    .await;
    {
        let seen = viewer.received.video.lock();
        let resumed = &seen[before..];
        assert!(resumed[0].keyframe, "playback resumes on a key frame");
        // From the resumption on, numbering is continuous (what the relay dropped before the
        // pause is ordinary loss).
        let jumps = resumed
            .windows(2)
            .filter(|w| !(-64..=64).contains(&(w[1].seq.wrapping_sub(w[0].seq) as i16)))
            .count();
        assert_eq!(jumps, 0, "sequence numbers jump after the resumption");
        assert_eq!(
            server.app().media.session_count(),
            sessions,
            "the viewer is still on its one session: nothing reconnected"
        );
    }
    viewer.leave().await;
    publisher.stop().await;
}
