//! The room's commerce glue: the commerce state it holds, its timers, undo after a failed write, host commands.
//!
//! Stock is decremented synchronously in the room's owner, and the acknowledgement of a win
//! leaves as `Output::SendDurable`, so the owner sends it only after the store has the win;
//! if the write fails, `Room::undo` takes the effect back (the owner task in `hub`).

use super::{Output, Room, Undo};
use crate::model::*;
use crate::room::commerce::flash_sale::SaleState;
use crate::room::commerce::lucky_draw::LuckyDraw;
use crate::room::commerce::number;
use crate::room::commerce::orders::OrderBook;
use crate::room::commerce::red_packet::RedPacketState;
use std::collections::{BTreeMap, BTreeSet};

/// Something commerce must do at a time: `tick` pops the agenda's entries that came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    SaleStart(u64),
    StockLeft(u64),
    SaleEnd(u64),
    DrawClose(u64),
    PacketExpiry(u64),
}

/// A flash sale and what viewers were last told of it.
pub(super) struct SaleEntry {
    pub(super) state: SaleState,
    /// The phase viewers were last told about.
    pub(super) announced: SalePhase,
    pub(super) stock_sent: u32,
    pub(super) stock_sent_ms: i64,
    /// When the next `stock_left` is scheduled, if one is.
    pub(super) stock_left_due: Option<i64>,
}

impl SaleEntry {
    pub(super) fn new(state: SaleState, now: i64) -> SaleEntry {
        SaleEntry {
            announced: state.phase(now),
            stock_sent: state.sale().remaining,
            stock_sent_ms: now,
            stock_left_due: None,
            state,
        }
    }
}

/// A red packet and whether its end (empty or expired) was announced.
pub(super) struct PacketEntry {
    pub(super) state: RedPacketState,
    pub(super) gone_announced: bool,
}

/// Commerce state of one room.
#[derive(Default)]
pub(super) struct Commerce {
    pub(super) orders: OrderBook,
    pub(super) sales: BTreeMap<u64, SaleEntry>,
    pub(super) draws: BTreeMap<u64, LuckyDraw>,
    pub(super) packets: BTreeMap<u64, PacketEntry>,
    pub(super) agenda: BTreeSet<(i64, Due)>,
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
            orders: OrderBook::restore(orders),
            ..Commerce::default()
        };
        let mut wins: BTreeMap<u64, Vec<(String, String, u64)>> = BTreeMap::new();
        for o in c.orders.orders() {
            if let Some(sale) = o.sale_id.as_deref().and_then(|s| number(s, 's')) {
                let order = number(&o.id, 'o').expect("the book keeps o{n} ids only");
                let win = (o.viewer_id.clone(), o.idempotency_key.clone(), order);
                wins.entry(sale).or_default().push(win);
            }
        }
        for sale in sales {
            let Some(n) = number(&sale.id, 's') else {
                tracing::warn!(sale = %sale.id, "flash sale with an unexpected id skipped");
                continue;
            };
            let state = SaleState::restore(sale, wins.remove(&n).unwrap_or_default());
            let entry = SaleEntry::new(state, now);
            let sale = entry.state.sale();
            if entry.announced == SalePhase::Scheduled {
                c.agenda.insert((sale.start_ms, Due::SaleStart(n)));
            }
            if entry.announced != SalePhase::Ended {
                c.agenda.insert((sale.end_ms, Due::SaleEnd(n)));
            }
            c.sales.insert(n, entry);
        }
        for d in draws {
            let Some(n) = number(&d.id, 'd') else {
                continue;
            };
            let id = d.id.clone();
            let Some(draw) = LuckyDraw::restore(d) else {
                tracing::error!(draw = %id, "draw with an unreadable seed skipped");
                continue;
            };
            if !draw.is_closed() {
                c.agenda.insert((draw.draw().closes_ms, Due::DrawClose(n)));
            }
            c.draws.insert(n, draw);
        }
        for p in packets {
            let Some(n) = number(&p.id, 'r') else {
                continue;
            };
            let state = RedPacketState::restore(p);
            let gone_announced = state.left() == 0 || state.expired(now);
            if !gone_announced {
                c.agenda
                    .insert((state.packet().expires_ms, Due::PacketExpiry(n)));
            }
            c.packets.insert(
                n,
                PacketEntry {
                    state,
                    gone_announced,
                },
            );
        }
        c
    }
}

/// The entry of `map` whose id is `{prefix}{n}`, or NOT_FOUND naming `what`.
pub(super) fn lookup<'a, T>(
    map: &'a BTreeMap<u64, T>,
    id: &str,
    prefix: char,
    what: &str,
    room: &str,
) -> Result<(u64, &'a T), RoomError> {
    number(id, prefix)
        .and_then(|n| map.get(&n).map(|t| (n, t)))
        .ok_or_else(|| RoomError::NotFound(format!("{what} {id} not found in room {room}")))
}

impl Room {
    pub(super) fn next_commerce_deadline(&self) -> Option<i64> {
        self.commerce.agenda.first().map(|(at, _)| *at)
    }

