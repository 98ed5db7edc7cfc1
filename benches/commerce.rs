//! Flash-sale grabs and dealer orders end to end, side by side with a Redis Lua seckill in
//! the same run and the same harness.
//!
//! `cargo bench --bench commerce` (optionally `-- --grabs N --lanes N --window N`, and
//! `--only showfloor|postgres|redis` to run one side, e.g. under a profiler).
//!
//! - Showfloor: the real server in-process, `lanes` dealers on loopback WebSockets, each
//!   keeping `window` grabs in flight. Every grab wins (stock = grabs, no per-dealer cap),
//!   so every grab is a durable write — the expensive case. Twice: on the embedded SQLite
//!   store (WAL, synchronous=FULL: every acknowledged win is fsynced), and on PostgreSQL
//!   (the server the tests use, started on 127.0.0.1:55432 if it is not running, or
//!   `SHOWFLOOR_TEST_POSTGRES`; default settings: fsync and synchronous_commit on, so every
//!   acknowledged win is in the flushed WAL).
//! - Redis: a `redis-server` started by this bench (appendonly yes, appendfsync everysec —
//!   NOT durable per acknowledgement), the same lanes and window, each grab one EVALSHA of a
//!   script that checks the idempotency key, checks stock, checks the dealer's count,
//!   decrements, and records the order.
//!
//! Latencies are from sending a grab to reading its answer. Needs `redis-server` on PATH
//! (Debian: `apt-get install redis-server`); without it the bench stops with that message.

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use showfloor::app::App;
use showfloor::config::{Config, StoreKind};
use showfloor::pb;
use showfloor::pb::control_client::ControlClient;
use showfloor::store::postgres::scratch;
use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "bench-host-key-0123456789";

