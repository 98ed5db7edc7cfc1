//! The media hot path: one ingested RTP packet rewritten and handed to every subscriber's
//! bounded queue (and taken off it again; the queues stand in for the PeerConnection
//! drivers'), per packet per subscriber; and the rewriter alone.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use showfloor::media::keyframe::VideoCodec;
use showfloor::media::rewrite::{Downtrack, Incoming};
use showfloor::media::sfu::{forward, MediaKind, Outbound, PayloadTypes, SourceCodec, Subscriber};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

fn packet(seq: u16, ts: u32) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 0x1234,
            ..Default::default()
        },
        payload: bytes::Bytes::from(vec![0x10u8; 1100]),
    }
}

fn subscribers(n: usize) -> (Vec<Arc<Subscriber>>, Vec<mpsc::Receiver<Outbound>>) {
    let mut subs = Vec::with_capacity(n);
    let mut rxs = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = mpsc::channel(256);
        let s = Subscriber {
            id: i as u64,
            audio: parking_lot::Mutex::new(Downtrack::new(i as u32, 48_000, false, 0, 0)),
            video: parking_lot::Mutex::new(Downtrack::new(i as u32 + 1, 90_000, true, 7, 9)),
            payload_types: PayloadTypes::default(),
            egress: Box::new(tx),
            dropped: AtomicU64::new(0),
        };
        s.payload_types
            .vp8
            .store(96, std::sync::atomic::Ordering::Relaxed);
        s.switch_to(None, Some(1));
        subs.push(Arc::new(s));
        rxs.push(rx);
    }
    (subs, rxs)
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward_rewrite");
    for n in [1usize, 100, 1000] {
        let (subs, mut rxs) = subscribers(n);
        let codec = SourceCodec {
            kind: MediaKind::Video,
            video: Some(VideoCodec::Vp8),
        };
        // Start every downtrack with a key frame.
        let first = Incoming {
            source: 1,
            seq: 0,
            ts: 0,
            keyframe: true,
        };
        forward(&subs, codec, &packet(0, 0), &first, Instant::now());
        for rx in rxs.iter_mut() {
            while rx.try_recv().is_ok() {}
        }
        let mut seq = 0u16;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("subscribers", n), &n, |b, _| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                let ts = seq as u32 * 3000;
                let p = packet(seq, ts);
                let inc = Incoming {
                    source: 1,
                    seq,
                    ts,
                    keyframe: false,
                };
                let f = forward(&subs, codec, &p, &inc, Instant::now());
                for rx in rxs.iter_mut() {
                    if let Ok(o) = rx.try_recv() {
                        black_box(o.packet.header.sequence_number);
                    }
                }
                black_box(f)
            })
        });
    }
    g.finish();
}

fn rewrite_only(c: &mut Criterion) {
    let mut d = Downtrack::new(1, 90_000, true, 0, 0);
    d.switch_to(Some(1));
    let now = Instant::now();
    d.rewrite(
        &Incoming {
            source: 1,
            seq: 0,
            ts: 0,
            keyframe: true,
        },
        now,
    );
    let mut seq = 0u16;
    c.bench_function("downtrack_rewrite", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(d.rewrite(
                &Incoming {
                    source: 1,
                    seq,
                    ts: seq as u32 * 3000,
                    keyframe: false,
                },
                now,
            ))
        })
    });
}

/// The cascade's relay: one 1,100-byte payload sealed for an edge (AES-256-GCM) and opened
/// there, against the copy into a datagram that the unsealed layout cost.
fn relay_seal(c: &mut Criterion) {
    use showfloor::media::relay_crypto::{Direction, Sealed, SubKey};
    let key = SubKey::random();
    let (origin, edge) = (
        Sealed::new(&key, Direction::ToEdge),
        Sealed::new(&key, Direction::ToOrigin),
    );
    let body = vec![0x10u8; 1100 + 15];
    let mut g = c.benchmark_group("relay_datagram");
    g.throughput(Throughput::Elements(1));
    g.bench_function("plain_copy", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            out.push(0xC1);
            out.extend_from_slice(&[0u8; 8]);
            out.extend_from_slice(black_box(&body));
            black_box(out.len())
        })
    });
    g.bench_function("seal", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            origin.seal(0xC1, black_box(&body), &mut out);
            black_box(out.len())
        })
    });
    // Opening needs a fresh datagram each time (a replay is refused): seal and open together.
    g.bench_function("seal_and_open", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            origin.seal(0xC1, black_box(&body), &mut out);
            black_box(edge.open(&mut out).map(<[u8]>::len))
        })
    });
    g.finish();
}

criterion_group!(benches, fan_out, rewrite_only, relay_seal);
criterion_main!(benches);
