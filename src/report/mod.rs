//! Reports of a show, computed from what the store keeps (docs/reports.md explains every
//! figure): the room report, lead scores and the referral tree. Pure functions of a
//! [`ShowLog`] and `now`: any node computes the same figures from the same store.

mod commerce;
#[cfg(test)]
mod commerce_tests;
mod export;
mod leads;
mod referrals;
mod watch;

#[cfg(test)]
mod tests;

pub use commerce::{DrawReport, FlashSaleReport, Person, RedPacketReport, SaleMiss, SaleWinner};
pub use export::{export_csv, ExportKind};
pub use leads::{
    filter_leads, hot_dealers, leads, ActivityPoints, CompanyLead, FollowUp, Lead, LeadQuery,
    LeadSort, LeadStage, Leads,
};
pub use referrals::{referral_tree, RankEntry, ReferralNode, ReferralTree};

use crate::model::*;
use foldhash::{HashMap, HashMapExt, HashSet};
use watch::{Segment, Spans, Window};

/// Everything a report reads about one room.
#[derive(Debug, Clone)]
pub struct ShowLog {
    pub record: RoomRecord,
    pub brands: Vec<Brand>,
    pub products: Vec<Product>,
    pub dealers: Vec<DealerRecord>,
    pub applications: Vec<DealerApplication>,
    pub orders: Vec<Order>,
    pub sales: Vec<FlashSale>,
    pub draws: Vec<Draw>,
    pub red_packets: Vec<RedPacket>,
    pub registrations: Vec<Registration>,
    pub channels: Vec<Channel>,
    /// Oldest first.
    pub audience: Vec<AudienceRecord>,
    /// Oldest first.
    pub program: Vec<ProgramRecord>,
    pub engagement: Vec<EngagementRecord>,
    pub chat: Vec<ChatRecord>,
    pub weights: LeadWeights,
}

impl ShowLog {
    /// A loaded room and the rest; `None` if the room has no record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        loaded: LoadedRoom,
        registrations: Vec<Registration>,
        channels: Vec<Channel>,
        audience: Vec<AudienceRecord>,
        program: Vec<ProgramRecord>,
        engagement: Vec<EngagementRecord>,
        chat: Vec<ChatRecord>,
        weights: LeadWeights,
    ) -> Option<ShowLog> {
        let mut brands = loaded.brands;
        brands.sort_by_key(|b| b.position);
        Some(ShowLog {
            record: loaded.record?,
            brands,
            products: loaded.products,
            dealers: loaded.dealers,
            applications: loaded.applications,
            orders: loaded.orders,
            sales: loaded.sales,
            draws: loaded.draws,
            red_packets: loaded.red_packets,
            registrations,
            channels,
            audience,
            program,
            engagement,
            chat,
            weights,
        })
    }
}

/// When the report is made and how sessions without a leave are read.
#[derive(Debug, Clone, Copy)]
pub struct ReportClock {
    pub now_ms: i64,
    /// The audience log's heartbeat interval: a session of a live room seen within three of
    /// them is taken as still watching.
    pub heartbeat_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoomReport {
    pub room_id: String,
    pub currency: String,
    pub generated_ms: i64,
    /// The show's interval: from opening (or the first join) to its end (or now).
    pub start_ms: i64,
    pub end_ms: i64,
    pub registered: u32,
    pub unique_viewers: u32,
    pub peak_concurrency: u32,
    /// The most viewers at once in each minute from `start_ms`.
    pub concurrency_per_minute: Vec<u32>,
    pub watch_ms_total: i64,
    pub watch_distribution: Vec<WatchBucket>,
    pub segments: Vec<SegmentReport>,
    pub products: Vec<ProductReport>,
    pub funnel: Funnel,
    pub channels: Vec<ChannelReport>,
    pub flash_sales: Vec<FlashSaleReport>,
    pub draws: Vec<DrawReport>,
    pub red_packets: Vec<RedPacketReport>,
}

/// Viewers whose watch time is in `[min_ms, max_ms)` (`max_ms` 0: no upper bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBucket {
    pub min_ms: i64,
    pub max_ms: i64,
    pub viewers: u32,
}

