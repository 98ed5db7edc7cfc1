//! Viewers of one room on two nodes (one PostgreSQL database, one nats-server): node A owns
//! the room, node B serves viewers of it by following its events. B's viewers see what A's
//! see, rendered on B per audience class (no price or link for a public viewer, the tier's
//! price for a dealer, the new class right after a verification); their chat and grabs go
//! to A; presence counts both nodes; a viewer resumes on B without a gap.

mod common;

use common::cluster::{two_nodes_with_a_show, TwoNodes};
use common::*;
use serde_json::{json, Value};

/// Reads frames until one of type `t` (skipping others), as a `Value`.
async fn until(v: &mut Viewer, t: &str) -> Value {
    v.expect(t).await
}

fn no_price_or_link(f: &Value) {
    assert_no_price_or_link(&f.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_another_node_see_chat_buy_and_resume_as_on_the_owner() {
    let TwoNodes {
        a,
        b,
        show,
        nats: _nats,
        ..
    } = two_nodes_with_a_show().await;
    let mut ca = a.server.control().await;
    let room = show.room.clone();
    let dealer = |id: &str| dealer_token(&room, &show.key, id, "gold");

    let (mut on_a, _) = a.join(&room, &ca.token(&room, "pa").await).await.unwrap();
    let (mut public_b, w) = b.join(&room, &ca.token(&room, "pb").await).await.unwrap();
    no_price_or_link(&w);
    assert!(w["shelf"].as_array().is_some_and(|s| !s.is_empty()), "{w}");
    let (mut dealer_b, w) = b.join(&room, &dealer("db")).await.unwrap();
    assert_eq!(w["shelf"][0]["price_cents"], 11_100, "{w}");
    // Presence is the room's, across nodes: three viewers, one on A and two on B.
    assert_eq!(w["online"], 3, "{w}");
    let online = loop {
        let f = until(&mut on_a, "online_count").await;
        if f["online"] == 3 {
            break f;
        }
    };
    assert_eq!(online["online"], 3);
    // ListRooms on B reports the room as its owner sees it.
    let mut cb = b.server.control().await;
    let listed = cb
        .client
        .list_rooms(authed(showfloor::pb::ListRoomsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    let r = listed.iter().find(|r| r.id == room).expect("listed on B");
    assert_eq!((r.online, r.owner_node.as_str()), (3, "node-a"));

    // A brand switch (asked of B, run on A) is rendered on B per class.
    cb.switch(&room, &show.brand_b).await;
    let f = until(&mut public_b, "brand_switched").await;
    assert_eq!(f["brand"]["id"], show.brand_b.as_str());
    no_price_or_link(&f);
    let f = until(&mut dealer_b, "brand_switched").await;
    let tent = f["shelf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bravo-tent")
        .cloned()
        .unwrap();
    assert_eq!(tent["price_cents"], 15_500, "{f}");
    assert!(tent["link"].as_str().unwrap().contains("shop.example"));
    let on_a_switch = until(&mut on_a, "brand_switched").await;
    assert_eq!(f["seq"], on_a_switch["seq"], "one sequence across nodes");

    // Chat from B reaches A, and B's other viewer, with the same seq.
    public_b
        .send(json!({"type": "chat", "text": "hello from b"}))
        .await;
    let on_a_chat = until(&mut on_a, "chat").await;
    assert_eq!(on_a_chat["text"], "hello from b");
    assert_eq!(on_a_chat["viewer_id"], "pb");
    let on_b_chat = until(&mut dealer_b, "chat").await;
    assert_eq!(on_b_chat["seq"], on_a_chat["seq"]);
    assert_eq!(until(&mut public_b, "chat").await["text"], "hello from b");

    // A dealer on B buys: the answer comes back from A once durable; the sale's events
    // reach every node.
    let sale = ca.flash_sale(&room, &show.products[2].id, 1, 1, 600).await;
    dealer_b
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "b-1"}))
        .await;
    let r = until(&mut dealer_b, "grab_result").await;
    assert_eq!(r["result"], "won", "{r}");
    assert!(r["order_id"].is_string());
    until(&mut on_a, "sold_out").await;
    let sold_out = until(&mut public_b, "sold_out").await;
    assert_eq!(sold_out["sale_id"], sale.id.as_str());
    // A public viewer on B is refused as on A (the room's own answer).
    public_b
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "p-1"}))
        .await;
    let r = until(&mut public_b, "grab_result").await;
    assert_eq!(r["result"], "not_eligible", "{r}");

    // Verified by the host while watching on B: the viewer's class changes in order with the
    // events, so the next switch shows it the gold prices.
    ca.verify(&room, "pb", "gold").await;
    let changed = until(&mut public_b, "role_changed").await;
    assert_eq!(changed["you"]["tier"], "gold", "{changed}");
    ca.switch(&room, &show.brand_a).await;
    let f = until(&mut public_b, "brand_switched").await;
    assert_eq!(f["shelf"][0]["price_cents"], 11_100, "{f}");

    // Resume on B: the events missed while away are replayed in order, without a gap.
    ca.announce(&room, "before").await;
    let before = until(&mut dealer_b, "announce").await;
    let (last_seq, epoch) = (before["seq"].as_u64().unwrap(), w["epoch"].clone());
    drop(dealer_b);
    ca.announce(&room, "missed-1").await;
    ca.announce(&room, "missed-2").await;
    let query = format!("&last_seq={last_seq}&epoch={}", epoch.as_str().unwrap());
    let (mut back, w) = b.join_with(&room, &dealer("db"), &query).await.unwrap();
    assert_eq!(w["resumed"], true, "{w}");
    let n = w["replayed"].as_u64().unwrap();
    assert!(n >= 2, "{w}");
    let mut seqs = Vec::new();
    for _ in 0..n {
        seqs.push(back.frame().await["seq"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (last_seq + 1..=last_seq + n).collect();
    assert_eq!(seqs, expected, "replayed in order from after last_seq");
    ca.announce(&room, "live again").await;
    // Live events follow the replay without a gap (an online count may come first).
    let mut prev = last_seq + n;
    loop {
        let f = back.frame().await;
        assert_eq!(
            f["seq"].as_u64().unwrap(),
            prev + 1,
            "no gap after the replay: {f}"
        );
        prev += 1;
        if f["type"] == "announce" {
            assert_eq!(f["text"], "live again");
            break;
        }
    }

    // A viewer on B kicked by the host (on A) is closed by the room with 4003, and its
    // token is refused on rejoining B.
    ca.client
        .kick_viewer(authed(showfloor::pb::KickViewerRequest {
            room_id: room.clone(),
            viewer_id: "db".into(),
            reason: "spam".into(),
        }))
        .await
        .unwrap();
    let (code, reason) = back.closed().await;
    assert_eq!(code, 4003, "{reason}");
    let (code, reason) = b.join(&room, &dealer("db")).await.err().unwrap();
    assert_eq!(code, 4003, "{reason}");

    // Leaving on B is seen by the room: the count goes down.
    drop(public_b);
    loop {
        let f = until(&mut on_a, "online_count").await;
        if f["online"] == 1 {
            break;
        }
    }
    let mb = b.metrics().await;
    assert!(mb.contains("\nshowfloor_rooms_followed 1\n"), "{mb}");
}

/// A node keeps the room's events for resume itself. A viewer back on B after 400 long
/// announcements gets them all replayed from B's own window, in order, then live events:
/// together they are more than one NATS message carries (1 MiB), so the owner could not
/// have sent them (it would have answered with a fresh snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_a_serving_node_is_replayed_from_its_own_window() {
    const MISSED: u64 = 400;
    let TwoNodes {
        a,
        b,
        show,
        nats: _nats,
        ..
    } = two_nodes_with_a_show().await;
    let mut ca = a.server.control().await;
    let room = show.room.clone();
    // Another viewer keeps B following the room while the first is away.
    let (mut stays, _) = b
        .join(&room, &ca.token(&room, "stays").await)
        .await
        .unwrap();
    let token = ca.token(&room, "away").await;
    let (mut away, w) = b.join(&room, &token).await.unwrap();
    ca.announce(&room, "before").await;
    let last_seq = until(&mut away, "announce").await["seq"].as_u64().unwrap();
    drop(away);
    let long = "展".repeat(990);
    for i in 0..MISSED {
        ca.announce(&room, &format!("{i:03} {long}")).await;
    }
    // B has them all once its other viewer has the last.
    while until(&mut stays, "announce").await["seq"].as_u64().unwrap() < last_seq + MISSED {}

    let query = format!(
        "&last_seq={last_seq}&epoch={}",
        w["epoch"].as_str().unwrap()
    );
    let (mut back, w) = b.join_with(&room, &token, &query).await.unwrap();
    assert_eq!(w["resumed"], true, "{w}");
    assert_eq!(w["replayed"], MISSED, "{w}");
    let mut bytes = 0;
    for i in 0..MISSED {
        let f = back.frame().await;
        assert_eq!(f["seq"].as_u64(), Some(last_seq + 1 + i), "{f}");
        assert!(f["text"].as_str().unwrap().starts_with(&format!("{i:03} ")));
        bytes += f.to_string().len();
    }
    assert!(bytes > 1 << 20, "the replay is {bytes} bytes");
    let mb = b.metrics().await;
    assert!(
        mb.contains("\nshowfloor_resumes_replayed_here_total 1\n"),
        "{mb}"
    );
    ca.announce(&room, "live again").await;
    assert_eq!(until(&mut back, "announce").await["text"], "live again");
}

/// The host console watches the room from a node that does not own it: chat and stats from
/// the whole room (viewers on both nodes); when the room leaves its owner the stream ends with
/// UNAVAILABLE ("watch it again"), not as if the room had ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_console_watches_the_whole_room_from_any_node() {
    use showfloor::pb;
    let TwoNodes {
        a,
        b,
        show,
        nats: _nats,
        ..
    } = two_nodes_with_a_show().await;
    let room = show.room.clone();
    let mut ca = a.server.control().await;
    let mut cb = b.server.control().await;
    let mut watch = cb
        .client
        .watch_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let (mut on_a, _) = a.join(&room, &ca.token(&room, "wa").await).await.unwrap();
    let (_on_b, _) = b.join(&room, &ca.token(&room, "wb").await).await.unwrap();
    on_a.send(json!({"type": "chat", "text": "seen from b"}))
        .await;
    let (mut chat, mut both_online) = (false, false);
    while !(chat && both_online) {
        let ev = tokio::time::timeout(WAIT, watch.message())
            .await
            .expect("an event within the wait")
            .expect("the stream goes on")
            .expect("an event");
        match ev.event.unwrap() {
            pb::watch_room_event::Event::Chat(m) => {
                assert_eq!(
                    (m.text.as_str(), m.viewer_id.as_str()),
                    ("seen from b", "wa")
                );
                chat = true;
            }
            pb::watch_room_event::Event::Stats(s) => both_online |= s.online == 2,
            _ => {}
        }
    }
    // A loses the room (it stops renewing its lease): B's watch is cut off, explicitly.
    a.leases.set_renewals_paused(true);
    let status = loop {
        match tokio::time::timeout(WAIT, watch.message())
            .await
            .expect("the watch ends within the wait")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the watch ended as if the room had ended"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("watch it again"), "{status:?}");
}

/// With the media relay every node takes WHIP and WHEP requests itself, for any room. A node
/// that cannot relay (no address to be reached at: no --advertise) redirects them (307, method,
/// body and query kept) to the room's node, at the address that node advertises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_requests_are_served_anywhere_or_redirected_by_a_node_without_relay() {
    use common::rtc_client::http;
    let TwoNodes {
        a,
        b,
        db,
        show,
        nats,
    } = two_nodes_with_a_show().await;
    let c = common::cluster::node_with(&nats, &db, "node-c", |c| c.advertise = None).await;
    let room = show.room.clone();
    let a_addr = a.server.app().http_addr;
    let location = |r: &common::rtc_client::HttpResponse| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.clone())
    };
    let sdp = [("Content-Type", "application/sdp")];
    let whep = format!("/whep/{room}");
    let whip = format!("/whip/{room}/{}?token=t0k", show.brand_a);
    for path in [&whep, &whip] {
        let r = http(b.server.app().http_addr, "POST", path, &sdp, "v=0").await;
        assert_eq!(
            r.status, 401,
            "B answers {path} itself (no valid token): {:?}",
            r.body
        );
        let r = http(c.server.app().http_addr, "POST", path, &sdp, "v=0").await;
        assert_eq!(r.status, 307, "C redirects {path}: {:?}", r.body);
        assert_eq!(
            location(&r).as_deref(),
            Some(format!("//127.0.0.1:{}{path}", a_addr.port()).as_str()),
            "to A, the query (a token) kept"
        );
    }
}
