//! Red packets: the first `count` viewers each get one share; shares are ≥ 1 cent and sum to
//! the total exactly; everything is recorded durably.

mod common;
use common::*;
use serde_json::json;
use showfloor::model::LoadedRoom;
use showfloor::pb;

/// The room as the running server's store holds it, read through the `Store` trait.
async fn stored_room(server: &Server, room: &str) -> LoadedRoom {
    let store = server.app().hub.store();
    store
        .load_room(room)
        .await
        .unwrap()
        .expect("the room is stored")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_viewers_share_the_total_exactly_once_each() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut viewers = Vec::new();
    for i in 0..8 {
        let t = c.token(&show.room, &format!("fan-{i}")).await;
        let mut v = server.viewer(&show.room, &t).await;
        v.expect("welcome").await;
        viewers.push(v);
    }
    let p = c
        .client
        .drop_red_packet(authed(pb::DropRedPacketRequest {
            room_id: show.room.clone(),
            total_cents: 1_000,
            count: 5,
            tiers: vec![],
            message: "Thanks for coming!".into(),
            duration_seconds: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut amounts = Vec::new();
    let mut empty = 0;
    for v in viewers.iter_mut() {
        let dropped = v.expect("red_packet").await;
        assert_eq!(dropped["packet_id"], p.id.as_str());
        v.send(json!({"type": "grab_red_packet", "packet_id": p.id}))
            .await;
        let f = loop {
            let f = v.frame().await;
            if f["type"] == "red_packet_result" || f["type"] == "error" {
                break f;
            }
        };
        if f["type"] == "red_packet_result" {
            assert_eq!(f["result"], "won");
            amounts.push(f["amount_cents"].as_i64().unwrap());
        } else {
            assert_eq!(f["code"], "packet_empty", "{f}");
            empty += 1;
        }
    }
    assert_eq!(amounts.len(), 5);
    assert_eq!(empty, 3);
    assert_eq!(amounts.iter().sum::<i64>(), 1_000);
    assert!(amounts.iter().all(|a| *a >= 1));
    // A second grab by the same viewer is refused.
    viewers[0]
        .send(json!({"type": "grab_red_packet", "packet_id": p.id}))
        .await;
    assert_eq!(viewers[0].expect("error").await["code"], "already_grabbed");
    assert!(
        viewers[7].saw_text("red_packet_gone") || {
            viewers[7].expect("red_packet_gone").await;
            true
        }
    );

    let got = c
        .client
        .get_red_packet(authed(pb::RedPacketRef {
            room_id: show.room.clone(),
            packet_id: p.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.grabs.len(), 5);
    assert_eq!(got.remaining_cents, 0);
    let stored = stored_room(&server, &show.room).await;
    let grabs = &stored
        .red_packets
        .iter()
        .find(|s| s.id == p.id)
        .expect("the packet is stored")
        .grabs;
    let sum: i64 = grabs.iter().map(|g| g.amount_cents).sum();
    assert_eq!((grabs.len(), sum), (5, 1_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_packets_and_bad_input() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let base = pb::DropRedPacketRequest {
        room_id: show.room.clone(),
        total_cents: 500,
        count: 2,
        tiers: vec!["gold".into()],
        message: String::new(),
        duration_seconds: 60,
    };
    for (req, needle) in [
        (
            pb::DropRedPacketRequest {
                count: 0,
                ..base.clone()
            },
            "count",
        ),
        (
            pb::DropRedPacketRequest {
                total_cents: 0,
                ..base.clone()
            },
            "total_cents",
        ),
        (
            pb::DropRedPacketRequest {
                total_cents: -5,
                ..base.clone()
            },
            "total_cents",
        ),
        (
            pb::DropRedPacketRequest {
                total_cents: 3,
                count: 4,
                ..base.clone()
            },
            "at least count",
        ),
        (
            pb::DropRedPacketRequest {
                tiers: vec!["tin".into()],
                ..base.clone()
            },
            "tin",
        ),
        (
            pb::DropRedPacketRequest {
                duration_seconds: 1,
                ..base.clone()
            },
            "duration_seconds",
        ),
    ] {
        let e = c.client.drop_red_packet(authed(req)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(needle), "{}", e.message());
    }
    let p = c
        .client
        .drop_red_packet(authed(base))
        .await
        .unwrap()
        .into_inner();
    let t = c.token(&show.room, "pub").await;
    let mut public = server.viewer(&show.room, &t).await;
    let w = public.expect("welcome").await;
    assert_eq!(w["red_packets"][0]["packet_id"], p.id.as_str());
    public
        .send(json!({"type": "grab_red_packet", "packet_id": p.id}))
        .await;
    assert_eq!(public.expect("error").await["code"], "not_eligible");
    public
        .send(json!({"type": "grab_red_packet", "packet_id": "r404"}))
        .await;
    assert_eq!(public.expect("error").await["code"], "unknown_packet");
    let mut gold = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "g", "gold"),
        )
        .await;
    gold.expect("welcome").await;
    gold.send(json!({"type": "grab_red_packet", "packet_id": p.id}))
        .await;
    assert_eq!(gold.expect("red_packet_result").await["result"], "won");
    let stored = stored_room(&server, &show.room).await;
    assert_eq!(
        stored.red_packets.len(),
        1,
        "refused packets leave no trace"
    );
    let grabs: usize = stored.red_packets.iter().map(|p| p.grabs.len()).sum();
    assert_eq!(grabs, 1, "refused grabs leave no trace");
}
