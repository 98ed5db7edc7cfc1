//! Two nodes on one PostgreSQL database and one nats-server: a room runs on exactly one of
//! them (its lease holder), the other serves its viewers by following it; an owner that
//! loses its lease steps down at once (its viewers told to reconnect), and the other node
//! takes the room over from the store with nothing acknowledged lost and no unit sold twice.

mod common;

use common::cluster::{two_nodes_with_a_show, Node, TwoNodes};
use common::*;
use serde_json::json;
use showfloor::pb;
use showfloor::store::postgres::PgStore;
use showfloor::store::Store;
use std::time::Duration;

/// Connects a viewer and waits for its welcome, or returns the close it got instead.
async fn join(node: &Node, room: &str, token: &str) -> Result<Viewer, (u16, String)> {
    node.join(room, token).await.map(|(v, _)| v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_per_room_and_a_clean_takeover_when_it_loses_its_lease() {
    // Created on A: A owns it.
    let TwoNodes {
        a,
        b,
        db,
        show,
        nats: _nats,
    } = two_nodes_with_a_show().await;
    let mut ca = a.server.control().await;
    let sale = ca
        .flash_sale(&show.room, &show.products[0].id, 10, 1, 600)
        .await;
    let dealer = |id: &str| dealer_token(&show.room, &show.key, id, "gold");
    let mut on_a = join(&a, &show.room, &dealer("d1")).await.unwrap();
    on_a.send(json!({"type": "grab", "sale_id": sale.id, "key": "k1"}))
        .await;
    assert_eq!(on_a.expect("grab_result").await["result"], "won");
    // B serves viewers of the room all the same, following it from A.
    let mut from_b = join(&b, &show.room, &dealer("d2")).await.unwrap();
    let held = b.leases.holder(&show.room).await.unwrap().unwrap();
    assert_eq!(held.0, "node-a");
    // /metrics: A runs the room, B none; both see the store and NATS (checked every 5 s,
    // the first check at start).
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    assert!(ma.contains("\nshowfloor_rooms 1\n"), "{ma}");
    assert!(mb.contains("\nshowfloor_rooms 0\n"), "{mb}");
    assert!(ma.contains("\nshowfloor_rooms_followed 0\n"), "{ma}");
    assert!(mb.contains("\nshowfloor_rooms_followed 1\n"), "{mb}");
    for m in [&ma, &mb] {
        assert!(
            m.contains("showfloor_dependency_up{dependency=\"store\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("showfloor_dependency_up{dependency=\"nats\"} 1"),
            "{m}"
        );
    }

    // Host commands sent to B run on A, the owner: the brand switch reaches A's viewer, and
    // a refusal comes back as the same gRPC error it would be on A.
    let mut cb = b.server.control().await;
    let room_on_b = cb.get_room(&show.room).await;
    assert_eq!(room_on_b.id, show.room);
    assert_eq!(
        room_on_b.owner_node, "node-a",
        "GetRoom on B names the owner"
    );
    let second = show.brand_b.clone();
    cb.switch(&show.room, &second).await;
    loop {
        match on_a.next().await {
            Next::Frame(f) if f["type"] == "brand_switched" => {
                assert_eq!(f["brand"]["id"], second.as_str());
                break;
            }
            Next::Frame(_) => continue,
            Next::Closed(c) => panic!("closed: {c:?}"),
        }
    }
    let switched = from_b.expect("brand_switched").await;
    assert_eq!(switched["brand"]["id"], second.as_str());
    // The last viewer of a node leaving does not end, delete or give up the room (LiveKit's
    // #4316): a second viewer joins A and leaves; the room is still A's, and not ended.
    let passer = join(&a, &show.room, &dealer("passer")).await.unwrap();
    drop(passer);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = cb.get_room(&show.room).await;
    assert_ne!(after.state, pb::RoomState::Ended as i32);
    assert_eq!(after.owner_node, "node-a");
    assert_eq!(
        b.leases.holder(&show.room).await.unwrap().unwrap().0,
        "node-a"
    );

    let refused = cb
        .client
        .switch_brand(authed(pb::BrandRef {
            room_id: show.room.clone(),
            brand_id: "no-such-brand".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    // A stops renewing (as if cut off from NATS): it steps down by its own clock, telling
    // its viewers to reconnect; B then takes the room, loads it from the store, and sells
    // the rest of the stock (the unit A sold stays sold).
    a.leases.set_renewals_paused(true);
    let (code, reason) = loop {
        match on_a.next().await {
            Next::Frame(_) => continue,
            Next::Closed(c) => break c.expect("a close frame"),
        }
    };
    assert_eq!(code, 1013);
    assert!(reason.contains("reconnect"), "{reason}");
    // B's viewer of A's room hears the same (relayed by A as it steps down).
    let (code, reason) = from_b.closed().await;
    assert_eq!(code, 1013);
    assert!(reason.contains("reconnect"), "{reason}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut on_b = loop {
        match join(&b, &show.room, &dealer("d2")).await {
            Ok(v) => break v,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(c) => panic!("B never took the room: {c:?}"),
        }
    };
    assert_eq!(
        b.leases.holder(&show.room).await.unwrap().unwrap().0,
        "node-b"
    );
    // B's control plane had learnt that A ran the room; now B runs it, and its host commands
    // still land (the stale hint is dropped on A's answer).
    assert_eq!(cb.get_room(&show.room).await.owner_node, "node-b");
    cb.announce(&show.room, "back on node-b").await;
    let mut won = 1;
    for i in 2..=12 {
        let mut v = if i == 2 {
            std::mem::replace(
                &mut on_b,
                join(&b, &show.room, &dealer("d0")).await.unwrap(),
            )
        } else {
            join(&b, &show.room, &dealer(&format!("d{i}")))
                .await
                .unwrap()
        };
        v.send(json!({"type": "grab", "sale_id": sale.id, "key": format!("k{i}")}))
            .await;
        if v.expect("grab_result").await["result"] == "won" {
            won += 1;
        }
    }
    assert_eq!(won, 10, "exactly the stock is sold across both owners");
    // A's dealer retrying its acknowledged grab on B gets the same answer.
    let mut again = join(&b, &show.room, &dealer("d1")).await.unwrap();
    again
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "k1"}))
        .await;
    assert_eq!(again.expect("grab_result").await["result"], "won");

    // The store agrees: ten orders for ten units.
    let loaded = PgStore::open(&db)
        .await
        .unwrap()
        .load_room(&show.room)
        .await
        .unwrap()
        .unwrap();
    let s = loaded.sales.iter().find(|s| s.id == sale.id).unwrap();
    assert_eq!(s.remaining, 0);
    assert_eq!(
        loaded
            .orders
            .iter()
            .filter(|o| o.sale_id.as_deref() == Some(sale.id.as_str()))
            .count(),
        10
    );
}
