//! The room report's interactive commerce: flash-sale forensics (attempts against stock, how
//! fast it sold out, who won, which dealers tried and missed), lucky draws and red packets.

use super::ShowLog;
use crate::model::{EngagementKind, OrderStatus};
use std::collections::BTreeMap;

/// Someone in a report: their viewer id, and the name and company the room knows them by
/// (their registration's, else their orders' and dealer record's; empty if none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub viewer_id: String,
    pub name: String,
    pub company: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleWinner {
    pub person: Person,
    /// Units won (one per granted grab).
    pub units: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleMiss {
    pub person: Person,
    /// Grabs they made.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashSaleReport {
    pub sale_id: String,
    pub product_id: String,
    pub product_name: String,
    pub brand_id: String,
    pub stock: u32,
    /// Units granted (cancelled wins included: the unit was taken).
    pub sold: u32,
    /// Grabs made, granted or not.
    pub attempts: u64,
    /// Distinct dealers who grabbed.
    pub attempters: u32,
    pub start_ms: i64,
    /// When it ended: the host's end, its end time, or (if sooner) the last unit.
    pub end_ms: i64,
    /// When the last unit went, if all did.
    pub sold_out_ms: Option<i64>,
    pub revenue_cents: i64,
    /// Most units first.
    pub winners: Vec<SaleWinner>,
    /// Dealers who grabbed and won nothing, most attempts first.
    pub missed: Vec<SaleMiss>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawReport {
    pub draw_id: String,
    pub prize: String,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
    pub drawn_ms: Option<i64>,
    pub entrants: u32,
    pub winners: Vec<Person>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPacketReport {
    pub packet_id: String,
    pub message: String,
    pub total_cents: i64,
    pub count: u32,
    pub grabbed: u32,
    pub grabbed_cents: i64,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// Largest amount first.
    pub grabs: Vec<(Person, i64)>,
}

/// Who `viewer` is, as far as the show's records say.
pub fn person(log: &ShowLog, viewer: &str) -> Person {
    let (mut name, mut company) = (String::new(), String::new());
    if let Some(r) = log.registrations.iter().find(|r| r.viewer_id == viewer) {
        (name, company) = (r.name.clone(), r.company.clone());
    }
    if name.is_empty() {
        if let Some(o) = log.orders.iter().find(|o| o.viewer_id == viewer) {
            name = o.display_name.clone();
        }
    }
    if company.is_empty() {
        if let Some(d) = log.dealers.iter().find(|d| d.viewer_id == viewer) {
            company = d.company.clone();
        }
    }
    Person {
        viewer_id: viewer.to_string(),
        name,
        company,
    }
}

pub fn flash_sale_reports(log: &ShowLog) -> Vec<FlashSaleReport> {
    log.sales
        .iter()
        .map(|sale| {
            let mut wins: BTreeMap<&str, u32> = BTreeMap::new();
            let (mut sold, mut revenue, mut last) = (0u32, 0i64, None::<i64>);
            for o in log
                .orders
                .iter()
                .filter(|o| o.sale_id.as_deref() == Some(&sale.id))
            {
                sold += 1;
                *wins.entry(&o.viewer_id).or_default() += 1;
                if o.status != OrderStatus::Cancelled {
                    revenue += o.total_cents;
                }
                last = Some(last.map_or(o.created_ms, |l: i64| l.max(o.created_ms)));
            }
            let mut tries: BTreeMap<&str, u32> = BTreeMap::new();
            for e in log
                .engagement
                .iter()
                .filter(|e| e.kind == EngagementKind::GrabAttempt && e.target == sale.id)
            {
                *tries.entry(&e.viewer_id).or_default() += e.count;
            }
            let sold_out_ms = if sold >= sale.stock { last } else { None };
            let planned_end = sale.ended_ms.map_or(sale.end_ms, |e| e.min(sale.end_ms));
            let mut winners: Vec<SaleWinner> = wins
                .iter()
                .map(|(v, &units)| SaleWinner {
                    person: person(log, v),
                    units,
                })
                .collect();
            winners.sort_by_key(|w| std::cmp::Reverse(w.units));
            let mut missed: Vec<SaleMiss> = tries
                .iter()
                .filter(|(v, _)| !wins.contains_key(*v))
                .map(|(v, &attempts)| SaleMiss {
                    person: person(log, v),
                    attempts,
                })
                .collect();
            missed.sort_by_key(|m| std::cmp::Reverse(m.attempts));
            FlashSaleReport {
                sale_id: sale.id.clone(),
                product_id: sale.product_id.clone(),
                product_name: log
                    .products
                    .iter()
                    .find(|p| p.id == sale.product_id)
                    .map(|p| p.name.clone())
                    .or_else(|| {
                        log.orders
                            .iter()
                            .find(|o| o.product_id == sale.product_id)
                            .map(|o| o.product_name.clone())
                    })
                    .unwrap_or_default(),
                brand_id: sale.brand_id.clone(),
                stock: sale.stock,
                sold,
                attempts: tries.values().map(|&n| u64::from(n)).sum(),
                attempters: tries.len().max(wins.len()) as u32,
                start_ms: sale.start_ms,
                end_ms: sold_out_ms.map_or(planned_end, |s| s.min(planned_end)),
                sold_out_ms,
                revenue_cents: revenue,
                winners,
                missed,
            }
        })
        .collect()
}

pub fn draw_reports(log: &ShowLog) -> Vec<DrawReport> {
    log.draws
        .iter()
        .map(|d| DrawReport {
            draw_id: d.id.clone(),
            prize: d.prize.clone(),
            opened_ms: d.opened_ms,
            closed_ms: d.closed_ms,
            drawn_ms: d.drawn_ms,
            entrants: d.entrants.len() as u32,
            winners: d.winners.iter().map(|w| person(log, w)).collect(),
        })
        .collect()
}

pub fn red_packet_reports(log: &ShowLog) -> Vec<RedPacketReport> {
    log.red_packets
        .iter()
        .map(|p| {
            let mut grabs: Vec<(Person, i64)> = p
                .grabs
                .iter()
                .map(|g| (person(log, &g.viewer_id), g.amount_cents))
                .collect();
            grabs.sort_by_key(|g| std::cmp::Reverse(g.1));
            RedPacketReport {
                packet_id: p.id.clone(),
                message: p.message.clone(),
                total_cents: p.total_cents,
                count: p.count,
                grabbed: p.grabs.len() as u32,
                grabbed_cents: p.grabs.iter().map(|g| g.amount_cents).sum(),
                created_ms: p.created_ms,
                expires_ms: p.expires_ms,
                grabs,
            }
        })
        .collect()
}
