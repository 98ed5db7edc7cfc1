//! Commerce inside the live: dealer orders, flash sales, lucky draws and red packets.
//!
//! All of it is state of the room, changed only by the room's owner: stock is decremented
//! here, synchronously, and the acknowledgement of a win leaves as `Output::SendDurable`, so
//! the owner sends it only after the store has the win (see `hub.rs`).

use super::{check_text, invalid, Output, Room};
use crate::draw;
use crate::model::*;
use crate::room::event::{ClassView, RoomEvent};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;

pub use crate::room::protocol::MAX_ORDER_QUANTITY;
/// Orders one dealer may place in one room.
const MAX_ORDERS_PER_VIEWER: u32 = 10_000;
/// Distinct grab keys one viewer may use per sale beyond its per-dealer limit (every
/// answer is remembered for its key).
const SPARE_GRAB_KEYS: u32 = 100;
/// Flash sales, draws and red packets a room may hold.
const MAX_SALES: usize = 1000;
const MAX_DRAWS: usize = 1000;
const MAX_PACKETS: usize = 10_000;
/// How often `stock_left` may go out per sale.
const STOCK_LEFT_INTERVAL_MS: i64 = 250;

/// What to take back in the room if an acknowledged-after-durable write fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    Order {
        order_id: String,
    },
    SaleGrant {
        sale_id: String,
        order_id: String,
    },
    RedPacketGrab {
        packet_id: String,
        viewer_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrabOutcome {
    Won(u64),
    SoldOut,
    LimitReached,
    NotStarted,
    Ended,
    NotEligible,
}

impl GrabOutcome {
    fn as_str(self) -> &'static str {
        match self {
            GrabOutcome::Won(_) => "won",
            GrabOutcome::SoldOut => "sold_out",
            GrabOutcome::LimitReached => "limit_reached",
            GrabOutcome::NotStarted => "not_started",
            GrabOutcome::Ended => "ended",
            GrabOutcome::NotEligible => "not_eligible",
        }
    }
}

struct SaleState {
    sale: FlashSale,
    per_dealer: HashMap<String, u32>,
    /// (viewer, key) → the answer given, so a repeated key gets the same one.
    outcomes: HashMap<(String, String), GrabOutcome>,
    keys_per_viewer: HashMap<String, u32>,
    /// The phase viewers were last told about.
    announced: SalePhase,
    stock_sent: u32,
    stock_sent_ms: i64,
}

struct DrawState {
    draw: Draw,
    seed: [u8; 32],
    entered: HashSet<String>,
    names: HashMap<String, String>,
}

struct PacketState {
    packet: RedPacket,
    grabbed: HashMap<String, (u32, i64)>,
    /// Split positions given back after a failed write, handed out again first.
    free: Vec<u32>,
    next_index: u32,
    gone_sent: bool,
}

impl PacketState {
    fn left(&self) -> u32 {
        self.packet.count - self.grabbed.len() as u32
    }
}

/// Commerce state of one room.
#[derive(Default)]
pub(super) struct Commerce {
    /// By order number (`o{n}`), so oldest first.
    orders: BTreeMap<u64, Order>,
    /// (viewer, key) → order number, for `place_order`.
    order_keys: HashMap<(String, String), u64>,
    orders_per_viewer: HashMap<String, u32>,
    next_order: u64,
    sales: BTreeMap<u64, SaleState>,
    draws: BTreeMap<u64, DrawState>,
    packets: BTreeMap<u64, PacketState>,
    /// Watch time of closed sessions, per viewer (this process's life).
    watched_ms: HashMap<String, i64>,
}

fn number(id: &str, prefix: char) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

fn order_id(n: u64) -> String {
    format!("o{n}")
}

impl Commerce {
    pub(super) fn restore(
        orders: Vec<Order>,
        sales: Vec<FlashSale>,
        draws: Vec<Draw>,
        packets: Vec<RedPacket>,
        now: i64,
    ) -> Commerce {
        let mut c = Commerce {
            next_order: 1,
            ..Default::default()
        };
        for sale in sales {
            let Some(n) = number(&sale.id, 's') else {
                tracing::warn!(sale = %sale.id, "flash sale with an unexpected id skipped");
                continue;
            };
            let phase = sale.phase(now);
            c.sales.insert(
                n,
                SaleState {
                    announced: phase,
                    stock_sent: sale.remaining,
                    stock_sent_ms: now,
                    sale,
                    per_dealer: HashMap::new(),
                    outcomes: HashMap::new(),
                    keys_per_viewer: HashMap::new(),
                },
            );
        }
        for o in orders {
            let Some(n) = number(&o.id, 'o') else {
                tracing::warn!(order = %o.id, "order with an unexpected id skipped");
                continue;
            };
            c.next_order = c.next_order.max(n + 1);
            *c.orders_per_viewer.entry(o.viewer_id.clone()).or_default() += 1;
            match o.sale_id.as_deref().and_then(|s| number(s, 's')) {
                Some(sn) => {
                    if let Some(st) = c.sales.get_mut(&sn) {
                        *st.per_dealer.entry(o.viewer_id.clone()).or_default() += 1;
                        st.outcomes.insert(
                            (o.viewer_id.clone(), o.idempotency_key.clone()),
                            GrabOutcome::Won(n),
                        );
                        *st.keys_per_viewer.entry(o.viewer_id.clone()).or_default() += 1;
                    }
                }
                None => {
                    c.order_keys
                        .insert((o.viewer_id.clone(), o.idempotency_key.clone()), n);
                }
            }
            c.orders.insert(n, o);
        }
        for d in draws {
            let Some(n) = number(&d.id, 'd') else {
                continue;
            };
            let mut seed = [0u8; 32];
            if hex::decode_to_slice(&d.seed, &mut seed).is_err() {
                tracing::error!(draw = %d.id, "draw with an unreadable seed skipped");
                continue;
            }
            c.draws.insert(
                n,
                DrawState {
                    entered: d.entrants.iter().cloned().collect(),
                    names: HashMap::new(),
                    draw: d,
                    seed,
                },
            );
        }
        for p in packets {
            let Some(n) = number(&p.id, 'r') else {
                continue;
            };
            // Positions of undone grabs may be free below the highest taken one.
            let mut grabbed = HashMap::new();
            for g in &p.grabs {
                grabbed.insert(g.viewer_id.clone(), (g.index, g.amount_cents));
            }
            let next_index = p.grabs.iter().map(|g| g.index + 1).max().unwrap_or(0);
            let taken: HashSet<u32> = p.grabs.iter().map(|g| g.index).collect();
            let free = (0..next_index)
                .rev()
                .filter(|i| !taken.contains(i))
                .collect();
            c.packets.insert(
                n,
                PacketState {
                    gone_sent: next_index >= p.count || p.expires_ms <= now,
                    packet: p,
                    grabbed,
                    free,
                    next_index,
                },
            );
        }
        c
    }

    /// Watch time from before a restart (the store's audience log).
    pub(super) fn restore_watched(&mut self, watched: Vec<(String, i64)>) {
        self.watched_ms.extend(watched);
    }

    pub(super) fn watched(&mut self, viewer_id: &str, ms: i64) {
        *self.watched_ms.entry(viewer_id.to_string()).or_default() += ms.max(0);
    }
}

