//! Conformance behaviours of commerce: orders, flash-sale stock, draws and red packets.

use super::fixtures::*;
use super::{reopen, Storage};
use crate::model::{DrawEligibility, LoadedRoom, OrderStatus, PacketGrab};
use crate::store::Violation;

/// Orders, sales, draws and red packets read back as written, survive a reopen, and only
/// what may change after creation does: an order's status, a sale's end, a draw's outcome.
pub async fn commerce_round_trips_and_survives_reopen(storage: &dyn Storage) {
    let store = storage.open().await;
    put(&*store, vec![put_room(room("r1")), put_room(room("r2"))]).await;

    let mut o1 = order("o1", "v1", "k1", None, 100);
    let o0 = order("o0", "v1", "k0", None, 90);
    let o2 = order("o2", "v2", "k1", Some("s1"), 110);
    let mut s1 = sale("s1", 3);
    let d1 = draw(
        "d1",
        200,
        DrawEligibility::Tiers {
            tiers: vec!["gold".into()],
        },
    );
    let mut d2 = draw(
        "d2",
        210,
        DrawEligibility::Keyword {
            keyword: "lucky".into(),
        },
    );
    d2.beacon_source = "the block after close".into();
    let p1 = packet("rp1", vec![10, 20, 30]);
    put(
        &*store,
        vec![
            put_order(o1.clone()),
            put_order(o0.clone()),
            put_sale(s1.clone()),
            grant("s1", o2.clone()),
            put_draw(d1.clone()),
            put_draw(d2.clone()),
            put_packet(p1.clone()),
        ],
    )
    .await;

    // Only the status of an order moves after creation.
    o1.status = OrderStatus::Cancelled;
    o1.status_reason = Some("out of stock".into());
    o1.updated_ms = 500;
    let mut o1_put = o1.clone();
    o1_put.product_name = "Renamed".into();
    o1_put.quantity = 99;
    // Closing a draw records the outcome but never swaps the seed or the commitment.
    let mut d2_closed = d2.clone();
    d2_closed.closed_ms = Some(600);
    d2_closed.drawn_ms = Some(660);
    d2_closed.beacon = "block 42".into();
    d2_closed.entrants_hash = Some("ee".repeat(32));
    d2_closed.winners = vec![r("bob")];
    let mut d2_put = d2_closed.clone();
    d2_put.seed = "00".repeat(32);
    d2_put.commitment = "11".repeat(32);
    d2_put.beacon_source = "changed after open".into();
    // A stale copy of the sale (remaining 3) that ends it early.
    let mut s1_put = s1.clone();
    s1_put.ended_ms = Some(700);
    // A red packet's split is fixed when it is dropped.
    let mut p1_put = p1.clone();
    p1_put.message = "changed".into();
    p1_put.amounts = vec![1, 1, 58];
    put(
        &*store,
        vec![
            put_order(o1_put),
            put_draw(d2_put),
            put_sale(s1_put),
            put_packet(p1_put),
        ],
    )
    .await;

    s1.remaining = 2;
    s1.ended_ms = Some(700);
    let check = |l: LoadedRoom, other: LoadedRoom| {
        assert_eq!(l.orders, vec![o0.clone(), o1.clone(), o2.clone()]);
        assert_eq!(l.sales, vec![s1.clone()]);
        assert_eq!(l.draws, vec![d1.clone(), d2_closed.clone()]);
        assert_eq!(l.red_packets, vec![p1.clone()]);
        assert!(other.orders.is_empty() && other.sales.is_empty());
        assert!(other.draws.is_empty() && other.red_packets.is_empty());
    };
    check(loaded(&*store, "r1").await, loaded(&*store, "r2").await);
    let store = reopen(storage, store).await;
    check(loaded(&*store, "r1").await, loaded(&*store, "r2").await);
}

