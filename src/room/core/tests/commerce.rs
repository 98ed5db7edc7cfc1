//! Commerce as the room drives it: restarts, injected randomness, undo after a failed write.

use super::*;

#[test]
fn red_packet_positions_survive_a_restart_with_a_hole_from_an_undone_grab() {
    // Position 1 was handed out, its write failed and was undone, and position 2 was
    // committed: after a restart v1 and v3 keep their shares and the hole is reused.
    let rec = room().record;
    let grab = |v: &str, index: u32, amount_cents: i64| PacketGrab {
        viewer_id: v.into(),
        index,
        amount_cents,
    };
    let loaded = LoadedRoom {
        record: Some(rec),
        red_packets: vec![RedPacket {
            id: "r1".into(),
            total_cents: 100,
            count: 4,
            tiers: Vec::new(),
            message: "luck".into(),
            amounts: vec![10, 20, 30, 40],
            created_ms: 0,
            expires_ms: 60_000,
            grabs: vec![grab("v1", 0, 10), grab("v3", 2, 30)],
        }],
        ..LoadedRoom::default()
    };
    let mut r = Room::restore(loaded, "e2".into(), 60_000, 10).unwrap();
    let mut out = Vec::new();
    let mut grabs = Vec::new();
    for (session, v) in [(1, "v1"), (2, "v4"), (3, "v5"), (4, "v6")] {
        r.join(sid(session), viewer(v), 10, &mut out).unwrap();
        let result = r.grab_red_packet(sid(session), "r1", 20, &mut out);
        grabs.push(result.map_err(|e| e.code.to_string()));
    }
    let written: Vec<(String, u32, i64)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::GrabRedPacket {
                viewer_id,
                index,
                amount_cents,
                ..
            }) => Some((viewer_id.clone(), *index, *amount_cents)),
            _ => None,
        })
        .collect();
    assert_eq!(
        grabs,
        vec![
            Err("already_grabbed".to_string()),
            Ok(()),
            Ok(()),
            Err("packet_empty".to_string())
        ]
    );
    assert_eq!(written, vec![("v4".into(), 1, 20), ("v5".into(), 3, 40)]);
}

#[test]
fn rooms_with_the_same_seed_draw_the_same_seed_and_split() {
    use rand::rngs::StdRng;
    let run = |seed: u64| {
        let (mut r, _) = live_room();
        r.set_entropy(Box::new(StdRng::seed_from_u64(seed)));
        let mut out = Vec::new();
        let draw = match commerce(
            &mut r,
            CommerceCommand::CreateDraw {
                prize: "Tour".into(),
                winners: 1,
                eligibility: DrawEligibility::Everyone,
                entry_seconds: 30,
                beacon_source: String::new(),
            },
            1,
            &mut out,
        ) {
            HostReply::Draw(d) => d.commitment,
            _ => unreachable!(),
        };
        commerce(&mut r, red_packet(10_000, 10), 2, &mut out);
        let split = out
            .iter()
            .find_map(|o| match o {
                Output::Persist(StoreOp::PutRedPacket { packet, .. }) => {
                    Some(packet.amounts.clone())
                }
                _ => None,
            })
            .unwrap();
        (draw, split)
    };
    assert_eq!(run(42), run(42));
    let (commitment, split) = run(42);
    let (other_commitment, other_split) = run(43);
    assert_ne!(commitment, other_commitment);
    assert_ne!(split, other_split);
    assert_eq!(split.iter().sum::<i64>(), 10_000);
}

#[test]
fn a_failed_grant_write_gives_the_unit_back_once_and_the_key_may_try_again() {
    let (mut r, product) = live_room();
    let mut out = Vec::new();
    let sale = match commerce(&mut r, flash_sale(&product, 1, None), 1, &mut out) {
        HostReply::Sale(s) => s.id,
        _ => unreachable!(),
    };
    r.join(sid(1), dealer("d1", "gold"), 1, &mut out).unwrap();
    r.join(sid(2), dealer("d2", "silver"), 1, &mut out).unwrap();
    let grab = |r: &mut Room, s: u64, key: &str, out: &mut Vec<Output>| {
        out.clear();
        let msg = ClientMessage::Grab {
            sale_id: sale.clone(),
            key: key.into(),
        };
        r.client(sid(s), Ok(msg), 2, out);
        frames_of(out, "grab_result")[0]["result"].clone()
    };
    assert_eq!(grab(&mut r, 1, "k", &mut out), "won");
    let undo = undos(&out);
    assert_eq!(frames_of(&out, "sold_out").len(), 1);
    assert_eq!(grab(&mut r, 2, "k", &mut out), "sold_out");
    r.undo(undo[0].clone());
    r.undo(undo[0].clone());
    let sales = match commerce(&mut r, CommerceCommand::ListFlashSales, 3, &mut out) {
        HostReply::Sales(s) => s,
        _ => unreachable!(),
    };
    assert_eq!(sales[0].remaining, 1, "given back once");
    // d2's key keeps its answer; d1 retries its key and wins the unit again.
    assert_eq!(grab(&mut r, 2, "k", &mut out), "sold_out");
    assert_eq!(grab(&mut r, 1, "k", &mut out), "won");
    let orders = match commerce(
        &mut r,
        CommerceCommand::ListOrders(OrderFilter::default()),
        4,
        &mut out,
    ) {
        HostReply::Orders(p) => p.orders,
        _ => unreachable!(),
    };
    assert_eq!(orders.len(), 1);
}

