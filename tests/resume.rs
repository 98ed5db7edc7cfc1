//! A reconnecting viewer gets exactly the missed events, in order — or an explicit fresh
//! snapshot when the gap is outside the history window.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_in_order() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "resumer").await;
    let mut v = server.viewer(&show.room, &t).await;
    let w = v.expect("welcome").await;
    let epoch = w["epoch"].as_str().unwrap().to_string();
    c.announce(&show.room, "before").await;
    let before = v.expect("announce").await;
    let last_seq = before["seq"].as_u64().unwrap();
    drop(v);

    // Missed while away: an announcement, a switch, a pin, chat from someone else.
    c.announce(&show.room, "missed-1").await;
    c.switch(&show.room, &show.brand_b).await;
    c.client
        .pin_product(authed(pb::ProductRef {
            room_id: show.room.clone(),
            product_id: show.products[3].id.clone(),
        }))
        .await
        .unwrap();
    let t2 = c.token(&show.room, "talker").await;
    let mut talker = server.viewer(&show.room, &t2).await;
    talker.expect("welcome").await;
    talker
        .send(json!({"type":"chat","text":"missed-chat"}))
        .await;
    talker.expect("chat").await;
    c.announce(&show.room, "missed-last").await;
    talker.expect("announce").await;

    let mut back = server
        .viewer_with(
            &show.room,
            &t,
            &format!("&last_seq={last_seq}&epoch={epoch}"),
        )
        .await;
    let w = back.expect("welcome").await;
    assert_eq!(w["resumed"], true, "{w}");
    let n = w["replayed"].as_u64().unwrap();
    let mut seqs = Vec::new();
    let mut kinds = Vec::new();
    for _ in 0..n {
        let f = back.frame().await;
        seqs.push(f["seq"].as_u64().unwrap());
        kinds.push(f["type"].as_str().unwrap().to_string());
    }
    // Gap-free and in order, starting right after last_seq.
    let expected: Vec<u64> = (last_seq + 1..=last_seq + n).collect();
    assert_eq!(seqs, expected);
    for k in ["announce", "brand_switched", "product_pinned", "chat"] {
        assert!(kinds.contains(&k.to_string()), "{kinds:?}");
    }
    assert!(
        back.saw_text("missed-1") && back.saw_text("missed-chat") && back.saw_text("missed-last")
    );
    assert!(!back.saw_text("\"before\""));
    // Live events continue after the replay.
    c.announce(&show.room, "live-again").await;
    let f = back.frame().await;
    assert_eq!(f["seq"].as_u64().unwrap(), last_seq + n + 1, "{f}");
    let mut f = f;
    while f["text"] != "live-again" {
        f = back.expect("announce").await;
    }
}

#[tokio::test]
async fn a_gap_outside_the_window_gets_a_fresh_snapshot_flagged_not_resumed() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let r = c
        .client
        .create_room(authed(pb::CreateRoomRequest {
            title: "tiny history".into(),
            history_window: 3,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let room = r.room.unwrap().id;
    let t = c.token(&room, "v").await;
    for i in 0..6 {
        c.announce(&room, &format!("a{i}")).await;
    }
    let mut v = server.viewer_with(&room, &t, "&last_seq=1").await;
    let w = v.expect("welcome").await;
    assert_eq!(w["resumed"], false);
    assert!(w["room"]["title"] == "tiny history");
    // A seq from the future, or another epoch, is not trusted either.
    let mut v = server.viewer_with(&room, &t, "&last_seq=999").await;
    assert_eq!(v.expect("welcome").await["resumed"], false);
    let mut v = server.viewer_with(&room, &t, "&last_seq=5&epoch=old").await;
    assert_eq!(v.expect("welcome").await["resumed"], false);
    // A seq without its epoch cannot be trusted: a snapshot, not a replay.
    let mut v = server.viewer_with(&room, &t, "&last_seq=5").await;
    assert_eq!(v.expect("welcome").await["resumed"], false);
    // The `resume` message on an open connection replays too, given the epoch.
    let mut v = server.viewer(&room, &t).await;
    let epoch = v.expect("welcome").await["epoch"].clone();
    c.announce(&room, "x").await;
    let x = v.expect("announce").await["seq"].as_u64().unwrap();
    v.send(json!({"type":"resume","last_seq": x - 1, "epoch": epoch}))
        .await;
    // The announcement arrives a second time: replayed on request.
    let again = v.expect("announce").await;
    assert_eq!(again["seq"].as_u64().unwrap(), x, "{again}");
    assert_eq!(again["text"], "x");
    // Without the epoch the same message gets a fresh snapshot.
    v.send(json!({"type":"resume","last_seq": x - 1})).await;
    let w = v.expect("welcome").await;
    assert_eq!(w["resumed"], false, "{w}");
}

/// After a restart the sequence numbers start again in a new epoch: a viewer that resumes
/// with its old `last_seq` and no epoch must get a snapshot, not the new epoch's events that
/// happen to carry higher numbers (it would silently miss what happened in between).
#[tokio::test]
async fn a_resume_without_epoch_across_a_restart_gets_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(tmp.path(), |_| {}).await;
    let mut c = server.control().await;
    let room = c.create_room("restarted").await.room.unwrap().id;
    let t = c.token(&room, "v").await;
    for i in 0..11 {
        c.announce(&room, &format!("before {i}")).await;
    }
    let mut v = server.viewer(&room, &t).await;
    let before = v.expect("welcome").await;
    assert_eq!(before["seq"], 11);
    server.stop().await;

    let server = Server::start_in(tmp.path(), |_| {}).await;
    let mut c = server.control().await;
    for i in 0..22 {
        c.announce(&room, &format!("after {i}")).await;
    }
    let mut v = server.viewer_with(&room, &t, "&last_seq=11").await;
    let w = v.expect("welcome").await;
    assert_eq!(w["resumed"], false, "{w}");
    assert_ne!(w["epoch"], before["epoch"]);
    let mut v = server.viewer_with(&room, &t, "&last_seq=11").await;
    v.expect("welcome").await;
    v.send(json!({"type":"resume","last_seq": 11})).await;
    assert_eq!(v.expect("welcome").await["resumed"], false);
}
