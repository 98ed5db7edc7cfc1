//! `showfloor ctl report`, `leads`, `referrals` and `set-lead-weights`: requests and text.

use std::fmt::Write as _;

use tonic::Status;

use super::args::{ExportArg, LeadSortArg, StageArg};
use super::text::{fmt_ms, money};
use crate::pb::*;

pub(super) fn leads_request(
    room: String,
    min_score: Option<f64>,
    stage: Option<StageArg>,
    company: Option<String>,
    brand: Option<String>,
    sort: LeadSortArg,
    limit: Option<u32>,
) -> ListLeadsRequest {
    ListLeadsRequest {
        room_id: room,
        min_score: min_score.unwrap_or_default(),
        stage: stage.map_or(LeadStage::Unspecified, |s| match s {
            StageArg::Cold => LeadStage::Cold,
            StageArg::Warm => LeadStage::Warm,
            StageArg::Hot => LeadStage::Hot,
        }) as i32,
        company: company.unwrap_or_default(),
        brand_id: brand.unwrap_or_default(),
        sort: match sort {
            LeadSortArg::Score => LeadSort::Score,
            LeadSortArg::WatchTime => LeadSort::WatchTime,
            LeadSortArg::OrderValue => LeadSort::OrderValue,
            LeadSortArg::Name => LeadSort::Name,
        } as i32,
        limit: limit.unwrap_or_default(),
    }
}

pub(super) fn export_kind(kind: ExportArg) -> ExportKind {
    match kind {
        ExportArg::Leads => ExportKind::Leads,
        ExportArg::Orders => ExportKind::Orders,
        ExportArg::Products => ExportKind::Products,
        ExportArg::Segments => ExportKind::Segments,
        ExportArg::Referrals => ExportKind::Referrals,
    }
}

/// `ACTIVITY=POINTS:CAP` each.
pub(super) fn parse_weights(args: &[String]) -> Result<Vec<NamedActivityWeight>, Status> {
    args.iter()
        .map(|a| {
            let bad = || {
                Status::invalid_argument(format!(
                    "--weight {a:?}: expected ACTIVITY=POINTS:CAP, e.g. chat=2:20"
                ))
            };
            let (name, rest) = a.split_once('=').ok_or_else(bad)?;
            let (points, cap) = rest.split_once(':').ok_or_else(bad)?;
            Ok(NamedActivityWeight {
                activity: name.trim().to_string(),
                weight: Some(ActivityWeight {
                    points: points.trim().parse().map_err(|_| bad())?,
                    cap: cap.trim().parse().map_err(|_| bad())?,
                }),
            })
        })
        .collect()
}

fn minutes(ms: i64) -> String {
    format!("{:.1} min", ms as f64 / 60_000.0)
}

fn or_dash(v: &str) -> &str {
    if v.is_empty() {
        "-"
    } else {
        v
    }
}

