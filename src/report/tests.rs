//! A scripted show with known times: registrations through invite links three levels deep
//! and two channels, joins and leaves (tabs, a reconnect, a crash), three brand segments,
//! chats, likes, product views and clicks, grabs and orders. Every figure of the report, the
//! lead scores and the referral tree is checked exactly.

use super::*;
use crate::model::AudienceKind::{Heartbeat, Join, Leave};
use crate::store::conformance::fixtures;

const MIN: i64 = 60_000;

fn m(x: f64) -> i64 {
    (x * MIN as f64) as i64
}

fn reg(
    viewer: &str,
    name: &str,
    company: &str,
    inviter: Option<&str>,
    ch: Option<&str>,
) -> Registration {
    Registration {
        id: format!("g-{viewer}"),
        viewer_id: viewer.into(),
        name: name.into(),
        company: company.into(),
        phone: format!("+86138{}", viewer.len()),
        status: RegistrationStatus::Approved,
        source: RegistrationSource::Form,
        invite_code: format!("inv-{viewer}"),
        secret: Secret::new("s"),
        inviter_id: inviter.map(String::from),
        channel: ch.map(String::from),
        created_ms: -m(60.0),
        decided_ms: None,
        erased_ms: None,
    }
}

fn aud(
    viewer: &str,
    session: u64,
    kind: AudienceKind,
    at_ms: i64,
    inviter: Option<&str>,
) -> AudienceRecord {
    AudienceRecord {
        viewer_id: viewer.into(),
        session,
        kind,
        inviter_id: inviter.map(String::from),
        tier: None,
        at_ms,
    }
}

fn eng(
    viewer: &str,
    kind: EngagementKind,
    target: &str,
    count: u32,
    at_ms: i64,
) -> EngagementRecord {
    EngagementRecord {
        viewer_id: viewer.into(),
        kind,
        target: target.into(),
        count,
        at_ms,
    }
}

#[allow(clippy::too_many_arguments)]
fn order(
    id: &str,
    viewer: &str,
    brand: &str,
    product: &str,
    qty: u32,
    unit: i64,
    at: i64,
    sale: Option<&str>,
    status: OrderStatus,
) -> Order {
    let mut o = fixtures::order(id, viewer, id, sale, at);
    o.brand_id = brand.into();
    o.product_id = product.into();
    o.quantity = qty;
    o.unit_price_cents = unit;
    o.total_cents = unit * i64::from(qty);
    o.status = status;
    o
}

fn chat(viewer: &str, at_ms: i64, n: usize) -> Vec<ChatRecord> {
    (0..n)
        .map(|i| ChatRecord {
            id: format!("{viewer}-{at_ms}-{i}"),
            seq: 0,
            viewer_id: viewer.into(),
            display_name: viewer.into(),
            text: "hi".into(),
            at_ms,
            is_dealer: false,
        })
        .collect()
}

fn dealer(viewer: &str, tier: &str, company: &str) -> DealerRecord {
    DealerRecord {
        viewer_id: viewer.into(),
        tier: Some(tier.into()),
        company: company.into(),
        updated_ms: 0,
    }
}

fn application(viewer: &str, company: &str, at: i64) -> DealerApplication {
    DealerApplication {
        id: format!("a-{viewer}"),
        viewer_id: viewer.into(),
        display_name: viewer.into(),
        company: company.into(),
        licence_number: "L".into(),
        contact: "c".into(),
        status: ApplicationStatus::Pending,
        tier: None,
        reason: None,
        created_ms: at,
        decided_ms: None,
    }
}

