//! Flash sales never oversell: exactly `stock` winners under a burst, nobody above the limit,
//! every acknowledged win durable (also across `kill -9`), repeated keys answered the same.

mod common;
use common::*;
use serde_json::json;
use showfloor::pb;
use showfloor::store::postgres::{PgStore, PgTarget};
use showfloor::store::sqlite::SqliteStore;
use showfloor::store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// (viewer, key, result, order id)
type Answer = (String, String, String, Option<String>);

/// Where a spawned server keeps its data: a data directory (SQLite) or a PostgreSQL database.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(Box<PgTarget>, String),
}

impl Backend {
    fn postgres() -> Backend {
        let url = showfloor::store::postgres::scratch::fresh_database_url();
        Backend::Postgres(Box::new(PgTarget::parse(&url).unwrap()), url)
    }

    fn args(&self) -> Vec<std::ffi::OsString> {
        match self {
            Backend::Sqlite(dir) => vec!["--data-dir".into(), dir.path().into()],
            Backend::Postgres(_, url) => vec!["--postgres".into(), url.into()],
        }
    }

    async fn open(&self) -> Box<dyn Store> {
        match self {
            Backend::Sqlite(dir) => Box::new(SqliteStore::open(dir.path()).unwrap()),
            Backend::Postgres(target, _) => Box::new(PgStore::open(target).await.unwrap()),
        }
    }
}

