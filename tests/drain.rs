//! One drain: SIGTERM with 1,000 viewers connected and flash-sale grabs in flight. The
//! process exits 0 within its grace period, every viewer is closed with 1001 "going away",
//! and every grab that was acknowledged as won is in the store.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;
use showfloor::store::sqlite::SqliteStore;
use showfloor::store::Store;
use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIEWERS: usize = 1000;
const GRABBERS: usize = 50;
const GRACE_SECS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_viewer_with_1001_and_keeps_every_acknowledged_grab() {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Served::start([
        "--api-key".into(),
        KEY.into(),
        "--shutdown-grace-secs".into(),
        GRACE_SECS.to_string().into(),
        "--data-dir".into(),
        std::ffi::OsString::from(dir.path()),
    ])
    .await;
    let (http, grpc) = (server.http, server.grpc);
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = Control {
        client: pb::control_client::ControlClient::new(ch),
    };
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, 1_000_000, 1_000_000, 600)
        .await;
    let addr = format!("127.0.0.1:{http}");

    // Viewers join and then read until the server closes them.
    let mut viewers = tokio::task::JoinSet::new();
    for i in 0..VIEWERS {
        let token = c.token(&show.room, &format!("v{i}")).await;
        let mut v = connect(&addr, &show.room, &token).await;
        v.expect("welcome").await;
        viewers.spawn(async move { v.closed().await });
    }
    // Dealers grab without pause, keeping grabs in flight until the end.
    let won = Arc::new(parking_lot::Mutex::new(HashSet::<String>::new()));
    let mut grabbers = tokio::task::JoinSet::new();
    for d in 0..GRABBERS {
        let (addr, room, key, sale_id, won) = (
            addr.clone(),
            show.room.clone(),
            show.key.clone(),
            sale.id.clone(),
            won.clone(),
        );
        grabbers.spawn(async move {
            let id = format!("d{d}");
            let mut v = connect(&addr, &room, &dealer_token(&room, &key, &id, "gold")).await;
            v.expect("welcome").await;
            for k in 0.. {
                v.send(json!({"type": "grab", "sale_id": sale_id, "key": format!("{id}-{k}")}))
                    .await;
                loop {
                    match v.next().await {
                        Next::Frame(f) if f["type"] == "grab_result" => {
                            if f["result"] == "won" {
                                won.lock().insert(f["order_id"].as_str().unwrap().into());
                            }
                            break;
                        }
                        Next::Frame(_) => {}
                        Next::Closed(c) => return c,
                    }
                }
            }
            None
        });
    }
    while won.lock().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let term = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = server.exited().await;
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(
        term.elapsed() < Duration::from_secs(GRACE_SECS),
        "the drain took {:?}, more than its grace period",
        term.elapsed()
    );

    let mut codes = Vec::new();
    while let Some(r) = viewers.join_next().await {
        codes.push(r.unwrap());
    }
    let going_away = codes.iter().filter(|(code, _)| *code == 1001).count();
    assert_eq!(
        going_away,
        VIEWERS,
        "closes: {:?}",
        &codes[..5.min(codes.len())]
    );
    while let Some(r) = grabbers.join_next().await {
        let close = r.unwrap();
        assert_eq!(close.map(|c| c.0), Some(1001), "a grabber's close");
    }

    let stored = SqliteStore::open(dir.path())
        .unwrap()
        .load_room(&show.room)
        .await
        .unwrap()
        .unwrap();
    let orders: HashSet<String> = stored.orders.iter().map(|o| o.id.clone()).collect();
    let won = won.lock().clone();
    let missing: Vec<_> = won.difference(&orders).collect();
    assert!(
        missing.is_empty(),
        "acknowledged wins not stored: {missing:?}"
    );
}
