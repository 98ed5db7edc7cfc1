//! Commerce: orders, flash sales, lucky draws and red packets.

use super::convert::*;
use super::*;
use crate::model::*;

pub(super) async fn list_orders(
    hub: Arc<dyn Rooms>,
    r: pb::ListOrdersRequest,
) -> Result<pb::ListOrdersResponse, Status> {
    let status = match r.status {
        0 => None,
        s => Some(order_status_of(s)?),
    };
    let opt = |s: String| (!s.is_empty()).then_some(s);
    let f = OrderFilter {
        brand_id: opt(r.brand_id),
        product_id: opt(r.product_id),
        viewer_id: opt(r.viewer_id),
        sale_id: opt(r.sale_id),
        status,
        since_ms: (r.since_ms != 0).then_some(r.since_ms),
        until_ms: (r.until_ms != 0).then_some(r.until_ms),
        limit: (r.limit != 0).then_some(r.limit),
        before_order_id: opt(r.before_order_id),
    };
    let cmd = HostCommand::Commerce(CommerceCommand::ListOrders(f));
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Orders(p) => Ok(pb::ListOrdersResponse {
            orders: p.orders.iter().map(|o| order_pb(&r.room_id, o)).collect(),
            total_count: p.total_count,
            total_cents: p.total_cents,
        }),
        _ => Err(unexpected()),
    }
}

pub(super) async fn get_order(hub: Arc<dyn Rooms>, r: pb::OrderRef) -> Result<pb::Order, Status> {
    need("order_id", &r.order_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::GetOrder {
        order_id: r.order_id,
    });
    order_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn update_order_status(
    hub: Arc<dyn Rooms>,
    r: pb::UpdateOrderStatusRequest,
) -> Result<pb::Order, Status> {
    need("order_id", &r.order_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::UpdateOrderStatus {
        order_id: r.order_id,
        status: order_status_of(r.status)?,
        reason: r.reason,
    });
    order_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn create_flash_sale(
    hub: Arc<dyn Rooms>,
    r: pb::CreateFlashSaleRequest,
) -> Result<pb::FlashSale, Status> {
    need("product_id", &r.product_id)?;
    if r.start_ms < 0 {
        return Err(Status::invalid_argument("start_ms must not be negative"));
    }
    let cmd = HostCommand::Commerce(CommerceCommand::CreateFlashSale {
        product_id: r.product_id,
        stock: r.stock,
        per_dealer_limit: r.per_dealer_limit,
        prices: r
            .prices
            .into_iter()
            .map(|p| (p.tier, p.price_cents))
            .collect(),
        start_ms: (r.start_ms != 0).then_some(r.start_ms),
        duration_seconds: r.duration_seconds,
        tiers: r.tiers,
    });
    sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn get_flash_sale(
    hub: Arc<dyn Rooms>,
    r: pb::FlashSaleRef,
) -> Result<pb::FlashSale, Status> {
    need("sale_id", &r.sale_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::GetFlashSale { sale_id: r.sale_id });
    sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn list_flash_sales(
    hub: Arc<dyn Rooms>,
    r: pb::RoomRef,
) -> Result<pb::ListFlashSalesResponse, Status> {
    let cmd = HostCommand::Commerce(CommerceCommand::ListFlashSales);
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Sales(v) => {
            let now = now_ms();
            Ok(pb::ListFlashSalesResponse {
                sales: v.iter().map(|s| sale_pb(&r.room_id, s, now)).collect(),
            })
        }
        _ => Err(unexpected()),
    }
}

pub(super) async fn end_flash_sale(
    hub: Arc<dyn Rooms>,
    r: pb::FlashSaleRef,
) -> Result<pb::FlashSale, Status> {
    need("sale_id", &r.sale_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::EndFlashSale { sale_id: r.sale_id });
    sale_reply(&r.room_id, host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn create_draw(
    hub: Arc<dyn Rooms>,
    r: pb::CreateDrawRequest,
) -> Result<pb::DrawRecord, Status> {
    let cmd = HostCommand::Commerce(CommerceCommand::CreateDraw {
        prize: r.prize,
        winners: r.winners,
        eligibility: eligibility_of(r.eligibility)?,
        entry_seconds: r.entry_seconds,
        beacon_source: r.beacon_source,
    });
    draw_reply(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn close_draw(
    hub: Arc<dyn Rooms>,
    r: pb::CloseDrawRequest,
) -> Result<pb::DrawRecord, Status> {
    need("draw_id", &r.draw_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::CloseDraw {
        draw_id: r.draw_id,
        beacon: r.beacon,
    });
    draw_reply(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn get_draw_record(
    hub: Arc<dyn Rooms>,
    r: pb::DrawRef,
) -> Result<pb::DrawRecord, Status> {
    need("draw_id", &r.draw_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::GetDrawRecord { draw_id: r.draw_id });
    draw_reply(host(&*hub, &r.room_id, cmd).await?)
}

pub(super) async fn list_draws(
    hub: Arc<dyn Rooms>,
    r: pb::RoomRef,
) -> Result<pb::ListDrawsResponse, Status> {
    let cmd = HostCommand::Commerce(CommerceCommand::ListDraws);
    match host(&*hub, &r.room_id, cmd).await? {
        HostReply::Draws(v) => Ok(pb::ListDrawsResponse {
            draws: v.iter().map(draw_pb).collect(),
        }),
        _ => Err(unexpected()),
    }
}

pub(super) async fn drop_red_packet(
    hub: Arc<dyn Rooms>,
    r: pb::DropRedPacketRequest,
) -> Result<pb::RedPacket, Status> {
    let cmd = HostCommand::Commerce(CommerceCommand::DropRedPacket {
        total_cents: r.total_cents,
        count: r.count,
        tiers: r.tiers,
        message: r.message,
        duration_seconds: (r.duration_seconds != 0).then_some(r.duration_seconds),
    });
    packet_reply(&*hub, &r.room_id, host(&*hub, &r.room_id, cmd).await?).await
}

pub(super) async fn get_red_packet(
    hub: Arc<dyn Rooms>,
    r: pb::RedPacketRef,
) -> Result<pb::RedPacket, Status> {
    need("packet_id", &r.packet_id)?;
    let cmd = HostCommand::Commerce(CommerceCommand::GetRedPacket {
        packet_id: r.packet_id,
    });
    packet_reply(&*hub, &r.room_id, host(&*hub, &r.room_id, cmd).await?).await
}
