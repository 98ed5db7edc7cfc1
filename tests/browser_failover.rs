//! The viewer page moves to another node when its node dies, in headless Chromium: two server
//! processes (`serve --nats --postgres --advertise`) on a nats-server and a PostgreSQL database
//! of their own; B runs the room, the page is opened on A with `nodes=A,B`; A is killed with
//! SIGKILL while a viewer on B chats; the page reconnects to B, resumes with `last_seq` and
//! `epoch`, shows every chat message once and in order, misses no room event, and sets its
//! video (WHEP) up on B. The scenario is `tests/browser/failover.mjs`, run by `failover.sh`
//! (which installs Debian's chromium and playwright-core when missing).

mod common;

use common::nats::NatsServer;
use common::*;
use showfloor::pb;
use showfloor::store::postgres::scratch;
use std::time::Instant;

/// A node with a lease TTL of 2 s that browsers reach at 127.0.0.1 and its HTTP port.
async fn spawn_node(nats: &str, postgres: &str, id: &str) -> Served {
    common::process::cluster_node(nats, postgres, id, 2, &["--advertise", "127.0.0.1"]).await
}

/// A live room run by the node behind `c`, whose chat allows the scenario's nine messages.
async fn live_room(c: &mut Control) -> String {
    let room = c
        .client
        .create_room(authed(pb::CreateRoomRequest {
            title: "Failover".into(),
            chat_rate_limit: Some(pb::ChatRateLimit {
                messages: 50,
                per_seconds: 10,
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .room
        .unwrap()
        .id;
    let brand = c.add_brand(&room, "Alpha").await;
    c.switch(&room, &brand.id).await;
    c.client
        .open_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
    room
}

/// Waits until `node`'s viewer page names every one of `addresses` (its nodes learn each
/// other's addresses from the lease bucket).
async fn wait_for_node_list(node: &Served, room: &str, addresses: &[String]) {
    let started = Instant::now();
    loop {
        let page = rtc_client::http(
            node.http_addr().parse().unwrap(),
            "GET",
            &format!("/r/{room}"),
            &[],
            "",
        )
        .await;
        let meta = page
            .body
            .lines()
            .find(|l| l.contains("showfloor-nodes"))
            .unwrap_or_default()
            .to_string();
        if addresses.iter().all(|a| meta.contains(a.as_str())) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{} never listed {addresses:?} on its viewer page (meta: {meta:?})",
            node.http_addr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_page_moves_to_another_node_when_its_node_is_killed_and_misses_nothing() {
    let nats = NatsServer::start().await;
    let pg_url = scratch::fresh_database_url();
    let mut a = spawn_node(&nats.url(), &pg_url, "node-a").await;
    let b = spawn_node(&nats.url(), &pg_url, "node-b").await;
    // The room is created on B, so B runs it; the page's node A only serves the page's viewer.
    let mut c = Control::at(b.grpc).await;
    let room = live_room(&mut c).await;
    let nodes = [a.http_addr(), b.http_addr()];
    wait_for_node_list(&a, &room, &nodes).await;
    wait_for_node_list(&b, &room, &nodes).await;

    let out = tokio::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/failover.sh"
        ))
        .env("NODE_A", a.http_addr())
        .env("NODE_B", b.http_addr())
        .env("PID_A", a.child.id().to_string())
        .env("ROOM", &room)
        .env("TOKEN_VIEWER", c.token(&room, "chen").await)
        .env("TOKEN_SENDER", c.token(&room, "li").await)
        .kill_on_drop(true)
        .output()
        .await
        .expect("bash runs");
    let log = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the failover scenario failed\n{log}\n--- node A\n{}\n--- node B\n{}",
        a.log(),
        b.log()
    );
    println!("{log}");
    // The scenario killed A: it is gone, not merely quiet.
    assert!(
        a.child.try_wait().unwrap().is_some(),
        "node A still runs after the scenario"
    );
}
