//! The behaviour every store backend must show, checked through `&dyn Store` only.
//!
//! A backend runs it by implementing [`Storage`] (a place its data lives, which can be opened
//! more than once so the suite can check what survives a reopen) and calling [`run_all`] from
//! a `#[tokio::test]`, with a fresh, empty storage per behaviour:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn postgres_passes_the_store_conformance_suite() {
//!     showfloor::store::conformance::run_all(PgScratch::new).await;
//! }
//! ```
//!
//! Each behaviour is also a `pub async fn` of its own, to run one alone while debugging. The
//! suite needs nothing but tokio; it panics on the first behaviour that does not hold.

mod commerce;
mod engagement;
/// The records and ops the suite writes; backends' own tests may use them too.
pub mod fixtures;
mod registrations;
mod webhooks;

pub use commerce::*;
pub use engagement::*;
pub use registrations::*;
pub use webhooks::*;

use crate::model::{AudienceKind, LoadedRoom, RoomState};
use crate::store::{RoomFilter, Store, StoreOp, Violation};
use async_trait::async_trait;
use fixtures::*;
use std::sync::Arc;

/// Where a backend keeps its data, for the suite.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Opens a store on this storage; the first open finds it empty. Before opening again the
    /// suite flushes and drops the store it had.
    async fn open(&self) -> Box<dyn Store>;

    /// Whether several nodes may share it (their stores then hand out leases and claims).
    fn shared(&self) -> bool;
}

/// Runs every behaviour, each on storage of its own from `fresh`.
pub async fn run_all<S: Storage>(fresh: impl Fn() -> S) {
    macro_rules! run {
        ($($behaviour:ident),* $(,)?) => {$(
            // Names the behaviour in the output of a failing test.
            eprintln!("store conformance: {}", stringify!($behaviour));
            $behaviour(&fresh()).await;
        )*};
    }
    run!(
        catalog_and_moderation_survive_reopen,
        submissions_apply_in_order,
        many_concurrent_submissions_all_commit,
        a_failing_submission_fails_only_itself,
        idempotency_keys_are_unique,
        load_room_list_rooms_and_load_rooms_agree,
        recent_chat_excludes_deleted_and_keeps_the_newest,
        audience_log_and_watch_time,
        expired_kicks_and_mutes_are_left_out_on_load,
        commerce_round_trips_and_survives_reopen,
        grant_sale_takes_one_unit_and_never_goes_below_zero,
        red_packet_grabs_and_draw_entrants_round_trip,
        a_fenced_writer_cannot_write_after_a_newer_owner,
        registrations_are_unique_by_phone_code_and_viewer,
        a_registration_is_decided_once_and_may_be_revoked,
        channels_are_unique_by_code_and_name,
        an_erased_registrant_keeps_records_but_no_personal_data,
        engagement_program_and_weights_round_trip,
        writes_queue_webhook_deliveries_with_them,
        attempts_move_deliveries_and_are_logged,
        a_claimed_delivery_waits_for_its_lease,
    );
}

/// Far enough ahead that nothing set to it has run out.
const FUTURE: i64 = i64::MAX / 2;

/// Closes `store` the way the suite does before a reopen: everything durable, then dropped.
async fn reopen(storage: &dyn Storage, store: Box<dyn Store>) -> Box<dyn Store> {
    store.flush().await.expect("flush");
    drop(store);
    storage.open().await
}

