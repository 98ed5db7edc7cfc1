//! The `media` scenario against a server that refuses some subscribers (503, here its cap):
//! the run goes on with those that joined, reports how many were refused, and fails its
//! "every subscriber joined" check with the count and the server's reason.

mod common;

use showfloor_loadtest::media::{self, MediaLoad};
use showfloor_loadtest::rtc::Stream;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_subscribers_are_counted_and_the_rest_measured() {
    let (app, target, _dir) = common::server_with(|c| c.max_media_subscribers = 3).await;
    let o = MediaLoad {
        subscribers: 5,
        seconds: 1,
        find_max: false,
        max_subscribers: 5,
        max_loss: 0.01,
        stream: Stream {
            packets_per_s: 100,
            ..Stream::default()
        },
        server_pid: None,
    };
    let server = media::Showfloor::new(&target, "Media refused", 1)
        .await
        .unwrap();
    let report = media::media(Arc::new(server), &o, false).await.unwrap();
    println!("{}", report.human());
    assert_eq!(report.numbers["refused"], 2, "{}", report.human());
    assert_eq!(report.numbers["failed_to_join"], 0, "{}", report.human());
    assert_eq!(report.numbers["subscribers"], 3, "{}", report.human());
    let first = report.numbers["first_join_error"].as_str().unwrap();
    assert!(
        first.contains("503") && first.contains("no room for more media viewers"),
        "{first}"
    );
    let joined = report
        .checks
        .iter()
        .find(|c| c.name == "every subscriber joined")
        .expect("the check is reported");
    assert!(!joined.ok);
    assert!(
        joined.detail.contains("3 joined, 2 refused"),
        "{}",
        joined.detail
    );
    let loss = report.checks.iter().find(|c| c.name == "loss").unwrap();
    assert!(loss.ok, "those that joined are measured: {}", loss.detail);
    app.shutdown().await;
}
