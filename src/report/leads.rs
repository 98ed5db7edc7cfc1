//! Lead scores: points per activity with a cap per kind, halved for every half-life since the
//! activity, a stage by thresholds, the breakdown behind every score, companies rolled up,
//! and per brand the hot dealers who have not ordered (docs/reports.md).

use super::{watch, ReportClock, Show, ShowLog};
use crate::model::*;
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeadStage {
    Cold,
    Warm,
    Hot,
}

impl LeadStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStage::Cold => "cold",
            LeadStage::Warm => "warm",
            LeadStage::Hot => "hot",
        }
    }

    pub fn parse(s: &str) -> Option<LeadStage> {
        [LeadStage::Cold, LeadStage::Warm, LeadStage::Hot]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    fn of(score: f64, w: &LeadWeights) -> LeadStage {
        if score >= w.hot_at {
            LeadStage::Hot
        } else if score >= w.warm_at {
            LeadStage::Warm
        } else {
            LeadStage::Cold
        }
    }
}

/// One line of a score's breakdown.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPoints {
    pub activity: &'static str,
    /// How many times (minutes for watching).
    pub count: u64,
    /// Points after decay, before the cap.
    pub raw: f64,
    /// What counts: `raw` up to the activity's cap.
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub viewer_id: String,
    pub name: String,
    pub company: String,
    pub phone: String,
    pub dealer_tier: Option<String>,
    pub watch_ms: i64,
    pub orders: u32,
    pub order_value_cents: i64,
    pub score: f64,
    pub stage: LeadStage,
    /// Every activity with points, in the weights' order.
    pub breakdown: Vec<ActivityPoints>,
    /// Brands the viewer showed interest in, strongest first.
    pub brand_interest: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompanyLead {
    pub company: String,
    /// The sum of its people's scores.
    pub score: f64,
    pub stage: LeadStage,
    pub viewer_ids: Vec<String>,
    pub orders: u32,
    pub order_value_cents: i64,
}

/// Hot verified dealers with an interest in the brand who have not ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub brand_id: String,
    pub brand_name: String,
    pub viewer_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Leads {
    pub generated_ms: i64,
    pub weights: LeadWeights,
    /// Highest score first.
    pub leads: Vec<Lead>,
    pub companies: Vec<CompanyLead>,
    pub follow_ups: Vec<FollowUp>,
}

/// Rounds to cents of a point, so that sums read the same everywhere.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Everything each viewer did, as (time, how many) per activity.
#[derive(Default)]
struct Activity<'a> {
    registration: Option<&'a Registration>,
    events: [Vec<(i64, u64)>; 11],
    orders: u32,
    value: i64,
    /// Per brand: views, clicks, orders.
    brands: HashMap<&'a str, [u64; 3]>,
}

// Positions in `LeadWeights::activities`.
const REGISTERED: usize = 0;
const WATCH: usize = 1;
const CHAT: usize = 2;
const LIKE: usize = 3;
const VIEW: usize = 4;
const CLICK: usize = 5;
const DRAW: usize = 6;
const GRAB: usize = 7;
const PACKET: usize = 8;
const APPLICATION: usize = 9;
const ORDER: usize = 10;