/// Loaded rooms compare by their debug form: every field, in order.
fn same(a: &LoadedRoom, b: &LoadedRoom) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Every catalog and moderation write is durable once its `Durable` resolves, reads back as
/// written (overwrites, deletes and the brand → products cascade included) and survives a
/// reopen.
pub async fn catalog_and_moderation_survive_reopen(storage: &dyn Storage) {
    let store = storage.open().await;
    let mut rec = room("r1");
    put(&*store, vec![put_room(rec.clone())]).await;
    put(&*store, vec![put_room(room("r2"))]).await;

    let mut b2 = brand("b2", 0);
    let mut p3 = product("p3", "b1");
    let mut d1 = dealer("v9");
    let mut a2 = application("a2", 20);
    put(
        &*store,
        vec![
            put_brand("r1", brand("b1", 1)),
            put_brand("r1", b2.clone()),
            put_brand("r1", brand("b3", 2)),
            put_product("r1", product("p2", "b2")),
            put_product("r1", product("p1", "b1")),
            put_product("r1", p3.clone()),
            put_product("r1", product("p4", "b3")),
            put_product("r1", product("p5", "b3")),
            StoreOp::PutDealer {
                room: r("r1"),
                dealer: Box::new(d1.clone()),
            },
            StoreOp::PutApplication {
                room: r("r1"),
                application: Box::new(a2.clone()),
            },
            StoreOp::PutApplication {
                room: r("r1"),
                application: Box::new(application("a1", 10)),
            },
            kick("r1", "j-live", FUTURE),
            mute("r1", "v2", FUTURE + 50),
            append_chat("r1", chat("m1", 1)),
            append_audience("r1", audience("v1", 7, AudienceKind::Join, 100)),
        ],
    )
    .await;

    // Overwrites, deletes and the brand cascade.
    rec.state = RoomState::Live;
    rec.opened_ms = Some(99);
    rec.brand_on_air = Some("b1".into());
    rec.next_id = 42;
    b2.name = "Renamed".into();
    b2.position = 3;
    p3.prices = vec![("gold".into(), 1), ("silver".into(), 2)];
    p3.brand_id = "b2".into();
    d1.tier = None;
    a2.status = crate::model::ApplicationStatus::Approved;
    a2.tier = Some("gold".into());
    a2.decided_ms = Some(30);
    put(
        &*store,
        vec![
            put_room(rec.clone()),
            put_brand("r1", b2.clone()),
            put_product("r1", p3.clone()),
            StoreOp::DeleteProduct {
                room: r("r1"),
                product_id: r("p2"),
            },
            StoreOp::DeleteBrand {
                room: r("r1"),
                brand_id: r("b3"),
            },
            StoreOp::PutDealer {
                room: r("r1"),
                dealer: Box::new(d1.clone()),
            },
            StoreOp::PutApplication {
                room: r("r1"),
                application: Box::new(a2.clone()),
            },
            mute("r1", "v2", FUTURE + 500),
            kick("r1", "j-live", FUTURE - 1),
        ],
    )
    .await;

    let check = |l: LoadedRoom, other: LoadedRoom| {
        assert_eq!(l.record.as_ref(), Some(&rec));
        assert_eq!(l.brands, vec![brand("b1", 1), b2.clone()]);
        assert_eq!(l.products, vec![product("p1", "b1"), p3.clone()]);
        assert_eq!(l.dealers, vec![d1.clone()]);
        assert_eq!(l.applications, vec![application("a1", 10), a2.clone()]);
        assert_eq!(l.kicked_tokens, vec![(r("j-live"), FUTURE - 1)]);
        assert_eq!(l.mutes, vec![(r("v2"), FUTURE + 500)]);
        assert_eq!(other.record.map(|r| r.id), Some(r("r2")));
        assert!(other.brands.is_empty() && other.products.is_empty());
    };
    check(loaded(&*store, "r1").await, loaded(&*store, "r2").await);

    let store = reopen(storage, store).await;
    check(loaded(&*store, "r1").await, loaded(&*store, "r2").await);
    assert_eq!(
        store.recent_chat("r1", 10).await.unwrap(),
        vec![chat("m1", 1)]
    );
    assert_eq!(
        store.audience_log("r1").await.unwrap(),
        vec![audience("v1", 7, AudienceKind::Join, 100)]
    );
}

/// Submissions are applied in the order they were made, even when nobody waits in between
/// and the handles are dropped; `flush` waits for all of them.
pub async fn submissions_apply_in_order(storage: &dyn Storage) {
    let store = storage.open().await;
    // Each submission needs the one before it: the room, then its brand, then a product.
    drop(store.submit(vec![put_room(room("r1"))]));
    drop(store.submit(vec![put_brand("r1", brand("b1", 0))]));
    let product = store.submit(vec![put_product("r1", product("p1", "b1"))]);
    for until in 1..=5 {
        drop(store.submit(vec![mute("r1", "v", FUTURE + until)]));
    }
    drop(store.submit(vec![StoreOp::DeleteProduct {
        room: r("r1"),
        product_id: r("p1"),
    }]));
    drop(store.submit(vec![put_product("r1", fixtures::product("p2", "b1"))]));
    drop(store.submit(vec![append_chat("r1", chat("m1", 1))]));
    store.flush().await.unwrap();
    product.wait().await.unwrap();

    let l = loaded(&*store, "r1").await;
    assert_eq!(l.products, vec![fixtures::product("p2", "b1")]);
    assert_eq!(l.mutes, vec![(r("v"), FUTURE + 5)]);
    assert_eq!(store.recent_chat("r1", 5).await.unwrap().len(), 1);
    // A flush with nothing pending resolves too.
    store.flush().await.unwrap();
}

