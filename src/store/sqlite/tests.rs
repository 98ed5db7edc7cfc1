//! SQLite-specific tests: the conformance suite on SQLite, batch replay inside the writer,
//! shutdown, migrations from older schemas and what undecodable rows give.

use super::apply::apply;
use super::schema::{migrate, open_connection, MIGRATIONS, SCHEMA_V1, SCHEMA_V2};
use super::writer::{apply_in_transaction, write_batch, Submission};
use super::{SqliteStore, DB_FILE};
use crate::model::{
    Brand, ChatRateLimit, ChatRecord, FlashSale, LoadedRoom, Order, OrderStatus, Product,
    RoomRecord, RoomState,
};
use crate::store::conformance::{self, Storage};
use crate::store::{Durable, Store, StoreError, StoreOp, Violation};
use async_trait::async_trait;
use rusqlite::Connection;

/// A temporary directory for the conformance suite.
struct TempStorage(tempfile::TempDir);

#[async_trait]
impl Storage for TempStorage {
    async fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(self.0.path()).expect("open the store"))
    }

    fn shared(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_conformance_suite() {
    conformance::run_all(|| TempStorage(tempfile::tempdir().unwrap())).await;
}

fn r(s: &str) -> String {
    s.to_string()
}

fn room(id: &str) -> RoomRecord {
    RoomRecord {
        id: id.into(),
        title: format!("Room {id}"),
        state: RoomState::Scheduled,
        scheduled_start_ms: 1_000,
        chat_rate_limit: ChatRateLimit::default(),
        banned_words: vec!["spam".into()],
        history_window: 50,
        tiers: vec!["gold".into(), "silver".into()],
        currency: "EUR".into(),
        token_key: "a2V5".into(),
        brand_on_air: None,
        pinned_product: None,
        created_ms: 10,
        opened_ms: None,
        ended_ms: None,
        next_id: 1,
        registration: Default::default(),
        phone_country: String::new(),
    }
}

fn brand(id: &str) -> Brand {
    Brand {
        id: id.into(),
        name: format!("Brand {id}"),
        logo_url: String::new(),
        position: 0,
    }
}

fn chat(id: &str, seq: u64) -> ChatRecord {
    ChatRecord {
        id: id.into(),
        seq,
        viewer_id: "v1".into(),
        display_name: "Viv".into(),
        text: format!("hello {seq}"),
        at_ms: 100 + seq as i64,
        is_dealer: false,
    }
}

fn sale(id: &str, stock: u32) -> FlashSale {
    FlashSale {
        id: id.into(),
        product_id: "p1".into(),
        brand_id: "b1".into(),
        stock,
        remaining: stock,
        per_dealer_limit: 1,
        prices: vec![("gold".into(), 500)],
        start_ms: 100,
        end_ms: 10_000,
        ended_ms: None,
        created_ms: 50,
    }
}

fn grant(sale_id: &str, id: &str) -> StoreOp {
    StoreOp::GrantSale {
        room: r("r1"),
        sale_id: sale_id.into(),
        order: Box::new(Order {
            id: id.into(),
            viewer_id: format!("viewer-{id}"),
            display_name: "Dee".into(),
            tier: "gold".into(),
            brand_id: "b1".into(),
            product_id: "p1".into(),
            product_name: "Product p1".into(),
            quantity: 1,
            unit_price_cents: 500,
            total_cents: 500,
            currency: "EUR".into(),
            status: OrderStatus::Placed,
            status_reason: None,
            sale_id: Some(sale_id.into()),
            inviter_id: None,
            idempotency_key: "k".into(),
            created_ms: 1,
            updated_ms: 1,
        }),
    }
}

fn orphan_product() -> StoreOp {
    // Violates the products -> brands foreign key.
    StoreOp::PutProduct {
        room: r("r1"),
        product: Box::new(Product {
            id: "orphan".into(),
            brand_id: "no-such-brand".into(),
            name: "Orphan".into(),
            description: String::new(),
            image_urls: Vec::new(),
            link: String::new(),
            min_order_quantity: 1,
            prices: Vec::new(),
        }),
    }
}

fn ids(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One batch for certain (the writer's queue decides batches in the store): a failure in it
/// is replayed submission by submission, and each gets its own outcome.
#[test]
fn a_failed_batch_is_replayed_per_submission() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = open_connection(&dir.path().join(DB_FILE)).unwrap();
    migrate(&mut conn).unwrap();
    let setup = [
        StoreOp::PutRoom(Box::new(room("r1"))),
        StoreOp::PutSale {
            room: r("r1"),
            sale: Box::new(sale("s1", 1)),
        },
    ];
    apply_in_transaction(&mut conn, setup.iter()).unwrap();

    let mut batch = Vec::new();
    let mut results = Vec::new();
    for ops in [
        vec![StoreOp::PutBrand {
            room: r("r1"),
            brand: Box::new(brand("b0")),
        }],
        vec![
            StoreOp::PutBrand {
                room: r("r1"),
                brand: Box::new(brand("from-bad")),
            },
            orphan_product(),
        ],
        vec![],
        vec![grant("s1", "oA")],
        vec![grant("s1", "oB")],
        vec![StoreOp::PutBrand {
            room: r("r1"),
            brand: Box::new(brand("b1")),
        }],
    ] {
        let (done, durable) = Durable::pair();
        batch.push(Submission { ops, done });
        results.push(durable);
    }
    write_batch(&mut conn, &mut batch);
    assert!(batch.is_empty());
    let results: Vec<Result<(), StoreError>> = results
        .into_iter()
        .map(|d| futures_util::FutureExt::now_or_never(d).expect("resolved"))
        .collect();
    assert!(results[0].is_ok());
    assert!(matches!(
        &results[1],
        Err(StoreError::Refused {
            op: "PutProduct",
            violation: Violation::Missing,
            source: Some(_),
        })
    ));
    assert!(results[2].is_ok());
    assert!(results[3].is_ok());
    assert!(matches!(
        &results[4],
        Err(StoreError::Refused {
            op: "GrantSale",
            violation: Violation::SoldOut,
            source: None,
        })
    ));
    assert!(results[5].is_ok());
    assert_eq!(
        ids(&conn, "SELECT id FROM brands ORDER BY id"),
        ["b0", "b1"]
    );
    assert_eq!(ids(&conn, "SELECT id FROM orders"), ["oA"]);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn drop_applies_queued_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        drop(store.submit(vec![StoreOp::PutRoom(Box::new(room("r1")))]));
        for seq in 1..=100 {
            drop(store.submit(vec![StoreOp::AppendChat {
                room: r("r1"),
                chat: Box::new(chat(&format!("m{seq}"), seq)),
            }]));
        }
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.recent_chat("r1", 1000).await.unwrap().len(), 100);
}

#[tokio::test]
async fn closed_store_reports_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.shutdown().unwrap();
    assert!(matches!(
        store.submit(vec![]).wait().await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn undecodable_rows_are_reported_as_corrupt_with_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .submit(vec![StoreOp::PutRoom(Box::new(room("r1")))])
        .wait()
        .await
        .unwrap();
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute("UPDATE rooms SET state = 'paused'", [])
        .unwrap();
    let err = store.load_room("r1").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                op: "load_room",
                ..
            }
        ),
        "{err:?}"
    );
    let cause = std::error::Error::source(&err)
        .expect("a source")
        .to_string();
    assert!(cause.contains("paused"), "{cause}");

    conn.execute("UPDATE rooms SET state = 'live', tiers = 'not json'", [])
        .unwrap();
    assert!(matches!(
        store.list_rooms(Default::default()).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_newer_schema_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match SqliteStore::open(dir.path()) {
        Err(e @ StoreError::Backend { op: "migrate", .. }) => {
            let cause = std::error::Error::source(&e).unwrap().to_string();
            assert!(cause.contains("99"), "{cause}");
        }
        Err(e) => panic!("unexpected {e:?}"),
        Ok(_) => panic!("a newer schema opened"),
    }
}

async fn r1(store: &SqliteStore) -> LoadedRoom {
    store.load_room("r1").await.unwrap().expect("r1 is stored")
}

#[tokio::test]
async fn v1_database_migrates_to_the_latest_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        // The room as a v1 build wrote it: without the columns later versions added.
        conn.execute(
            "INSERT INTO rooms (id, title, state, scheduled_start_ms, chat_rate_limit,
                 banned_words, history_window, tiers, currency, token_key, created_ms, next_id)
             VALUES ('r1', 'Room r1', 'scheduled', 1000, '{\"messages\":5,\"per_seconds\":10}',
                 '[\"spam\"]', 50, '[\"gold\",\"silver\"]', 'EUR', 'a2V5', 10, 1)",
            [],
        )
        .unwrap();
        for op in [
            StoreOp::PutBrand {
                room: r("r1"),
                brand: Box::new(brand("b1")),
            },
            StoreOp::AppendChat {
                room: r("r1"),
                chat: Box::new(chat("m1", 1)),
            },
        ] {
            apply(&conn, &op).unwrap();
        }
    }

    let store = SqliteStore::open(dir.path()).unwrap();
    let l = r1(&store).await;
    assert_eq!(l.record, Some(room("r1")));
    assert_eq!(l.brands, vec![brand("b1")]);
    assert!(l.orders.is_empty() && l.sales.is_empty());
    assert!(l.draws.is_empty() && l.red_packets.is_empty());
    assert_eq!(
        store.recent_chat("r1", 10).await.unwrap(),
        vec![chat("m1", 1)]
    );
    store
        .submit(vec![
            StoreOp::PutSale {
                room: r("r1"),
                sale: Box::new(sale("s1", 1)),
            },
            grant("s1", "o1"),
        ])
        .wait()
        .await
        .unwrap();
    assert_eq!(r1(&store).await.orders.len(), 1);
    // The tables v6 added take writes in a migrated database too.
    store
        .submit(vec![StoreOp::AppendProgram {
            room: r("r1"),
            record: crate::model::ProgramRecord {
                brand_id: Some(r("b1")),
                at_ms: 5,
            },
        }])
        .wait()
        .await
        .unwrap();
    assert_eq!(store.program_log("r1").await.unwrap().len(), 1);
    // The webhook tables (v7) are there.
    assert_eq!(store.webhook("r1").await.unwrap(), None);
    assert!(store
        .webhook_deliveries("r1", Default::default(), 10)
        .await
        .unwrap()
        .is_empty());
    store.close().unwrap();

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 8);
    assert_eq!(MIGRATIONS.len(), 8);
}