pub(crate) fn scripted_show() -> ShowLog {
    use EngagementKind::*;
    let mut record = fixtures::room("r1");
    record.currency = "CNY".into();
    record.opened_ms = Some(0);
    record.ended_ms = Some(m(30.0));
    record.state = RoomState::Ended;
    record.brand_on_air = Some("b3".into());
    let brand = |id: &str, name: &str, position| Brand {
        id: id.into(),
        name: name.into(),
        logo_url: String::new(),
        position,
    };
    let product = |id: &str, brand: &str| {
        let mut p = fixtures::product(id, brand);
        p.name = format!("Product {id}");
        p
    };
    let mut rejected = reg("v-eve", "Eve", "Eve GmbH", None, Some("c-news"));
    rejected.status = RegistrationStatus::Rejected;
    let mut pending = reg("v-fay", "Fay", "Fay SA", Some("v-cat"), None);
    pending.status = RegistrationStatus::Pending;
    let mut draw = fixtures::draw("d1", m(7.0), DrawEligibility::Everyone);
    draw.entrants = vec!["v-ann".into(), "v-bob".into()];
    let mut packet = fixtures::packet("rp1", vec![100, 200]);
    packet.created_ms = m(8.0);
    packet.grabs = vec![
        PacketGrab {
            viewer_id: "v-ann".into(),
            index: 0,
            amount_cents: 100,
        },
        PacketGrab {
            viewer_id: "v-cat".into(),
            index: 1,
            amount_cents: 200,
        },
    ];
    let mut audience = vec![
        aud("v-ann", 1, Join, 0, None),
        aud("v-ann", 2, Join, m(5.0), None),
        aud("v-ann", 2, Leave, m(8.0), None),
        aud("v-ann", 1, Leave, m(12.0), None),
        aud("v-bob", 3, Join, m(2.0), Some("v-ann")),
        aud("v-bob", 3, Leave, m(4.0), Some("v-ann")),
        aud("v-bob", 4, Join, m(4.0), Some("v-ann")),
        aud("v-bob", 4, Heartbeat, m(15.0), Some("v-ann")),
        aud("v-bob", 4, Leave, m(25.0), Some("v-ann")),
        aud("v-cat", 5, Join, m(9.0), None),
        aud("v-cat", 5, Leave, m(21.0), None),
        aud("v-dan", 6, Join, -m(3.0), None),
        aud("v-dan", 6, Leave, m(1.5), None),
        // gus's token names dan as inviter; his session is cut off (last heartbeat at 19).
        aud("v-gus", 7, Join, m(18.0), Some("v-dan")),
        aud("v-gus", 7, Heartbeat, m(19.0), Some("v-dan")),
        aud("v-hal", 8, Join, m(29.0), None),
        aud("v-hal", 8, Leave, m(31.0), None),
        aud("v-hal", 9, Join, m(40.0), None),
        aud("v-ivy", 10, Join, m(20.0), None),
        aud("v-ivy", 10, Leave, m(30.0), None),
    ];
    audience.sort_by_key(|a| a.at_ms);
    let mut chats = chat("v-ann", m(1.0), 1);
    chats.extend(chat("v-ann", m(2.0), 1));
    chats.extend(chat("v-ann", m(3.0), 1));
    chats.extend(chat("v-bob", m(6.0), 1));
    chats.extend(chat("v-ivy", m(22.0), 2));
    chats.extend(chat("v-hal", m(29.0), 12));
    ShowLog {
        record,
        brands: vec![
            brand("b1", "Alpha", 0),
            brand("b2", "Bravo", 1),
            brand("b3", "Charlie", 2),
        ],
        products: vec![
            product("p1", "b1"),
            product("p2", "b2"),
            product("p3", "b3"),
        ],
        dealers: vec![
            dealer("v-bob", "gold", "Bob Co"),
            dealer("v-cat", "silver", "Cat Ltd"),
            dealer("v-gus", "gold", "Gus Inc"),
            dealer("v-ivy", "gold", "Ivy Co"),
            DealerRecord {
                viewer_id: "v-ann".into(),
                tier: None,
                company: "Ann Trading".into(),
                updated_ms: 0,
            },
        ],
        applications: vec![
            application("v-dan", "Bob Co", m(5.0)),
            application("v-cat", "Cat Ltd", -m(10.0)),
        ],
        orders: vec![
            order(
                "o1",
                "v-bob",
                "b1",
                "p1",
                10,
                25_900,
                m(5.0),
                None,
                OrderStatus::Confirmed,
            ),
            order(
                "o2",
                "v-bob",
                "b2",
                "p2",
                1,
                5_000,
                m(14.0),
                Some("s1"),
                OrderStatus::Placed,
            ),
            order(
                "o3",
                "v-cat",
                "b2",
                "p2",
                6,
                47_900,
                m(16.0),
                None,
                OrderStatus::Placed,
            ),
            order(
                "o4",
                "v-gus",
                "b2",
                "p2",
                1,
                5_000,
                m(18.0) + 5_000,
                Some("s1"),
                OrderStatus::Placed,
            ),
            order(
                "o5",
                "v-cat",
                "b3",
                "p3",
                2,
                10_000,
                m(22.0),
                None,
                OrderStatus::Cancelled,
            ),
        ],
        sales: Vec::new(),
        draws: vec![draw],
        red_packets: vec![packet],
        registrations: vec![
            reg("v-ann", "Ann", "Ann Trading", None, Some("c-wx")),
            reg("v-bob", "Bob", "Bob Co", Some("v-ann"), Some("c-wx")),
            reg("v-cat", "Cat", "Cat Ltd", Some("v-bob"), None),
            reg("v-dan", "Dan", " bob co", Some("v-ann"), Some("c-news")),
            rejected,
            pending,
            reg("v-ivy", "Ivy", "Ivy Co", None, None),
        ],
        channels: vec![
            Channel {
                code: "c-wx".into(),
                name: "WeChat".into(),
                created_ms: 0,
            },
            Channel {
                code: "c-news".into(),
                name: "Newsletter".into(),
                created_ms: 0,
            },
        ],
        audience,
        program: vec![
            ProgramRecord {
                brand_id: Some("b1".into()),
                at_ms: -m(1.0),
            },
            ProgramRecord {
                brand_id: Some("b2".into()),
                at_ms: m(10.0),
            },
            ProgramRecord {
                brand_id: Some("b3".into()),
                at_ms: m(20.0),
            },
        ],
        engagement: vec![
            eng("v-ann", ProductView, "p1", 3, m(1.0)),
            eng("v-ann", Like, "", 10, m(2.0)),
            eng("v-bob", ProductView, "p1", 2, m(3.0)),
            eng("v-bob", ProductClick, "p1", 2, m(3.0)),
            eng("v-ann", ProductView, "p2", 1, m(11.0)),
            eng("v-bob", ProductClick, "p2", 1, m(12.0)),
            eng("v-bob", ProductView, "p2", 4, m(13.0)),
            eng("v-bob", GrabAttempt, "s1", 2, m(14.0)),
            eng("v-cat", ProductView, "p2", 2, m(15.0)),
            eng("v-cat", ProductClick, "p2", 1, m(15.0)),
            eng("v-gus", ProductClick, "p2", 1, m(18.0)),
            eng("v-gus", GrabAttempt, "s1", 1, m(18.0) + 5_000),
            eng("v-cat", ProductView, "p3", 1, m(20.0)),
            eng("v-ivy", ProductClick, "p3", 9, m(21.0)),
            eng("v-ivy", ProductView, "p3", 4, m(21.0)),
            eng("v-hal", ProductView, "p3", 5, m(29.0)),
        ],
        chat: chats,
        weights: LeadWeights::default(),
    }
}

