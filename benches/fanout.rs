//! Hot paths of event delivery: rendering once per audience class versus once per viewer,
//! a viewer's chat message through parse → room state machine → rendered frames, and the
//! fan-out of one rendered frame into N sessions' bounded queues.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use showfloor::model::{
    AudienceClass, Brand, JoinRequest, NewRoom, NodeTag, Product, SessionId, Viewer,
};
use showfloor::room::core::{Output, Room};
use showfloor::room::event::{render, ClassView, RoomEvent, SeqEvent};
use showfloor::room::protocol::parse_client_message;
use std::hint::black_box;

/// The server's allocator (src/main.rs). Under the system allocator the session-queue figures
/// depend on what earlier groups left on the heap (where each queue's blocks land), which
/// moved them by 40 % between two builds of the same queue code.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn shelf() -> Vec<Product> {
    (0..8)
        .map(|i| Product {
            id: format!("p{i}"),
            brand_id: "b1".into(),
            name: format!("Product {i}"),
            description: "A fine product for the spring season".into(),
            image_urls: vec![format!("https://img.example/p{i}.jpg")],
            link: format!("https://shop.example/p{i}"),
            min_order_quantity: 10,
            prices: vec![
                ("gold".into(), 1000 + i),
                ("silver".into(), 1100 + i),
                ("bronze".into(), 1200 + i),
            ],
        })
        .collect()
}

fn switched() -> SeqEvent {
    SeqEvent {
        room: "r".into(),
        seq: 42,
        at_ms: 1_700_000_000_000,
        event: RoomEvent::BrandSwitched {
            brand: Brand {
                id: "b1".into(),
                name: "Alpha".into(),
                logo_url: "https://img.example/a.png".into(),
                position: 0,
            },
            shelf: shelf(),
            pinned_product: None,
        },
    }
}

/// One brand switch delivered to 1,000 viewers (10 % dealers in three tiers).
fn render_per_class_vs_per_viewer(c: &mut Criterion) {
    let tiers = vec![
        "gold".to_string(),
        "silver".to_string(),
        "bronze".to_string(),
    ];
    let ev = switched();
    let viewers: Vec<AudienceClass> = (0..1000)
        .map(|i| {
            if i % 10 == 0 {
                AudienceClass::Dealer((i / 10 % 3) as u8)
            } else {
                AudienceClass::Public
            }
        })
        .collect();
    let mut g = c.benchmark_group("brand_switched_to_1000_viewers");
    g.throughput(Throughput::Elements(viewers.len() as u64));
    g.bench_function("showfloor_once_per_class", |b| {
        b.iter(|| {
            let frames = render(&ev, &tiers, "CNY");
            let mut total = 0;
            for v in &viewers {
                total += frames.for_class(*v).clone().len();
            }
            black_box(total)
        })
    });
    g.bench_function("naive_once_per_viewer", |b| {
        b.iter(|| {
            let mut total = 0;
            for v in &viewers {
                let view = ClassView {
                    tier: match v {
                        AudienceClass::Dealer(i) => Some(tiers[*i as usize].as_str()),
                        AudienceClass::Public => None,
                    },
                    currency: "CNY",
                };
                let RoomEvent::BrandSwitched { shelf, .. } = &ev.event else { unreachable!() };
                let body = serde_json::json!({"type":"brand_switched","seq":ev.seq,"shelf": view.shelf(shelf)});
                total += serde_json::to_vec(&body).unwrap().len();
            }
            black_box(total)
        })
    });
    g.finish();
}

