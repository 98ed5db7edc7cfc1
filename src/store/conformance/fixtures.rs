//! Records and writes the conformance suite stores: small, distinct, every field set.

use crate::model::{
    ApplicationStatus, AudienceKind, AudienceRecord, Brand, ChatRateLimit, ChatRecord,
    DealerApplication, DealerRecord, Draw, DrawEligibility, FlashSale, LoadedRoom, Order,
    OrderStatus, Product, RedPacket, RegistrationMode, RoomRecord, RoomState,
};
use crate::store::{Store, StoreError, StoreOp, Violation};

pub fn r(s: &str) -> String {
    s.to_string()
}

pub fn room(id: &str) -> RoomRecord {
    RoomRecord {
        id: id.into(),
        title: format!("Room {id}"),
        state: RoomState::Scheduled,
        scheduled_start_ms: 1_000,
        chat_rate_limit: ChatRateLimit::default(),
        banned_words: vec!["spam".into()],
        history_window: 50,
        tiers: vec!["gold".into(), "silver".into()],
        currency: "EUR".into(),
        token_key: "a2V5".into(),
        brand_on_air: None,
        pinned_product: None,
        created_ms: 10,
        opened_ms: None,
        ended_ms: None,
        next_id: 1,
        registration: RegistrationMode::Approval,
        phone_country: "CN".into(),
    }
}

pub fn put_room(record: RoomRecord) -> StoreOp {
    StoreOp::PutRoom(Box::new(record))
}

pub fn brand(id: &str, position: u32) -> Brand {
    Brand {
        id: id.into(),
        name: format!("Brand {id}"),
        logo_url: format!("https://x/{id}.png"),
        position,
    }
}

pub fn put_brand(room: &str, brand: Brand) -> StoreOp {
    StoreOp::PutBrand {
        room: r(room),
        brand: Box::new(brand),
    }
}

pub fn product(id: &str, brand_id: &str) -> Product {
    Product {
        id: id.into(),
        brand_id: brand_id.into(),
        name: format!("Product {id}"),
        description: "desc".into(),
        image_urls: vec!["https://x/1.jpg".into(), "https://x/2.jpg".into()],
        link: "https://shop/x".into(),
        min_order_quantity: 6,
        prices: vec![("gold".into(), 900), ("silver".into(), 1_000)],
    }
}

pub fn put_product(room: &str, product: Product) -> StoreOp {
    StoreOp::PutProduct {
        room: r(room),
        product: Box::new(product),
    }
}

pub fn dealer(viewer: &str) -> DealerRecord {
    DealerRecord {
        viewer_id: viewer.into(),
        tier: Some("gold".into()),
        company: "Acme".into(),
        updated_ms: 5,
    }
}

pub fn application(id: &str, created_ms: i64) -> DealerApplication {
    DealerApplication {
        id: id.into(),
        viewer_id: format!("viewer-{id}"),
        display_name: "Dee".into(),
        company: "Acme".into(),
        licence_number: "L-1".into(),
        contact: "dee@acme".into(),
        status: ApplicationStatus::Pending,
        tier: None,
        reason: None,
        created_ms,
        decided_ms: None,
    }
}

pub fn chat(id: &str, seq: u64) -> ChatRecord {
    ChatRecord {
        id: id.into(),
        seq,
        viewer_id: "v1".into(),
        display_name: "Viv".into(),
        text: format!("hello {seq}"),
        at_ms: 100 + seq as i64,
        is_dealer: seq.is_multiple_of(2),
    }
}

pub fn append_chat(room: &str, chat: ChatRecord) -> StoreOp {
    StoreOp::AppendChat {
        room: r(room),
        chat: Box::new(chat),
    }
}

pub fn audience(viewer: &str, session: u64, kind: AudienceKind, at_ms: i64) -> AudienceRecord {
    AudienceRecord {
        viewer_id: viewer.into(),
        session,
        kind,
        inviter_id: Some("host".into()),
        tier: None,
        at_ms,
    }
}

pub fn append_audience(room: &str, record: AudienceRecord) -> StoreOp {
    StoreOp::AppendAudience {
        room: r(room),
        record: Box::new(record),
    }
}

pub fn mute(room: &str, viewer: &str, until_ms: i64) -> StoreOp {
    StoreOp::PutMute {
        room: r(room),
        viewer_id: r(viewer),
        until_ms,
    }
}

pub fn kick(room: &str, jti: &str, expires_ms: i64) -> StoreOp {
    StoreOp::KickToken {
        room: r(room),
        jti: r(jti),
        expires_ms,
    }
}