/// Watch-time buckets' lower bounds in minutes.
const BUCKETS_MIN: [i64; 6] = [0, 1, 5, 15, 30, 60];

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReport {
    pub brand_id: String,
    pub brand_name: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Distinct viewers who watched some of it.
    pub viewers: u32,
    pub watch_ms: i64,
    pub product_views: u64,
    pub product_clicks: u64,
    pub orders: u32,
    pub quantity: u64,
    pub value_cents: i64,
    /// Distinct viewers who ordered during it.
    pub buyers: u32,
    /// buyers / viewers (0 without viewers).
    pub conversion: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductReport {
    pub product_id: String,
    pub brand_id: String,
    pub name: String,
    pub views: u64,
    pub clicks: u64,
    pub orders: u32,
    pub quantity: u64,
    pub value_cents: i64,
}

/// Distinct viewers at each stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Funnel {
    pub registered: u32,
    pub watched: u32,
    pub applied: u32,
    pub verified_dealers: u32,
    pub ordered: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    pub code: String,
    pub name: String,
    pub registrations: u32,
    /// Of those, viewers who watched.
    pub attended: u32,
    pub orders: u32,
    pub value_cents: i64,
}

/// What every report shares: who watched when, the segments, the orders that count.
struct Show<'a> {
    log: &'a ShowLog,
    now: i64,
    start: i64,
    end: i64,
    spans: HashMap<&'a str, Spans>,
    segments: Vec<Segment>,
    /// Orders that were not cancelled.
    orders: Vec<&'a Order>,
}

impl<'a> Show<'a> {
    pub fn new(log: &'a ShowLog, clock: ReportClock) -> Show<'a> {
        let r = &log.record;
        let start = r
            .opened_ms
            .or_else(|| log.audience.iter().map(|a| a.at_ms).min())
            .unwrap_or(r.created_ms);
        let end = r.ended_ms.unwrap_or(clock.now_ms).max(start);
        let window = Window {
            start,
            end,
            live: r.ended_ms.is_none(),
            stale_ms: 3 * clock.heartbeat_ms.max(1),
        };
        Show {
            log,
            now: clock.now_ms,
            start,
            end,
            spans: watch::viewer_spans(&log.audience, window),
            segments: watch::segments(&log.program, r.brand_on_air.as_deref(), start, end),
            orders: log
                .orders
                .iter()
                .filter(|o| o.status != OrderStatus::Cancelled)
                .collect(),
        }
    }

    pub fn watch_ms(&self, viewer: &str) -> i64 {
        self.spans.get(viewer).map_or(0, watch::total)
    }

    pub fn brand_name(&self, id: &str) -> String {
        self.log
            .brands
            .iter()
            .find(|b| b.id == id)
            .map_or_else(String::new, |b| b.name.clone())
    }

    /// Registrations that were not rejected.
    pub fn registrations(&self) -> impl Iterator<Item = &'a Registration> {
        self.log
            .registrations
            .iter()
            .filter(|r| r.status != RegistrationStatus::Rejected)
    }
}

/// The room report at `clock.now_ms`.
pub fn room_report(log: &ShowLog, clock: ReportClock) -> RoomReport {
    let show = Show::new(log, clock);
    let watched: Vec<i64> = show.spans.values().map(watch::total).collect();
    let curve = watch::concurrency_curve(show.spans.values(), show.start, show.end);
    let watch_distribution = BUCKETS_MIN
        .iter()
        .enumerate()
        .map(|(i, &min)| {
            let (lo, hi) = (
                min * 60_000,
                BUCKETS_MIN.get(i + 1).map_or(0, |m| m * 60_000),
            );
            WatchBucket {
                min_ms: lo,
                max_ms: hi,
                viewers: watched
                    .iter()
                    .filter(|&&w| w >= lo && (hi == 0 || w < hi))
                    .count() as u32,
            }
        })
        .collect();
    let registered = show.registrations().count() as u32;
    let buyers: HashSet<&str> = show.orders.iter().map(|o| o.viewer_id.as_str()).collect();
    let funnel = Funnel {
        registered,
        watched: show.spans.len() as u32,
        applied: log
            .applications
            .iter()
            .map(|a| a.viewer_id.as_str())
            .collect::<HashSet<_>>()
            .len() as u32,
        verified_dealers: log.dealers.iter().filter(|d| d.tier.is_some()).count() as u32,
        ordered: buyers.len() as u32,
    };
    RoomReport {
        room_id: log.record.id.clone(),
        currency: log.record.currency.clone(),
        generated_ms: clock.now_ms,
        start_ms: show.start,
        end_ms: show.end,
        registered,
        unique_viewers: show.spans.len() as u32,
        peak_concurrency: curve.iter().copied().max().unwrap_or(0),
        concurrency_per_minute: curve,
        watch_ms_total: watched.iter().sum(),
        watch_distribution,
        segments: segment_reports(&show),
        products: product_reports(&show),
        funnel,
        channels: channel_reports(&show),
        flash_sales: commerce::flash_sale_reports(log),
        draws: commerce::draw_reports(log),
        red_packets: commerce::red_packet_reports(log),
    }
}