/// Ten thousand submissions from concurrent tasks all resolve and all land (the backend may
/// commit them together, but none is lost or failed by another).
pub async fn many_concurrent_submissions_all_commit(storage: &dyn Storage) {
    let store: Arc<dyn Store> = storage.open().await.into();
    put(&*store, vec![put_room(room("r1"))]).await;
    const TASKS: u64 = 8;
    const EACH: u64 = 1_250;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for i in 0..EACH {
                let record = audience(&format!("v{t}"), t, AudienceKind::Heartbeat, i as i64);
                pending.push(store.submit(vec![append_audience("r1", record)]));
                if pending.len() == 100 {
                    for d in pending.drain(..) {
                        d.wait().await.unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            }
            for d in pending {
                d.wait().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = store.audience_log("r1").await.unwrap();
    assert_eq!(log.len() as u64, TASKS * EACH);
    for t in 0..TASKS {
        // Each task's own submissions landed in its order.
        let times: Vec<i64> = log
            .iter()
            .filter(|a| a.session == t)
            .map(|a| a.at_ms)
            .collect();
        assert_eq!(times, (0..EACH as i64).collect::<Vec<_>>());
    }
}

/// A submission that breaks a rule fails alone, with the reason (and the backend's report as
/// its source); none of its writes are applied, and the submissions around it, usually
/// committed in the same batch, are.
pub async fn a_failing_submission_fails_only_itself(storage: &dyn Storage) {
    let store = storage.open().await;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_brand("r1", brand("b1", 0)),
            put_sale(sale("s1", 1)),
            put_sale(sale("s2", 5)),
        ],
    )
    .await;
    // Queued back to back, so usually in one batch; the outcome holds either way.
    let submissions = [
        vec![put_product("r1", product("p1", "b1"))],
        // A product of a brand that does not exist: the brand put before it goes too.
        vec![
            put_brand("r1", brand("from-bad", 9)),
            put_product("r1", product("orphan", "no-such-brand")),
        ],
        vec![mute("r1", "v", FUTURE)],
        vec![grant("s1", order("oA", "v1", "k", Some("s1"), 1))],
        // Sold out: the order put before it in the same submission goes too.
        vec![
            put_order(order("oX", "v9", "k", None, 2)),
            grant("s1", order("oB", "v2", "k", Some("s1"), 2)),
        ],
        vec![grant("s2", order("oC", "v3", "k", Some("s2"), 3))],
        vec![grant("nope", order("oD", "v4", "k", Some("nope"), 4))],
        // A duplicate order id: the unit taken from s2 is given back.
        vec![grant("s2", order("oA", "v5", "k", Some("s2"), 5))],
        // Chat in a room that does not exist.
        vec![append_chat("ghost", chat("m1", 1))],
    ];
    let pending: Vec<_> = submissions
        .into_iter()
        .map(|ops| store.submit(ops))
        .collect();
    let mut outcomes = Vec::new();
    for d in pending {
        outcomes.push(d.wait().await);
    }
    let expected = [
        None,
        Some(Violation::Missing),
        None,
        None,
        Some(Violation::SoldOut),
        None,
        Some(Violation::SoldOut),
        Some(Violation::Duplicate),
        Some(Violation::Missing),
    ];
    for (i, (got, want)) in outcomes.iter().zip(expected).enumerate() {
        match (got, want) {
            (Ok(()), None) => {}
            (Err(e), Some(v)) => {
                assert_eq!(e.violation(), Some(v), "submission {i}: {e:?}");
                if v != Violation::SoldOut {
                    // Found by the backend, whose report is kept.
                    assert!(std::error::Error::source(e).is_some(), "submission {i}");
                }
            }
            _ => panic!("submission {i}: got {got:?}, expected {want:?}"),
        }
    }

    let l = loaded(&*store, "r1").await;
    assert_eq!(l.brands, vec![brand("b1", 0)]);
    assert_eq!(l.products, vec![product("p1", "b1")]);
    assert_eq!(l.mutes, vec![(r("v"), FUTURE)]);
    let orders: Vec<&str> = l.orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(orders, ["oA", "oC"]);
    let remaining: Vec<(&str, u32)> = l
        .sales
        .iter()
        .map(|s| (s.id.as_str(), s.remaining))
        .collect();
    assert_eq!(remaining, [("s1", 0), ("s2", 4)]);
    assert!(store.load_room("ghost").await.unwrap().is_none());
}

/// The same idempotency key twice is refused, not stored twice: an order key per viewer and
/// per sale (or outside any sale), and a red-packet share or grabber.
pub async fn idempotency_keys_are_unique(storage: &dyn Storage) {
    let store = storage.open().await;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_order(order("o1", "v1", "k1", None, 1)),
            // Same key: another viewer, or a flash sale, is a different order.
            put_order(order("o2", "v2", "k1", None, 2)),
            put_order(order("o3", "v1", "k1", Some("s1"), 3)),
            put_packet(packet("rp1", vec![5, 7])),
            grab("rp1", "v1", 0, 5),
        ],
    )
    .await;
    for dup in [
        order("o4", "v1", "k1", None, 4),
        order("o5", "v1", "k1", Some("s1"), 5),
    ] {
        refused(&*store, vec![put_order(dup)], Violation::Duplicate).await;
    }
    // The same viewer again, or another viewer on a taken share.
    for dup in [grab("rp1", "v1", 1, 7), grab("rp1", "v2", 0, 5)] {
        refused(&*store, vec![dup], Violation::Duplicate).await;
    }
    refused(&*store, vec![grab("nope", "v1", 0, 5)], Violation::Missing).await;

    let l = loaded(&*store, "r1").await;
    assert_eq!(l.orders.len(), 3);
    assert_eq!(l.red_packets[0].grabs.len(), 1);
    assert_eq!(l.red_packets[0].grabs[0].viewer_id, "v1");
}

