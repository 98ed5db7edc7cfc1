//! What a cluster adds to a host command and to a room event.
//!
//! Host commands: the same gRPC calls on the room's owner and on another node, which forwards
//! them to the owner over NATS request/reply. Each call waits for its answer before the next
//! (latency, not throughput): `GetRoom` (a read inside the room) and `Announce` (a room event
//! to every viewer).
//!
//! Events: `--viewers N` WebSocket viewers on each of three nodes (the owner and two that
//! follow the room from it); the owner announces `--events M` times, one every 10 ms, and
//! every viewer records when each announcement reached it, counted from the moment the call
//! was made. Viewers on the owner get the frame from the owner's own fan-out; viewers on the
//! other nodes get it after NATS and their node's rendering and fan-out.
//!
//! `cargo bench --bench cluster` (optionally `-- --calls N --viewers N --events M
//! --write-delay-ms D`; D is the servers' write coalescing, default 40 ms as served). The nodes
//! run in this process on one PostgreSQL database (the test server on 127.0.0.1:55432,
//! started if need be) and a nats-server of the bench's own (JetStream, loopback).

// The tests' own nats-server helper (its stop/restart are not used here).
#[allow(dead_code)]
#[path = "../tests/common/nats.rs"]
mod nats;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use showfloor::app::{App, Membership};
use showfloor::cluster::Leases;
use showfloor::config::{Config, StoreKind};
use showfloor::pb;
use showfloor::pb::control_client::ControlClient;
use showfloor::store::postgres::scratch;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "bench-host-key-0123456789";

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    r
}

async fn node(
    nats: &nats::NatsServer,
    postgres: &str,
    id: &str,
    write_delay_ms: u64,
) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf(), KEY);
    config.write_delay_ms = write_delay_ms;
    config.node_id = id.into();
    config.store = StoreKind::Postgres;
    config.postgres = Some(postgres.into());
    let client = nats.jetstream().await.client();
    let leases = Leases::open(
        async_nats::jetstream::new(client.clone()),
        "bench_rooms",
        id,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let store = std::sync::Arc::new(
        showfloor::store::postgres::PgStore::open(
            &showfloor::store::postgres::PgTarget::parse(postgres).unwrap(),
        )
        .await
        .unwrap(),
    );
    let app = App::start_with_parts(
        config,
        store,
        Membership::Cluster {
            nats: client,
            leases,
        },
    )
    .await
    .unwrap();
    (app, dir)
}

struct Run {
    name: String,
    hist: Histogram<u64>,
}

impl Run {
    fn print(&self) {
        println!(
            "{:<40} {:>6} calls  p50 {:>7.3} ms  p99 {:>7.3} ms  mean {:>7.3} ms",
            self.name,
            self.hist.len(),
            self.hist.value_at_quantile(0.50) as f64 / 1000.0,
            self.hist.value_at_quantile(0.99) as f64 / 1000.0,
            self.hist.mean() / 1000.0,
        );
    }
}

async fn measure(
    name: &str,
    c: &mut ControlClient<tonic::transport::Channel>,
    room: &str,
    calls: u32,
    announce: bool,
) -> Run {
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for i in 0..calls {
        let t = Instant::now();
        if announce {
            c.announce(authed(pb::AnnounceRequest {
                room_id: room.into(),
                text: format!("note {i}"),
            }))
            .await
            .unwrap();
        } else {
            c.get_room(authed(pb::GetRoomRequest {
                room_id: room.into(),
            }))
            .await
            .unwrap();
        }
        hist.record(t.elapsed().as_micros() as u64).unwrap();
    }
    Run {
        name: name.into(),
        hist,
    }
}

