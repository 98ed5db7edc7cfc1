//! Tests of the room state machine: no runtime, no clock, no global randomness.

use super::*;
use rand::SeedableRng;

fn room() -> Room {
    let rec = Room::create(
        NewRoom {
            id: "r1".into(),
            title: "Show".into(),
            scheduled_start_ms: 0,
            chat_rate_limit: None,
            banned_words: vec!["Darn".into()],
            history_window: Some(4),
            tiers: vec!["gold".into(), "silver".into()],
            currency: None,
            token_key: "k".into(),
        },
        0,
    )
    .unwrap();
    let mut r = Room::new(rec, "e1".into(), 60_000);
    // Draw seeds and splits replay on every run.
    r.set_entropy(Box::new(rand::rngs::StdRng::seed_from_u64(0)));
    r
}

fn sid(n: u64) -> SessionId {
    SessionId::new(NodeTag::of("test"), n)
}

fn viewer(id: &str) -> JoinRequest {
    JoinRequest {
        viewer: Viewer {
            viewer_id: id.into(),
            display_name: id.into(),
            inviter_id: Some("inviter".into()),
            token_tier: None,
            jti: format!("jti-{id}"),
            expires_ms: i64::MAX,
        },
        resume: None,
    }
}

fn broadcasts(out: &[Output]) -> Vec<serde_json::Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(f) => Some(serde_json::from_slice(&f.public).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn program_event_follows_the_on_air_brands_feed() {
    let mut r = room();
    let mut out = Vec::new();
    let brand = |r: &mut Room, name: &str, out: &mut Vec<Output>| match r
        .host(
            HostCommand::AddBrand {
                name: name.into(),
                logo_url: String::new(),
                position: None,
            },
            1,
            out,
        )
        .unwrap()
    {
        HostReply::Brand(b) => b.id,
        _ => unreachable!(),
    };
    let a = brand(&mut r, "Alpha", &mut out);
    let b = brand(&mut r, "Bravo", &mut out);
    let programs = |out: &[Output]| -> Vec<serde_json::Value> {
        broadcasts(out)
            .into_iter()
            .filter(|e| e["type"] == "program")
            .collect()
    };
    out.clear();
    r.host(
        HostCommand::SwitchBrand {
            brand_id: a.clone(),
        },
        2,
        &mut out,
    )
    .unwrap();
    assert!(
        programs(&out).is_empty(),
        "no feed before or after: nothing to tell"
    );
    out.clear();
    // A's and B's feeds go live: one event, about A (the brand on air).
    r.set_live_feeds([a.clone(), b.clone()].into(), 3, &mut out);
    let p = programs(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["live"], true);
    out.clear();
    r.set_live_feeds([a.clone(), b.clone()].into(), 4, &mut out);
    assert!(programs(&out).is_empty(), "no change, no event");
    // Live A to live B: still live, nothing to tell; B's feed dropping is told.
    r.host(
        HostCommand::SwitchBrand {
            brand_id: b.clone(),
        },
        5,
        &mut out,
    )
    .unwrap();
    assert!(programs(&out).is_empty());
    out.clear();
    r.set_live_feeds([a.clone()].into(), 6, &mut out);
    let p = programs(&out);
    assert_eq!(
        (p[0]["brand_id"].as_str(), p[0]["live"].as_bool()),
        (Some(b.as_str()), Some(false))
    );
    // The welcome tells a joining viewer the same.
    out.clear();
    r.join(sid(7), viewer("late"), 7, &mut out).unwrap();
    let welcome = out
        .iter()
        .find_map(|o| match o {
            Output::Send { frame, .. } => {
                let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
                (v["type"] == "welcome").then_some(v)
            }
            _ => None,
        })
        .expect("welcome");
    assert_eq!(welcome["program"]["brand_id"], b.as_str());
    assert_eq!(welcome["program"]["live"], false);
}

#[test]
fn online_and_likes_are_coalesced_to_one_event_per_second() {
    let mut r = room();
    let mut out = Vec::new();
    for i in 0..100 {
        r.join(sid(i), viewer(&format!("v{i}")), 10, &mut out)
            .unwrap();
        r.client(sid(i), Ok(ClientMessage::Like { count: 3 }), 10, &mut out);
    }
    assert!(
        broadcasts(&out).is_empty(),
        "no per-join or per-like fan-out"
    );
    out.clear();
    r.tick(1000, &mut out);
    let b = broadcasts(&out);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["online"], 100);
    assert_eq!(b[1]["likes"], 300);
    out.clear();
    r.leave(sid(5), 1100, &mut out);
    r.tick(1200, &mut out);
    assert!(broadcasts(&out).is_empty(), "at most one per second");
    r.tick(2000, &mut out);
    assert_eq!(broadcasts(&out)[0]["online"], 99);
}