pub fn order(id: &str, viewer: &str, key: &str, sale_id: Option<&str>, created_ms: i64) -> Order {
    Order {
        id: id.into(),
        viewer_id: viewer.into(),
        display_name: format!("Dealer {viewer}"),
        tier: "gold".into(),
        brand_id: "b1".into(),
        product_id: "p1".into(),
        product_name: "Product p1".into(),
        quantity: 6,
        unit_price_cents: 900,
        total_cents: 5_400,
        currency: "EUR".into(),
        status: OrderStatus::Placed,
        status_reason: None,
        sale_id: sale_id.map(String::from),
        inviter_id: Some("host".into()),
        idempotency_key: key.into(),
        created_ms,
        updated_ms: created_ms,
    }
}

pub fn sale(id: &str, stock: u32) -> FlashSale {
    FlashSale {
        id: id.into(),
        product_id: "p1".into(),
        brand_id: "b1".into(),
        stock,
        remaining: stock,
        per_dealer_limit: 1,
        prices: vec![("gold".into(), 500), ("silver".into(), 600)],
        start_ms: 100,
        end_ms: 10_000,
        ended_ms: None,
        created_ms: 50,
    }
}

pub fn draw(id: &str, opened_ms: i64, eligibility: DrawEligibility) -> Draw {
    Draw {
        id: id.into(),
        prize: "A watch".into(),
        winners_count: 2,
        eligibility,
        opened_ms,
        closes_ms: opened_ms + 60_000,
        closed_ms: None,
        drawn_ms: None,
        seed: "ab".repeat(32),
        commitment: "cd".repeat(32),
        beacon_source: String::new(),
        beacon: String::new(),
        entrants: Vec::new(),
        entrants_hash: None,
        winners: Vec::new(),
    }
}

pub fn packet(id: &str, amounts: Vec<i64>) -> RedPacket {
    RedPacket {
        id: id.into(),
        total_cents: amounts.iter().sum(),
        count: amounts.len() as u32,
        tiers: vec!["gold".into()],
        message: "Gong xi".into(),
        amounts,
        created_ms: 70,
        expires_ms: 90_000,
        grabs: Vec::new(),
    }
}

// The commerce writes below are all in room "r1".

pub fn grant(sale_id: &str, order: Order) -> StoreOp {
    StoreOp::GrantSale {
        room: r("r1"),
        sale_id: sale_id.into(),
        order: Box::new(order),
    }
}

pub fn put_order(order: Order) -> StoreOp {
    StoreOp::PutOrder {
        room: r("r1"),
        order: Box::new(order),
    }
}

pub fn put_sale(sale: FlashSale) -> StoreOp {
    StoreOp::PutSale {
        room: r("r1"),
        sale: Box::new(sale),
    }
}

pub fn put_draw(draw: Draw) -> StoreOp {
    StoreOp::PutDraw {
        room: r("r1"),
        draw: Box::new(draw),
    }
}

pub fn enter(draw_id: &str, viewer_id: &str, at_ms: i64) -> StoreOp {
    StoreOp::AddDrawEntrant {
        room: r("r1"),
        draw_id: draw_id.into(),
        viewer_id: viewer_id.into(),
        at_ms,
    }
}

pub fn put_packet(packet: RedPacket) -> StoreOp {
    StoreOp::PutRedPacket {
        room: r("r1"),
        packet: Box::new(packet),
    }
}

pub fn grab(packet_id: &str, viewer_id: &str, index: u32, amount_cents: i64) -> StoreOp {
    StoreOp::GrabRedPacket {
        room: r("r1"),
        packet_id: packet_id.into(),
        viewer_id: viewer_id.into(),
        index,
        amount_cents,
        at_ms: 400 + i64::from(index),
    }
}

/// Submits `ops` and waits until they are durable; they must be accepted.
pub async fn put(store: &dyn Store, ops: Vec<StoreOp>) {
    store
        .submit(ops)
        .wait()
        .await
        .expect("the write is accepted");
}

/// Submits `ops`, which must be refused for `violation`.
pub async fn refused(store: &dyn Store, ops: Vec<StoreOp>, violation: Violation) -> StoreError {
    let err = store
        .submit(ops)
        .wait()
        .await
        .expect_err("the write is refused");
    assert_eq!(err.violation(), Some(violation), "{err:?}");
    err
}

/// Room `id` as the store loads it; it must exist.
pub async fn loaded(store: &dyn Store, id: &str) -> LoadedRoom {
    store
        .load_room(id)
        .await
        .expect("load_room")
        .unwrap_or_else(|| panic!("room {id} is stored"))
}
