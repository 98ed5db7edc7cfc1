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
            beacon_source: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn close(
    c: &mut Control,
    room: &str,
    draw: &str,
    beacon: &str,
) -> Result<pb::DrawRecord, tonic::Status> {
    c.client
        .close_draw(authed(pb::CloseDrawRequest {
            room_id: room.into(),
            draw_id: draw.into(),
            beacon: beacon.into(),
        }))
        .await
        .map(|r| r.into_inner())
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
    let d = c
        .client
        .create_draw(authed(pb::CreateDrawRequest {
            room_id: show.room.clone(),
            prize: "A weekend at the factory".into(),
            winners: 2,
            eligibility: None,
            entry_seconds: 600,
            beacon_source: "the first Bitcoin block after entry closes".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(d.seed.is_empty(), "the seed stays secret while open");
    for v in viewers.iter_mut() {
        let opened = v.expect("draw_opened").await;
        assert_eq!(opened["commitment"], d.commitment.as_str());
        assert_eq!(opened["beacon_source"], d.beacon_source.as_str());
        v.send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
            .await;
        let e = v.expect("draw_entered").await;
        assert_eq!(e["already"], false);
    }
    viewers[0]
        .send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    assert_eq!(viewers[0].expect("draw_entered").await["already"], true);

    // Two steps: the beacon is refused until the entrants hash is public.
    let early = close(&mut c, &show.room, &d.draw_id, "btc-block-870000").await;
    assert_eq!(early.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let entry_closed = close(&mut c, &show.room, &d.draw_id, "").await.unwrap();
    assert_eq!(entry_closed.entrant_count, 6);
    assert!(entry_closed.winners.is_empty() && entry_closed.seed.is_empty());
    assert_eq!(entry_closed.drawn_ms, 0);
    let c0 = viewers[0].expect("draw_closed").await;
    assert_eq!(c0["entrants_hash"], entry_closed.entrants_hash.as_str());
    assert_eq!(c0["awaiting_beacon"], true);
    viewers[1]
        .send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    let late = viewers[1].expect("error").await;
    assert_eq!(late["code"], "draw_closed", "{late}");
    let missing = close(&mut c, &show.room, &d.draw_id, " ").await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::InvalidArgument);

    let closed = close(&mut c, &show.room, &d.draw_id, "btc-block-870000")
        .await
        .unwrap();
    assert_eq!(closed.entrant_count, 6);
    assert_eq!(closed.winners.len(), 2);
    assert_eq!(closed.entrants_hash, entry_closed.entrants_hash);
    assert!(closed.drawn_ms >= closed.closed_ms);
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
    // Another beacon that would have drawn other winners (with few entrants some beacons
    // draw the same ones, which no verifier could tell apart): the record no longer verifies.
    let mut tampered = parsed.clone();
    tampered.beacon = (0..100)
        .map(|k| format!("another-block-{k}"))
        .find(|b| {
            let mut t = parsed.clone();
            t.beacon = b.clone();
            !showfloor::draw::verify(&t).is_empty()
        })
        .expect("some other beacon draws other winners");
    std::fs::write(&path, serde_json::to_string(&tampered).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_showfloor"))
        .arg("verify-draw")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    let e = close(&mut c, &show.room, &d.draw_id, "").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);

    // A draw without a declared source takes no beacon: the host could pick one to choose
    // the winners.
    let plain = create(&mut c, &show.room, 1, None, 600).await;
    let e = close(&mut c, &show.room, &plain.draw_id, "chosen-later")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("no beacon source"), "{}", e.message());
    let drawn = close(&mut c, &show.room, &plain.draw_id, "").await.unwrap();
    assert!(drawn.drawn_ms > 0 && !drawn.seed.is_empty());
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
            beacon_source: String::new(),
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
        beacon_source: String::new(),
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
        (
            pb::CreateDrawRequest {
                beacon_source: "x".repeat(201),
                ..base.clone()
            },
            "beacon_source",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_time_from_before_a_restart_counts_for_watched_minutes_draws() {
    use showfloor::model::StoreOp;
    use showfloor::model::{AudienceKind, AudienceRecord};
    use showfloor::store::{sqlite::SqliteStore, Store};
    use std::time::{SystemTime, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    server.stop().await;

    // The audience log of the previous run: "regular" watched 35 minutes in two sessions,
    // the second cut off by a crash after its last heartbeat; "drop-in" watched 10 minutes.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let min = 60_000;
    let row = |viewer: &str, session, kind, ago: i64| StoreOp::AppendAudience {
        room: show.room.clone(),
        record: Box::new(AudienceRecord {
            viewer_id: viewer.into(),
            session,
            kind,
            inviter_id: None,
            tier: None,
            at_ms: now - ago * min,
        }),
    };
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .submit(vec![
                row("regular", 1, AudienceKind::Join, 60),
                row("regular", 1, AudienceKind::Leave, 40),
                row("regular", 2, AudienceKind::Join, 30),
                row("regular", 2, AudienceKind::Heartbeat, 20),
                row("drop-in", 3, AudienceKind::Join, 30),
                row("drop-in", 3, AudienceKind::Leave, 20),
            ])
            .wait()
            .await
            .unwrap();
    }

    let server = Server::start_in(dir.path(), |_| {}).await;
    let mut c = server.control().await;
    use pb::draw_eligibility::Rule;
    let d = create(&mut c, &show.room, 1, Some(Rule::WatchedMinutes(30)), 600).await;
    let t = c.token(&show.room, "regular").await;
    let mut regular = server.viewer(&show.room, &t).await;
    regular.expect("welcome").await;
    regular
        .send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    regular.expect("draw_entered").await;

    let t = c.token(&show.room, "drop-in").await;
    let mut drop_in = server.viewer(&show.room, &t).await;
    drop_in.expect("welcome").await;
    drop_in
        .send(json!({"type": "enter_draw", "draw_id": d.draw_id}))
        .await;
    let e = drop_in.expect("error").await;
    assert_eq!(e["code"], "not_eligible", "{e}");
    assert!(e["message"].as_str().unwrap().contains("30 minutes"), "{e}");
}
