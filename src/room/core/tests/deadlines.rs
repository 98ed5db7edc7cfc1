//! The room names its next deadline instead of ticking.

use super::*;

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
    // Only the batch of engagement the grab attempt was counted in is left, then nothing.
    assert_eq!(r.next_deadline(), Some(3_100));
    r.tick(3_100, &mut out);
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
