//! Lucky draws are provably fair: the seed's hash is published at open, the entrants' hash
//! at close, and anyone can recompute the winners from the record.

mod common;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use showfloor::pb;

async fn create(
    c: &mut Control,
    room: &str,
    winners: u32,
    rule: Option<pb::draw_eligibility::Rule>,
    secs: u32,
) -> pb::DrawRecord {
    c.client
        .create_draw(authed(pb::CreateDrawRequest {
            room_id: room.into(),
            prize: "A weekend at the factory".into(),
            winners,
            eligibility: rule.map(|r| pb::DrawEligibility { rule: Some(r) }),
            entry_seconds: secs,
        }))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draw_commits_reveals_and_verifies() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut viewers = Vec::new();
    for i in 0..6 {
        let t = c.token(&show.room, &format!("fan-{i}")).await;
        let mut v = server.viewer(&show.room, &t).await;
        v.expect("welcome").await;
        viewers.push(v);
    }
    let d = create(&mut c, &show.room, 2, None, 600).await;
    assert!(d.seed.is_empty(), "the seed stays secret while open");
    for v in viewers.iter_mut() {
        let opened = v.expect("draw_opened").await;
        assert_eq!(opened["commitment"], d.commitment.as_str());
        v.send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
            .await;
        let e = v.expect("draw_entered").await;
        assert_eq!(e["already"], false);
    }
    viewers[0]
        .send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    assert_eq!(viewers[0].expect("draw_entered").await["already"], true);

    let closed = c
        .client
        .close_draw(authed(pb::CloseDrawRequest {
            room_id: show.room.clone(),
            draw_id: d.draw_id.clone(),
            beacon: "btc-block-870000".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.entrant_count, 6);
    assert_eq!(closed.winners.len(), 2);
    let c0 = viewers[0].expect("draw_closed").await;
    assert_eq!(c0["entrants_hash"], closed.entrants_hash.as_str());
    let result = viewers[0].expect("draw_result").await;
    let seed = hex::decode(result["seed"].as_str().unwrap()).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&seed)),
        d.commitment,
        "the seed matches the commitment"
    );
    let winners: Vec<String> = result["winners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["viewer_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(winners, closed.winners);
    for (i, v) in viewers.iter_mut().enumerate() {
        if i > 0 {
            v.expect("draw_result").await;
        }
        if closed.winners.contains(&format!("fan-{i}")) {
            assert_eq!(v.expect("draw_won").await["draw_id"], d.draw_id.as_str());
        }
    }

    // The record verifies, in-process and with the command-line verifier.
    let record = c
        .client
        .get_draw_record(authed(pb::DrawRef {
            room_id: show.room.clone(),
            draw_id: d.draw_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let parsed: showfloor::draw::DrawRecord = serde_json::from_str(&record.record_json).unwrap();
    assert_eq!(showfloor::draw::verify(&parsed), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.json");
    std::fs::write(&path, &record.record_json).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_showfloor"))
        .arg("verify-draw")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut tampered = parsed.clone();
    tampered.beacon = "another-block".into();
    std::fs::write(&path, serde_json::to_string(&tampered).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_showfloor"))
        .arg("verify-draw")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let e = c
        .client
        .close_draw(authed(pb::CloseDrawRequest {
            room_id: show.room.clone(),
            draw_id: d.draw_id.clone(),
            beacon: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligibility_rules_decide_who_may_enter() {
    use pb::draw_eligibility::Rule;
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let t = c.token(&show.room, "public-1").await;
    let mut public = server.viewer(&show.room, &t).await;
    public.expect("welcome").await;
    let mut gold = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "g1", "gold"),
        )
        .await;
    gold.expect("welcome").await;
    let mut silver = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "s1", "silver"),
        )
        .await;
    silver.expect("welcome").await;

    let dealers = create(
        &mut c,
        &show.room,
        1,
        Some(Rule::Dealers(pb::Empty {})),
        600,
    )
    .await;
    public
        .send(json!({"type": "enter_draw", "draw_id": dealers.draw_id}))
        .await;
    assert_eq!(public.expect("error").await["code"], "not_eligible");
    silver
        .send(json!({"type": "enter_draw", "draw_id": dealers.draw_id}))
        .await;
    silver.expect("draw_entered").await;

    let gold_only = create(
        &mut c,
        &show.room,
        1,
        Some(Rule::Tiers(pb::TierList {
            tiers: vec!["gold".into()],
        })),
        600,
    )
    .await;
    silver
        .send(json!({"type": "enter_draw", "draw_id": gold_only.draw_id}))
        .await;
    assert_eq!(silver.expect("error").await["code"], "not_eligible");
    gold.send(json!({"type": "enter_draw", "draw_id": gold_only.draw_id}))
        .await;
    gold.expect("draw_entered").await;

    let keyword = create(
        &mut c,
        &show.room,
        1,
        Some(Rule::Keyword("Lucky Bag".into())),
        600,
    )
    .await;
    public
        .send(json!({"type": "enter_draw", "draw_id": keyword.draw_id}))
        .await;
    let e = public.expect("error").await;
    assert!(e["message"].as_str().unwrap().contains("lucky bag"), "{e}");
    public
        .send(json!({"type": "chat", "text": "I want the LUCKY BAG please"}))
        .await;
    let entered = public.expect("draw_entered").await;
    assert_eq!(entered["draw_id"], keyword.draw_id.as_str());

    let watched = create(&mut c, &show.room, 1, Some(Rule::WatchedMinutes(30)), 600).await;
    gold.send(json!({"type": "enter_draw", "draw_id": watched.draw_id}))
        .await;
    let e = gold.expect("error").await;
    assert_eq!(e["code"], "not_eligible");
    assert!(e["message"].as_str().unwrap().contains("30 minutes"), "{e}");

    gold.send(json!({"type": "enter_draw", "draw_id": "d999"}))
        .await;
    assert_eq!(gold.expect("error").await["code"], "unknown_draw");

    // The keyword draw closes at the end of its window on its own.
    let short = create(&mut c, &show.room, 3, None, 5).await;
    gold.send(json!({"type": "enter_draw", "draw_id": short.draw_id}))
        .await;
    gold.expect("draw_entered").await;
    let r = loop {
        let f = gold.expect("draw_result").await;
        if f["draw_id"] == short.draw_id.as_str() {
            break f;
        }
    };
    assert_eq!(
        r["winners"].as_array().unwrap().len(),
        1,
        "one entrant, one winner"
    );
    assert_eq!(r["beacon"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_draws_are_refused() {
    use pb::draw_eligibility::Rule;
    let server = Server::start().await;
    let mut c = server.control().await;
    // Not live yet: refused.
    let r = c.create_room("Not yet").await.room.unwrap().id;
    let e = c
        .client
        .create_draw(authed(pb::CreateDrawRequest {
            room_id: r,
            prize: "x".into(),
            winners: 1,
            eligibility: None,
            entry_seconds: 60,
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let show = setup_show(&mut c).await;
    let base = pb::CreateDrawRequest {
        room_id: show.room.clone(),
        prize: "Prize".into(),
        winners: 1,
        eligibility: None,
        entry_seconds: 60,
    };
    for (req, needle) in [
        (
            pb::CreateDrawRequest {
                winners: 0,
                ..base.clone()
            },
            "winners",
        ),
        (
            pb::CreateDrawRequest {
                prize: " ".into(),
                ..base.clone()
            },
            "prize",
        ),
        (
            pb::CreateDrawRequest {
                entry_seconds: 1,
                ..base.clone()
            },
            "entry_seconds",
        ),
        (
            pb::CreateDrawRequest {
                eligibility: Some(pb::DrawEligibility {
                    rule: Some(Rule::Tiers(pb::TierList {
                        tiers: vec!["diamond".into()],
                    })),
                }),
                ..base.clone()
            },
            "diamond",
        ),
        (
            pb::CreateDrawRequest {
                eligibility: Some(pb::DrawEligibility {
                    rule: Some(Rule::WatchedMinutes(0)),
                }),
                ..base.clone()
            },
            "watched_minutes",
        ),
    ] {
        let e = c.client.create_draw(authed(req)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(needle), "{}", e.message());
    }
    let e = c
        .client
        .get_draw_record(authed(pb::DrawRef {
            room_id: show.room.clone(),
            draw_id: "d404".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let list = c
        .client
        .list_draws(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(list.draws.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_draw_and_its_entrants_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let d = create(&mut c, &show.room, 1, None, 600).await;
    let t = c.token(&show.room, "early-bird").await;
    let mut v = server.viewer(&show.room, &t).await;
    v.expect("welcome").await;
    v.send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    v.expect("draw_entered").await;
    drop(v);
    server.stop().await;

    let server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    let closed = c
        .client
        .close_draw(authed(pb::CloseDrawRequest {
            room_id: show.room.clone(),
            draw_id: d.draw_id.clone(),
            beacon: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.commitment, d.commitment, "same seed after restart");
    assert_eq!(closed.winners, vec!["early-bird".to_string()]);
    let parsed: showfloor::draw::DrawRecord = serde_json::from_str(&closed.record_json).unwrap();
    assert!(showfloor::draw::verify(&parsed).is_empty());
}
