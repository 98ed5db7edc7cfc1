//! The bodies of the fuzz targets (`fuzz/`, cargo-fuzz): every parser a client can reach, fed
//! arbitrary bytes. Each panics if what it drives breaks an invariant (a panic is the bug the
//! fuzzer looks for). They live here, in the crate, so that `tests/fuzz_corpus.rs` replays the
//! kept corpus through them on every `cargo test` and they never fall behind the code.

use crate::auth;
use crate::media::keyframe::{starts_keyframe, VideoCodec};
use crate::media::rewrite::{Downtrack, Incoming, Verdict};
use crate::media::{rtcp, sdp, stun};
use crate::model::{
    CommerceCommand, DrawEligibility, HostCommand, HostReply, JoinRequest, NewRoom, NodeTag,
    ProductInput, SessionId, Viewer,
};
use crate::room::core::{Output, Room};
use crate::room::protocol::parse_client_message;
use std::time::{Duration, Instant};

/// The ids of what [`rich_room`] sets up, for seeds that reach past the first checks.
pub const SALE_PRODUCT: &str = "p3";

/// A live room with two tiers, a brand on air with two products, an open flash sale, an
/// open draw and a red packet; a public viewer (session 1) and a gold dealer (session 2).
fn rich_room() -> (Room, Vec<Output>) {
    let rec = Room::create(
        NewRoom {
            id: "r".into(),
            title: "fuzz".into(),
            scheduled_start_ms: 0,
            chat_rate_limit: None,
            banned_words: vec!["bad".into()],
            history_window: Some(16),
            tiers: vec!["gold".into(), "silver".into()],
            currency: None,
            token_key: "k".into(),
            registration: Default::default(),
            phone_country: String::new(),
        },
        0,
    )
    .expect("valid settings");
    let mut room = Room::new(rec, "e".into(), 60_000);
    let mut out = Vec::new();
    let mut host = |room: &mut Room, cmd: HostCommand| {
        room.host(cmd, 1, &mut out)
            .unwrap_or_else(|e| panic!("setting up the fuzz room: {e:?}"))
    };
    host(&mut room, HostCommand::Open);
    let HostReply::Brand(brand) = host(
        &mut room,
        HostCommand::AddBrand {
            name: "Alpha".into(),
            logo_url: String::new(),
            position: None,
        },
    ) else {
        unreachable!("AddBrand answers the brand")
    };
    host(
        &mut room,
        HostCommand::SwitchBrand {
            brand_id: brand.id.clone(),
        },
    );
    for name in ["tent", "boots"] {
        host(
            &mut room,
            HostCommand::UpsertProduct(ProductInput {
                product_id: None,
                brand_id: brand.id.clone(),
                name: name.into(),
                description: String::new(),
                image_urls: vec![],
                link: "https://shop.example/p".into(),
                min_order_quantity: 2,
                prices: vec![("gold".into(), 1000), ("silver".into(), 1200)],
            }),
        );
    }
    let commerce = [
        CommerceCommand::CreateFlashSale {
            product_id: SALE_PRODUCT.into(),
            stock: 5,
            per_dealer_limit: 2,
            prices: vec![("gold".into(), 500), ("silver".into(), 600)],
            start_ms: None,
            duration_seconds: 600,
            tiers: vec![],
        },
        CommerceCommand::CreateDraw {
            prize: "a tent".into(),
            winners: 1,
            eligibility: DrawEligibility::Everyone,
            entry_seconds: 600,
            beacon_source: String::new(),
        },
        CommerceCommand::DropRedPacket {
            total_cents: 1000,
            count: 4,
            tiers: vec![],
            message: "hi".into(),
            duration_seconds: Some(600),
        },
    ];
    for c in commerce {
        host(&mut room, HostCommand::Commerce(c));
    }
    for (n, tier) in [(1, None), (2, Some("gold"))] {
        let viewer = Viewer {
            viewer_id: format!("v{n}"),
            display_name: format!("v{n}"),
            inviter_id: None,
            token_tier: tier.map(String::from),
            jti: format!("j{n}"),
            expires_ms: i64::MAX,
        };
        room.join(
            SessionId::new(NodeTag::of("fuzz"), n),
            JoinRequest {
                viewer,
                resume: None,
            },
            2,
            &mut out,
        )
        .expect("join");
    }
    (room, out)
}

/// Lines of client messages, each from the public viewer or the dealer in turn, applied to
/// [`rich_room`]: no panic, and every frame stays JSON and shows a public viewer no price.
pub fn client_messages(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut room, mut out) = rich_room();
    out.clear();
    for (i, line) in text.split('\n').take(64).enumerate() {
        let session = SessionId::new(NodeTag::of("fuzz"), 1 + (i % 2) as u64);
        room.client(
            session,
            parse_client_message(line),
            10 + i as i64 * 100,
            &mut out,
        );
    }
    room.tick(700_000, &mut out);
    let public = SessionId::new(NodeTag::of("fuzz"), 1);
    for o in &out {
        let (bytes, to_public) = match o {
            Output::Send { frame, session } | Output::SendDurable { frame, session, .. } => {
                (frame.clone(), *session == public)
            }
            Output::Broadcast(f) => (f.public.clone(), true),
            _ => continue,
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("every frame is JSON");
        if to_public {
            let s = v.to_string();
            assert!(
                !s.contains("price_cents") && !s.contains("shop.example"),
                "a price or link to the public viewer: {s}"
            );
        }
    }
}

/// Any string as a viewer token: refused or accepted, never a panic; accepted only with the
/// room's key and for its room.
pub fn viewer_token(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = auth::verify_viewer_token(token, "r", "fuzz-room-key") {
        assert_eq!(claims.room, "r");
    }
    let _ = auth::verify_viewer_token(token, "", "");
}

