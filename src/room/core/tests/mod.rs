//! Tests of the room state machine: no runtime, no clock, no global randomness. The shared
//! set-up is here; the tests are by topic.

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
            registration: Default::default(),
            phone_country: String::new(),
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

mod audience;
mod commerce;
mod deadlines;
mod engagement;
mod media;
