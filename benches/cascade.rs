//! Carrying a feed's RTP from its origin node to another node: the two transports issue 14
//! asks to compare before the media cascade is built.
//!
//! - **NATS**: one subject per track; the origin publishes each packet, the other node
//!   subscribes (two client connections through a nats-server of the bench's own).
//! - **UDP**: the origin sends each packet straight to the other node's socket (plain RTP
//!   over UDP, as mediasoup's PipeTransport without SRTP).
//!
//! Each step sends `--tracks` tracks of 1,200-byte packets (a video packet's size) at a total
//! rate for `--seconds`, paced every millisecond; each packet carries its sequence number and
//! its send time. Reported per step: packets lost (not received within a second after the
//! step), one-way latency p50 / p99 / max (send call to receipt, one process, one clock), and
//! CPU per packet: this process (both ends) and nats-server, from /proc.
//!
//! `cargo bench --bench cascade` (optionally `-- --tracks N --seconds S --rates R1,R2,…`).

// The tests' own nats-server helper.
#[allow(dead_code)]
#[path = "../tests/common/nats.rs"]
mod nats;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PACKET: usize = 1200;

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / hz.max(1) as f64
}

/// A packet: track, sequence number, send time (ns since `epoch`), padding to PACKET bytes.
fn packet(track: u32, seq: u64, epoch: Instant) -> Bytes {
    let mut b = BytesMut::with_capacity(PACKET);
    b.put_u32(track);
    b.put_u64(seq);
    b.put_u64(epoch.elapsed().as_nanos() as u64);
    b.resize(PACKET, 0);
    b.freeze()
}

/// What the receiving side saw.
struct Received {
    count: AtomicU64,
    latency: parking_lot::Mutex<Histogram<u64>>,
}

impl Received {
    fn new() -> Arc<Received> {
        Arc::new(Received {
            count: AtomicU64::new(0),
            latency: parking_lot::Mutex::new(Histogram::new(3).unwrap()),
        })
    }

    fn take(&self, p: &[u8], epoch: Instant) {
        if p.len() < 20 {
            return;
        }
        let sent = u64::from_be_bytes(p[12..20].try_into().unwrap());
        let now = epoch.elapsed().as_nanos() as u64;
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self.latency.lock().record(now.saturating_sub(sent) / 1000);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Nats,
    Udp,
}

struct Step {
    sent: u64,
    received: u64,
    latency: Histogram<u64>,
    own_cpu: f64,
    nats_cpu: f64,
}

/// Sends `rate` packets/s over `tracks` tracks for `seconds` through `send`, paced every ms.
async fn pace<F, Fut>(rate: u64, tracks: u32, seconds: u64, epoch: Instant, mut send: F) -> u64
where
    F: FnMut(u32, Bytes) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        // Catch up to where the schedule says we should be.
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let track = (sent % u64::from(tracks)) as u32;
            send(track, packet(track, sent, epoch)).await;
            sent += 1;
        }
    }
    sent
}

async fn step(
    transport: Transport,
    nats: &nats::NatsServer,
    rate: u64,
    tracks: u32,
    seconds: u64,
) -> Step {
    let epoch = Instant::now();
    let received = Received::new();
    let me = std::process::id();
    let nats_pid = nats.pid().unwrap_or(0);
    let sent;
    let (cpu0, ncpu0);
    match transport {
        Transport::Nats => {
            let origin = async_nats::connect(nats.url()).await.unwrap();
            let other = async_nats::connect(nats.url()).await.unwrap();
            let mut sub = other.subscribe("cascade.track.*").await.unwrap();
            // The subscription is known to the server once a round trip has passed.
            other.flush().await.unwrap();
            let r = received.clone();
            let reader = tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    r.take(&m.payload, epoch);
                }
            });
            let subjects: Vec<async_nats::Subject> = (0..tracks)
                .map(|t| format!("cascade.track.{t}").into())
                .collect();
            (cpu0, ncpu0) = (cpu_seconds(me), cpu_seconds(nats_pid));
            sent = pace(rate, tracks, seconds, epoch, |t, p| {
                let (origin, subject) = (origin.clone(), subjects[t as usize].clone());
                async move {
                    let _ = origin.publish(subject, p).await;
                }
            })
            .await;
            origin.flush().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            reader.abort();
        }
        Transport::Udp => {
            let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let tx = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
            // Room in the kernel's receive buffer for bursts, as a media server sets it.
            let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(8 << 20);
            tx.connect(rx.local_addr().unwrap()).await.unwrap();
            let r = received.clone();
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok(n) = rx.recv(&mut buf).await {
                    r.take(&buf[..n], epoch);
                }
            });
            (cpu0, ncpu0) = (cpu_seconds(me), cpu_seconds(nats_pid));
            sent = pace(rate, tracks, seconds, epoch, |_, p| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(&p).await;
                }
            })
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            reader.abort();
        }
    }
    let own_cpu = cpu_seconds(me) - cpu0;
    let nats_cpu = if transport == Transport::Nats {
        cpu_seconds(nats_pid) - ncpu0
    } else {
        0.0
    };
    let latency = received.latency.lock().clone();
    Step {
        sent,
        received: received.count.load(Ordering::Relaxed),
        latency,
        own_cpu,
        nats_cpu,
    }
}

fn main() {
    let v: Vec<String> = std::env::args().collect();
    let arg = |name: &str| -> Option<&String> {
        v.iter().position(|a| a == name).and_then(|i| v.get(i + 1))
    };
    let tracks: u32 = arg("--tracks").and_then(|s| s.parse().ok()).unwrap_or(40);
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(4);
    let rates: Vec<u64> = arg("--rates")
        .map(|s| s.split(',').filter_map(|r| r.parse().ok()).collect())
        .unwrap_or_else(|| vec![5_000, 20_000, 50_000, 100_000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nats = nats::NatsServer::start().await;
        println!(
            "{tracks} tracks, {PACKET}-byte packets, {seconds} s per step; {} CPUs",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!(
            "{:<6} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>13} {:>13}",
            "via",
            "pkt/s",
            "Mbit/s",
            "lost %",
            "p50 ms",
            "p99 ms",
            "max ms",
            "us/pkt (ends)",
            "us/pkt (nats)"
        );
        // A short warm-up of each path (connections, buffers).
        step(Transport::Nats, &nats, 2_000, tracks, 1).await;
        step(Transport::Udp, &nats, 2_000, tracks, 1).await;
        for &rate in &rates {
            for transport in [Transport::Nats, Transport::Udp] {
                let s = step(transport, &nats, rate, tracks, seconds).await;
                let lost = 100.0 * (s.sent.saturating_sub(s.received)) as f64 / s.sent as f64;
                let per = |cpu: f64| cpu * 1e6 / s.sent as f64;
                println!(
                    "{:<6} {:>9} {:>9.0} {:>8.3} {:>9.3} {:>9.3} {:>9.3} {:>13.2} {:>13.2}",
                    if transport == Transport::Nats {
                        "NATS"
                    } else {
                        "UDP"
                    },
                    rate,
                    (rate * PACKET as u64 * 8) as f64 / 1e6,
                    lost,
                    s.latency.value_at_quantile(0.5) as f64 / 1000.0,
                    s.latency.value_at_quantile(0.99) as f64 / 1000.0,
                    s.latency.max() as f64 / 1000.0,
                    per(s.own_cpu),
                    per(s.nats_cpu),
                );
            }
        }
    });
}