const CLOCK: ReportClock = ReportClock {
    now_ms: 40 * MIN,
    heartbeat_ms: 30_000,
};

#[test]
fn the_room_report_has_every_figure_of_the_scripted_show() {
    let r = room_report(&scripted_show(), CLOCK);
    assert_eq!(
        (r.start_ms, r.end_ms, r.generated_ms),
        (0, m(30.0), m(40.0))
    );
    assert_eq!(
        r.registered, 6,
        "ann bob cat dan fay(pending) ivy; eve was rejected"
    );
    assert_eq!(r.unique_viewers, 7);
    assert_eq!(r.peak_concurrency, 3);
    assert_eq!(
        r.concurrency_per_minute,
        vec![
            2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 2, 2, 2, 2, 2, 2, 3, 2, 3, 2, 2, 2, 2, 1, 1, 1, 1,
            2
        ]
    );
    // ann 12 min (two tabs), bob 23 (a reconnect), cat 12, dan 1.5 (before the opening is
    // not counted), gus 1 (cut off), hal 1 (after the end is not counted), ivy 10.
    assert_eq!(
        r.watch_ms_total,
        m(12.0 + 23.0 + 12.0 + 1.5 + 1.0 + 1.0 + 10.0)
    );
    let buckets: Vec<(i64, i64, u32)> = r
        .watch_distribution
        .iter()
        .map(|b| (b.min_ms / MIN, b.max_ms / MIN, b.viewers))
        .collect();
    assert_eq!(
        buckets,
        vec![
            (0, 1, 0),
            (1, 5, 3),
            (5, 15, 3),
            (15, 30, 1),
            (30, 60, 0),
            (60, 0, 0)
        ]
    );

    let got: Vec<_> = r.segments.iter().map(segment).collect();
    assert_eq!(
        got,
        vec![
            (
                "b1",
                "Alpha",
                0,
                10,
                4,
                m(10.0 + 8.0 + 1.0 + 1.5),
                (5, 2),
                (1, 10, 259_000, 1)
            ),
            (
                "b2",
                "Bravo",
                10,
                20,
                4,
                m(2.0 + 10.0 + 10.0 + 1.0),
                (7, 3),
                (3, 8, 297_400, 3)
            ),
            (
                "b3",
                "Charlie",
                20,
                30,
                4,
                m(5.0 + 1.0 + 1.0 + 10.0),
                (10, 9),
                (0, 0, 0, 0)
            ),
        ]
    );
    let conversion: Vec<f64> = r.segments.iter().map(|s| s.conversion).collect();
    assert_eq!(conversion, vec![0.25, 0.75, 0.0]);

    let products: Vec<_> = r
        .products
        .iter()
        .map(|p| {
            (
                p.product_id.as_str(),
                p.brand_id.as_str(),
                p.views,
                p.clicks,
                p.orders,
                p.quantity,
                p.value_cents,
            )
        })
        .collect();
    assert_eq!(
        products,
        vec![
            ("p1", "b1", 5, 2, 1, 10, 259_000),
            ("p2", "b2", 7, 3, 3, 8, 297_400),
            ("p3", "b3", 10, 9, 0, 0, 0),
        ]
    );
    assert_eq!(
        r.funnel,
        Funnel {
            registered: 6,
            watched: 7,
            applied: 2,
            verified_dealers: 4,
            ordered: 3,
        }
    );
    let channels: Vec<_> = r
        .channels
        .iter()
        .map(|c| {
            (
                c.code.as_str(),
                c.name.as_str(),
                c.registrations,
                c.attended,
                c.orders,
                c.value_cents,
            )
        })
        .collect();
    assert_eq!(
        channels,
        vec![
            ("c-wx", "WeChat", 2, 2, 2, 264_000),
            ("c-news", "Newsletter", 1, 1, 0, 0)
        ]
    );
}

