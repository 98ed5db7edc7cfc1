//! Room glue for flash sales: creating one, grabs and their answers, stock updates, the end.

use super::commerce::{lookup, Due, SaleEntry};
use super::validate::{invalid, one_price_per_tier, unknown_tier};
use super::{Output, Room, Undo};
use crate::model::*;
use crate::room::commerce::flash_sale::{GrabOutcome, Grabber, SaleState};
use crate::room::commerce::number;
use crate::room::commerce::orders::order_id;
use crate::room::event::{ClassView, RoomEvent, SaleView};
use foldhash::{HashSet, HashSetExt};

/// Flash sales a room may hold.
const MAX_SALES: usize = 1000;
/// How often `stock_left` may go out per sale.
const STOCK_LEFT_INTERVAL_MS: i64 = 250;

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

impl Room {
    /// The sales not yet ended, as `view` sees them (welcome snapshot).
    pub(super) fn sales_view<'v>(&'v self, view: ClassView<'v>, now: i64) -> Vec<SaleView<'v>> {
        self.commerce
            .sales
            .values()
            .map(|s| s.state.sale())
            .filter(|s| s.phase(now) != SalePhase::Ended)
            .map(|s| view.sale(s, self.product_name(&s.product_id), now))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_flash_sale(
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
    ) -> Result<HostReply, RoomError> {
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
                    return Err(unknown_tier(t, &self.record));
                }
                if !seen.insert(t) {
                    return Err(invalid(format!("tier {t} is listed twice")));
                }
            }
            tiers
        };
        for (t, _) in &prices {
            if !eligible.contains(t) {
                return Err(invalid(format!(
                    "price for tier {t:?}, which does not take part in this sale"
                )));
            }
        }
        let sale_prices = one_price_per_tier("sale price", &prices, &eligible)?;
        if self.commerce.sales.len() >= MAX_SALES {
            return Err(RoomError::FailedPrecondition(format!(
                "a room holds at most {MAX_SALES} flash sales"
            )));
        }
        let brand_id = product.brand_id.clone();
        let product_name = product.name.clone();
        let id = self.next_id("s");
        let n = number(&id, 's').expect("made here");
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
        } else {
            self.commerce
                .agenda
                .insert((sale.start_ms, Due::SaleStart(n)));
        }
        self.commerce.agenda.insert((sale.end_ms, Due::SaleEnd(n)));
        out.push(self.action("flash_sale_created", "", sale.id.clone(), now));
        self.commerce
            .sales
            .insert(n, SaleEntry::new(SaleState::new(sale.clone()), now));
        Ok(HostReply::Sale(sale))
    }

    pub(super) fn grab(
        &mut self,
        session: SessionId,
        sale_id: &str,
        key: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), ProtocolError> {
        let Some(n) = number(sale_id, 's').filter(|n| self.commerce.sales.contains_key(n)) else {
            return Err(ProtocolError::new(
                "unknown_sale",
                format!("flash sale {sale_id} is not in this room"),
            ));
        };
        let viewer_id = self.sessions[&session].viewer_id.clone();
        self.count_engagement(
            &viewer_id,
            EngagementKind::GrabAttempt,
            sale_id,
            1,
            now,
            out,
        );
        let tier = self.dealer_tier(session);
        let live = self.record.state == RoomState::Live;
        let s = &self.sessions[&session];
        let who = Grabber {
            dealer_id: &s.viewer_id,
            tier: tier.as_deref(),
        };
        let win_order = self.commerce.orders.next_number();
        let entry = self.commerce.sales.get_mut(&n).expect("checked");
        let answer = entry
            .state
            .grab(who, key, now, live, win_order)
            .map_err(|e| {
                ProtocolError::new(
                    "too_many_attempts",
                    format!("at most {} grab keys per viewer for this sale", e.max_keys),
                )
            })?;
        if let (GrabOutcome::Won { order }, false) = (answer.outcome, answer.repeated) {
            self.record_win(session, n, order, key, now, out);
        }
        let won = match answer.outcome {
            GrabOutcome::Won { order } => self.commerce.orders.get(order),
            _ => None,
        };
        let frame = self.private(
            "grab_result",
            GrabResultFrame {
                sale_id,
                key,
                result: answer.outcome.as_str(),
                order_id: won.map(|o| o.id.as_str()),
                price_cents: won.map(|o| o.unit_price_cents),
                currency: won.map(|o| o.currency.as_str()),
            },
        );
        let undo = match (answer.outcome, answer.repeated) {
            (GrabOutcome::Won { order }, false) => Some(Undo::SaleGrant {
                sale_id: sale_id.to_string(),
                order_id: order_id(order),
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

    /// A fresh win: its order, its write, and what the room is told.
    pub(super) fn record_win(
        &mut self,
        session: SessionId,
        n: u64,
        order_number: u64,
        key: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let tier = self.dealer_tier(session).unwrap_or_default();
        let s = &self.sessions[&session];
        let sale = self.commerce.sales[&n].state.sale();
        let unit = sale.price_for(&tier).unwrap_or_default();
        let order = Order {
            id: order_id(order_number),
            viewer_id: s.viewer_id.clone(),
            display_name: s.display_name.clone(),
            tier,
            brand_id: sale.brand_id.clone(),
            product_id: sale.product_id.clone(),
            product_name: self.product_name(&sale.product_id).to_string(),
            quantity: 1,
            unit_price_cents: unit,
            total_cents: unit,
            currency: self.record.currency.clone(),
            status: OrderStatus::Placed,
            status_reason: None,
            sale_id: Some(sale.id.clone()),
            inviter_id: s.inviter_id.clone(),
            idempotency_key: key.to_string(),
            created_ms: now,
            updated_ms: now,
        };
        let (sale_id, stock, sold_out) = (sale.id.clone(), sale.stock, sale.remaining == 0);
        out.push(Output::Persist(StoreOp::GrantSale {
            room: self.record.id.clone(),
            sale_id: sale_id.clone(),
            order: Box::new(order.clone()),
        }));
        if self.watched {
            out.push(Output::Watch(WatchEvent::Order(Box::new(order.clone()))));
        }
        self.commerce.orders.add(order_number, order);
        if sold_out {
            let entry = self.commerce.sales.get_mut(&n).expect("exists");
            entry.announced = SalePhase::SoldOut;
            entry.stock_sent = 0;
            self.broadcast(RoomEvent::SoldOut { sale_id, stock }, now, out);
        } else {
            self.stock_changed(n);
        }
    }

    /// Schedules a `stock_left` (at most one per sale every 250 ms) if none is pending.
    pub(super) fn stock_changed(&mut self, n: u64) {
        let Some(entry) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        if entry.stock_left_due.is_some() || entry.announced == SalePhase::Ended {
            return;
        }
        let due = entry.stock_sent_ms + STOCK_LEFT_INTERVAL_MS;
        entry.stock_left_due = Some(due);
        self.commerce.agenda.insert((due, Due::StockLeft(n)));
    }

    pub(super) fn undo_sale_grant(&mut self, sale_id: &str, order_id: &str) {
        let Some(o) = number(order_id, 'o').and_then(|n| self.commerce.orders.take_back(n)) else {
            return;
        };
        let Some(n) = number(sale_id, 's') else {
            return;
        };
        let Some(entry) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        if entry.state.undo_grant(&o.viewer_id, &o.idempotency_key) {
            if entry.announced == SalePhase::SoldOut {
                entry.announced = SalePhase::Live;
            }
            self.stock_changed(n);
        }
    }

    pub(super) fn announce_sale_start(&mut self, n: u64, now: i64, out: &mut Vec<Output>) {
        let Some(entry) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        let phase = entry.state.phase(now);
        if entry.announced != SalePhase::Scheduled
            || matches!(phase, SalePhase::Scheduled | SalePhase::Ended)
        {
            return;
        }
        entry.announced = phase;
        let sale = entry.state.sale().clone();
        let product_name = self.product_name(&sale.product_id).to_string();
        self.broadcast(RoomEvent::SaleStarted { sale, product_name }, now, out);
    }

    pub(super) fn announce_stock_left(&mut self, n: u64, now: i64, out: &mut Vec<Output>) {
        let Some(entry) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        entry.stock_left_due = None;
        let sale = entry.state.sale();
        if entry.announced == SalePhase::Ended
            || sale.phase(now) == SalePhase::Ended
            || sale.remaining == entry.stock_sent
        {
            return;
        }
        entry.stock_sent = sale.remaining;
        entry.stock_sent_ms = now;
        let event = RoomEvent::StockLeft {
            sale_id: sale.id.clone(),
            remaining: sale.remaining,
            stock: sale.stock,
        };
        self.broadcast(event, now, out);
    }

    /// The sale ends (`reason`: "time" or "host") and viewers are told, once.
    pub(super) fn end_sale(&mut self, n: u64, reason: &str, now: i64, out: &mut Vec<Output>) {
        let room = self.record.id.clone();
        let Some(entry) = self.commerce.sales.get_mut(&n) else {
            return;
        };
        if entry.announced == SalePhase::Ended {
            return;
        }
        entry.announced = SalePhase::Ended;
        if reason == "host" && entry.state.end(now) {
            out.push(Output::Persist(StoreOp::PutSale {
                room,
                sale: Box::new(entry.state.sale().clone()),
            }));
        }
        let sale = entry.state.sale();
        let agenda = &mut self.commerce.agenda;
        agenda.remove(&(sale.start_ms, Due::SaleStart(n)));
        agenda.remove(&(sale.end_ms, Due::SaleEnd(n)));
        if let Some(due) = entry.stock_left_due.take() {
            agenda.remove(&(due, Due::StockLeft(n)));
        }
        let event = RoomEvent::SaleEnded {
            sale_id: sale.id.clone(),
            sold: entry.state.granted(),
            stock: sale.stock,
            reason: reason.into(),
        };
        self.broadcast(event, now, out);
    }

    pub(super) fn end_flash_sale(
        &mut self,
        sale_id: &str,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let (n, entry) = lookup(
            &self.commerce.sales,
            sale_id,
            's',
            "flash sale",
            &self.record.id,
        )?;
        if entry.state.phase(now) == SalePhase::Ended {
            return Err(RoomError::FailedPrecondition(format!(
                "flash sale {sale_id} has already ended"
            )));
        }
        self.end_sale(n, "host", now, out);
        Ok(HostReply::Sale(
            self.commerce.sales[&n].state.sale().clone(),
        ))
    }
}