/// Every viewer's lead at `clock.now_ms`, with companies and follow-ups.
pub fn leads(log: &ShowLog, clock: ReportClock) -> Leads {
    let show = Show::new(log, clock);
    let w = &log.weights;
    let mut acts: HashMap<&str, Activity<'_>> = HashMap::new();
    let product_brand: HashMap<&str, &str> = log
        .products
        .iter()
        .map(|p| (p.id.as_str(), p.brand_id.as_str()))
        .collect();
    for r in show.registrations() {
        let a = acts.entry(&r.viewer_id).or_default();
        a.registration = Some(r);
        a.events[REGISTERED].push((r.created_ms, 1));
    }
    for (viewer, spans) in &show.spans {
        let last = spans.last().map_or(show.end, |s| s.1);
        let minutes = (watch::total(spans) / 60_000) as u64;
        acts.entry(*viewer).or_default().events[WATCH].push((last, minutes));
    }
    for c in &log.chat {
        acts.entry(&c.viewer_id).or_default().events[CHAT].push((c.at_ms, 1));
    }
    for e in &log.engagement {
        let a = acts.entry(&e.viewer_id).or_default();
        let n = u64::from(e.count);
        let slot = match e.kind {
            EngagementKind::Like => LIKE,
            EngagementKind::ProductView => VIEW,
            EngagementKind::ProductClick => CLICK,
            EngagementKind::GrabAttempt => GRAB,
        };
        a.events[slot].push((e.at_ms, n));
        if let (Some(brand), Some(i)) = (
            product_brand.get(e.target.as_str()),
            [VIEW, CLICK].iter().position(|s| *s == slot),
        ) {
            a.brands.entry(*brand).or_default()[i] += n;
        }
    }
    for d in &log.draws {
        for v in &d.entrants {
            acts.entry(v).or_default().events[DRAW].push((d.opened_ms, 1));
        }
    }
    for p in &log.red_packets {
        for g in &p.grabs {
            acts.entry(&g.viewer_id).or_default().events[PACKET].push((p.created_ms, 1));
        }
    }
    for a in &log.applications {
        acts.entry(&a.viewer_id).or_default().events[APPLICATION].push((a.created_ms, 1));
    }
    for o in &show.orders {
        let a = acts.entry(&o.viewer_id).or_default();
        a.events[ORDER].push((o.created_ms, 1));
        a.orders += 1;
        a.value += o.total_cents;
        a.brands.entry(&o.brand_id).or_default()[2] += 1;
    }
    let dealers: HashMap<&str, &DealerRecord> = log
        .dealers
        .iter()
        .map(|d| (d.viewer_id.as_str(), d))
        .collect();
    let half_life_ms = i64::from(w.half_life_hours) * 3_600_000;
    let decay = |at: i64| {
        if half_life_ms == 0 {
            1.0
        } else {
            0.5f64.powi(((show.now - at).max(0) / half_life_ms).min(1000) as i32)
        }
    };
    let weights = w.activities();
    let names = display_names(log);
    let applied_company: HashMap<&str, &str> = log
        .applications
        .iter()
        .rev()
        .map(|a| (a.viewer_id.as_str(), a.company.as_str()))
        .collect();
    let mut out: Vec<Lead> = acts
        .into_iter()
        .map(|(viewer, a)| {
            let breakdown: Vec<ActivityPoints> = a
                .events
                .iter()
                .zip(weights)
                .filter(|(ev, _)| !ev.is_empty())
                .map(|(ev, (name, weight))| {
                    let raw: f64 = ev
                        .iter()
                        .map(|&(at, n)| n as f64 * weight.points * decay(at))
                        .sum();
                    ActivityPoints {
                        activity: name,
                        count: ev.iter().map(|e| e.1).sum(),
                        raw: round(raw),
                        points: round(raw.min(weight.cap)),
                    }
                })
                .filter(|p| p.count > 0)
                .collect();
            let score = round(breakdown.iter().map(|p| p.points).sum());
            let dealer = dealers.get(viewer).filter(|d| d.tier.is_some());
            let name = a
                .registration
                .map(|r| r.name.clone())
                .or_else(|| names.get(viewer).map(|n| n.to_string()))
                .unwrap_or_default();
            let company = a
                .registration
                .map(|r| r.company.clone())
                .filter(|c| !c.is_empty())
                .or_else(|| dealer.map(|d| d.company.clone()))
                .or_else(|| applied_company.get(viewer).map(|c| c.to_string()))
                .unwrap_or_default();
            Lead {
                viewer_id: viewer.to_string(),
                name,
                company,
                phone: a.registration.map(|r| r.phone.clone()).unwrap_or_default(),
                dealer_tier: dealer.and_then(|d| d.tier.clone()),
                watch_ms: show.watch_ms(viewer),
                orders: a.orders,
                order_value_cents: a.value,
                score,
                stage: LeadStage::of(score, w),
                breakdown,
                brand_interest: brand_interest(&show, viewer, &a.brands, w),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.viewer_id.cmp(&b.viewer_id))
    });
    Leads {
        generated_ms: clock.now_ms,
        weights: w.clone(),
        companies: companies(&out, w),
        follow_ups: follow_ups(&show, &out),
        leads: out,
    }
}

/// The name the room saw first for each viewer, for those without a registration: an
/// application's, else an order's, else a chat message's.
fn display_names(log: &ShowLog) -> HashMap<&str, &str> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let seen = log
        .applications
        .iter()
        .map(|a| (a.viewer_id.as_str(), a.display_name.as_str()))
        .chain(
            log.orders
                .iter()
                .map(|o| (o.viewer_id.as_str(), o.display_name.as_str())),
        )
        .chain(
            log.chat
                .iter()
                .map(|c| (c.viewer_id.as_str(), c.display_name.as_str())),
        );
    for (viewer, name) in seen {
        names.entry(viewer).or_insert(name);
    }
    names
}

