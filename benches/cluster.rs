//! What a cluster adds to a host command: the same gRPC calls on the room's owner and on
//! another node, which forwards them to the owner over NATS request/reply.
//!
//! `cargo bench --bench cluster` (optionally `-- --calls N`). Two nodes in this process on one
//! PostgreSQL database (the test server on 127.0.0.1:55432, started if need be) and a
//! nats-server of the bench's own (JetStream, loopback). Each call waits for its answer
//! before the next (latency, not throughput): `GetRoom` (a read inside the room) and
//! `Announce` (a room event to every viewer).

// The tests' own nats-server helper (its stop/restart are not used here).
#[allow(dead_code)]
#[path = "../tests/common/nats.rs"]
mod nats;

use hdrhistogram::Histogram;
use showfloor::app::{App, Membership};
use showfloor::cluster::Leases;
use showfloor::config::{Config, StoreKind};
use showfloor::pb;
use showfloor::pb::control_client::ControlClient;
use showfloor::store::postgres::scratch;
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

async fn node(nats: &nats::NatsServer, postgres: &str, id: &str) -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path().to_path_buf(), KEY);
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

fn main() {
    let v: Vec<String> = std::env::args().collect();
    let calls: u32 = v
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| v.get(i + 1)?.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nats = nats::NatsServer::start().await;
        let postgres = scratch::fresh_database_url();
        let (a, _da) = node(&nats, &postgres, "owner").await;
        let (b, _db) = node(&nats, &postgres, "other").await;
        let mut ca = ControlClient::connect(format!("http://{}", a.grpc_addr))
            .await
            .unwrap();
        let mut cb = ControlClient::connect(format!("http://{}", b.grpc_addr))
            .await
            .unwrap();
        let room = ca
            .create_room(authed(pb::CreateRoomRequest {
                title: "Bench".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap()
            .id;
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
        a.shutdown().await;
        b.shutdown().await;
    });
}