#[test]
fn every_broadcast_gets_the_next_seq_and_history_is_bounded() {
    let mut r = room();
    let mut out = Vec::new();
    for i in 0..6 {
        r.host(
            HostCommand::Announce {
                text: format!("a{i}"),
            },
            i,
            &mut out,
        )
        .unwrap();
    }
    let seqs: Vec<u64> = broadcasts(&out)
        .iter()
        .map(|b| b["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    let s = Session {
        viewer_id: "x".into(),
        display_name: "x".into(),
        inviter_id: None,
        token_tier: None,
        jti: "j".into(),
        expires_ms: i64::MAX,
        class: AudienceClass::Public,
        joined_ms: 0,
        last_heartbeat_ms: 0,
        due_ms: 0,
        expiry_told: false,
        error_strikes: 0,
        strike_window_start: 0,
    };
    assert_eq!(r.replay(&s, 2, Some("e1")).unwrap().len(), 4);
    assert!(
        r.replay(&s, 1, Some("e1")).is_none(),
        "seq 2 fell out of the window"
    );
    assert!(r.replay(&s, 7, Some("e1")).is_none());
    assert!(
        r.replay(&s, 2, None).is_none(),
        "without an epoch a seq cannot be trusted"
    );
    assert!(r.replay(&s, 6, Some("other-epoch")).is_none());
    assert_eq!(r.replay(&s, 6, Some("e1")).unwrap().len(), 0);
}

#[test]
fn chat_is_rate_limited_per_viewer_and_masked() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("a"), 0, &mut out).unwrap();
    r.join(sid(2), viewer("a"), 0, &mut out).unwrap();
    out.clear();
    for i in 0..6 {
        // Two connections of the same viewer share one limit.
        r.client(
            sid(1 + (i % 2)),
            Ok(ClientMessage::Chat {
                text: "oh darn".into(),
            }),
            100,
            &mut out,
        );
    }
    let chats = broadcasts(&out);
    assert_eq!(chats.len(), 5);
    assert_eq!(chats[0]["text"], "oh ****");
    let errors = out
        .iter()
        .filter(|o| matches!(o, Output::Send { frame, .. } if frame.starts_with(b"{\"type\":\"error\"")))
        .count();
    assert_eq!(errors, 1);
    out.clear();
    r.client(
        sid(1),
        Ok(ClientMessage::Chat {
            text: "later".into(),
        }),
        10_200,
        &mut out,
    );
    assert_eq!(broadcasts(&out).len(), 1, "the window moved on");
}

#[test]
fn audience_log_records_join_leave_and_heartbeat_with_inviter() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("a"), 0, &mut out).unwrap();
    r.tick(60_000, &mut out);
    r.leave(sid(1), 61_000, &mut out);
    let kinds: Vec<(AudienceKind, Option<String>)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::AppendAudience { record, .. }) => {
                Some((record.kind, record.inviter_id.clone()))
            }
            _ => None,
        })
        .collect();
    let inv = Some("inviter".to_string());
    assert_eq!(
        kinds,
        vec![
            (AudienceKind::Join, inv.clone()),
            (AudienceKind::Heartbeat, inv.clone()),
            (AudienceKind::Leave, inv)
        ]
    );
}

