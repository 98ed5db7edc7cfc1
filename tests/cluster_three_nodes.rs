//! Issue 14, failure test 7: viewers of one room spread over three nodes (A runs the room; B
//! and C follow it) receive the same events in the same order, and the price-leak show passes
//! with its public viewer, gold and silver dealers and role-changing viewer on different nodes,
//! driven by host commands sent to B (forwarded to A).

mod common;

use common::cluster::node;
use common::nats::NatsServer;
use common::*;
use serde_json::{json, Value};

/// Types a viewer gets on its own clock or for itself alone, not as the room's ordered events.
const NOT_ORDERED: [&str; 5] = [
    "welcome",
    "online_count",
    "like_count",
    "role_changed",
    "error",
];

/// The room's events a viewer got: (seq, type), in arrival order.
fn ordered(v: &Viewer) -> Vec<(u64, String)> {
    v.frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter(|f| !NOT_ORDERED.contains(&f["type"].as_str().unwrap_or_default()))
        .map(|f| {
            (
                f["seq"].as_u64().expect("room events have a seq"),
                f["type"].to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_three_nodes_get_the_same_events_in_order_and_no_price_leak() {
    let nats = NatsServer::start().await;
    let db = showfloor::store::postgres::scratch::fresh_database();
    let a = node(&nats, &db, "node-a").await;
    let b = node(&nats, &db, "node-b").await;
    let c = node(&nats, &db, "node-c").await;
    let show = setup_show(&mut a.server.control().await).await;
    let room = show.room.clone();

    // The price-leak show: public on B, gold on C, silver on A, the role changer on C.
    let mut on_b = b.server.control().await;
    let watched = price_show::run(
        &mut on_b,
        &show,
        [&b.server, &c.server, &a.server, &c.server],
    )
    .await;
    let public = ordered(&watched.public);
    assert!(public.len() >= 5, "the show's events reached B: {public:?}");
    assert_eq!(
        public,
        ordered(&watched.gold),
        "B and C got the same events in order"
    );
    assert_eq!(
        public,
        ordered(&watched.silver),
        "B and A got the same events in order"
    );
    assert!(
        public.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "no gap: {public:?}"
    );

    // Chat from all three nodes, interleaved: every viewer sees every message once, in the
    // same order, whatever node it and the sender are on.
    let mut viewers = Vec::new();
    for (i, n) in [&a, &b, &c].into_iter().enumerate() {
        let token = on_b.token(&room, &format!("chatter-{i}")).await;
        let (v, _) = n.join(&room, &token).await.unwrap();
        viewers.push(v);
    }
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        for (i, v) in viewers.iter_mut().enumerate() {
            v.send(json!({"type": "chat", "text": format!("r{round} from node {i}")}))
                .await;
        }
    }
    let mut seen: Vec<Vec<(u64, String)>> = Vec::new();
    for v in viewers.iter_mut() {
        let mut chat = Vec::new();
        while chat.len() < ROUNDS * 3 {
            let f = v.expect("chat").await;
            chat.push((f["seq"].as_u64().unwrap(), f["text"].to_string()));
        }
        seen.push(chat);
    }
    assert_eq!(
        seen[0], seen[1],
        "A's and B's viewers saw the same chat in order"
    );
    assert_eq!(
        seen[0], seen[2],
        "A's and C's viewers saw the same chat in order"
    );
    let mut texts: Vec<&String> = seen[0].iter().map(|(_, t)| t).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), ROUNDS * 3, "each message once: {:?}", seen[0]);
}