/// `load_room`, `list_rooms` and `load_rooms` tell the same story; the list is newest first
/// and filters by state, creation time and count.
pub async fn load_room_list_rooms_and_load_rooms_agree(storage: &dyn Storage) {
    let store = storage.open().await;
    let at = |id: &str, created_ms: i64, state: RoomState| {
        let mut r = room(id);
        r.created_ms = created_ms;
        r.state = state;
        r
    };
    let (a, mut b, c, d) = (
        at("a", 100, RoomState::Scheduled),
        at("b", 200, RoomState::Live),
        at("c", 300, RoomState::Ended),
        at("d", 300, RoomState::Live),
    );
    put(
        &*store,
        vec![
            put_room(d),
            put_room(b.clone()),
            put_room(a),
            put_room(c),
            put_brand("b", brand("b1", 0)),
            put_product("b", product("p1", "b1")),
            mute("d", "v", FUTURE),
        ],
    )
    .await;

    let ids =
        |rooms: Vec<crate::model::RoomRecord>| rooms.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let list = |filter: RoomFilter| {
        let store = &store;
        async move { ids(store.list_rooms(filter).await.unwrap()) }
    };
    // Newest first; rooms created at the same time by id.
    assert_eq!(list(RoomFilter::default()).await, ["c", "d", "b", "a"]);
    let live = RoomFilter {
        state: Some(RoomState::Live),
        ..RoomFilter::default()
    };
    assert_eq!(list(live.clone()).await, ["d", "b"]);
    let after = |ms| RoomFilter {
        created_after_ms: Some(ms),
        ..RoomFilter::default()
    };
    assert_eq!(list(after(100)).await, ["c", "d", "b"]);
    assert!(list(after(300)).await.is_empty());
    let limited = |n| RoomFilter {
        limit: Some(n),
        ..RoomFilter::default()
    };
    assert_eq!(list(limited(2)).await, ["c", "d"]);
    assert!(list(limited(0)).await.is_empty());
    let newest_live = RoomFilter {
        limit: Some(1),
        ..live.clone()
    };
    assert_eq!(list(newest_live).await, ["d"]);
    let one = |id: &str| RoomFilter {
        id: Some(id.into()),
        ..RoomFilter::default()
    };
    assert_eq!(list(one("b")).await, ["b"]);
    assert!(list(one("nope")).await.is_empty());
    assert!(
        list(RoomFilter {
            state: Some(RoomState::Live),
            ..one("a")
        })
        .await
        .is_empty(),
        "a is not live"
    );

    let all = store.load_rooms().await.unwrap();
    let created: Vec<i64> = all
        .iter()
        .map(|l| l.record.as_ref().unwrap().created_ms)
        .collect();
    assert_eq!(created, [100, 200, 300, 300], "oldest first");
    for record in store.list_rooms(RoomFilter::default()).await.unwrap() {
        let one = loaded(&*store, &record.id).await;
        assert_eq!(one.record.as_ref(), Some(&record));
        let in_all = all
            .iter()
            .find(|l| l.record.as_ref().map(|r| &r.id) == Some(&record.id))
            .expect("load_rooms has every listed room");
        assert!(same(&one, in_all), "{one:?}\n{in_all:?}");
    }
    assert_eq!(
        loaded(&*store, "b").await.products,
        vec![product("p1", "b1")]
    );
    assert_eq!(loaded(&*store, "d").await.mutes, vec![(r("v"), FUTURE)]);
    assert!(store.load_room("nope").await.unwrap().is_none());

    // A state change moves a room between filters.
    b.state = RoomState::Ended;
    put(&*store, vec![put_room(b.clone())]).await;
    assert_eq!(list(live).await, ["d"]);
}

