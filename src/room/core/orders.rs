//! Room glue for orders: a dealer's `place_order` against the shelf at its tier price, and status changes.

use super::validate::check_text;
use super::{Output, Room, Undo};
use crate::model::*;
use crate::room::commerce::orders::{OrderDraft, OrderRequest};

/// The body of `order_placed` and `order_status`: the order as its dealer sees it. Typed
/// rather than built as a `serde_json::Value`: it is on the order path, once per order.
#[derive(serde::Serialize)]
struct OrderFrame<'a> {
    order: OrderView<'a>,
}

#[derive(serde::Serialize)]
struct OrderView<'a> {
    id: &'a str,
    product_id: &'a str,
    brand_id: &'a str,
    product_name: &'a str,
    quantity: u32,
    unit_price_cents: i64,
    total_cents: i64,
    currency: &'a str,
    tier: &'a str,
    status: &'static str,
    status_reason: Option<&'a str>,
    sale_id: Option<&'a str>,
    key: &'a str,
    created_ms: i64,
    updated_ms: i64,
}

fn order_frame(o: &Order) -> OrderFrame<'_> {
    OrderFrame {
        order: OrderView {
            id: &o.id,
            product_id: &o.product_id,
            brand_id: &o.brand_id,
            product_name: &o.product_name,
            quantity: o.quantity,
            unit_price_cents: o.unit_price_cents,
            total_cents: o.total_cents,
            currency: &o.currency,
            tier: &o.tier,
            status: o.status.as_str(),
            status_reason: o.status_reason.as_deref(),
            sale_id: o.sale_id.as_deref(),
            key: &o.idempotency_key,
            created_ms: o.created_ms,
            updated_ms: o.updated_ms,
        },
    }
}

/// Who orders, as the room knows them.
struct Buyer<'a> {
    tier: String,
    display_name: &'a str,
    inviter_id: Option<&'a str>,
}

/// What the room checks of a new order: live room, product on the shelf, minimum quantity,
/// the tier's price.
fn draft(
    record: &RoomRecord,
    products: &[Product],
    buyer: Buyer<'_>,
    product_id: &str,
    quantity: u32,
) -> Result<OrderDraft, ProtocolError> {
    if record.state != RoomState::Live {
        return Err(ProtocolError::new(
            "room_not_live",
            format!(
                "orders are taken while the room is live (it is {})",
                record.state.as_str()
            ),
        ));
    }
    let Some(product) = products.iter().find(|p| p.id == product_id) else {
        return Err(ProtocolError::new(
            "unknown_product",
            format!("product {product_id} is not in this room"),
        ));
    };
    if record.brand_on_air.as_deref() != Some(product.brand_id.as_str()) {
        return Err(ProtocolError::new(
            "not_on_shelf",
            format!(
                "product {product_id} is not on the shelf now; order while its brand is on air"
            ),
        ));
    }
    if quantity < product.min_order_quantity {
        return Err(ProtocolError::new(
            "below_minimum",
            format!(
                "the minimum order quantity of {} is {} (got {quantity})",
                product.name, product.min_order_quantity
            ),
        ));
    }
    let Some(unit) = product.price_for(&buyer.tier) else {
        return Err(ProtocolError::new(
            "no_price",
            format!("product {product_id} has no price for tier {}", buyer.tier),
        ));
    };
    Ok(OrderDraft {
        display_name: buyer.display_name.to_string(),
        tier: buyer.tier,
        brand_id: product.brand_id.clone(),
        product_name: product.name.clone(),
        unit_price_cents: unit,
        currency: record.currency.clone(),
        inviter_id: buyer.inviter_id.map(str::to_string),
    })
}

impl Room {
    pub(super) fn place_order(
        &mut self,
        session: SessionId,
        product_id: &str,
        quantity: u32,
        key: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Some(tier) = self.dealer_tier(session) else {
            return Err(ProtocolError::new(
                "not_dealer",
                "only verified dealers can order in this live",
            ));
        };
        let s = &self.sessions[&session];
        let buyer = Buyer {
            tier,
            display_name: &s.display_name,
            inviter_id: s.inviter_id.as_deref(),
        };
        let request = OrderRequest {
            dealer_id: &s.viewer_id,
            key,
            product_id,
            quantity,
        };
        let (record, products) = (&self.record, &self.products);
        let placed = self.commerce.orders.place(request, now, || {
            draft(record, products, buyer, product_id, quantity)
        })?;
        let order = self
            .commerce
            .orders
            .get(placed.number)
            .expect("just placed");
        let frame = self.private("order_placed", order_frame(order));
        if placed.repeated {
            // The same answer again; sent after durability like the first one.
            out.push(Output::SendDurable {
                session,
                frame,
                undo: None,
            });
            return Ok(());
        }
        out.push(Output::Persist(StoreOp::PutOrder {
            room: self.record.id.clone(),
            order: Box::new(order.clone()),
        }));
        if self.watched {
            out.push(Output::Watch(WatchEvent::Order(Box::new(order.clone()))));
        }
        out.push(Output::SendDurable {
            session,
            frame,
            undo: Some(Undo::Order {
                order_id: order.id.clone(),
            }),
        });
        Ok(())
    }

    pub(super) fn update_order_status(
        &mut self,
        order_id: &str,
        status: OrderStatus,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let reason = reason.trim().to_string();
        if status == OrderStatus::Cancelled {
            check_text("reason", &reason, 1, 500)?;
        } else if !reason.is_empty() {
            return Err(super::validate::invalid(
                "a reason is only given when cancelling",
            ));
        }
        let order = self
            .commerce
            .orders
            .set_status(order_id, status, reason, now, &self.record.id)?
            .clone();
        out.push(Output::Persist(StoreOp::PutOrder {
            room: self.record.id.clone(),
            order: Box::new(order.clone()),
        }));
        if self.watched {
            out.push(Output::Watch(WatchEvent::Order(Box::new(order.clone()))));
        }
        for session in self.sessions_of(&order.viewer_id) {
            let frame = self.private("order_status", order_frame(&order));
            out.push(Output::Send { session, frame });
        }
        Ok(HostReply::Order(Box::new(order)))
    }
}