#[tokio::test]
async fn v2_draws_migrate_as_drawn_at_close_without_a_beacon_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO rooms (id, title, state, scheduled_start_ms, chat_rate_limit,
                 banned_words, history_window, tiers, currency, token_key, created_ms, next_id)
             VALUES ('r1', 'Room', 'scheduled', 0, '{\"messages\":5,\"per_seconds\":10}',
                 '[]', 50, '[\"gold\"]', 'EUR', 'a2V5', 10, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO draws (room, id, prize, winners_count, eligibility, opened_ms,
                 closes_ms, closed_ms, seed, commitment, beacon, entrants_hash, winners)
             VALUES ('r1', 'd1', 'A watch', 1, '{\"kind\":\"everyone\"}', 100, 200, 150,
                 'ab', 'cd', '', 'ee', '[]'),
                    ('r1', 'd2', 'A watch', 1, '{\"kind\":\"everyone\"}', 300, 400, NULL,
                 'ab', 'cd', '', NULL, '[]')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let draws = r1(&store).await.draws;
    let got: Vec<_> = draws
        .iter()
        .map(|d| {
            (
                d.id.as_str(),
                d.closed_ms,
                d.drawn_ms,
                d.beacon_source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("d1", Some(150), Some(150), ""), ("d2", None, None, "")]
    );
}
