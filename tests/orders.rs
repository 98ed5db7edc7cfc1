//! Verified dealers order inside the live at their tier's price; the same key never makes a
//! second order; public viewers cannot order; hosts list and advance orders.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;

/// The room's orders as the running server's store holds them, read through the `Store` trait.
async fn stored_orders(server: &Server, room: &str) -> usize {
    let store = server.app().hub.store();
    let room = store
        .load_room(room)
        .await
        .unwrap()
        .expect("the room is stored");
    room.orders.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_orders_at_their_tier_price_once_per_key() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut watch = c
        .client
        .watch_room(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let t = c.token(&show.room, "buyer-1").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    c.verify(&show.room, "buyer-1", "silver").await;
    v.expect("role_changed").await;

    let jacket = &show.products[0];
    let order =
        json!({"type": "place_order", "product_id": jacket.id, "quantity": 12, "key": "cart-1"});
    v.send(order.clone()).await;
    let placed = v.expect("order_placed").await;
    let o = &placed["order"];
    assert_eq!(o["unit_price_cents"], 12_200, "silver price");
    assert_eq!(o["total_cents"], 12_200 * 12);
    assert_eq!(o["status"], "placed");
    let id = o["id"].as_str().unwrap().to_string();

    // The same key again: the same order, not a second one.
    v.send(order).await;
    let again = v.expect("order_placed").await;
    assert_eq!(again["order"]["id"], id.as_str());
    // The same key for something else is refused.
    v.send(
        json!({"type": "place_order", "product_id": jacket.id, "quantity": 20, "key": "cart-1"}),
    )
    .await;
    assert_eq!(v.expect("error").await["code"], "key_reused");

    // The host sees it in WatchRoom and in ListOrders, and confirms and ships it.
    let seen = loop {
        let ev = watch.message().await.unwrap().unwrap();
        if let Some(pb::watch_room_event::Event::Order(o)) = ev.event {
            break o;
        }
    };
    assert_eq!((seen.id.as_str(), seen.quantity), (id.as_str(), 12));
    let list = c
        .client
        .list_orders(authed(pb::ListOrdersRequest {
            room_id: show.room.clone(),
            viewer_id: "buyer-1".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((list.total_count, list.total_cents), (1, 12_200 * 12));
    for status in [pb::OrderStatus::Confirmed, pb::OrderStatus::Shipped] {
        let o = c
            .client
            .update_order_status(authed(pb::UpdateOrderStatusRequest {
                room_id: show.room.clone(),
                order_id: id.clone(),
                status: status as i32,
                reason: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(o.status, status as i32);
        let ev = v.expect("order_status").await;
        assert_eq!(ev["order"]["id"], id.as_str());
    }
    assert!(v.frames.last().unwrap().contains("shipped"));
    // shipped → cancelled is not a transition.
    let e = c
        .client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: id.clone(),
            status: pb::OrderStatus::Cancelled as i32,
            reason: "changed mind".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(stored_orders(&server, &show.room).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_get_precise_errors_and_leave_no_trace() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let public = c.token(&show.room, "watcher").await;
    let mut p = server.viewer(&show.room, &public).await;
    p.expect("welcome").await;
    let jacket = &show.products[0];
    p.send(json!({"type": "place_order", "product_id": jacket.id, "quantity": 10, "key": "k"}))
        .await;
    let e = p.expect("error").await;
    assert_eq!(e["code"], "not_dealer");

    let mut d = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "d1", "gold"),
        )
        .await;
    d.expect("welcome").await;
    let tent = &show.products[2]; // brand B, not on air
    for (msg, code) in [
        (
            json!({"type": "place_order", "product_id": jacket.id, "quantity": 9, "key": "a"}),
            "below_minimum",
        ),
        (
            json!({"type": "place_order", "product_id": jacket.id, "quantity": 1_000_001, "key": "b"}),
            "quantity_too_large",
        ),
        (
            json!({"type": "place_order", "product_id": "p999", "quantity": 10, "key": "c"}),
            "unknown_product",
        ),
        (
            json!({"type": "place_order", "product_id": tent.id, "quantity": 10, "key": "d"}),
            "not_on_shelf",
        ),
        (
            json!({"type": "place_order", "product_id": jacket.id, "quantity": 0, "key": "e"}),
            "invalid_field",
        ),
        (
            json!({"type": "place_order", "product_id": jacket.id, "quantity": 10}),
            "missing_field",
        ),
    ] {
        d.send(msg.clone()).await;
        let e = d.expect("error").await;
        assert_eq!(e["code"], code, "{msg}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    let e = c
        .client
        .get_order(authed(pb::OrderRef {
            room_id: show.room.clone(),
            order_id: "o1".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c
        .client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: "o1".into(),
            status: 99,
            reason: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(stored_orders(&server, &show.room).await, 0);

    // Cancelling needs a reason.
    d.send(json!({"type": "place_order", "product_id": jacket.id, "quantity": 10, "key": "ok"}))
        .await;
    let id = d.expect("order_placed").await["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = c
        .client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: id.clone(),
            status: pb::OrderStatus::Cancelled as i32,
            reason: " ".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let o = c
        .client
        .update_order_status(authed(pb::UpdateOrderStatusRequest {
            room_id: show.room.clone(),
            order_id: id.clone(),
            status: pb::OrderStatus::Cancelled as i32,
            reason: "out of stock at the factory".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(o.status_reason, "out of stock at the factory");
    let ev = d.expect("order_status").await;
    assert_eq!(ev["order"]["status"], "cancelled");
    assert_eq!(stored_orders(&server, &show.room).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let token = dealer_token(&show.room, &show.key, "d1", "gold");
    let mut d = server.viewer(&show.room, &token).await;
    d.expect("welcome").await;
    let msg = json!({"type": "place_order", "product_id": show.products[1].id, "quantity": 30, "key": "po-77"});
    d.send(msg.clone()).await;
    let first = d.expect("order_placed").await["order"].clone();
    drop(d);
    server.stop().await;

    let server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    let list = c
        .client
        .list_orders(authed(pb::ListOrdersRequest {
            room_id: show.room.clone(),
            product_id: show.products[1].id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.orders.len(), 1);
    assert_eq!(list.orders[0].total_cents, 13_300 * 30);
    let mut d = server.viewer(&show.room, &token).await;
    d.expect("welcome").await;
    d.send(msg).await;
    let again = d.expect("order_placed").await["order"].clone();
    assert_eq!(
        again["id"], first["id"],
        "the key is remembered across restarts"
    );
    // A new key is a new order with a new id.
    d.send(json!({"type": "place_order", "product_id": show.products[1].id, "quantity": 10, "key": "po-78"}))
        .await;
    let next = d.expect("order_placed").await["order"].clone();
    assert_ne!(next["id"], first["id"]);
}
