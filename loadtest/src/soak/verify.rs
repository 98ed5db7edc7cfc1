//! The soak's end: what the store holds after the last kill, read back through the control
//! plane, and the checks of the run against it.

use super::host::HostReport;
use super::members::MemberReport;
use super::sampler::{self, Sample};
use super::whep::MediaLife;
use super::Soak;
use crate::{Control, Report};
use showfloor::pb;
use std::collections::{BTreeMap, HashMap};

/// Orders per ListOrders page (its maximum).
const PAGE: u32 = 1000;
/// A life's file descriptors and tasks may move this much (plus a share of where they were)
/// from its settled sample to its last without counting as growth: viewers leave and come
/// back all the time.
const FDS_SLACK: i64 = 32;
const TASKS_SLACK: i64 = 64;
const SLACK_PERCENT: i64 = 5;
/// Lives shorter than this after settling are not judged for growth.
const JUDGE_SPAN_S: f64 = 60.0;

/// The room's orders and sales as the restarted server has them.
pub(super) struct Stored {
    pub orders: HashMap<String, pb::Order>,
    pub total_count: u32,
    pub sales: Vec<pb::FlashSale>,
}

pub(super) async fn read_back(c: &mut Control, room: &str) -> anyhow::Result<Stored> {
    let mut orders = HashMap::new();
    let mut before = String::new();
    let mut total_count;
    loop {
        let page = c
            .client
            .list_orders(c.req(pb::ListOrdersRequest {
                room_id: room.to_string(),
                limit: PAGE,
                before_order_id: before.clone(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        total_count = page.total_count;
        let n = page.orders.len();
        if let Some(last) = page.orders.last() {
            before = last.id.clone();
        }
        for o in page.orders {
            orders.insert(o.id.clone(), o);
        }
        if n < PAGE as usize {
            break;
        }
    }
    let sales = c
        .client
        .list_flash_sales(c.req(pb::RoomRef {
            room_id: room.to_string(),
        }))
        .await?
        .into_inner()
        .sales;
    Ok(Stored {
        orders,
        total_count,
        sales,
    })
}

/// Everything the run gathered.
pub(super) struct Run<'a> {
    pub o: &'a Soak,
    /// µs from each kill to the server being ready again.
    pub kills: &'a [u64],
    /// Dealer requests in flight (sent, not answered) at the kills, all together.
    pub in_flight_at_kills: usize,
    /// When each life was ready (µs on the run's clock).
    pub ready_at: &'a [u64],
    pub members: &'a [MemberReport],
    pub host: &'a HostReport,
    pub media: &'a [MediaLife],
    pub samples: &'a [Sample],
    pub stored: &'a Stored,
}

impl Run<'_> {
    pub(super) fn report(&self) -> Report {
        let mut r = Report::new("soak");
        let o = self.o;
        let lives = self.ready_at.len();
        r.number("seconds", o.duration.as_secs());
        r.number("kills", self.kills.len());
        r.number(
            "restart_ms",
            self.kills.iter().map(|us| us / 1000).collect::<Vec<_>>(),
        );
        r.number("viewers", o.viewers);
        r.number("dealers", o.dealers);
        r.number("whep_viewers", o.whep);
        let sum = |f: &dyn Fn(&MemberReport) -> u64| self.members.iter().map(f).sum::<u64>();
        r.number("events_received", sum(&|m| m.events));
        r.number("joins", sum(&|m| m.joins));
        r.number("resumed_in_life", sum(&|m| m.resumes));
        r.number("fresh_after_restart", sum(&|m| m.fresh_after_restart));
        r.number("brand_switches", self.host.switches);
        r.number("flash_sales", self.stored.sales.len());
        r.number("host_calls_failed", self.host.failed_calls);
        self.orders(&mut r);
        self.audience(&mut r, lives);
        self.media_checks(&mut r, lives);
        self.resources(&mut r);
        r
    }

    /// Acknowledged orders kept, no oversell, every request answered.
    fn orders(&self, r: &mut Report) {
        let dealers: Vec<_> = self
            .members
            .iter()
            .filter_map(|m| m.dealer.as_ref())
            .collect();
        let acks: Vec<_> = dealers.iter().flat_map(|d| &d.acks).collect();
        let wins = acks.iter().filter(|a| a.sale_id.is_some()).count();
        let lost: Vec<&str> = acks
            .iter()
            .filter(|a| {
                self.stored.orders.get(&a.order_id).is_none_or(|s| {
                    s.idempotency_key != a.key
                        || a.sale_id.as_ref().is_some_and(|x| *x != s.sale_id)
                })
            })
            .map(|a| a.order_id.as_str())
            .collect();
        r.number("orders_acked", acks.len() - wins);
        r.number("wins_acked", wins);
        r.number("orders_in_store", self.stored.total_count);
        r.number(
            "requests_resent",
            dealers.iter().map(|d| d.resent).sum::<u64>(),
        );
        r.number("requests_in_flight_at_kills", self.in_flight_at_kills);
        let mut results = BTreeMap::<&str, u64>::new();
        let mut refused = BTreeMap::<&str, u64>::new();
        for d in &dealers {
            for (k, v) in &d.grab_results {
                *results.entry(k).or_default() += v;
            }
            for (k, v) in &d.refused {
                *refused.entry(k).or_default() += v;
            }
        }
        r.number("grab_results", serde_json::json!(results));
        r.number("refused", serde_json::json!(refused));
        // What the run asked for must have happened, or the check proves nothing: orders if
        // dealers were to order, wins if there were sales to grab.
        let exercised = self.o.dealers == 0
            || ((self.o.orders_per_s == 0.0 || acks.len() > wins)
                && (self.stored.sales.is_empty() || wins > 0));
        r.check(
            "acked orders kept",
            lost.is_empty() && exercised,
            format!(
                "{} of {} acknowledged orders and wins ({wins} wins) in the store after the last \
                 kill -9{}",
                acks.len() - lost.len(),
                acks.len(),
                if exercised {
                    String::new()
                } else {
                    "; too few to prove anything".into()
                }
            ) + &lost
                .first()
                .map(|id| format!("; missing e.g. {id}"))
                .unwrap_or_default(),
        );
        // Per sale: the store's own count, the grants, the stock, one win per dealer.
        let mut per_dealer = HashMap::<(&str, &str), u32>::new();
        let mut per_sale = HashMap::<&str, u32>::new();
        for o in self
            .stored
            .orders
            .values()
            .filter(|o| !o.sale_id.is_empty())
        {
            *per_dealer
                .entry((o.sale_id.as_str(), o.viewer_id.as_str()))
                .or_default() += 1;
            *per_sale.entry(&o.sale_id).or_default() += 1;
        }
        let bad_sales: Vec<String> = self
            .stored
            .sales
            .iter()
            .filter(|s| {
                let orders = per_sale.get(s.id.as_str()).copied().unwrap_or(0);
                s.granted > s.stock || s.granted + s.remaining != s.stock || orders != s.granted
            })
            .map(|s| {
                format!(
                    "{}: stock {} granted {} remaining {}",
                    s.id, s.stock, s.granted, s.remaining
                )
            })
            .collect();
        let over_limit = per_dealer.values().filter(|n| **n > 1).count();
        let granted: u32 = self.stored.sales.iter().map(|s| s.granted).sum();
        r.check(
            "no oversell",
            bad_sales.is_empty() && over_limit == 0,
            format!(
                "{} sales, {granted} units granted, none above its stock or its orders; {over_limit} \
                 dealers above the limit of 1{}",
                self.stored.sales.len(),
                bad_sales.first().map(|b| format!("; wrong: {b}")).unwrap_or_default()
            ),
        );
        // A request sent again after a kill, with its key, must not have been taken twice.
        let mut keys = HashMap::<(&str, &str), u32>::new();
        for o in self.stored.orders.values() {
            *keys
                .entry((o.viewer_id.as_str(), o.idempotency_key.as_str()))
                .or_default() += 1;
        }
        let twice: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
        r.check(
            "no key taken twice",
            twice.is_empty(),
            format!(
                "{} orders in the store, {} keys (dealer, key) with more than one order{}",
                self.stored.orders.len(),
                twice.len(),
                twice
                    .first()
                    .map(|((d, k), n)| format!("; e.g. {d} {k}: {n} orders"))
                    .unwrap_or_default()
            ),
        );
        let unanswered: u64 = dealers.iter().map(|d| d.unanswered).sum();
        let bad: u64 = dealers.iter().map(|d| d.bad_answers).sum();
        r.check(
            "every request answered",
            unanswered == 0 && bad == 0,
            format!("{unanswered} requests unanswered for 20 s; {bad} answers for the wrong key"),
        );
    }

    /// Gaps, resumes, and everyone back after every restart.
    fn audience(&self, r: &mut Report, lives: usize) {
        let sum = |f: &dyn Fn(&MemberReport) -> u64| self.members.iter().map(f).sum::<u64>();
        let (gaps, missing) = (sum(&|m| m.gaps), sum(&|m| m.missing));
        r.check(
            "no gap within a life",
            gaps == 0 && sum(&|m| m.events) > 0,
            format!(
                "{missing} events missing in {gaps} gaps across {} viewers",
                self.members.len()
            ),
        );
        let (lost, across) = (sum(&|m| m.lost_resumes), sum(&|m| m.resumed_across_epochs));
        let wanted = self.o.leaves_per_min > 0.0 && self.o.duration.as_secs() >= 60;
        r.check(
            "resumed within a life",
            lost == 0 && across == 0 && (!wanted || sum(&|m| m.resumes) > 0),
            format!(
                "{} resumes with the missed events; {lost} got a fresh welcome in the same epoch; \
                 {across} resumed across a restart",
                sum(&|m| m.resumes)
            ),
        );
        // Each life's epoch is the one first seen after it was ready.
        let mut first_seen = BTreeMap::<&str, u64>::new();
        for m in self.members {
            for (e, at) in &m.epochs {
                let t = first_seen.entry(e).or_insert(*at);
                *t = (*t).min(*at);
            }
        }
        let mut epochs: Vec<(&str, u64)> = first_seen.into_iter().collect();
        epochs.sort_by_key(|(_, at)| *at);
        let absent: usize = self
            .members
            .iter()
            .map(|m| {
                epochs
                    .iter()
                    .filter(|(e, _)| !m.epochs.iter().any(|(x, _)| x.as_str() == *e))
                    .count()
            })
            .sum();
        let mut back_ms = Vec::new();
        for (k, (epoch, _)) in epochs.iter().enumerate() {
            let last = self
                .members
                .iter()
                .filter_map(|m| {
                    m.epochs
                        .iter()
                        .find(|(e, _)| e.as_str() == *epoch)
                        .map(|(_, at)| *at)
                })
                .max()
                .unwrap_or(0);
            let ready = self.ready_at.get(k).copied().unwrap_or(0);
            back_ms.push(last.saturating_sub(ready) / 1000);
        }
        let slowest = back_ms.iter().skip(1).copied().max().unwrap_or(0);
        r.number("back_after_restart_ms", serde_json::json!(back_ms));
        r.check(
            "every viewer back after every restart",
            epochs.len() == lives
                && absent == 0
                && slowest <= self.o.back_within.as_millis() as u64,
            format!(
                "{} epochs for {lives} lives; {absent} (viewer, life) pairs never welcomed; the \
                 last viewer back {slowest} ms after a restart (limit {} ms)",
                epochs.len(),
                self.o.back_within.as_millis()
            ),
        );
        let closes: Vec<&(u16, String)> = self.members.iter().flat_map(|m| &m.closes).collect();
        r.check(
            "no viewer closed by the server",
            closes.is_empty(),
            format!(
                "{} close frames{}",
                closes.len(),
                closes
                    .first()
                    .map(|(c, why)| format!(", e.g. {c} {why}"))
                    .unwrap_or_default()
            ),
        );
    }

    fn media_checks(&self, r: &mut Report, lives: usize) {
        if self.o.whep == 0 {
            return;
        }
        r.number(
            "media_lives",
            serde_json::to_value(self.media).unwrap_or_default(),
        );
        let bad: Vec<String> = self
            .media
            .iter()
            .filter(|m| {
                m.error.is_some()
                    || m.receiving < self.o.whep
                    || (m.flow_measured && m.flowing_at_end < self.o.whep)
            })
            .map(|m| {
                format!(
                    "life {}: {} of {} receiving, {} still at the end{}",
                    m.life,
                    m.receiving,
                    self.o.whep,
                    m.flowing_at_end,
                    m.error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        r.check(
            "WHEP viewers back after every restart",
            self.media.len() == lives && bad.is_empty(),
            format!(
                "{} lives with media of {lives}; {}",
                self.media.len(),
                bad.first()
                    .cloned()
                    .unwrap_or_else(|| "every viewer received video in each".into())
            ),
        );
    }

    /// Memory, descriptors and tasks per life; descriptors and tasks must stay flat.
    fn resources(&self, r: &mut Report) {
        let lives = sampler::summarise(self.samples, self.o.settle.as_secs_f64());
        r.number(
            "resources",
            serde_json::to_value(&lives).unwrap_or_default(),
        );
        let slack = |base: u64, fixed: i64| fixed + base as i64 * SLACK_PERCENT / 100;
        let judged: Vec<_> = lives
            .iter()
            .filter(|l| l.settled_span_s >= JUDGE_SPAN_S)
            .collect();
        let grew: Vec<String> = judged
            .iter()
            .filter_map(|l| {
                let fds = l.fds.growth > slack(l.fds.settled, FDS_SLACK);
                let tasks = l
                    .tasks
                    .as_ref()
                    .is_some_and(|t| t.growth > slack(t.settled, TASKS_SLACK));
                (fds || tasks).then(|| {
                    format!(
                        "life {}: fds {} → {}, tasks {:?} → {:?}",
                        l.life,
                        l.fds.settled,
                        l.fds.last,
                        l.tasks.as_ref().map(|t| t.settled),
                        l.tasks.as_ref().map(|t| t.last)
                    )
                })
            })
            .collect();
        let tasks_seen = self.samples.iter().any(|s| s.tasks.is_some());
        r.check(
            "descriptors and tasks flat",
            grew.is_empty() && tasks_seen,
            format!(
                "{} of {} lives long enough to judge ({} s settled); {}",
                judged.len(),
                lives.len(),
                JUDGE_SPAN_S,
                if !tasks_seen {
                    "no showfloor_tokio_alive_tasks in /metrics".to_string()
                } else {
                    grew.first().cloned().unwrap_or_else(|| "none grew".into())
                }
            ),
        );
    }
}