pub(super) fn report_text(s: &mut String, r: &RoomReport) {
    let cur = &r.currency;
    let _ = writeln!(
        s,
        "room {}  {} .. {}",
        r.room_id,
        fmt_ms(r.start_ms),
        fmt_ms(r.end_ms)
    );
    let _ = writeln!(
        s,
        "registered {}  unique viewers {}  peak concurrency {}  watch time {}",
        r.registered,
        r.unique_viewers,
        r.peak_concurrency,
        minutes(r.watch_ms_total)
    );
    let curve: Vec<String> = r
        .concurrency_per_minute
        .iter()
        .map(u32::to_string)
        .collect();
    let _ = writeln!(s, "concurrency per minute: {}", curve.join(" "));
    let _ = writeln!(s, "watch time:");
    for b in &r.watch_distribution {
        let hi = if b.max_ms == 0 {
            "+".to_string()
        } else {
            format!("-{}", b.max_ms / 60_000)
        };
        let _ = writeln!(
            s,
            "  {:>3}{:<4} min  {} viewers",
            b.min_ms / 60_000,
            hi,
            b.viewers
        );
    }
    let _ = writeln!(s, "segments:");
    for g in &r.segments {
        let _ = writeln!(
            s,
            "  {} ({})  {} .. {}  on air {}  viewers {}  watched {}  views {}  clicks {}  \
             orders {}  qty {}  {}  buyers {}  conversion {:.1}%",
            g.brand_name,
            g.brand_id,
            fmt_ms(g.start_ms),
            fmt_ms(g.end_ms),
            minutes(g.end_ms - g.start_ms),
            g.viewers,
            minutes(g.watch_ms),
            g.product_views,
            g.product_clicks,
            g.orders,
            g.quantity,
            money(g.value_cents, cur),
            g.buyers,
            g.conversion * 100.0
        );
    }
    let _ = writeln!(s, "products:");
    for p in &r.products {
        let _ = writeln!(
            s,
            "  {} \"{}\" ({})  views {}  clicks {}  orders {}  qty {}  {}",
            p.product_id,
            p.name,
            p.brand_id,
            p.views,
            p.clicks,
            p.orders,
            p.quantity,
            money(p.value_cents, cur)
        );
    }
    if let Some(f) = &r.funnel {
        let _ = writeln!(
            s,
            "funnel: registered {} -> watched {} -> applied {} -> verified dealers {} -> ordered {}",
            f.registered, f.watched, f.applied, f.verified_dealers, f.ordered
        );
    }
    let _ = writeln!(s, "channels:");
    for c in &r.channels {
        let _ = writeln!(
            s,
            "  {} \"{}\"  registrations {}  attended {}  orders {}  {}",
            c.code,
            c.name,
            c.registrations,
            c.attended,
            c.orders,
            money(c.value_cents, cur)
        );
    }
    commerce_text(s, r);
}

fn who(p: &Option<ReportPerson>) -> String {
    let Some(p) = p else { return "-".into() };
    match (p.name.is_empty(), p.company.is_empty()) {
        (true, true) => p.viewer_id.clone(),
        (false, true) => format!("{} \"{}\"", p.viewer_id, p.name),
        (_, false) => format!("{} \"{}\" ({})", p.viewer_id, p.name, p.company),
    }
}

/// Flash sales (with the dealers who missed), draws and red packets.
fn commerce_text(s: &mut String, r: &RoomReport) {
    let cur = &r.currency;
    if !r.flash_sales.is_empty() {
        let _ = writeln!(s, "flash sales:");
    }
    for f in &r.flash_sales {
        let sold_out = if f.sold_out_ms > 0 {
            format!(
                "sold out in {:.1} s",
                (f.sold_out_ms - f.start_ms) as f64 / 1000.0
            )
        } else {
            "did not sell out".to_string()
        };
        let _ = writeln!(
            s,
            "  {} {}  sold {}/{}  {} grabs by {} dealers  {}  {}",
            f.sale_id,
            f.product_name,
            f.sold,
            f.stock,
            f.attempts,
            f.attempters,
            sold_out,
            money(f.revenue_cents, cur)
        );
        for w in &f.winners {
            let _ = writeln!(s, "    won {}  {}", w.units, who(&w.person));
        }
        for m in &f.missed {
            let _ = writeln!(
                s,
                "    missed after {} grab(s)  {}",
                m.attempts,
                who(&m.person)
            );
        }
    }
    if !r.draws.is_empty() {
        let _ = writeln!(s, "draws:");
    }
    for d in &r.draws {
        let winners: Vec<String> = d.winners.iter().map(|w| who(&Some(w.clone()))).collect();
        let _ = writeln!(
            s,
            "  {} \"{}\"  {} entrants  winners: {}",
            d.draw_id,
            d.prize,
            d.entrants,
            if winners.is_empty() {
                "-".to_string()
            } else {
                winners.join(", ")
            }
        );
    }
    if !r.red_packets.is_empty() {
        let _ = writeln!(s, "red packets:");
    }
    for p in &r.red_packets {
        let _ = writeln!(
            s,
            "  {}  {} of {} grabbed  {} of {}",
            p.packet_id,
            p.grabbed,
            p.count,
            money(p.grabbed_cents, cur),
            money(p.total_cents, cur)
        );
    }
}

