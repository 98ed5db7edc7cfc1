//! What the media cascade adds: the same feed watched on the room's node (A, the origin) and
//! on another node (B, an edge, which gets it relayed over UDP from A).
//!
//! One presenter publishes on A (the tests' WHIP client: VP8 and Opus fixtures in a loop);
//! `--viewers N` WHEP viewers watch on A and N on B. For `--seconds S` every viewer records
//! when each video packet arrived and a hash of its payload (forwarded unchanged, so the same
//! packet has the same hash at every viewer). Reported:
//! - added latency per packet at a viewer on B: its arrival there minus the mean arrival of
//!   the same packet at A's viewers (p50 / p99 / max), so both sides include the node's own
//!   fan-out;
//! - loss on the relay: packets every viewer on A got that a viewer on B never got.
//!
//! `cargo bench --bench media_cascade` (optionally `-- --viewers N --seconds S`). Both nodes
//! run in this process, with the PostgreSQL test server (127.0.0.1:55432, started if need be)
//! and a nats-server of the bench's own.

#[allow(unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;

use common::cluster::two_nodes_with_a_show;
use common::rtc_client::{Seen, WhepViewer, WhipPublisher};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// The video a viewer received within [from, to).
fn window(v: &WhepViewer, from: Instant, to: Instant) -> Vec<Seen> {
    v.received
        .video
        .lock()
        .iter()
        .filter(|s| s.at >= from && s.at < to)
        .copied()
        .collect()
}

fn main() {
    let viewers = arg("--viewers", 20) as usize;
    let seconds = arg("--seconds", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(viewers, seconds));
}

async fn run(n: usize, seconds: u64) {
    common::raise_fd_limit();
    let nodes = two_nodes_with_a_show().await;
    let (a, b, show) = (&nodes.a, &nodes.b, &nodes.show);
    let room = show.room.clone();
    let mut c = a.server.control().await;
    let (a_http, b_http) = (a.server.app().http_addr, b.server.app().http_addr);
    c.switch(&room, &show.brand_a).await;
    let token = c.presenter_token(&room, &show.brand_a).await;
    let publisher = WhipPublisher::connect(a_http, &room, &show.brand_a, &token)
        .await
        .unwrap();

    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for i in 0..n {
        let t = c.token(&room, &format!("a{i}")).await;
        on_a.push(WhepViewer::connect(a_http, &room, &t).await.unwrap());
        let t = c.token(&room, &format!("b{i}")).await;
        on_b.push(WhepViewer::connect(b_http, &room, &t).await.unwrap());
    }
    for v in on_a.iter_mut().chain(on_b.iter_mut()) {
        v.wait_connected().await;
    }
    let t = Instant::now();
    for v in on_a.iter().chain(on_b.iter()) {
        while v.received.video_count.load(Ordering::SeqCst) < 30 {
            assert!(t.elapsed() < Duration::from_secs(30), "viewers get video");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let relayed_before = a.server.app().media.relayed_packets();
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let to = Instant::now();
    // Packets sent just before `to` may still be on their way to B: judged up to 1 s later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let relayed = a.server.app().media.relayed_packets() - relayed_before;

    // Per payload hash: the mean arrival at A's viewers, for packets all of them got.
    let mut at_a: HashMap<u64, (u32, Duration)> = HashMap::new();
    for v in &on_a {
        for s in window(v, from, to) {
            let e = at_a.entry(s.fingerprint).or_insert((0, Duration::ZERO));
            e.0 += 1;
            e.1 += s.at - from;
        }
    }
    let at_a: HashMap<u64, Duration> = at_a
        .into_iter()
        .filter(|(_, (count, _))| *count as usize == n)
        .map(|(fp, (count, sum))| (fp, sum / count))
        .collect();
    let late = to + Duration::from_secs(1);
    let mut added = Histogram::<u64>::new(3).unwrap();
    let mut earlier = 0u64;
    let (mut expected, mut missing) = (0u64, 0u64);
    for v in &on_b {
        let got: HashMap<u64, Duration> = window(v, from - Duration::from_secs(1), late)
            .into_iter()
            .map(|s| (s.fingerprint, s.at.saturating_duration_since(from)))
            .collect();
        for (fp, a_at) in &at_a {
            expected += 1;
            match got.get(fp) {
                Some(b_at) if b_at >= a_at => {
                    added.record((*b_at - *a_at).as_micros() as u64).unwrap();
                }
                Some(_) => {
                    earlier += 1;
                    added.record(0).unwrap();
                }
                None => missing += 1,
            }
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "media cascade, {n} WHEP viewers on the origin A and {n} on the edge B, {seconds} s, \
         {} video packets each got on A",
        at_a.len()
    );
    println!(
        "added latency at B (arrival at a B viewer − mean arrival at A's viewers): p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms ({} of {} samples earlier at B than A's mean)",
        ms(added.value_at_quantile(0.5)),
        ms(added.value_at_quantile(0.99)),
        ms(added.max()),
        earlier,
        added.len(),
    );
    println!(
        "lost between A and B: {missing} of {expected} ({:.3} %); A relayed {relayed} packets \
         (audio and video) to B meanwhile",
        missing as f64 * 100.0 / expected.max(1) as f64
    );
    for v in on_a.into_iter().chain(on_b) {
        v.leave().await;
    }
    publisher.stop().await;
}
