//! Protobuf ↔ domain: every conversion between the generated messages and the model, and
//! the one place where a domain error becomes a gRPC status.

use super::{summary, unexpected};
use crate::model::*;
use crate::pb;
use crate::rooms::{Rooms, RoomsError};
use tonic::Status;

/// The one place where domain errors become gRPC statuses.
pub fn status_of(e: RoomsError) -> Status {
    match e {
        RoomsError::Room(RoomError::InvalidArgument(m)) => Status::invalid_argument(m),
        RoomsError::Room(RoomError::NotFound(m)) => Status::not_found(m),
        RoomsError::Room(RoomError::FailedPrecondition(m)) => Status::failed_precondition(m),
        RoomsError::RoomNotFound(id) => Status::not_found(format!("room {id} not found")),
        e @ (RoomsError::Unavailable(..) | RoomsError::NotOwned(_)) => {
            Status::unavailable(e.to_string())
        }
        RoomsError::Store(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&*e), "store failure in a control call");
            Status::internal("the store failed to persist the change; it was not applied durably")
        }
    }
}

pub(super) fn state_pb(s: RoomState) -> i32 {
    match s {
        RoomState::Scheduled => pb::RoomState::Scheduled as i32,
        RoomState::Live => pb::RoomState::Live as i32,
        RoomState::Ended => pb::RoomState::Ended as i32,
    }
}

pub(super) fn room_pb(s: &RoomSummary) -> pb::Room {
    let r = &s.record;
    pb::Room {
        id: r.id.clone(),
        title: r.title.clone(),
        state: state_pb(r.state),
        scheduled_start_ms: r.scheduled_start_ms,
        chat_rate_limit: Some(pb::ChatRateLimit {
            messages: r.chat_rate_limit.messages,
            per_seconds: r.chat_rate_limit.per_seconds,
        }),
        banned_words: r.banned_words.clone(),
        history_window: r.history_window,
        tiers: r.tiers.clone(),
        currency: r.currency.clone(),
        brand_on_air: r.brand_on_air.clone().unwrap_or_default(),
        brands: s.brands.iter().map(|b| brand_pb(&r.id, b)).collect(),
        pinned_product: r.pinned_product.clone().unwrap_or_default(),
        created_ms: r.created_ms,
        opened_ms: r.opened_ms.unwrap_or(0),
        ended_ms: r.ended_ms.unwrap_or(0),
        online: s.online,
        peak_online: s.peak_online,
        owner_node: s.owner_node.clone().unwrap_or_default(),
        registration: super::registration::mode_pb(r.registration),
        phone_country: r.phone_country.clone(),
    }
}

pub(super) fn brand_pb(room: &str, b: &Brand) -> pb::Brand {
    pb::Brand {
        id: b.id.clone(),
        room_id: room.to_string(),
        name: b.name.clone(),
        logo_url: b.logo_url.clone(),
        position: b.position,
    }
}

pub(super) fn product_pb(room: &str, p: &Product) -> pb::Product {
    pb::Product {
        id: p.id.clone(),
        room_id: room.to_string(),
        brand_id: p.brand_id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        image_urls: p.image_urls.clone(),
        link: p.link.clone(),
        min_order_quantity: p.min_order_quantity,
        prices: p
            .prices
            .iter()
            .map(|(t, c)| pb::TierPrice {
                tier: t.clone(),
                price_cents: *c,
            })
            .collect(),
    }
}

pub(super) fn dealer_pb(room: &str, d: &DealerRecord) -> pb::Dealer {
    pb::Dealer {
        room_id: room.to_string(),
        viewer_id: d.viewer_id.clone(),
        tier: d.tier.clone().unwrap_or_default(),
        verified: d.tier.is_some(),
        company: d.company.clone(),
        updated_ms: d.updated_ms,
    }
}

pub(super) fn app_status_pb(s: ApplicationStatus) -> i32 {
    match s {
        ApplicationStatus::Pending => pb::ApplicationStatus::Pending as i32,
        ApplicationStatus::Approved => pb::ApplicationStatus::Approved as i32,
        ApplicationStatus::Rejected => pb::ApplicationStatus::Rejected as i32,
    }
}

pub(super) fn application_pb(room: &str, a: &DealerApplication) -> pb::DealerApplication {
    pb::DealerApplication {
        id: a.id.clone(),
        room_id: room.to_string(),
        viewer_id: a.viewer_id.clone(),
        display_name: a.display_name.clone(),
        company: a.company.clone(),
        licence_number: a.licence_number.clone(),
        contact: a.contact.clone(),
        status: app_status_pb(a.status),
        tier: a.tier.clone().unwrap_or_default(),
        reason: a.reason.clone().unwrap_or_default(),
        created_ms: a.created_ms,
        decided_ms: a.decided_ms.unwrap_or(0),
    }
}