/// Splits `total` cents into `count` amounts by the double-mean method: each of the first
/// `count - 1` grabbers gets a uniform amount in `[1, 2 × (remaining / left) − 1]` cents and
/// the last gets what is left. Every amount is ≥ 1 cent and they sum to `total` exactly.
/// Requires `total ≥ count ≥ 1`.
pub fn split_red_packet(total: i64, count: u32, rng: &mut impl Rng) -> Vec<i64> {
    assert!(count >= 1 && total >= count as i64, "total ≥ count ≥ 1");
    let mut left = total;
    let mut out = Vec::with_capacity(count as usize);
    for k in (1..=count as i64).rev() {
        if k == 1 {
            out.push(left);
            break;
        }
        // left ≥ k, so max ≥ 1; and left − max ≥ k − 1, so everyone after gets ≥ 1 cent.
        let max = 2 * left / k - 1;
        let amount = rng.random_range(1..=max);
        out.push(amount);
        left -= amount;
    }
    out
}

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

/// The body of `grab_result`; price and currency only with a win.
#[derive(serde::Serialize)]
struct GrabResultFrame<'a> {
    sale_id: &'a str,
    key: &'a str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
}

/// The entry of `map` whose id is `{prefix}{n}`, or NOT_FOUND naming `what`.
fn lookup<'a, T>(
    map: &'a BTreeMap<u64, T>,
    id: &str,
    prefix: char,
    what: &str,
    room: &str,
) -> Result<&'a T, RoomError> {
    number(id, prefix)
        .and_then(|n| map.get(&n))
        .ok_or_else(|| RoomError::NotFound(format!("{what} {id} not found in room {room}")))
}

fn sale_number(id: &str) -> Option<u64> {
    number(id, 's')
}

impl Room {
    fn sale_state(&self, sale_id: &str) -> Result<&SaleState, RoomError> {
        lookup(
            &self.commerce.sales,
            sale_id,
            's',
            "flash sale",
            &self.record.id,
        )
    }

    fn draw_state(&self, draw_id: &str) -> Result<&DrawState, RoomError> {
        lookup(
            &self.commerce.draws,
            draw_id,
            'd',
            "lucky draw",
            &self.record.id,
        )
    }

    fn packet_state(&self, packet_id: &str) -> Result<&PacketState, RoomError> {
        lookup(
            &self.commerce.packets,
            packet_id,
            'r',
            "red packet",
            &self.record.id,
        )
    }