// Defect: a signed token naming a tier the room does not have joined as a public viewer.
#[test]
fn a_token_naming_a_tier_the_room_does_not_have_is_refused() {
    let mut r = room();
    let mut out = Vec::new();
    let mut req = viewer("d1");
    req.viewer.token_tier = Some("platinum".into());
    let refusal = r.join(sid(1), req, 0, &mut out).unwrap_err();
    assert_eq!(refusal.reason, EndReason::Forbidden);
    assert!(
        refusal.message.contains("platinum") && refusal.message.contains("gold, silver"),
        "{}",
        refusal.message
    );
    assert_eq!(r.session_count(), 0);
    let mut req = viewer("d2");
    req.viewer.token_tier = Some("silver".into());
    assert_eq!(
        r.join(sid(2), req, 0, &mut out),
        Ok(AudienceClass::Dealer(1))
    );
}

#[test]
fn banned_words_mask_keeps_length_and_other_text() {
    assert_eq!(mask_banned("DARN darn x", &["darn".into()]), "**** **** x");
    assert_eq!(mask_banned("no match", &["darn".into()]), "no match");
    assert_eq!(mask_banned("价格太贵了", &["太贵".into()]), "价格**了");
}

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

// ------------------------------------------------------------------ shared set-up

fn dealer(id: &str, tier: &str) -> JoinRequest {
    let mut req = viewer(id);
    req.viewer.token_tier = Some(tier.into());
    req
}

fn frames_of(out: &[Output], kind: &str) -> Vec<serde_json::Value> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { frame, .. } | Output::SendDurable { frame, .. } => {
                serde_json::from_slice::<serde_json::Value>(frame).ok()
            }
            Output::Broadcast(f) => serde_json::from_slice(&f.public).ok(),
            _ => None,
        })
        .filter(|v| v["type"] == kind)
        .collect()
}

/// A live room with brand b1 on air and product p2 (gold 1000, silver 1200 cents).
fn live_room() -> (Room, String) {
    let mut r = room();
    let mut out = Vec::new();
    let brand = match r
        .host(
            HostCommand::AddBrand {
                name: "Alpha".into(),
                logo_url: String::new(),
                position: None,
            },
            0,
            &mut out,
        )
        .unwrap()
    {
        HostReply::Brand(b) => b.id,
        _ => unreachable!(),
    };
    let product = match r
        .host(
            HostCommand::UpsertProduct(ProductInput {
                product_id: None,
                brand_id: brand.clone(),
                name: "Jacket".into(),
                description: String::new(),
                image_urls: Vec::new(),
                link: "https://shop.example/j".into(),
                min_order_quantity: 1,
                prices: vec![("gold".into(), 1000), ("silver".into(), 1200)],
            }),
            0,
            &mut out,
        )
        .unwrap()
    {
        HostReply::Product(p) => p.id,
        _ => unreachable!(),
    };
    r.host(HostCommand::SwitchBrand { brand_id: brand }, 0, &mut out)
        .unwrap();
    r.host(HostCommand::Open, 0, &mut out).unwrap();
    (r, product)
}

fn commerce(r: &mut Room, cmd: CommerceCommand, now: i64, out: &mut Vec<Output>) -> HostReply {
    r.host(HostCommand::Commerce(cmd), now, out).unwrap()
}

fn flash_sale(product: &str, stock: u32, start_ms: Option<i64>) -> CommerceCommand {
    CommerceCommand::CreateFlashSale {
        product_id: product.into(),
        stock,
        per_dealer_limit: 1,
        prices: vec![("gold".into(), 500), ("silver".into(), 600)],
        start_ms,
        duration_seconds: 60,
        tiers: Vec::new(),
    }
}

fn red_packet(total_cents: i64, count: u32) -> CommerceCommand {
    CommerceCommand::DropRedPacket {
        total_cents,
        count,
        tiers: Vec::new(),
        message: String::new(),
        duration_seconds: Some(60),
    }
}

fn undos(out: &[Output]) -> Vec<Undo> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendDurable { undo: Some(u), .. } => Some(u.clone()),
            _ => None,
        })
        .collect()
}