fn segment_reports(show: &Show<'_>) -> Vec<SegmentReport> {
    let log = show.log;
    show.segments
        .iter()
        .map(|seg| {
            let inside = |at: i64| at >= seg.start && at < seg.end;
            let (mut viewers, mut watch_ms) = (0u32, 0i64);
            for spans in show.spans.values() {
                let w = watch::overlap(spans, seg.start, seg.end);
                if w > 0 {
                    viewers += 1;
                    watch_ms += w;
                }
            }
            let count = |kind| {
                log.engagement
                    .iter()
                    .filter(|e| e.kind == kind && inside(e.at_ms))
                    .map(|e| u64::from(e.count))
                    .sum::<u64>()
            };
            let orders: Vec<&&Order> = show
                .orders
                .iter()
                .filter(|o| inside(o.created_ms))
                .collect();
            let buyers = orders
                .iter()
                .map(|o| o.viewer_id.as_str())
                .collect::<HashSet<_>>()
                .len() as u32;
            SegmentReport {
                brand_id: seg.brand_id.clone(),
                brand_name: show.brand_name(&seg.brand_id),
                start_ms: seg.start,
                end_ms: seg.end,
                viewers,
                watch_ms,
                product_views: count(EngagementKind::ProductView),
                product_clicks: count(EngagementKind::ProductClick),
                orders: orders.len() as u32,
                quantity: orders.iter().map(|o| u64::from(o.quantity)).sum(),
                value_cents: orders.iter().map(|o| o.total_cents).sum(),
                buyers,
                conversion: if viewers == 0 {
                    0.0
                } else {
                    f64::from(buyers) / f64::from(viewers)
                },
            }
        })
        .collect()
}

fn product_reports(show: &Show<'_>) -> Vec<ProductReport> {
    let mut by_id: HashMap<&str, ProductReport> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for p in &show.log.products {
        order.push(&p.id);
        by_id.insert(
            &p.id,
            ProductReport {
                product_id: p.id.clone(),
                brand_id: p.brand_id.clone(),
                name: p.name.clone(),
                views: 0,
                clicks: 0,
                orders: 0,
                quantity: 0,
                value_cents: 0,
            },
        );
    }
    for e in &show.log.engagement {
        let Some(p) = by_id.get_mut(e.target.as_str()) else {
            continue;
        };
        match e.kind {
            EngagementKind::ProductView => p.views += u64::from(e.count),
            EngagementKind::ProductClick => p.clicks += u64::from(e.count),
            _ => {}
        }
    }
    for o in &show.orders {
        // A product removed from the catalogue keeps its orders in the report.
        let p = by_id.entry(&o.product_id).or_insert_with(|| {
            order.push(&o.product_id);
            ProductReport {
                product_id: o.product_id.clone(),
                brand_id: o.brand_id.clone(),
                name: o.product_name.clone(),
                views: 0,
                clicks: 0,
                orders: 0,
                quantity: 0,
                value_cents: 0,
            }
        });
        p.orders += 1;
        p.quantity += u64::from(o.quantity);
        p.value_cents += o.total_cents;
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(id))
        .collect()
}

fn channel_reports(show: &Show<'_>) -> Vec<ChannelReport> {
    show.log
        .channels
        .iter()
        .map(|c| {
            let members: HashSet<&str> = show
                .registrations()
                .filter(|r| r.channel.as_deref() == Some(c.code.as_str()))
                .map(|r| r.viewer_id.as_str())
                .collect();
            let orders: Vec<&&Order> = show
                .orders
                .iter()
                .filter(|o| members.contains(o.viewer_id.as_str()))
                .collect();
            ChannelReport {
                code: c.code.clone(),
                name: c.name.clone(),
                registrations: members.len() as u32,
                attended: members
                    .iter()
                    .filter(|v| show.spans.contains_key(*v))
                    .count() as u32,
                orders: orders.len() as u32,
                value_cents: orders.iter().map(|o| o.total_cents).sum(),
            }
        })
        .collect()
}
