//! Small versions of the scenarios against a real server started in-process on port 0: the
//! CI smoke run. They fail on loss, oversell, a missing order or a disconnect; timings are
//! printed, never asserted.

mod common;

use common::server;
use showfloor_loadtest::audience::{audience, Audience};
use showfloor_loadtest::chat::{self, ChatStorm};
use showfloor_loadtest::flash_sale::{flash_sale, FlashSale};
use showfloor_loadtest::reconnect_storm::{reconnect_storm, ReconnectStorm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_storm_smoke_delivers_everything() {
    let (app, target, _dir) = server().await;
    let o = ChatStorm {
        viewers: 300,
        senders: 10,
        rate: 200,
        seconds: 3,
        socketio: None,
        find_max_p99_ms: None,
        server_pid: None,
    };
    let report = chat::chat_storm(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert!(report.numbers["deliveries"].as_u64().unwrap() >= 300 * 500);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_smoke_never_oversells() {
    let (app, target, _dir) = server().await;
    let o = FlashSale {
        dealers: 300,
        stock: 100,
        limit: 1,
        attempts: 2,
    };
    let report = flash_sale(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["won"], 100);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_clear_error() {
    let (app, mut target, _dir) = server().await;
    target.api_key = "not-the-key".into();
    let o = FlashSale {
        dealers: 1,
        stock: 1,
        limit: 1,
        attempts: 1,
    };
    let err = flash_sale(&target, &o, false).await.unwrap_err();
    assert!(format!("{err:#}").to_lowercase().contains("key"), "{err:#}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_smoke_connects_everyone_and_reports_memory() {
    let (app, target, _dir) = server().await;
    let o = Audience {
        viewers: 500,
        rate: 1000,
        hold_secs: 1,
        socketio: None,
        server_pid: None,
    };
    let report = audience(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["connected"], 500);
    assert!(report.numbers["server_kb_per_viewer"].is_number());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_smoke_misses_nothing() {
    let (app, target, _dir) = server().await;
    let o = ReconnectStorm {
        viewers: 300,
        drop_percent: 50,
        events_per_s: 20,
        seconds: 3,
        away: std::time::Duration::from_millis(500),
        // Generous: this smoke checks resume and loss, not speed (a debug build on CI).
        recover_within: std::time::Duration::from_secs(60),
    };
    let report = reconnect_storm(&target, &o, false).await.unwrap();
    println!("{}", report.human());
    assert!(report.passed(), "{}", report.human());
    assert_eq!(report.numbers["resumed"], 150);
    // Events came while they were away, and resume brought them back.
    assert!(report.numbers["replayed_events"].as_u64().unwrap() >= 150);
    app.shutdown().await;
}
