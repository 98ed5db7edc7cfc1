//! Small versions of the media scenarios against a real server started in-process on port 0:
//! `switchover` (WebSocket viewers and WHEP subscribers through brand switches) and `media`
//! (one publisher, a few subscribers). They fail on a disconnect, a switch a viewer missed,
//! video that resumes without a key frame, or loss; timings are printed, never asserted.
//! One test, so the two never compete for the CPU with each other.

mod common;

use showfloor_loadtest::media::{self, MediaLoad};
use showfloor_loadtest::rtc::Stream;
use showfloor_loadtest::switchover::{switchover, Switchover};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_and_media_smoke() {
    let (app, target, _dir) = common::server().await;
    // A debug build on two cores shared with the harness: a lighter stream than the default.
    let stream = Stream {
        packets_per_s: 100,
        ..Stream::default()
    };

    let o = Switchover {
        viewers: 200,
        subscribers: 6,
        brands: 3,
        switches: 6,
        interval: Duration::from_millis(800),
        stream: stream.clone(),
    };
    let report = switchover(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    let key = &report.numbers["keyframe_after_switch_ms"];
    assert_eq!(key["count"], 6 * 6, "every subscriber timed every switch");
    assert_eq!(
        report.numbers["brand_switched_ms"]["count"],
        200 * 6,
        "every viewer timed every switch"
    );

    let o = MediaLoad {
        subscribers: 8,
        seconds: 2,
        find_max: false,
        max_subscribers: 8,
        max_loss: 0.01,
        stream,
        server_pid: None,
    };
    let server = media::Showfloor::new(&target, "Media smoke", 1)
        .await
        .unwrap();
    let report = media::media(Arc::new(server), &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    let result = &report.numbers["result"];
    assert!(result["packets_sent"].as_u64().unwrap() >= 150);
    assert!(
        result["server_forwarded_per_s"].as_f64().unwrap() > 0.0,
        "the server's own counters are read: {result}"
    );
    app.shutdown().await;
}
