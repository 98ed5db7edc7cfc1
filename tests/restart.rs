//! A restart keeps rooms, running order, catalogue, dealers, applications and kicked tokens.

mod common;
use common::*;
use showfloor::pb;

#[tokio::test]
async fn rooms_catalogue_and_dealers_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(tmp.path(), |_| {}).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    c.verify(&show.room, "gold-dealer", "gold").await;
    c.client
        .pin_product(authed(pb::ProductRef {
            room_id: show.room.clone(),
            product_id: show.products[0].id.clone(),
        }))
        .await
        .unwrap();
    let before = c.get_room(&show.room).await;
    let t_chat = c.token(&show.room, "chatter").await;
    let mut ch = server.viewer(&show.room, &t_chat).await;
    ch.expect("welcome").await;
    ch.send(serde_json::json!({"type":"chat","text":"before the restart"}))
        .await;
    let chat_id = ch.expect("chat").await["id"].as_str().unwrap().to_string();
    let t_kicked = c.token(&show.room, "kickme").await;
    let mut k = server.viewer(&show.room, &t_kicked).await;
    k.expect("welcome").await;
    c.client
        .kick_viewer(authed(pb::KickViewerRequest {
            room_id: show.room.clone(),
            viewer_id: "kickme".into(),
            reason: String::new(),
        }))
        .await
        .unwrap();
    k.closed().await;
    server.stop().await;

    let server = Server::start_in(tmp.path(), |_| {}).await;
    let mut c = server.control().await;
    let after = c.get_room(&show.room).await;
    assert_eq!(after.title, before.title);
    assert_eq!(after.state, pb::RoomState::Live as i32);
    assert_eq!(after.brand_on_air, before.brand_on_air);
    assert_eq!(after.pinned_product, before.pinned_product);
    assert_eq!(after.brands, before.brands);
    assert_eq!(after.tiers, before.tiers);
    let products = c
        .client
        .list_products(authed(pb::ListProductsRequest {
            room_id: show.room.clone(),
            brand_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .products;
    assert_eq!(products, show.products);
    let dealers = c
        .client
        .list_dealers(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .dealers;
    assert_eq!(dealers.len(), 1);
    assert_eq!(dealers[0].viewer_id, "gold-dealer");
    assert_eq!(dealers[0].tier, "gold");

    // The restored dealer sees gold prices; the old token key still verifies tokens.
    let t = c.token(&show.room, "gold-dealer").await;
    let mut v = server.viewer(&show.room, &t).await;
    let w = v.expect("welcome").await;
    assert_eq!(w["shelf"][0]["price_cents"], 11_100);
    assert_eq!(w["pinned_product"], show.products[0].id);
    // Recent chat is back in the snapshot, and the host can still delete it.
    assert_eq!(w["recent_chat"][0]["text"], "before the restart");
    c.client
        .delete_message(authed(pb::DeleteMessageRequest {
            room_id: show.room.clone(),
            message_id: chat_id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(v.expect("chat_deleted").await["id"], chat_id.as_str());
    // The kicked token is still refused.
    let mut k = server.viewer(&show.room, &t_kicked).await;
    assert_eq!(k.closed().await.0, 4003);
    // New ids do not collide with old ones.
    let p = c
        .product(&show.room, &show.brand_a, "new-after-restart", 1, 2)
        .await;
    assert!(show.products.iter().all(|o| o.id != p.id));
}
