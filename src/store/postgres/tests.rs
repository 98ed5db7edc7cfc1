//! PostgreSQL-specific tests: the conformance suite, two nodes on one database (concurrent
//! migration, fencing across writers), long grant runs, and a lost connection.

use super::scratch::fresh_database;
use super::{PgStore, PgTarget};
use crate::store::conformance::fixtures::{grant, order, put_room, put_sale, r, room, sale};
use crate::store::conformance::{self, Storage};
use crate::store::{Store, StoreError, StoreOp, Violation};
use async_trait::async_trait;

/// A fresh database for each behaviour of the suite.
struct Scratch(PgTarget);

#[async_trait]
impl Storage for Scratch {
    async fn open(&self) -> Box<dyn Store> {
        Box::new(PgStore::open(&self.0).await.expect("open the store"))
    }

    fn shared(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_store_conformance_suite() {
    conformance::run_all(|| Scratch(fresh_database())).await;
}

fn fence(room: &str, token: u64) -> StoreOp {
    StoreOp::Fence {
        room: r(room),
        token,
    }
}

/// Two nodes start on one empty database at once: both migrate without error, and both
/// write and read the same rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_open_one_database_at_once() {
    let target = fresh_database();
    let (a, b) = tokio::join!(PgStore::open(&target), PgStore::open(&target));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.submit(vec![put_room(room("r1"))]).await.unwrap();
    assert_eq!(
        b.load_room("r1").await.unwrap().unwrap().record,
        Some(room("r1"))
    );
}

/// Node A owns a room under token 3 and sells from a sale; node B takes the room over with
/// token 4. From then on every write of A is refused as fenced, whatever it carries, while
/// B sells the rest: no unit is granted twice and no order of A lands after the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_owner_on_another_connection_is_fenced() {
    let target = fresh_database();
    let a = PgStore::open(&target).await.unwrap();
    let b = PgStore::open(&target).await.unwrap();
    a.submit(vec![
        fence("r1", 3),
        put_room(room("r1")),
        put_sale(sale("s1", 10)),
    ])
    .await
    .unwrap();
    for i in 0..3 {
        a.submit(vec![
            fence("r1", 3),
            grant(
                "s1",
                order(&format!("a{i}"), &format!("va{i}"), "k", Some("s1"), 1),
            ),
        ])
        .await
        .unwrap();
    }
    b.submit(vec![fence("r1", 4)]).await.unwrap();
    let late: Vec<_> = (3..6)
        .map(|i| {
            a.submit(vec![
                fence("r1", 3),
                grant(
                    "s1",
                    order(&format!("a{i}"), &format!("va{i}"), "k", Some("s1"), 1),
                ),
            ])
        })
        .collect();
    for d in late {
        assert_eq!(d.await.unwrap_err().violation(), Some(Violation::Fenced));
    }
    let mut b_grants = Vec::new();
    for i in 0..9 {
        b_grants.push(b.submit(vec![
            fence("r1", 4),
            grant(
                "s1",
                order(&format!("b{i}"), &format!("vb{i}"), "k", Some("s1"), 1),
            ),
        ]));
    }
    let mut sold_out = 0;
    for d in b_grants {
        match d.await {
            Ok(()) => {}
            Err(e) if e.violation() == Some(Violation::SoldOut) => sold_out += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    let l = b.load_room("r1").await.unwrap().unwrap();
    assert_eq!(l.sales[0].remaining, 0);
    assert_eq!(l.orders.len(), 10, "3 by A before the claim, 7 by B");
    assert!(l
        .orders
        .iter()
        .all(|o| !["a3", "a4", "a5"].contains(&o.id.as_str())));
    assert_eq!(sold_out, 2);
}

/// A thousand grants over three sales queued at once (so committed in a few batches, each
/// run of grants as one statement): the sales sell exactly their stock, every refusal is
/// "sold out", and the stored orders are exactly the acknowledged ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_grant_runs_sell_exactly_the_stock() {
    let store = PgStore::open(&fresh_database()).await.unwrap();
    let stock = [("s1", 100), ("s2", 250), ("s3", 1)];
    let mut setup = vec![put_room(room("r1"))];
    for (id, n) in stock {
        setup.push(put_sale(sale(id, n)));
    }
    store.submit(setup).await.unwrap();
    let pending: Vec<_> = (0..1_000)
        .map(|i| {
            let sale = stock[i % 3].0;
            let id = format!("o{i}");
            (
                id.clone(),
                store.submit(vec![grant(
                    sale,
                    order(&id, &format!("v{i}"), "k", Some(sale), 1),
                )]),
            )
        })
        .collect();
    let mut acked = Vec::new();
    for (id, d) in pending {
        match d.await {
            Ok(()) => acked.push(id),
            Err(StoreError::Refused {
                violation: Violation::SoldOut,
                ..
            }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(acked.len(), 351);
    let l = store.load_room("r1").await.unwrap().unwrap();
    let mut stored: Vec<String> = l.orders.iter().map(|o| o.id.clone()).collect();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked);
    assert!(l.sales.iter().all(|s| s.remaining == 0));
}

/// The writer's connection is killed by the server: the write in flight or the next one may
/// fail, but the writer reconnects and later writes land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_reconnects_after_its_connection_is_killed() {
    let target = fresh_database();
    let store = PgStore::open(&target).await.unwrap();
    store.submit(vec![put_room(room("r1"))]).await.unwrap();
    let admin = target.with_database("postgres").connect().await.unwrap();
    let db = target.config.get_dbname().unwrap().to_string();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap();
    // At most one write fails (the one that finds the dead connection).
    let mut failures = 0;
    for i in 0..3 {
        let mut rec = room("r1");
        rec.title = format!("Title {i}");
        if store.submit(vec![put_room(rec)]).await.is_err() {
            failures += 1;
        }
    }
    assert!(failures <= 1, "{failures} writes failed");
    let loaded = store.load_room("r1").await.unwrap().unwrap();
    assert_eq!(loaded.record.unwrap().title, "Title 2");
}

/// Orders, chat and audience records arrive in runs that are inserted many rows per
/// statement: a run of 300 (split 256 + 16 + 4·7) lands whole and in order, and an order put
/// twice in one run (placed, then confirmed) ends with its last status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_rows_land_whole_with_repeated_ids_in_order() {
    use crate::model::OrderStatus;
    use crate::store::conformance::fixtures::put_order;
    let store = PgStore::open(&fresh_database()).await.unwrap();
    let mut ops = vec![put_room(room("r1"))];
    let mut first = order("o0", "v0", "k0", None, 1);
    ops.push(put_order(first.clone()));
    for i in 1..300 {
        ops.push(put_order(order(
            &format!("o{i}"),
            &format!("v{i}"),
            "k",
            None,
            i,
        )));
    }
    first.status = OrderStatus::Confirmed;
    first.updated_ms = 500;
    ops.push(put_order(first.clone()));
    store.submit(ops).await.unwrap();
    let l = store.load_room("r1").await.unwrap().unwrap();
    assert_eq!(l.orders.len(), 300);
    assert_eq!(l.orders[0], first);
    let ids: Vec<&str> = l.orders.iter().map(|o| o.id.as_str()).collect();
    let want: Vec<String> = (0..300).map(|i| format!("o{i}")).collect();
    assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
}