fn chat_through_the_room(c: &mut Criterion) {
    let mut g = c.benchmark_group("chat_message");
    for viewers in [1usize, 1000] {
        let rec = Room::create(
            NewRoom {
                id: "r".into(),
                title: "t".into(),
                scheduled_start_ms: 0,
                chat_rate_limit: Some(showfloor::model::ChatRateLimit {
                    messages: 1000,
                    per_seconds: 1,
                }),
                banned_words: vec!["darn".into()],
                history_window: Some(1000),
                tiers: vec![],
                currency: None,
                token_key: "k".into(),
                registration: Default::default(),
                phone_country: String::new(),
            },
            0,
        )
        .unwrap();
        let mut room = Room::new(rec, "e".into(), 60_000);
        let mut out: Vec<Output> = Vec::new();
        for i in 0..viewers as u64 {
            room.join(
                SessionId::new(NodeTag::of("bench"), i),
                JoinRequest {
                    viewer: Viewer {
                        viewer_id: format!("v{i}"),
                        display_name: format!("Viewer {i}"),
                        inviter_id: None,
                        token_tier: None,
                        jti: format!("j{i}"),
                        expires_ms: i64::MAX,
                    },
                    resume: None,
                },
                0,
                &mut out,
            )
            .unwrap();
        }
        let mut now = 0i64;
        let speaker = SessionId::new(NodeTag::of("bench"), 0);
        g.bench_with_input(
            BenchmarkId::new("parse_apply_render", viewers),
            &viewers,
            |b, _| {
                b.iter(|| {
                    now += 1_000_000; // a new rate-limit window every message
                    out.clear();
                    let msg = parse_client_message(
                        r#"{"type":"chat","text":"Is the jacket available in navy?"}"#,
                    );
                    room.client(speaker, msg, now, &mut out);
                    black_box(out.len())
                })
            },
        );
    }
    g.finish();
}

/// One rendered frame into N sessions' bounded queues (what the room's owner does per
/// broadcast: `SessionSink::offer`, a reference-count clone and a `try_send` each), and each
/// session's writer taking it out again (`try_recv`). Elements = sessions.
fn fanout_into_session_queues(c: &mut Criterion) {
    use showfloor::rooms::{SessionSink, Text};
    let rendered = render(&switched(), &[], "CNY").public;
    let frame = Text::try_from(rendered).expect("rendered frames are UTF-8");
    let mut g = c.benchmark_group("fanout_into_session_queues");
    for sessions in [100usize, 1000, 5000] {
        let (links, mut queues): (Vec<SessionSink>, Vec<_>) = (0..sessions)
            .map(|_| {
                let (sink, queue) = SessionSink::new(1024);
                (sink, queue.frames)
            })
            .unzip();
        g.throughput(Throughput::Elements(sessions as u64));
        g.bench_with_input(BenchmarkId::from_parameter(sessions), &sessions, |b, _| {
            b.iter(|| {
                for l in &links {
                    let _ = l.offer(frame.clone());
                }
                for q in queues.iter_mut() {
                    black_box(q.try_recv());
                }
            })
        });
    }
    g.finish();
}

/// The same with the session queue the server used before 5bd15ea, a tokio bounded channel
/// (`try_send`, the half-full check on its capacity, `try_recv`): the reference for
/// `fanout_into_session_queues` in the same run.
fn fanout_into_tokio_channels(c: &mut Criterion) {
    use showfloor::rooms::Text;
    use tokio::sync::mpsc;
    let rendered = render(&switched(), &[], "CNY").public;
    let frame = Text::try_from(rendered).expect("rendered frames are UTF-8");
    let mut g = c.benchmark_group("fanout_into_tokio_channels");
    for sessions in [100usize, 1000, 5000] {
        let (links, mut queues): (Vec<mpsc::Sender<Text>>, Vec<_>) =
            (0..sessions).map(|_| mpsc::channel(1024)).unzip();
        g.throughput(Throughput::Elements(sessions as u64));
        g.bench_with_input(BenchmarkId::from_parameter(sessions), &sessions, |b, _| {
            b.iter(|| {
                for l in &links {
                    if l.try_send(frame.clone()).is_ok() {
                        black_box(l.capacity() < l.max_capacity() / 2);
                    }
                }
                for q in queues.iter_mut() {
                    black_box(q.try_recv().ok());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    render_per_class_vs_per_viewer,
    chat_through_the_room,
    fanout_into_session_queues,
    fanout_into_tokio_channels
);
criterion_main!(benches);
