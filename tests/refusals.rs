//! Bad tokens are refused with a close code and reason; bad messages get error events;
//! floods are rate-limited; banned words are masked; kicked tokens stay refused.

mod common;
use common::*;
use serde_json::json;
use showfloor::auth::{self, Role, ViewerClaims};
use showfloor::pb;

fn claims(room: &str, exp: i64) -> ViewerClaims {
    ViewerClaims {
        room: room.into(),
        sub: "someone".into(),
        name: "Someone".into(),
        role: Role::Viewer,
        tier: None,
        inv: None,
        iat: 0,
        exp,
        jti: "jti-1".into(),
    }
}

fn far() -> i64 {
    4_000_000_000
}

#[tokio::test]
async fn expired_wrong_room_wrong_signature_and_garbage_tokens_are_refused() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let a = setup_show(&mut c).await;
    let b = setup_show(&mut c).await;

    let expired = auth::issue_viewer_token(&a.key, &claims(&a.room, 1_000)).unwrap();
    let mut v = server.viewer(&a.room, &expired).await;
    assert_eq!(v.closed().await, (4001, "token has expired".into()));

    let other_room = c.token(&b.room, "x").await;
    let mut v = server.viewer(&a.room, &other_room).await;
    assert_eq!(v.closed().await, (4003, "token is for another room".into()));

    let forged = auth::issue_viewer_token(&auth::generate_key(), &claims(&a.room, far())).unwrap();
    let mut v = server.viewer(&a.room, &forged).await;
    assert_eq!(
        v.closed().await,
        (4001, "token signature is invalid".into())
    );

    let mut v = server.viewer(&a.room, "not-a-token").await;
    assert_eq!(v.closed().await.0, 4001);
    let mut v = server.viewer(&a.room, "").await;
    assert_eq!(v.closed().await, (4001, "no token given".into()));

    let mut v = server.viewer("rnosuchroom", &other_room).await;
    assert_eq!(v.closed().await.0, 4004);

    // A token minted by the host's own backend with the room key works, dealer tier and all.
    let mut own = claims(&a.room, far());
    own.role = Role::Dealer;
    own.tier = Some("gold".into());
    let minted = auth::issue_viewer_token(&a.key, &own).unwrap();
    let mut v = server.viewer(&a.room, &minted).await;
    let w = v.expect("welcome").await;
    assert_eq!(w["you"]["tier"], "gold");
    assert_eq!(w["shelf"][0]["price_cents"], 11_100);
}

#[tokio::test]
async fn malformed_messages_get_errors_floods_are_limited_banned_words_masked() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "chatty").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;

    v.send_raw("{not json").await;
    assert_eq!(v.expect("error").await["code"], "bad_json");
    v.send(json!({"type":"teleport"})).await;
    assert_eq!(v.expect("error").await["code"], "unknown_type");
    v.send(json!({"type":"chat"})).await;
    assert_eq!(v.expect("error").await["code"], "missing_field");
    v.send(json!({"type":"chat","text": "y".repeat(5000)}))
        .await;
    let e = v.expect("error").await;
    assert_eq!(e["code"], "too_large");
    assert!(e["message"].as_str().unwrap().contains("4096"));
    v.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await
    .unwrap();
    assert_eq!(v.expect("error").await["code"], "bad_frame");

    // Banned words are masked, case-insensitively.
    v.send(json!({"type":"chat","text":"well DARN it"})).await;
    let chat = v.expect("chat").await;
    assert_eq!(chat["text"], "well **** it");

    // Default limit: 5 messages per 10 s. The first already counted.
    for i in 0..4 {
        v.send(json!({"type":"chat","text": format!("m{i}")})).await;
        v.expect("chat").await;
    }
    v.send(json!({"type":"chat","text":"one too many"})).await;
    let e = v.expect("error").await;
    assert_eq!(e["code"], "rate_limited", "{e}");

    // Persistent abuse ends the connection with a reason.
    for _ in 0..40 {
        v.send_raw("garbage").await;
    }
    let (code, reason) = v.closed().await;
    assert_eq!(code, 4029);
    assert!(!reason.is_empty());
}

use futures_util::SinkExt;

#[tokio::test]
async fn kicked_tokens_stay_refused_and_mute_blocks_chat() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "troll").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;

    c.client
        .mute_viewer(authed(pb::MuteViewerRequest {
            room_id: show.room.clone(),
            viewer_id: "troll".into(),
            duration_seconds: 600,
        }))
        .await
        .unwrap();
    assert!(v.expect("muted").await["until_ms"].as_i64().unwrap() > 0);
    v.send(json!({"type":"chat","text":"hello"})).await;
    assert_eq!(v.expect("error").await["code"], "muted");

    c.client
        .kick_viewer(authed(pb::KickViewerRequest {
            room_id: show.room.clone(),
            viewer_id: "troll".into(),
            reason: "spam".into(),
        }))
        .await
        .unwrap();
    assert_eq!(v.expect("kicked").await["reason"], "kicked: spam");
    assert_eq!(v.closed().await, (4003, "kicked: spam".into()));
    let mut again = server.viewer(&show.room, &t).await;
    assert_eq!(again.closed().await.0, 4003);
    // A new token for the same person is accepted; the mute still applies.
    let t2 = c.token(&show.room, "troll").await;
    let mut v2 = server.viewer(&show.room, &t2).await;
    let w = v2.expect("welcome").await;
    assert!(w["you"]["muted_until_ms"].as_i64().unwrap() > 0);

    // An ended room refuses joins with a clear reason and closes those inside.
    c.client
        .close_room(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(v2.closed().await, (4010, "room ended".into()));
    let mut late = server.viewer(&show.room, &t2).await;
    assert_eq!(late.closed().await, (4010, "room ended".into()));
    let e = c
        .client
        .issue_viewer_token(authed(pb::IssueViewerTokenRequest {
            room_id: show.room.clone(),
            viewer_id: "late".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn beyond_max_connections_viewers_are_told_to_try_again_later() {
    let server = Server::start_with(|c| c.max_connections = 2).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "crowd").await;
    let mut a = server.viewer(&show.room, &t).await;
    a.expect("welcome").await;
    let mut b = server.viewer(&show.room, &t).await;
    b.expect("welcome").await;
    let mut third = server.viewer(&show.room, &t).await;
    assert_eq!(third.closed().await, (1013, "server full".into()));
    // A place frees up when someone leaves.
    drop(a);
    let mut ok = false;
    for _ in 0..100 {
        let mut v = server.viewer(&show.room, &t).await;
        if let Next::Frame(f) = v.next().await {
            assert_eq!(f["type"], "welcome");
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "the freed slot was never reused");
}