fn media(id: &str, identity: &str, jti: &str) -> MediaSession {
    MediaSession {
        id: id.into(),
        identity: identity.into(),
        jti: jti.into(),
        expires_ms: 500_000,
        role: MediaRole::Viewer,
    }
}

fn ended_media(out: &[Output]) -> Vec<(Vec<String>, Refusal)> {
    out.iter()
        .filter_map(|o| match o {
            Output::EndMedia { ids, why } => Some((ids.clone(), why.clone())),
            _ => None,
        })
        .collect()
}

fn closed(out: &[Output]) -> Vec<(SessionId, EndReason)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Close { session, why } => Some((*session, why.reason)),
            _ => None,
        })
        .collect()
}

fn kicked_jtis(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Persist(StoreOp::KickToken { jti, .. }) => Some(jti.clone()),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ next deadline

#[test]
fn an_idle_room_has_no_deadline_and_a_watched_one_has_its_stats() {
    let mut r = room();
    r.set_watched(false);
    assert_eq!(r.next_deadline(), None);
    r.set_watched(true);
    assert_eq!(r.next_deadline(), Some(1000), "host stats once a second");
    let mut out = Vec::new();
    r.tick(1500, &mut out);
    assert_eq!(r.next_deadline(), Some(2500));
    r.set_watched(false);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn next_deadline_follows_counters_heartbeats_and_token_expiry() {
    let mut r = room();
    r.set_watched(false);
    let mut out = Vec::new();
    let mut short = viewer("short");
    short.viewer.expires_ms = 5_500;
    r.join(sid(1), viewer("a"), 10, &mut out).unwrap();
    r.join(sid(2), short, 10, &mut out).unwrap();
    // The online count changed: due when the counters may next go out.
    assert_eq!(r.next_deadline(), Some(1000));
    out.clear();
    r.tick(999, &mut out);
    assert!(out.is_empty(), "early: nothing is due");
    r.tick(1000, &mut out);
    assert_eq!(frames_of(&out, "online_count").len(), 1);
    // Next: the short token's expiry, on the whole second after it.
    assert_eq!(r.next_deadline(), Some(6000));
    r.client(sid(1), Ok(ClientMessage::Like { count: 2 }), 1200, &mut out);
    assert_eq!(r.next_deadline(), Some(2000), "likes to send");
    out.clear();
    r.tick(6000, &mut out);
    assert_eq!(frames_of(&out, "like_count").len(), 1, "late is fine");
    assert_eq!(closed(&out), [(sid(2), EndReason::Unauthenticated)]);
    // Told once, even if the session has not left yet.
    out.clear();
    let next = r.next_deadline().unwrap();
    assert_eq!(
        next, 61_000,
        "heartbeats of both, 60 s after joining, on the second"
    );
    r.tick(next, &mut out);
    assert!(closed(&out).is_empty());
    let heartbeats = out
        .iter()
        .filter(|o| matches!(o, Output::Persist(StoreOp::AppendAudience { record, .. }) if record.kind == AudienceKind::Heartbeat))
        .count();
    assert_eq!(heartbeats, 2);
    r.leave(sid(1), 61_500, &mut out);
    r.leave(sid(2), 61_500, &mut out);
    r.tick(62_500, &mut out);
    assert_eq!(r.next_deadline(), None, "nobody left, nothing scheduled");
}

#[test]
fn next_deadline_follows_sales_draws_red_packets_and_kicked_tokens() {
    let (mut r, product) = live_room();
    r.set_watched(false);
    let mut out = Vec::new();
    r.tick(5_000, &mut out);
    assert_eq!(r.next_deadline(), None);
    commerce(
        &mut r,
        flash_sale(&product, 5, Some(10_000)),
        5_000,
        &mut out,
    );
    assert_eq!(r.next_deadline(), Some(10_000), "the sale starts");
    out.clear();
    r.tick(10_000, &mut out);
    assert_eq!(frames_of(&out, "sale_started").len(), 1);
    assert_eq!(r.next_deadline(), Some(70_000), "then it ends");
    commerce(
        &mut r,
        CommerceCommand::CreateDraw {
            prize: "Tour".into(),
            winners: 1,
            eligibility: DrawEligibility::Everyone,
            entry_seconds: 30,
            beacon_source: String::new(),
        },
        20_000,
        &mut out,
    );
    assert_eq!(r.next_deadline(), Some(50_000), "the draw closes first");
    commerce(&mut r, red_packet(100, 2), 21_000, &mut out);
    assert_eq!(r.next_deadline(), Some(50_000));
    r.join(sid(1), viewer("troll"), 22_000, &mut out).unwrap();
    r.tick(23_000, &mut out);
    r.host(
        HostCommand::Kick {
            viewer_id: "troll".into(),
            reason: String::new(),
        },
        23_000,
        &mut out,
    )
    .unwrap();
    r.leave(sid(1), 23_000, &mut out);
    r.tick(24_000, &mut out);
    out.clear();
    // Late: the draw closes and is drawn, the packet expires, the sale ends, in one tick.
    r.tick(90_000, &mut out);
    assert_eq!(frames_of(&out, "draw_result").len(), 1);
    assert_eq!(frames_of(&out, "red_packet_gone")[0]["reason"], "expired");
    assert_eq!(frames_of(&out, "sale_ended")[0]["reason"], "time");
    // Only the kicked token remains, refused until it expires (the test token never does).
    assert_eq!(r.next_deadline(), Some(i64::MAX));
    assert_eq!(r.kicked_tokens(), 1);
}

#[test]
fn a_sale_ended_by_the_host_leaves_no_timer_behind() {
    let (mut r, product) = live_room();
    r.set_watched(false);
    let mut out = Vec::new();
    r.tick(1_000, &mut out);
    let sale = match commerce(&mut r, flash_sale(&product, 5, None), 1_000, &mut out) {
        HostReply::Sale(s) => s.id,
        _ => unreachable!(),
    };
    r.join(sid(1), dealer("d1", "gold"), 1_000, &mut out)
        .unwrap();
    r.client(
        sid(1),
        Ok(ClientMessage::Grab {
            sale_id: sale.clone(),
            key: "k".into(),
        }),
        1_100,
        &mut out,
    );
    r.leave(sid(1), 1_100, &mut out);
    commerce(
        &mut r,
        CommerceCommand::EndFlashSale { sale_id: sale },
        1_200,
        &mut out,
    );
    r.tick(2_200, &mut out);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn stock_left_is_coalesced_to_one_event_per_quarter_second() {
    let (mut r, product) = live_room();
    r.set_watched(false);
    let mut out = Vec::new();
    let sale = match commerce(&mut r, flash_sale(&product, 10, None), 1_000, &mut out) {
        HostReply::Sale(s) => s.id,
        _ => unreachable!(),
    };
    for i in 0..3 {
        r.join(sid(i), dealer(&format!("d{i}"), "gold"), 1_000, &mut out)
            .unwrap();
        let grab = ClientMessage::Grab {
            sale_id: sale.clone(),
            key: "k".into(),
        };
        r.client(sid(i), Ok(grab), 1_010 + i as i64, &mut out);
    }
    r.tick(1_000, &mut out);
    out.clear();
    assert_eq!(r.next_deadline(), Some(1_250));
    r.tick(1_250, &mut out);
    let left = frames_of(&out, "stock_left");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["remaining"], 7);
}

// ------------------------------------------------------------------ media sessions

#[test]
fn attaching_media_is_refused_like_a_join() {
    let mut r = room();
    let mut out = Vec::new();
    r.attach_media(media("m1", "v1", "j1"), 0).unwrap();
    r.host(
        HostCommand::RevokeToken {
            jti: "j2".into(),
            reason: String::new(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        r.attach_media(media("m2", "v2", "j2"), 2)
            .unwrap_err()
            .reason,
        EndReason::Revoked
    );
    r.host(HostCommand::Close, 3, &mut out).unwrap();
    assert_eq!(
        r.attach_media(media("m3", "v3", "j3"), 4)
            .unwrap_err()
            .reason,
        EndReason::RoomEnded
    );
}

#[test]
fn a_kick_ends_the_identitys_websocket_and_media_sessions_and_refuses_their_tokens() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("troll"), 0, &mut out).unwrap();
    r.join(sid(2), viewer("other"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "troll", "jti-media"), 0)
        .unwrap();
    r.attach_media(media("whep-2", "other", "jti-other"), 0)
        .unwrap();
    out.clear();
    r.host(
        HostCommand::Kick {
            viewer_id: "troll".into(),
            reason: "spam".into(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(frames_of(&out, "kicked")[0]["reason"], "kicked: spam");
    assert_eq!(closed(&out), [(sid(1), EndReason::Revoked)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string()],
            Refusal::new(EndReason::Revoked, "kicked: spam")
        )]
    );
    assert_eq!(kicked_jtis(&out), ["jti-troll", "jti-media"]);
    for jti in ["jti-troll", "jti-media"] {
        assert_eq!(r.admits(jti).unwrap_err().reason, EndReason::Revoked);
    }
    assert!(r.admits("jti-other").is_ok());
    // An identity with media sessions only is found too; one with neither is not.
    r.attach_media(
        MediaSession {
            role: MediaRole::Presenter {
                brand_id: "b1".into(),
            },
            ..media("whip-1", "presenter-7", "jti-p")
        },
        2,
    )
    .unwrap();
    out.clear();
    r.host(
        HostCommand::Kick {
            viewer_id: "presenter-7".into(),
            reason: String::new(),
        },
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(ended_media(&out)[0].0, ["whip-1"]);
    assert!(closed(&out).is_empty());
    let err = r
        .host(
            HostCommand::Kick {
                viewer_id: "presenter-7".into(),
                reason: String::new(),
            },
            4,
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err, RoomError::NotFound(m) if m.contains("presenter-7")));
}

#[test]
fn revoking_a_token_ends_the_media_sessions_that_use_it() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "v1", "jti-v1"), 0).unwrap();
    r.attach_media(media("whep-2", "v1", "jti-other"), 0)
        .unwrap();
    out.clear();
    r.host(
        HostCommand::RevokeToken {
            jti: "jti-v1".into(),
            reason: String::new(),
        },
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(closed(&out), [(sid(1), EndReason::Revoked)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string()],
            Refusal::new(EndReason::Revoked, "kicked: this token was revoked")
        )]
    );
    // A media-only token's expiry comes from its media session.
    r.attach_media(
        MediaSession {
            expires_ms: 77_000,
            ..media("whep-3", "v3", "jti-v3")
        },
        2,
    )
    .unwrap();
    out.clear();
    r.host(
        HostCommand::RevokeToken {
            jti: "jti-v3".into(),
            reason: "leaked".into(),
        },
        3,
        &mut out,
    )
    .unwrap();
    assert_eq!(ended_media(&out)[0].0, ["whep-3"]);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Persist(StoreOp::KickToken { jti, expires_ms: 77_000, .. }) if jti == "jti-v3"
    )));
}

#[test]
fn closing_the_room_ends_every_media_session() {
    let mut r = room();
    let mut out = Vec::new();
    r.join(sid(1), viewer("v1"), 0, &mut out).unwrap();
    r.attach_media(media("whep-1", "v1", "jti-v1"), 0).unwrap();
    r.attach_media(media("whip-1", "p1", "jti-p1"), 0).unwrap();
    r.attach_media(media("gone", "p2", "jti-p2"), 0).unwrap();
    r.detach_media("gone");
    out.clear();
    r.host(HostCommand::Close, 1, &mut out).unwrap();
    assert_eq!(closed(&out), [(sid(1), EndReason::RoomEnded)]);
    assert_eq!(
        ended_media(&out),
        [(
            vec!["whep-1".to_string(), "whip-1".to_string()],
            Refusal::new(EndReason::RoomEnded, "room ended")
        )]
    );
}

// ------------------------------------------------------------------ entropy

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

// ------------------------------------------------------------------ commerce glue

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