#[allow(clippy::type_complexity)]
fn segment(
    s: &SegmentReport,
) -> (
    &str,
    &str,
    i64,
    i64,
    u32,
    i64,
    (u64, u64),
    (u32, u64, i64, u32),
) {
    (
        s.brand_id.as_str(),
        s.brand_name.as_str(),
        s.start_ms / MIN,
        s.end_ms / MIN,
        s.viewers,
        s.watch_ms,
        (s.product_views, s.product_clicks),
        (s.orders, s.quantity, s.value_cents, s.buyers),
    )
}

fn breakdown(l: &Lead) -> Vec<(&'static str, u64, f64, f64)> {
    l.breakdown
        .iter()
        .map(|a| (a.activity, a.count, a.raw, a.points))
        .collect()
}

#[test]
fn lead_scores_stages_companies_and_follow_ups_of_the_scripted_show() {
    let l = leads(&scripted_show(), CLOCK);
    let scores: Vec<(&str, f64, LeadStage)> = l
        .leads
        .iter()
        .map(|x| (x.viewer_id.as_str(), x.score, x.stage))
        .collect();
    use LeadStage::*;
    assert_eq!(
        scores,
        vec![
            ("v-bob", 120.0, Hot),
            ("v-cat", 74.0, Hot),
            ("v-ivy", 72.0, Hot),
            ("v-ann", 44.0, Warm),
            ("v-gus", 34.0, Warm),
            ("v-hal", 31.0, Warm),
            ("v-dan", 26.0, Cold),
            ("v-fay", 10.0, Cold),
        ]
    );
    let by = |v: &str| l.leads.iter().find(|x| x.viewer_id == v).unwrap();
    assert_eq!(
        breakdown(by("v-bob")),
        vec![
            ("registered", 1, 10.0, 10.0),
            ("watch_minute", 23, 23.0, 23.0),
            ("chat", 1, 2.0, 2.0),
            ("product_view", 6, 12.0, 12.0),
            ("product_click", 3, 15.0, 15.0),
            ("draw_entry", 1, 2.0, 2.0),
            ("grab_attempt", 2, 6.0, 6.0),
            ("order", 2, 50.0, 50.0),
        ]
    );
    // Caps: ann's 10 likes count 5, hal's 12 chats 20, ivy's 9 clicks 40.
    assert_eq!(
        breakdown(by("v-ann")),
        vec![
            ("registered", 1, 10.0, 10.0),
            ("watch_minute", 12, 12.0, 12.0),
            ("chat", 3, 6.0, 6.0),
            ("like", 10, 10.0, 5.0),
            ("product_view", 4, 8.0, 8.0),
            ("draw_entry", 1, 2.0, 2.0),
            ("red_packet", 1, 1.0, 1.0),
        ]
    );
    assert_eq!(
        breakdown(by("v-hal")),
        vec![
            ("watch_minute", 1, 1.0, 1.0),
            ("chat", 12, 24.0, 20.0),
            ("product_view", 5, 10.0, 10.0)
        ]
    );
    assert_eq!(
        breakdown(by("v-ivy")),
        vec![
            ("registered", 1, 10.0, 10.0),
            ("watch_minute", 10, 10.0, 10.0),
            ("chat", 2, 4.0, 4.0),
            ("product_view", 4, 8.0, 8.0),
            ("product_click", 9, 45.0, 40.0),
        ]
    );
    // o5 was cancelled: cat has one order.
    let cat = by("v-cat");
    assert_eq!(
        (
            cat.orders,
            cat.order_value_cents,
            cat.dealer_tier.as_deref()
        ),
        (1, 287_400, Some("silver"))
    );
    assert_eq!(
        (by("v-gus").company.as_str(), by("v-gus").name.as_str()),
        ("Gus Inc", "Dealer v-gus")
    );
    assert_eq!(by("v-dan").phone, "+861385");
    let interest = |v: &str| by(v).brand_interest.clone();
    assert_eq!(interest("v-bob"), vec!["b2", "b1", "b3"]);
    assert_eq!(interest("v-cat"), vec!["b2", "b3", "b1"]);
    assert_eq!(interest("v-ann"), vec!["b1", "b2"]);
    assert_eq!(interest("v-gus"), vec!["b2"]);
    assert_eq!(interest("v-dan"), vec!["b1"]);
    assert!(interest("v-fay").is_empty());

    let companies: Vec<_> = l
        .companies
        .iter()
        .map(|c| {
            (
                c.company.as_str(),
                c.score,
                c.stage,
                c.viewer_ids.len(),
                c.orders,
                c.order_value_cents,
            )
        })
        .collect();
    assert_eq!(
        companies,
        vec![
            ("Bob Co", 146.0, Hot, 2, 2, 264_000),
            ("Cat Ltd", 74.0, Hot, 1, 1, 287_400),
            ("Ivy Co", 72.0, Hot, 1, 0, 0),
            ("Ann Trading", 44.0, Warm, 1, 0, 0),
            ("Gus Inc", 34.0, Warm, 1, 1, 5_000),
            ("Fay SA", 10.0, Cold, 1, 0, 0),
        ]
    );
    let follow: Vec<_> = l
        .follow_ups
        .iter()
        .map(|f| (f.brand_id.as_str(), f.viewer_ids.clone()))
        .collect();
    assert_eq!(
        follow,
        vec![
            ("b1", vec![]),
            ("b2", vec![]),
            ("b3", vec!["v-ivy".to_string()])
        ]
    );
    let hot: Vec<&str> = hot_dealers(&l)
        .iter()
        .map(|x| x.viewer_id.as_str())
        .collect();
    assert_eq!(hot, vec!["v-bob", "v-cat", "v-ivy"]);

    let ids = |q: LeadQuery| -> Vec<String> {
        filter_leads(&l.leads, &q)
            .into_iter()
            .map(|x| x.viewer_id)
            .collect()
    };
    assert_eq!(
        ids(LeadQuery {
            stage: Some(Hot),
            ..Default::default()
        }),
        ["v-bob", "v-cat", "v-ivy"]
    );
    assert_eq!(
        ids(LeadQuery {
            company: Some("BOB".into()),
            ..Default::default()
        }),
        ["v-bob", "v-dan"]
    );
    assert_eq!(
        ids(LeadQuery {
            brand_id: Some("b3".into()),
            ..Default::default()
        }),
        ["v-bob", "v-cat", "v-ivy", "v-hal"]
    );
    assert_eq!(
        ids(LeadQuery {
            sort: LeadSort::WatchTime,
            limit: Some(2),
            ..Default::default()
        }),
        ["v-bob", "v-ann"]
    );
    assert_eq!(
        ids(LeadQuery {
            min_score: Some(72.0),
            ..Default::default()
        }),
        ["v-bob", "v-cat", "v-ivy"]
    );
}