pub(super) fn stats_pb(s: &RoomStats) -> pb::RoomStats {
    pb::RoomStats {
        online: s.online,
        peak_online: s.peak_online,
        dealers_online: s.dealers_online,
        chat_per_minute: s.chat_per_minute,
        likes: s.likes,
        seq: s.seq,
        at_ms: s.at_ms,
    }
}

pub(super) fn watch_pb(room: &str, e: WatchEvent) -> Option<pb::WatchRoomEvent> {
    use pb::watch_room_event::Event;
    let event = match e {
        WatchEvent::Chat(c) => Event::Chat(pb::ChatMessage {
            id: c.id,
            viewer_id: c.viewer_id,
            display_name: c.display_name,
            text: c.text,
            at_ms: c.at_ms,
            seq: c.seq,
            is_dealer: c.is_dealer,
        }),
        WatchEvent::Application(a) => Event::Application(application_pb(room, &a)),
        WatchEvent::Stats(s) => Event::Stats(stats_pb(&s)),
        WatchEvent::Action {
            action,
            viewer_id,
            detail,
            at_ms,
        } => Event::Action(pb::ModerationAction {
            action: action.to_string(),
            viewer_id,
            detail,
            at_ms,
        }),
        WatchEvent::Order(o) => Event::Order(order_pb(room, &o)),
        WatchEvent::Ended | WatchEvent::Lost { .. } => return None,
    };
    Some(pb::WatchRoomEvent { event: Some(event) })
}

pub(super) fn room_reply(r: HostReply) -> Result<pb::Room, Status> {
    match r {
        HostReply::Room(s) => Ok(room_pb(&s)),
        _ => Err(unexpected()),
    }
}

pub(super) fn done(r: HostReply) -> Result<pb::Empty, Status> {
    match r {
        HostReply::Done => Ok(pb::Empty {}),
        _ => Err(unexpected()),
    }
}

// ------------------------------------------------------------------------------ commerce

pub(super) fn order_status_pb(s: OrderStatus) -> i32 {
    match s {
        OrderStatus::Placed => pb::OrderStatus::Placed as i32,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed as i32,
        OrderStatus::Shipped => pb::OrderStatus::Shipped as i32,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled as i32,
    }
}

pub(super) fn order_status_of(v: i32) -> Result<OrderStatus, Status> {
    match pb::OrderStatus::try_from(v) {
        Ok(pb::OrderStatus::Placed) => Ok(OrderStatus::Placed),
        Ok(pb::OrderStatus::Confirmed) => Ok(OrderStatus::Confirmed),
        Ok(pb::OrderStatus::Shipped) => Ok(OrderStatus::Shipped),
        Ok(pb::OrderStatus::Cancelled) => Ok(OrderStatus::Cancelled),
        _ => Err(Status::invalid_argument(format!(
            "status {v} is not an order status (PLACED, CONFIRMED, SHIPPED or CANCELLED)"
        ))),
    }
}

pub(super) fn order_pb(room: &str, o: &Order) -> pb::Order {
    pb::Order {
        id: o.id.clone(),
        room_id: room.to_string(),
        viewer_id: o.viewer_id.clone(),
        display_name: o.display_name.clone(),
        tier: o.tier.clone(),
        brand_id: o.brand_id.clone(),
        product_id: o.product_id.clone(),
        product_name: o.product_name.clone(),
        quantity: o.quantity,
        unit_price_cents: o.unit_price_cents,
        total_cents: o.total_cents,
        currency: o.currency.clone(),
        status: order_status_pb(o.status),
        status_reason: o.status_reason.clone().unwrap_or_default(),
        sale_id: o.sale_id.clone().unwrap_or_default(),
        inviter_id: o.inviter_id.clone().unwrap_or_default(),
        idempotency_key: o.idempotency_key.clone(),
        created_ms: o.created_ms,
        updated_ms: o.updated_ms,
    }
}

pub(super) fn order_reply(room: &str, r: HostReply) -> Result<pb::Order, Status> {
    match r {
        HostReply::Order(o) => Ok(order_pb(room, &o)),
        _ => Err(unexpected()),
    }
}