/// Any datagram or body a media peer can send — SDP offers and trickle fragments (WHIP/WHEP
/// bodies and PATCH), STUN routing, RTCP from viewers, key-frame detection, the rewriter.
pub fn media(data: &[u8]) {
    let _ = stun::binding_request_ufrag(data);
    // RTCP from a viewer, as the stack parses it and our key-frame forwarding reads it.
    let mut raw = data;
    if let Ok(packets) = ::rtc::rtcp::packet::unmarshal(&mut raw) {
        for p in &packets {
            let _ = rtcp::is_keyframe_request(p.as_ref());
        }
    }
    let _ = starts_keyframe(VideoCodec::Vp8, data);
    let _ = starts_keyframe(VideoCodec::H264, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let locals = ["127.0.0.1:40000".parse().expect("an address")];
        let public = ["203.0.113.7".parse().expect("an address")];
        let _ = stun::advertise_shared_port(text, &locals, 7882, &[]);
        let _ = stun::advertise_shared_port(text, &locals, 7882, &public);
        let _ = stun::sdp_ufrags(text);
        let _ = sdp::answering_role(text);
        let _ = sdp::fragment_value(text, "a=ice-ufrag:");
        let _ = sdp::ice_fragment(text);
        let _ = sdp::with_ice_credentials(text, "u", "p");
    }
    // The bytes as a packet stream from two sources with switches in between.
    let mut d = Downtrack::new(1, 90_000, true, 0, 0);
    let t0 = Instant::now();
    for (i, c) in data.chunks_exact(8).enumerate() {
        let source = 1 + (c[0] & 1) as u64;
        if c[0] & 2 != 0 {
            d.switch_to(Some(source));
        }
        if c[0] & 4 != 0 {
            d.drop_and_hold();
        }
        let p = Incoming {
            source,
            seq: u16::from_be_bytes([c[1], c[2]]),
            ts: u32::from_be_bytes([c[3], c[4], c[5], c[6]]),
            keyframe: c[7] & 1 == 1,
        };
        let v = d.rewrite(&p, t0 + Duration::from_millis(i as u64 * (c[7] as u64)));
        // A queue that was full: take the packet back.
        if let (Verdict::Forward(out), true) = (v, c[7] & 2 != 0) {
            d.undo(out);
        }
    }
}

/// A registration body, a phone number and a dealer list: no panic, and what is accepted
/// stays within its limits.
pub fn registration(data: &[u8]) {
    use crate::registration::{import, input, phone};
    if let Ok(r) = input::parse(data) {
        assert!((1..=64).contains(&r.name.chars().count()));
        assert!(r.company.chars().count() <= 128);
        assert!(r.invite.iter().chain(&r.channel).all(|c| input::is_code(c)));
        if let Ok(e164) = phone::normalise(&r.phone, "CN") {
            assert!(e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = phone::normalise(text, "DE");
        let (rows, _errors) = import::parse_dealers(text, &["gold".to_string()], "CN");
        assert!(rows
            .iter()
            .all(|r| r.tier == "gold" && r.phone.starts_with('+')));
    }
}

/// A catalogue CSV (`catalog_import::plan_catalog`) for a room with two tiers, a brand and a
/// product: every product it plans passes the room's own checks, lines only grow, and every
/// error names a line of the text.
pub fn catalog(data: &[u8]) {
    use crate::catalog_import::{plan_catalog, BrandOf};
    use crate::model::{Brand, Product};
    use crate::room::core::product_problems;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tiers = ["gold".to_string(), "silver".to_string()];
    let brands = [Brand {
        id: "b1".into(),
        logo_url: String::new(),
        name: "Acme".into(),
        position: 0,
    }];
    let products = [Product {
        id: "p2".into(),
        brand_id: "b1".into(),
        name: "Jacket".into(),
        description: String::new(),
        image_urls: Vec::new(),
        link: "https://shop.example/j".into(),
        min_order_quantity: 1,
        prices: vec![("gold".into(), 1), ("silver".into(), 2)],
    }];
    let plan = plan_catalog(text, &tiers, &brands, &products);
    let lines = 1 + text.bytes().filter(|&b| b == b'\n').count() as u32;
    assert!(plan.errors.iter().all(|e| e.line <= lines));
    assert!(plan.products.windows(2).all(|w| w[0].line < w[1].line));
    for p in &plan.products {
        assert!(product_problems(&p.input, &tiers).is_empty(), "{p:?}");
        assert_eq!(p.input.prices.len(), tiers.len());
        match &p.brand {
            BrandOf::Existing(id) => assert_eq!(id, &p.input.brand_id),
            BrandOf::New(i) => assert!(*i < plan.new_brands.len() && p.input.product_id.is_none()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The corpus seeds name the room's sale, draw, packet and products by these ids.
    #[test]
    fn the_seeds_name_what_the_rich_room_has() {
        let (mut room, _) = rich_room();
        let mut out = Vec::new();
        let reply = |room: &mut Room, c: CommerceCommand, out: &mut Vec<Output>| {
            room.host(HostCommand::Commerce(c), 3, out).unwrap()
        };
        let HostReply::Sales(sales) = reply(&mut room, CommerceCommand::ListFlashSales, &mut out)
        else {
            panic!("sales")
        };
        let HostReply::Draws(draws) = reply(&mut room, CommerceCommand::ListDraws, &mut out) else {
            panic!("draws")
        };
        println!("sale {} draw {}", sales[0].id, draws[0].draw_id);
        assert_eq!(sales[0].product_id, SALE_PRODUCT);
        assert_eq!(
            (sales[0].id.as_str(), draws[0].draw_id.as_str()),
            ("s4", "d5")
        );
    }
}