#[test]
fn a_failed_red_packet_write_gives_the_share_back_once() {
    let (mut r, _) = live_room();
    r.set_entropy(Box::new(rand::rngs::StdRng::seed_from_u64(1)));
    let mut out = Vec::new();
    let packet = match commerce(&mut r, red_packet(300, 2), 1, &mut out) {
        HostReply::RedPacket(p) => p.id,
        _ => unreachable!(),
    };
    for (s, v) in [(1, "a"), (2, "b"), (3, "c")] {
        r.join(sid(s), viewer(v), 1, &mut out).unwrap();
    }
    out.clear();
    r.grab_red_packet(sid(1), &packet, 2, &mut out).unwrap();
    let undo = undos(&out);
    assert!(matches!(&undo[..], [Undo::RedPacketGrab { index: 0, .. }]));
    r.undo(undo[0].clone());
    r.undo(undo[0].clone());
    r.grab_red_packet(sid(2), &packet, 3, &mut out).unwrap();
    r.grab_red_packet(sid(3), &packet, 3, &mut out).unwrap();
    assert_eq!(
        r.grab_red_packet(sid(1), &packet, 3, &mut out)
            .unwrap_err()
            .code,
        "packet_empty",
        "two shares, handed out twice in all: the undone one only once more"
    );
}

#[test]
fn a_failed_order_write_frees_the_key_for_a_new_order() {
    let (mut r, product) = live_room();
    let mut out = Vec::new();
    r.join(sid(1), dealer("d1", "silver"), 1, &mut out).unwrap();
    let order = |quantity: u32| ClientMessage::PlaceOrder {
        product_id: product.clone(),
        quantity,
        key: "cart-1".into(),
    };
    out.clear();
    r.client(sid(1), Ok(order(3)), 2, &mut out);
    assert_eq!(
        frames_of(&out, "order_placed")[0]["order"]["total_cents"],
        3600
    );
    r.client(sid(1), Ok(order(4)), 2, &mut out);
    assert_eq!(frames_of(&out, "error")[0]["code"], "key_reused");
    r.undo(undos(&out)[0].clone());
    out.clear();
    r.client(sid(1), Ok(order(4)), 3, &mut out);
    assert_eq!(frames_of(&out, "order_placed")[0]["order"]["quantity"], 4);
}

#[test]
fn a_restart_from_the_written_grants_keeps_every_win_and_key() {
    let (mut r, product) = live_room();
    let mut out = Vec::new();
    let sale = match commerce(&mut r, flash_sale(&product, 3, None), 1, &mut out) {
        HostReply::Sale(s) => s,
        _ => unreachable!(),
    };
    for (s, d) in [(1, "d1"), (2, "d2")] {
        r.join(sid(s), dealer(d, "gold"), 1, &mut out).unwrap();
        let msg = ClientMessage::Grab {
            sale_id: sale.id.clone(),
            key: "k".into(),
        };
        r.client(sid(s), Ok(msg), 2, &mut out);
    }
    let orders: Vec<Order> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::GrantSale { order, .. }) => Some((**order).clone()),
            _ => None,
        })
        .collect();
    let loaded = LoadedRoom {
        record: Some(r.record().clone()),
        sales: vec![FlashSale {
            remaining: 1,
            ..sale.clone()
        }],
        orders,
        ..LoadedRoom::default()
    };
    let mut back = Room::restore(loaded, "e2".into(), 60_000, 3).unwrap();
    let mut out = Vec::new();
    back.join(sid(1), dealer("d1", "gold"), 3, &mut out)
        .unwrap();
    back.join(sid(3), dealer("d3", "gold"), 3, &mut out)
        .unwrap();
    out.clear();
    for s in [1, 3] {
        let msg = ClientMessage::Grab {
            sale_id: sale.id.clone(),
            key: "k".into(),
        };
        back.client(sid(s), Ok(msg), 4, &mut out);
    }
    let results = frames_of(&out, "grab_result");
    assert_eq!(results[0]["result"], "won", "d1's key keeps its win");
    assert_eq!(results[0]["order_id"], "o1");
    assert_eq!(
        results[1]["order_id"], "o3",
        "the last unit, a new order number"
    );
    assert_eq!(frames_of(&out, "sold_out").len(), 1);
}
