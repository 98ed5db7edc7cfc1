//! A viewer on a lossy path gets back what it lost: its NACKs are answered by the server's
//! retransmissions. A WHEP viewer's connection carries only the send-side interceptors
//! (`media::rtcp::viewer_interceptors`); this is the outside view that must not change.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, udp_relay, Server, WAIT};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every this-many-th datagram from the server to the viewer is lost on the way (10 %).
const DROP_EVERY: usize = 10;
/// Video packets looked at.
const PACKETS: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_a_lossy_path_gets_what_it_lost_again() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let (http, media) = (server.app().http_addr, server.app().media.udp_addr());
    let path = udp_relay::lossy(
        "127.0.0.1:0".parse().unwrap(),
        media,
        Arc::new(AtomicBool::new(false)),
        DROP_EVERY,
    )
    .await;

    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(http, &show.room, &show.brand_a, &presenter)
        .await
        .expect("WHIP publish is accepted");
    // The viewer reaches the server only through the lossy path: the answer's candidates name
    // the path's port instead of the server's.
    let (port, via) = (
        format!(" {} typ ", media.port()),
        format!(" {} typ ", path.port()),
    );
    let token = c.token(&show.room, "far-away").await;
    let mut viewer = WhepViewer::connect_with(http, &show.room, &token, &|sdp: &str| {
        sdp.replace(&port, &via)
    })
    .await
    .expect("WHEP subscribe is accepted");
    viewer.wait_connected().await;

    let t = Instant::now();
    while viewer.received.video_count.load(Ordering::SeqCst) < PACKETS + 100 {
        assert!(t.elapsed() < WAIT * 3, "video through the lossy path");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retransmissions of the last losses may still be on their way: look at the first
    // PACKETS sequence numbers of the stream only.
    let seen = viewer.received.video.lock().clone();
    let first = seen[0].seq;
    let offsets: BTreeSet<u16> = seen.iter().map(|s| s.seq.wrapping_sub(first)).collect();
    let missing = (0..PACKETS as u16).filter(|o| !offsets.contains(o)).count();
    // Without retransmission about one packet in ten would be missing for good.
    assert!(
        missing <= PACKETS as usize / 100,
        "{missing} of the first {PACKETS} video packets never arrived on a path losing one \
         datagram in {DROP_EVERY}: NACKs are not answered"
    );
    assert_eq!(viewer.leave().await, 200);
    assert_eq!(publisher.stop().await, 200);
}
