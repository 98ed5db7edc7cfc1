//! Reports as CSV for a CRM or a spreadsheet: leads, orders, products, segments, referrals.
//! One header row, then one row per record; money in cents, times in Unix milliseconds. Text a
//! viewer typed that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) is
//! prefixed with `'`.

use super::{leads, referral_tree, room_report, ReferralNode, ReportClock, ShowLog};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Leads,
    Orders,
    Products,
    Segments,
    Referrals,
}

impl ExportKind {
    pub const ALL: [ExportKind; 5] = [
        ExportKind::Leads,
        ExportKind::Orders,
        ExportKind::Products,
        ExportKind::Segments,
        ExportKind::Referrals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Leads => "leads",
            ExportKind::Orders => "orders",
            ExportKind::Products => "products",
            ExportKind::Segments => "segments",
            ExportKind::Referrals => "referrals",
        }
    }

    pub fn parse(s: &str) -> Option<ExportKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A text cell a spreadsheet will not evaluate.
fn text(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

struct Table(csv::Writer<Vec<u8>>);

impl Table {
    fn new(header: &[&str]) -> Table {
        let mut t = Table(csv::Writer::from_writer(Vec::new()));
        t.row(header.iter().map(|h| h.to_string()).collect());
        t
    }

    fn row(&mut self, cells: Vec<String>) {
        // Writing to memory cannot fail.
        self.0.write_record(&cells).expect("CSV into memory");
    }

    fn finish(self) -> String {
        let bytes = self.0.into_inner().expect("CSV into memory");
        String::from_utf8(bytes).expect("CSV of UTF-8 cells")
    }
}

/// `kind` of the room's show at `clock.now_ms`, as CSV.
pub fn export_csv(log: &ShowLog, clock: ReportClock, kind: ExportKind) -> String {
    match kind {
        ExportKind::Leads => leads_csv(log, clock),
        ExportKind::Orders => orders_csv(log),
        ExportKind::Products => products_csv(log, clock),
        ExportKind::Segments => segments_csv(log, clock),
        ExportKind::Referrals => referrals_csv(log, clock),
    }
}

fn leads_csv(log: &ShowLog, clock: ReportClock) -> String {
    let mut t = Table::new(&[
        "viewer_id",
        "name",
        "company",
        "phone",
        "dealer_tier",
        "stage",
        "score",
        "watch_ms",
        "orders",
        "order_value_cents",
        "brand_interest",
        "breakdown",
    ]);
    for l in leads(log, clock).leads {
        let breakdown: Vec<String> = l
            .breakdown
            .iter()
            .map(|a| format!("{}:{}:{}", a.activity, a.count, a.points))
            .collect();
        t.row(vec![
            l.viewer_id,
            text(&l.name),
            text(&l.company),
            l.phone,
            l.dealer_tier.unwrap_or_default(),
            l.stage.as_str().to_string(),
            l.score.to_string(),
            l.watch_ms.to_string(),
            l.orders.to_string(),
            l.order_value_cents.to_string(),
            l.brand_interest.join(" "),
            breakdown.join(" "),
        ]);
    }
    t.finish()
}

fn orders_csv(log: &ShowLog) -> String {
    let mut t = Table::new(&[
        "order_id",
        "viewer_id",
        "display_name",
        "tier",
        "brand_id",
        "product_id",
        "product_name",
        "quantity",
        "unit_price_cents",
        "total_cents",
        "currency",
        "status",
        "sale_id",
        "inviter_id",
        "created_ms",
        "updated_ms",
    ]);
    for o in &log.orders {
        t.row(vec![
            o.id.clone(),
            o.viewer_id.clone(),
            text(&o.display_name),
            o.tier.clone(),
            o.brand_id.clone(),
            o.product_id.clone(),
            text(&o.product_name),
            o.quantity.to_string(),
            o.unit_price_cents.to_string(),
            o.total_cents.to_string(),
            o.currency.clone(),
            o.status.as_str().to_string(),
            o.sale_id.clone().unwrap_or_default(),
            o.inviter_id.clone().unwrap_or_default(),
            o.created_ms.to_string(),
            o.updated_ms.to_string(),
        ]);
    }
    t.finish()
}

fn products_csv(log: &ShowLog, clock: ReportClock) -> String {
    let mut t = Table::new(&[
        "product_id",
        "brand_id",
        "name",
        "views",
        "clicks",
        "orders",
        "quantity",
        "value_cents",
    ]);
    for p in room_report(log, clock).products {
        t.row(vec![
            p.product_id,
            p.brand_id,
            text(&p.name),
            p.views.to_string(),
            p.clicks.to_string(),
            p.orders.to_string(),
            p.quantity.to_string(),
            p.value_cents.to_string(),
        ]);
    }
    t.finish()
}

fn segments_csv(log: &ShowLog, clock: ReportClock) -> String {
    let mut t = Table::new(&[
        "brand_id",
        "brand_name",
        "start_ms",
        "end_ms",
        "viewers",
        "watch_ms",
        "product_views",
        "product_clicks",
        "orders",
        "quantity",
        "value_cents",
        "buyers",
        "conversion",
    ]);
    for s in room_report(log, clock).segments {
        t.row(vec![
            s.brand_id,
            text(&s.brand_name),
            s.start_ms.to_string(),
            s.end_ms.to_string(),
            s.viewers.to_string(),
            s.watch_ms.to_string(),
            s.product_views.to_string(),
            s.product_clicks.to_string(),
            s.orders.to_string(),
            s.quantity.to_string(),
            s.value_cents.to_string(),
            s.buyers.to_string(),
            format!("{:.4}", s.conversion),
        ]);
    }
    t.finish()
}

fn referrals_csv(log: &ShowLog, clock: ReportClock) -> String {
    let mut t = Table::new(&[
        "viewer_id",
        "name",
        "company",
        "channel",
        "invited_by",
        "depth",
        "own_orders",
        "own_value_cents",
        "direct_invitees",
        "direct_orders",
        "direct_value_cents",
        "subtree_size",
        "subtree_orders",
        "subtree_value_cents",
    ]);
    // Depth first, each person after their inviter; no recursion (chains may be long).
    let tree = referral_tree(log, clock);
    let mut stack: Vec<(&ReferralNode, &str)> = tree.roots.iter().rev().map(|r| (r, "")).collect();
    while let Some((n, parent)) = stack.pop() {
        t.row(vec![
            n.viewer_id.clone(),
            text(&n.name),
            text(&n.company),
            n.channel.clone().unwrap_or_default(),
            parent.to_string(),
            n.depth.to_string(),
            n.own_orders.to_string(),
            n.own_value_cents.to_string(),
            n.direct_invitees.to_string(),
            n.direct_orders.to_string(),
            n.direct_value_cents.to_string(),
            n.subtree_size.to_string(),
            n.subtree_orders.to_string(),
            n.subtree_value_cents.to_string(),
        ]);
        stack.extend(n.children.iter().rev().map(|c| (c, n.viewer_id.as_str())));
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::scripted_show;

    const CLOCK: ReportClock = ReportClock {
        now_ms: 40 * 60_000,
        heartbeat_ms: 30_000,
    };

    fn lines(kind: ExportKind) -> Vec<String> {
        export_csv(&scripted_show(), CLOCK, kind)
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn every_export_of_the_scripted_show() {
        let leads = lines(ExportKind::Leads);
        assert_eq!(leads.len(), 1 + 8);
        assert_eq!(
            leads[1],
            "v-bob,Bob,Bob Co,+861385,gold,hot,120,1380000,2,264000,b2 b1 b3,\
             registered:1:10 watch_minute:23:23 chat:1:2 product_view:6:12 product_click:3:15 \
             draw_entry:1:2 grab_attempt:2:6 order:2:50"
        );
        let segments = lines(ExportKind::Segments);
        assert_eq!(
            segments,
            [
                "brand_id,brand_name,start_ms,end_ms,viewers,watch_ms,product_views,product_clicks,\
                 orders,quantity,value_cents,buyers,conversion",
                "b1,Alpha,0,600000,4,1230000,5,2,1,10,259000,1,0.2500",
                "b2,Bravo,600000,1200000,4,1380000,7,3,3,8,297400,3,0.7500",
                "b3,Charlie,1200000,1800000,4,1020000,10,9,0,0,0,0,0.0000",
            ]
        );
        let products = lines(ExportKind::Products);
        assert_eq!(products[3], "p3,b3,Product p3,10,9,0,0,0");
        let orders = lines(ExportKind::Orders);
        assert_eq!(
            orders.len(),
            1 + 5,
            "cancelled orders are exported too, with their status"
        );
        assert!(orders[5].starts_with(
            "o5,v-cat,Dealer v-cat,gold,b3,p3,Product p1,2,10000,20000,EUR,cancelled,"
        ));
        let referrals = lines(ExportKind::Referrals);
        let people: Vec<(&str, &str)> = referrals[1..]
            .iter()
            .map(|l| {
                let mut cells = l.split(',');
                let id = cells.next().unwrap();
                (id, cells.nth(3).unwrap())
            })
            .collect();
        assert_eq!(
            people,
            [
                ("v-ann", ""),
                ("v-bob", "v-ann"),
                ("v-cat", "v-bob"),
                ("v-fay", "v-cat"),
                ("v-dan", "v-ann"),
                ("v-gus", "v-dan")
            ]
        );
    }

    #[test]
    fn text_a_spreadsheet_would_evaluate_is_quoted() {
        let mut log = scripted_show();
        log.registrations[0].name = "=HYPERLINK(\"http://x\")".into();
        log.registrations[0].company = "+cmd".into();
        let csv = export_csv(&log, CLOCK, ExportKind::Leads);
        let ann = csv.lines().find(|l| l.starts_with("v-ann,")).unwrap();
        assert!(
            ann.starts_with("v-ann,\"'=HYPERLINK(\"\"http://x\"\")\",'+cmd,"),
            "{ann}"
        );
    }
}