    /// Commerce work that came due: sales start and end, stock updates, draws close, red
    /// packets expire. Each handler checks the state again, so a stale entry does nothing.
    pub(super) fn commerce_tick(&mut self, now: i64, out: &mut Vec<Output>) {
        while let Some(&(at, due)) = self.commerce.agenda.first() {
            if at > now {
                break;
            }
            self.commerce.agenda.pop_first();
            match due {
                Due::SaleStart(n) => self.announce_sale_start(n, now, out),
                Due::StockLeft(n) => self.announce_stock_left(n, now, out),
                Due::SaleEnd(n) => self.end_sale(n, "time", now, out),
                Due::DrawClose(n) => {
                    if self.commerce.draws.get(&n).is_some_and(|d| !d.is_closed()) {
                        self.end_entry(n, now, out);
                    }
                }
                Due::PacketExpiry(n) => self.announce_packet_expired(n, now, out),
            }
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
            .filter(|(_, d)| !d.is_closed())
            .map(|(n, _)| *n)
            .collect();
        for n in open {
            self.end_entry(n, now, out);
        }
    }

    /// A write acknowledged after durability failed: take its effect back. Each undo finds
    /// its effect once; a repeated undo changes nothing.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Order { order_id } => {
                if let Some(n) = number(&order_id, 'o') {
                    self.commerce.orders.take_back(n);
                }
            }
            Undo::SaleGrant { sale_id, order_id } => self.undo_sale_grant(&sale_id, &order_id),
            Undo::RedPacketGrab {
                packet_id,
                viewer_id,
                index,
            } => {
                if let Some(p) =
                    number(&packet_id, 'r').and_then(|n| self.commerce.packets.get_mut(&n))
                {
                    p.state.give_back(&viewer_id, index);
                }
            }
        }
    }

    pub(super) fn commerce_command(
        &mut self,
        cmd: CommerceCommand,
        now: i64,
        out: &mut Vec<Output>,
    ) -> Result<HostReply, RoomError> {
        let room = self.record.id.clone();
        match cmd {
            CommerceCommand::ListOrders(f) => Ok(HostReply::Orders(self.commerce.orders.list(&f)?)),
            CommerceCommand::GetOrder { order_id } => match self.commerce.orders.by_id(&order_id) {
                Some(o) => Ok(HostReply::Order(Box::new(o.clone()))),
                None => Err(RoomError::NotFound(format!(
                    "order {order_id} not found in room {room}"
                ))),
            },
            CommerceCommand::UpdateOrderStatus {
                order_id,
                status,
                reason,
            } => self.update_order_status(&order_id, status, reason, now, out),
            CommerceCommand::CreateFlashSale {
                product_id,
                stock,
                per_dealer_limit,
                prices,
                start_ms,
                duration_seconds,
                tiers,
            } => self.create_flash_sale(
                product_id,
                stock,
                per_dealer_limit,
                prices,
                start_ms,
                duration_seconds,
                tiers,
                now,
                out,
            ),
            CommerceCommand::GetFlashSale { sale_id } => {
                let (_, s) = lookup(&self.commerce.sales, &sale_id, 's', "flash sale", &room)?;
                Ok(HostReply::Sale(s.state.sale().clone()))
            }
            CommerceCommand::ListFlashSales => Ok(HostReply::Sales(
                self.commerce
                    .sales
                    .values()
                    .map(|s| s.state.sale().clone())
                    .collect(),
            )),
            CommerceCommand::EndFlashSale { sale_id } => self.end_flash_sale(&sale_id, now, out),
            CommerceCommand::CreateDraw {
                prize,
                winners,
                eligibility,
                entry_seconds,
                beacon_source,
            } => self.create_draw(
                prize,
                winners,
                eligibility,
                entry_seconds,
                beacon_source,
                now,
                out,
            ),
            CommerceCommand::CloseDraw { draw_id, beacon } => {
                self.close_draw(&draw_id, beacon, now, out)
            }
            CommerceCommand::GetDrawRecord { draw_id } => {
                let (_, d) = lookup(&self.commerce.draws, &draw_id, 'd', "lucky draw", &room)?;
                Ok(HostReply::Draw(Box::new(d.record(&room))))
            }
            CommerceCommand::ListDraws => Ok(HostReply::Draws(
                self.commerce
                    .draws
                    .values()
                    .map(|d| d.record(&room))
                    .collect(),
            )),
            CommerceCommand::DropRedPacket {
                total_cents,
                count,
                tiers,
                message,
                duration_seconds,
            } => self.drop_red_packet(
                total_cents,
                count,
                tiers,
                message,
                duration_seconds,
                now,
                out,
            ),
            CommerceCommand::GetRedPacket { packet_id } => {
                let (_, p) = lookup(&self.commerce.packets, &packet_id, 'r', "red packet", &room)?;
                // The split is never shown before it is grabbed.
                Ok(HostReply::RedPacket(Box::new(p.state.without_split())))
            }
        }
    }
}
