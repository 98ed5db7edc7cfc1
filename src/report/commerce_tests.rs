//! The report's flash sales, draws and red packets on the scripted show of `tests.rs`.

use super::tests::scripted_show;
use super::*;
use crate::store::conformance::fixtures;

fn m(x: f64) -> i64 {
    (x * 60_000.0) as i64
}

#[test]
fn flash_sale_forensics_draws_and_red_packets() {
    let mut log = scripted_show();
    // s1: 2 units from minute 13 to 20; bob and gus each won one (o2, o4); ivy tried three
    // times and missed.
    let mut sale = fixtures::sale("s1", 2);
    sale.product_id = "p2".into();
    sale.brand_id = "b2".into();
    sale.remaining = 0;
    sale.start_ms = m(13.0);
    sale.end_ms = m(20.0);
    log.sales.push(sale);
    // A sale nobody tried, that ran to its end.
    let mut quiet = fixtures::sale("s2", 5);
    quiet.product_id = "p3".into();
    quiet.start_ms = m(21.0);
    quiet.end_ms = m(25.0);
    quiet.ended_ms = Some(m(24.0));
    log.sales.push(quiet);
    log.engagement.push(EngagementRecord {
        viewer_id: "v-ivy".into(),
        kind: EngagementKind::GrabAttempt,
        target: "s1".into(),
        count: 3,
        at_ms: m(18.0),
    });
    let clock = ReportClock {
        now_ms: m(45.0),
        heartbeat_ms: 15_000,
    };
    let report = room_report(&log, clock);

    let s1 = &report.flash_sales[0];
    assert_eq!(
        (s1.sale_id.as_str(), s1.product_name.as_str()),
        ("s1", "Product p2")
    );
    assert_eq!((s1.stock, s1.sold), (2, 2));
    assert_eq!((s1.attempts, s1.attempters), (6, 3));
    assert_eq!(s1.sold_out_ms, Some(m(18.0) + 5_000));
    assert_eq!(
        s1.end_ms,
        m(18.0) + 5_000,
        "it ended when the last unit went"
    );
    assert_eq!(s1.revenue_cents, 10_000);
    let winners: Vec<(&str, u32)> = s1
        .winners
        .iter()
        .map(|w| (w.person.viewer_id.as_str(), w.units))
        .collect();
    assert_eq!(winners, [("v-bob", 1), ("v-gus", 1)]);
    assert_eq!(s1.winners[0].person.company, "Bob Co");
    let missed: Vec<(&str, u32)> = s1
        .missed
        .iter()
        .map(|x| (x.person.viewer_id.as_str(), x.attempts))
        .collect();
    assert_eq!(missed, [("v-ivy", 3)]);
    assert_eq!(s1.missed[0].person.company, "Ivy Co");

    let s2 = &report.flash_sales[1];
    assert_eq!((s2.sold, s2.attempts, s2.attempters), (0, 0, 0));
    assert_eq!((s2.sold_out_ms, s2.end_ms), (None, m(24.0)));
    assert!(s2.winners.is_empty() && s2.missed.is_empty());

    let d1 = &report.draws[0];
    assert_eq!((d1.draw_id.as_str(), d1.entrants), ("d1", 2));
    assert_eq!(d1.opened_ms, m(7.0));

    let rp = &report.red_packets[0];
    assert_eq!((rp.grabbed, rp.grabbed_cents, rp.count), (2, 300, 2));
    let grabs: Vec<(&str, i64)> = rp
        .grabs
        .iter()
        .map(|(p, a)| (p.viewer_id.as_str(), *a))
        .collect();
    assert_eq!(grabs, [("v-cat", 200), ("v-ann", 100)]);
    assert_eq!(rp.grabs[0].0.company, "Cat Ltd");
}