fn stage_name(stage: i32) -> &'static str {
    match LeadStage::try_from(stage) {
        Ok(LeadStage::Cold) => "cold",
        Ok(LeadStage::Warm) => "warm",
        Ok(LeadStage::Hot) => "hot",
        _ => "-",
    }
}

pub(super) fn leads_text(s: &mut String, r: &ListLeadsResponse) {
    if r.leads.is_empty() {
        let _ = writeln!(s, "no leads");
    }
    for l in &r.leads {
        let _ = writeln!(
            s,
            "{}  {:<4}  {}  \"{}\" ({})  {}  tier {}  watched {}  orders {} ({} cents)  interest {}",
            l.score,
            stage_name(l.stage),
            l.viewer_id,
            l.name,
            or_dash(&l.company),
            or_dash(&l.phone),
            or_dash(&l.dealer_tier),
            minutes(l.watch_ms),
            l.orders,
            l.order_value_cents,
            or_dash(&l.brand_interest.join(","))
        );
        let parts: Vec<String> = l
            .breakdown
            .iter()
            .map(|a| {
                if a.points < a.raw {
                    format!(
                        "{} x{} = {} (capped from {})",
                        a.activity, a.count, a.points, a.raw
                    )
                } else {
                    format!("{} x{} = {}", a.activity, a.count, a.points)
                }
            })
            .collect();
        let _ = writeln!(s, "    {}", parts.join("; "));
    }
    let _ = writeln!(s, "companies:");
    for c in &r.companies {
        let _ = writeln!(
            s,
            "  {}  {:<4}  \"{}\"  people {}  orders {} ({} cents)",
            c.score,
            stage_name(c.stage),
            c.company,
            c.viewer_ids.join(","),
            c.orders,
            c.order_value_cents
        );
    }
    let _ = writeln!(s, "follow up (hot dealers without orders):");
    for f in &r.follow_ups {
        let _ = writeln!(
            s,
            "  {} ({}): {}",
            f.brand_name,
            f.brand_id,
            or_dash(&f.viewer_ids.join(", "))
        );
    }
}

fn node_text(s: &mut String, n: &ReferralNode) {
    let _ = writeln!(
        s,
        "{}{} \"{}\" ({})  own {} orders {} cents  direct {} invitees {} orders {} cents  \
         subtree {} people {} orders {} cents",
        "  ".repeat(n.depth as usize),
        n.viewer_id,
        n.name,
        or_dash(&n.company),
        n.own_orders,
        n.own_value_cents,
        n.direct_invitees,
        n.direct_orders,
        n.direct_value_cents,
        n.subtree_size,
        n.subtree_orders,
        n.subtree_value_cents
    );
    for c in &n.children {
        node_text(s, c);
    }
}

pub(super) fn referrals_text(s: &mut String, t: &ReferralTree) {
    if t.roots.is_empty() {
        let _ = writeln!(s, "no referrals");
        return;
    }
    for r in &t.roots {
        node_text(s, r);
    }
    let _ = writeln!(s, "invite ranking:");
    for (i, r) in t.ranking.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {}. {} \"{}\"  invited {}  subtree {}  orders {} ({} cents)",
            i + 1,
            r.viewer_id,
            r.name,
            r.direct_invitees,
            r.subtree_size,
            r.subtree_orders,
            r.subtree_value_cents
        );
    }
}

pub(super) fn weights_text(s: &mut String, w: &LeadWeights) {
    let named = [
        ("registered", &w.registered),
        ("watch_minute", &w.watch_minute),
        ("chat", &w.chat),
        ("like", &w.like),
        ("product_view", &w.product_view),
        ("product_click", &w.product_click),
        ("draw_entry", &w.draw_entry),
        ("grab_attempt", &w.grab_attempt),
        ("red_packet", &w.red_packet),
        ("application", &w.application),
        ("order", &w.order),
    ];
    for (name, a) in named
        .into_iter()
        .filter_map(|(n, a)| a.as_ref().map(|a| (n, a)))
    {
        let _ = writeln!(s, "{name:<14} {} points, cap {}", a.points, a.cap);
    }
    let _ = writeln!(
        s,
        "half-life {} h  warm from {}  hot from {}",
        w.half_life_hours, w.warm_at, w.hot_at
    );
}
