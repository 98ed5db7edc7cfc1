//! H.264 ingest, and brands on different codecs: A publishes H.264, B publishes VP8. A WHEP
//! viewer whose offer allows both gets each brand's video on the same track and SSRC, with
//! the payload type of the brand's codec, a key frame after each switch, and sequence numbers
//! that never jump.

mod common;

use common::rtc_client::{WhepViewer, WhipPublisher};
use common::{setup_show, Server, WAIT};
use showfloor::media::keyframe::VideoCodec;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn keyframe_of(v: &WhepViewer, codec: VideoCodec, after: Instant) {
    let pts: Vec<u8> = v
        .received
        .video_codecs
        .lock()
        .iter()
        .filter(|(_, c)| *c == codec)
        .map(|(pt, _)| *pt)
        .collect();
    loop {
        if v.received
            .video
            .lock()
            .iter()
            .any(|s| s.at >= after && s.keyframe && pts.contains(&s.pt))
        {
            return;
        }
        if after.elapsed() > WAIT {
            let video = v.received.video.lock();
            panic!(
                "no {codec:?} key frame: codecs {:?}, {} video packets, pts {:?}, first {:?}",
                v.received.video_codecs.lock(),
                video.len(),
                video
                    .iter()
                    .map(|s| s.pt)
                    .collect::<std::collections::BTreeSet<_>>(),
                video.first()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_vp8_brands_share_one_viewer_track() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let addr = server.app().http_addr;

    let t = Instant::now();
    let ta = c.presenter_token(&show.room, &show.brand_a).await;
    let tb = c.presenter_token(&show.room, &show.brand_b).await;
    let pub_a = WhipPublisher::connect_with(addr, &show.room, &show.brand_a, &ta, VideoCodec::H264)
        .await
        .unwrap();
    let pub_b = WhipPublisher::connect(addr, &show.room, &show.brand_b, &tb)
        .await
        .unwrap();
    let token = c.token(&show.room, "v").await;
    let mut v = WhepViewer::connect(addr, &show.room, &token).await.unwrap();
    v.wait_connected().await;

    keyframe_of(&v, VideoCodec::H264, t).await;
    for (brand, codec) in [
        (&show.brand_b, VideoCodec::Vp8),
        (&show.brand_a, VideoCodec::H264),
        (&show.brand_b, VideoCodec::Vp8),
    ] {
        let t = Instant::now();
        c.switch(&show.room, brand).await;
        keyframe_of(&v, codec, t).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(!v.broke.load(Ordering::SeqCst));
    let video = v.received.video.lock().clone();
    let ssrc = video[0].ssrc;
    assert!(
        video.iter().all(|s| s.ssrc == ssrc),
        "one SSRC for both codecs"
    );
    let jumps = video
        .windows(2)
        .filter(|w| !(-64..=64).contains(&(w[1].seq.wrapping_sub(w[0].seq) as i16)))
        .count();
    assert_eq!(jumps, 0);
    let pts: std::collections::BTreeSet<u8> = video.iter().map(|s| s.pt).collect();
    println!(
        "video payload types seen: {pts:?}; A sent {} H.264 key frames",
        pub_a.keyframes_sent.load(Ordering::SeqCst)
    );
    assert_eq!(pts.len(), 2, "both codecs arrived on the one track");
    v.leave().await;
    pub_a.stop().await;
    pub_b.stop().await;
}