#[test]
fn points_halve_per_half_life_before_the_cap_applies() {
    // Two half-lives after everything: each activity counts a quarter.
    let clock = ReportClock {
        now_ms: m(40.0) + 2 * 168 * 3_600_000,
        heartbeat_ms: 30_000,
    };
    let l = leads(&scripted_show(), clock);
    let by = |v: &str| l.leads.iter().find(|x| x.viewer_id == v).unwrap();
    assert_eq!(by("v-bob").score, 30.0);
    assert_eq!(by("v-bob").stage, LeadStage::Warm);
    // 12 chats: 24 points decayed to 6, under the cap of 20.
    assert_eq!(
        breakdown(by("v-hal")),
        vec![
            ("watch_minute", 1, 0.25, 0.25),
            ("chat", 12, 6.0, 6.0),
            ("product_view", 5, 2.5, 2.5)
        ]
    );
    // The room's own weights: no decay, clicks worth 1 without cap, hot from 50.
    let mut log = scripted_show();
    log.weights.half_life_hours = 0;
    log.weights.product_click = ActivityWeight {
        points: 1.0,
        cap: 1000.0,
    };
    log.weights.hot_at = 50.0;
    let l = leads(&log, clock);
    let ivy = l.leads.iter().find(|x| x.viewer_id == "v-ivy").unwrap();
    assert_eq!(
        (ivy.score, ivy.stage),
        (10.0 + 10.0 + 4.0 + 8.0 + 9.0, LeadStage::Warm)
    );
}

