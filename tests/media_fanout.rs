//! A WHIP publisher streams real VP8 + Opus (fixture files) for the brand on air; 50 WHEP
//! viewers on loopback all receive both, each on its own stable SSRCs.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, Server};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const VIEWERS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_receive_the_program() {
    common::raise_fd_limit();
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let http = server.app().http_addr;

    let presenter = c.presenter_token(&show.room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(http, &show.room, &show.brand_a, &presenter)
        .await
        .expect("WHIP publish is accepted");
    assert!(publisher
        .location
        .starts_with(&format!("/whip/{}/{}/", show.room, show.brand_a)));

    let mut viewers = Vec::new();
    for i in 0..VIEWERS {
        let token = c.token(&show.room, &format!("viewer-{i}")).await;
        let v = WhepViewer::connect(http, &show.room, &token)
            .await
            .expect("WHEP subscribe is accepted");
        viewers.push(v);
    }
    for v in viewers.iter_mut() {
        v.wait_connected().await;
    }

    // Every viewer gets audio and video within the wait (never a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let behind = viewers
            .iter()
            .filter(|v| {
                v.received.video_count.load(Ordering::SeqCst) < 30
                    || v.received.audio_count.load(Ordering::SeqCst) < 30
            })
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} of {VIEWERS} viewers lack media; forwarded {} dropped {}",
            server.app().media.stats.forwarded.get(),
            server.app().media.stats.dropped.get()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for v in &viewers {
        let video = v.received.video.lock();
        assert!(
            video.first().unwrap().keyframe,
            "video starts with a key frame"
        );
        let ssrc = video[0].ssrc;
        assert!(video.iter().all(|s| s.ssrc == ssrc), "one video SSRC");
        assert!(!v.broke.load(Ordering::SeqCst));
    }
    // The node's metrics show the media sessions and traffic.
    let m = common::rtc_client::http(http, "GET", "/metrics", &[], "")
        .await
        .body;
    assert!(
        m.contains(&format!("showfloor_media_viewers {VIEWERS}")),
        "{m}"
    );
    assert!(m.contains("showfloor_media_publishers 1"), "{m}");
    assert!(m.contains("showfloor_media_rtp_forwarded_total"), "{m}");
    let total: u64 = viewers
        .iter()
        .map(|v| {
            v.received.video_count.load(Ordering::SeqCst)
                + v.received.audio_count.load(Ordering::SeqCst)
        })
        .sum();
    println!("{VIEWERS} viewers received {total} RTP packets");

    for v in viewers {
        assert_eq!(v.leave().await, 200);
    }
    assert_eq!(publisher.stop().await, 200);
}