/// Recent chat is the newest messages of the room, oldest first, without deleted ones.
pub async fn recent_chat_excludes_deleted_and_keeps_the_newest(storage: &dyn Storage) {
    let store = storage.open().await;
    let mut ops = vec![put_room(room("r1")), put_room(room("r2"))];
    for seq in 1..=10 {
        ops.push(append_chat("r1", chat(&format!("m{seq}"), seq)));
    }
    ops.push(append_chat("r2", chat("m11", 11)));
    ops.push(StoreOp::DeleteChat {
        room: r("r1"),
        message_id: r("m9"),
        at_ms: 500,
    });
    put(&*store, ops).await;

    let seqs = |v: Vec<crate::model::ChatRecord>| v.iter().map(|c| c.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.recent_chat("r1", 3).await.unwrap()), [7, 8, 10]);
    assert_eq!(seqs(store.recent_chat("r1", 100).await.unwrap()).len(), 9);
    assert!(store.recent_chat("r1", 0).await.unwrap().is_empty());
    assert_eq!(seqs(store.recent_chat("r2", 5).await.unwrap()), [11]);
    assert!(store.recent_chat("nope", 5).await.unwrap().is_empty());
    assert_eq!(
        store.recent_chat("r1", 1).await.unwrap(),
        vec![chat("m10", 10)]
    );
}

/// The audience log reads back oldest first (ties in write order) with session ids of all 64
/// bits intact, and watch time is folded from it per viewer.
pub async fn audience_log_and_watch_time(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;
    let records = [
        audience("a", 1, AudienceKind::Join, 1_000),
        audience("b", 2, AudienceKind::Join, 500),
        audience("b", 2, AudienceKind::Heartbeat, 2_500),
        audience("a", 1, AudienceKind::Leave, 4_000),
        audience("c", 3, AudienceKind::Join, 4_000),
        // Session ids use all 64 bits: a node tag sits in the top ones.
        audience("d", u64::MAX - 7, AudienceKind::Join, 5_000),
        audience("d", u64::MAX - 7, AudienceKind::Leave, 6_000),
    ];
    for rec in &records {
        put(&*store, vec![append_audience("r1", rec.clone())]).await;
    }
    put(
        &*store,
        vec![append_audience(
            "r2",
            audience("z", 9, AudienceKind::Join, 1),
        )],
    )
    .await;

    let log = store.audience_log("r1").await.unwrap();
    let order = [1, 0, 2, 3, 4, 5, 6].map(|i| records[i].clone());
    assert_eq!(log, order);
    assert!(store.audience_log("nope").await.unwrap().is_empty());

    let mut watched = store.watch_time("r1").await.unwrap();
    watched.sort();
    // a: join to leave; b: cut off, so until its last heartbeat; c: not yet watched.
    assert_eq!(
        watched,
        vec![(r("a"), 3_000), (r("b"), 2_000), (r("d"), 1_000)]
    );
    assert!(store.watch_time("nope").await.unwrap().is_empty());
}

