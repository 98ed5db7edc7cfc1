//! Joins, the program, counters, sequence numbers and history, chat, the audience log.

use super::*;

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

/// Six announcements (seqs 1 to 6) in a room whose history keeps 4.
fn announce_six(r: &mut Room, out: &mut Vec<Output>) {
    for i in 0..6 {
        r.host(
            HostCommand::Announce {
                text: format!("a{i}"),
            },
            i,
            out,
        )
        .unwrap();
    }
}

#[test]
fn every_broadcast_gets_the_next_seq_and_history_is_bounded() {
    let mut r = room();
    let mut out = Vec::new();
    announce_six(&mut r, &mut out);
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
        product_events: 0,
        product_window_start: 0,
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

/// A node that keeps the events itself asks for the resumed welcome alone: the room checks
/// the resume as it would its own (epoch, window) and counts the events the node replays.
#[test]
fn a_resume_replayed_by_the_serving_node_gets_the_welcome_alone() {
    let mut r = room();
    announce_six(&mut r, &mut Vec::new());
    let resuming = |last_seq: u64, epoch: &str| {
        let mut req = viewer("x");
        req.resume = Some(ResumeFrom {
            last_seq,
            epoch: Some(epoch.into()),
            replayed_by_node: true,
        });
        req
    };
    let mut joined = |n: u64, req: JoinRequest| {
        assert_eq!(r.resumable(req.resume.as_ref().unwrap()), {
            let rr = req.resume.as_ref().unwrap();
            rr.epoch.as_deref() == Some("e1") && (2..=6).contains(&rr.last_seq)
        });
        let mut out = Vec::new();
        r.join(sid(n), req, 10, &mut out).unwrap();
        let sent: Vec<serde_json::Value> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send { frame, .. } => serde_json::from_slice(frame).ok(),
                _ => None,
            })
            .collect();
        sent
    };
    let sent = joined(1, resuming(3, "e1"));
    assert_eq!(sent.len(), 1, "the welcome alone: {sent:?}");
    assert_eq!(sent[0]["resumed"], true);
    assert_eq!(sent[0]["replayed"], 3, "seqs 4 to 6, given by the node");
    // Beyond the window or in another epoch: a snapshot, as on the owner.
    let sent = joined(2, resuming(1, "e1"));
    assert_eq!(sent[0]["resumed"], false, "{sent:?}");
    let sent = joined(3, resuming(3, "other-epoch"));
    assert_eq!(sent[0]["resumed"], false, "{sent:?}");
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