/// Brands by interest: product views, clicks and orders of the brand's products and whole
/// minutes watched while it was on air, each at its activity's points (no cap, no decay).
fn brand_interest(
    show: &Show<'_>,
    viewer: &str,
    products: &HashMap<&str, [u64; 3]>,
    w: &LeadWeights,
) -> Vec<String> {
    let mut interest: Vec<(f64, usize, String)> = Vec::new();
    for (pos, b) in show.log.brands.iter().enumerate() {
        let minutes = show.spans.get(viewer).map_or(0, |spans| {
            show.segments
                .iter()
                .filter(|s| s.brand_id == b.id)
                .map(|s| watch::overlap(spans, s.start, s.end))
                .sum::<i64>()
                / 60_000
        });
        let [views, clicks, orders] = products.get(b.id.as_str()).copied().unwrap_or_default();
        let points = views as f64 * w.product_view.points
            + clicks as f64 * w.product_click.points
            + orders as f64 * w.order.points
            + minutes as f64 * w.watch_minute.points;
        if points > 0.0 {
            interest.push((points, pos, b.id.clone()));
        }
    }
    interest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    interest.into_iter().map(|(_, _, id)| id).collect()
}

/// People of one company (same name but for case and surrounding spaces) summed.
fn companies(leads: &[Lead], w: &LeadWeights) -> Vec<CompanyLead> {
    let mut by_key: BTreeMap<String, CompanyLead> = BTreeMap::new();
    for l in leads {
        let key = l.company.trim().to_lowercase();
        if key.is_empty() {
            continue;
        }
        let c = by_key.entry(key).or_insert_with(|| CompanyLead {
            company: l.company.trim().to_string(),
            score: 0.0,
            stage: LeadStage::Cold,
            viewer_ids: Vec::new(),
            orders: 0,
            order_value_cents: 0,
        });
        c.score = round(c.score + l.score);
        c.viewer_ids.push(l.viewer_id.clone());
        c.orders += l.orders;
        c.order_value_cents += l.order_value_cents;
    }
    let mut out: Vec<CompanyLead> = by_key
        .into_values()
        .map(|mut c| {
            c.stage = LeadStage::of(c.score, w);
            c
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.company.cmp(&b.company))
    });
    out
}

fn follow_ups(show: &Show<'_>, leads: &[Lead]) -> Vec<FollowUp> {
    show.log
        .brands
        .iter()
        .map(|b| FollowUp {
            brand_id: b.id.clone(),
            brand_name: b.name.clone(),
            viewer_ids: leads
                .iter()
                .filter(|l| {
                    l.stage == LeadStage::Hot
                        && l.dealer_tier.is_some()
                        && l.orders == 0
                        && l.brand_interest.contains(&b.id)
                })
                .map(|l| l.viewer_id.clone())
                .collect(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeadSort {
    #[default]
    Score,
    WatchTime,
    OrderValue,
    Name,
}

/// Which leads `ListLeads` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadQuery {
    pub min_score: Option<f64>,
    pub stage: Option<LeadStage>,
    /// Part of the company's name, any case.
    pub company: Option<String>,
    /// Only viewers interested in this brand.
    pub brand_id: Option<String>,
    pub sort: LeadSort,
    pub limit: Option<u32>,
}

/// The leads `q` selects, in its order (ties by viewer id).
pub fn filter_leads(leads: &[Lead], q: &LeadQuery) -> Vec<Lead> {
    let company = q.company.as_ref().map(|c| c.trim().to_lowercase());
    let mut out: Vec<Lead> = leads
        .iter()
        .filter(|l| q.min_score.is_none_or(|m| l.score >= m))
        .filter(|l| q.stage.is_none_or(|s| l.stage == s))
        .filter(|l| {
            company
                .as_ref()
                .is_none_or(|c| l.company.to_lowercase().contains(c.as_str()))
        })
        .filter(|l| {
            q.brand_id
                .as_ref()
                .is_none_or(|b| l.brand_interest.contains(b))
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        match q.sort {
            LeadSort::Score => b.score.total_cmp(&a.score),
            LeadSort::WatchTime => b.watch_ms.cmp(&a.watch_ms),
            LeadSort::OrderValue => b.order_value_cents.cmp(&a.order_value_cents),
            LeadSort::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        }
        .then_with(|| a.viewer_id.cmp(&b.viewer_id))
    });
    if let Some(n) = q.limit.filter(|n| *n > 0) {
        out.truncate(n as usize);
    }
    out
}

/// Viewers who are hot verified dealers, for the host's "turned hot" notice.
pub fn hot_dealers(leads: &Leads) -> Vec<&Lead> {
    leads
        .leads
        .iter()
        .filter(|l| l.stage == LeadStage::Hot && l.dealer_tier.is_some())
        .collect()
}