/// Kicked tokens and mutes that have run out are left out when a room is loaded.
pub async fn expired_kicks_and_mutes_are_left_out_on_load(storage: &dyn Storage) {
    let store = storage.open().await;
    let past = crate::model::now_ms() - 60_000;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            kick("r1", "j-old", 1),
            kick("r1", "j-recent", past),
            kick("r1", "j-live", FUTURE),
            mute("r1", "v-old", 1),
            mute("r1", "v-recent", past),
            mute("r1", "v-live", FUTURE),
        ],
    )
    .await;
    let check = |l: &LoadedRoom| {
        assert_eq!(l.kicked_tokens, vec![(r("j-live"), FUTURE)]);
        assert_eq!(l.mutes, vec![(r("v-live"), FUTURE)]);
    };
    check(&loaded(&*store, "r1").await);
    check(&store.load_rooms().await.unwrap()[0]);
    // A mute lifted early is stored as one that ends now: gone on the next load.
    put(&*store, vec![mute("r1", "v-live", past)]).await;
    assert!(loaded(&*store, "r1").await.mutes.is_empty());
}

fn fence(room: &str, token: u64) -> StoreOp {
    StoreOp::Fence {
        room: r(room),
        token,
    }
}

/// Fencing: once a writer with a higher token has written to a room, a submission with a
/// lower token is refused whole (`Fenced`), in any batch and across a reopen; the same or a
/// higher token writes; other rooms are unaffected, and a claim alone (no other op, before
/// the room exists) is enough to shut the former owner out.
pub async fn a_fenced_writer_cannot_write_after_a_newer_owner(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![fence("r1", 5), put_room(room("r1"))]).await;
    put(&*store, vec![put_room(room("r2"))]).await;
    put(
        &*store,
        vec![
            fence("r1", 5),
            put_brand("r1", brand("b1", 0)),
            put_sale(sale("s1", 10)),
        ],
    )
    .await;
    // A new owner claims the room with nothing else; the old one is out from then on.
    put(&*store, vec![fence("r1", 9)]).await;
    // Queued together: the fenced grant fails alone, with none of its ops applied.
    let old = store.submit(vec![
        fence("r1", 5),
        grant("s1", order("oOld", "v1", "k1", Some("s1"), 1)),
    ]);
    let new = store.submit(vec![
        fence("r1", 9),
        grant("s1", order("oNew", "v2", "k1", Some("s1"), 2)),
    ]);
    let other_room = store.submit(vec![fence("r2", 1), mute("r2", "v", FUTURE)]);
    assert_eq!(
        old.wait().await.unwrap_err().violation(),
        Some(Violation::Fenced)
    );
    new.wait().await.unwrap();
    other_room.wait().await.unwrap();

    let store = reopen(storage, store).await;
    refused(
        &*store,
        vec![fence("r1", 8), mute("r1", "v", FUTURE)],
        Violation::Fenced,
    )
    .await;
    // A fence claimed before the room exists, then the room.
    put(&*store, vec![fence("r3", 2)]).await;
    refused(
        &*store,
        vec![fence("r3", 1), put_room(room("r3"))],
        Violation::Fenced,
    )
    .await;
    assert!(store.load_room("r3").await.unwrap().is_none());
    put(&*store, vec![fence("r1", 12), mute("r1", "v2", FUTURE)]).await;

    let l = loaded(&*store, "r1").await;
    let orders: Vec<&str> = l.orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(orders, ["oNew"]);
    assert_eq!(l.sales[0].remaining, 9);
    assert_eq!(l.mutes, vec![(r("v2"), FUTURE)]);
    assert_eq!(loaded(&*store, "r2").await.mutes, vec![(r("v"), FUTURE)]);
}