/// Viewers on `node` that record, per announcement `note-K`, how long after `sent[K]` it
/// arrived, into `hist`. They stop after the last one.
async fn viewers_on(
    node: &App,
    room: &str,
    key: &str,
    n: usize,
    events: usize,
    sent: Arc<Mutex<Vec<Option<Instant>>>>,
    hist: Arc<Mutex<Histogram<u64>>>,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let mut ready = Vec::new();
    for i in 0..n {
        let now = showfloor::model::now_ms() / 1000;
        let token = showfloor::auth::issue_viewer_token(
            key,
            &showfloor::auth::ViewerClaims {
                room: room.into(),
                sub: format!("{}-{i}", node.http_addr.port()),
                name: String::new(),
                role: showfloor::auth::Role::Viewer,
                tier: None,
                inv: None,
                iat: now,
                exp: now + 3600,
                jti: format!("{}-{i}", node.http_addr.port()),
            },
        )
        .unwrap();
        let url = format!("ws://{}/ws/{room}?token={token}", node.http_addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        // The welcome first: the viewer is in the room.
        let first = ws.next().await.unwrap().unwrap();
        assert!(first.to_text().unwrap().contains("\"welcome\""));
        let (sent, hist) = (sent.clone(), hist.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        set.spawn(async move {
            let _ = tx.send(());
            let mut seen = 0;
            while let Some(Ok(m)) = ws.next().await {
                let Ok(t) = m.to_text() else { continue };
                const NOTE: &str = "\"text\":\"note-";
                let Some(at) = t.find(NOTE) else {
                    continue;
                };
                let k: usize = t[at + NOTE.len()..]
                    .split('"')
                    .next()
                    .and_then(|k| k.parse().ok())
                    .unwrap();
                let Some(t0) = sent.lock()[k] else { continue };
                hist.lock().record(t0.elapsed().as_micros() as u64).unwrap();
                seen += 1;
                if seen == events {
                    break;
                }
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    set
}

fn main() {
    let v: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u32| -> u32 {
        v.iter()
            .position(|a| a == name)
            .and_then(|i| v.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let calls = arg("--calls", 2_000);
    let viewers = arg("--viewers", 1_000) as usize;
    let events = arg("--events", 300) as usize;
    // The server's write coalescing (default 40 ms) holds broadcast frames for up to that
    // long; 0 shows what crossing nodes costs without it.
    let write_delay_ms = u64::from(arg("--write-delay-ms", 40));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nats = nats::NatsServer::start().await;
        let postgres = scratch::fresh_database_url();
        let (a, _da) = node(&nats, &postgres, "owner", write_delay_ms).await;
        let (b, _db) = node(&nats, &postgres, "other", write_delay_ms).await;
        let mut ca = ControlClient::connect(format!("http://{}", a.grpc_addr))
            .await
            .unwrap();
        let mut cb = ControlClient::connect(format!("http://{}", b.grpc_addr))
            .await
            .unwrap();
        let created = ca
            .create_room(authed(pb::CreateRoomRequest {
                title: "Bench".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let (room, key) = (created.room.unwrap().id, created.token_key);
        println!(
            "{calls} calls each, one at a time; {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // Warm both paths (connections, prepared statements, the forwarding subject).
        measure("warm-up", &mut ca, &room, 200, false).await;
        measure("warm-up", &mut cb, &room, 200, false).await;
        let runs = [
            measure("GetRoom on the owner", &mut ca, &room, calls, false).await,
            measure("GetRoom on another node (forwarded)", &mut cb, &room, calls, false).await,
            measure("Announce on the owner", &mut ca, &room, calls, true).await,
            measure("Announce on another node (forwarded)", &mut cb, &room, calls, true).await,
        ];
        for r in &runs {
            r.print();
        }
        let added = |owner: &Run, other: &Run| {
            (
                (other.hist.value_at_quantile(0.5) as f64
                    - owner.hist.value_at_quantile(0.5) as f64)
                    / 1000.0,
                (other.hist.value_at_quantile(0.99) as f64
                    - owner.hist.value_at_quantile(0.99) as f64)
                    / 1000.0,
            )
        };
        let (g50, g99) = added(&runs[0], &runs[1]);
        let (a50, a99) = added(&runs[2], &runs[3]);
        println!("forwarding adds: GetRoom p50 {g50:+.3} ms, p99 {g99:+.3} ms; Announce p50 {a50:+.3} ms, p99 {a99:+.3} ms");

        // Events to viewers on the owner and on two nodes following it.
        let (c, _dc) = node(&nats, &postgres, "third", write_delay_ms).await;
        ca.open_room(authed(pb::RoomRef {
            room_id: room.clone(),
        }))
        .await
        .unwrap();
        let sent = Arc::new(Mutex::new(vec![None; events]));
        let hists: Vec<_> = (0..3)
            .map(|_| Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap())))
            .collect();
        let mut sets = Vec::new();
        for (i, n) in [&a, &b, &c].into_iter().enumerate() {
            sets.push(
                viewers_on(n, &room, &key, viewers, events, sent.clone(), hists[i].clone()).await,
            );
        }
        println!(
            "{viewers} viewers on each of 3 nodes, {events} announcements 10 ms apart, \
             write coalescing {write_delay_ms} ms"
        );
        for k in 0..events {
            sent.lock()[k] = Some(Instant::now());
            ca.announce(authed(pb::AnnounceRequest {
                room_id: room.clone(),
                text: format!("note-{k}"),
            }))
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for mut set in sets {
            while set.join_next().await.is_some() {}
        }
        for (name, h) in ["owner", "follower 1", "follower 2"].iter().zip(&hists) {
            let h = h.lock();
            println!(
                "event to a viewer on the {name:<11} {:>7} deliveries  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
                h.len(),
                h.value_at_quantile(0.50) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0,
            );
        }
        a.shutdown().await;
        b.shutdown().await;
        c.shutdown().await;
    });
}