pub(super) fn sale_pb(room: &str, s: &FlashSale, now: i64) -> pb::FlashSale {
    pb::FlashSale {
        id: s.id.clone(),
        room_id: room.to_string(),
        product_id: s.product_id.clone(),
        brand_id: s.brand_id.clone(),
        stock: s.stock,
        remaining: s.remaining,
        per_dealer_limit: s.per_dealer_limit,
        prices: s
            .prices
            .iter()
            .map(|(t, c)| pb::TierPrice {
                tier: t.clone(),
                price_cents: *c,
            })
            .collect(),
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        phase: match s.phase(now) {
            SalePhase::Scheduled => pb::SalePhase::Scheduled as i32,
            SalePhase::Live => pb::SalePhase::Live as i32,
            SalePhase::SoldOut => pb::SalePhase::SoldOut as i32,
            SalePhase::Ended => pb::SalePhase::Ended as i32,
        },
        granted: s.stock - s.remaining,
        created_ms: s.created_ms,
        ended_ms: s.ended_ms.unwrap_or(0),
    }
}

pub(super) fn sale_reply(room: &str, r: HostReply) -> Result<pb::FlashSale, Status> {
    match r {
        HostReply::Sale(s) => Ok(sale_pb(room, &s, now_ms())),
        _ => Err(unexpected()),
    }
}

pub(super) fn eligibility_of(e: Option<pb::DrawEligibility>) -> Result<DrawEligibility, Status> {
    use pb::draw_eligibility::Rule;
    Ok(match e.and_then(|e| e.rule) {
        None | Some(Rule::Everyone(_)) => DrawEligibility::Everyone,
        Some(Rule::Dealers(_)) => DrawEligibility::Dealers,
        Some(Rule::Tiers(t)) => DrawEligibility::Tiers { tiers: t.tiers },
        Some(Rule::Keyword(keyword)) => DrawEligibility::Keyword { keyword },
        Some(Rule::WatchedMinutes(minutes)) => DrawEligibility::WatchedMinutes { minutes },
    })
}

pub(super) fn eligibility_pb(e: &serde_json::Value) -> Option<pb::DrawEligibility> {
    use pb::draw_eligibility::Rule;
    let e: DrawEligibility = serde_json::from_value(e.clone()).ok()?;
    let rule = match e {
        DrawEligibility::Everyone => Rule::Everyone(pb::Empty {}),
        DrawEligibility::Dealers => Rule::Dealers(pb::Empty {}),
        DrawEligibility::Tiers { tiers } => Rule::Tiers(pb::TierList { tiers }),
        DrawEligibility::Keyword { keyword } => Rule::Keyword(keyword),
        DrawEligibility::WatchedMinutes { minutes } => Rule::WatchedMinutes(minutes),
    };
    Some(pb::DrawEligibility { rule: Some(rule) })
}

pub(super) fn draw_pb(d: &crate::model::DrawRecord) -> pb::DrawRecord {
    pb::DrawRecord {
        room_id: d.room_id.clone(),
        draw_id: d.draw_id.clone(),
        prize: d.prize.clone(),
        winners_count: d.winners_count,
        eligibility: eligibility_pb(&d.eligibility),
        opened_ms: d.opened_ms,
        closes_ms: d.closes_ms,
        closed_ms: d.closed_ms.unwrap_or(0),
        commitment: d.commitment.clone(),
        seed: d.seed.clone().unwrap_or_default(),
        entrants: d.entrants.clone(),
        entrant_count: d.entrants.len() as u32,
        entrants_hash: d.entrants_hash.clone().unwrap_or_default(),
        beacon: d.beacon.clone(),
        beacon_source: d.beacon_source.clone(),
        drawn_ms: d.drawn_ms.unwrap_or(0),
        winners: d.winners.clone(),
        algorithm: d.algorithm.clone(),
        record_json: serde_json::to_string_pretty(d).unwrap_or_default(),
    }
}

pub(super) fn draw_reply(r: HostReply) -> Result<pb::DrawRecord, Status> {
    match r {
        HostReply::Draw(d) => Ok(draw_pb(&d)),
        _ => Err(unexpected()),
    }
}

pub(super) async fn packet_reply(
    hub: &dyn Rooms,
    room: &str,
    r: HostReply,
) -> Result<pb::RedPacket, Status> {
    let p: Box<RedPacket> = match r {
        HostReply::RedPacket(p) => p,
        _ => return Err(unexpected()),
    };
    let currency = summary(hub, room).await?.record.currency;
    let grabbed: i64 = p.grabs.iter().map(|g| g.amount_cents).sum();
    Ok(pb::RedPacket {
        id: p.id.clone(),
        room_id: room.to_string(),
        total_cents: p.total_cents,
        count: p.count,
        tiers: p.tiers.clone(),
        message: p.message.clone(),
        created_ms: p.created_ms,
        expires_ms: p.expires_ms,
        grabs: p
            .grabs
            .iter()
            .map(|g| pb::RedPacketGrab {
                viewer_id: g.viewer_id.clone(),
                amount_cents: g.amount_cents,
            })
            .collect(),
        remaining_cents: p.total_cents - grabbed,
        currency,
    })
}
