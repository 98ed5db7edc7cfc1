//! Admission by load: while the node's runtime runs due work late, probe after probe, a new
//! WHEP viewer is refused at once with 503, a reason and `Retry-After`, the viewer already
//! watching keeps its connection, and once the node keeps up again viewers are admitted.

mod common;

use common::rtc_client::{http, Tweaks, WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCPeerConnectionState;

/// Keeps both of the runtime's workers busy in slices of `slice` until `stop`, as a node
/// forwarding more than its cores can would.
fn saturate(stop: Arc<AtomicBool>, slice: Duration) {
    for _ in 0..2 {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(slice);
                tokio::task::yield_now().await;
            }
        });
    }
}

async fn post_offer(
    addr: SocketAddr,
    room: &str,
    token: &str,
    offer: &str,
) -> (u16, String, Option<String>) {
    let bearer = format!("Bearer {token}");
    let r = http(
        addr,
        "POST",
        &format!("/whep/{room}"),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", &bearer),
        ],
        offer,
    )
    .await;
    if r.status == 201 {
        // Admitted: leave again at once, only the answer mattered.
        let location = r.header("location").unwrap_or_default().to_string();
        assert_eq!(http(addr, "DELETE", &location, &[], "").await.status, 200);
    }
    let retry_after = r.header("retry-after").map(str::to_string);
    (r.status, r.body, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_node_refuses_new_viewers_and_keeps_the_ones_it_has() {
    let server = Server::start_with(|c| c.media_shed_lag_ms = 20).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let _publisher = WhipPublisher::connect(addr, &show.room, &show.brand_a, &presenter)
        .await
        .unwrap();
    let token = c.token(&show.room, "v").await;

    // A viewer watching before the load, and a browser-like offer for the later requests.
    let mut watching = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    watching.wait_connected().await;
    let offer = Arc::new(parking_lot::Mutex::new(String::new()));
    let keep = offer.clone();
    let capture = move |sdp: &str| {
        *keep.lock() = sdp.to_string();
        sdp.to_string()
    };
    let tweaks = Tweaks {
        offer: Some(&capture),
        ..Tweaks::default()
    };
    WhepViewer::connect_tweaked(addr, &show.room, &token, &tweaks)
        .await
        .unwrap()
        .leave()
        .await;
    let offer = offer.lock().clone();
    let (status, body, _) = post_offer(addr, &show.room, &token, &offer).await;
    assert_eq!(status, 201, "an idle node admits: {body}");

    // Saturated: the node starts refusing, with a reason and a spread Retry-After.
    let stop = Arc::new(AtomicBool::new(false));
    saturate(stop.clone(), Duration::from_millis(60));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (body, retry_after) = loop {
        let (status, body, retry_after) = post_offer(addr, &show.room, &token, &offer).await;
        if status == 503 {
            break (body, retry_after);
        }
        assert_eq!(status, 201, "{body}");
        assert!(
            Instant::now() < deadline,
            "a saturated node kept admitting viewers"
        );
    };
    stop.store(true, Ordering::Relaxed);
    assert!(body.contains("overloaded"), "{body}");
    let after: u32 = retry_after
        .expect("a 503 carries Retry-After")
        .parse()
        .unwrap();
    assert!((1..=3).contains(&after), "Retry-After {after}");
    assert!(server.app().metrics.media_viewers_shed.get() >= 1);

    // The viewer that was watching still is, and new ones are admitted once the node keeps up.
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body, _) = post_offer(addr, &show.room, &token, &offer).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "still refusing after the load ended: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(*watching.state.borrow(), RTCPeerConnectionState::Connected);
    assert!(!watching.broke.load(Ordering::SeqCst));
    let metrics = http(addr, "GET", "/metrics", &[], "").await.body;
    assert!(
        metrics.contains("showfloor_runtime_lag_seconds"),
        "{metrics}"
    );
    assert!(
        metrics.contains("showfloor_media_viewers_shed_total"),
        "{metrics}"
    );
}