/// A sale's stock, remaining units and order ids as the store kept them, read through the
/// `Store` trait once the server has stopped.
async fn stored_sale(store: &dyn Store, room: &str, sale: &str) -> (u32, u32, HashSet<String>) {
    let room = store
        .load_room(room)
        .await
        .unwrap()
        .expect("the room is stored");
    let s = room
        .sales
        .iter()
        .find(|s| s.id == sale)
        .expect("the sale is stored");
    let ids = room
        .orders
        .iter()
        .filter(|o| o.sale_id.as_deref() == Some(sale))
        .map(|o| o.id.clone())
        .collect();
    (s.stock, s.remaining, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_5000_grabs_from_2000_dealers_on_stock_100_has_exactly_100_winners() {
    raise_fd_limit();
    let mut server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, 100, 1, 600)
        .await;
    assert_eq!(sale.phase, pb::SalePhase::Live as i32);
    let addr = server.app().http_addr.to_string();

    // 2000 dealers connect; the first 1000 will grab three times, the others twice.
    let mut connecting = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    for i in 0..2000u32 {
        let (addr, room, key, gate) = (
            addr.clone(),
            show.room.clone(),
            show.key.clone(),
            gate.clone(),
        );
        connecting.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let tier = if i % 2 == 0 { "gold" } else { "silver" };
            let id = format!("dealer-{i}");
            let mut v = connect(&addr, &room, &dealer_token(&room, &key, &id, tier)).await;
            let w = v.expect("welcome").await;
            assert_eq!(w["you"]["tier"], tier);
            (i, id, v)
        });
    }
    let mut dealers = Vec::new();
    while let Some(r) = connecting.join_next().await {
        dealers.push(r.unwrap());
    }
    assert_eq!(dealers.len(), 2000);

    let start = Arc::new(tokio::sync::Barrier::new(dealers.len()));
    let mut grabbing = tokio::task::JoinSet::new();
    for (i, id, mut v) in dealers {
        let (sale_id, start) = (sale.id.clone(), start.clone());
        grabbing.spawn(async move {
            let n = if i < 1000 { 3 } else { 2 };
            start.wait().await;
            for k in 0..n {
                v.send(json!({"type": "grab", "sale_id": sale_id, "key": format!("{id}-k{k}")}))
                    .await;
            }
            let mut answers: Vec<Answer> = Vec::new();
            while answers.len() < n {
                let f = v.expect("grab_result").await;
                answers.push((
                    id.clone(),
                    f["key"].as_str().unwrap().to_string(),
                    f["result"].as_str().unwrap().to_string(),
                    f["order_id"].as_str().map(String::from),
                ));
            }
            (v, answers)
        });
    }
    let mut all: Vec<Answer> = Vec::new();
    let mut viewers = HashMap::new();
    while let Some(r) = grabbing.join_next().await {
        let (v, answers) = r.unwrap();
        viewers.insert(answers[0].0.clone(), v);
        all.extend(answers);
    }
    assert_eq!(all.len(), 5000, "every grab is answered");
    let won: Vec<&Answer> = all.iter().filter(|a| a.2 == "won").collect();
    assert_eq!(won.len(), 100, "exactly the stock is won");
    let mut per_dealer: HashMap<&str, u32> = HashMap::new();
    for w in &won {
        *per_dealer.entry(&w.0).or_default() += 1;
    }
    assert!(per_dealer.values().all(|n| *n == 1), "limit 1 holds");
    for a in &all {
        assert!(
            ["won", "sold_out", "limit_reached"].contains(&a.2.as_str()),
            "unexpected result {a:?}"
        );
    }
    let acked: HashSet<String> = won.iter().map(|w| w.3.clone().unwrap()).collect();
    assert_eq!(acked.len(), 100, "distinct order ids");

    // A repeated key gets the same answer: a win stays the same win, a loss the same loss.
    let (wv, wkey, _, worder) = won[0].clone();
    let lost = all.iter().find(|a| a.2 == "sold_out").unwrap().clone();
    let v = viewers.get_mut(&wv).unwrap();
    v.send(json!({"type": "grab", "sale_id": sale.id, "key": wkey}))
        .await;
    let again = v.expect("grab_result").await;
    assert_eq!(again["result"], "won");
    assert_eq!(again["order_id"].as_str(), worder.as_deref());
    let v = viewers.get_mut(&lost.0).unwrap();
    v.send(json!({"type": "grab", "sale_id": sale.id, "key": lost.1}))
        .await;
    assert_eq!(v.expect("grab_result").await["result"], "sold_out");

    // The host sees the same 100 orders, and the sale as sold out.
    let orders = c
        .client
        .list_orders(authed(pb::ListOrdersRequest {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
            limit: 1000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(orders.total_count, 100);
    let listed: HashSet<String> = orders.orders.iter().map(|o| o.id.clone()).collect();
    assert_eq!(listed, acked);
    assert!(orders
        .orders
        .iter()
        .all(|o| o.quantity == 1 && o.sale_id == sale.id));
    let s = c
        .client
        .get_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.remaining, s.granted), (0, 100));
    assert_eq!(s.phase, pb::SalePhase::SoldOut as i32);

    // And the store agrees: every acknowledged win has its row, no row without one.
    drop(viewers);
    server.stop().await;
    let (stock, remaining, stored) = stored_sale(
        &SqliteStore::open(&server.dir).unwrap(),
        &show.room,
        &sale.id,
    )
    .await;
    assert_eq!(stored, acked);
    assert_eq!((stock, remaining), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grab_results_cover_not_started_ended_not_eligible_and_limit() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    // Starts in an hour: not started.
    let later = c
        .client
        .create_flash_sale(authed(pb::CreateFlashSaleRequest {
            room_id: show.room.clone(),
            product_id: show.products[1].id.clone(),
            stock: 5,
            per_dealer_limit: 2,
            prices: vec![pb::TierPrice {
                tier: "gold".into(),
                price_cents: 4_000,
            }],
            start_ms: showfloor::model::now_ms() + 3_600_000,
            duration_seconds: 60,
            tiers: vec!["gold".into()],
        }))
        .await
        .unwrap()
        .into_inner();
    let now_sale = c
        .flash_sale(&show.room, &show.products[0].id, 10, 2, 600)
        .await;
    let mut gold = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "g1", "gold"),
        )
        .await;
    let w = gold.expect("welcome").await;
    assert_eq!(w["sales"].as_array().unwrap().len(), 2, "{w}");
    let mut silver = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "s1", "silver"),
        )
        .await;
    silver.expect("welcome").await;
    let public_token = c.token(&show.room, "p1").await;
    let mut public = server.viewer(&show.room, &public_token).await;
    let pw = public.expect("welcome").await;
    let text = pw.to_string();
    assert!(!text.contains("price"), "public sees no sale price: {text}");

    let grab = |sale: &str, key: &str| json!({"type": "grab", "sale_id": sale, "key": key});
    gold.send(grab(&later.id, "a")).await;
    assert_eq!(gold.expect("grab_result").await["result"], "not_started");
    silver.send(grab(&later.id, "a")).await;
    assert_eq!(
        silver.expect("grab_result").await["result"],
        "not_eligible",
        "silver does not take part in this sale"
    );
    public.send(grab(&now_sale.id, "a")).await;
    assert_eq!(public.expect("grab_result").await["result"], "not_eligible");

    gold.send(grab(&now_sale.id, "1")).await;
    let r = gold.expect("grab_result").await;
    assert_eq!(r["result"], "won");
    assert_eq!(r["price_cents"], 5_000, "gold's sale price");
    gold.send(grab(&now_sale.id, "2")).await;
    assert_eq!(gold.expect("grab_result").await["result"], "won");
    gold.send(grab(&now_sale.id, "3")).await;
    assert_eq!(gold.expect("grab_result").await["result"], "limit_reached");
    silver.send(grab(&now_sale.id, "1")).await;
    let r = silver.expect("grab_result").await;
    assert_eq!(
        (r["result"].as_str(), r["price_cents"].as_i64()),
        (Some("won"), Some(6_000))
    );

    // Unknown sale: an error, nothing recorded.
    gold.send(grab("s999", "x")).await;
    assert_eq!(gold.expect("error").await["code"], "unknown_sale");

    // The host ends the sale: everyone is told; later grabs are "ended".
    c.client
        .end_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: now_sale.id.clone(),
        }))
        .await
        .unwrap();
    let ended = public.expect("sale_ended").await;
    assert_eq!(
        (ended["sold"].as_u64(), ended["reason"].as_str()),
        (Some(3), Some("host"))
    );
    silver.send(grab(&now_sale.id, "2")).await;
    assert_eq!(silver.expect("grab_result").await["result"], "ended");
    let again = c
        .client
        .end_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: now_sale.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_events_start_on_time_and_count_down_stock() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let mut public = server
        .viewer(&show.room, &c.token(&show.room, "watcher").await)
        .await;
    public.expect("welcome").await;
    let mut gold = server
        .viewer(
            &show.room,
            &dealer_token(&show.room, &show.key, "g1", "gold"),
        )
        .await;
    gold.expect("welcome").await;
    let start = showfloor::model::now_ms() + 1_500;
    let sale = c
        .client
        .create_flash_sale(authed(pb::CreateFlashSaleRequest {
            room_id: show.room.clone(),
            product_id: show.products[0].id.clone(),
            stock: 3,
            per_dealer_limit: 3,
            prices: vec![
                pb::TierPrice {
                    tier: "gold".into(),
                    price_cents: 4_000,
                },
                pb::TierPrice {
                    tier: "silver".into(),
                    price_cents: 4_500,
                },
            ],
            start_ms: start,
            duration_seconds: 30,
            tiers: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    let sched = public.expect("sale_scheduled").await;
    assert_eq!(sched["sale_id"], sale.id.as_str());
    assert!(sched["server_time_ms"].as_i64().unwrap() < start);
    assert_eq!(sched["eligible"], false);
    assert!(sched.get("price_cents").is_none());
    let gs = gold.expect("sale_scheduled").await;
    assert_eq!(
        (gs["eligible"].as_bool(), gs["price_cents"].as_i64()),
        (Some(true), Some(4_000))
    );
    let started = gold.expect("sale_started").await;
    assert!(started["at"].as_i64().unwrap() >= start);
    for k in 0..3 {
        gold.send(json!({"type": "grab", "sale_id": sale.id, "key": format!("k{k}")}))
            .await;
    }
    let sold_out = public.expect("sold_out").await;
    assert_eq!(sold_out["sale_id"], sale.id.as_str());
    // `stock_left` is coalesced: fewer updates than grabs, never below zero.
    let n = public
        .frames
        .iter()
        .filter(|f| f.contains("\"stock_left\""))
        .count();
    assert!(n <= 3, "{n} stock_left frames");
}

async fn spawn_server(backend: &Backend) -> Served {
    let mut args: Vec<std::ffi::OsString> = vec!["--api-key".into(), KEY.into()];
    args.extend(backend.args());
    Served::start(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_burst_loses_no_acknowledged_win() {
    kill_9_in_a_burst(Backend::Sqlite(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_burst_on_postgres_loses_no_acknowledged_win() {
    kill_9_in_a_burst(Backend::postgres()).await;
}

async fn kill_9_in_a_burst(backend: Backend) {
    raise_fd_limit();
    let mut server = spawn_server(&backend).await;
    let mut c = Control::at(server.grpc).await;
    let show = setup_show(&mut c).await;
    let stock = 5_000;
    let sale = c
        .flash_sale(&show.room, &show.products[0].id, stock, 10, 600)
        .await;

    // 200 dealers grab in waves of ten; the process is killed once 300 wins are acknowledged.
    let acked = Arc::new(parking_lot::Mutex::new(HashSet::<String>::new()));
    let addr = server.http_addr();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (addr, room, key, sale_id, acked) = (
            addr.clone(),
            show.room.clone(),
            show.key.clone(),
            sale.id.clone(),
            acked.clone(),
        );
        tasks.spawn(async move {
            let id = format!("d{i}");
            let mut v = connect(&addr, &room, &dealer_token(&room, &key, &id, "gold")).await;
            v.expect("welcome").await;
            for wave in 0.. {
                for k in 0..10 {
                    v.send(json!({"type": "grab", "sale_id": sale_id,
                                  "key": format!("{id}-{wave}-{k}")}))
                        .await;
                }
                for _ in 0..10 {
                    match v.next().await {
                        Next::Frame(f) if f["type"] == "grab_result" => {
                            if f["result"] == "won" {
                                acked
                                    .lock()
                                    .insert(f["order_id"].as_str().unwrap().to_string());
                            }
                        }
                        Next::Frame(_) => {}
                        Next::Closed(_) => return,
                    }
                }
            }
        });
    }
    loop {
        if acked.lock().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL: no shutdown, no flush.
    server.kill();
    while tasks.join_next().await.is_some() {}
    let acked = acked.lock().clone();
    assert!(acked.len() >= 300);

    // Restart on the same data: every acknowledged win is there, and the books balance.
    let mut server = spawn_server(&backend).await;
    let mut c = Control::at(server.grpc).await;
    let s = c
        .client
        .get_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.granted + s.remaining, stock);
    let orders = c
        .client
        .list_orders(authed(pb::ListOrdersRequest {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
            limit: 1000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(orders.total_count, s.granted, "one order per granted unit");
    let mut stored = HashSet::new();
    let mut before = String::new();
    loop {
        let page = c
            .client
            .list_orders(authed(pb::ListOrdersRequest {
                room_id: show.room.clone(),
                sale_id: sale.id.clone(),
                limit: 1000,
                before_order_id: before.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        if page.orders.is_empty() {
            break;
        }
        before = page.orders.last().unwrap().id.clone();
        stored.extend(page.orders.into_iter().map(|o| o.id));
    }
    assert_eq!(stored.len() as u32, s.granted);
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // The restarted server keeps selling from the recovered stock.
    let mut v = connect(
        &server.http_addr(),
        &show.room,
        &dealer_token(&show.room, &show.key, "late", "gold"),
    )
    .await;
    v.expect("welcome").await;
    v.send(json!({"type": "grab", "sale_id": sale.id, "key": "late-1"}))
        .await;
    assert_eq!(v.expect("grab_result").await["result"], "won");
    server.kill();
    let (st, remaining, rows) = stored_sale(&*backend.open().await, &show.room, &sale.id).await;
    assert_eq!(st, stock);
    assert_eq!(rows.len() as u32 + remaining, stock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flash_sales_are_refused_with_precise_errors() {
    let server = Server::start().await;
    let mut c = server.control().await;
    let show = setup_show(&mut c).await;
    let base = pb::CreateFlashSaleRequest {
        room_id: show.room.clone(),
        product_id: show.products[0].id.clone(),
        stock: 10,
        per_dealer_limit: 1,
        prices: vec![
            pb::TierPrice {
                tier: "gold".into(),
                price_cents: 1,
            },
            pb::TierPrice {
                tier: "silver".into(),
                price_cents: 1,
            },
        ],
        start_ms: 0,
        duration_seconds: 60,
        tiers: vec![],
    };
    let cases: Vec<(pb::CreateFlashSaleRequest, tonic::Code, &str)> = vec![
        (
            pb::CreateFlashSaleRequest {
                stock: 0,
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "stock",
        ),
        (
            pb::CreateFlashSaleRequest {
                per_dealer_limit: 0,
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "per_dealer_limit",
        ),
        (
            pb::CreateFlashSaleRequest {
                product_id: "p404".into(),
                ..base.clone()
            },
            tonic::Code::NotFound,
            "p404",
        ),
        (
            pb::CreateFlashSaleRequest {
                duration_seconds: 0,
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "duration_seconds",
        ),
        (
            pb::CreateFlashSaleRequest {
                prices: vec![],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "sale price",
        ),
        (
            pb::CreateFlashSaleRequest {
                tiers: vec!["platinum".into()],
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "platinum",
        ),
        (
            pb::CreateFlashSaleRequest {
                start_ms: 1_000,
                ..base.clone()
            },
            tonic::Code::InvalidArgument,
            "past",
        ),
        (
            pb::CreateFlashSaleRequest {
                room_id: "nope".into(),
                ..base.clone()
            },
            tonic::Code::NotFound,
            "nope",
        ),
    ];
    for (req, code, needle) in cases {
        let e = c
            .client
            .create_flash_sale(authed(req.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{req:?}: {}", e.message());
        assert!(e.message().contains(needle), "{}", e.message());
    }
    let sales = c
        .client
        .list_flash_sales(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(sales.sales.is_empty(), "no trace of refused sales");
    // A sale on an ended room.
    c.client
        .close_room(authed(pb::RoomRef {
            room_id: show.room.clone(),
        }))
        .await
        .unwrap();
    let e = c.client.create_flash_sale(authed(base)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("ended"), "{}", e.message());
    let stored = server
        .app()
        .hub
        .store()
        .load_room(&show.room)
        .await
        .unwrap()
        .expect("the room is stored");
    assert!(stored.sales.is_empty(), "no refused sale is stored");
}
