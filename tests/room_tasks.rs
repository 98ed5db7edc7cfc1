//! Room tasks: a room is loaded on first use (not every room at start), an ended room's task
//! stops after its grace period and comes back when used, and a room whose task panics is
//! reloaded from the store — its viewers stay connected and get a fresh snapshot.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;
use std::time::Duration;

fn loaded(server: &Server) -> usize {
    server.app().hub.loaded_rooms().len()
}

async fn wait_until(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rooms_load_on_first_use_and_an_ended_room_unloads_after_its_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(tmp.path(), |_| {}).await;
    let mut c = server.control().await;
    let live = c.create_room("live").await.room.unwrap().id;
    let ended = c.create_room("ended").await.room.unwrap().id;
    let idle = c.create_room("never used again").await.room.unwrap().id;
    c.client
        .close_room(authed(pb::RoomRef {
            room_id: ended.clone(),
        }))
        .await
        .unwrap();
    server.stop().await;

    let server = Server::start_in(tmp.path(), |cfg| cfg.ended_room_grace_secs = 1).await;
    assert_eq!(loaded(&server), 0, "nothing is loaded at start");
    let mut c = server.control().await;
    // Listing reads the store; it loads nothing.
    let all = c
        .client
        .list_rooms(authed(pb::ListRoomsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .rooms;
    let mut ids: Vec<_> = all.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    let mut want = vec![live.clone(), ended.clone(), idle.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(loaded(&server), 0);

    // First use loads the room; a viewer joins it.
    let t = c.token(&live, "v").await;
    let mut v = server.viewer(&live, &t).await;
    assert_eq!(v.expect("welcome").await["room"]["title"], "live");
    assert_eq!(loaded(&server), 1);

    // The ended room loads to answer, then unloads once its grace is over.
    let r = c.get_room(&ended).await;
    assert_eq!(r.state, pb::RoomState::Ended as i32);
    assert_eq!(loaded(&server), 2);
    wait_until(|| loaded(&server) == 1, "the ended room unloads").await;
    assert_eq!(server.app().hub.loaded_rooms(), vec![live.clone()]);
    // ... and answers again when asked.
    assert_eq!(c.get_room(&ended).await.title, "ended");

    // A room that was never stored is not found, and nothing is loaded for it.
    let e = c
        .client
        .get_room(authed(pb::GetRoomRequest {
            room_id: "rnosuchroom".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    drop(v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_room_is_reloaded_and_its_viewers_get_a_fresh_snapshot() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, 10, 1, 600)
        .await;
    let mut dealer = connect(
        &server.app().http_addr.to_string(),
        &show.room,
        &dealer_token(&show.room, &show.key, "d1", "gold"),
    )
    .await;
    let before = dealer.expect("welcome").await;
    dealer
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "k1"}))
        .await;
    let won = dealer.expect("grab_result").await;
    assert_eq!(won["result"], "won");
    let t = c.token(&show.room, "watcher").await;
    let mut viewer = server.viewer(&show.room, &t).await;
    viewer.expect("welcome").await;

    server.app().hub.inject_panic(&show.room).await.unwrap();

    // Both stay connected and get a fresh snapshot of a new epoch.
    for v in [&mut dealer, &mut viewer] {
        let w = v.expect("welcome").await;
        assert_eq!(w["resumed"], false, "{w}");
        assert_ne!(w["epoch"], before["epoch"]);
    }
    // The acknowledged win survived: the reloaded sale has one unit less, and the same key
    // still gets the same answer.
    let s = c
        .client
        .get_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.remaining, 9);
    dealer
        .send(json!({"type": "grab", "sale_id": sale.id, "key": "k1"}))
        .await;
    let again = dealer.expect("grab_result").await;
    assert_eq!(
        (&again["result"], &again["order_id"]),
        (&won["result"], &won["order_id"])
    );
    // The room works: chat goes round, host commands are answered.
    viewer
        .send(json!({"type": "chat", "text": "still here?"}))
        .await;
    assert_eq!(dealer.expect("chat").await["text"], "still here?");
    c.announce(&show.room, "yes").await;
    assert_eq!(viewer.expect("announce").await["text"], "yes");
    assert_eq!(server.app().metrics.room_restarts.get(), 1);
}
