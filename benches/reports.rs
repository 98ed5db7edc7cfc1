//! Reports over a big show (issue 15): 10,000 viewers and 1,000,000 captured records
//! (audience log, engagement batches, chat), two hours, four brand segments, invitation
//! chains and orders. Issue 15 asks for a report in at most 1 s on this machine.
//!
//! `cargo bench --bench reports`

use criterion::{criterion_group, criterion_main, Criterion};
use showfloor::model::*;
use showfloor::report::{leads, referral_tree, room_report, ReportClock, ShowLog};
use showfloor::store::conformance::fixtures;
use std::time::Duration;

const VIEWERS: usize = 10_000;
const RECORDS: usize = 1_000_000;
const MIN: i64 = 60_000;
const SHOW_MS: i64 = 120 * MIN;

/// A deterministic generator (no dependency on the rand crate's algorithms across versions).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn show() -> ShowLog {
    let mut rng = Lcg(42);
    let v = |i: usize| format!("v{i}");
    let mut record = fixtures::room("big");
    record.opened_ms = Some(0);
    record.ended_ms = Some(SHOW_MS);
    let brands: Vec<Brand> = (0..4)
        .map(|i| Brand {
            id: format!("b{i}"),
            name: format!("Brand {i}"),
            logo_url: String::new(),
            position: i,
        })
        .collect();
    let products: Vec<Product> = (0..200)
        .map(|i| fixtures::product(&format!("p{i}"), &format!("b{}", i % 4)))
        .collect();
    let program = (0..4)
        .map(|i| ProgramRecord {
            brand_id: Some(format!("b{i}")),
            at_ms: i * SHOW_MS / 4,
        })
        .collect();
    // Audience: every viewer joins, some reconnect, heartbeats every minute; about 300k.
    let mut audience = Vec::new();
    let mut session = 0u64;
    for i in 0..VIEWERS {
        let visits = 1 + rng.next(2) as i64;
        for _ in 0..visits {
            session += 1;
            let start = rng.next(SHOW_MS as u64) as i64;
            let len = (rng.next(30) as i64 + 1) * MIN / visits;
            let rec = |kind, at_ms| AudienceRecord {
                viewer_id: v(i),
                session,
                kind,
                inviter_id: None,
                tier: None,
                at_ms,
            };
            audience.push(rec(AudienceKind::Join, start));
            let mut t = start + MIN;
            while t < start + len {
                audience.push(rec(AudienceKind::Heartbeat, t));
                t += MIN;
            }
            audience.push(rec(AudienceKind::Leave, start + len));
        }
    }
    audience.sort_by_key(|a| a.at_ms);
    let chats = (RECORDS - audience.len()) / 5;
    let engagement_rows = RECORDS - audience.len() - chats;
    let kinds = EngagementKind::ALL;
    let mut engagement: Vec<EngagementRecord> = (0..engagement_rows)
        .map(|_| {
            let kind = kinds[rng.next(4) as usize];
            EngagementRecord {
                viewer_id: v(rng.next(VIEWERS as u64) as usize),
                kind,
                target: match kind {
                    EngagementKind::Like => String::new(),
                    EngagementKind::GrabAttempt => "s1".into(),
                    _ => format!("p{}", rng.next(200)),
                },
                count: 1 + rng.next(3) as u32,
                at_ms: rng.next(SHOW_MS as u64) as i64,
            }
        })
        .collect();
    engagement.sort_by_key(|e| e.at_ms);
    let chat = (0..chats)
        .map(|i| ChatRecord {
            id: format!("m{i}"),
            seq: i as u64,
            viewer_id: v(rng.next(VIEWERS as u64) as usize),
            display_name: String::new(),
            text: "hello".into(),
            at_ms: rng.next(SHOW_MS as u64) as i64,
            is_dealer: false,
        })
        .collect();
    // 6,000 registrations: everyone after the first 300 invited by an earlier one.
    let registrations = (0..6_000)
        .map(|i| Registration {
            id: format!("g{i}"),
            viewer_id: v(i),
            name: format!("Name {i}"),
            company: format!("Company {}", i % 2_000),
            phone: format!("+8613800{i:06}"),
            status: RegistrationStatus::Approved,
            source: RegistrationSource::Form,
            invite_code: format!("c{i}"),
            secret: Secret::new("s"),
            inviter_id: (i >= 300).then(|| v(rng.next(i as u64) as usize)),
            channel: Some(format!("ch{}", i % 5)),
            created_ms: -MIN,
            decided_ms: None,
            erased_ms: None,
        })
        .collect();
    let channels = (0..5)
        .map(|i| Channel {
            code: format!("ch{i}"),
            name: format!("Channel {i}"),
            created_ms: 0,
        })
        .collect();
    let dealers = (0..2_000)
        .map(|i| DealerRecord {
            viewer_id: v(i * 5),
            tier: Some("gold".into()),
            company: format!("Company {i}"),
            updated_ms: 0,
        })
        .collect();
    let orders = (0..5_000)
        .map(|i| {
            let mut o = fixtures::order(
                &format!("o{i}"),
                &v(rng.next(2_000) as usize * 5),
                &format!("k{i}"),
                None,
                rng.next(SHOW_MS as u64) as i64,
            );
            let p = rng.next(200);
            o.product_id = format!("p{p}");
            o.brand_id = format!("b{}", p % 4);
            o
        })
        .collect();
    ShowLog {
        record,
        brands,
        products,
        dealers,
        applications: Vec::new(),
        orders,
        // The sale the grab attempts are for: its forensics scan every record.
        sales: vec![{
            let mut s = fixtures::sale("s1", 500);
            s.product_id = "p0".into();
            s
        }],
        draws: Vec::new(),
        red_packets: Vec::new(),
        registrations,
        channels,
        audience,
        program,
        engagement,
        chat,
        weights: LeadWeights::default(),
    }
}

fn reports(c: &mut Criterion) {
    let log = show();
    let records = log.audience.len() + log.engagement.len() + log.chat.len();
    assert_eq!(records, RECORDS);
    let clock = ReportClock {
        now_ms: SHOW_MS + MIN,
        heartbeat_ms: MIN,
    };
    assert_eq!(room_report(&log, clock).unique_viewers as usize, VIEWERS);
    let mut g = c.benchmark_group("report_10k_viewers_1m_records");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("room_report", |b| b.iter(|| room_report(&log, clock)));
    g.bench_function("leads", |b| b.iter(|| leads(&log, clock)));
    g.bench_function("referral_tree", |b| b.iter(|| referral_tree(&log, clock)));
    g.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