#[test]
fn the_referral_tree_attributes_orders_directly_and_per_subtree() {
    let t = referral_tree(&scripted_show(), CLOCK);
    assert_eq!(t.roots.len(), 1);
    let ann = &t.roots[0];
    let figures = |n: &ReferralNode| {
        (
            n.viewer_id.clone(),
            n.depth,
            (n.own_orders, n.own_value_cents),
            (n.direct_invitees, n.direct_orders, n.direct_value_cents),
            (n.subtree_size, n.subtree_orders, n.subtree_value_cents),
        )
    };
    assert_eq!(
        figures(ann),
        ("v-ann".into(), 0, (0, 0), (2, 2, 264_000), (5, 4, 556_400))
    );
    let [bob, dan] = &ann.children[..] else {
        panic!("ann invited two: {:?}", ann.children)
    };
    assert_eq!(
        figures(bob),
        (
            "v-bob".into(),
            1,
            (2, 264_000),
            (1, 1, 287_400),
            (2, 1, 287_400)
        )
    );
    assert_eq!(
        figures(dan),
        ("v-dan".into(), 1, (0, 0), (1, 1, 5_000), (1, 1, 5_000))
    );
    let cat = &bob.children[0];
    assert_eq!(
        figures(cat),
        ("v-cat".into(), 2, (1, 287_400), (1, 0, 0), (1, 0, 0))
    );
    assert_eq!(
        figures(&cat.children[0]),
        ("v-fay".into(), 3, (0, 0), (0, 0, 0), (0, 0, 0))
    );
    // gus was invited by a token's inviter (the audience log), not a registration.
    let gus = &dan.children[0];
    assert_eq!(
        figures(gus),
        ("v-gus".into(), 2, (1, 5_000), (0, 0, 0), (0, 0, 0))
    );
    assert_eq!(
        (
            bob.name.as_str(),
            bob.company.as_str(),
            bob.channel.as_deref()
        ),
        ("Bob", "Bob Co", Some("c-wx"))
    );
    let ranking: Vec<(&str, u32, u32, i64)> = t
        .ranking
        .iter()
        .map(|r| {
            (
                r.viewer_id.as_str(),
                r.direct_invitees,
                r.subtree_size,
                r.subtree_value_cents,
            )
        })
        .collect();
    assert_eq!(
        ranking,
        vec![
            ("v-ann", 2, 5, 556_400),
            ("v-bob", 1, 2, 287_400),
            ("v-dan", 1, 1, 5_000),
            ("v-cat", 1, 1, 0)
        ]
    );
}

#[test]
fn a_cycle_of_invitations_still_makes_a_tree() {
    let mut log = scripted_show();
    log.registrations = vec![
        reg("x", "X", "", Some("y"), None),
        reg("y", "Y", "", Some("x"), None),
    ];
    log.audience.clear();
    let t = referral_tree(&log, CLOCK);
    assert_eq!(t.roots.len(), 1);
    assert_eq!(
        (t.roots[0].viewer_id.as_str(), t.roots[0].subtree_size),
        ("x", 1)
    );
    assert_eq!(t.roots[0].children[0].viewer_id, "y");
}