    fn product_name(&self, product_id: &str) -> String {
        self.products
            .iter()
            .find(|p| p.id == product_id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    fn dealer_tier(&self, session: SessionId) -> Option<String> {
        match self.sessions.get(&session)?.class {
            AudienceClass::Dealer(i) => self.record.tiers.get(i as usize).cloned(),
            AudienceClass::Public => None,
        }
    }

    /// How long a viewer has watched: closed sessions plus the longest open one.
    fn watched_ms(&self, viewer_id: &str, now: i64) -> i64 {
        let open = self
            .sessions
            .values()
            .filter(|s| s.viewer_id == viewer_id)
            .map(|s| now - s.joined_ms)
            .max()
            .unwrap_or(0);
        self.commerce
            .watched_ms
            .get(viewer_id)
            .copied()
            .unwrap_or(0)
            + open
    }

    // ------------------------------------------------------------------------ snapshot

    pub(super) fn sales_view(&self, view: ClassView<'_>, now: i64) -> Vec<serde_json::Value> {
        self.commerce
            .sales
            .values()
            .filter(|s| s.sale.phase(now) != SalePhase::Ended)
            .map(|s| view.sale(&s.sale, &self.product_name(&s.sale.product_id), now))
            .collect()
    }

    pub(super) fn open_draws_view(&self) -> Vec<serde_json::Value> {
        self.commerce
            .draws
            .values()
            .filter(|d| d.draw.drawn_ms.is_none())
            .map(|d| {
                json!({
                    "draw_id": d.draw.id,
                    "state": if d.draw.closed_ms.is_none() { "open" } else { "awaiting_beacon" },
                    "prize": d.draw.prize,
                    "winners_count": d.draw.winners_count,
                    "eligibility": d.draw.eligibility,
                    "closes_ms": d.draw.closes_ms,
                    "commitment": d.draw.commitment,
                    "beacon_source": d.draw.beacon_source,
                    "entrants_hash": d.draw.entrants_hash,
                    "algorithm": draw::ALGORITHM,
                    "entrant_count": d.entered.len(),
                })
            })
            .collect()
    }

    pub(super) fn red_packets_view(&self, now: i64) -> Vec<serde_json::Value> {
        self.commerce
            .packets
            .values()
            .filter(|p| p.packet.expires_ms > now && p.left() > 0)
            .map(|p| {
                json!({
                    "packet_id": p.packet.id,
                    "count": p.packet.count,
                    "left": p.left(),
                    "total_cents": p.packet.total_cents,
                    "currency": self.record.currency,
                    "tiers": p.packet.tiers,
                    "message": p.packet.message,
                    "expires_ms": p.packet.expires_ms,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------------ orders

    pub(super) fn place_order(
        &mut self,
        session: SessionId,
        product_id: String,
        quantity: u32,
        key: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let s = &self.sessions[&session];
        let viewer_id = s.viewer_id.clone();
        let Some(tier) = self.dealer_tier(session) else {
            return Err(ProtocolError::new(
                "not_dealer",
                "only verified dealers can order in this live",
            ));
        };
        if let Some(&n) = self
            .commerce
            .order_keys
            .get(&(viewer_id.clone(), key.clone()))
        {
            let o = &self.commerce.orders[&n];
            if o.product_id != product_id || o.quantity != quantity {
                return Err(ProtocolError::new(
                    "key_reused",
                    format!(
                        "key {key:?} was used for order {} ({} × {}); use a new key for a new order",
                        o.id, o.quantity, o.product_id
                    ),
                ));
            }
            // The same answer again; sent after durability like the first one.
            let frame = self.private("order_placed", order_frame(o));
            out.push(Output::SendDurable {
                session,
                frame,
                undo: None,
            });
            return Ok(());
        }
        if self.record.state != RoomState::Live {
            return Err(ProtocolError::new(
                "room_not_live",
                format!(
                    "orders are taken while the room is live (it is {})",
                    self.record.state.as_str()
                ),
            ));
        }
        let Some(product) = self.products.iter().find(|p| p.id == product_id) else {
            return Err(ProtocolError::new(
                "unknown_product",
                format!("product {product_id} is not in this room"),
            ));
        };
        if self.record.brand_on_air.as_deref() != Some(product.brand_id.as_str()) {
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
        if quantity > MAX_ORDER_QUANTITY {
            return Err(ProtocolError::new(
                "quantity_too_large",
                format!("at most {MAX_ORDER_QUANTITY} units per order (got {quantity})"),
            ));
        }
        if self
            .commerce
            .orders_per_viewer
            .get(&viewer_id)
            .is_some_and(|n| *n >= MAX_ORDERS_PER_VIEWER)
        {
            return Err(ProtocolError::new(
                "too_many_orders",
                format!("at most {MAX_ORDERS_PER_VIEWER} orders per dealer in one room"),
            ));
        }
        let Some(unit) = product.price_for(&tier) else {
            return Err(ProtocolError::new(
                "no_price",
                format!("product {product_id} has no price for tier {tier}"),
            ));
        };
        let total = unit
            .checked_mul(quantity as i64)
            .ok_or_else(|| ProtocolError::new("quantity_too_large", "the total overflows"))?;
        let n = self.commerce.next_order;
        self.commerce.next_order += 1;
        let s = &self.sessions[&session];
        let order = Order {
            id: order_id(n),
            viewer_id: viewer_id.clone(),
            display_name: s.display_name.clone(),
            tier,
            brand_id: product.brand_id.clone(),
            product_id: product.id.clone(),
            product_name: product.name.clone(),
            quantity,
            unit_price_cents: unit,
            total_cents: total,
            currency: self.record.currency.clone(),
            status: OrderStatus::Placed,
            status_reason: None,
            sale_id: None,
            inviter_id: s.inviter_id.clone(),
            idempotency_key: key.clone(),
            created_ms: now,
            updated_ms: now,
        };
        let frame = self.private("order_placed", order_frame(&order));
        self.commerce.order_keys.insert((viewer_id.clone(), key), n);
        *self
            .commerce
            .orders_per_viewer
            .entry(viewer_id)
            .or_default() += 1;
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
        self.commerce.orders.insert(n, order);
        Ok(())
    }

    fn list_orders(&self, f: OrderFilter) -> Result<OrderPage, RoomError> {
        let limit = match f.limit {
            None | Some(0) => 100,
            Some(l) if l <= 1000 => l as usize,
            Some(l) => return Err(invalid(format!("limit must be 1 to 1000 (got {l})"))),
        };
        let before = match &f.before_order_id {
            Some(id) => Some(
                number(id, 'o')
                    .ok_or_else(|| invalid(format!("before_order_id {id:?} is not an order id")))?,
            ),
            None => None,
        };
        if let (Some(a), Some(b)) = (f.since_ms, f.until_ms) {
            if a >= b {
                return Err(invalid("since_ms must be before until_ms"));
            }
        }
        let matches = |o: &Order| {
            f.brand_id.as_ref().is_none_or(|b| &o.brand_id == b)
                && f.product_id.as_ref().is_none_or(|p| &o.product_id == p)
                && f.viewer_id.as_ref().is_none_or(|v| &o.viewer_id == v)
                && f.sale_id
                    .as_ref()
                    .is_none_or(|s| o.sale_id.as_ref() == Some(s))
                && f.status.is_none_or(|s| o.status == s)
                && f.since_ms.is_none_or(|t| o.created_ms >= t)
                && f.until_ms.is_none_or(|t| o.created_ms < t)
        };
        let mut total_count = 0u32;
        let mut total_cents = 0i64;
        let mut orders = Vec::new();
        for (n, o) in self.commerce.orders.iter().rev() {
            if !matches(o) {
                continue;
            }
            total_count += 1;
            total_cents = total_cents.saturating_add(o.total_cents);
            if orders.len() < limit && before.is_none_or(|b| *n < b) {
                orders.push(o.clone());
            }
        }
        Ok(OrderPage {
            orders,
            total_count,
            total_cents,
        })
    }

    fn order_mut(&mut self, order_id: &str) -> Result<&mut Order, RoomError> {
        let room = self.record.id.clone();
        number(order_id, 'o')
            .and_then(|n| self.commerce.orders.get_mut(&n))
            .ok_or_else(|| {
                RoomError::NotFound(format!("order {order_id} not found in room {room}"))
            })
    }

    fn update_order_status(
        &mut self,
        order_id: &str,
        status: OrderStatus,
        reason: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<Order, RoomError> {
        let reason = reason.trim().to_string();
        if status == OrderStatus::Cancelled {
            check_text("reason", &reason, 1, 500)?;
        } else if !reason.is_empty() {
            return Err(invalid("a reason is only given when cancelling"));
        }
        let room = self.record.id.clone();
        let order = self.order_mut(order_id)?;
        if !order.status.can_become(status) {
            return Err(RoomError::FailedPrecondition(format!(
                "order {order_id} is {}; it cannot become {} (placed → confirmed → shipped, \
                 or placed/confirmed → cancelled)",
                order.status.as_str(),
                status.as_str()
            )));
        }
        order.status = status;
        order.status_reason = (status == OrderStatus::Cancelled).then_some(reason);
        order.updated_ms = now;
        let order = order.clone();
        out.push(Output::Persist(StoreOp::PutOrder {
            room,
            order: Box::new(order.clone()),
        }));
        if self.watched {
            out.push(Output::Watch(WatchEvent::Order(Box::new(order.clone()))));
        }
        for session in self.sessions_of(&order.viewer_id) {
            let frame = self.private("order_status", order_frame(&order));
            out.push(Output::Send { session, frame });
        }
        Ok(order)
    }

    // ------------------------------------------------------------------------ flash sales

    #[allow(clippy::too_many_arguments)]
    fn create_flash_sale(
        &mut self,
        product_id: String,
        stock: u32,
        per_dealer_limit: u32,
        prices: Vec<(String, i64)>,
        start_ms: Option<i64>,
        duration_seconds: u32,
        tiers: Vec<String>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<FlashSale, RoomError> {
        let product = &self.products[self.product_index(&product_id)?];
        if !(1..=1_000_000).contains(&stock) {
            return Err(invalid(format!("stock must be 1 to 1000000 (got {stock})")));
        }
        if per_dealer_limit == 0 || per_dealer_limit > stock {
            return Err(invalid(format!(
                "per_dealer_limit must be 1 to the stock ({stock}); got {per_dealer_limit}"
            )));
        }
        if !(1..=86_400).contains(&duration_seconds) {
            return Err(invalid(format!(
                "duration_seconds must be 1 to 86400 (got {duration_seconds})"
            )));
        }
        let start = start_ms.unwrap_or(now).max(now);
        if start_ms.is_some_and(|s| s < now - 60_000) {
            return Err(invalid("start_ms is in the past; use 0 to start now"));
        }
        if start > now + 7 * 86_400_000 {
            return Err(invalid("start_ms is more than 7 days ahead"));
        }
        let eligible: Vec<String> = if tiers.is_empty() {
            self.record.tiers.clone()
        } else {
            let mut seen = HashSet::new();
            for t in &tiers {
                if self.record.tier_index(t).is_none() {
                    return Err(invalid(format!(
                        "unknown tier {t:?}; the room's tiers are {}",
                        self.record.tiers.join(", ")
                    )));
                }
                if !seen.insert(t) {
                    return Err(invalid(format!("tier {t} is listed twice")));
                }
            }
            tiers
        };
        let mut sale_prices = Vec::with_capacity(eligible.len());
        for (t, _) in &prices {
            if !eligible.contains(t) {
                return Err(invalid(format!(
                    "price for tier {t:?}, which does not take part in this sale"
                )));
            }
        }
        for t in &eligible {
            let mine: Vec<i64> = prices.iter().filter(|(x, _)| x == t).map(|p| p.1).collect();
            match mine[..] {
                [c] if (0..=100_000_000_000).contains(&c) => sale_prices.push((t.clone(), c)),
                [c] => {
                    return Err(invalid(format!(
                        "sale price for tier {t} must be 0 to 100000000000 cents (got {c})"
                    )))
                }
                [] => return Err(invalid(format!("missing the sale price for tier {t}"))),
                _ => return Err(invalid(format!("more than one sale price for tier {t}"))),
            }
        }
        if self.commerce.sales.len() >= MAX_SALES {
            return Err(RoomError::FailedPrecondition(format!(
                "a room holds at most {MAX_SALES} flash sales"
            )));
        }
        let brand_id = product.brand_id.clone();
        let product_name = product.name.clone();
        let id = self.next_id("s");
        let n = sale_number(&id).expect("made here");
        let sale = FlashSale {
            id,
            product_id,
            brand_id,
            stock,
            remaining: stock,
            per_dealer_limit,
            prices: sale_prices,
            start_ms: start,
            end_ms: start + duration_seconds as i64 * 1000,
            ended_ms: None,
            created_ms: now,
        };
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutSale {
            room: self.record.id.clone(),
            sale: Box::new(sale.clone()),
        }));
        let phase = sale.phase(now);
        self.broadcast(
            RoomEvent::SaleScheduled {
                sale: sale.clone(),
                product_name: product_name.clone(),
            },
            now,
            out,
        );
        if phase == SalePhase::Live {
            self.broadcast(
                RoomEvent::SaleStarted {
                    sale: sale.clone(),
                    product_name,
                },
                now,
                out,
            );
        }
        out.push(self.action("flash_sale_created", "", sale.id.clone(), now));
        self.commerce.sales.insert(
            n,
            SaleState {
                sale: sale.clone(),
                per_dealer: HashMap::new(),
                outcomes: HashMap::new(),
                keys_per_viewer: HashMap::new(),
                announced: phase,
                stock_sent: stock,
                stock_sent_ms: now,
            },
        );
        Ok(sale)
    }

    pub(super) fn grab(
        &mut self,
        session: SessionId,
        sale_id: String,
        key: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Some(n) = sale_number(&sale_id).filter(|n| self.commerce.sales.contains_key(n)) else {
            return Err(ProtocolError::new(
                "unknown_sale",
                format!("flash sale {sale_id} is not in this room"),
            ));
        };
        let tier = self.dealer_tier(session);
        let live = self.record.state == RoomState::Live;
        let s = &self.sessions[&session];
        let viewer_id = s.viewer_id.clone();
        let display_name = s.display_name.clone();
        let inviter_id = s.inviter_id.clone();
        let currency = self.record.currency.clone();
        let state = self.commerce.sales.get_mut(&n).expect("checked");
        let id_key = (viewer_id, key);
        let outcome = match state.outcomes.get(&id_key) {
            Some(o) => *o,
            None => {
                let max_keys = state.sale.per_dealer_limit.saturating_add(SPARE_GRAB_KEYS);
                let keys = state.keys_per_viewer.entry(id_key.0.clone()).or_default();
                if *keys >= max_keys {
                    return Err(ProtocolError::new(
                        "too_many_attempts",
                        format!("at most {max_keys} grab keys per viewer for this sale"),
                    ));
                }
                *keys += 1;
                let sale = &state.sale;
                let price = tier.as_deref().and_then(|t| sale.price_for(t));
                let outcome = match (price, sale.phase(now)) {
                    (None, _) => GrabOutcome::NotEligible,
                    (_, SalePhase::Ended) => GrabOutcome::Ended,
                    (_, SalePhase::Scheduled) => GrabOutcome::NotStarted,
                    (_, _) if !live => GrabOutcome::NotStarted,
                    (_, SalePhase::SoldOut) => GrabOutcome::SoldOut,
                    (Some(_), SalePhase::Live)
                        if state.per_dealer.get(&id_key.0).copied().unwrap_or(0)
                            >= sale.per_dealer_limit =>
                    {
                        GrabOutcome::LimitReached
                    }
                    (Some(_), SalePhase::Live) => GrabOutcome::Won(self.commerce.next_order),
                };
                state.outcomes.insert(id_key.clone(), outcome);
                if let (GrabOutcome::Won(on), Some(unit)) = (outcome, price) {
                    self.commerce.next_order += 1;
                    state.sale.remaining -= 1;
                    *state.per_dealer.entry(id_key.0.clone()).or_default() += 1;
                    let order = Order {
                        id: order_id(on),
                        viewer_id: id_key.0.clone(),
                        display_name,
                        tier: tier.clone().unwrap_or_default(),
                        brand_id: state.sale.brand_id.clone(),
                        product_id: state.sale.product_id.clone(),
                        product_name: String::new(),
                        quantity: 1,
                        unit_price_cents: unit,
                        total_cents: unit,
                        currency,
                        status: OrderStatus::Placed,
                        status_reason: None,
                        sale_id: Some(sale_id.clone()),
                        inviter_id,
                        idempotency_key: id_key.1.clone(),
                        created_ms: now,
                        updated_ms: now,
                    };
                    let sold_out = state.sale.remaining == 0;
                    let stock = state.sale.stock;
                    if sold_out {
                        state.announced = SalePhase::SoldOut;
                        state.stock_sent = 0;
                    }
                    let mut order = order;
                    order.product_name = self.product_name(&order.product_id);
                    *self
                        .commerce
                        .orders_per_viewer
                        .entry(order.viewer_id.clone())
                        .or_default() += 1;
                    out.push(Output::Persist(StoreOp::GrantSale {
                        room: self.record.id.clone(),
                        sale_id: sale_id.clone(),
                        order: Box::new(order.clone()),
                    }));
                    if self.watched {
                        out.push(Output::Watch(WatchEvent::Order(Box::new(order.clone()))));
                    }
                    self.commerce.orders.insert(on, order);
                    if sold_out {
                        self.broadcast(
                            RoomEvent::SoldOut {
                                sale_id: sale_id.clone(),
                                stock,
                            },
                            now,
                            out,
                        );
                    }
                }
                outcome
            }
        };
        let won = match outcome {
            GrabOutcome::Won(on) => self.commerce.orders.get(&on),
            _ => None,
        };
        let frame = self.private(
            "grab_result",
            GrabResultFrame {
                sale_id: &sale_id,
                key: &id_key.1,
                result: outcome.as_str(),
                order_id: won.map(|o| o.id.as_str()),
                price_cents: won.map(|o| o.unit_price_cents),
                currency: won.map(|o| o.currency.as_str()),
            },
        );
        let undo = match outcome {
            GrabOutcome::Won(on) => Some(Undo::SaleGrant {
                sale_id,
                order_id: order_id(on),
            }),
            _ => None,
        };
        // Every answer leaves after durability: a repeated key's `won` must not overtake
        // the write of the first.
        out.push(Output::SendDurable {
            session,
            frame,
            undo,
        });
        Ok(())
    }

    fn end_sale(&mut self, n: u64, reason: &str, now: i64, out: &mut Vec<Output>) {
        let room = self.record.id.clone();
        let Some(st) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        if st.announced == SalePhase::Ended {
            return;
        }
        st.announced = SalePhase::Ended;
        if reason == "host" && st.sale.ended_ms.is_none() {
            st.sale.ended_ms = Some(now);
            out.push(Output::Persist(StoreOp::PutSale {
                room,
                sale: Box::new(st.sale.clone()),
            }));
        }
        let ev = RoomEvent::SaleEnded {
            sale_id: st.sale.id.clone(),
            sold: st.sale.stock - st.sale.remaining,
            stock: st.sale.stock,
            reason: reason.into(),
        };
        self.broadcast(ev, now, out);
    }

    // ------------------------------------------------------------------------ draws

    #[allow(clippy::too_many_arguments)]
    fn create_draw(
        &mut self,
        prize: String,
        winners: u32,
        eligibility: DrawEligibility,
        entry_seconds: u32,
        beacon_source: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<draw::DrawRecord, RoomError> {
        if self.record.state != RoomState::Live {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} is {}; lucky draws run while it is live",
                self.record.id,
                self.record.state.as_str()
            )));
        }
        let prize = prize.trim().to_string();
        check_text("prize", &prize, 1, 200)?;
        let beacon_source = beacon_source.trim().to_string();
        check_text("beacon_source", &beacon_source, 0, 200)?;
        if !(1..=10_000).contains(&winners) {
            return Err(invalid(format!(
                "winners must be 1 to 10000 (got {winners})"
            )));
        }
        if !(5..=86_400).contains(&entry_seconds) {
            return Err(invalid(format!(
                "entry_seconds must be 5 to 86400 (got {entry_seconds})"
            )));
        }
        let eligibility = match eligibility {
            DrawEligibility::Tiers { tiers } => {
                if tiers.is_empty() {
                    return Err(invalid("a tiers rule needs at least one tier"));
                }
                for t in &tiers {
                    if self.record.tier_index(t).is_none() {
                        return Err(invalid(format!(
                            "unknown tier {t:?}; the room's tiers are {}",
                            self.record.tiers.join(", ")
                        )));
                    }
                }
                DrawEligibility::Tiers { tiers }
            }
            DrawEligibility::Keyword { keyword } => {
                let keyword = keyword.trim().to_lowercase();
                check_text("keyword", &keyword, 1, 50)?;
                DrawEligibility::Keyword { keyword }
            }
            DrawEligibility::WatchedMinutes { minutes } => {
                if !(1..=1440).contains(&minutes) {
                    return Err(invalid(format!(
                        "watched_minutes must be 1 to 1440 (got {minutes})"
                    )));
                }
                DrawEligibility::WatchedMinutes { minutes }
            }
            e => e,
        };
        let open = self
            .commerce
            .draws
            .values()
            .filter(|d| d.draw.closed_ms.is_none())
            .count();
        if open >= 20 || self.commerce.draws.len() >= MAX_DRAWS {
            return Err(RoomError::FailedPrecondition(format!(
                "a room runs at most 20 open draws and {MAX_DRAWS} in all"
            )));
        }
        let seed = draw::new_seed();
        let id = self.next_id("d");
        let n = number(&id, 'd').expect("made here");
        let d = Draw {
            id: id.clone(),
            prize,
            winners_count: winners,
            eligibility,
            opened_ms: now,
            closes_ms: now + entry_seconds as i64 * 1000,
            closed_ms: None,
            drawn_ms: None,
            seed: hex::encode(seed),
            commitment: draw::commitment(&seed),
            beacon_source,
            beacon: String::new(),
            entrants: Vec::new(),
            entrants_hash: None,
            winners: Vec::new(),
        };
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutDraw {
            room: self.record.id.clone(),
            draw: Box::new(d.clone()),
        }));
        self.broadcast(
            RoomEvent::DrawOpened {
                draw_id: d.id.clone(),
                prize: d.prize.clone(),
                winners_count: d.winners_count,
                eligibility: d.eligibility.clone(),
                closes_ms: d.closes_ms,
                commitment: d.commitment.clone(),
                beacon_source: d.beacon_source.clone(),
                algorithm: draw::ALGORITHM.into(),
            },
            now,
            out,
        );
        out.push(self.action("draw_opened", "", id, now));
        let st = DrawState {
            draw: d,
            seed,
            entered: HashSet::new(),
            names: HashMap::new(),
        };
        let record = self.draw_record(&st);
        self.commerce.draws.insert(n, st);
        Ok(record)
    }

    fn draw_record(&self, st: &DrawState) -> draw::DrawRecord {
        let d = &st.draw;
        let closed = d.closed_ms.is_some();
        let drawn = d.drawn_ms.is_some();
        draw::DrawRecord {
            algorithm: draw::ALGORITHM.into(),
            room_id: self.record.id.clone(),
            draw_id: d.id.clone(),
            prize: d.prize.clone(),
            winners_count: d.winners_count,
            eligibility: serde_json::to_value(&d.eligibility).unwrap_or_default(),
            opened_ms: d.opened_ms,
            closes_ms: d.closes_ms,
            closed_ms: d.closed_ms,
            drawn_ms: d.drawn_ms,
            commitment: d.commitment.clone(),
            seed: drawn.then(|| d.seed.clone()),
            entrants: if closed {
                d.entrants.clone()
            } else {
                Vec::new()
            },
            entrants_hash: d.entrants_hash.clone(),
            beacon_source: d.beacon_source.clone(),
            beacon: d.beacon.clone(),
            winners: d.winners.clone(),
        }
    }

    /// Why `session` may not enter draw `st`, if it may not.
    fn draw_refusal(&self, session: SessionId, st: &DrawState, now: i64) -> Option<String> {
        let s = &self.sessions[&session];
        let tier = self.dealer_tier(session);
        match &st.draw.eligibility {
            DrawEligibility::Everyone => None,
            DrawEligibility::Dealers => tier
                .is_none()
                .then(|| "this draw is for verified dealers".into()),
            DrawEligibility::Tiers { tiers } => (!tier.is_some_and(|t| tiers.contains(&t)))
                .then(|| format!("this draw is for dealers of the tiers {}", tiers.join(", "))),
            DrawEligibility::Keyword { keyword } => Some(format!(
                "enter this draw by chatting a message containing {keyword:?}"
            )),
            DrawEligibility::WatchedMinutes { minutes } => {
                let need = *minutes as i64 * 60_000;
                let have = self.watched_ms(&s.viewer_id, now);
                (have < need).then(|| {
                    format!(
                        "this draw is for viewers who watched {minutes} minutes; {} s to go",
                        (need - have + 999) / 1000
                    )
                })
            }
        }
    }

    fn enter(&mut self, n: u64, session: SessionId, now: i64, out: &mut Vec<Output>) {
        let s = &self.sessions[&session];
        let (viewer_id, name) = (s.viewer_id.clone(), s.display_name.clone());
        let room = self.record.id.clone();
        let st = self.commerce.draws.get_mut(&n).expect("caller checked");
        let fresh = st.entered.insert(viewer_id.clone());
        if fresh {
            st.draw.entrants.push(viewer_id.clone());
            st.names.insert(viewer_id.clone(), name);
            out.push(Output::Persist(StoreOp::AddDrawEntrant {
                room,
                draw_id: st.draw.id.clone(),
                viewer_id,
                at_ms: now,
            }));
        }
        let body = json!({
            "draw_id": st.draw.id,
            "entered": true,
            "already": !fresh,
            "entrant_count": st.entered.len(),
        });
        let frame = self.private("draw_entered", body);
        out.push(Output::SendDurable {
            session,
            frame,
            undo: None,
        });
    }

    pub(super) fn enter_draw(
        &mut self,
        session: SessionId,
        draw_id: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let n = match self.draw_state(draw_id) {
            Ok(st) if st.draw.closed_ms.is_some() || now >= st.draw.closes_ms => {
                return Err(ProtocolError::new(
                    "draw_closed",
                    format!("lucky draw {draw_id} is closed"),
                ))
            }
            Ok(st) => {
                if let Some(why) = self.draw_refusal(session, st, now) {
                    return Err(ProtocolError::new("not_eligible", why));
                }
                number(draw_id, 'd').expect("found")
            }
            Err(_) => {
                return Err(ProtocolError::new(
                    "unknown_draw",
                    format!("lucky draw {draw_id} is not in this room"),
                ))
            }
        };
        self.enter(n, session, now, out);
        Ok(())
    }

    /// A chat containing an open keyword draw's keyword is an entry.
    pub(super) fn keyword_entries(
        &mut self,
        session: SessionId,
        text: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let lower = text.to_lowercase();
        let viewer = &self.sessions[&session].viewer_id;
        let hits: Vec<u64> = self
            .commerce
            .draws
            .iter()
            .filter(|(_, st)| st.draw.closed_ms.is_none() && now < st.draw.closes_ms)
            .filter(|(_, st)| !st.entered.contains(viewer))
            .filter(|(_, st)| {
                matches!(&st.draw.eligibility, DrawEligibility::Keyword { keyword }
                    if lower.contains(keyword.as_str()))
            })
            .map(|(n, _)| *n)
            .collect();
        for n in hits {
            self.enter(n, session, now, out);
        }
    }

    /// Entry closes: the canonical entrants and their hash are fixed and published.
    fn close_entry(&mut self, n: u64, now: i64, out: &mut Vec<Output>) {
        let room = self.record.id.clone();
        let st = self.commerce.draws.get_mut(&n).expect("caller checked");
        draw::sort_entrants(&mut st.draw.entrants);
        let hash = draw::entrants_hash(&st.draw.entrants);
        st.draw.entrants_hash = Some(hash.clone());
        st.draw.closed_ms = Some(now);
        let d = &st.draw;
        let event = RoomEvent::DrawClosed {
            draw_id: d.id.clone(),
            entrant_count: d.entrants.len() as u32,
            entrants_hash: hash,
            beacon_source: d.beacon_source.clone(),
        };
        out.push(Output::Persist(StoreOp::PutDraw {
            room,
            draw: Box::new(d.clone()),
        }));
        self.broadcast(event, now, out);
    }

    /// The winners of a closed draw, from its published entrants hash and the beacon.
    fn draw_winners(
        &mut self,
        n: u64,
        beacon: String,
        now: i64,
        out: &mut Vec<Output>,
    ) -> draw::DrawRecord {
        let room = self.record.id.clone();
        let st = self.commerce.draws.get_mut(&n).expect("caller checked");
        let hash = st.draw.entrants_hash.clone().expect("entry is closed");
        let winners = draw::pick_winners(
            &st.seed,
            &hash,
            &st.draw.id,
            &beacon,
            &st.draw.entrants,
            st.draw.winners_count as usize,
        );
        st.draw.beacon = beacon.clone();
        st.draw.winners = winners.clone();
        st.draw.drawn_ms = Some(now);
        let d = st.draw.clone();
        let named: Vec<(String, String)> = winners
            .iter()
            .map(|w| (w.clone(), st.names.get(w).cloned().unwrap_or_default()))
            .collect();
        out.push(Output::Persist(StoreOp::PutDraw {
            room,
            draw: Box::new(d.clone()),
        }));
        self.broadcast(
            RoomEvent::DrawResult {
                draw_id: d.id.clone(),
                prize: d.prize.clone(),
                seed: d.seed.clone(),
                entrants_hash: hash,
                beacon,
                winners: named,
            },
            now,
            out,
        );
        for w in &winners {
            for session in self.sessions_of(w) {
                let frame = self.private("draw_won", json!({ "draw_id": d.id, "prize": d.prize }));
                out.push(Output::Send { session, frame });
            }
        }
        out.push(self.action(
            "draw_closed",
            "",
            format!("{}: {}", d.id, winners.join(", ")),
            now,
        ));
        let st = &self.commerce.draws[&n];
        self.draw_record(st)
    }

    /// Entry ends (window over, host, room closing): a draw without a beacon source is drawn
    /// at once; one with a source waits for its beacon.
    fn end_entry(&mut self, n: u64, now: i64, out: &mut Vec<Output>) -> draw::DrawRecord {
        self.close_entry(n, now, out);
        if self.commerce.draws[&n].draw.beacon_source.is_empty() {
            self.draw_winners(n, String::new(), now, out)
        } else {
            self.draw_record(&self.commerce.draws[&n])
        }
    }

    // ------------------------------------------------------------------------ red packets

    #[allow(clippy::too_many_arguments)]
    fn drop_red_packet(
        &mut self,
        total_cents: i64,
        count: u32,
        tiers: Vec<String>,
        message: String,
        duration_seconds: Option<u32>,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<RedPacket, RoomError> {
        if self.record.state != RoomState::Live {
            return Err(RoomError::FailedPrecondition(format!(
                "room {} is {}; red packets are dropped while it is live",
                self.record.id,
                self.record.state.as_str()
            )));
        }
        if !(1..=10_000).contains(&count) {
            return Err(invalid(format!("count must be 1 to 10000 (got {count})")));
        }
        if !(1..=100_000_000).contains(&total_cents) {
            return Err(invalid(format!(
                "total_cents must be 1 to 100000000 (got {total_cents})"
            )));
        }
        if total_cents < count as i64 {
            return Err(invalid(format!(
                "total_cents ({total_cents}) must be at least count ({count}): every share is ≥ 1 cent"
            )));
        }
        for t in &tiers {
            if self.record.tier_index(t).is_none() {
                return Err(invalid(format!(
                    "unknown tier {t:?}; the room's tiers are {}",
                    self.record.tiers.join(", ")
                )));
            }
        }
        let message = message.trim().to_string();
        check_text("message", &message, 0, 200)?;
        let duration = duration_seconds.filter(|d| *d != 0).unwrap_or(300);
        if !(10..=86_400).contains(&duration) {
            return Err(invalid(format!(
                "duration_seconds must be 10 to 86400 (got {duration})"
            )));
        }
        if self.commerce.packets.len() >= MAX_PACKETS {
            return Err(RoomError::FailedPrecondition(format!(
                "a room holds at most {MAX_PACKETS} red packets"
            )));
        }
        let amounts = split_red_packet(total_cents, count, &mut rand::rng());
        let id = self.next_id("r");
        let n = number(&id, 'r').expect("made here");
        let packet = RedPacket {
            id,
            total_cents,
            count,
            tiers,
            message,
            amounts,
            created_ms: now,
            expires_ms: now + duration as i64 * 1000,
            grabs: Vec::new(),
        };
        self.persist_room(out);
        out.push(Output::Persist(StoreOp::PutRedPacket {
            room: self.record.id.clone(),
            packet: Box::new(packet.clone()),
        }));
        self.broadcast(
            RoomEvent::RedPacketDropped {
                packet_id: packet.id.clone(),
                count,
                total_cents,
                currency: self.record.currency.clone(),
                tiers: packet.tiers.clone(),
                message: packet.message.clone(),
                expires_ms: packet.expires_ms,
            },
            now,
            out,
        );
        out.push(self.action("red_packet", "", packet.id.clone(), now));
        self.commerce.packets.insert(
            n,
            PacketState {
                packet: packet.clone(),
                grabbed: HashMap::new(),
                free: Vec::new(),
                next_index: 0,
                gone_sent: false,
            },
        );
        Ok(packet)
    }

    pub(super) fn grab_red_packet(
        &mut self,
        session: SessionId,
        packet_id: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Some(n) = number(packet_id, 'r').filter(|n| self.commerce.packets.contains_key(n))
        else {
            return Err(ProtocolError::new(
                "unknown_packet",
                format!("red packet {packet_id} is not in this room"),
            ));
        };
        let tier = self.dealer_tier(session);
        let viewer_id = self.sessions[&session].viewer_id.clone();
        let room = self.record.id.clone();
        let currency = self.record.currency.clone();
        let st = self.commerce.packets.get_mut(&n).expect("checked");
        let refuse = |result: &str, message: String| {
            Err(ProtocolError::new(
                match result {
                    "already_grabbed" => "already_grabbed",
                    "not_eligible" => "not_eligible",
                    "expired" => "packet_expired",
                    _ => "packet_empty",
                },
                message,
            ))
        };
        if let Some((_, amount)) = st.grabbed.get(&viewer_id) {
            return refuse(
                "already_grabbed",
                format!("you already opened red packet {packet_id} ({amount} cents)"),
            );
        }
        if !st.packet.tiers.is_empty() && !tier.is_some_and(|t| st.packet.tiers.contains(&t)) {
            return refuse(
                "not_eligible",
                format!(
                    "red packet {packet_id} is for dealers of the tiers {}",
                    st.packet.tiers.join(", ")
                ),
            );
        }
        if st.packet.expires_ms <= now {
            return refuse("expired", format!("red packet {packet_id} has expired"));
        }
        if st.left() == 0 {
            return refuse("empty", format!("red packet {packet_id} is all taken"));
        }
        let index = st.free.pop().unwrap_or_else(|| {
            st.next_index += 1;
            st.next_index - 1
        });
        let amount = st.packet.amounts[index as usize];
        st.grabbed.insert(viewer_id.clone(), (index, amount));
        st.packet.grabs.push(PacketGrab {
            viewer_id: viewer_id.clone(),
            index,
            amount_cents: amount,
        });
        let empty = st.left() == 0;
        let grabbed = st.grabbed.len() as u32;
        out.push(Output::Persist(StoreOp::GrabRedPacket {
            room,
            packet_id: packet_id.to_string(),
            viewer_id: viewer_id.clone(),
            index,
            amount_cents: amount,
            at_ms: now,
        }));
        let frame = self.private(
            "red_packet_result",
            json!({
                "packet_id": packet_id,
                "result": "won",
                "amount_cents": amount,
                "currency": currency,
            }),
        );
        out.push(Output::SendDurable {
            session,
            frame,
            undo: Some(Undo::RedPacketGrab {
                packet_id: packet_id.to_string(),
                viewer_id,
            }),
        });
        if empty {
            self.commerce
                .packets
                .get_mut(&n)
                .expect("checked")
                .gone_sent = true;
            self.broadcast(
                RoomEvent::RedPacketGone {
                    packet_id: packet_id.to_string(),
                    reason: "empty".into(),
                    grabbed,
                },
                now,
                out,
            );
        }
        Ok(())
    }

    fn red_packet_reply(&self, st: &PacketState) -> RedPacket {
        let mut p = st.packet.clone();
        // The split is never shown before it is grabbed.
        p.amounts.clear();
        p
    }

    // ------------------------------------------------------------------------ time, end, undo

    pub(super) fn commerce_tick(&mut self, now: i64, out: &mut Vec<Output>) {
        let mut events = Vec::new();
        let mut to_end = Vec::new();
        for (n, st) in self.commerce.sales.iter_mut() {
            if st.announced == SalePhase::Ended {
                continue;
            }
            let phase = st.sale.phase(now);
            if phase == SalePhase::Ended {
                to_end.push(*n);
                continue;
            }
            if st.announced == SalePhase::Scheduled && phase != SalePhase::Scheduled {
                st.announced = phase;
                events.push(RoomEvent::SaleStarted {
                    sale: st.sale.clone(),
                    product_name: String::new(),
                });
            }
            if st.sale.remaining != st.stock_sent
                && now - st.stock_sent_ms >= STOCK_LEFT_INTERVAL_MS
            {
                st.stock_sent = st.sale.remaining;
                st.stock_sent_ms = now;
                events.push(RoomEvent::StockLeft {
                    sale_id: st.sale.id.clone(),
                    remaining: st.sale.remaining,
                    stock: st.sale.stock,
                });
            }
        }
        for ev in events {
            let ev = match ev {
                RoomEvent::SaleStarted { sale, .. } => RoomEvent::SaleStarted {
                    product_name: self.product_name(&sale.product_id),
                    sale,
                },
                e => e,
            };
            self.broadcast(ev, now, out);
        }
        for n in to_end {
            self.end_sale(n, "time", now, out);
        }
        let due: Vec<u64> = self
            .commerce
            .draws
            .iter()
            .filter(|(_, st)| st.draw.closed_ms.is_none() && now >= st.draw.closes_ms)
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            self.end_entry(n, now, out);
        }
        let expired: Vec<(String, u32)> = self
            .commerce
            .packets
            .values_mut()
            .filter(|p| !p.gone_sent && p.packet.expires_ms <= now)
            .map(|p| {
                p.gone_sent = true;
                (p.packet.id.clone(), p.grabbed.len() as u32)
            })
            .collect();
        for (packet_id, grabbed) in expired {
            self.broadcast(
                RoomEvent::RedPacketGone {
                    packet_id,
                    reason: "expired".into(),
                    grabbed,
                },
                now,
                out,
            );
        }
    }

    /// The room is closing: sales end, open draws are decided.
    pub(super) fn end_commerce(&mut self, now: i64, out: &mut Vec<Output>) {
        let sales: Vec<u64> = self.commerce.sales.keys().copied().collect();
        for n in sales {
            self.end_sale(n, "host", now, out);
        }
        let open: Vec<u64> = self
            .commerce
            .draws
            .iter()
            .filter(|(_, st)| st.draw.closed_ms.is_none())
            .map(|(n, _)| *n)
            .collect();
        for n in open {
            self.end_entry(n, now, out);
        }
    }

    /// A write acknowledged after durability failed: take its effect back.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Order { order_id } => {
                if let Some(o) =
                    number(&order_id, 'o').and_then(|n| self.commerce.orders.remove(&n))
                {
                    self.commerce
                        .order_keys
                        .remove(&(o.viewer_id.clone(), o.idempotency_key.clone()));
                    if let Some(c) = self.commerce.orders_per_viewer.get_mut(&o.viewer_id) {
                        *c = c.saturating_sub(1);
                    }
                }
            }
            Undo::SaleGrant { sale_id, order_id } => {
                let Some(o) = number(&order_id, 'o').and_then(|n| self.commerce.orders.remove(&n))
                else {
                    return;
                };
                if let Some(c) = self.commerce.orders_per_viewer.get_mut(&o.viewer_id) {
                    *c = c.saturating_sub(1);
                }
                if let Some(st) =
                    sale_number(&sale_id).and_then(|n| self.commerce.sales.get_mut(&n))
                {
                    st.sale.remaining += 1;
                    if let Some(c) = st.per_dealer.get_mut(&o.viewer_id) {
                        *c = c.saturating_sub(1);
                    }
                    st.outcomes.remove(&(o.viewer_id, o.idempotency_key));
                    if st.announced == SalePhase::SoldOut {
                        st.announced = SalePhase::Live;
                    }
                }
            }
            Undo::RedPacketGrab {
                packet_id,
                viewer_id,
            } => {
                if let Some(st) =
                    number(&packet_id, 'r').and_then(|n| self.commerce.packets.get_mut(&n))
                {
                    if let Some((idx, _)) = st.grabbed.remove(&viewer_id) {
                        st.free.push(idx);
                        st.packet.grabs.retain(|g| g.viewer_id != viewer_id);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------ host commands

    pub(super) fn commerce_command(
        &mut self,
        cmd: CommerceCommand,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        match cmd {
            CommerceCommand::ListOrders(f) => Ok(HostReply::Orders(self.list_orders(f)?)),
            CommerceCommand::GetOrder { order_id } => {
                let o = self.order_mut(&order_id)?.clone();
                Ok(HostReply::Order(Box::new(o)))
            }
            CommerceCommand::UpdateOrderStatus {
                order_id,
                status,
                reason,
            } => {
                let o = self.update_order_status(&order_id, status, reason, now, out)?;
                Ok(HostReply::Order(Box::new(o)))
            }
            CommerceCommand::CreateFlashSale {
                product_id,
                stock,
                per_dealer_limit,
                prices,
                start_ms,
                duration_seconds,
                tiers,
            } => self
                .create_flash_sale(
                    product_id,
                    stock,
                    per_dealer_limit,
                    prices,
                    start_ms,
                    duration_seconds,
                    tiers,
                    now,
                    out,
                )
                .map(HostReply::Sale),
            CommerceCommand::GetFlashSale { sale_id } => {
                Ok(HostReply::Sale(self.sale_state(&sale_id)?.sale.clone()))
            }
            CommerceCommand::ListFlashSales => Ok(HostReply::Sales(
                self.commerce
                    .sales
                    .values()
                    .map(|s| s.sale.clone())
                    .collect(),
            )),
            CommerceCommand::EndFlashSale { sale_id } => {
                let st = self.sale_state(&sale_id)?;
                if st.sale.phase(now) == SalePhase::Ended {
                    return Err(RoomError::FailedPrecondition(format!(
                        "flash sale {sale_id} has already ended"
                    )));
                }
                let n = sale_number(&sale_id).expect("found");
                self.end_sale(n, "host", now, out);
                Ok(HostReply::Sale(self.commerce.sales[&n].sale.clone()))
            }
            CommerceCommand::CreateDraw {
                prize,
                winners,
                eligibility,
                entry_seconds,
                beacon_source,
            } => self
                .create_draw(
                    prize,
                    winners,
                    eligibility,
                    entry_seconds,
                    beacon_source,
                    now,
                    out,
                )
                .map(|r| HostReply::Draw(Box::new(r))),
            CommerceCommand::CloseDraw { draw_id, beacon } => {
                let st = self.draw_state(&draw_id)?;
                let beacon = beacon.trim().to_string();
                check_text("beacon", &beacon, 0, 200)?;
                let source = &st.draw.beacon_source;
                let n = number(&draw_id, 'd').expect("found");
                if st.draw.drawn_ms.is_some() {
                    return Err(RoomError::FailedPrecondition(format!(
                        "lucky draw {draw_id} is already drawn"
                    )));
                }
                if st.draw.closed_ms.is_none() {
                    if !beacon.is_empty() {
                        return Err(RoomError::FailedPrecondition(if source.is_empty() {
                            format!(
                                "lucky draw {draw_id} declared no beacon source when it opened; \
                                 a beacon chosen now could pick the winners, so it is refused"
                            )
                        } else {
                            format!(
                                "close entry of lucky draw {draw_id} first (without a beacon): \
                                 its entrants hash must be public before the beacon from \
                                 {source:?} is known"
                            )
                        }));
                    }
                    let r = self.end_entry(n, now, out);
                    return Ok(HostReply::Draw(Box::new(r)));
                }
                if beacon.is_empty() {
                    return Err(invalid(format!(
                        "lucky draw {draw_id} is closed and waits for its beacon from {source:?}"
                    )));
                }
                let r = self.draw_winners(n, beacon, now, out);
                Ok(HostReply::Draw(Box::new(r)))
            }
            CommerceCommand::GetDrawRecord { draw_id } => {
                let st = self.draw_state(&draw_id)?;
                Ok(HostReply::Draw(Box::new(self.draw_record(st))))
            }
            CommerceCommand::ListDraws => Ok(HostReply::Draws(
                self.commerce
                    .draws
                    .values()
                    .map(|st| self.draw_record(st))
                    .collect(),
            )),
            CommerceCommand::DropRedPacket {
                total_cents,
                count,
                tiers,
                message,
                duration_seconds,
            } => self
                .drop_red_packet(
                    total_cents,
                    count,
                    tiers,
                    message,
                    duration_seconds,
                    now,
                    out,
                )
                .map(|p| HostReply::RedPacket(Box::new(p))),
            CommerceCommand::GetRedPacket { packet_id } => {
                let st = self.packet_state(&packet_id)?;
                Ok(HostReply::RedPacket(Box::new(self.red_packet_reply(st))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn red_packet_split_sums_exactly_and_every_share_is_at_least_a_cent() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (total, count) in [
            (1, 1),
            (5, 5),
            (100, 3),
            (10_000, 100),
            (99_999, 7),
            (10_000, 10_000),
        ] {
            for _ in 0..50 {
                let a = split_red_packet(total, count, &mut rng);
                assert_eq!(a.len(), count as usize);
                assert_eq!(a.iter().sum::<i64>(), total, "{total} / {count}");
                assert!(a.iter().all(|x| *x >= 1), "{a:?}");
            }
        }
    }

    #[test]
    fn red_packet_split_is_fair_on_average_for_every_position() {
        // The double-mean method gives every position the same expected amount.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (total, count, rounds) = (10_000i64, 5u32, 20_000);
        let mut sums = vec![0i64; count as usize];
        for _ in 0..rounds {
            for (i, a) in split_red_packet(total, count, &mut rng).iter().enumerate() {
                sums[i] += a;
            }
        }
        let mean = total as f64 / count as f64;
        for s in sums {
            let avg = s as f64 / rounds as f64;
            assert!((avg - mean).abs() < mean * 0.05, "average {avg} vs {mean}");
        }
    }
}