/// The server allocates and frees many small buffers per message; mimalloc's per-thread
/// free lists cost a fraction of glibc malloc's there (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    grabs: u32,
    lanes: u32,
    window: u32,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        grabs: 200_000,
        lanes: 64,
        window: 64,
        only: None,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let n = |i: usize| v.get(i + 1).and_then(|s| s.parse().ok());
        match v[i].as_str() {
            "--grabs" => a.grabs = n(i).expect("--grabs N"),
            "--lanes" => a.lanes = n(i).expect("--lanes N"),
            "--window" => a.window = n(i).expect("--window N"),
            "--only" => match v.get(i + 1).map(String::as_str) {
                Some(side @ ("showfloor" | "postgres" | "redis")) => {
                    a.only = Some(side.to_string())
                }
                _ => panic!("--only showfloor|postgres|redis"),
            },
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

struct Run {
    name: String,
    ops: u64,
    secs: f64,
    hist: Histogram<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    fn print(&self) {
        println!(
            "{:<44} {:>9} ops {:>7.2} s {:>10.0} ops/s   p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms",
            self.name,
            self.ops,
            self.secs,
            self.rate(),
            self.hist.value_at_quantile(0.50) as f64 / 1000.0,
            self.hist.value_at_quantile(0.99) as f64 / 1000.0,
            self.hist.value_at_quantile(0.999) as f64 / 1000.0,
        );
    }
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    r
}

struct Show {
    room: String,
    key: String,
    product: String,
}

async fn setup(grpc: &str) -> (ControlClient<tonic::transport::Channel>, Show) {
    let mut c = ControlClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let r = c
        .create_room(authed(pb::CreateRoomRequest {
            title: "Bench".into(),
            tiers: vec!["gold".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let room = r.room.unwrap().id;
    let brand = c
        .add_brand(authed(pb::AddBrandRequest {
            room_id: room.clone(),
            name: "Alpha".into(),
            logo_url: String::new(),
            position: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let product = c
        .upsert_product(authed(pb::UpsertProductRequest {
            room_id: room.clone(),
            brand_id: brand.id.clone(),
            name: "Jacket".into(),
            link: "https://shop.example/j".into(),
            min_order_quantity: 1,
            prices: vec![pb::TierPrice {
                tier: "gold".into(),
                price_cents: 10_000,
            }],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    c.switch_brand(authed(pb::BrandRef {
        room_id: room.clone(),
        brand_id: brand.id,
    }))
    .await
    .unwrap();
    c.open_room(authed(pb::RoomRef {
        room_id: room.clone(),
    }))
    .await
    .unwrap();
    (
        c,
        Show {
            room,
            key: r.token_key,
            product: product.id,
        },
    )
}

fn dealer_token(show: &Show, viewer: &str) -> String {
    let now = showfloor::model::now_ms() / 1000;
    showfloor::auth::issue_viewer_token(
        &show.key,
        &showfloor::auth::ViewerClaims {
            room: show.room.clone(),
            sub: viewer.into(),
            name: viewer.into(),
            role: showfloor::auth::Role::Dealer,
            tier: Some("gold".into()),
            inv: None,
            iat: now,
            exp: now + 3600,
            jti: format!("jti-{viewer}"),
        },
    )
    .unwrap()
}

/// One dealer's connection: sends `count` requests made by `make`, at most `window` in
/// flight, and times each answer of type `answer` (answers come back in request order).
async fn ws_lane(
    url: String,
    count: u32,
    window: u32,
    answer: &'static str,
    make: impl Fn(u32) -> String,
) -> Histogram<u64> {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    loop {
        if let Some(Ok(Message::Text(t))) = rx.next().await {
            if t.as_str().starts_with("{\"type\":\"welcome\"") {
                break;
            }
        }
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut inflight = VecDeque::new();
    let (mut next, mut done) = (0, 0);
    let needle = format!("{{\"type\":\"{answer}\"");
    while done < count {
        let mut fed = false;
        while inflight.len() < window as usize && next < count {
            tx.feed(Message::text(make(next))).await.unwrap();
            inflight.push_back(Instant::now());
            next += 1;
            fed = true;
        }
        if fed {
            tx.flush().await.unwrap();
        }
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if t.starts_with(&needle) {
                    assert!(
                        !t.contains("\"result\":\"") || t.contains("\"result\":\"won\""),
                        "every grab should win in this workload: {t}"
                    );
                    let sent = inflight.pop_front().expect("an answer to a request");
                    hist.record(sent.elapsed().as_micros().max(1) as u64)
                        .unwrap();
                    done += 1;
                } else if t.starts_with("{\"type\":\"error\"") {
                    panic!("server refused a request: {t}");
                }
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    hist
}

async fn run_lanes<F, Fut>(name: String, a: &Args, lane: F) -> Run
where
    F: Fn(u32, u32) -> Fut,
    Fut: std::future::Future<Output = Histogram<u64>> + Send + 'static,
{
    let per = a.grabs / a.lanes;
    let start = Instant::now();
    let tasks: Vec<_> = (0..a.lanes).map(|l| tokio::spawn(lane(l, per))).collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    Run {
        name,
        ops: (per * a.lanes) as u64,
        secs: start.elapsed().as_secs_f64(),
        hist,
    }
}

/// The server on SQLite (`postgres: false`) or on a fresh PostgreSQL database.
async fn showfloor_runs(a: &Args, postgres: bool) -> (Run, Run) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf(), KEY);
    let store = if postgres {
        config.store = StoreKind::Postgres;
        config.postgres = Some(scratch::fresh_database_url().into());
        "PostgreSQL commit"
    } else {
        "SQLite fsync"
    };
    let app = App::start(config).await.unwrap();
    let (http, grpc) = (app.http_addr.to_string(), app.grpc_addr.to_string());
    let (mut c, show) = setup(&grpc).await;
    let sale = c
        .create_flash_sale(authed(pb::CreateFlashSaleRequest {
            room_id: show.room.clone(),
            product_id: show.product.clone(),
            stock: a.grabs,
            per_dealer_limit: a.grabs,
            prices: vec![pb::TierPrice {
                tier: "gold".into(),
                price_cents: 5_000,
            }],
            start_ms: 0,
            duration_seconds: 3600,
            tiers: vec![],
        }))
        .await
        .unwrap()
        .into_inner();
    let urls: Vec<String> = (0..a.lanes)
        .map(|l| {
            format!(
                "ws://{http}/ws/{}?token={}",
                show.room,
                dealer_token(&show, &format!("dealer-{l}"))
            )
        })
        .collect();
    let window = a.window;
    let grabs = run_lanes(format!("showfloor grab (WebSocket, {store})"), a, |l, n| {
        let (url, sale) = (urls[l as usize].clone(), sale.id.clone());
        async move {
            ws_lane(url, n, window, "grab_result", move |i| {
                format!(r#"{{"type":"grab","sale_id":"{sale}","key":"g{i}"}}"#)
            })
            .await
        }
    })
    .await;
    let product = show.product.clone();
    let orders = run_lanes(
        format!("showfloor place_order (WebSocket, {store})"),
        a,
        |l, n| {
            let (url, product) = (urls[l as usize].clone(), product.clone());
            async move {
                ws_lane(url, n, window, "order_placed", move |i| {
                    format!(
                        r#"{{"type":"place_order","product_id":"{product}","quantity":10,"key":"o{i}"}}"#
                    )
                })
                .await
            }
        },
    )
    .await;
    // The books balance: every acknowledged win is a stored unit.
    let s = c
        .get_flash_sale(authed(pb::FlashSaleRef {
            room_id: show.room.clone(),
            sale_id: sale.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.granted as u64, grabs.ops);
    app.shutdown().await;
    (grabs, orders)
}

const SECKILL: &str = r#"
-- KEYS: stock, per-dealer counts, orders list, answers by key, order id counter
-- ARGV: dealer, per-dealer limit, idempotency key, now ms
local answer_key = ARGV[1] .. ':' .. ARGV[3]
local done = redis.call('HGET', KEYS[4], answer_key)
if done then return done end
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then
  redis.call('HSET', KEYS[4], answer_key, 'sold_out')
  return 'sold_out'
end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[4], answer_key, 'limit_reached')
  return 'limit_reached'
end
redis.call('DECR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local id = redis.call('INCR', KEYS[5])
redis.call('RPUSH', KEYS[3], id .. ':' .. ARGV[1] .. ':' .. ARGV[4])
local won = 'won:' .. id
redis.call('HSET', KEYS[4], answer_key, won)
return won
"#;

/// The process, and its data directory (removed when dropped).
struct RedisServer(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (RedisServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .args(["--save", ""])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!(
                "cannot start redis-server ({e}); install it: apt-get install -y redis-server"
            );
            std::process::exit(69);
        });
    (RedisServer(child, dir), port)
}

async fn redis_run(a: &Args) -> Run {
    let (_server, port) = start_redis();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = None;
    for _ in 0..100 {
        if let Ok(c) = client.get_multiplexed_async_connection().await {
            con = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut con = con.expect("redis-server accepts connections");
    let _: () = redis::cmd("SET")
        .arg("sale:stock")
        .arg(a.grabs)
        .query_async(&mut con)
        .await
        .unwrap();
    let script = redis::Script::new(SECKILL);
    let window = a.window as usize;
    let grabs = a.grabs;
    let run = run_lanes(
        "redis Lua seckill (EVALSHA, appendfsync everysec)".into(),
        a,
        |l, n| {
            let (client, script) = (client.clone(), script.clone());
            async move {
                // One connection per lane, like one WebSocket per dealer.
                let con = client.get_multiplexed_async_connection().await.unwrap();
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut inflight = FuturesUnordered::new();
                let dealer = format!("dealer-{l}");
                let mut next = 0;
                while next < n || !inflight.is_empty() {
                    while inflight.len() < window && next < n {
                        let (mut con, script, dealer) =
                            (con.clone(), script.clone(), dealer.clone());
                        let key = format!("g{next}");
                        inflight.push(async move {
                            let t = Instant::now();
                            let r: String = script
                                .key("sale:stock")
                                .key("sale:per_dealer")
                                .key("sale:orders")
                                .key("sale:answers")
                                .key("sale:order_id")
                                .arg(&dealer)
                                .arg(grabs)
                                .arg(&key)
                                .arg(showfloor::model::now_ms())
                                .invoke_async(&mut con)
                                .await
                                .unwrap();
                            assert!(r.starts_with("won:"), "{r}");
                            t.elapsed()
                        });
                        next += 1;
                    }
                    if let Some(d) = inflight.next().await {
                        hist.record(d.as_micros().max(1) as u64).unwrap();
                    }
                }
                hist
            }
        },
    )
    .await;
    let left: i64 = redis::cmd("GET")
        .arg("sale:stock")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(left as u64, a.grabs as u64 - run.ops);
    run
}

/// Writes the page cache back to disk before a side starts, outside its timed region: with
/// ext4's ordered journaling an fsync can have to write out other files' dirty data first, so
/// without this the side that runs second would pay for the first side's leftovers (Redis's
/// append-only file, or the previous run's database).
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(500));
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "{} grabs over {} lanes, {} in flight per lane; {} CPUs",
            a.grabs,
            a.lanes,
            a.window,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        settle();
        if let Some(side @ ("showfloor" | "postgres")) = a.only.as_deref() {
            let (grabs, orders) = showfloor_runs(&a, side == "postgres").await;
            grabs.print();
            orders.print();
            return;
        }
        let redis = redis_run(&a).await;
        if a.only.as_deref() == Some("redis") {
            redis.print();
            return;
        }
        settle();
        let (grabs, orders) = showfloor_runs(&a, false).await;
        settle();
        let (pg_grabs, pg_orders) = showfloor_runs(&a, true).await;
        redis.print();
        grabs.print();
        orders.print();
        pg_grabs.print();
        pg_orders.print();
        println!(
            "showfloor durable grabs / redis Lua grabs: SQLite {:.2}x, PostgreSQL {:.2}x throughput",
            grabs.rate() / redis.rate(),
            pg_grabs.rate() / redis.rate()
        );
    });
}
