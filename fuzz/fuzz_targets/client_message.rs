//! Fuzz: any bytes a viewer can send, parsed and applied to a live room, must never panic,
//! and every frame the room emits must stay valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use showfloor::model::{JoinRequest, NewRoom, NodeTag, SessionId, Viewer};
use showfloor::room::core::{Output, Room};
use showfloor::room::protocol::parse_client_message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rec = Room::create(
        NewRoom {
            id: "r".into(),
            title: "fuzz".into(),
            scheduled_start_ms: 0,
            chat_rate_limit: None,
            banned_words: vec!["bad".into()],
            history_window: Some(8),
            tiers: vec![],
            currency: None,
            token_key: "k".into(),
        },
        0,
    )
    .expect("valid settings");
    let mut room = Room::new(rec, "e".into(), 60_000);
    let mut out = Vec::new();
    let viewer = Viewer {
        viewer_id: "v".into(),
        display_name: "v".into(),
        inviter_id: None,
        token_tier: None,
        jti: "j".into(),
        expires_ms: i64::MAX,
    };
    let session = SessionId::new(NodeTag::of("fuzz"), 1);
    room.join(session, JoinRequest { viewer, resume: None }, 0, &mut out)
        .expect("join");
    for (i, line) in text.split('\n').enumerate() {
        room.client(session, parse_client_message(line), i as i64 * 100, &mut out);
    }
    room.tick(10_000, &mut out);
    for o in &out {
        let bytes = match o {
            Output::Send { frame, .. } => frame.clone(),
            Output::Broadcast(f) => f.public.clone(),
            _ => continue,
        };
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("frames are JSON");
    }
});