/// `GrantSale` takes exactly one unit with its order, atomically: never more grants than
/// stock, never below zero, and putting the sale again (as created, with other stock, or to
/// end it) never gives stock back.
pub async fn grant_sale_takes_one_unit_and_never_goes_below_zero(storage: &dyn Storage) {
    let store = storage.open().await;
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_sale(sale("s1", 3)),
            grant("s1", order("o0", "v0", "k", Some("s1"), 1)),
        ],
    )
    .await;
    put(&*store, vec![put_sale(sale("s1", 3))]).await;
    put(&*store, vec![put_sale(sale("s1", 10))]).await;
    let mut ended = sale("s1", 3);
    ended.ended_ms = Some(900);
    put(&*store, vec![put_sale(ended)]).await;
    let store = reopen(storage, store).await;
    let s = &loaded(&*store, "r1").await.sales[0];
    assert_eq!((s.stock, s.remaining, s.ended_ms), (3, 2, Some(900)));

    // Ten grabs at once for the last two units.
    let pending: Vec<_> = (1..=10)
        .map(|i| {
            let id = format!("o{i}");
            let viewer = format!("v{i}");
            store.submit(vec![grant("s1", order(&id, &viewer, "k", Some("s1"), i))])
        })
        .collect();
    let mut granted = Vec::new();
    for (i, d) in (1..=10).zip(pending) {
        match d.wait().await {
            Ok(()) => granted.push(format!("o{i}")),
            Err(e) => assert_eq!(e.violation(), Some(Violation::SoldOut), "{e:?}"),
        }
    }
    // Submissions apply in order, so the first two win.
    assert_eq!(granted, ["o1", "o2"]);
    let l = loaded(&*store, "r1").await;
    assert_eq!(l.sales[0].remaining, 0);
    let ids: Vec<&str> = l.orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["o0", "o1", "o2"]);
}

/// Red-packet grabs come back by share, and draw entrants once each: in entry order while the
/// draw is open, in canonical order once it closed (including entrants only the closing put
/// carried).
pub async fn red_packet_grabs_and_draw_entrants_round_trip(storage: &dyn Storage) {
    let store = storage.open().await;
    let mut open = draw("d1", 200, DrawEligibility::Everyone);
    let closing = draw("d2", 210, DrawEligibility::Dealers);
    let mut p1 = packet("rp1", vec![10, 20, 30]);
    put(
        &*store,
        vec![
            put_room(room("r1")),
            put_draw(open.clone()),
            put_draw(closing.clone()),
            put_packet(p1.clone()),
            put_packet(packet("rp2", vec![5])),
        ],
    )
    .await;
    put(
        &*store,
        vec![
            enter("d1", "zed", 300),
            enter("d1", "amy", 301),
            // A second entry of the same viewer is no second entrant.
            enter("d1", "zed", 302),
            enter("d2", "bob", 303),
            enter("d2", "al", 304),
            grab("rp1", "v3", 2, 30),
            grab("rp1", "v1", 0, 10),
        ],
    )
    .await;
    let mut closed = closing.clone();
    closed.closed_ms = Some(600);
    closed.drawn_ms = Some(600);
    // "cy"'s own entry write was lost; the closing put carries the set the hash covers.
    closed.entrants = vec![r("al"), r("bob"), r("cy")];
    closed.entrants_hash = Some("ee".repeat(32));
    closed.winners = vec![r("cy")];
    put(
        &*store,
        vec![put_draw(closed.clone()), enter("d1", "bea", 305)],
    )
    .await;

    open.entrants = vec![r("zed"), r("amy"), r("bea")];
    p1.grabs = vec![
        PacketGrab {
            viewer_id: r("v1"),
            index: 0,
            amount_cents: 10,
        },
        PacketGrab {
            viewer_id: r("v3"),
            index: 2,
            amount_cents: 30,
        },
    ];
    let check = |l: LoadedRoom| {
        assert_eq!(l.draws, vec![open.clone(), closed.clone()]);
        assert_eq!(l.red_packets[0], p1);
        assert!(l.red_packets[1].grabs.is_empty());
    };
    check(loaded(&*store, "r1").await);
    let store = reopen(storage, store).await;
    check(loaded(&*store, "r1").await);
}
