//! Media limits and lifecycle: the per-node WHEP subscriber cap (503, then room again after a
//! leave), an idle publisher is disconnected, a reconnecting publisher replaces the old one,
//! every answer advertises the one shared UDP port, and trickle PATCH is accepted.

mod common;

use common::rtc_client::{http, WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_cap_idle_publishers_and_replacement() {
    let server = Server::start_with(|c| {
        c.max_media_subscribers = 2;
        c.publisher_idle_secs = 1;
    })
    .await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;
    let media = &server.app().media;
    let port = media.udp_addr().port();
    let token = c.token(&show.room, "v").await;

    // Two viewers fit; the third is refused with 503 and a reason.
    let mut v1 = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    let v2 = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    let (status, body) = WhepViewer::connect(addr, &show.room, &token)
        .await
        .err()
        .expect("over the cap");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no room for more media viewers"), "{body}");
    assert_eq!(v2.leave().await, 200);
    let v3 = WhepViewer::connect(addr, &show.room, &token)
        .await
        .expect("a leave frees a slot");

    // Every host candidate in an answer is on the one shared media port.
    let candidates: Vec<&str> = v1
        .answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:") && l.contains(" typ host"))
        .collect();
    assert!(!candidates.is_empty(), "{}", v1.answer);
    for l in &candidates {
        assert_eq!(l.split(' ').nth(5), Some(port.to_string().as_str()), "{l}");
    }

    // Trickle: more candidates by PATCH are accepted (204).
    v1.wait_connected().await;
    let r = http(
        addr,
        "PATCH",
        &v1.location,
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        "a=mid:0\r\na=candidate:9 1 udp 2130706431 127.0.0.1 9 typ host\r\n",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);

    // A publisher, then the same brand again (an encoder reconnecting): the new one replaces
    // the old, which the server closes.
    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let first = WhipPublisher::connect(addr, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let with_first = media.session_count();
    let second = WhipPublisher::connect(addr, &show.room, &show.brand_a, &ta)
        .await
        .unwrap();
    let t = Instant::now();
    while media.session_count() != with_first {
        assert!(t.elapsed() < WAIT, "the replaced publisher is closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        media
            .session(first.location.rsplit('/').next().unwrap())
            .is_none(),
        "the first publisher's session is gone"
    );
    assert!(media
        .session(second.location.rsplit('/').next().unwrap())
        .is_some());
    let program = media.program_state(&show.room).await.unwrap();
    assert!(program.live);

    // The encoder freezes: after `publisher_idle_secs` without media it is disconnected and
    // the program is no longer live; viewers stay.
    second.pause_media();
    let t = Instant::now();
    while media.program_state(&show.room).await.unwrap().live {
        assert!(t.elapsed() < WAIT, "the idle publisher is disconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(media
        .session(second.location.rsplit('/').next().unwrap())
        .is_none());
    assert_eq!(media.session_count(), 2, "both viewers are still there");

    drop(first);
    assert_eq!(v1.leave().await, 200);
    assert_eq!(v3.leave().await, 200);
}
